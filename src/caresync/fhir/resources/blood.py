"""BiologicallyDerivedProduct: the blood units of a blood bank's inventory (``bloodbank.inventory``).

Units are read through the inventory service, so only blood bank staff see them, and only their own
organisation's units (another organisation's unit answers 404, like a missing one; other roles get 403).
BiologicallyDerivedProduct is trial-use in R4 and has no ``note``, volume or ABO/Rh element: the group
and volume are given in ``productCode.text``, the storage temperature range in ``storage.description``
(``storage.temperature`` holds the upper limit), the shelf life as ``storage.duration`` (collection to
expiry), the shelf-life details (additive, irradiation, thawing …) as ``processing``/``manipulation``
descriptions. No extensions are used.

R4 (4.0.1) defines no search parameter of its own for this resource; the parameters offered here use the
names and meaning R5 gives them (``identifier``, ``code``, ``product-category``, ``product-status``), and
the CapabilityStatement says so.
"""

from __future__ import annotations

import uuid
from typing import Any

from caresync.bloodbank import rules
from caresync.bloodbank.donors import din as din_rules
from caresync.bloodbank.inventory import service as inventory
from caresync.bloodbank.models import BloodUnit
from caresync.bloodbank.rules import Component, UnitStatus
from caresync.core.errors import ValidationFailed
from caresync.fhir.context import JSON, FhirContext
from caresync.fhir.outcome import invalid
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.search import SearchQuery, SearchResult, drop_empty, instant, token

DIN_SYSTEM = "https://www.isbt128.org/uri/DonationIdentificationNumber"
UNIT_ID_SYSTEM = "urn:caresync:blood-unit"

# R4 BiologicallyDerivedProductCategory (required binding): organ | tissue | fluid | cells | biologicalAgent
PRODUCT_CATEGORIES = ("organ", "tissue", "fluid", "cells", "biologicalAgent")
CATEGORY_BY_COMPONENT: dict[str, str] = {
    Component.WHOLE_BLOOD: "fluid",
    Component.RED_CELLS: "cells",
    Component.PLATELETS: "cells",
    Component.PLASMA: "fluid",
    Component.CRYO: "fluid",
}
COMPONENT_NAMES: dict[str, str] = {
    Component.WHOLE_BLOOD: "Whole blood",
    Component.RED_CELLS: "Red blood cells",
    Component.PLATELETS: "Platelets",
    Component.PLASMA: "Plasma",
    Component.CRYO: "Cryoprecipitate",
}
# R4 BiologicallyDerivedProductStatus (required binding): available | unavailable. Only a unit on the
# shelf, released and not held for anyone, is available.
PRODUCT_STATUSES = ("available", "unavailable")
STATUS_BY_UNIT_STATUS: dict[str, str] = {
    UnitStatus.QUARANTINED: "unavailable",
    UnitStatus.AVAILABLE: "available",
    UnitStatus.RESERVED: "unavailable",
    UnitStatus.CROSSMATCHED: "unavailable",
    UnitStatus.ISSUED: "unavailable",
    UnitStatus.TRANSFUSED: "unavailable",
    UnitStatus.EXPIRED: "unavailable",
    UnitStatus.DISCARDED: "unavailable",
}
ABO_RH_NAMES: dict[str, str] = {
    "O-": "group O RhD negative",
    "O+": "group O RhD positive",
    "A-": "group A RhD negative",
    "A+": "group A RhD positive",
    "B-": "group B RhD negative",
    "B+": "group B RhD positive",
    "AB-": "group AB RhD negative",
    "AB+": "group AB RhD positive",
}
# Shelf-life details (see bloodbank.rules.shelf_life) that describe a manipulation of the product.
MANIPULATIONS = ("irradiated", "thawed", "thawed_plasma", "frozen", "deglycerolised", "pooled_open")


def _processing(details: dict[str, Any]) -> list[JSON]:
    steps = []
    for key in ("additive", "anticoagulant", "product", "collection"):
        if details.get(key):
            steps.append({"description": f"{key.replace('_', ' ').capitalize()}: {details[key]}"})
    for key in ("bacterial_testing", "pathogen_reduced", "open_system"):
        if details.get(key):
            steps.append({"description": key.replace("_", " ").capitalize()})
    return steps


def _manipulation(details: dict[str, Any]) -> JSON | None:
    done = [key.replace("_", " ") for key in MANIPULATIONS if details.get(key)]
    return {"description": ", ".join(done).capitalize()} if done else None


def storage_description(component: str, location: str) -> str:
    """The storage temperature range in words, and where the unit is kept."""
    low, high = rules.storage_range(component)
    if component in (Component.PLASMA, Component.CRYO):
        text = f"Store frozen at {high:g} °C or colder"
    else:
        text = f"Store at {low:g} to {high:g} °C"
    return f"{text}; kept in {location}" if location else text


def to_fhir(unit: BloodUnit) -> JSON:
    """The FHIR BiologicallyDerivedProduct for a blood unit."""
    details = dict(unit.details or {})
    name = COMPONENT_NAMES[unit.component]
    _low, high = rules.storage_range(unit.component)
    return drop_empty(
        {
            "resourceType": "BiologicallyDerivedProduct",
            "id": str(unit.id),
            "meta": {"lastUpdated": instant(unit.updated_at)},
            "identifier": [
                {"system": DIN_SYSTEM, "value": unit.din},
                {"system": UNIT_ID_SYSTEM, "value": f"{unit.din}-{unit.product_code}"},
            ],
            "productCategory": CATEGORY_BY_COMPONENT[unit.component],
            "productCode": {
                # ISBT 128 Product Description Code as on the label (no system URI is published for it in
                # R4; the R5 example gives the code alone).
                "coding": [{"code": unit.product_code, "display": name}],
                "text": f"{name}, {ABO_RH_NAMES[unit.blood_group]} ({unit.blood_group}), {unit.volume_ml} mL",
            },
            "status": STATUS_BY_UNIT_STATUS[unit.status],
            "quantity": 1,
            "collection": {"collectedDateTime": instant(unit.collected_at)},
            "processing": _processing(details),
            "manipulation": _manipulation(details),
            "storage": [
                {
                    "description": storage_description(unit.component, unit.storage_location),
                    "temperature": high,
                    "scale": "celsius",
                    "duration": {"start": instant(unit.collected_at), "end": instant(unit.expires_at)},
                }
            ],
        }
    )


def read(ctx: FhirContext, unit_id: uuid.UUID) -> JSON:
    """Read one unit of the caller's own blood bank (others: 404; roles without stock access: 403)."""
    return to_fhir(inventory.get_unit(ctx.session, ctx.principal, unit_id))


def _identifiers(query: SearchQuery) -> list[str] | None:
    """The DINs asked for (``identifier``: ``[system|]value``, OR-alternatives); ``None`` when not given."""
    if not query.has("identifier"):
        return None
    dins = []
    for value in query.values("identifier"):
        system, code = token(value)
        if system not in (None, "", DIN_SYSTEM):
            raise invalid(f"Search identifier by donation number ({DIN_SYSTEM}|<DIN>).")
        dins.append(_din(code))
    return dins


def _din(code: str) -> str:
    """A DIN as stored (13 characters; a trailing check character is checked and dropped). A malformed one
    is kept as typed: it matches nothing."""
    try:
        return din_rules.parse(code)
    except ValidationFailed:
        return code.strip().upper()


def _codes(query: SearchQuery) -> list[str] | None:
    if not query.has("code"):
        return None
    codes = []
    for value in query.values("code"):
        _system, code = token(value)
        codes.append(code)
    return codes


def _components(query: SearchQuery) -> list[str] | None:
    if not query.has("product-category"):
        return None
    wanted = set()
    for value in query.values("product-category"):
        _system, code = token(value)
        if code not in PRODUCT_CATEGORIES:
            raise invalid(f"Unknown product category '{code}'. Use one of: {', '.join(PRODUCT_CATEGORIES)}.")
        wanted |= {c for c, category in CATEGORY_BY_COMPONENT.items() if category == code}
    return sorted(wanted)


def _statuses(query: SearchQuery) -> list[str] | None:
    if not query.has("product-status"):
        return None
    wanted = set()
    for value in query.values("product-status"):
        _system, code = token(value)
        if code not in PRODUCT_STATUSES:
            raise invalid(f"Unknown product status '{code}'. Use available or unavailable.")
        wanted |= {s for s, status in STATUS_BY_UNIT_STATUS.items() if status == code}
    return sorted(wanted)


def search(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """The units of the caller's blood bank, soonest expiry first."""
    for name in ("identifier", "code", "product-category", "product-status"):
        if len(query.params.get(name, [])) > 1:
            raise invalid(f"Give '{name}' once (list alternatives with commas).")
    page = inventory.list_units(
        ctx.session,
        ctx.principal,
        inventory.UnitFilter(),
        limit=max(query.count, 1),
        cursor=query.cursor,
        statuses=_statuses(query),
        components=_components(query),
        exact_dins=_identifiers(query),
        product_codes=_codes(query),
        count_total=True,
    )
    return SearchResult(
        resources=[to_fhir(unit) for unit in page.items], total=page.total, next_cursor=page.next_cursor
    )


_R5_NOTE = " (named and defined as in R5; R4 defines no BiologicallyDerivedProduct search parameters)"

RESOURCES = (
    ResourceType(
        name="BiologicallyDerivedProduct",
        documentation="Blood units of a blood bank's inventory, for its own blood bank staff only (other "
        "organisations' units are not visible). Trial-use in R4: ABO/Rh group and volume are in "
        "productCode.text, storage temperature range in storage.description, shelf life in "
        "storage.duration. Search parameters are R5's, not defined by R4.",
        read=read,
        search=search,
        search_params=(
            SearchParam(
                "identifier",
                "token",
                f"The donation identification number (DIN, {DIN_SYSTEM}); every unit made from that "
                "donation matches" + _R5_NOTE + ".",
            ),
            SearchParam(
                "code", "token", "The ISBT 128 product code on the label, e.g. E0336V00" + _R5_NOTE + "."
            ),
            SearchParam(
                "product-category",
                "token",
                "cells (red cells, platelets) or fluid (whole blood, plasma, cryoprecipitate)"
                + _R5_NOTE
                + ".",
            ),
            SearchParam(
                "product-status",
                "token",
                "available (released, on the shelf, not held) or unavailable" + _R5_NOTE + ".",
            ),
        ),
    ),
)
