"""Blood request endpoints under ``/api/v1/bloodbank/requests``.

Clinicians (doctors, nurses) order blood for a patient in their care, follow it, cancel it and confirm
transfusions; the blood bank staff of the same organisation work the queue: proposals, allocation (409
naming the unit when another request took it first; nothing is half-allocated), emergency release,
crossmatch, issue and returns. Another organisation's request is 404, like a missing one.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from caresync.bloodbank.requests import service
from caresync.bloodbank.requests.schemas import (
    AllocateIn,
    CancelIn,
    CrossmatchIn,
    IssueIn,
    RequestDetailOut,
    RequestIn,
    RequestOut,
    RequestPage,
    RequestSummaryOut,
    ReturnIn,
    StatusFilter,
    TransfusionIn,
    UnitOut,
    UnitsOut,
    UrgencyName,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank"])
MAX_PROPOSALS = 100


@router.post("/requests", status_code=status.HTTP_201_CREATED, response_model=RequestOut)
def create_request(body: RequestIn, principal: CurrentUser, db: Db) -> RequestOut:
    """Clinicians: order blood for a patient they care for (or broke the glass for)."""
    out = RequestOut.of(service.create_request(db, principal, body.order()))
    db.commit()
    return out


@router.get("/requests", response_model=RequestPage)
def list_requests(
    principal: CurrentUser,
    db: Db,
    status: StatusFilter | None = None,
    urgency: UrgencyName | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=300)] = None,
) -> RequestPage:
    """The organisation's requests the caller may see, emergency first then by time needed
    (``status=queue``: open, allocated and issued)."""
    page = service.list_requests(db, principal, service.Filters(status, urgency), limit=limit, cursor=cursor)
    held = service.held_counts(db, (r.id for r in page.items))
    items = [
        RequestSummaryOut(**RequestOut.of(r).model_dump(), units_held=held.get(r.id, 0)) for r in page.items
    ]
    out = RequestPage(items=items, next_cursor=page.next_cursor)
    db.commit()
    return out


@router.get("/requests/{request_id}", response_model=RequestDetailOut)
def get_request(request_id: uuid.UUID, principal: CurrentUser, db: Db) -> RequestDetailOut:
    """One request with the units it holds, what it still needs and every unit step taken for it."""
    out = RequestDetailOut.of_view(service.get_request(db, principal, request_id))
    db.commit()
    return out


@router.post("/requests/{request_id}/cancel", response_model=RequestOut)
def cancel_request(request_id: uuid.UUID, body: CancelIn, principal: CurrentUser, db: Db) -> RequestOut:
    """Cancel an open or allocated request (its clinicians or the blood bank); held units go back to
    stock."""
    out = RequestOut.of(service.cancel(db, principal, request_id, body.reason))
    db.commit()
    return out


@router.get("/requests/{request_id}/proposals", response_model=UnitsOut)
def proposals(
    request_id: uuid.UUID,
    principal: CurrentUser,
    db: Db,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PROPOSALS)] = None,
) -> UnitsOut:
    """Blood bank staff: the compatible available units to offer, best first (as many as the request
    still needs, or ``limit``)."""
    out = UnitsOut.of(service.proposals(db, principal, request_id, limit=limit))
    db.commit()
    return out


@router.post("/requests/{request_id}/allocate", response_model=UnitsOut)
def allocate(request_id: uuid.UUID, body: AllocateIn, principal: CurrentUser, db: Db) -> UnitsOut:
    """Blood bank staff: reserve the chosen units, all or none."""
    out = UnitsOut.of(service.allocate(db, principal, request_id, body.unit_ids))
    db.commit()
    return out


@router.post("/requests/{request_id}/auto-allocate", response_model=UnitsOut)
def auto_allocate(request_id: uuid.UUID, principal: CurrentUser, db: Db) -> UnitsOut:
    """Blood bank staff: reserve the best proposed units."""
    out = UnitsOut.of(service.auto_allocate(db, principal, request_id))
    db.commit()
    return out


@router.post("/requests/{request_id}/emergency-release", response_model=UnitsOut)
def emergency_release(request_id: uuid.UUID, principal: CurrentUser, db: Db) -> UnitsOut:
    """Blood bank staff: issue uncrossmatched group O red cells (or group AB plasma) for an emergency
    request whose patient's group is unknown."""
    out = UnitsOut.of(service.emergency_release(db, principal, request_id))
    db.commit()
    return out


@router.post("/requests/{request_id}/crossmatch", response_model=UnitOut)
def crossmatch(request_id: uuid.UUID, body: CrossmatchIn, principal: CurrentUser, db: Db) -> UnitOut:
    """Blood bank staff: record a held unit's crossmatch (incompatible units go back to stock)."""
    unit = service.crossmatch(
        db, principal, request_id, body.unit_id, compatible=body.compatible, note=body.note
    )
    out = UnitOut.of(unit)
    db.commit()
    return out


@router.post("/requests/{request_id}/issue", response_model=UnitsOut)
def issue(request_id: uuid.UUID, body: IssueIn, principal: CurrentUser, db: Db) -> UnitsOut:
    """Blood bank staff: issue held units to the ward (red cells must be crossmatched)."""
    out = UnitsOut.of(service.issue(db, principal, request_id, body.unit_ids))
    db.commit()
    return out


@router.post("/requests/{request_id}/return", response_model=UnitOut)
def return_unit(request_id: uuid.UUID, body: ReturnIn, principal: CurrentUser, db: Db) -> UnitOut:
    """Blood bank staff: take an issued unit back (to stock within the return window and kept cold,
    otherwise discarded)."""
    unit = service.return_unit(
        db, principal, request_id, body.unit_id, kept_cold=body.kept_cold, reason=body.reason
    )
    out = UnitOut.of(unit)
    db.commit()
    return out


@router.post("/requests/{request_id}/transfusions", response_model=UnitOut)
def confirm_transfusion(
    request_id: uuid.UUID, body: TransfusionIn, principal: CurrentUser, db: Db
) -> UnitOut:
    """Clinicians: confirm an issued unit was transfused."""
    out = UnitOut.of(service.confirm_transfusion(db, principal, request_id, body.unit_id))
    db.commit()
    return out
