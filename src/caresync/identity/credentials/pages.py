"""Credential pages: a clinician's own licence (status, submissions, submitting a new one) and the
administrator's review queue, one credential with its document preview, approve or reject with a reason,
and suspension after confirmation. Thin: they parse forms and call the credentials service."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from caresync.core.auth import Principal
from caresync.core.errors import DomainError
from caresync.core.rbac import Perm, require
from caresync.db import utcnow
from caresync.identity.credentials import service
from caresync.identity.credentials.models import (
    APPROVED,
    KIND_BY_ROLE,
    KIND_LABELS,
    PENDING,
    REJECTED,
    STATUSES,
    SUSPENDED,
)
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
QUEUE_TABS = (PENDING, APPROVED, REJECTED, SUSPENDED, "expired")
FORM_FIELDS = ("registration_number", "issuing_body", "issued_on", "expires_on")


def _base_context() -> dict[str, Any]:
    return {"kind_labels": KIND_LABELS, "today": utcnow().date().isoformat()}


# --- the clinician's own licence --------------------------------------------------------------------------


def _mine(
    request: Request,
    db: Db,
    principal: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    credentials = service.my_credentials(db, principal)
    assert principal.user_id is not None  # my_credentials admits signed-in clinicians only
    context = {
        **_base_context(),
        "credentials": credentials,
        "current": service.current(db, principal.user_id),
        "verified": service.is_verified(db, principal.user_id),
        "kind": KIND_BY_ROLE[principal.role],
        "values": values,
        "errors": errors,
        "submitted": request.query_params.get("submitted") == "1",
    }
    return render_page(request, db, principal, "credentials/mine.html", context, status_code)


@router.get("/me/credentials", response_class=HTMLResponse)
def my_credentials(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """The clinician's verification status, their submissions and the form to submit a licence."""
    return _mine(request, db, principal, {}, {})


def _parse_dates(values: dict[str, str], errors: dict[str, str]) -> tuple[date | None, date | None]:
    parsed: list[date | None] = []
    for name, label in (("issued_on", "issue"), ("expires_on", "expiry")):
        try:
            parsed.append(date.fromisoformat(values.get(name, "").strip()))
        except ValueError:
            errors[name] = f"Enter the {label} date."
            parsed.append(None)
    return parsed[0], parsed[1]


@router.post("/me/credentials", response_model=None)
def submit_credential(
    request: Request,
    principal: PageUser,
    db: Db,
    form: FormValues,
    document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Submit a licence; errors are shown next to their fields."""
    values = {name: form.get(name, "") for name in FORM_FIELDS}
    errors: dict[str, str] = {}
    issued_on, expires_on = _parse_dates(values, errors)
    data = document.file.read() if document is not None and document.filename else b""
    if not data:
        errors["document"] = "Attach the licence document (PDF, PNG or JPEG)."
    if issued_on is not None and expires_on is not None and not errors:
        filename = document.filename if document is not None and document.filename else ""
        submission = service.Submission(
            values["registration_number"], values["issuing_body"], issued_on, expires_on, filename
        )
        try:
            service.submit(db, principal, submission, data)
        except DomainError as exc:
            db.rollback()
            if exc.status == 403:
                raise
            errors = domain_field_errors(exc)
            if "form" in errors and exc.status in (413, 415):  # storage names no field: it is the document
                errors["document"] = errors.pop("form")
        else:
            db.commit()
            return redirect("/me/credentials?submitted=1")
    return _mine(request, db, principal, values, errors, 422)


# --- the administrator's review -----------------------------------------------------------------------------


@router.get("/admin/credentials", response_class=HTMLResponse)
def review_queue(
    request: Request, principal: PageUser, db: Db, status: str = PENDING, cursor: str | None = None
) -> HTMLResponse:
    """Licences of the organisation's staff, by status: the pending ones first come, first served."""
    status = status if status in STATUSES else PENDING
    page = service.pending_for_review(db, principal, status=status, limit=PAGE_SIZE, cursor=cursor)
    query = {"status": status}
    context = {
        **_base_context(),
        "page": page,
        "status": status,
        "tabs": QUEUE_TABS,
        "next_url": f"/admin/credentials?{urlencode({**query, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else "",
        "first_url": f"/admin/credentials?{urlencode(query)}" if cursor else "",
        "done": request.query_params.get("done", ""),
    }
    return render_page(request, db, principal, "credentials/queue.html", context)


def _detail(
    request: Request,
    db: Db,
    principal: Principal,
    credential_id: uuid.UUID,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    credential, holder = service.get(db, principal, credential_id)
    context = {
        **_base_context(),
        "credential": credential,
        "holder": holder,
        "earlier": [c for c in service.history(db, holder.id) if c.id != credential.id],
        "reviewer": principal.role == "admin",
        "errors": errors or {},
        "values": values or {},
        "suspended": request.query_params.get("suspended") == "1",
    }
    return render_page(request, db, principal, "credentials/detail.html", context, status_code)


@router.get("/admin/credentials/{credential_id}", response_class=HTMLResponse)
def credential_detail(
    request: Request, credential_id: uuid.UUID, principal: PageUser, db: Db
) -> HTMLResponse:
    """One licence with its document, and the decisions the administrator may take on it."""
    return _detail(request, db, principal, credential_id)


@router.post("/admin/credentials/{credential_id}/review", response_model=None)
def review_credential(
    request: Request, credential_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Approve or reject (with a reason) a pending licence."""
    decision, reason = form.get("decision", ""), form.get("reason", "")
    try:
        credential = service.review(db, principal, credential_id, decision, reason)
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        values = {"reason": reason, "decision": decision}
        return _detail(request, db, principal, credential_id, domain_field_errors(exc), values, exc.status)
    db.commit()
    return redirect(f"/admin/credentials?{urlencode({'done': credential.status})}")


def _suspend_page(
    request: Request,
    db: Db,
    principal: Principal,
    credential_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    credential, holder = service.get(db, principal, credential_id)
    context = {
        **_base_context(),
        "credential": credential,
        "holder": holder,
        "values": values,
        "errors": errors,
    }
    return render_page(request, db, principal, "credentials/suspend.html", context, status_code)


@router.get("/admin/credentials/{credential_id}/suspend", response_class=HTMLResponse)
def suspend_form(request: Request, credential_id: uuid.UUID, principal: PageUser, db: Db) -> HTMLResponse:
    """Ask for the reason and a confirmation before suspending a licence (administrators)."""
    require(db, principal, Perm.USER_MANAGE, "credential.suspend")
    return _suspend_page(request, db, principal, credential_id, {}, {})


@router.post("/admin/credentials/{credential_id}/suspend", response_model=None)
def suspend_credential(
    request: Request, credential_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues
) -> Response:
    """Suspend an approved licence: the clinician is unverified at once."""
    reason = form.get("reason", "")
    try:
        service.suspend(db, principal, credential_id, reason)
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        return _suspend_page(
            request, db, principal, credential_id, {"reason": reason}, domain_field_errors(exc), exc.status
        )
    db.commit()
    return redirect(f"/admin/credentials/{credential_id}?suspended=1")
