"""Response body of the blood bank report (counts only: no patient or donor appears in it)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from caresync.bloodbank.reports.service import BloodBankReport


class _Row(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class StockOut(_Row):
    """Units on the shelf now."""

    blood_group: str
    component: str
    available: int = Field(description="released and unexpired")
    reserved: int = Field(description="held for a request (reserved or crossmatched)")
    quarantined: int = Field(description="awaiting test results")


class UsageOut(_Row):
    """Units issued and transfused in the period."""

    blood_group: str
    component: str
    issued: int
    transfused: int


class MonthUsageOut(_Row):
    """Units issued and transfused in one month (``YYYY-MM``, UTC)."""

    month: str
    issued: int
    transfused: int


class OutdateOut(_Row):
    """Expired units out of the units that left the inventory (issued, transfused, expired, discarded)."""

    component: str = Field(description="a component, or 'all'")
    expired: int
    left_inventory: int
    rate: float | None = Field(description="expired / left_inventory (0 to 1); null when none left")


class WastageOut(_Row):
    """Units lost, by component and reason ('expired', or the reason given when discarding)."""

    component: str
    reason: str
    units: int


class CrossmatchOut(_Row):
    """Crossmatch-to-transfusion ratio of red cells and whole blood."""

    crossmatched: int
    transfused: int
    ratio: float | None = Field(description="crossmatched / transfused; null when none was transfused")
    benchmark: float = Field(description="accepted benchmark: a C:T ratio of 2.0 or less (AABB)")
    within_benchmark: bool | None


class DonationMonthOut(_Row):
    """Completed donations in one month by the donors' blood group ('untyped' when not known yet)."""

    month: str
    blood_group: str
    completed: int


class DonationSummaryOut(_Row):
    """Donation visits by outcome and the share deferred at screening."""

    completed: int
    deferred: int
    incomplete: int
    visits: int
    deferral_rate: float | None = Field(description="deferred / visits (0 to 1); null without visits")


class ReportOut(BaseModel):
    """The report of the caller's organisation for a period of whole UTC days."""

    organisation_id: uuid.UUID
    organisation_name: str
    date_from: date
    date_to: date
    generated_at: datetime
    stock: list[StockOut]
    utilisation: list[UsageOut]
    utilisation_by_month: list[MonthUsageOut]
    outdates: list[OutdateOut]
    wastage: list[WastageOut]
    crossmatch: CrossmatchOut
    donations_by_month: list[DonationMonthOut]
    donations: DonationSummaryOut

    @classmethod
    def of(cls, report: BloodBankReport) -> ReportOut:
        """From the service's report."""
        return cls(
            organisation_id=report.organisation_id,
            organisation_name=report.organisation_name,
            date_from=report.period.date_from,
            date_to=report.period.date_to,
            generated_at=report.generated_at,
            stock=[StockOut.model_validate(r) for r in report.stock],
            utilisation=[UsageOut.model_validate(r) for r in report.utilisation],
            utilisation_by_month=[MonthUsageOut.model_validate(r) for r in report.utilisation_by_month],
            outdates=[OutdateOut.model_validate(r) for r in report.outdates],
            wastage=[WastageOut.model_validate(r) for r in report.wastage],
            crossmatch=CrossmatchOut.model_validate(report.crossmatch),
            donations_by_month=[DonationMonthOut.model_validate(r) for r in report.donations_by_month],
            donations=DonationSummaryOut.model_validate(report.donations),
        )
