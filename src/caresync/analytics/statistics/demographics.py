"""Who the encounters were for: age bands (:data:`caresync.analytics.rules.AGE_BANDS`) and sex, per
organisation and overall, as counts and proportions. Pure functions over an encounter frame.

Two counts per group:

- ``encounters``: distinct encounters, each in the age band of the patient's age *at that encounter*;
- ``patients``: distinct patients, each counted once per scope, in the age band of their age at their
  *latest* encounter of the period (a patient who turned 20 during the period is counted at 20-39), so the
  patient shares of a scope add up to 1.

A patient seen by two organisations counts in each of them, and once in ``overall``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from caresync.analytics.rules import AGE_BANDS, age_band
from caresync.identity.rules import SEXES

OVERALL = "overall"
AGE_BAND, SEX = "age_band", "sex"
DIMENSIONS = (AGE_BAND, SEX)


def with_age_bands(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with an ``age_band`` column (the band of ``age``, as :func:`rules.age_band` says; a
    categorical, each distinct age banded once)."""
    ages, inverse = np.unique(frame["age"].to_numpy(dtype="int64"), return_inverse=True)
    codes, labels = pd.factorize(pd.Index([age_band(int(age)) for age in ages], dtype=object))
    bands = pd.Categorical.from_codes(codes[inverse.reshape(-1)], categories=labels)
    return frame.assign(age_band=pd.Series(bands, index=frame.index))


def encounter_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per encounter: ids, ``started_at``, ``sex``, ``age`` and ``age_band``."""
    columns = ["encounter_id", "patient_id", "organisation_id", "started_at", "sex", "age"]
    return with_age_bands(frame[columns].drop_duplicates("encounter_id"))


def latest_per_patient(encounters: pd.DataFrame) -> pd.DataFrame:
    """Each patient's latest encounter among ``encounters`` (rows of :func:`encounter_rows`)."""
    ordered = encounters.sort_values("started_at", kind="stable")
    return ordered.drop_duplicates("patient_id", keep="last")


@dataclass(frozen=True)
class GroupShare:
    """One age band or sex in one scope (``overall`` or an organisation id): distinct patients and
    encounters, and their shares of the scope's totals (None when the scope has none)."""

    scope: str
    dimension: str
    group: str
    patients: int
    patient_share: float | None
    encounters: int
    encounter_share: float | None


def _groups(dimension: str, present: pd.Series) -> list[str]:
    """Every age band, or every sex CareSync records plus any other value present, in a fixed order."""
    if dimension == AGE_BAND:
        return [label for _, label in AGE_BANDS]
    return [*SEXES, *sorted(set(counts(present).index) - set(SEXES))]


def counts(values: pd.Series) -> pd.Series:
    """How many times each value occurs (by its text; missing values not counted), counted on the values
    (cheap for categoricals) before they are turned into text."""
    found = values.value_counts()
    found = found[found > 0]
    return found.groupby(found.index.astype(str)).sum()


def _scope_shares(scope: str, encounters: pd.DataFrame) -> list[GroupShare]:
    patients = latest_per_patient(encounters)
    shares = []
    for dimension in DIMENSIONS:
        by_patient = counts(patients[dimension])
        by_encounter = counts(encounters[dimension])
        for group in _groups(dimension, encounters[dimension]):
            people, visits = int(by_patient.get(group, 0)), int(by_encounter.get(group, 0))
            shares.append(
                GroupShare(
                    scope=scope,
                    dimension=dimension,
                    group=group,
                    patients=people,
                    patient_share=round(people / len(patients), 4) if len(patients) else None,
                    encounters=visits,
                    encounter_share=round(visits / len(encounters), 4) if len(encounters) else None,
                )
            )
    return shares


def demographics(frame: pd.DataFrame) -> list[GroupShare]:
    """Age-band and sex counts and shares, ``overall`` first, then per organisation (by id)."""
    encounters = encounter_rows(frame)
    shares = _scope_shares(OVERALL, encounters)
    organisations = encounters["organisation_id"]
    for organisation in sorted(counts(organisations).index):
        shares += _scope_shares(organisation, encounters[(organisations == organisation).to_numpy()])
    return shares
