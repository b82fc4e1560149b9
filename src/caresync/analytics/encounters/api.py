"""Encounter endpoints under ``/api/v1/encounters``: record a visit (doctors and nurses, for patients in
their care), a patient's visits (paged) and one visit."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from caresync.analytics.encounters import service
from caresync.analytics.encounters.schemas import EncounterIn, EncounterOut, EncounterPage
from caresync.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/encounters", tags=["analytics"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EncounterOut)
def record_encounter(body: EncounterIn, principal: CurrentUser, db: Db) -> EncounterOut:
    """Record a visit's diagnoses (ICD-10, principal first), department, outcome, start time and vital
    signs for a patient in your care. The organisation's analytics dashboards are told at once."""
    out = EncounterOut.of(service.record_encounter(db, principal, body.draft()))
    db.commit()
    return out


@router.get("", response_model=EncounterPage)
def list_encounters(
    principal: CurrentUser,
    db: Db,
    patient_id: uuid.UUID,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> EncounterPage:
    """The patient's visits, newest first (``next_cursor`` fetches the next page)."""
    page = service.list_encounters(db, principal, patient_id, limit=limit, cursor=cursor)
    out = EncounterPage(items=[EncounterOut.of(e) for e in page.items], next_cursor=page.next_cursor)
    db.commit()
    return out


@router.get("/{encounter_id}", response_model=EncounterOut)
def read_encounter(encounter_id: uuid.UUID, principal: CurrentUser, db: Db) -> EncounterOut:
    """One visit."""
    out = EncounterOut.of(service.get_encounter(db, principal, encounter_id))
    db.commit()
    return out
