"""Each organisation's blood bank settings: which donor rule profile applies, the stock thresholds in days
of supply (with per group/component overrides and a baseline daily use), how early to warn of expiry, the
call-out waves and cool-down, the donation chairs and the window for returning an issued unit.

:func:`get_policy` is the lookup every other blood bank service uses (no permission check: it holds no
patient or donor data); :func:`read_policy` and :func:`update_policy` are the use cases behind the API and
the settings page."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from caresync.bloodbank.models import BloodBankPolicy
from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS, RULE_PROFILES
from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Forbidden, ValidationFailed
from caresync.core.rbac import Perm, require, require_any


@dataclass(frozen=True)
class Bounds:
    """The accepted range of one numeric setting, and how to say it to an administrator."""

    low: float
    high: float
    whole: bool
    label: str
    unit: str


SETTINGS = (
    "rule_profile",
    "low_stock_days",
    "critical_stock_days",
    "stock_thresholds",
    "baseline_daily_use",
    "expiry_warning_days",
    "callout_wave_size",
    "callout_cooldown_days",
    "donation_chairs",
    "return_window_minutes",
)


def defaults() -> dict[str, Any]:
    """The settings an organisation has until its administrator saves others: the table's column defaults
    (which an unsaved row does not get by itself), with fresh dicts for the tables."""
    columns = BloodBankPolicy.__table__.c
    return {name: _column_default(columns[name].default) for name in SETTINGS}


def _column_default(default: Any) -> Any:
    return default.arg(None) if default.is_callable else default.arg


# The accepted ranges: the table's CHECK constraints, or tighter where the table has none.
NUMBERS: Mapping[str, Bounds] = {
    "low_stock_days": Bounds(0.5, 60, False, "Low stock", "days of supply"),
    "critical_stock_days": Bounds(0.5, 60, False, "Critical stock", "days of supply"),
    "expiry_warning_days": Bounds(1, 30, True, "Expiry warning", "days"),
    "callout_wave_size": Bounds(1, 500, True, "Call-out wave size", "donors"),
    "callout_cooldown_days": Bounds(1, 90, True, "Call-out cool-down", "days"),
    "donation_chairs": Bounds(1, 50, True, "Donation chairs", "chairs"),
    "return_window_minutes": Bounds(0, 240, True, "Return window", "minutes"),
}
TABLES: Mapping[str, Bounds] = {
    "stock_thresholds": Bounds(0.5, 60, False, "Low-stock threshold", "days of supply"),
    "baseline_daily_use": Bounds(0, 1000, False, "Baseline daily use", "units a day"),
}
SUBJECTS = tuple(f"{group}:{component}" for component in COMPONENTS for group in BLOOD_GROUPS)


def get_policy(session: Session, organisation_id: uuid.UUID) -> BloodBankPolicy:
    """The organisation's saved settings, or an unsaved row holding the defaults (never None; not added to
    the session)."""
    saved = session.get(BloodBankPolicy, organisation_id)
    if saved is not None:
        return saved
    return BloodBankPolicy(organisation_id=organisation_id, **defaults())


def is_saved(policy: BloodBankPolicy) -> bool:
    """Whether ``policy`` is a stored row (False: the defaults, never changed)."""
    return bool(inspect(policy).has_identity)


def threshold_days(policy: BloodBankPolicy, blood_group: str, component: str) -> float:
    """The low-stock threshold (days of supply) for one group and component: its override, else the
    organisation's general figure."""
    return float((policy.stock_thresholds or {}).get(f"{blood_group}:{component}", policy.low_stock_days))


def read_policy(session: Session, principal: Principal) -> BloodBankPolicy:
    """The caller's organisation's settings (administrators and the blood bank's staff)."""
    require_any(
        session,
        principal,
        (Perm.BLOOD_POLICY, Perm.BLOOD_STOCK),
        "bloodbank.policy_read",
        "Only administrators and blood bank staff see the blood bank settings.",
    )
    return get_policy(session, _organisation_of(session, principal, "bloodbank.policy_read"))


def update_policy(session: Session, principal: Principal, **fields: Any) -> BloodBankPolicy:
    """Change some of the caller's organisation's settings (administrators only). Fields not given keep
    their value. Raises ValidationFailed naming the field (``extra={"field": ...}``) for an unknown
    setting or a value out of range; the change is audited with each field's old and new value."""
    require(session, principal, Perm.BLOOD_POLICY, "bloodbank.policy_update")
    organisation_id = _organisation_of(session, principal, "bloodbank.policy_update")
    current = get_policy(session, organisation_id)
    changes = validate({**{name: getattr(current, name) for name in SETTINGS}, **fields}, set(fields))
    before = {name: getattr(current, name) for name in changes}
    if not is_saved(current):
        session.add(current)
    for name, value in changes.items():
        setattr(current, name, value)
    session.flush()
    audit.record(
        session,
        principal,
        "bloodbank.policy_update",
        resource_type="BloodBankPolicy",
        resource_id=organisation_id,
        detail={
            name: {"from": before[name], "to": value}
            for name, value in changes.items()
            if before[name] != value
        },
    )
    return current


def validate(values: Mapping[str, Any], given: set[str]) -> dict[str, Any]:
    """Check a complete set of settings; return the ``given`` ones, cleaned (numbers as int/float,
    tables with their keys checked). Raises ValidationFailed naming the first field at fault."""
    unknown = sorted(given - set(SETTINGS))
    if unknown:
        raise ValidationFailed(
            f"There is no blood bank setting called {unknown[0]!r}.", extra={"field": unknown[0]}
        )
    cleaned: dict[str, Any] = {}
    profile = values["rule_profile"]
    if profile not in RULE_PROFILES:
        raise ValidationFailed(
            f"Choose a donor rule profile: {', '.join(RULE_PROFILES)}.", extra={"field": "rule_profile"}
        )
    cleaned["rule_profile"] = profile
    for name, bounds in NUMBERS.items():
        cleaned[name] = _number(values[name], bounds, name)
    if cleaned["critical_stock_days"] > cleaned["low_stock_days"]:
        raise ValidationFailed(
            "Critical stock cannot be more days of supply than low stock.",
            extra={"field": "critical_stock_days"},
        )
    for name, bounds in TABLES.items():
        cleaned[name] = _table(values[name], bounds, name)
    return {name: cleaned[name] for name in given}


def _number(value: Any, bounds: Bounds, field: str) -> float | int:
    kind = "a whole number" if bounds.whole else "a number"
    problem = ValidationFailed(
        f"{bounds.label} must be {kind} from {bounds.low:g} to {bounds.high:g} {bounds.unit}.",
        extra={"field": field},
    )
    if isinstance(value, bool):
        raise problem
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise problem from None
    if not math.isfinite(number) or not bounds.low <= number <= bounds.high:
        raise problem
    if bounds.whole:
        if not number.is_integer():
            raise problem
        return int(number)
    return number


def _table(value: Any, bounds: Bounds, field: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise ValidationFailed(
            f"{bounds.label}s must be a table of group:component to a number.", extra={"field": field}
        )
    table: dict[str, float] = {}
    for subject, figure in value.items():
        if subject not in SUBJECTS:
            raise ValidationFailed(
                f"{subject!r} is not a blood group and component such as 'O-:red_cells'.",
                extra={"field": field},
            )
        group, component = subject.split(":")
        label = f"{bounds.label} for {group} {component.replace('_', ' ')}"
        table[subject] = float(
            _number(figure, Bounds(bounds.low, bounds.high, False, label, bounds.unit), field)
        )
    return dict(sorted(table.items()))


def _organisation_of(session: Session, principal: Principal, action: str) -> uuid.UUID:
    if principal.organisation_id is None:
        audit.record_and_commit(
            session, principal, action, outcome="denied", detail={"missing": "organisation"}
        )
        raise Forbidden("Only staff of an organisation have blood bank settings.")
    return principal.organisation_id
