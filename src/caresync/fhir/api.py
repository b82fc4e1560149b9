"""The FHIR R4 REST API, mounted at ``/fhir/R4`` as an application of its own.

Its own application so that every error, whatever raised it, comes back as an ``OperationOutcome`` with
``application/fhir+json`` (the platform API answers ``application/problem+json``), and so that its OpenAPI
schema (``/fhir/R4/openapi.json``) lists the FHIR routes with their real search parameters. Routes are
generated from :mod:`caresync.fhir.registry`. Only bearer tokens are accepted: FHIR clients are apps, and
a browser cookie would need CSRF protection here too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from caresync import __version__
from caresync.core.errors import DomainError
from caresync.db import session_factory
from caresync.fhir import capability, scopes
from caresync.fhir.context import JSON, FhirContext
from caresync.fhir.outcome import FhirError, for_error, invalid, operation_outcome
from caresync.fhir.registry import ResourceType, resource_types
from caresync.fhir.search import NoMatch, SearchQuery, SearchResult, bundle_of, parse_query, searchset
from caresync.identity import service as accounts
from caresync.web.deps import client_ip

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"
JSON_TYPES = ("application/fhir+json", "application/json", "json", "application/json+fhir")
MAX_BODY = 1_000_000


class FhirJSONResponse(JSONResponse):
    """JSON as ``application/fhir+json`` (also what the OpenAPI schema declares for every route)."""

    media_type = FHIR_JSON


def fhir_response(body: JSON, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON response."""
    return FhirJSONResponse(body, status_code=status, headers=headers)


def _check_format(request: Request) -> None:
    wanted = request.query_params.get("_format")
    if wanted and wanted not in JSON_TYPES:
        raise FhirError(406, f"This server speaks JSON only; _format={wanted} is not supported.")
    accept = request.headers.get("accept", "")
    if accept and "xml" in accept and "json" not in accept and "*/*" not in accept:
        raise FhirError(406, "This server speaks JSON only: send Accept: application/fhir+json.")


def _base_url(request: Request) -> str:
    """The absolute base of the FHIR API as the client reached it (the mount point is the root path)."""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def _caller(request: Request, session: Session) -> FhirContext:
    """Resolve the bearer token into a context; 401 without a valid, fully signed-in token. In the
    request's one transaction (on SQLite each transaction takes the write lock: one per request)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        raise FhirError(401, "Send a bearer token: Authorization: Bearer <token>.")
    resolved = accounts.resolve_token(session, header[7:].strip(), client_ip(request))
    if resolved is None:
        raise FhirError(401, "The bearer token is missing, expired or revoked.")
    if resolved.stage != "full":
        raise FhirError(401, "Finish signing in (the second factor) before using this token.")
    token_scopes = (
        scopes.Scopes.full()
        if resolved.scope is None
        else scopes.parse(resolved.scope, known_types=frozenset(resource_types()))
    )
    return FhirContext(session, resolved.principal, token_scopes, _base_url(request))


def _run(request: Request, work: Callable[[FhirContext], Response]) -> Response:
    """Run ``work`` with a fresh session and context; commit what it audited, roll back on failure."""
    _check_format(request)
    with session_factory()() as session:
        ctx = _caller(request, session)
        try:
            response = work(ctx)
        except BaseException:
            session.rollback()
            raise
        session.commit()
        return response


def _parse_id(resource: ResourceType, raw: str) -> Any:
    try:
        return resource.parse_id(raw)
    except ValueError:
        raise FhirError(404, f"{resource.name}/{raw} does not exist or is not visible to you.") from None


def _body(request: Request, raw: bytes, resource_type: str) -> JSON:
    """The request's resource, parsed and validated as FHIR R4B; 400/413/415 with a clear message if not.
    Called once the caller is known, so that a request without a valid token always gets 401."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in JSON_TYPES:
        raise FhirError(415, f"Send the resource as {FHIR_JSON} (got '{content_type or 'nothing'}').")
    if len(raw) > MAX_BODY:
        raise FhirError(413, f"The resource is larger than {MAX_BODY // 1000} kB.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("The body is not valid JSON.") from None
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise invalid(f"The body must be a {resource_type} resource (resourceType '{resource_type}').")
    validate(data)
    return data


def validate(data: JSON) -> None:
    """Check ``data`` against the FHIR R4B model of its type; 400 listing the first problems."""
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(data["resourceType"]).model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'resource'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise invalid(f"The {data['resourceType']} is not valid FHIR R4: {problems}") from None


def _search(
    resource: ResourceType, request: Request, ctx: FhirContext, items: list[tuple[str, str]]
) -> Response:
    assert resource.search is not None
    ctx.require(resource.name, scopes.SEARCH)
    strict = "handling=lenient" not in request.headers.get("prefer", "")
    query = parse_query(
        items, resource.param_names | {"_id"}, strict=strict, modifiers=frozenset(resource.modifiers)
    )
    for include in query.includes:
        if include not in resource.includes:
            offered = ", ".join(resource.includes) or "none"
            raise FhirError(
                400, f"_include={include} is not supported (offered: {offered}).", "not-supported"
            )
    if query.count == 0:  # FHIR: _count=0 asks for the total only
        query.summary_count = True
    if query.has("_id"):
        result = _search_by_id(resource, ctx, query)
    else:
        if query.summary_count:
            query.count = 1
        try:
            result = resource.search(ctx, query)
        except NoMatch:
            result = SearchResult(resources=[], total=0)
    if query.summary_count:
        result.resources, result.next_cursor, result.included = [], None, []
    return fhir_response(searchset(ctx, resource.name, query, result))


def _search_by_id(resource: ResourceType, ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """``_id`` searches, answered by reads (alone: combined with other parameters they are refused)."""
    if len(query.params) > 1 or query.includes or resource.read is None:
        raise FhirError(
            400, "_id cannot be combined with other parameters or _include here.", "not-supported"
        )
    found: list[JSON] = []
    for raw in query.values("_id"):
        try:
            found.append(resource.read(ctx, _parse_id(resource, raw)))
        except DomainError as exc:
            if exc.status not in (403, 404):
                raise
    return SearchResult(resources=found, total=len(found))


def _add_routes(app: FastAPI, resource: ResourceType) -> None:
    name = resource.name
    params = [
        {
            "name": p.name,
            "in": "query",
            "required": False,
            "description": p.documentation,
            "schema": {"type": "string"},
        }
        for p in resource.search_params
    ] + [
        {
            "name": "_count",
            "in": "query",
            "required": False,
            "schema": {"type": "integer", "minimum": 0, "maximum": 200},
        },
    ]
    if resource.search is not None:

        def search(request: Request) -> Response:
            items = list(request.query_params.multi_items())
            return _run(request, lambda ctx: _search(resource, request, ctx, items))

        app.add_api_route(
            f"/{name}",
            search,
            methods=["GET"],
            summary=f"Search {name}",
            openapi_extra={"parameters": params},
        )

        async def search_post(request: Request) -> Response:
            form = await request.form()
            items = list(request.query_params.multi_items()) + [
                (k, v) for k, v in form.multi_items() if isinstance(v, str)
            ]
            return await run_in_threadpool(_run, request, lambda ctx: _search(resource, request, ctx, items))

        app.add_api_route(f"/{name}/_search", search_post, methods=["POST"], summary=f"Search {name} (form)")
    if resource.read is not None:
        read = resource.read

        def read_one(request: Request, resource_id: str) -> Response:
            def work(ctx: FhirContext) -> Response:
                ctx.require(name, scopes.READ)
                return fhir_response(read(ctx, _parse_id(resource, resource_id)))

            return _run(request, work)

        app.add_api_route(f"/{name}/{{resource_id}}", read_one, methods=["GET"], summary=f"Read {name}")
    if resource.create is not None:
        create = resource.create

        async def create_one(request: Request) -> Response:
            raw = await request.body()

            def work(ctx: FhirContext) -> Response:
                ctx.require(name, scopes.CREATE)
                created = create(ctx, _body(request, raw, name))
                location = ctx.full_url(name, created["id"])
                return fhir_response(created, 201, {"Location": location})

            return await run_in_threadpool(_run, request, work)

        app.add_api_route(f"/{name}", create_one, methods=["POST"], summary=f"Create {name}")
    if resource.update is not None:
        update = resource.update

        async def update_one(request: Request, resource_id: str) -> Response:
            raw = await request.body()

            def work(ctx: FhirContext) -> Response:
                ctx.require(name, scopes.UPDATE)
                body = _body(request, raw, name)
                if body.get("id") != resource_id:
                    raise invalid(f"The body's id must be the id in the URL ({resource_id}).")
                updated = update(ctx, _parse_id(resource, resource_id), body)
                moved = updated["id"] != resource_id  # e.g. a rescheduled appointment is a new booking
                return fhir_response(
                    updated,
                    headers={"Content-Location": ctx.full_url(name, updated["id"])} if moved else None,
                )

            return await run_in_threadpool(_run, request, work)

        app.add_api_route(f"/{name}/{{resource_id}}", update_one, methods=["PUT"], summary=f"Update {name}")


def everything(request: Request, resource_id: str) -> Response:
    """``Patient/$everything``: the patient and every resource of theirs this caller may see."""

    def work(ctx: FhirContext) -> Response:
        types = resource_types()
        patient_type = types["Patient"]
        assert patient_type.read is not None
        ctx.require("Patient", scopes.READ)
        patient_id = _parse_id(patient_type, resource_id)
        found = [patient_type.read(ctx, patient_id)]
        for resource in types.values():
            if resource.everything is not None and ctx.scopes.allows(resource.name, scopes.SEARCH):
                found.extend(resource.everything(ctx, patient_id))
        return fhir_response(bundle_of(ctx, found, str(request.url)))

    return _run(request, work)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return fhir_response(for_error(exc), exc.status, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        detail = "; ".join(str(err.get("msg", "")) for err in exc.errors()[:5])
        return fhir_response(operation_outcome(400, f"The request is not valid: {detail}"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            detail = (
                f"This server has no FHIR endpoint at {request.url.path}; see {_base_url(request)}/metadata."
            )
        elif exc.status_code == 405:
            detail = f"{request.method} is not supported on {request.url.path}; see the CapabilityStatement."
        else:
            detail = str(exc.detail)
        return fhir_response(operation_outcome(exc.status_code, detail), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = "Something went wrong on our side; it was logged. Try again later."
        return fhir_response(operation_outcome(500, detail), 500)


def create_fhir_app() -> FastAPI:
    """The FHIR application, to be mounted at ``/fhir/R4``."""
    app = FastAPI(
        title="CareSync FHIR R4 API",
        version=__version__,
        description="FHIR R4 (4.0.1). Send `Authorization: Bearer <token>`; the CapabilityStatement is at "
        "`/fhir/R4/metadata`.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        default_response_class=FhirJSONResponse,
    )
    _install_error_handlers(app)

    @app.get("/metadata", summary="CapabilityStatement")
    def metadata(request: Request) -> Response:
        _check_format(request)
        return fhir_response(capability.statement(_base_url(request)))

    app.add_api_route(
        "/Patient/{resource_id}/$everything", everything, methods=["GET"], summary="Patient $everything"
    )
    for resource in resource_types().values():
        _add_routes(app, resource)
    return app
