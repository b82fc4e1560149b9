"""Factories for the analytics tests: encounters written straight to the database (the encounters service
has its own tests), and small frames of the shape :mod:`caresync.analytics.data` produces."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import pytest

from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.db import session_factory, transaction, utcnow


def add_encounter(
    patient_id: uuid.UUID,
    organisation_id: uuid.UUID,
    started_at: datetime,
    codes: Sequence[str] = ("J11",),
    *,
    outcome: str = "discharged",
    department: str = "general-practice",
    **vitals: Any,
) -> uuid.UUID:
    """One committed encounter with its diagnoses (the first one principal); returns its id."""
    with transaction(session_factory()) as s:
        encounter = Encounter(
            patient_id=patient_id,
            organisation_id=organisation_id,
            department=department,
            started_at=started_at,
            outcome=outcome,
            source="app",
            created_at=utcnow(),
            **vitals,
        )
        encounter.diagnoses = [
            EncounterDiagnosis(code=code, principal=index == 0) for index, code in enumerate(codes)
        ]
        s.add(encounter)
        s.flush()
        return encounter.id


@pytest.fixture
def encounter() -> Callable[..., uuid.UUID]:
    """``encounter(patient_id, organisation_id, started_at, codes=("J11",), outcome=..., **vitals)``."""
    return add_encounter
