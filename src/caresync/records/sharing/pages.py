"""Share pages: the patient's share links (create, see uses, revoke after confirming), and the public pages
whoever holds a link or code sees, without an account.

A code is entered in a form posted to ``/share``; on success the browser is redirected to
``/share/<view key>``, a signed key valid for an hour (see :mod:`caresync.records.sharing.service`). So the
code never appears in an address or in the browser's history, and the view's preview and download links
keep working for that hour without asking again."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from caresync.core.auth import Principal
from caresync.core.errors import DomainError, NotFound
from caresync.records import service as records
from caresync.records.rules import CATEGORIES
from caresync.records.sharing import service
from caresync.records.sharing.schemas import SHARED_API
from caresync.web.deps import Db, FormValues, client_ip
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
EXPIRY_CHOICES = (
    (1, "1 hour"),
    (24, "1 day"),
    (72, "3 days"),
    (168, "7 days"),
    (336, "14 days"),
    (720, "30 days"),
)
DEFAULT_HOURS = 168
PICKER_LIMIT = 200  # records offered in the form, newest first
PUBLIC_HEADERS = {"X-Robots-Tag": "noindex, nofollow"}


async def _chosen_records(request: Request) -> list[str]:
    """Every ticked ``record_id`` checkbox (``FormValues`` keeps one value per name)."""
    form = await request.form()
    return [value for value in form.getlist("record_id") if isinstance(value, str)]


ChosenRecords = Annotated[list[str], Depends(_chosen_records)]


def _own_patient_id(principal: Principal) -> uuid.UUID:
    if principal.role != "patient" or principal.patient_id is None:
        raise NotFound("Share links are for patients sharing their own records.")
    return principal.patient_id


# --- the patient's pages ----------------------------------------------------------------------------------


@router.get("/me/shares", response_class=HTMLResponse)
def my_shares(request: Request, principal: PageUser, db: Db, cursor: str | None = None) -> HTMLResponse:
    """The patient's share links, newest first, with status, uses and when last used."""
    page = service.list_shares(db, principal, _own_patient_id(principal), limit=20, cursor=cursor)
    context = {
        "shares": [(share, service.share_status(share)) for share in page.items],
        "next_url": f"/me/shares?cursor={page.next_cursor}" if page.next_cursor else "",
        "first_url": "/me/shares" if cursor else "",
        "revoked": request.query_params.get("revoked") == "1",
    }
    return render_page(request, db, principal, "sharing/list.html", context)


@router.get("/me/shares/new", response_class=HTMLResponse)
def new_share_form(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """Choose records (``?record=<id>`` pre-ticks one), a label and how long the share lasts."""
    values = {"label": "", "expires_in_hours": str(DEFAULT_HOURS)}
    chosen = set(request.query_params.getlist("record"))
    return _share_form(request, db, principal, values, chosen, {})


@router.post("/me/shares/new", response_model=None)
def create_share(
    request: Request, principal: PageUser, db: Db, form: FormValues, chosen: ChosenRecords
) -> Response:
    """Create the share and show its link and code, this once."""
    patient_id = _own_patient_id(principal)
    values = {"label": form.get("label", "")[:120], "expires_in_hours": form.get("expires_in_hours", "")}
    try:
        record_ids = [uuid.UUID(value) for value in chosen]
    except ValueError:
        return _share_form(
            request, db, principal, values, set(chosen), {"record_ids": "Choose records from the list."}, 422
        )
    hours = int(values["expires_in_hours"]) if values["expires_in_hours"].isdigit() else None
    if hours not in dict(EXPIRY_CHOICES):
        return _share_form(
            request,
            db,
            principal,
            values,
            set(chosen),
            {"expires_in_hours": "Choose how long the link works."},
            422,
        )
    try:
        created = service.create_share(
            db, principal, patient_id, record_ids, expires_in_hours=hours, label=values["label"]
        )
    except DomainError as exc:
        db.rollback()
        if exc.status in (403, 404):
            raise
        return _share_form(request, db, principal, values, set(chosen), domain_field_errors(exc), exc.status)
    context = {"created": created, "code_url": service.code_page_url()}
    return render_page(request, db, principal, "sharing/created.html", context)


def _share_form(
    request: Request,
    db: Db,
    principal: Principal,
    values: dict[str, str],
    chosen: set[str],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    timeline = records.timeline(db, principal, _own_patient_id(principal), limit=PICKER_LIMIT)
    context = {
        "records": timeline.page.items,
        "superseded": timeline.superseded,
        "more": timeline.page.next_cursor is not None,
        "labels": CATEGORIES,
        "chosen": chosen,
        "values": values,
        "errors": errors,
        "expiry_choices": EXPIRY_CHOICES,
        "max_records": service.MAX_RECORDS,
    }
    return render_page(request, db, principal, "sharing/new.html", context, status_code)


@router.get("/me/shares/{share_id}/revoke", response_class=HTMLResponse)
def confirm_revoke(request: Request, share_id: uuid.UUID, principal: PageUser, db: Db) -> HTMLResponse:
    """Ask before withdrawing a share."""
    share = service.get_share(db, principal, share_id)
    context = {"share": share, "status": service.share_status(share), "labels": CATEGORIES}
    return render_page(request, db, principal, "sharing/revoke.html", context)


@router.post("/me/shares/{share_id}/revoke", response_model=None)
def revoke_share(share_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Withdraw the share: its link and code stop working at once."""
    service.revoke_share(db, principal, share_id)
    db.commit()
    return redirect("/me/shares?revoked=1")


# --- public pages (no account) ----------------------------------------------------------------------------


@router.get("/share", response_class=HTMLResponse)
def code_form(request: Request, db: Db) -> HTMLResponse:
    """Enter a share code."""
    return _public(request, db, "sharing/code.html", {"errors": {}, "code": ""})


@router.post("/share", response_model=None)
def redeem_code(request: Request, db: Db, form: FormValues) -> Response:
    """Check the code, then show the share under a short-lived view key (never the code) in the address."""
    code = form.get("code", "")[:40]
    try:
        view_key = service.redeem_code(db, code, client_ip(request))
    except DomainError as exc:
        db.rollback()
        context = {"errors": {"code": exc.detail}, "code": code}
        return _public(request, db, "sharing/code.html", context, exc.status)
    db.commit()
    return redirect(f"/share/{view_key.key}")


@router.get("/share/{key}", response_class=HTMLResponse)
def shared_view(request: Request, key: str, db: Db) -> HTMLResponse:
    """The shared records, each with whether it verified, and preview and download links."""
    try:
        view = service.open_share(db, key[:200], client_ip(request))
    except DomainError as exc:
        return _unavailable(request, db, exc)
    context = {
        "view": view,
        "labels": CATEGORIES,
        "file_base": f"{SHARED_API}/{view.key}/records",
        "timed": view.key_expires_at < view.share.expires_at,
    }
    return _public(request, db, "sharing/view.html", context)


@router.get("/share/{key}/records/{record_id}", response_class=HTMLResponse)
def shared_record(request: Request, key: str, record_id: uuid.UUID, db: Db) -> HTMLResponse:
    """One shared record shown in the page: an image, a PDF in a frame, or text. Images and PDFs are read
    (and audited) by the frame's own request; text is read here."""
    try:
        _share, record = service.shared_record(db, key[:200], record_id, client_ip(request))
        text = None
        if record.media_type == "text/plain":
            _record, data = service.shared_file(db, key[:200], record_id, client_ip(request))
            text = data.decode("utf-8", errors="replace")
    except DomainError as exc:
        return _unavailable(request, db, exc)
    context = {
        "record": record,
        "text": text,
        "key": key,
        "labels": CATEGORIES,
        "file_url": f"{SHARED_API}/{key}/records/{record.id}/file",
    }
    return _public(request, db, "sharing/record.html", context)


def _unavailable(request: Request, db: Db, exc: DomainError) -> HTMLResponse:
    db.rollback()
    context = {"status": exc.status, "title": exc.title, "detail": exc.detail}
    return _public(request, db, "sharing/unavailable.html", context, exc.status)


def _public(
    request: Request, db: Db, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A page for whoever holds a share: no navigation, and kept out of search engines."""
    response = render_page(request, db, None, template, context, status_code)
    response.headers.update(PUBLIC_HEADERS)
    return response
