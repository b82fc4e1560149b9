"""Shared pieces of the HTML pages of every domain: the signed-in user dependencies, rendering a page (with
navigation, CSRF token and unread count) in the handler's transaction, redirects, and turning validation
and domain errors into per-field messages for forms."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from caresync.core import notify
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, Forbidden, Unauthenticated, field_errors
from caresync.web.deps import FormValues, csrf_token_for, current_principal, partial_principal
from caresync.web.templating import render


class PageRedirect(Exception):
    """Raised by page helpers to send the browser elsewhere (e.g. to sign in)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def redirect(url: str) -> RedirectResponse:
    """A 303 redirect (the browser follows with GET)."""
    return RedirectResponse(url, status_code=303)


def signed_in(request: Request, form: dict[str, str], *, partial: bool) -> Principal:
    """The signed-in principal, or a redirect to where the user must go first."""
    try:
        return partial_principal(request, form) if partial else current_principal(request, form)
    except Unauthenticated:
        raise PageRedirect(f"/login?next={quote(request.url.path)}") from None
    except Forbidden as exc:
        stage = exc.extra.get("stage")
        if stage == "mfa":
            raise PageRedirect("/login/mfa") from None
        if stage == "enrol":
            raise PageRedirect("/account/mfa") from None
        raise


def page_user(request: Request, form: FormValues) -> Principal:
    """Dependency: a fully signed-in user, else a redirect to sign-in or MFA."""
    return signed_in(request, form, partial=False)


def page_partial_user(request: Request, form: FormValues) -> Principal:
    """Dependency: a user who may still owe a second factor or MFA enrolment."""
    return signed_in(request, form, partial=True)


PageUser = Annotated[Principal, Depends(page_user)]
PartialPageUser = Annotated[Principal, Depends(page_partial_user)]


def is_htmx(request: Request) -> bool:
    """Whether HTMX made the request (it then wants a fragment, not the whole page)."""
    return bool(request.headers.get("HX-Request"))


def render_page(
    request: Request,
    db: Session,
    principal: Principal | None,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render ``template`` for the signed-in ``principal`` (navigation, CSRF token, unread notifications)
    and end the handler's transaction, in the handler's thread (see ``web.deps._resolve``)."""
    csrf, unread = "", 0
    if principal is not None and principal.session_id:
        csrf = csrf_token_for(principal)
        if principal.user_id:
            unread = notify.unread_count(db, principal.user_id)
    response = render(
        request, template, context, status_code=status_code, principal=principal, csrf=csrf, unread=unread
    )
    db.commit()  # end the transaction here, in the handler's thread (see web.deps._resolve)
    return response


def error_page(request: Request, status: int, title: str, detail: str, **_extra: object) -> HTMLResponse:
    """An error as a friendly page (used by the app's error handlers for browser requests)."""
    return render(
        request, "error.html", {"status": status, "title": title, "detail": detail}, status_code=status
    )


def form_field_errors(exc: ValidationError) -> dict[str, str]:
    errors = field_errors(exc.errors())
    if "request" in errors:  # a rule across fields: shown above the form
        errors["form"] = errors.pop("request")
    return errors


def domain_field_errors(exc: DomainError) -> dict[str, str]:
    field = exc.extra.get("field")
    return {str(field) if field else "form": exc.detail}


def clean_form(values: dict[str, str], model: type[BaseModel]) -> dict[str, Any]:
    """Form strings to model input: empty optional fields become None (except text the user cleared)."""
    fields = model.model_fields
    data: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            continue
        value = value.strip()
        annotation = str(fields[key].annotation)
        if value == "" and ("float" in annotation or "date" in annotation or "Literal" in annotation):
            data[key] = None
        else:
            data[key] = value
    return data
