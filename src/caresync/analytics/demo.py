"""Demo clinical activity: years of synthetic encounters for the demo's own patients.

The patients of each hospital and clinic (through their care relationships) visit that organisation; their
real sex and birth date drive which conditions they get (:func:`caresync.analytics.synthetic.simulate`).
The largest organisation (Riverside, the demo administrator's hospital) has the injected outbreak, ongoing
at the end of the data. Rows go in with bulk inserts; loading again replaces the synthetic encounters.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from caresync.analytics import synthetic
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.core import audit
from caresync.core.auth import system_principal
from caresync.db import utcnow
from caresync.identity.models import CareRelationship, Organisation, Patient

CARE_KINDS = ("hospital", "clinic")
INTEGER_VITALS = ("systolic_mmhg", "heart_rate_bpm", "spo2_pct")
BATCH = 20_000  # rows per INSERT round trip group
# A clinic sees about one in PATIENTS_PER_DAILY_VISIT of its patients on a given day (so a small demo
# stays small and loads fast), within these bounds per organisation.
PATIENTS_PER_DAILY_VISIT = 25
VISITS_PER_DAY = (2.0, 20.0)


def load(session: Session, *, years: int, seed: int) -> int:
    """Replace the synthetic encounters with ``years`` of them up to today for the patients of every
    hospital and clinic (in the caller's transaction); returns how many encounters were written."""
    patients = _demo_patients(session)
    session.execute(delete(Encounter).where(Encounter.source == "synthetic"))
    if patients.empty:
        return 0
    by_size = patients["organisation_key"].value_counts()
    organisation_keys = sorted(by_size.index, key=lambda key: (-by_size[key], key))
    rng = np.random.default_rng(seed)
    per_day = len(patients) / len(organisation_keys) / PATIENTS_PER_DAILY_VISIT
    visits_per_day = min(max(per_day, VISITS_PER_DAY[0]), VISITS_PER_DAY[1])
    data = synthetic.simulate(
        patients, organisation_keys, rng, years=years, end=utcnow().date(), visits_per_day=visits_per_day
    )
    ids = write_encounters(session, data.encounters, data.diagnoses, rng)
    audit.record(
        session,
        system_principal("caresync demo"),
        "analytics.demo.load",
        resource_type="Encounter",
        detail={
            "encounters": len(ids),
            "years": years,
            "seed": seed,
            "outbreak": {
                "code": data.outbreak.code,
                "organisation_id": data.outbreak.organisation_key,
                "start": data.outbreak.start.isoformat(),
            },
        },
    )
    return len(ids)


def write_encounters(
    session: Session, encounters: pd.DataFrame, diagnoses: pd.DataFrame, rng: np.random.Generator
) -> list[uuid.UUID]:
    """Bulk-insert synthetic encounters (``patient_key``/``organisation_key`` holding real ids) and their
    diagnoses, in the caller's transaction; returns the new encounters' ids (drawn from ``rng``)."""
    ids = _uuids(rng, len(encounters))
    key_to_id = dict(zip(encounters["encounter_key"].tolist(), ids, strict=True))
    _insert(session, Encounter, _encounter_rows(encounters, ids))
    _insert(
        session,
        EncounterDiagnosis,
        _rows(
            {
                "encounter_id": [key_to_id[key] for key in diagnoses["encounter_key"].tolist()],
                "code": diagnoses["code"].tolist(),
                "principal": diagnoses["principal"].tolist(),
            }
        ),
    )
    return ids


def _demo_patients(session: Session) -> pd.DataFrame:
    """Each patient cared for at a hospital or clinic, once, at their home organisation: the one of their
    demo care team (``reason == "demo"``), rather than one they only had an appointment at."""
    rows = session.execute(
        select(Patient.id, Patient.sex, Patient.birth_date, CareRelationship.organisation_id)
        .join(CareRelationship, CareRelationship.patient_id == Patient.id)
        .join(Organisation, Organisation.id == CareRelationship.organisation_id)
        .where(Organisation.kind.in_(CARE_KINDS), CareRelationship.ended_at.is_(None))
        .order_by(Patient.id, CareRelationship.reason != "demo", CareRelationship.organisation_id)
    ).all()
    frame = pd.DataFrame(rows, columns=["patient_key", "sex", "birth_date", "organisation_key"])
    frame = frame.drop_duplicates("patient_key").reset_index(drop=True)
    for column in ("patient_key", "organisation_key"):
        frame[column] = frame[column].astype(str)
    return frame


def _uuids(rng: np.random.Generator, count: int) -> list[uuid.UUID]:
    """``count`` random (version 4) UUIDs from the seeded generator."""
    raw = rng.bytes(16 * count)
    return [uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4) for i in range(count)]


def _encounter_rows(encounters: pd.DataFrame, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Insert parameters for :class:`Encounter` (NaN vital signs become NULL)."""
    started = encounters["started_at"].dt.to_pydatetime()
    patients, organisations = encounters["patient_key"].tolist(), encounters["organisation_key"].tolist()
    as_uuid = {key: uuid.UUID(key) for key in {*patients, *organisations}}
    columns: dict[str, list[Any]] = {
        "id": ids,
        "patient_id": [as_uuid[key] for key in patients],
        "organisation_id": [as_uuid[key] for key in organisations],
        "department": encounters["department"].tolist(),
        "started_at": list(started),
        "created_at": list(started),
        "outcome": encounters["outcome"].tolist(),
        "source": ["synthetic"] * len(ids),
    }
    for column in (*INTEGER_VITALS, "temperature_c"):
        values = encounters[column].to_numpy(dtype=float)
        kind = int if column in INTEGER_VITALS else float
        columns[column] = [None if np.isnan(v) else kind(v) for v in values.tolist()]
    return _rows(columns)


def _rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Column lists as insert parameters, one dict per row."""
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


def _insert(
    session: Session, model: type[Encounter] | type[EncounterDiagnosis], rows: list[dict[str, Any]]
) -> None:
    """Bulk insert through the table, one executemany per batch (the ORM's bulk path would split the rows
    into many statements by which vital signs are missing)."""
    table = cast(Table, model.__table__)
    for offset in range(0, len(rows), BATCH):
        session.execute(insert(table), rows[offset : offset + BATCH])
