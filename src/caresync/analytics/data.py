"""The one DataFrame shape every analysis reads, from the database or from :mod:`.synthetic`.

One row per (encounter, diagnosis), columns :data:`FRAME_COLUMNS`:

- ``encounter_id``, ``patient_id``, ``organisation_id`` (UUIDs as strings in synthetic data is fine too),
- ``department`` and ``outcome`` (values of :mod:`.rules`), ``code`` (ICD-10), ``principal`` (bool),
- ``started_at`` (pandas ``datetime64[ns, UTC]``), ``sex`` (``female``/``male``/...), ``age`` (whole years
  at the encounter),
- vital signs ``systolic_mmhg``, ``heart_rate_bpm``, ``temperature_c``, ``spo2_pct`` (float, NaN if not
  taken).

:func:`analytics_scope` decides which organisations a user's analyses cover; :func:`encounter_frame` loads
them. Aggregates never name patients: the frame stays inside the analytics services.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.core.auth import Principal
from caresync.core.rbac import Perm, require
from caresync.identity.models import Patient

FRAME_COLUMNS = (
    "encounter_id",
    "patient_id",
    "organisation_id",
    "department",
    "started_at",
    "outcome",
    "sex",
    "age",
    "code",
    "principal",
    "systolic_mmhg",
    "heart_rate_bpm",
    "temperature_c",
    "spo2_pct",
)


def analytics_scope(session: Session, principal: Principal, action: str) -> list[uuid.UUID] | None:
    """The organisations whose activity this user's analyses cover (``None``: all, for the system actor).
    403 (audited) without ``analytics:view``; staff see their own organisation."""
    require(session, principal, Perm.ANALYTICS_VIEW, action)
    if principal.is_system:
        return None
    return [principal.organisation_id] if principal.organisation_id else []


def empty_frame() -> pd.DataFrame:
    """A frame with the right columns and no rows."""
    frame = pd.DataFrame({column: [] for column in FRAME_COLUMNS})
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def encounter_frame(
    session: Session,
    *,
    organisation_ids: Collection[uuid.UUID] | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Encounters of these organisations (``None``: all) in ``[start, end)``, one row per diagnosis.
    Callers check permission first (:func:`analytics_scope`)."""
    query = (
        select(
            Encounter.id,
            Encounter.patient_id,
            Encounter.organisation_id,
            Encounter.department,
            Encounter.started_at,
            Encounter.outcome,
            Patient.sex,
            Patient.birth_date,
            EncounterDiagnosis.code,
            EncounterDiagnosis.principal,
            Encounter.systolic_mmhg,
            Encounter.heart_rate_bpm,
            Encounter.temperature_c,
            Encounter.spo2_pct,
        )
        .join(EncounterDiagnosis, EncounterDiagnosis.encounter_id == Encounter.id)
        .join(Patient, Patient.id == Encounter.patient_id)
    )
    if organisation_ids is not None:
        query = query.where(Encounter.organisation_id.in_(list(organisation_ids)))
    if start is not None:
        query = query.where(Encounter.started_at >= start)
    if end is not None:
        query = query.where(Encounter.started_at < end)
    rows = session.execute(query).all()
    if not rows:
        return empty_frame()
    raw = pd.DataFrame(
        rows,
        columns=[
            "encounter_id",
            "patient_id",
            "organisation_id",
            "department",
            "started_at",
            "outcome",
            "sex",
            "birth_date",
            "code",
            "principal",
            "systolic_mmhg",
            "heart_rate_bpm",
            "temperature_c",
            "spo2_pct",
        ],
    )
    raw["started_at"] = pd.to_datetime(raw["started_at"], utc=True)
    raw["age"] = ages_at(raw["birth_date"], raw["started_at"])
    for column in ("systolic_mmhg", "heart_rate_bpm", "temperature_c", "spo2_pct"):
        raw[column] = raw[column].astype("float64")
    return raw[list(FRAME_COLUMNS)]


def ages_at(birth_dates: pd.Series, moments: pd.Series) -> pd.Series:
    """Whole years between each birth date and each moment (birthdays counted exactly)."""
    born = pd.to_datetime(birth_dates)
    when = moments.dt.tz_convert(None) if moments.dt.tz is not None else moments
    had_birthday = (when.dt.month > born.dt.month) | (
        (when.dt.month == born.dt.month) & (when.dt.day >= born.dt.day)
    )
    return (when.dt.year - born.dt.year - (~had_birthday).astype(int)).astype(int)
