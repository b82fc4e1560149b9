"""The application factory: routers, middleware, templates, static files and error handlers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caresync import __version__
from caresync.config import get_settings
from caresync.core import realtime
from caresync.core.errors import DomainError, field_errors, problem_body
from caresync.core.ratelimit import RateLimit
from caresync.operations.observability.metrics import RequestMetrics
from caresync.web.pagekit import PageRedirect, error_page

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).parent / "web"
PROBLEM_JSON = "application/problem+json"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; form-action 'self'"
    ),
}


def _wants_html(request: Request) -> bool:
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _problem(request: Request, status: int, title: str, detail: str, slug: str, **extra: object) -> Response:
    if _wants_html(request):
        return error_page(request, status, title, detail, **extra)
    body = problem_body(status, title, detail, slug=slug, instance=request.url.path, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return _problem(request, exc.status, exc.title, exc.detail, exc.slug, **exc.extra)

    @app.exception_handler(PageRedirect)
    async def page_redirect(_request: Request, exc: PageRedirect) -> Response:
        return RedirectResponse(exc.url, status_code=303)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        by_field = field_errors(exc.errors())
        errors = [{"field": field, "message": message} for field, message in by_field.items()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return _problem(request, 422, "Validation failed", detail, "validation", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed"}
        title = titles.get(exc.status_code, "Request failed")
        detail = (
            str(exc.detail) if exc.detail and exc.status_code != 404 else "There is nothing at this address."
        )
        return _problem(request, exc.status_code, title, detail, "http")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _problem(
            request,
            500,
            "Internal error",
            "Something went wrong on our side; it was logged. "
            "Try again, and contact support if it keeps happening.",
            "internal",
        )


@asynccontextmanager
async def _lifespan(_app: FastAPI) -> AsyncIterator[None]:
    stop = asyncio.Event()
    relay = asyncio.create_task(realtime.relay_from_redis(stop)) if get_settings().redis_url else None
    yield
    stop.set()
    if relay:
        await asyncio.wait_for(relay, timeout=5)


class SecurityHeaders:
    """Adds the security headers to every response, and keeps dynamic responses out of caches.

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``) runs each request
    through extra tasks and memory streams, a measurable share of a short request's time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    if key == "Content-Security-Policy" and path.startswith("/api/docs"):
                        continue  # Swagger UI needs its inline bootstrap script
                    headers.setdefault(key, value)
                if not path.startswith("/static/"):
                    # Patient data must not linger in browser caches. Pages answer HTMX requests with a
                    # fragment under the same URL, so caches must also key on HX-Request (else the Back
                    # button could show a bare fragment).
                    headers.setdefault("Cache-Control", "no-store")
                    headers.setdefault("Vary", "HX-Request")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RedactSecretPaths(logging.Filter):
    """Access-log lines must not carry credentials: calendar feed URLs hold their token in the path (calendar
    apps can send nothing else), so ``/calendar/<token>.ics`` is logged as ``/calendar/…ics``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 2 and str(args[2]).startswith(SECRET_PATH_PREFIXES):
            path = str(args[2])
            record.args = (*args[:2], path[: path.index("/", 1) + 1] + "…" + path[-4:], *args[3:])
        return True


SECRET_PATH_PREFIXES = ("/calendar/", "/share/", "/api/v1/records/shared/")


def create_app() -> FastAPI:
    """Build the CareSync web application."""
    from caresync.analytics import routes as analytics_routes
    from caresync.bloodbank import routes as bloodbank_routes
    from caresync.documents import routes as documents_routes
    from caresync.engagement.articles import api as articles_api
    from caresync.engagement.articles import pages as articles_pages
    from caresync.engagement.streaks import api as streaks_api
    from caresync.engagement.streaks import pages as streaks_pages
    from caresync.fhir import pages as fhir_pages
    from caresync.fhir import tokens as fhir_tokens
    from caresync.fhir.api import create_fhir_app
    from caresync.identity.api import admin, auth, orgs, people
    from caresync.identity.credentials import api as credentials_api
    from caresync.identity.credentials import pages as credentials_pages
    from caresync.imaging import routes as imaging_routes
    from caresync.operations.backup import pages as backup_pages
    from caresync.operations.observability import api as observability_api
    from caresync.prescriptions import api as prescriptions_api
    from caresync.prescriptions import pages as prescriptions_pages
    from caresync.prescriptions.adherence import api as adherence_api
    from caresync.prescriptions.adherence import pages as adherence_pages
    from caresync.prescriptions.dispensing import api as dispensing_api
    from caresync.prescriptions.dispensing import pages as dispensing_pages
    from caresync.records import api as records_api
    from caresync.records import consultation
    from caresync.records import pages as records_pages
    from caresync.records.careteam import api as careteam_api
    from caresync.records.careteam import pages as careteam_pages
    from caresync.records.sharing import api as sharing_api
    from caresync.records.sharing import pages as sharing_pages
    from caresync.scheduling import api as scheduling_api
    from caresync.scheduling import pages as scheduling_pages
    from caresync.scheduling.calendar import api as calendar_api
    from caresync.scheduling.queue import api as queue_api
    from caresync.scheduling.queue import pages as queue_pages
    from caresync.web import pages
    from caresync.web.api import router as platform
    from caresync.web.api import ws_router

    settings = get_settings()
    settings.ensure_var_dir()
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSecretPaths) for f in access_log.filters):
        access_log.addFilter(RedactSecretPaths())
    app = FastAPI(
        title="CareSync API",
        version=__version__,
        description="One platform for care coordination, blood banking, imaging AI, analytics and "
        "document AI. Authenticate with `POST /api/v1/auth/login`, then send "
        "`Authorization: Bearer <token>`.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=_lifespan,
    )
    _install_error_handlers(app)

    app.add_middleware(RateLimit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)  # outermost: it times everything, 429s included

    api_routers = (auth, people, admin, orgs, credentials_api.router, platform, ws_router)
    scheduling_routers = (scheduling_api.router, queue_api.router, calendar_api.router)
    records_routers = (sharing_api.router, careteam_api.router, records_api.router)  # before /{record_id}
    # the sub-domains' fixed paths (e.g. /api/v1/prescriptions/doses) before /{prescription_id}
    prescription_routers = (dispensing_api.router, adherence_api.router, prescriptions_api.router)
    engagement_routers = (articles_api.router, streaks_api.router)
    for router in (*api_routers, *scheduling_routers, *records_routers, calendar_api.public_router):
        app.include_router(router)
    for router in (*prescription_routers, *engagement_routers):
        app.include_router(router)
    page_routers = (pages.router, scheduling_pages.router, queue_pages.router, records_pages.router)
    for router in (*page_routers, sharing_pages.router, careteam_pages.router, consultation.router):
        app.include_router(router)
    medication_pages = (dispensing_pages.router, adherence_pages.router, prescriptions_pages.router)
    for router in (*medication_pages, articles_pages.router, streaks_pages.router):
        app.include_router(router)
    app.include_router(observability_api.router)  # /healthz, /readyz, /metrics
    app.include_router(backup_pages.router)
    app.include_router(credentials_pages.router)
    domain_routes = (bloodbank_routes, analytics_routes, documents_routes, imaging_routes)
    for router in (router for routes in domain_routes for router in routes.routers()):
        app.include_router(router)
    app.include_router(fhir_tokens.router)
    app.include_router(fhir_pages.router)
    app.mount("/fhir/R4", create_fhir_app())
    app.mount("/static", StaticFiles(directory=WEB_DIR / "static"), name="static")

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/api/openapi.json",
            title="CareSync API",
            swagger_js_url="/static/vendor/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> RedirectResponse:
        return RedirectResponse("/static/favicon.svg")

    return app
