"""Calendar feed endpoints: managing feeds under ``/api/v1/scheduling/calendar-feeds``, and the feeds
themselves at ``/calendar/{token}.ics`` (the token in the URL is the credential, as calendar apps send no
other)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/scheduling", tags=["calendar"])
public_router = APIRouter(tags=["calendar"])
