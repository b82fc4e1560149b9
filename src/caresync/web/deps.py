"""FastAPI dependencies: a DB session per request and the acting principal.

Credentials come from an ``Authorization: Bearer`` token (API clients) or the session cookie (browser).
Cookie-authenticated requests that change state must carry the session's CSRF token, as a form field or an
``X-CSRF-Token`` header (HTMX sends it from the page's meta tag).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core import crypto
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, Unauthenticated
from caresync.db import session_factory
from caresync.identity import service as accounts

log = logging.getLogger(__name__)
SESSION_COOKIE = "caresync_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A session for this request. Handlers end their transaction themselves (commit, or rollback for
    reads, after building the response: a rollback expires loaded rows) so that no database lock outlives
    the handler; the teardown is only a safety net, and warns when it had to end a transaction.

    Async on purpose: creating a session touches no database, and the teardown has nothing left to wait
    for, so neither deserves two thread-pool hand-offs per request."""
    session = session_factory()()
    try:
        yield session
    except BaseException:
        session.rollback()  # a failed request leaves nothing half-written
        raise
    else:
        if session.in_transaction():
            log.warning(LEFT_OPEN_WARNING, request.method, request.url.path)
    finally:
        session.rollback()
        session.close()


LEFT_OPEN_WARNING = "%s %s left its database transaction open (a lock held until the request ended)"


Db = Annotated[Session, Depends(get_db)]


def client_ip(request: Request) -> str:
    """The caller's address (uvicorn applies trusted proxy headers)."""
    return request.client.host if request.client else ""


def csrf_token_for(principal: Principal) -> str:
    """The CSRF token bound to a browser session."""
    return crypto.hmac_hex(get_settings().secret("secret_key"), f"csrf:{principal.session_id}")


def _token_from(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE), True


async def form_values(request: Request) -> dict[str, str]:
    """The submitted form's text fields (empty for other content types). Read on the event loop, before
    any database work, so that handlers can stay synchronous."""
    if not request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/")
    ):
        return {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormValues = Annotated[dict[str, str], Depends(form_values)]


def _resolve(request: Request, form: dict[str, str], stages: frozenset[str]) -> Principal:
    """Resolve the caller in a short transaction of its own.

    Runs in the thread pool (a sync dependency) and never keeps a transaction open: on SQLite every
    transaction takes the write lock, and a lock held across an ``await`` or a thread-pool hand-off can
    stall every other request."""
    resolved = getattr(request.state, "resolved", None)
    if resolved is None:
        token, via_cookie = _token_from(request)
        if token:
            with session_factory()() as session:
                resolved = accounts.resolve_token(session, token, client_ip(request))
                session.commit()
        if resolved is None:
            raise Unauthenticated("Sign in first: your session is missing, expired or revoked.")
        if via_cookie and request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER) or form.get("csrf_token", "")
            if not sent or not crypto.constant_time_equal(sent, csrf_token_for(resolved.principal)):
                raise Forbidden("The form expired or came from another site. Reload the page and try again.")
        request.state.resolved = resolved
    if resolved.scope is not None:
        raise Forbidden(
            "This is an app token limited to the FHIR API (/fhir/R4) and its scopes; it cannot be used here."
        )
    if resolved.stage not in stages:
        if resolved.stage == "enrol":
            raise Forbidden("Set up two-factor authentication first.", extra={"stage": "enrol"})
        raise Forbidden("Enter your authentication code first.", extra={"stage": "mfa"})
    return resolved.principal


def current_principal(request: Request, form: FormValues) -> Principal:
    """A fully signed-in user (every factor passed)."""
    return _resolve(request, form, frozenset({"full"}))


def partial_principal(request: Request, form: FormValues) -> Principal:
    """A signed-in user who may still owe a second factor or MFA enrolment."""
    return _resolve(request, form, frozenset({"full", "mfa", "enrol"}))


CurrentUser = Annotated[Principal, Depends(current_principal)]
PartialUser = Annotated[Principal, Depends(partial_principal)]
