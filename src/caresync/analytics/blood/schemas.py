"""Response bodies of the blood supply analytics API (counts only: no patient or donor but the caller), and
each one's tables as CSV (:meth:`csv`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from caresync.analytics.blood import forecast, service
from caresync.bloodbank.reports import service as reports
from caresync.core.csvfile import csv_table

SeriesTable = Literal["usage", "donations"]
ForecastTable = Literal["forecast", "metrics"]
DonationTable = Literal["groups", "donors"]


def _rows_csv(columns: Sequence[str], rows: Iterable[BaseModel]) -> bytes:
    return csv_table(columns, ([getattr(row, column) for column in columns] for row in rows))


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Answer(BaseModel):
    """Which blood bank the answer is about."""

    organisation_id: uuid.UUID
    organisation_name: str


class _Period(_Answer):
    start: date = Field(description="first day (UTC) of the period")
    end: date = Field(description="last day (UTC), included")

    @staticmethod
    def of_period(asked: reports.Period) -> dict[str, date]:
        """The period's fields."""
        return {"start": asked.date_from, "end": asked.date_to}


class SupplyOut(_Row):
    """One group's red cells now and its projection without new supplies."""

    blood_group: str
    available: int = Field(description="available, unexpired red cells now")
    expiring_7_days: int = Field(description="of them, expiring within 7 days")
    daily_demand: float | None = Field(description="forecast units a day; null when no use is known")
    demand_source: str = Field(description="forecast, policy baseline or none")
    days_of_supply: float | None = Field(description="available / daily demand")
    low_stock_days: float = Field(description="the policy's minimum, in days of supply")
    critical_stock_days: float
    minimum_units: float | None = Field(description="the minimum in units (low-stock days x daily demand)")
    shortage_date: date | None = Field(description="first day below the minimum without new supplies")
    level: str = Field(description="ok, watch, short or critical")


SUPPLY_COLUMNS = tuple(SupplyOut.model_fields)


class ShortagesOut(_Answer):
    """Days of supply and projected shortages per group, and the groups whose donors to call first."""

    today: date
    watch_days: int = Field(default=forecast.WATCH_DAYS, description="a shortage this close is 'watch'")
    call_groups: list[str] = Field(description="groups to call donors for, most needed first")
    levels: dict[str, int] = Field(description="how many groups are at each level")
    supplies: list[SupplyOut]

    @classmethod
    def of(cls, outlook: service.Outlook) -> ShortagesOut:
        """The body of an outlook."""
        return cls(
            organisation_id=outlook.organisation_id,
            organisation_name=outlook.organisation_name,
            today=outlook.today,
            call_groups=outlook.call_groups,
            levels={level: sum(s.level == level for s in outlook.supplies) for level in forecast.LEVELS},
            supplies=[SupplyOut.model_validate(s) for s in outlook.supplies],
        )

    def csv(self) -> bytes:
        """The supply table."""
        return _rows_csv(SUPPLY_COLUMNS, self.supplies)


class StockOut(_Row):
    """Units on the shelf now of one group and component."""

    blood_group: str
    component: str
    available: int
    reserved: int = Field(description="held for a request: reserved or crossmatched")
    quarantined: int


class SummaryOut(ShortagesOut):
    """The blood bank's headline figures: stock by group and component, red cell supply and the demand
    forecasts' verdicts."""

    stock: list[StockOut]
    forecast_methods: dict[str, str] = Field(description="per group: sarima, moving average or none")
    verdicts: dict[str, str] = Field(description="per group: the forecast against its baseline")
    seconds: float = Field(description="time the outlook took to compute (cached afterwards)")

    @classmethod
    def of_summary(cls, outlook: service.Outlook, stock: list[reports.StockRow]) -> SummaryOut:
        """The body of an outlook and the stock now."""
        return cls(
            **ShortagesOut.of(outlook).model_dump(),
            stock=[StockOut.model_validate(row) for row in stock],
            forecast_methods={f.blood_group: f.method for f in outlook.forecasts},
            verdicts={f.blood_group: f.verdict for f in outlook.forecasts if f.verdict},
            seconds=outlook.seconds,
        )

    def csv(self) -> bytes:
        """The stock table."""
        return _rows_csv(tuple(StockOut.model_fields), self.stock)


class WeekRowOut(_Row):
    """Units of one group and component that moved in an ISO week."""

    week: str = Field(description="the Monday")
    blood_group: str
    component: str
    issued: int
    transfused: int
    expired: int
    discarded: int = Field(description="discarded for another reason than expiry")


class DonationWeekOut(_Row):
    """Completed donations in an ISO week."""

    week: str
    donations: int


class SeriesOut(_Period):
    """Weekly usage and wastage by group and component, and donations per week."""

    weeks: list[str] = Field(description="the Mondays of the period's weeks")
    usage: list[WeekRowOut] = Field(description="weeks without any movement are absent")
    donations: list[DonationWeekOut]

    @classmethod
    def of(cls, found: service.Series) -> SeriesOut:
        """The body of a series."""
        return cls(
            organisation_id=found.organisation_id,
            organisation_name=found.organisation_name,
            **cls.of_period(found.period),
            weeks=found.weeks,
            usage=[WeekRowOut.model_validate(row) for row in found.usage],
            donations=[DonationWeekOut.model_validate(row) for row in found.donations],
        )

    def csv(self, table: SeriesTable) -> bytes:
        """The usage table or the donations table."""
        if table == "donations":
            return _rows_csv(tuple(DonationWeekOut.model_fields), self.donations)
        return _rows_csv(tuple(WeekRowOut.model_fields), self.usage)


class AccuracyOut(_Row):
    """Errors of one forecast on a test window."""

    mae: float
    mse: float
    rmse: float
    mape: float | None
    mase: float | None


class SplitOut(_Row):
    """One chronological split (the test window after the training window)."""

    split: str
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    train_size: int
    test_size: int
    model: AccuracyOut
    baseline: AccuracyOut
    coverage_80: float
    coverage_95: float
    better: str
    verdict: str


class PointOut(_Row):
    """One forecast week (red cells issued)."""

    week: str
    predicted: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    baseline: float | None


class GroupForecastOut(_Row):
    """The red cell demand forecast of one group."""

    blood_group: str
    method: str = Field(description="sarima, moving average (short history) or none")
    model: str
    baseline: str
    note: str = Field(description="how the forecast was made and why")
    weeks: int = Field(description="whole weeks of history")
    daily_demand: float | None
    evaluations: list[SplitOut]
    better: str
    verdict: str
    forecast: list[PointOut]


METRIC_COLUMNS = (
    "blood_group",
    "method",
    "split",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
    "model_mae",
    "model_rmse",
    "model_mape",
    "model_mase",
    "baseline",
    "baseline_mae",
    "baseline_rmse",
    "baseline_mape",
    "baseline_mase",
    "coverage_80",
    "coverage_95",
    "verdict",
)


class ForecastOut(_Answer):
    """Red cells issued per week, forecast for the next weeks per group with 80 % and 95 % intervals."""

    today: date
    horizon_weeks: int = forecast.HORIZON_WEEKS
    groups: list[GroupForecastOut]

    @classmethod
    def of(cls, outlook: service.Outlook) -> ForecastOut:
        """The body of an outlook."""
        return cls(
            organisation_id=outlook.organisation_id,
            organisation_name=outlook.organisation_name,
            today=outlook.today,
            groups=[GroupForecastOut.model_validate(f) for f in outlook.forecasts],
        )

    def csv(self, table: ForecastTable) -> bytes:
        """The forecast weeks of every group, or the test metrics of every group and split."""
        if table == "metrics":
            return csv_table(METRIC_COLUMNS, self._metric_rows())
        columns = ("blood_group", "method", *PointOut.model_fields)
        rows = ([g.blood_group, g.method, *p.model_dump().values()] for g in self.groups for p in g.forecast)
        return csv_table(columns, rows)

    def _metric_rows(self) -> Iterable[list[Any]]:
        for g in self.groups:
            for e in g.evaluations:
                m, b = e.model, e.baseline
                yield [
                    g.blood_group, g.method, e.split, e.train_start, e.train_end, e.test_start, e.test_end,
                    m.mae, m.rmse, m.mape, m.mase, g.baseline, b.mae, b.rmse, b.mape, b.mase,
                    e.coverage_80, e.coverage_95, e.verdict,
                ]  # fmt: skip


class DonationMonthOut(_Row):
    """Completed donations in a month by the donors' group."""

    month: str
    blood_group: str
    completed: int


class DonorMonthOut(_Row):
    """Completed donations in a month by first-time and returning donors."""

    month: str
    first_time: int
    returning: int


class DonationsOut(_Period):
    """Donation trends: per month by group and by first-time against returning donors, and the visits of
    the period by outcome."""

    by_group: list[DonationMonthOut]
    by_donor: list[DonorMonthOut]
    completed: int
    deferred: int
    incomplete: int
    deferral_rate: float | None

    @classmethod
    def of(cls, trends: service.DonationTrends) -> DonationsOut:
        """The body of the trends."""
        summary = trends.summary
        return cls(
            organisation_id=trends.organisation_id,
            organisation_name=trends.organisation_name,
            **cls.of_period(trends.period),
            by_group=[DonationMonthOut.model_validate(row) for row in trends.by_group],
            by_donor=[DonorMonthOut.model_validate(row) for row in trends.by_donor],
            completed=summary.completed,
            deferred=summary.deferred,
            incomplete=summary.incomplete,
            deferral_rate=summary.deferral_rate,
        )

    def csv(self, table: DonationTable) -> bytes:
        """Donations by group, or by first-time and returning donors."""
        if table == "donors":
            return _rows_csv(tuple(DonorMonthOut.model_fields), self.by_donor)
        return _rows_csv(tuple(DonationMonthOut.model_fields), self.by_group)


class NeedOut(_Row):
    """The need for the donor's group at a blood bank they give at."""

    organisation_id: uuid.UUID
    organisation_name: str
    level: str = Field(description="ok, watch, short or critical")


class DonationYearOut(_Row):
    """The donor's completed donations in a year."""

    year: int
    donations: int


class MyBloodOut(_Row):
    """A donor's own figures."""

    blood_group: str | None
    total_donations: int
    last_donation: date | None
    years: list[DonationYearOut]
    eligible_today: bool = Field(description="for whole blood")
    next_eligible_date: date | None = Field(description="null when eligible, or when no date can be given")
    reasons: list[str]
    needs: list[NeedOut]

    def csv(self) -> bytes:
        """Donations per year."""
        return _rows_csv(tuple(DonationYearOut.model_fields), self.years)
