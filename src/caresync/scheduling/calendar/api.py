"""Calendar feed endpoints: managing feeds under ``/api/v1/scheduling/calendar-feeds``, an appointment's
``.ics`` file, and the feeds themselves at ``/calendar/{token}.ics`` (the token in the URL is the
credential, as calendar apps send no other)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response, status

from caresync.db import utcnow
from caresync.scheduling.calendar import service
from caresync.scheduling.calendar.schemas import CalendarFeedCreatedOut, CalendarFeedOut
from caresync.web.deps import CurrentUser, Db, client_ip

router = APIRouter(prefix="/api/v1/scheduling", tags=["calendar"])
public_router = APIRouter(tags=["calendar"])

CALENDAR_MEDIA_TYPE = "text/calendar; charset=utf-8"
CALENDAR_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "An iCalendar (RFC 5545) file"}
}


@router.post("/calendar-feeds", status_code=status.HTTP_201_CREATED, response_model=CalendarFeedCreatedOut)
def create_feed(principal: CurrentUser, db: Db) -> CalendarFeedCreatedOut:
    """Create a private calendar feed URL of your appointments (patients, and practitioners with a
    directory profile). The URL is shown only in this response."""
    created = service.create_feed(db, principal)
    out = CalendarFeedCreatedOut(
        id=created.feed.id, created_at=created.feed.created_at, url=created.url, webcal_url=created.webcal_url
    )
    db.commit()
    return out


@router.get("/calendar-feeds", response_model=list[CalendarFeedOut])
def list_feeds(principal: CurrentUser, db: Db) -> list[CalendarFeedOut]:
    """Your active calendar feeds (without their URLs)."""
    out = [CalendarFeedOut.model_validate(feed) for feed in service.list_feeds(db, principal)]
    db.rollback()
    return out


@router.delete("/calendar-feeds/{feed_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_feed(feed_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Revoke a calendar feed: its URL stops working at once."""
    service.revoke_feed(db, principal, feed_id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/appointments/{appointment_id}/ics", response_class=Response, responses=CALENDAR_RESPONSE)
def appointment_ics(appointment_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Download an appointment as an ``.ics`` file to add it to a calendar."""
    ics = service.appointment_ics(db, principal, appointment_id)
    db.commit()
    return Response(
        ics.content,
        media_type=CALENDAR_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{ics.filename}"',
            "Cache-Control": "no-store",
        },
    )


@public_router.get("/calendar/{token}.ics", response_class=Response, responses=CALENDAR_RESPONSE)
def calendar_feed(token: str, request: Request, db: Db) -> Response:
    """A calendar feed, for calendar apps to subscribe to (the token in the address is the credential)."""
    content = service.feed_calendar(db, token, utcnow(), client_ip=client_ip(request))
    db.commit()
    return Response(
        content,
        media_type=CALENDAR_MEDIA_TYPE,
        headers={"Content-Disposition": 'inline; filename="caresync.ics"', "Cache-Control": "no-store"},
    )
