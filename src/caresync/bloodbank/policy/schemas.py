"""Request and response bodies of the blood bank settings API. Ranges are checked by the service (one
place, the same messages for the API and the settings page)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from caresync.bloodbank.models import BloodBankPolicy
from caresync.bloodbank.policy.service import is_saved
from caresync.bloodbank.rules import profile


class PolicyIn(BaseModel):
    """All of an organisation's blood bank settings (PUT replaces them)."""

    model_config = ConfigDict(extra="forbid")

    rule_profile: str = Field(description="Donor rule profile: US, UK or WHO.", examples=["US"])
    low_stock_days: float = Field(description="Low stock below this many days of supply (0.5 to 60).")
    critical_stock_days: float = Field(description="Critical below this many days of supply (<= low).")
    stock_thresholds: dict[str, float] = Field(
        default_factory=dict, description='Low-stock overrides in days of supply, e.g. {"O-:red_cells": 5}.'
    )
    baseline_daily_use: dict[str, float] = Field(
        default_factory=dict,
        description='Units used a day before there is history, e.g. {"O+:red_cells": 4}.',
    )
    expiry_warning_days: int = Field(description="Warn of units expiring within this many days (1 to 30).")
    callout_wave_size: int = Field(description="Donors alerted per call-out wave (1 to 500).")
    callout_cooldown_days: int = Field(description="Days before a donor may be alerted again (1 to 90).")
    donation_chairs: int = Field(description="Donation chairs, i.e. donors per appointment slot (1 to 50).")
    return_window_minutes: int = Field(
        description="Minutes an issued unit may come back to stock (0 to 240)."
    )


class PolicyOut(BaseModel):
    """An organisation's blood bank settings; ``saved`` is false while they are the defaults."""

    organisation_id: uuid.UUID
    saved: bool
    rule_profile: str
    rule_profile_title: str
    low_stock_days: float
    critical_stock_days: float
    stock_thresholds: dict[str, float]
    baseline_daily_use: dict[str, float]
    expiry_warning_days: int
    callout_wave_size: int
    callout_cooldown_days: int
    donation_chairs: int
    return_window_minutes: int
    updated_at: datetime | None

    @classmethod
    def of(cls, policy: BloodBankPolicy) -> PolicyOut:
        """From a saved or default policy row."""
        saved = is_saved(policy)
        return cls(
            organisation_id=policy.organisation_id,
            saved=saved,
            rule_profile=policy.rule_profile,
            rule_profile_title=profile(policy.rule_profile).title,
            low_stock_days=policy.low_stock_days,
            critical_stock_days=policy.critical_stock_days,
            stock_thresholds=dict(policy.stock_thresholds or {}),
            baseline_daily_use=dict(policy.baseline_daily_use or {}),
            expiry_warning_days=policy.expiry_warning_days,
            callout_wave_size=policy.callout_wave_size,
            callout_cooldown_days=policy.callout_cooldown_days,
            donation_chairs=policy.donation_chairs,
            return_window_minutes=policy.return_window_minutes,
            updated_at=policy.updated_at if saved else None,
        )
