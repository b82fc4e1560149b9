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

The dashboards' analyses read :func:`shared_encounter_frame` instead: each scope's encounters are held in
memory (:data:`FRAMES`), loaded whole once and then only the newly recorded ones appended, in a compact
form of the same values (:func:`compacted`: ``encounter_id`` as int64 keys, the labels as categoricals),
which groups and deduplicates many times faster than strings.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from sqlalchemy import ColumnElement, String, func, select, type_coerce
from sqlalchemy.orm import Session

from caresync.analytics.cache import DataState, data_state
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
MAX_SCOPES = 4  # scopes whose frames stay in memory (each worker process keeps its own)
FULL_RELOAD_SECONDS = 15 * 60  # the longest a frame is only appended to before it is reloaded whole


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


ENCOUNTER_COLUMNS = {  # read as the driver gives them: SQLAlchemy's per-value conversions are the slow part
    "encounter_id": type_coerce(Encounter.id, String),
    "patient_id": type_coerce(Encounter.patient_id, String),
    "organisation_id": type_coerce(Encounter.organisation_id, String),
    "department": Encounter.department,
    "started_at": type_coerce(Encounter.started_at, String),
    "outcome": Encounter.outcome,
    "code": EncounterDiagnosis.code,
    "principal": EncounterDiagnosis.principal,
    "systolic_mmhg": Encounter.systolic_mmhg,
    "heart_rate_bpm": Encounter.heart_rate_bpm,
    "temperature_c": Encounter.temperature_c,
    "spo2_pct": Encounter.spo2_pct,
}
LABEL_COLUMNS = ("patient_id", "organisation_id", "department", "outcome", "sex", "code")
VITAL_SIGNS = ("systolic_mmhg", "heart_rate_bpm", "temperature_c", "spo2_pct")
PATIENT_CHUNK = 5000  # patients looked up per query (bound parameters stay well under the drivers' limits)


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
    return _load(session, _in_scope(organisation_ids, start=start, end=end, patient_ids=patient_ids))


def _in_scope(
    organisation_ids: Collection[uuid.UUID] | None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    patient_ids: Collection[uuid.UUID] | None = None,
    recorded_after: datetime | None = None,
    recorded_until: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """The conditions on encounters: organisations, patients, ``started_at`` in ``[start, end)`` and
    ``created_at`` in ``(recorded_after, recorded_until]`` (each None: no condition)."""
    conditions: list[ColumnElement[bool]] = []
    if organisation_ids is not None:
        conditions.append(Encounter.organisation_id.in_(list(organisation_ids)))
    if patient_ids is not None:
        conditions.append(Encounter.patient_id.in_(list(patient_ids)))
    if start is not None:
        conditions.append(Encounter.started_at >= start)
    if end is not None:
        conditions.append(Encounter.started_at < end)
    if recorded_after is not None:
        conditions.append(Encounter.created_at > recorded_after)
    if recorded_until is not None:
        conditions.append(Encounter.created_at <= recorded_until)
    return conditions


def _load(session: Session, conditions: list[ColumnElement[bool]], *, compact: bool = False) -> pd.DataFrame:
    """The frame of the encounters meeting ``conditions``: one query for encounters x diagnoses through the
    DBAPI cursor (plain tuples, no row objects), one per :data:`PATIENT_CHUNK` patients for sex and birth
    date, then whole-column conversions. ``compact``: the shape of :data:`FRAMES` (:func:`compacted`)."""
    query = (
        select(*ENCOUNTER_COLUMNS.values())
        .join(EncounterDiagnosis, EncounterDiagnosis.encounter_id == Encounter.id)
        .where(*conditions)
    )
    rows = session.connection().execute(query).cursor.fetchall()
    if not rows:
        return compacted(empty_frame()) if compact else empty_frame()
    table = np.array(rows, dtype=object)  # one pass in C, then a column is a slice
    raw = pd.DataFrame({name: table[:, number] for number, name in enumerate(ENCOUNTER_COLUMNS)})
    patients = canonical_categories(raw["patient_id"])
    people = _patients(session, list(patients.categories)).reindex(patients.categories)
    raw["patient_id"] = patients
    raw["organisation_id"] = canonical_categories(raw["organisation_id"])
    raw["started_at"] = pd.to_datetime(raw["started_at"], utc=True, format="mixed")
    raw["principal"] = raw["principal"].astype(bool)
    for column in VITAL_SIGNS:
        raw[column] = pd.to_numeric(raw[column]).astype("float64")
    raw["sex"] = people["sex"].to_numpy(dtype=object)[patients.codes]
    born = pd.Series(pd.to_datetime(people["birth_date"]).to_numpy()[patients.codes], index=raw.index)
    raw["age"] = ages_at(born, raw["started_at"])
    if compact:
        raw["encounter_id"] = pd.factorize(raw["encounter_id"])[0].astype("int64")
        return compacted(raw[list(FRAME_COLUMNS)])
    raw["encounter_id"] = raw["encounter_id"].astype(str)  # a grouping key only: as the driver gives it
    return raw[list(FRAME_COLUMNS)].astype(dict.fromkeys(LABEL_COLUMNS, "str"))


def compacted(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its labels (:data:`LABEL_COLUMNS`) as categoricals and ``encounter_id`` as int64 keys:
    the same values, grouped and deduplicated many times faster than strings."""
    labels = {
        column: frame[column]
        if isinstance(frame[column].dtype, pd.CategoricalDtype)
        else _categorical(frame[column])
        for column in LABEL_COLUMNS
    }
    keys = frame["encounter_id"]
    if not pd.api.types.is_integer_dtype(keys.dtype):
        keys = pd.Series(pd.factorize(keys)[0].astype("int64"), index=frame.index)
    return frame.assign(encounter_id=keys, **labels)


def _categorical(values: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(values)
    return pd.Series(pd.Categorical.from_codes(codes, categories=uniques.astype(object)), index=values.index)


def _patients(session: Session, patient_ids: Sequence[str]) -> pd.DataFrame:
    """``sex`` and ``birth_date`` of these patients (canonical id strings), indexed by canonical id."""
    rows: list[tuple[object, ...]] = []
    ids = [uuid.UUID(value) for value in patient_ids]
    for first in range(0, len(ids), PATIENT_CHUNK):
        query = select(
            type_coerce(Patient.id, String), Patient.sex, type_coerce(Patient.birth_date, String)
        ).where(Patient.id.in_(ids[first : first + PATIENT_CHUNK]))
        rows += session.connection().execute(query).cursor.fetchall()
    people = pd.DataFrame.from_records(rows, columns=["patient_id", "sex", "birth_date"])
    people["patient_id"] = canonical_ids(people["patient_id"])
    return people.set_index("patient_id")


def _scope_key(organisation_ids: Collection[uuid.UUID] | None) -> tuple[uuid.UUID, ...] | None:
    return tuple(sorted(organisation_ids)) if organisation_ids is not None else None


@dataclass(frozen=True)
class HeldFrame:
    """A scope's frame of all its encounters (shared: read it, or change a copy), the data state it holds,
    and its full load: ``generation`` numbers the full loads (appends keep it), ``loaded_at`` is when it
    happened (``time.monotonic()``)."""

    state: DataState
    frame: pd.DataFrame
    generation: int
    loaded_at: float


class FrameStore:
    """Each recent scope's frame of all its encounters, kept up to date incrementally.

    When the scope's data state changes, only the encounters recorded after the held frame's newest one
    are loaded and appended, if the count adds up (the held ones are all still there: encounters are
    only ever added by the application). Otherwise (some were deleted, or a transaction committed an
    older ``created_at`` late), and at least every :data:`FULL_RELOAD_SECONDS` (patients' sex and birth
    date are read at load time and may have been corrected since), the whole frame is reloaded."""

    def __init__(self, max_scopes: int = MAX_SCOPES) -> None:
        self._held: OrderedDict[tuple[uuid.UUID, ...] | None, HeldFrame] = OrderedDict()
        self._lock = threading.Lock()
        self._generations = itertools.count(1)
        self.max_scopes = max_scopes

    def held(self, session: Session, organisation_ids: Collection[uuid.UUID] | None) -> HeldFrame:
        """Every encounter of these organisations (``None``: all), as of the database's current state."""
        key = _scope_key(organisation_ids)
        state = data_state(session, organisation_ids)
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                self._held.move_to_end(key)
        if held is not None and held.state == state:
            return held
        updated = self._appended(session, organisation_ids, held, state) if held is not None else None
        if updated is None:
            whole = _load(session, _in_scope(organisation_ids, recorded_until=state.newest), compact=True)
            updated = HeldFrame(state, whole, next(self._generations), time.monotonic())
        with self._lock:
            self._held[key] = updated
            self._held.move_to_end(key)
            while len(self._held) > self.max_scopes:
                self._held.popitem(last=False)
        return updated

    @staticmethod
    def _appended(
        session: Session, organisation_ids: Collection[uuid.UUID] | None, held: HeldFrame, state: DataState
    ) -> HeldFrame | None:
        """The held frame with the encounters recorded since, or None when a full reload is due."""
        since = held.state.newest
        if (
            since is None
            or state.newest is None
            or state.newest <= since
            or state.count <= held.state.count
            or time.monotonic() - held.loaded_at > FULL_RELOAD_SECONDS
        ):
            return None
        window = _in_scope(organisation_ids, recorded_after=since, recorded_until=state.newest)
        arrived = session.execute(select(func.count()).select_from(Encounter).where(*window)).scalar_one()
        if held.state.count + arrived != state.count:
            return None
        new = _load(session, window, compact=True)
        frame = appended(held.frame, new) if len(new) else held.frame
        return HeldFrame(state, frame, held.generation, held.loaded_at)

    def clear(self) -> None:
        """Forget every frame (tests)."""
        with self._lock:
            self._held.clear()


def appended(frame: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Two :func:`compacted` frames of distinct encounters as one (``new``'s encounter keys renumbered after
    ``frame``'s, the categories of each label united)."""
    first_key = int(frame["encounter_id"].max()) + 1 if len(frame) else 0
    new = new.assign(encounter_id=new["encounter_id"] + first_key)
    united = {column: _united(frame[column].array, new[column].array) for column in LABEL_COLUMNS}
    rest = [part.drop(columns=list(LABEL_COLUMNS)) for part in (frame, new)]
    return pd.concat(rest, ignore_index=True).assign(**united)[list(FRAME_COLUMNS)]


def _united(*parts: pd.Categorical) -> pd.Categorical:
    """One categorical of the parts, in order, over the union of their categories (as Python objects:
    pandas may have inferred text categories for some)."""
    return union_categoricals(
        [pd.Categorical.from_codes(part.codes, categories=part.categories.astype(object)) for part in parts]
    )


FRAMES = FrameStore()  # the dashboard's analyses share one frame per scope


def shared_encounter_frame(
    session: Session,
    *,
    organisation_ids: Collection[uuid.UUID] | None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """:func:`encounter_frame` in its :func:`compacted` form, from the scope's frame held in memory
    (:data:`FRAMES`: loaded once, then only new encounters are read), sliced to ``[start, end)``. Each
    caller gets its own frame, free to change."""
    frame = FRAMES.held(session, organisation_ids).frame
    if start is None and end is None:
        return frame.copy(deep=False)  # copy-on-write: changes to it never reach the shared frame
    inside = np.ones(len(frame), dtype=bool)
    if start is not None:
        inside &= (frame["started_at"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        inside &= (frame["started_at"] < pd.Timestamp(end)).to_numpy()
    return frame.loc[inside].reset_index(drop=True)


def canonical_ids(values: pd.Series) -> pd.Series:
    """UUIDs as canonical strings (``8-4-4-4-12``), whether the driver gave UUIDs (PostgreSQL) or the
    32 hex digits SQLite stores; each distinct value is converted once."""
    return pd.Series(canonical_categories(values), index=values.index).astype(str)


def canonical_categories(values: pd.Series) -> pd.Categorical:
    """:func:`canonical_ids` as a categorical (the canonical strings are its categories)."""
    codes, uniques = pd.factorize(values)
    canonical = [str(uuid.UUID(str(value))) for value in list(uniques)]
    return pd.Categorical.from_codes(codes, categories=pd.Index(canonical, dtype=object))


def ages_at(birth_dates: pd.Series, moments: pd.Series) -> pd.Series:
    """Whole years between each birth date and each moment (birthdays counted exactly)."""
    born = pd.to_datetime(birth_dates)
    when = moments.dt.tz_convert(None) if moments.dt.tz is not None else moments
    had_birthday = (when.dt.month > born.dt.month) | (
        (when.dt.month == born.dt.month) & (when.dt.day >= born.dt.day)
    )
    return (when.dt.year - born.dt.year - (~had_birthday).astype(int)).astype(int)
