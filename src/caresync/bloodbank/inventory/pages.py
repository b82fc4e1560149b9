"""Inventory pages for blood bank staff: the stock dashboard (group x component, coloured by level, with
days of supply and units expiring soon), the unit list (filters, paging, empty state), the form to receive
a unit from outside, and a unit's page (details, history timeline, release / discard (confirmed) / move).

Forms post normally; a successful change redirects (so reloading cannot post it twice), an error comes
back on the same page with the message beside the field or above the actions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from caresync.bloodbank.access import staff_organisation
from caresync.bloodbank.donors import din as din_rules
from caresync.bloodbank.inventory import service
from caresync.bloodbank.paging import page_links
from caresync.bloodbank.policy import service as policies
from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS, UNIT_STATUSES, UNIT_TRANSITIONS, UnitStatus
from caresync.core import localtime
from caresync.core.auth import Principal
from caresync.core.errors import DomainError, ValidationFailed
from caresync.db import utcnow
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, redirect, render_page

router = APIRouter(include_in_schema=False)
T = "bloodbank/inventory"
PER_PAGE = 25
COMPONENT_LABELS = {
    "red_cells": "Red cells",
    "whole_blood": "Whole blood",
    "platelets": "Platelets",
    "plasma": "Plasma",
    "cryo": "Cryo",
}
STATUS_LABELS = {service.ON_SHELF: "On the shelf"} | {status: status.capitalize() for status in UNIT_STATUSES}
SORT_LABELS = {
    "expiry": "Expiry, soonest first",
    "-expiry": "Expiry, latest first",
    "-collection": "Collection, newest first",
    "collection": "Collection, oldest first",
}
# Shelf-life choices of the receive form -> the details the rules take (caresync.bloodbank.rules.shelf_life).
PREPARATIONS: dict[str, tuple[str, dict[str, object]]] = {
    "": ("Standard for the component", {}),
    "AS-1": ("Red cells in additive AS-1", {"additive": "AS-1"}),
    "AS-3": ("Red cells in additive AS-3", {"additive": "AS-3"}),
    "AS-5": ("Red cells in additive AS-5", {"additive": "AS-5"}),
    "AS-7": ("Red cells in additive AS-7", {"additive": "AS-7"}),
    "CPDA-1": ("Anticoagulant CPDA-1", {"anticoagulant": "CPDA-1"}),
    "CPD": ("Anticoagulant CPD", {"anticoagulant": "CPD"}),
    "CP2D": ("Anticoagulant CP2D", {"anticoagulant": "CP2D"}),
    "tested_platelets": ("Platelets, bacterial testing (7 days)", {"bacterial_testing": True}),
    "pathogen_reduced": ("Platelets, pathogen reduced (7 days)", {"pathogen_reduced": True}),
}
NOTICES = {
    "received": "Unit received into quarantine. Release it once its tests are clear.",
    "released": "Unit released into available stock.",
    "discarded": "Unit discarded.",
    "moved": "Storage location saved.",
}
FORM_FIELDS = (
    "din",
    "product_code",
    "component",
    "preparation",
    "irradiated",
    "blood_group",
    "volume_ml",
    "collected_at",
    "time_zone",
    "storage_location",
)


def _choice(value: str, allowed: tuple[str, ...] | list[str]) -> str:
    return value if value in allowed else ""


# --- the stock dashboard ------------------------------------------------------------------------------------


@router.get("/bloodbank/stock", response_class=HTMLResponse)
def stock_page(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """The group x component grid: available units coloured by level, days of supply, expiring soon."""
    now = utcnow()
    cells = service.stock_for(db, principal, now=now)
    assert principal.organisation_id is not None  # stock_for refused anyone without one
    policy = policies.get_policy(db, principal.organisation_id)
    grid = {(c.blood_group, c.component): c for c in cells}
    totals = {
        "available": sum(c.available for c in cells),
        "quarantined": sum(c.quarantined for c in cells),
        "expiring": sum(c.expiring_soon for c in cells),
        "critical": sum(c.level == "critical" for c in cells),
        "low": sum(c.level == "low" for c in cells),
    }
    context = {
        "groups": BLOOD_GROUPS,
        "components": COMPONENTS,
        "labels": COMPONENT_LABELS,
        "grid": grid,
        "totals": totals,
        "warning_days": policy.expiry_warning_days,
        "at": now,
    }
    return render_page(request, db, principal, f"{T}/stock.html", context)


# --- the unit list ------------------------------------------------------------------------------------------


@router.get("/bloodbank/units", response_class=HTMLResponse)
def units_page(
    request: Request,
    principal: PageUser,
    db: Db,
    status: str = "",
    blood_group: str = "",
    component: str = "",
    expiring: str = "",
    din: str = "",
    sort: str = "expiry",
    cursor: str = "",
) -> HTMLResponse:
    """The blood bank's units, filtered and paged (unknown filter values are ignored)."""
    chosen = {
        "status": _choice(status, list(STATUS_LABELS)),
        "blood_group": _choice(blood_group, BLOOD_GROUPS),
        "component": _choice(component, COMPONENTS),
        "expiring": expiring if expiring.isdigit() and int(expiring) <= 365 else "",
        "din": "".join(ch for ch in din if ch.isalnum())[:13].upper(),
        "sort": _choice(sort, list(SORT_LABELS)) or "expiry",
    }
    wanted = service.UnitFilter(
        status=chosen["status"] or None,
        blood_group=chosen["blood_group"] or None,
        component=chosen["component"] or None,
        expiring_within_days=int(chosen["expiring"]) if chosen["expiring"] else None,
        din=chosen["din"] or None,
    )
    page = service.list_units(
        db, principal, wanted, sort=chosen["sort"], limit=PER_PAGE, cursor=cursor or None
    )
    query = {k: v for k, v in chosen.items() if v and not (k == "sort" and v == "expiry")}
    context = {
        "units": page.items,
        "chosen": chosen,
        "filtered": any(v for k, v in chosen.items() if k != "sort"),
        "statuses": list(STATUS_LABELS.items()),
        "groups": BLOOD_GROUPS,
        "components": [(c, COMPONENT_LABELS[c]) for c in COMPONENTS],
        "labels": COMPONENT_LABELS,
        "sorts": list(SORT_LABELS.items()),
        **page_links("", query, page.next_cursor, cursor),
        "now": utcnow(),
        "printed": din_rules.grouped,
    }
    return render_page(request, db, principal, f"{T}/units.html", context)


# --- receiving a unit ---------------------------------------------------------------------------------------


def _receive_form(
    request: Request,
    db: Session,
    principal: Principal,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "values": values,
        "errors": errors,
        "groups": [(g, g) for g in BLOOD_GROUPS],
        "components": [(c, COMPONENT_LABELS[c]) for c in COMPONENTS],
        "preparations": [(k, label) for k, (label, _details) in PREPARATIONS.items()],
    }
    return render_page(request, db, principal, f"{T}/new.html", context, status_code)


@router.get("/bloodbank/units/new", response_class=HTMLResponse)
def receive_form(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """The form to receive a unit from outside (a supplier or another blood service)."""
    staff_organisation(db, principal, service.RECEIVE)
    values = {"component": "red_cells", "time_zone": "UTC"}
    return _receive_form(request, db, principal, values, {})


def _incoming(values: dict[str, str]) -> service.IncomingUnit:
    """The form's text as a unit to receive (422 with the field on unreadable numbers and times)."""
    preparation = PREPARATIONS.get(values.get("preparation", ""))
    if preparation is None:
        raise ValidationFailed("Choose a preparation from the list.", extra={"field": "preparation"})
    details = dict(preparation[1])
    if values.get("irradiated") == "on":
        details["irradiated"] = True
    volume = values.get("volume_ml", "")
    if not volume.isdigit() or len(volume) > 5:
        raise ValidationFailed("Enter the volume in whole ml.", extra={"field": "volume_ml"})
    try:
        local = datetime.fromisoformat(values.get("collected_at", ""))
    except ValueError:
        raise ValidationFailed(
            "Enter the date and time of collection.", extra={"field": "collected_at"}
        ) from None
    zone_name = values.get("time_zone") or "UTC"
    if zone_name not in localtime.known_zones():
        raise ValidationFailed("Choose a time zone from the list.", extra={"field": "time_zone"})
    return service.IncomingUnit(
        din=values.get("din", ""),
        product_code=values.get("product_code", ""),
        component=values.get("component", ""),
        blood_group=values.get("blood_group", ""),
        volume_ml=int(volume),
        collected_at=local.replace(tzinfo=localtime.zone(zone_name)),
        details=details,
        storage_location=values.get("storage_location", ""),
    )


@router.post("/bloodbank/units/new", response_model=None)
def receive(request: Request, principal: PageUser, db: Db, form: FormValues) -> Response:
    """Receive the unit; errors come back beside their fields."""
    values = {key: form.get(key, "").strip() for key in FORM_FIELDS}
    try:
        unit = service.receive_unit(db, principal, _incoming(values))
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404):
            raise
        return _receive_form(request, db, principal, values, domain_field_errors(exc), exc.status)
    unit_id = unit.id
    db.commit()
    return redirect(f"/bloodbank/units/{unit_id}?received=1")


# --- one unit -----------------------------------------------------------------------------------------------


def _detail(
    request: Request,
    db: Session,
    principal: Principal,
    unit_id: uuid.UUID,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    detail = service.unit_detail(db, principal, unit_id)
    unit = detail.unit
    now = utcnow()
    allowed = UNIT_TRANSITIONS[UnitStatus(unit.status)]
    context: dict[str, Any] = {
        "detail": detail,
        "u": unit,
        "printed": din_rules.grouped(unit.din),
        "label": COMPONENT_LABELS.get(unit.component, unit.component),
        "expired": unit.expires_at <= now,
        "can_release": unit.status == UnitStatus.QUARANTINED and unit.expires_at > now,
        "can_discard": UnitStatus.DISCARDED in allowed,
        "can_move": UnitStatus(unit.status) not in service.OFF_THE_SHELF,
        "errors": errors or {},
        "values": values or {},
        "notice": next((NOTICES[k] for k in NOTICES if request.query_params.get(k)), ""),
    }
    return render_page(request, db, principal, f"{T}/detail.html", context, status_code)


@router.get("/bloodbank/units/{unit_id}", response_class=HTMLResponse)
def unit_page(request: Request, unit_id: uuid.UUID, principal: PageUser, db: Db) -> HTMLResponse:
    """A unit: label details, storage range, status, history timeline and the actions its status allows."""
    return _detail(request, db, principal, unit_id)


def _act(
    request: Request,
    db: Session,
    principal: Principal,
    unit_id: uuid.UUID,
    values: dict[str, str],
    notice: str,
    change: Any,
) -> Response:
    """Run ``change()``; redirect to the unit with ``notice``, or show the unit again with the error."""
    try:
        change()
    except DomainError as exc:
        db.rollback()
        if exc.status in (401, 403, 404):
            raise
        errors = domain_field_errors(exc)
        return _detail(request, db, principal, unit_id, errors, values, exc.status)
    db.commit()
    return redirect(f"/bloodbank/units/{unit_id}?{notice}=1")


@router.post("/bloodbank/units/{unit_id}/release", response_model=None)
def release(request: Request, unit_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Release a quarantined unit into available stock."""
    return _act(
        request, db, principal, unit_id, {}, "released", lambda: service.release(db, principal, unit_id)
    )


@router.post("/bloodbank/units/{unit_id}/discard", response_model=None)
def discard(request: Request, unit_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues) -> Response:
    """Discard a unit with the reason given (the button asks for confirmation first)."""
    values = {"reason": form.get("reason", "").strip()}
    return _act(
        request,
        db,
        principal,
        unit_id,
        values,
        "discarded",
        lambda: service.discard(db, principal, unit_id, values["reason"]),
    )


@router.post("/bloodbank/units/{unit_id}/location", response_model=None)
def move(request: Request, unit_id: uuid.UUID, principal: PageUser, db: Db, form: FormValues) -> Response:
    """Record the unit's new storage location."""
    values = {"storage_location": form.get("storage_location", "").strip()}
    return _act(
        request,
        db,
        principal,
        unit_id,
        values,
        "moved",
        lambda: service.relocate(db, principal, unit_id, values["storage_location"]),
    )
