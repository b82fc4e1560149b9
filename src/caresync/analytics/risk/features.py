"""Risk features of a patient at a moment, computed from the encounter frame alone (pure, no I/O).

For a patient and a reference moment ``at`` the features describe only what happened *strictly before*
``at`` (to the second), so a model trained on "this encounter ended adversely" never sees the encounter it
predicts (no leakage), and the same function gives the features of a patient "now" for inference:

- ``age`` (years at ``at``), ``sex_female`` and ``sex_male`` (both 0 for other or unknown);
- per condition group of :data:`CONDITION_GROUPS`: diagnoses in the last 12 months (``<group>_12m``) and
  ever (``<group>_ever``);
- ``visits_12m`` (encounters in the last 12 months) and ``prior_adverse`` (earlier encounters that ended
  with an outcome of :data:`caresync.analytics.rules.ADVERSE_OUTCOMES`);
- the last recorded value of each vital sign (``spo2_pct``, ``heart_rate_bpm``, ``systolic_mmhg``,
  ``temperature_c``), each the most recent one taken before ``at``; never taken: imputed with the normal
  adult value of :data:`VITAL_DEFAULTS` and flagged by ``<vital>_missing`` = 1.

The label of a training row is whether the encounter's own outcome is adverse.
"""

from __future__ import annotations

from collections.abc import Mapping

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

# Imputed when a vital sign was never taken: normal resting adult values (SpO2 97 %, heart rate 75/min,
# systolic 120 mmHg, temperature 36.8 °C), so "missing" reads as "unremarkable" and the flag carries the rest.
VITAL_DEFAULTS: Mapping[str, float] = {
    "spo2_pct": 97.0,
    "heart_rate_bpm": 75.0,
    "systolic_mmhg": 120.0,
    "temperature_c": 36.8,
}
WINDOW = pd.Timedelta(days=365)

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
REFERENCE_COLUMNS = ("patient_id", "at", "age", "sex")
ENCOUNTER_COLUMNS = ("patient_id", "started_at", "outcome", "sex", "age", *VITAL_DEFAULTS)


def encounter_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per encounter of a frame (``FRAME_COLUMNS`` shape): patient, time, outcome, ``adverse``,
    sex, age, vitals and the number of its diagnoses in each condition group, sorted by patient and time."""
    if frame.empty:
        columns = ["encounter_id", *ENCOUNTER_COLUMNS, *CONDITION_GROUPS, "adverse"]
        empty = pd.DataFrame({column: pd.Series(dtype=float) for column in columns})
        empty["started_at"] = pd.to_datetime(empty["started_at"], utc=True)
        return empty
    groups = pd.Categorical(
        frame["code"].map(GROUP_OF_CODE).fillna("other"), categories=list(CONDITION_GROUPS)
    )
    counts = pd.get_dummies(groups, dtype=float).groupby(frame["encounter_id"].to_numpy()).sum()
    first = frame.drop_duplicates("encounter_id").set_index("encounter_id")
    table = first[list(ENCOUNTER_COLUMNS)].join(counts)
    table["adverse"] = table["outcome"].isin({o.value for o in ADVERSE_OUTCOMES}).astype(int)
    table = table.reset_index().sort_values(["patient_id", "started_at", "encounter_id"], kind="stable")
    return table.reset_index(drop=True)


def features_at(encounters: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """The features (:data:`FEATURE_NAMES`, one row per reference, same index) of each reference row
    (``patient_id``, ``at`` (UTC timestamp), ``age``, ``sex``) from the patient's encounters (an
    :func:`encounter_table`) strictly before ``at``."""
    out: dict[str, np.ndarray] = {name: np.zeros(len(refs)) for name in FEATURE_NAMES}
    out["age"] = refs["age"].to_numpy(dtype=float)
    out["sex_female"] = (refs["sex"] == "female").to_numpy(dtype=float)
    out["sex_male"] = (refs["sex"] == "male").to_numpy(dtype=float)
    if refs.empty:
        return pd.DataFrame(out, index=refs.index, columns=list(FEATURE_NAMES))
    codes, _ = pd.factorize(pd.concat([encounters["patient_id"], refs["patient_id"]]).astype(str))
    enc_patient, ref_patient = codes[: len(encounters)], codes[len(encounters) :]
    origin = min(encounters["started_at"].min(), refs["at"].min()) if len(encounters) else refs["at"].min()
    span = max(encounters["started_at"].max(), refs["at"].max()) if len(encounters) else refs["at"].max()
    # One sortable integer per (patient, second): patient blocks never overlap, and a block starts a year
    # early so "12 months before" never reaches into the previous patient's block.
    offset = int(WINDOW.total_seconds()) + 1
    block = int((span - origin).total_seconds()) + 2 * offset
    enc_key = enc_patient * block + _seconds(encounters["started_at"], origin) + offset
    ref_key = ref_patient * block + _seconds(refs["at"], origin) + offset
    order = np.argsort(enc_key, kind="stable")
    keys = enc_key[order]
    before = np.searchsorted(keys, ref_key, side="left")  # encounters of the patient strictly before `at`
    year_ago = np.searchsorted(keys, ref_key - int(WINDOW.total_seconds()), side="left")
    patient_start = np.searchsorted(keys, ref_patient * block, side="left")
    sorted_enc = encounters.iloc[order]

    def cumulative(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        running = np.concatenate([[0.0], np.cumsum(values, dtype=float)])
        return running[before] - running[year_ago], running[before] - running[patient_start]

    for group in CONDITION_GROUPS:
        out[f"{group}_12m"], out[f"{group}_ever"] = cumulative(sorted_enc[group].to_numpy(dtype=float))
    out["visits_12m"], _ = cumulative(np.ones(len(sorted_enc)))
    _, out["prior_adverse"] = cumulative(sorted_enc["adverse"].to_numpy(dtype=float))
    for vital, default in VITAL_DEFAULTS.items():
        taken = sorted_enc[vital].notna().to_numpy()
        vital_keys, vital_values = keys[taken], sorted_enc[vital].to_numpy(dtype=float)[taken]
        found, value = np.zeros(len(refs), dtype=bool), np.full(len(refs), default)
        if len(vital_keys):
            last = np.searchsorted(vital_keys, ref_key, side="left") - 1  # the latest taken before `at`
            safe = np.maximum(last, 0)
            found = (last >= 0) & (vital_keys[safe] >= ref_patient * block)  # ... of this patient
            value = np.where(found, vital_values[safe], default)
        out[vital], out[f"{vital}_missing"] = value, (~found).astype(float)
    return pd.DataFrame(out, index=refs.index, columns=list(FEATURE_NAMES))


def training_set(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features and labels of every encounter of a frame: the features from the patient's history before
    the encounter (its age and sex at the time), the label whether it ended adversely."""
    encounters = encounter_table(frame)
    refs = encounters.rename(columns={"started_at": "at"})[list(REFERENCE_COLUMNS)]
    return features_at(encounters, refs), encounters["adverse"].rename("adverse")


def _seconds(moments: pd.Series, origin: pd.Timestamp) -> np.ndarray:
    return ((moments - origin).dt.total_seconds().to_numpy()).astype(np.int64)


def patient_features(
    frame: pd.DataFrame, patient_id: object, at: pd.Timestamp, age: int, sex: str
) -> dict[str, float]:
    """One patient's features at ``at`` (their age and sex then) from a frame of their encounters."""
    refs = pd.DataFrame({"patient_id": [patient_id], "at": [at], "age": [age], "sex": [sex]})
    row = features_at(encounter_table(frame), refs).iloc[0]
    return {name: float(row[name]) for name in FEATURE_NAMES}
