"""The blood bank settings page (``/bloodbank/settings``, administrators): the donor rule profile with what
each profile means (intervals, yearly maximums, thresholds), stock thresholds in days of supply with per
group/component overrides and baseline daily use, expiry warning, call-out waves and cool-down, donation
chairs and the return window. Without JavaScript the form posts normally: saved -> redirect; errors -> the
page again with the messages beside the fields (422)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from caresync.bloodbank.models import BloodBankPolicy
from caresync.bloodbank.policy import service
from caresync.bloodbank.rules import (
    BLOOD_GROUPS,
    COMPONENTS,
    DONATION_TYPES,
    DONOR_SEXES,
    PROFILES,
    RuleProfile,
)
from caresync.core.errors import DomainError
from caresync.core.rbac import Perm, require
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
TEMPLATE = "bloodbank/policy/settings.html"
PATH = "/bloodbank/settings"
TYPE_LABELS = {
    "whole_blood": "Whole blood",
    "double_red_cells": "Double red cells",
    "platelets": "Platelets",
    "plasma": "Plasma",
}
COMPONENT_LABELS = {
    "whole_blood": "Whole blood",
    "red_cells": "Red cells",
    "platelets": "Platelets",
    "plasma": "Plasma",
    "cryo": "Cryo",
}
# Form fields of the two tables: "<prefix>:<group>:<component>", blank = no override.
TABLE_PREFIXES = {"stock_thresholds": "threshold", "baseline_daily_use": "baseline"}


@router.get(PATH)
def settings_form(request: Request, db: Db, principal: PageUser, saved: int = 0) -> Response:
    """Administrators: the organisation's blood bank settings."""
    require(db, principal, Perm.BLOOD_POLICY, "bloodbank.settings_page")
    policy = service.read_policy(db, principal)
    return render_page(request, db, principal, TEMPLATE, _context(policy, saved=bool(saved)))


@router.post(PATH)
def settings_submit(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Save the settings; on an error show the form again with the message beside the field."""
    require(db, principal, Perm.BLOOD_POLICY, "bloodbank.settings_page")
    try:
        service.update_policy(db, principal, **_fields(values))
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404):
            raise
        policy = service.read_policy(db, principal)
        context = _context(policy, errors=domain_field_errors(exc), values=values)
        return render_page(request, db, principal, TEMPLATE, context, 422)
    db.commit()
    return redirect(f"{PATH}?saved=1")


def _fields(values: dict[str, str]) -> dict[str, Any]:
    """The form's strings as service fields (the service checks and converts the numbers)."""
    fields: dict[str, Any] = {name: values.get(name, "").strip() for name in service.SETTINGS}
    for name, prefix in TABLE_PREFIXES.items():
        fields[name] = {
            subject: raw.strip()
            for subject in service.SUBJECTS
            if (raw := values.get(f"{prefix}:{subject}", "")).strip()
        }
    return fields


def _context(
    policy: BloodBankPolicy,
    *,
    saved: bool = False,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> dict[str, Any]:
    shown = {name: getattr(policy, name) for name in service.SETTINGS}
    for name, prefix in TABLE_PREFIXES.items():
        for subject, figure in (shown.pop(name) or {}).items():
            shown[f"{prefix}:{subject}"] = f"{figure:g}"
    return {
        "saved": saved,
        "is_default": not service.is_saved(policy),
        "errors": errors or {},
        "values": {**{k: str(v) for k, v in shown.items()}, **(values or {})},
        "profiles": [_profile_summary(p) for p in PROFILES.values()],
        "groups": BLOOD_GROUPS,
        "components": [(c, COMPONENT_LABELS[c]) for c in COMPONENTS],
        "numbers": service.NUMBERS,
        "tables": service.TABLES,
    }


def _profile_summary(rules: RuleProfile) -> dict[str, Any]:
    """What a rule profile means, for the page: intervals, yearly maximums and thresholds by sex."""

    def by_sex(figure: Any) -> str:
        men, women = figure("M"), figure("F")
        if men == women:
            return "—" if men is None else str(men)
        return f"{'—' if men is None else men} (men) / {'—' if women is None else women} (women)"

    return {
        "name": rules.name,
        "title": rules.title,
        "source": rules.source,
        "types": [(t, TYPE_LABELS[t]) for t in DONATION_TYPES],
        "intervals": {
            (previous, following): by_sex(lambda sex, p=previous, f=following: rules.interval(p, f, sex))
            for previous in DONATION_TYPES
            for following in DONATION_TYPES
        },
        "yearly": {t: by_sex(lambda sex, t=t: rules.yearly_maximum(t, sex)) for t in DONATION_TYPES},
        "age": _age_text(rules),
        "weight": f"{rules.min_weight_kg:g} kg",
        "hemoglobin": " / ".join(
            f"{rules.min_hemoglobin_g_dl[sex]:g} g/dL ({'women' if sex == 'F' else 'men'})"
            for sex in DONOR_SEXES
        ),
    }


def _age_text(rules: RuleProfile) -> str:
    text = f"from {rules.min_age}"
    if rules.min_age_with_consent is not None:
        text += f" ({rules.min_age_with_consent} with parental consent)"
    if rules.max_age_first_donation is not None:
        text += f"; first donation up to {rules.max_age_first_donation}"
    return text
