"""Response bodies of the statistics API (aggregates only: no patient appears in them), and each one's main
table as CSV (:meth:`csv`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from caresync.analytics.statistics.associations import Associations
from caresync.analytics.statistics.demographics import GroupShare
from caresync.analytics.statistics.service import Analysis, Trends
from caresync.analytics.statistics.trends import SeasonalProfile
from caresync.core.csvfile import csv_table


def _model_csv(columns: Sequence[str], rows: Iterable[BaseModel]) -> bytes:
    return csv_table(columns, ([getattr(row, column) for column in columns] for row in rows))


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Answer(BaseModel):
    """What the answer covers."""

    organisation_id: uuid.UUID | None = Field(
        description="the organisation asked for; null: every one in scope"
    )
    start: date | None = Field(description="first day (UTC) of the period; null: unbounded")
    end: date | None = Field(description="last day (UTC), included; null: unbounded")

    @staticmethod
    def filters(analysis: Analysis[Any]) -> dict[str, Any]:
        """The common fields of an answer."""
        f = analysis.filters
        return {"organisation_id": f.organisation_id, "start": f.start, "end": f.end}


class WeeklyTopOut(_Row):
    """One of the top conditions of an ISO week."""

    week: str = Field(description="ISO week, e.g. 2026-W03")
    week_start: date = Field(description="its Monday")
    rank: int
    code: str = Field(description="ICD-10")
    name: str
    count: int = Field(description="encounters diagnosed with the condition that week")
    previous: int = Field(description="the same count the week before")
    change: int = Field(description="count - previous")
    change_pct: float | None = Field(description="percent change; null when previous is 0")


class TrendsOut(_Answer):
    """The top 5 conditions of every ISO week from ``first_week`` to ``last_week`` (Mondays)."""

    first_week: date
    last_week: date
    weeks: list[WeeklyTopOut]

    @classmethod
    def of(cls, analysis: Analysis[Trends]) -> TrendsOut:
        """The body of a trends answer."""
        result = analysis.result
        return cls(
            **cls.filters(analysis),
            first_week=result.first_week,
            last_week=result.last_week,
            weeks=[WeeklyTopOut.model_validate(row) for row in result.weeks],
        )

    def csv(self) -> bytes:
        """The weekly table as CSV."""
        return _model_csv(list(WeeklyTopOut.model_fields), self.weeks)


class MonthProfileOut(_Row):
    """A condition's mean count in one calendar month and its ratio to the condition's monthly mean."""

    code: str
    name: str
    month: int = Field(description="1-12")
    months_observed: int = Field(description="how many such months the period covers")
    mean_count: float
    ratio: float = Field(description="mean_count / the condition's mean over all months")
    peak: bool = Field(description="the condition's highest month")


class SeasonalPeakOut(_Row):
    """A condition's peak month."""

    code: str
    name: str
    total: int
    monthly_mean: float
    peak_month: int
    peak_ratio: float
    usual_peak_month: int | None = Field(description="the month this condition usually peaks in, if seasonal")


class SeasonalityOut(_Answer):
    """Seasonal profiles of the conditions seen in the ``months`` months ``first_month`` to
    ``last_month``."""

    months: int
    first_month: str
    last_month: str
    peaks: list[SeasonalPeakOut]
    profile: list[MonthProfileOut]

    @classmethod
    def of(cls, analysis: Analysis[SeasonalProfile]) -> SeasonalityOut:
        """The body of a seasonality answer."""
        result = analysis.result
        return cls(
            **cls.filters(analysis),
            months=result.months,
            first_month=result.first_month,
            last_month=result.last_month,
            peaks=[SeasonalPeakOut.model_validate(row) for row in result.peaks],
            profile=[MonthProfileOut.model_validate(row) for row in result.profile],
        )

    def csv(self) -> bytes:
        """The month-by-month profile as CSV."""
        return _model_csv(list(MonthProfileOut.model_fields), self.profile)


class GroupShareOut(_Row):
    """One age band or sex in one scope."""

    scope: str = Field(description="'overall' or an organisation id")
    dimension: str = Field(description="age_band or sex")
    group: str
    patients: int = Field(description="distinct patients (age at their latest encounter of the period)")
    patient_share: float | None
    encounters: int = Field(description="distinct encounters (age at the encounter)")
    encounter_share: float | None


class DemographicsOut(_Answer):
    """Age bands and sex, overall then per organisation."""

    groups: list[GroupShareOut]

    @classmethod
    def of(cls, analysis: Analysis[list[GroupShare]]) -> DemographicsOut:
        """The body of a demographics answer."""
        return cls(
            **cls.filters(analysis), groups=[GroupShareOut.model_validate(row) for row in analysis.result]
        )

    def csv(self) -> bytes:
        """The groups as CSV."""
        return _model_csv(list(GroupShareOut.model_fields), self.groups)


class GroupCellOut(_Row):
    """One row of a contingency table: patients of a group with and without the condition."""

    group: str
    with_condition: int
    without_condition: int
    expected_with: float
    expected_without: float


class LowExpectedOut(_Row):
    """A cell whose expected count is below the minimum (5)."""

    group: str
    has_condition: bool
    expected: float


class AssociationOut(_Row):
    """The chi-square test of one grouping against one condition."""

    grouping: str = Field(description="age_band or sex")
    code: str
    name: str
    patients: int
    cases: int = Field(description="patients with the condition")
    statistic: float = Field(description="chi-square (Yates-corrected on 2x2 tables)")
    dof: int
    p_value: float
    p_adjusted: float = Field(description="Benjamini-Hochberg adjusted across the grouping's conditions")
    significant: bool = Field(description="p_adjusted <= alpha")
    cramers_v: float
    yates_correction: bool
    table: list[GroupCellOut]
    low_expected: list[LowExpectedOut] = Field(description="cells with an expected count below 5")
    warning: str | None = Field(description="set when some expected counts are below 5")


class SkippedOut(_Row):
    """A grouping x condition pair that could not be tested."""

    grouping: str
    code: str
    reason: str


class SignificantOut(BaseModel):
    """An association that holds after the correction."""

    grouping: str
    code: str


class AssociationsOut(_Answer):
    """Chi-square tests of independence, with the method stated."""

    unit: str = Field(description="what one observation is: each patient once")
    alpha: float
    correction: str = Field(description="multiple-testing correction, one family per grouping")
    continuity: str = Field(description="when Yates' continuity correction applies")
    min_expected: float
    patients: int
    significant: list[SignificantOut]
    tests: list[AssociationOut]
    skipped: list[SkippedOut]

    @classmethod
    def of(cls, analysis: Analysis[Associations]) -> AssociationsOut:
        """The body of an associations answer."""
        result = analysis.result
        return cls(
            **cls.filters(analysis),
            unit=result.unit,
            alpha=result.alpha,
            correction=result.correction,
            continuity="Yates on 2x2 tables (1 degree of freedom) only",
            min_expected=result.min_expected,
            patients=result.patients,
            significant=[
                SignificantOut(grouping=t.grouping, code=t.code) for t in result.tests if t.significant
            ],
            tests=[AssociationOut.model_validate(row) for row in result.tests],
            skipped=[SkippedOut.model_validate(row) for row in result.skipped],
        )

    def csv(self) -> bytes:
        """One test per row; ``low_expected`` names the cells below 5 (``group:with=expected``)."""
        columns = [
            name for name in AssociationOut.model_fields if name not in ("table", "low_expected", "warning")
        ]
        rows = (
            [
                *(getattr(test, column) for column in columns),
                "; ".join(
                    f"{c.group}:{'with' if c.has_condition else 'without'}={c.expected}"
                    for c in test.low_expected
                ),
            ]
            for test in self.tests
        )
        return csv_table([*columns, "low_expected"], rows)
