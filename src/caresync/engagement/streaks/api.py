"""Activity endpoints under ``/api/v1/activities``: patients log today's activities and undo today's
entries; patients and their care team read entries, streaks and badges."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from caresync.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from caresync.engagement.streaks import service
from caresync.engagement.streaks.schemas import (
    Activity,
    BadgeOut,
    EntriesOut,
    EntryOut,
    LoggedOut,
    LogIn,
    StreaksOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/activities", tags=["activities"])
PatientParam = Annotated[
    uuid.UUID | None, Query(description="clinicians: the patient; patients: omit (their own)")
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=LoggedOut,
    responses={200: {"model": LoggedOut, "description": "already logged today: the day's entry"}},
)
def log_activity(body: LogIn, principal: CurrentUser, db: Db, response: Response) -> LoggedOut:
    """Patients: log an activity for their local today (201; 200 with the existing entry when it is already
    logged today). The answer names any badge this log earned."""
    logged = service.log_activity(db, principal, body.activity, body.name, body.amount)
    out = LoggedOut.of_logged(logged)
    if not logged.created:
        response.status_code = status.HTTP_200_OK
    db.commit()
    return out


@router.get("", response_model=EntriesOut)
def list_entries(
    principal: CurrentUser,
    db: Db,
    patient_id: PatientParam = None,
    from_: Annotated[date | None, Query(alias="from", description="first local day (inclusive)")] = None,
    to: Annotated[date | None, Query(description="last local day (inclusive)")] = None,
    activity: Activity | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> EntriesOut:
    """Logged activities, newest day first, between two local days, paged."""
    page = service.entries(
        db, principal, patient_id, start=from_, end=to, activity=activity, limit=limit, cursor=cursor
    )
    out = EntriesOut(items=[EntryOut.of(e) for e in page.items], next_cursor=page.next_cursor)
    db.commit()  # the read is audited
    return out


@router.get("/streaks", response_model=StreaksOut)
def read_streaks(principal: CurrentUser, db: Db, patient_id: PatientParam = None) -> StreaksOut:
    """Per activity: current and longest streak, today's state, badges and the next badge."""
    out = StreaksOut.of(service.streaks(db, principal, patient_id))
    db.commit()
    return out


@router.get("/badges", response_model=list[BadgeOut])
def read_badges(principal: CurrentUser, db: Db, patient_id: PatientParam = None) -> list[BadgeOut]:
    """Every badge earned, newest first."""
    out = [BadgeOut.of(b) for b in service.badges(db, principal, patient_id)]
    db.commit()
    return out


@router.delete("/{log_id}", status_code=status.HTTP_204_NO_CONTENT)
def undo(log_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Patients: remove one of today's entries (409 for earlier days). Badges already earned stay."""
    service.undo(db, principal, log_id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
