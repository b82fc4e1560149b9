"""Synthetic clinical activity, deterministic for a seed: the demo's encounters and the tests' data.

Every condition of :data:`caresync.analytics.rules.CONDITIONS` has a :class:`Profile`: its share of visits,
how sharply it peaks around its ``peak_month`` (a von Mises seasonal curve), who gets it (age and sex), where
it is seen (departments) and what it does to vital signs and to the odds of an adverse outcome. Daily
expected visits per condition and organisation combine that share with the season, a weekly cycle (Monday
busiest, weekends quiet; acute conditions arrive any day at any hour), a gentle upward trend and ONE injected
outbreak; counts are Poisson draws. Each visit then picks a patient of the organisation weighted by the
condition's demographic profile, chronic conditions of the patient come along as secondary diagnoses, vital
signs depend on age and conditions, and the outcome on age, conditions and vital signs (so a risk model has
something to learn).

:func:`generate` makes the patients too; :func:`simulate` works on given patients (the demo's real ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from caresync.analytics.data import FRAME_COLUMNS, ages_at
from caresync.analytics.rules import CONDITION_BY_CODE, CONDITIONS, Department, Outcome

GP, ER, PAED = Department.GENERAL_PRACTICE, Department.EMERGENCY, Department.PAEDIATRICS
RESP, CARDIO, OBST = Department.RESPIRATORY, Department.CARDIOLOGY, Department.OBSTETRICS
ORTHO, PSYCH = Department.ORTHOPAEDICS, Department.PSYCHIATRY


@dataclass(frozen=True)
class Profile:
    """How a condition shows up: share of visits (relative ``weight``), seasonal ``concentration`` (0: none),
    the age (normal around ``age_mean``, within ``[min_age, max_age]``) and sex (relative ``female`` and
    ``male`` weights) of those who get it, departments with weights, whether it is ``acute`` (any day, any
    hour), and its effects: temperature (°C), SpO2 drop (points), heart rate and systolic rises, and the log
    odds it adds to an adverse outcome."""

    weight: float
    concentration: float
    age_mean: float
    age_sd: float
    female: float
    male: float
    departments: tuple[tuple[Department, float], ...]
    min_age: int = 0
    max_age: int = 120
    acute: bool = False
    fever: float = 0.0
    spo2_drop: float = 0.0
    heart_rate: float = 0.0
    systolic: float = 0.0
    risk: float = 0.0


PROFILES: dict[str, Profile] = {
    "J11": Profile(6, 2.2, 35, 40, 1, 1, ((GP, 6), (ER, 3), (RESP, 1)), fever=1.6, spo2_drop=1.5,
                   heart_rate=14, risk=0.4),
    "J06.9": Profile(12, 0.8, 10, 20, 1, 1, ((GP, 8), (ER, 2)), fever=0.6, heart_rate=6),
    "J18.9": Profile(3, 0.9, 75, 20, 1, 1.2, ((RESP, 5), (ER, 5)), fever=1.3, spo2_drop=6, heart_rate=16,
                     risk=1.6),
    "J20.9": Profile(5, 0.8, 40, 35, 1, 1, ((GP, 7), (RESP, 3)), fever=0.4, spo2_drop=1, heart_rate=5),
    "U07.1": Profile(3, 0.8, 50, 30, 1, 1.1, ((GP, 5), (RESP, 3), (ER, 2)), fever=1.0, spo2_drop=3,
                     heart_rate=10, risk=0.8),
    "J30.1": Profile(4, 2.2, 25, 20, 1, 1, ((GP, 9), (RESP, 1))),
    "J45.9": Profile(4, 0.5, 12, 15, 1, 1.1, ((RESP, 5), (GP, 3), (ER, 2)), spo2_drop=3, heart_rate=12,
                     risk=0.3),
    "L50.9": Profile(2, 0.6, 30, 25, 1.3, 1, ((GP, 8), (ER, 2))),
    "A09": Profile(5, 0.7, 25, 30, 1, 1, ((GP, 6), (ER, 4)), fever=0.5, heart_rate=10, systolic=-8),
    "T67.0": Profile(1, 2.5, 75, 20, 1, 1, ((ER, 1),), acute=True, fever=2.0, heart_rate=20, systolic=-12,
                     risk=1.0),
    "I10": Profile(8, 0, 65, 15, 1, 1.1, ((GP, 6), (CARDIO, 4)), min_age=18, systolic=25),
    "E11.9": Profile(5, 0, 62, 15, 1, 1.2, ((GP, 1),), min_age=18, systolic=5),
    "I25.1": Profile(3, 0, 68, 12, 0.6, 1.4, ((CARDIO, 8), (GP, 2)), min_age=30, systolic=8, risk=0.5),
    "I50.9": Profile(2, 0, 78, 10, 0.8, 1.2, ((CARDIO, 7), (ER, 3)), min_age=30, spo2_drop=4, heart_rate=12,
                     risk=1.4),
    "I21.9": Profile(1, 0, 68, 12, 0.5, 1.5, ((ER, 6), (CARDIO, 4)), min_age=25, acute=True, heart_rate=18,
                     systolic=10, risk=2.6),
    "I63.9": Profile(1, 0, 74, 12, 0.9, 1.1, ((ER, 1),), min_age=25, acute=True, systolic=30, risk=2.4),
    "J44.9": Profile(3, 0, 70, 12, 0.7, 1.3, ((RESP, 7), (GP, 2), (ER, 1)), min_age=35, spo2_drop=5,
                     heart_rate=8, risk=0.8),
    "N39.0": Profile(5, 0, 45, 30, 3, 0.6, ((GP, 8), (ER, 2)), fever=0.5, heart_rate=6),
    "M54.5": Profile(7, 0, 48, 15, 1, 1, ((GP, 6), (ORTHO, 4)), min_age=12),
    "S52.5": Profile(2, 0, 70, 25, 1.5, 0.7, ((ER, 5), (ORTHO, 5)), acute=True, heart_rate=8),
    "F32.9": Profile(4, 0, 40, 18, 1.8, 1, ((PSYCH, 6), (GP, 4)), min_age=10),
    "F41.1": Profile(4, 0, 35, 15, 1.8, 1, ((PSYCH, 5), (GP, 5)), min_age=10, heart_rate=10, systolic=6),
    "O80": Profile(2, 0, 30, 6, 1, 0, ((OBST, 1),), min_age=18, max_age=45, acute=True, heart_rate=10,
                   risk=0.5),
    "K35.8": Profile(1.5, 0, 20, 12, 1, 1.1, ((ER, 1),), acute=True, fever=0.8, heart_rate=14, risk=2.2),
    "R51": Profile(5, 0, 35, 20, 1.4, 1, ((GP, 7), (ER, 3))),
}  # fmt: skip
assert set(PROFILES) == set(CONDITION_BY_CODE), "every condition needs a profile"

# Departments that treat children as the paediatrics department does (below PAEDIATRIC_AGE).
PAEDIATRIC_AGE = 16
SEEN_BY_PAEDIATRICS = frozenset({GP, RESP})
# Visits by weekday (Monday first), relative; acute conditions ignore it.
WEEKLY = np.array([1.25, 1.10, 1.05, 1.05, 1.00, 0.60, 0.50])
TREND_PER_YEAR = 0.04
# Chronic conditions a patient may carry (listed as secondary diagnoses at their visits): the age at which
# half the ceiling prevalence is reached, and that ceiling.
CHRONIC: dict[str, tuple[float, float]] = {"I10": (55, 0.45), "E11.9": (55, 0.2), "J44.9": (65, 0.12)}
CHRONIC_LISTED = 0.6  # chance a visit lists each chronic condition of the patient
CHRONIC_EFFECTS = {"I10": {"systolic": 15.0}, "J44.9": {"spo2_drop": 3.0}}
NO_VITALS = 0.08  # share of visits outside the emergency department without vital signs
OUTBREAK_CODE = "A09"
OUTBREAK_DAYS = 21
OUTBREAK_FACTOR = 4.0
DEFAULT_VISITS_PER_DAY = 20.0
CODES = tuple(c.code for c in CONDITIONS)


@dataclass(frozen=True)
class Outbreak:
    """The injected outbreak: ``factor`` times the usual level of ``code`` at one organisation during
    ``[start, end)``."""

    code: str
    organisation_key: str
    start: date
    end: date
    factor: float


@dataclass(frozen=True)
class SyntheticData:
    """Generated activity: ``patients`` (patient_key, sex, birth_date, organisation_key), ``encounters``
    (encounter_key, patient_key, organisation_key, department, started_at, outcome and vital signs),
    ``diagnoses`` (encounter_key, code, principal) and the injected ``outbreak``."""

    patients: pd.DataFrame
    encounters: pd.DataFrame
    diagnoses: pd.DataFrame
    outbreak: Outbreak

    def frame(self) -> pd.DataFrame:
        """The activity in the shape of :data:`caresync.analytics.data.FRAME_COLUMNS` (string ids)."""
        rows = self.diagnoses.merge(self.encounters, on="encounter_key").merge(
            self.patients[["patient_key", "sex", "birth_date"]], on="patient_key"
        )
        rows["age"] = ages_at(rows["birth_date"], rows["started_at"])
        rows = rows.rename(
            columns={
                "encounter_key": "encounter_id",
                "patient_key": "patient_id",
                "organisation_key": "organisation_id",
            }
        )
        return rows[list(FRAME_COLUMNS)].reset_index(drop=True)


def generate(
    seed: int,
    years: int,
    *,
    organisations: int = 3,
    patients: int = 600,
    end: date | None = None,
    visits_per_day: float = DEFAULT_VISITS_PER_DAY,
) -> SyntheticData:
    """``years`` of activity up to ``end`` (exclusive; today by default) for ``patients`` synthetic patients
    spread over ``organisations`` (``org-1`` the largest, where the outbreak happens), about
    ``visits_per_day`` visits per organisation and day. The same arguments give the same data."""
    if organisations < 1 or patients < organisations:
        raise ValueError("need at least one organisation and one patient per organisation")
    rng = np.random.default_rng(seed)
    last = end or datetime.now(UTC).date()
    org_keys = [f"org-{i + 1}" for i in range(organisations)]
    sizes = 1.0 / np.arange(1, organisations + 1) ** 0.5  # org-1 largest
    extra = rng.choice(organisations, patients - organisations, p=sizes / sizes.sum())
    home = np.concatenate([np.arange(organisations), extra])  # every organisation has a patient
    sexes = rng.choice(["female", "male", "other", "unknown"], size=patients, p=[0.5, 0.48, 0.01, 0.01])
    age_days = (rng.triangular(0, 45, 95, size=patients) * 365.25).astype(int)
    birth = np.datetime64(last, "D") - age_days.astype("timedelta64[D]")
    people = pd.DataFrame(
        {
            "patient_key": [f"patient-{i + 1}" for i in range(patients)],
            "sex": sexes,
            "birth_date": pd.to_datetime(birth).date,
            "organisation_key": [org_keys[i] for i in home],
        }
    )
    return simulate(people, org_keys, rng, years=years, end=last, visits_per_day=visits_per_day)


def simulate(
    patients: pd.DataFrame,
    organisation_keys: list[str],
    rng: np.random.Generator,
    *,
    years: int,
    end: date,
    visits_per_day: float = DEFAULT_VISITS_PER_DAY,
) -> SyntheticData:
    """Encounters of these ``patients`` (patient_key, sex, birth_date, organisation_key) at these
    organisations over the ``years`` before ``end`` (exclusive). Organisations see visits in proportion to
    their patients; the outbreak is at the first organisation, in the last :data:`OUTBREAK_DAYS` days."""
    if years < 1:
        raise ValueError("years must be at least 1")
    start = end - timedelta(days=round(365.25 * years))
    days = pd.date_range(start, end, inclusive="left")
    org_index = {key: i for i, key in enumerate(organisation_keys)}
    home = patients["organisation_key"].map(org_index).to_numpy()
    if np.isnan(home.astype(float)).any():
        raise ValueError("every patient's organisation must be one of organisation_keys")
    per_org = np.bincount(home.astype(int), minlength=len(organisation_keys))
    outbreak = Outbreak(
        OUTBREAK_CODE, organisation_keys[0], end - timedelta(days=OUTBREAK_DAYS), end, OUTBREAK_FACTOR
    )

    expected = _expected_visits(days, per_org / per_org.mean() * visits_per_day, outbreak, start)
    counts = rng.poisson(expected)  # (condition, day, organisation)
    cond, day, org = np.nonzero(counts)
    repeats = counts[cond, day, org]
    cond, day, org = (np.repeat(a, repeats) for a in (cond, day, org))

    birth = pd.to_datetime(patients["birth_date"]).to_numpy().astype("datetime64[D]")
    patient = _pick_patients(rng, cond, day, org, home.astype(int), patients["sex"].to_numpy(), birth, days)
    kept = patient >= 0
    cond, day, org, patient = cond[kept], day[kept], org[kept], patient[kept]
    order = np.lexsort((org, day))  # chronological
    cond, day, org, patient = cond[order], day[order], org[order], patient[order]

    started = _start_times(rng, cond, day, days)
    age = _years_since(birth[patient], started)
    chronic = _chronic_conditions(rng, birth, end)
    secondary = (chronic[patient] & (rng.random((len(patient), len(CHRONIC))) < CHRONIC_LISTED)) & (
        np.array([CODES.index(code) for code in CHRONIC])[None, :] != cond[:, None]
    )
    vitals = _vitals(rng, cond, age, secondary)
    outcome = _outcomes(rng, cond, age, vitals, secondary)
    department = _departments(rng, cond, age)
    missing = (rng.random(len(cond)) < NO_VITALS) & (department != ER.value)
    for column in vitals:
        vitals[column] = np.where(missing, np.nan, vitals[column])

    keys = np.array([f"enc-{i + 1}" for i in range(len(cond))], dtype=object)
    encounters = pd.DataFrame(
        {
            "encounter_key": keys,
            "patient_key": patients["patient_key"].to_numpy()[patient],
            "organisation_key": np.array(organisation_keys, dtype=object)[org],
            "department": department,
            "started_at": pd.to_datetime(started).tz_localize("UTC").as_unit("ns"),
            "outcome": outcome,
            **vitals,
        }
    )
    extra_rows, extra_cols = np.nonzero(secondary)
    diagnoses = pd.DataFrame(
        {
            "encounter_key": np.concatenate([keys, keys[extra_rows]]),
            "code": np.concatenate(
                [np.array(CODES, dtype=object)[cond], np.array(list(CHRONIC), dtype=object)[extra_cols]]
            ),
            "principal": np.concatenate([np.ones(len(keys), bool), np.zeros(len(extra_rows), bool)]),
        }
    )
    return SyntheticData(patients.reset_index(drop=True), encounters, diagnoses, outbreak)


def seasonal_factor(code: str, day_of_year: np.ndarray) -> np.ndarray:
    """The condition's relative level on these days of the year (mean 1 over a year): a von Mises curve
    peaking mid-``peak_month``, flat for conditions without a season."""
    kappa = PROFILES[code].concentration
    peak_month = CONDITION_BY_CODE[code].peak_month
    if not kappa or not peak_month:
        return np.ones(len(day_of_year))
    peak = (peak_month - 1) * 365.25 / 12 + 15
    angle = 2 * np.pi * (np.asarray(day_of_year) - peak) / 365.25
    return np.exp(kappa * np.cos(angle)) / np.i0(kappa)


def _expected_visits(
    days: pd.DatetimeIndex, org_rates: np.ndarray, outbreak: Outbreak, start: date
) -> np.ndarray:
    """Expected visits per (condition, day, organisation)."""
    weights = np.array([PROFILES[code].weight for code in CODES])
    shares = weights / weights.sum()
    weekday = WEEKLY / WEEKLY.mean()
    trend = 1 + TREND_PER_YEAR * (days - pd.Timestamp(start)).days.to_numpy() / 365.25
    doy = days.day_of_year.to_numpy()
    weekly = weekday[days.day_of_week.to_numpy()]
    per_day = np.stack(
        [
            shares[i] * seasonal_factor(code, doy) * (1.0 if PROFILES[code].acute else weekly)
            for i, code in enumerate(CODES)
        ]
    )  # (condition, day)
    expected = (per_day * trend)[:, :, None] * org_rates[None, None, :]
    window = (days >= pd.Timestamp(outbreak.start)) & (days < pd.Timestamp(outbreak.end))
    expected[CODES.index(outbreak.code), window, 0] *= outbreak.factor
    return expected


def _pick_patients(
    rng: np.random.Generator,
    cond: np.ndarray,
    day: np.ndarray,
    org: np.ndarray,
    home: np.ndarray,
    sex: np.ndarray,
    birth: np.ndarray,
    days: pd.DatetimeIndex,
) -> np.ndarray:
    """For each visit, a patient of its organisation drawn by the condition's demographic profile (-1 when
    nobody there fits). Ages are taken per year of the period, so the age limits hold at the visit."""
    chosen = np.full(len(cond), -1)
    year = day // 365
    female, male = sex == "female", sex == "male"
    group_keys = (cond * (year.max() + 1) + year) * (org.max() + 1) + org
    for key in np.unique(group_keys):
        members = np.flatnonzero(group_keys == key)
        c, y, o = cond[members[0]], year[members[0]], org[members[0]]
        profile = PROFILES[CODES[c]]
        age = _years_since(birth, days.to_numpy()[min(y * 365, len(days) - 1)])  # at this year's start
        unstated = min(profile.female, profile.male)  # other or unknown sex: the lower weight
        sex_weight = np.where(female, profile.female, np.where(male, profile.male, unstated))
        weight = (
            sex_weight
            * (0.05 + np.exp(-0.5 * ((age - profile.age_mean) / profile.age_sd) ** 2))
            * (home == o)
            * (age >= max(profile.min_age, 0))
            * (age + 1 <= profile.max_age)
        )
        if weight.sum() > 0:
            chosen[members] = rng.choice(len(weight), size=len(members), p=weight / weight.sum())
    return chosen


def _start_times(
    rng: np.random.Generator, cond: np.ndarray, day: np.ndarray, days: pd.DatetimeIndex
) -> np.ndarray:
    """Naive UTC start times: office hours (08:00-18:00) for planned care, any hour for acute conditions."""
    acute = np.array([PROFILES[code].acute for code in CODES])[cond]
    minutes = np.where(acute, rng.integers(0, 24 * 60, len(cond)), rng.integers(8 * 60, 18 * 60, len(cond)))
    return days.to_numpy()[day].astype("datetime64[m]") + minutes.astype("timedelta64[m]")


def _chronic_conditions(rng: np.random.Generator, birth: np.ndarray, end: date) -> np.ndarray:
    """Which patients carry each chronic condition of :data:`CHRONIC` (more likely with age)."""
    age = _years_since(birth, end)
    adult = age >= 18
    prevalence = np.stack(
        [ceiling / (1 + np.exp(-(age - midpoint) / 8)) for midpoint, ceiling in CHRONIC.values()], axis=1
    )
    return (rng.random(prevalence.shape) < prevalence) & adult[:, None]


def _years_since(birth: np.ndarray, moment: object) -> np.ndarray:
    """Fractional years from each birth date (``datetime64[D]``) to ``moment`` (one or one per birth)."""
    return (np.asarray(moment).astype("datetime64[D]") - birth).astype(float) / 365.25


def _effect(name: str, cond: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """A profile effect (``fever``, ``spo2_drop``...) of each visit's principal and listed chronic
    conditions."""
    effect = np.array([getattr(PROFILES[code], name) for code in CODES])[cond]
    for j, code in enumerate(CHRONIC):
        effect = effect + secondary[:, j] * CHRONIC_EFFECTS.get(code, {}).get(name, 0.0)
    return effect


def _vitals(
    rng: np.random.Generator, cond: np.ndarray, age: np.ndarray, secondary: np.ndarray
) -> dict[str, np.ndarray]:
    """Vital signs that depend on age and conditions, within the database's plausible ranges."""
    n = len(cond)
    young = np.clip(5 - age, 0, 5) * 8  # small children's faster heart
    systolic = (
        112 + 0.45 * np.clip(age - 20, 0, None) + _effect("systolic", cond, secondary) + rng.normal(0, 12, n)
    )
    heart = 74 + young + _effect("heart_rate", cond, secondary) + rng.normal(0, 9, n)
    temperature = 36.8 + _effect("fever", cond, secondary) * rng.uniform(0.5, 1.3, n) + rng.normal(0, 0.3, n)
    spo2 = (
        98
        - _effect("spo2_drop", cond, secondary) * rng.uniform(0.5, 1.5, n)
        - 0.04 * np.clip(age - 60, 0, None)
        + rng.normal(0, 1.2, n)
    )
    return {
        "systolic_mmhg": np.round(np.clip(systolic, 70, 230)),
        "heart_rate_bpm": np.round(np.clip(heart, 35, 200)),
        "temperature_c": np.round(np.clip(temperature, 34.5, 42.0), 1),
        "spo2_pct": np.round(np.clip(spo2, 70, 100)),
    }


def _outcomes(
    rng: np.random.Generator,
    cond: np.ndarray,
    age: np.ndarray,
    vitals: dict[str, np.ndarray],
    secondary: np.ndarray,
) -> np.ndarray:
    """Outcomes: adverse (admitted, died) more likely when old, with low SpO2, fast heart, fever, adverse
    conditions (myocardial infarction, stroke, pneumonia...) and chronic disease."""
    n = len(cond)
    logit = (
        -3.4
        + 0.035 * (age - 50)
        + _effect("risk", cond, secondary)
        + 0.3 * secondary.sum(axis=1)
        + 0.35 * np.clip(94 - vitals["spo2_pct"], 0, None)
        + 0.04 * np.clip(vitals["heart_rate_bpm"] - 100, 0, None)
        + 0.5 * (vitals["temperature_c"] >= 38.5)
    )
    adverse = rng.random(n) < 1 / (1 + np.exp(-logit))
    death_logit = -3.2 + 0.05 * (age - 70) + 0.2 * np.clip(90 - vitals["spo2_pct"], 0, None)
    died = adverse & (rng.random(n) < 1 / (1 + np.exp(-death_logit)))
    ordinary = rng.choice(
        [Outcome.DISCHARGED.value, Outcome.FOLLOW_UP.value, Outcome.REFERRED.value],
        size=n,
        p=[0.6, 0.28, 0.12],
    )
    return np.where(died, Outcome.DIED.value, np.where(adverse, Outcome.ADMITTED.value, ordinary)).astype(
        object
    )


def _departments(rng: np.random.Generator, cond: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Each visit's department, from its condition's departments; children's general and respiratory care
    is paediatrics."""
    department = np.empty(len(cond), dtype=object)
    for c, code in enumerate(CODES):
        members = np.flatnonzero(cond == c)
        names, weights = zip(*PROFILES[code].departments, strict=True)
        p = np.array(weights, dtype=float)
        department[members] = rng.choice([d.value for d in names], size=len(members), p=p / p.sum())
    children = (age < PAEDIATRIC_AGE) & np.isin(department, [d.value for d in SEEN_BY_PAEDIATRICS])
    department[children] = PAED.value
    return department
