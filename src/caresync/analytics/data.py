"""The one DataFrame shape every analysis reads, from the database or from :mod:`.synthetic`.

One row per (encounter, diagnosis), columns :data:`FRAME_COLUMNS`:

- ``encounter_id`` (an opaque string key), ``patient_id``, ``organisation_id`` (canonical UUID strings;
  synthetic data may use other string keys),
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
from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from caresync.analytics.cache import ResultCache, data_version
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden
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


def covered_organisations(
    session: Session, principal: Principal, organisation_id: uuid.UUID | None, action: str
) -> list[uuid.UUID] | None:
    """The organisations to analyse (None: all): the caller's scope, or the one asked for, which must be in
    the scope (otherwise 403, audited)."""
    scope = analytics_scope(session, principal, action)
    if organisation_id is None:
        return scope
    if scope is not None and organisation_id not in scope:
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            resource_type="organisation",
            resource_id=organisation_id,
            detail={"reason": "organisation outside the caller's analytics scope"},
        )
        raise Forbidden("You can only analyse the activity of your own organisation.")
    return [organisation_id]


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
    patient_ids: Collection[uuid.UUID] | None = None,
) -> pd.DataFrame:
    """Encounters of these organisations (``None``: all) in ``[start, end)``, one row per diagnosis,
    optionally of some patients only. Callers check permission first (:func:`analytics_scope`, or the
    patient access rule for one patient's encounters)."""
    raw_columns = {  # read as the driver gives them: SQLAlchemy's per-value conversions are the slow part
        "encounter_id": type_coerce(Encounter.id, String),
        "patient_id": type_coerce(Encounter.patient_id, String),
        "organisation_id": type_coerce(Encounter.organisation_id, String),
        "department": Encounter.department,
        "started_at": type_coerce(Encounter.started_at, String),
        "outcome": Encounter.outcome,
        "sex": Patient.sex,
        "birth_date": type_coerce(Patient.birth_date, String),
        "code": EncounterDiagnosis.code,
        "principal": EncounterDiagnosis.principal,
        "systolic_mmhg": Encounter.systolic_mmhg,
        "heart_rate_bpm": Encounter.heart_rate_bpm,
        "temperature_c": Encounter.temperature_c,
        "spo2_pct": Encounter.spo2_pct,
    }
    query = (
        select(*raw_columns.values())
        .join(EncounterDiagnosis, EncounterDiagnosis.encounter_id == Encounter.id)
        .join(Patient, Patient.id == Encounter.patient_id)
    )
    if organisation_ids is not None:
        query = query.where(Encounter.organisation_id.in_(list(organisation_ids)))
    if patient_ids is not None:
        query = query.where(Encounter.patient_id.in_(list(patient_ids)))
    if start is not None:
        query = query.where(Encounter.started_at >= start)
    if end is not None:
        query = query.where(Encounter.started_at < end)
    rows = [tuple(row) for row in session.connection().execute(query)]  # Core rows: no ORM loading
    if not rows:
        return empty_frame()
    raw = pd.DataFrame.from_records(rows, columns=list(raw_columns))
    raw["encounter_id"] = raw["encounter_id"].astype(str)  # a grouping key only: as the driver gives it
    for column in ("patient_id", "organisation_id"):
        raw[column] = canonical_ids(raw[column])
    raw["started_at"] = pd.to_datetime(raw["started_at"], utc=True, format="mixed")
    raw["principal"] = raw["principal"].astype(bool)
    raw["age"] = ages_at(raw["birth_date"], raw["started_at"])
    for column in ("systolic_mmhg", "heart_rate_bpm", "temperature_c", "spo2_pct"):
        raw[column] = raw[column].astype("float64")
    return raw[list(FRAME_COLUMNS)]


FRAMES = ResultCache(max_entries=4)  # a few recent frames: the dashboard's analyses share one load


def shared_encounter_frame(
    session: Session,
    *,
    organisation_ids: Collection[uuid.UUID] | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """:func:`encounter_frame`, loaded once per data version for the analyses that read the same period
    (each caller gets its own copy, free to change)."""
    key = (tuple(sorted(organisation_ids)) if organisation_ids is not None else None, start, end)
    frame = FRAMES.get_or_compute(
        key,
        data_version(session, organisation_ids),
        lambda: encounter_frame(session, organisation_ids=organisation_ids, start=start, end=end),
    )
    return frame.copy()


def canonical_ids(values: pd.Series) -> pd.Series:
    """UUIDs as canonical strings (``8-4-4-4-12``), whether the driver gave UUIDs (PostgreSQL) or the
    32 hex digits SQLite stores; each distinct value is converted once."""
    codes, uniques = pd.factorize(values)
    canonical = [str(uuid.UUID(str(value))) for value in list(uniques)]
    return pd.Series(pd.Categorical.from_codes(codes, categories=canonical), index=values.index).astype(str)


def ages_at(birth_dates: pd.Series, moments: pd.Series) -> pd.Series:
    """Whole years between each birth date and each moment (birthdays counted exactly)."""
    born = pd.to_datetime(birth_dates)
    when = moments.dt.tz_convert(None) if moments.dt.tz is not None else moments
    had_birthday = (when.dt.month > born.dt.month) | (
        (when.dt.month == born.dt.month) & (when.dt.day >= born.dt.day)
    )
    return (when.dt.year - born.dt.year - (~had_birthday).astype(int)).astype(int)
