"""Risk features of a patient at a moment, computed from their encounters alone (pure, no I/O).

For a patient and a reference moment ``at`` the features describe only what happened *strictly before*
``at`` (to the second), so a model trained on "this encounter ended adversely" never sees the encounter it
predicts (no leakage), and the same definitions give the features of a patient "now" for inference:

- ``age`` (years at ``at``), ``sex_female`` and ``sex_male`` (both 0 for other or unknown);
- per condition group of :data:`CONDITION_GROUPS`: diagnoses in the last 12 months (``<group>_12m``) and
  ever (``<group>_ever``);
- ``visits_12m`` (encounters in the last 12 months) and ``prior_adverse`` (earlier encounters that ended
  with an outcome of :data:`caresync.analytics.rules.ADVERSE_OUTCOMES`);
- the last recorded value of each vital sign (``spo2_pct``, ``heart_rate_bpm``, ``systolic_mmhg``,
  ``temperature_c``), each the most recent one taken before ``at``; never taken: imputed with the normal
  adult value of :data:`VITAL_DEFAULTS` and flagged by ``<vital>_missing`` = 1.

Every feature is computed by one NumPy function, :func:`feature_matrix`, over a :class:`History` (the
encounters as arrays). Two ways lead to it: :func:`features_at` for many patients and moments at once (the
training set, a care list) from an encounter frame, and :func:`patient_features` for one patient now from
their encounter rows as the database gives them (no pandas: the per-request path, well under a
millisecond). Both agree exactly (tested).

The label of a training row is whether the encounter's own outcome is adverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from caresync.analytics.rules import ADVERSE_OUTCOMES

# Condition groups (every condition of rules.CONDITIONS belongs to exactly one; tested).
CONDITION_GROUPS: Mapping[str, tuple[str, ...]] = {
    "respiratory_infection": ("J11", "J06.9", "J18.9", "J20.9", "U07.1"),
    "allergy_asthma": ("J30.1", "J45.9", "L50.9"),
    "chronic_lung": ("J44.9",),
    "cardiovascular": ("I10", "I25.1", "I50.9", "I21.9", "I63.9"),
    "diabetes": ("E11.9",),
    "infection_other": ("A09", "N39.0"),
    "injury_environment": ("T67.0", "S52.5"),
    "mental_health": ("F32.9", "F41.1"),
    "obstetric": ("O80",),
    "other": ("M54.5", "K35.8", "R51"),
}
GROUP_OF_CODE = {code: group for group, codes in CONDITION_GROUPS.items() for code in codes}
OTHER_GROUP = "other"  # the group of a code outside CONDITION_GROUPS
GROUP_INDEX = {group: index for index, group in enumerate(CONDITION_GROUPS)}
ADVERSE_VALUES = frozenset(outcome.value for outcome in ADVERSE_OUTCOMES)

# Imputed when a vital sign was never taken: normal resting adult values (SpO2 97 %, heart rate 75/min,
# systolic 120 mmHg, temperature 36.8 °C), so "missing" reads as "unremarkable" and the flag carries the rest.
VITAL_DEFAULTS: Mapping[str, float] = {
    "spo2_pct": 97.0,
    "heart_rate_bpm": 75.0,
    "systolic_mmhg": 120.0,
    "temperature_c": 36.8,
}
WINDOW = timedelta(days=365)
WINDOW_SECONDS = int(WINDOW.total_seconds())
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)

FEATURE_NAMES: tuple[str, ...] = (
    "age",
    "sex_female",
    "sex_male",
    *(f"{group}_12m" for group in CONDITION_GROUPS),
    *(f"{group}_ever" for group in CONDITION_GROUPS),
    "visits_12m",
    "prior_adverse",
    *VITAL_DEFAULTS,
    *(f"{vital}_missing" for vital in VITAL_DEFAULTS),
)

FEATURE_LABELS: Mapping[str, str] = {
    "age": "Age",
    "sex_female": "Female",
    "sex_male": "Male",
    **{f"{g}_12m": f"{g.replace('_', ' ').capitalize()} diagnoses, last 12 months" for g in CONDITION_GROUPS},
    **{f"{g}_ever": f"{g.replace('_', ' ').capitalize()} diagnoses, ever" for g in CONDITION_GROUPS},
    "visits_12m": "Visits in the last 12 months",
    "prior_adverse": "Earlier admissions or deaths",
    "spo2_pct": "Last SpO2 (%)",
    "heart_rate_bpm": "Last heart rate (/min)",
    "systolic_mmhg": "Last systolic pressure (mmHg)",
    "temperature_c": "Last temperature (°C)",
    "spo2_pct_missing": "No SpO2 recorded",
    "heart_rate_bpm_missing": "No heart rate recorded",
    "systolic_mmhg_missing": "No blood pressure recorded",
    "temperature_c_missing": "No temperature recorded",
}
COLUMN = {name: index for index, name in enumerate(FEATURE_NAMES)}
REFERENCE_COLUMNS = ("patient_id", "at", "age", "sex")
ENCOUNTER_COLUMNS = ("patient_id", "started_at", "outcome", "sex", "age", *VITAL_DEFAULTS)
# One patient's encounter rows as the database gives them, one per (encounter, diagnosis):
ROW_COLUMNS = ("encounter_id", "started_at", "outcome", "code", *VITAL_DEFAULTS)


@dataclass(frozen=True)
class History:
    """Encounters as arrays, one row each, sorted by ``keys``: what every feature is computed from.

    ``keys`` orders encounters by patient, then time: the encounter's second (since the epoch, or since
    an origin) plus its patient's block start, blocks far enough apart never to overlap. ``counts`` holds,
    per encounter, its diagnoses in each condition group (in :data:`CONDITION_GROUPS` order), then 1 (a
    visit), then 1 if it ended adversely; ``vitals`` its vital signs (:data:`VITAL_DEFAULTS` order, NaN
    when not taken)."""

    keys: np.ndarray
    counts: np.ndarray
    vitals: np.ndarray


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (floored) of a timezone-aware moment."""
    return (moment - EPOCH) // SECOND


def age_at(birth_date: date, moment: datetime) -> int:
    """Whole years between a birth date and a UTC moment (the same rule as
    :func:`caresync.analytics.data.ages_at`)."""
    day = moment.astimezone(UTC)
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def feature_matrix(
    history: History, ref_keys: np.ndarray, block_starts: np.ndarray, ages: np.ndarray, sexes: np.ndarray
) -> np.ndarray:
    """The features (:data:`FEATURE_NAMES` columns) of each reference: the moment ``ref_keys`` (on the
    scale of ``history.keys``) of the patient whose block starts at ``block_starts``, their age and sex
    then, from that patient's encounters strictly before the moment. The one definition of every feature."""
    keys = history.keys
    out = np.zeros((len(ref_keys), len(FEATURE_NAMES)))
    out[:, COLUMN["age"]] = ages
    out[:, COLUMN["sex_female"]] = sexes == "female"
    out[:, COLUMN["sex_male"]] = sexes == "male"
    first = np.searchsorted(keys, block_starts, side="left")  # the patient's first encounter
    before = np.searchsorted(keys, ref_keys, side="left")  # ... and their last one strictly before `at`
    year_ago = np.maximum(np.searchsorted(keys, ref_keys - WINDOW_SECONDS, side="left"), first)
    running = np.zeros((len(keys) + 1, history.counts.shape[1]))
    np.cumsum(history.counts, axis=0, out=running[1:])
    recent, ever = running[before] - running[year_ago], running[before] - running[first]
    for index, group in enumerate(CONDITION_GROUPS):
        out[:, COLUMN[f"{group}_12m"]] = recent[:, index]
        out[:, COLUMN[f"{group}_ever"]] = ever[:, index]
    out[:, COLUMN["visits_12m"]] = recent[:, len(CONDITION_GROUPS)]
    out[:, COLUMN["prior_adverse"]] = ever[:, len(CONDITION_GROUPS) + 1]
    for index, (vital, default) in enumerate(VITAL_DEFAULTS.items()):
        taken = ~np.isnan(history.vitals[:, index])
        vital_keys, values = keys[taken], history.vitals[taken, index]
        found = np.zeros(len(ref_keys), dtype=bool)
        value = np.full(len(ref_keys), default)
        if len(vital_keys):
            last = np.searchsorted(vital_keys, ref_keys, side="left") - 1  # the latest taken before `at`
            safe = np.maximum(last, 0)
            found = (last >= 0) & (vital_keys[safe] >= block_starts)  # ... of this patient
            value = np.where(found, values[safe], default)
        out[:, COLUMN[vital]], out[:, COLUMN[f"{vital}_missing"]] = value, ~found
    return out


def patient_history(rows: Iterable[Sequence[Any]]) -> History:
    """One patient's :class:`History` from their encounter rows (:data:`ROW_COLUMNS`, one per encounter
    and diagnosis, in any order; ``started_at`` timezone-aware, vitals ``None`` or NaN when not taken),
    keyed by epoch seconds. Plain Python and NumPy: this is the per-request path."""
    encounters: dict[str, tuple[datetime, list[float], list[float]]] = {}
    for encounter_id, started_at, outcome, code, *vitals in rows:
        key = str(encounter_id)
        if key not in encounters:
            counts = [0.0] * len(CONDITION_GROUPS) + [1.0, float(outcome in ADVERSE_VALUES)]
            encounters[key] = (started_at, counts, [np.nan if v is None else float(v) for v in vitals])
        encounters[key][1][GROUP_INDEX[GROUP_OF_CODE.get(code, OTHER_GROUP)]] += 1
    ordered = sorted(encounters.items(), key=lambda item: (item[1][0], item[0]))  # time, then id: as a frame
    return History(
        keys=np.array([epoch_seconds(started) for _, (started, _, _) in ordered], dtype=np.int64),
        counts=np.array([counts for _, (_, counts, _) in ordered]).reshape(-1, len(CONDITION_GROUPS) + 2),
        vitals=np.array([taken for _, (_, _, taken) in ordered]).reshape(-1, len(VITAL_DEFAULTS)),
    )


def patient_features(history: History, at: datetime, age: int, sex: str) -> np.ndarray:
    """One patient's features at ``at`` (their age and sex then), in :data:`FEATURE_NAMES` order, from
    their :func:`patient_history`."""
    return feature_matrix(
        history,
        np.array([epoch_seconds(at)], dtype=np.int64),
        np.array([np.iinfo(np.int64).min]),  # one patient: no other block to keep apart from
        np.array([float(age)]),
        np.array([sex]),
    )[0]


def encounter_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per encounter of a frame (``FRAME_COLUMNS`` shape): patient, time, outcome, ``adverse``,
    sex, age, vitals and the number of its diagnoses in each condition group, sorted by patient and time."""
    if frame.empty:
        columns = ["encounter_id", *ENCOUNTER_COLUMNS, *CONDITION_GROUPS, "adverse"]
        empty = pd.DataFrame({column: pd.Series(dtype=float) for column in columns})
        empty["started_at"] = pd.to_datetime(empty["started_at"], utc=True)
        return empty
    groups = pd.Categorical(
        frame["code"].map(GROUP_OF_CODE).fillna(OTHER_GROUP), categories=list(CONDITION_GROUPS)
    )
    counts = pd.get_dummies(groups, dtype=float).groupby(frame["encounter_id"].to_numpy()).sum()
    first = frame.drop_duplicates("encounter_id").set_index("encounter_id")
    table = first[list(ENCOUNTER_COLUMNS)].join(counts)
    table["adverse"] = table["outcome"].isin(ADVERSE_VALUES).astype(int)
    table = table.reset_index().sort_values(["patient_id", "started_at", "encounter_id"], kind="stable")
    return table.reset_index(drop=True)


def features_at(encounters: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """The features (:data:`FEATURE_NAMES`, one row per reference, same index) of each reference row
    (``patient_id``, ``at`` (UTC timestamp), ``age``, ``sex``) from the patient's encounters (an
    :func:`encounter_table`) strictly before ``at``."""
    if refs.empty:
        return pd.DataFrame(np.zeros((0, len(FEATURE_NAMES))), index=refs.index, columns=list(FEATURE_NAMES))
    codes, _ = pd.factorize(pd.concat([encounters["patient_id"], refs["patient_id"]]).astype(str))
    enc_patient, ref_patient = codes[: len(encounters)], codes[len(encounters) :]
    enc_seconds, ref_seconds = _seconds(encounters["started_at"]), _seconds(refs["at"])
    origin = min(enc_seconds.min(initial=ref_seconds.min()), ref_seconds.min())
    block = max(enc_seconds.max(initial=ref_seconds.max()), ref_seconds.max()) - origin + 1
    enc_key = enc_patient * block + enc_seconds - origin  # patient blocks never overlap
    order = np.argsort(enc_key, kind="stable")
    counts = encounters[list(CONDITION_GROUPS)].to_numpy(dtype=float)
    history = History(
        keys=enc_key[order],
        counts=np.column_stack(
            [counts, np.ones(len(encounters)), encounters["adverse"].to_numpy(dtype=float)]
        )[order],
        vitals=encounters[list(VITAL_DEFAULTS)].to_numpy(dtype=float)[order],
    )
    matrix = feature_matrix(
        history,
        ref_patient * block + ref_seconds - origin,
        ref_patient * block,
        refs["age"].to_numpy(dtype=float),
        refs["sex"].to_numpy(dtype=object),
    )
    return pd.DataFrame(matrix, index=refs.index, columns=list(FEATURE_NAMES))


def training_set(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels of every encounter of a frame: the features from the patient's history before
    the encounter (its age and sex at the time), the label whether it ended adversely."""
    encounters = encounter_table(frame)
    refs = encounters.rename(columns={"started_at": "at"})[list(REFERENCE_COLUMNS)]
    return features_at(encounters, refs), encounters["adverse"].rename("adverse")


def _seconds(moments: pd.Series) -> np.ndarray:
    """Whole seconds since the epoch (floored), as :func:`epoch_seconds`."""
    return ((moments - pd.Timestamp(EPOCH)) // pd.Timedelta(SECOND)).to_numpy(dtype=np.int64)
