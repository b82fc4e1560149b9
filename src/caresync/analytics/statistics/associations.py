"""Chi-square tests of independence between a demographic grouping (age band; sex) and each condition.

Choices, so that a reader can judge the numbers:

- **Unit: the patient.** The test assumes independent observations; a patient seen ten times is one
  person, so each patient counts once: in the age band of their age at their latest encounter of the period
  and their recorded sex, and as *with* the condition when any of their encounters in the period carried
  it. (Counting encounters would let frequent attenders weigh many times over.)
- **Table:** groups (rows, only groups with at least one patient) x with / without the condition. A
  condition that nobody or everybody has, or a grouping with a single group, cannot be tested and is listed
  as skipped with the reason.
- **Statistic:** :func:`scipy.stats.chi2_contingency` with its default continuity correction: Yates'
  correction is applied to 2x2 tables (one degree of freedom, e.g. female/male), never to larger ones.
- **Effect size:** Cramér's V = sqrt(chi2 / (n (min(rows, columns) - 1))) from the *uncorrected* Pearson
  statistic (the usual definition; 0 = no association, 1 = complete).
- **Expected counts:** every cell with an expected count below 5 is named: the chi-square approximation is
  doubtful there (consider merging groups or Fisher's exact test).
- **Multiple testing:** alpha = 0.05 with the Benjamini-Hochberg false-discovery-rate correction across the
  conditions tested for each grouping (one family per grouping): many conditions are screened at once, and
  controlling the share of false discoveries keeps power where Holm's family-wise control would lose it.
  ``p_adjusted`` is the BH-adjusted p-value; ``significant`` means ``p_adjusted <= alpha``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2

from caresync.analytics.rules import CONDITION_BY_CODE, CONDITIONS
from caresync.analytics.statistics.demographics import DIMENSIONS, encounter_rows, latest_per_patient
from caresync.analytics.statistics.trends import condition_name

ALPHA = 0.05
MIN_EXPECTED = 5.0
UNIT = "patient"
CORRECTION = "benjamini-hochberg"


@dataclass(frozen=True)
class ChiSquare:
    """A chi-square test of independence on one contingency table."""

    statistic: float
    dof: int
    p_value: float
    cramers_v: float
    n: int
    yates: bool
    expected: np.ndarray


def cramers_v(observed: np.ndarray, expected: np.ndarray) -> float:
    """Cramér's V from the uncorrected Pearson statistic of a table and its expected counts."""
    pearson = float(((observed - expected) ** 2 / expected).sum())
    return float(np.sqrt(pearson / (observed.sum() * (min(observed.shape) - 1))))


def chi_square(observed: np.ndarray) -> ChiSquare:
    """The test on a table of counts (at least 2x2, no empty row or column); Yates' correction on 2x2."""
    return chi_squares(np.asarray(observed)[np.newaxis])[0]


def chi_squares(tables: np.ndarray) -> list[ChiSquare]:
    """:func:`chi_square` of each table of a stack (tables of one shape), all at once: the arithmetic of
    :func:`scipy.stats.chi2_contingency` (expected counts from the margins; on 2x2 tables Yates' correction,
    never more than the difference; Pearson's statistic; p from the chi-square distribution) without its
    per-call overhead, which dominated with dozens of conditions."""
    observed = np.asarray(tables, dtype="float64")
    n = observed.sum(axis=(1, 2))
    expected = observed.sum(axis=2, keepdims=True) * observed.sum(axis=1, keepdims=True) / n[:, None, None]
    dof = (observed.shape[1] - 1) * (observed.shape[2] - 1)
    pearson = ((observed - expected) ** 2 / expected).sum(axis=(1, 2))
    statistic = pearson
    if dof == 1:
        diff = expected - observed
        corrected = observed + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
        statistic = ((corrected - expected) ** 2 / expected).sum(axis=(1, 2))
    p_values = chi2.sf(statistic, dof)
    v = np.sqrt(pearson / (n * (min(observed.shape[1:]) - 1)))
    return [
        ChiSquare(
            statistic=float(statistic[i]),
            dof=dof,
            p_value=float(p_values[i]),
            cramers_v=float(v[i]),
            n=int(n[i]),
            yates=dof == 1,
            expected=expected[i],
        )
        for i in range(len(observed))
    ]


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (step-up: p_(i) m / i, made monotone from the largest, capped
    at 1), in the order given."""
    p = np.asarray(p_values, dtype="float64")
    if p.size == 0:
        return []
    order = np.argsort(p)
    scaled = p[order] * p.size / np.arange(1, p.size + 1)
    monotone = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty_like(p)
    adjusted[order] = monotone
    return [float(value) for value in adjusted]


@dataclass(frozen=True)
class GroupCell:
    """One row of a contingency table: a group's patients with and without the condition, observed and
    expected under independence."""

    group: str
    with_condition: int
    without_condition: int
    expected_with: float
    expected_without: float


@dataclass(frozen=True)
class LowExpected:
    """A cell whose expected count is below :data:`MIN_EXPECTED`."""

    group: str
    has_condition: bool
    expected: float


@dataclass(frozen=True)
class AssociationTest:
    """The test of one grouping against one condition (``cases``: patients with it, of ``patients``)."""

    grouping: str
    code: str
    name: str
    patients: int
    cases: int
    statistic: float
    dof: int
    p_value: float
    p_adjusted: float
    significant: bool
    cramers_v: float
    yates_correction: bool
    table: list[GroupCell]
    low_expected: list[LowExpected]

    @property
    def warning(self) -> str | None:
        """A sentence for the reader when some expected counts are below :data:`MIN_EXPECTED`."""
        if not self.low_expected:
            return None
        cells = len(self.table) * 2
        return (
            f"{len(self.low_expected)} of {cells} cells have an expected count below {MIN_EXPECTED:g}: "
            "the chi-square approximation may be unreliable for this test."
        )


@dataclass(frozen=True)
class Skipped:
    """A grouping x condition pair that could not be tested, and why."""

    grouping: str
    code: str
    reason: str


@dataclass(frozen=True)
class Associations:
    """Every test, per grouping in the order of :data:`DIMENSIONS`, conditions in the order of
    :data:`caresync.analytics.rules.CONDITIONS`."""

    unit: str
    alpha: float
    correction: str
    min_expected: float
    patients: int
    tests: list[AssociationTest]
    skipped: list[Skipped]


def patient_conditions(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per patient: ``age_band`` and ``sex`` (at the latest encounter) and one boolean column per
    condition code seen in the frame (any encounter with it)."""
    patients = latest_per_patient(encounter_rows(frame)).set_index("patient_id")[list(DIMENSIONS)]
    people, who = pd.factorize(frame["patient_id"])
    codes, conditions = pd.factorize(frame["code"], sort=True)
    has = np.zeros((len(who), len(conditions)), dtype=bool)
    has[people, codes] = True
    table = pd.DataFrame(
        has, index=pd.Index(who, name="patient_id"), columns=pd.Index(conditions, name="code")
    )
    return patients.join(table.reindex(patients.index, fill_value=False))


def _cells(groups: pd.Index, observed: np.ndarray, expected: np.ndarray) -> list[GroupCell]:
    return [
        GroupCell(
            group=str(group),
            with_condition=int(observed[i, 0]),
            without_condition=int(observed[i, 1]),
            expected_with=round(float(expected[i, 0]), 3),
            expected_without=round(float(expected[i, 1]), 3),
        )
        for i, group in enumerate(groups)
    ]


def _low(groups: pd.Index, expected: np.ndarray) -> list[LowExpected]:
    return [
        LowExpected(group=str(groups[i]), has_condition=j == 0, expected=round(float(expected[i, j]), 3))
        for i, j in zip(*np.nonzero(expected < MIN_EXPECTED), strict=True)
    ]


def _grouping_tests(
    patients: pd.DataFrame, grouping: str, codes: list[str], alpha: float
) -> tuple[list[AssociationTest], list[Skipped]]:
    skipped: list[Skipped] = []
    groups = patients[grouping].astype(str)
    sizes = groups.value_counts().sort_index()
    cases = patients[codes].groupby(groups).sum().reindex(sizes.index).to_numpy(dtype="int64")
    tables = np.stack([cases.T, sizes.to_numpy() - cases.T], axis=2)  # condition x group x with/without
    testable: list[int] = []
    for position, (code, observed) in enumerate(zip(codes, tables, strict=True)):
        if len(sizes) < 2:
            skipped.append(Skipped(grouping, code, f"only one {grouping.replace('_', ' ')} group present"))
        elif (observed.sum(axis=0) == 0).any():
            who = "every patient has" if observed[:, 1].sum() == 0 else "no patient has"
            skipped.append(Skipped(grouping, code, f"{who} the condition"))
        else:
            testable.append(position)
    results = chi_squares(tables[testable]) if testable else []
    tested = [(codes[p], tables[p], sizes.index, result) for p, result in zip(testable, results, strict=True)]
    adjusted = benjamini_hochberg([result.p_value for *_, result in tested])
    tests = [
        AssociationTest(
            grouping=grouping,
            code=code,
            name=condition_name(code),
            patients=result.n,
            cases=int(observed[:, 0].sum()),
            statistic=round(result.statistic, 4),
            dof=result.dof,
            p_value=result.p_value,
            p_adjusted=p_adjusted,
            significant=p_adjusted <= alpha,
            cramers_v=round(result.cramers_v, 4),
            yates_correction=result.yates,
            table=_cells(groups, observed, result.expected),
            low_expected=_low(groups, result.expected),
        )
        for (code, observed, groups, result), p_adjusted in zip(tested, adjusted, strict=True)
    ]
    return tests, skipped


def associations(frame: pd.DataFrame, *, alpha: float = ALPHA) -> Associations:
    """Chi-square tests of every grouping (age band, sex) against every condition in the frame."""
    patients = patient_conditions(frame) if len(frame) else pd.DataFrame(columns=list(DIMENSIONS))
    present = {str(code) for code in frame["code"].dropna().unique()}
    codes = [c.code for c in CONDITIONS if c.code in present] + sorted(present - set(CONDITION_BY_CODE))
    tests: list[AssociationTest] = []
    skipped: list[Skipped] = []
    for grouping in DIMENSIONS:
        grouping_tests, grouping_skipped = _grouping_tests(patients, grouping, codes, alpha)
        tests += grouping_tests
        skipped += grouping_skipped
    return Associations(
        unit=UNIT,
        alpha=alpha,
        correction=CORRECTION,
        min_expected=MIN_EXPECTED,
        patients=len(patients),
        tests=tests,
        skipped=skipped,
    )
