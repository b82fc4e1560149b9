"""Search pages: ``/documents/search`` (a query box, "this patient" or "my patients", highlighted hits,
paging), ``/documents/search/open/{record_id}`` (a found document's text with the query's terms
highlighted beside its file) and ``/documents/search/open/{record_id}/file`` (that file, a PDF with the
terms highlighted in it, for the viewer's frame)."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from caresync.core.errors import ValidationFailed
from caresync.core.rbac import Perm, require
from caresync.documents.search import service
from caresync.documents.search.api import hits_out
from caresync.identity import patients
from caresync.records.api import stored_file_response
from caresync.records.service import file_extension
from caresync.web.deps import Db
from caresync.web.pagekit import PageUser, render_page

router = APIRouter(include_in_schema=False)
T = "documents/search"
SEARCH = "/documents/search"
PAGE_SIZE = 10
EXAMPLES = ("chest pain, short of breath at night", "dyspnoea", "heart attack", "fever and cough")


def _url(q: str, patient_id: uuid.UUID | None, offset: int) -> str:
    params: dict[str, str | int] = {"q": q}
    if patient_id is not None:
        params["patient_id"] = str(patient_id)
    if offset:
        params["offset"] = offset
    return f"{SEARCH}?{urlencode(params)}"


@router.get(SEARCH)
def search_page(
    request: Request,
    db: Db,
    principal: PageUser,
    q: str = "",
    patient_id: uuid.UUID | None = None,
    offset: int = 0,
) -> Response:
    """The search box and, for a query, one page of highlighted hits."""
    require(db, principal, Perm.PATIENT_READ, service.SEARCH_ACTION)
    patient = patients.get_patient(db, principal, patient_id) if patient_id is not None else None
    context: dict[str, object] = {
        "q": q,
        "patient": patient,
        "examples": [(e, _url(e, patient_id, 0)) for e in EXAMPLES],
        "hits": [],
        "error": "",
        "searched": False,
        "own_record": principal.role == "patient",
    }
    status = 200
    if q.strip():
        try:
            offset = max(0, min(offset, service.MAX_RESULTS - PAGE_SIZE))
            results = service.search(db, principal, q, patient_id=patient_id, limit=PAGE_SIZE, offset=offset)
        except ValidationFailed as exc:
            context["error"], status = exc.detail, exc.status
        else:
            context |= {
                "searched": True,
                "hits": hits_out(db, q, results),
                "patients": results.patients,
                "break_glass": results.break_glass,
                "first": offset + 1,
                "previous_url": _url(q, patient_id, max(0, offset - PAGE_SIZE)) if offset else "",
                "next_url": _url(q, patient_id, offset + PAGE_SIZE) if results.has_more else "",
            }
    return render_page(request, db, principal, f"{T}/search.html", context, status)


@router.get(f"{SEARCH}/open/{{record_id}}")
def open_page(request: Request, db: Db, principal: PageUser, record_id: uuid.UUID, q: str = "") -> Response:
    """A found document: its text with the query's terms highlighted, beside the file itself."""
    try:
        opened = service.open_document(db, principal, record_id, q)
    except ValidationFailed:  # an unusable query: show the document without highlights
        opened = service.open_document(db, principal, record_id, "")
    back = _url(q, None, 0) if q.strip() else SEARCH
    context = {"doc": opened, "record": opened.record, "q": q, "back": back}
    return render_page(request, db, principal, f"{T}/open.html", context)


@router.get(f"{SEARCH}/open/{{record_id}}/file")
def open_file(db: Db, principal: PageUser, record_id: uuid.UUID, q: str = "") -> Response:
    """The found document's file for the viewer's frame: a PDF carries the query's terms highlighted."""
    try:
        record, data = service.highlighted_file(db, principal, record_id, q)
    except ValidationFailed:  # an unusable query: the file without highlights
        record, data = service.highlighted_file(db, principal, record_id, "")
    name = f"record-{record.id}.{file_extension(record.media_type)}"
    response = stored_file_response(name, record.media_type, data, download=False)
    db.commit()
    return response
