"""BiologicallyDerivedProduct: blood units through FHIR (mapping, search, paging, permissions)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from caresync.bloodbank.rules import BLOOD_GROUPS, COMPONENTS, UNIT_STATUSES
from caresync.fhir.resources import blood
from tests.bloodbank.conftest import make_unit
from tests.conftest import Cast, Factory
from tests.fhir.conftest import FhirApi, ids

Headers = dict[str, str]
SignIn = Callable[[Any], Headers]


@pytest.mark.no_db
def test_every_component_maps_to_an_r4_product_category() -> None:
    assert set(blood.CATEGORY_BY_COMPONENT) == set(COMPONENTS)
    assert set(blood.CATEGORY_BY_COMPONENT.values()) <= set(blood.PRODUCT_CATEGORIES)
    assert blood.CATEGORY_BY_COMPONENT["red_cells"] == "cells"
    assert blood.CATEGORY_BY_COMPONENT["plasma"] == "fluid"
    assert set(blood.COMPONENT_NAMES) == set(COMPONENTS)


@pytest.mark.no_db
def test_every_unit_status_maps_to_an_r4_product_status() -> None:
    assert set(blood.STATUS_BY_UNIT_STATUS) == set(UNIT_STATUSES)
    assert set(blood.STATUS_BY_UNIT_STATUS.values()) <= set(blood.PRODUCT_STATUSES)
    assert [s for s, v in blood.STATUS_BY_UNIT_STATUS.items() if v == "available"] == ["available"]
    assert set(blood.ABO_RH_NAMES) == set(BLOOD_GROUPS)


def test_staff_read_a_unit_with_its_label_and_storage(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    unit = make_unit(
        cast.org,
        "O-",
        "red_cells",
        product_code="E0336V00",
        details={"additive": "AS-1", "irradiated": True},
        storage_location="Fridge 2",
    )
    response = fhir.get(f"BiologicallyDerivedProduct/{unit.id}", sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 200, response.text
    product = response.json()
    assert product["id"] == str(unit.id)
    assert {"system": blood.DIN_SYSTEM, "value": unit.din} in product["identifier"]
    assert product["productCategory"] == "cells"
    assert product["productCode"]["coding"] == [{"code": "E0336V00", "display": "Red blood cells"}]
    assert "O RhD negative (O-)" in product["productCode"]["text"]
    assert "280 mL" in product["productCode"]["text"]
    assert product["status"] == "available"
    assert product["quantity"] == 1
    assert product["collection"]["collectedDateTime"].startswith(unit.collected_at.date().isoformat())
    [storage] = product["storage"]
    assert storage["temperature"] == 6.0
    assert storage["scale"] == "celsius"
    assert storage["description"] == "Store at 1 to 6 °C; kept in Fridge 2"
    assert storage["duration"]["end"].startswith(unit.expires_at.date().isoformat())
    assert {"description": "Additive: AS-1"} in product["processing"]
    assert product["manipulation"]["description"] == "Irradiated"
    assert "lastUpdated" in product["meta"]


def test_frozen_plasma_is_fluid_stored_frozen_and_a_held_unit_is_unavailable(
    fhir: FhirApi, cast: Cast, sign_in: SignIn
) -> None:
    unit = make_unit(cast.org, "AB+", "plasma", status="reserved", storage_location="")
    product = fhir.get(f"BiologicallyDerivedProduct/{unit.id}", sign_in(cast["bloodbank_staff"])).json()
    assert product["productCategory"] == "fluid"
    assert product["status"] == "unavailable"
    assert product["storage"][0]["description"] == "Store frozen at -18 °C or colder"
    assert product["storage"][0]["temperature"] == -18.0


@pytest.mark.parametrize("role", ["doctor", "nurse", "patient", "pharmacist"])
def test_other_roles_cannot_read_or_search_units(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, role: str
) -> None:
    unit = make_unit(cast.org)
    headers = sign_in(cast[role])
    read = fhir.get(f"BiologicallyDerivedProduct/{unit.id}", headers)
    assert read.status_code == 403
    assert read.json()["issue"][0]["code"] == "forbidden"
    assert fhir.get("BiologicallyDerivedProduct", headers).status_code == 403


def test_staff_of_another_blood_bank_do_not_see_the_units(
    fhir: FhirApi, cast: Cast, make: Factory, sign_in: SignIn
) -> None:
    ours = make_unit(cast.org)
    elsewhere = make.staff("bloodbank_staff", make.org())
    theirs = make_unit(elsewhere.organisation or make.org())
    headers = sign_in(elsewhere)
    missing = fhir.get(f"BiologicallyDerivedProduct/{ours.id}", headers)
    assert missing.status_code == 404
    assert missing.json()["issue"][0]["code"] == "not-found"
    bundle = fhir.get("BiologicallyDerivedProduct", headers).json()
    assert ids(bundle) == [str(theirs.id)]
    assert bundle["total"] == 1
    assert fhir.get(f"BiologicallyDerivedProduct?identifier={ours.din}", headers).json()["total"] == 0


def test_a_malformed_id_is_not_found(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    response = fhir.get("BiologicallyDerivedProduct/not-a-uuid", sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 404


def test_search_by_identifier(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    red = make_unit(cast.org, product_code="E0336V00")
    plasma = make_unit(cast.org, component="plasma", din=red.din, product_code="E2555V00")
    other = make_unit(cast.org)
    headers = sign_in(cast["bloodbank_staff"])
    bundle = fhir.get(f"BiologicallyDerivedProduct?identifier={red.din}", headers).json()
    assert sorted(ids(bundle)) == sorted([str(red.id), str(plasma.id)])
    assert bundle["total"] == 2
    with_system = fhir.get(
        "BiologicallyDerivedProduct", headers, params={"identifier": f"{blood.DIN_SYSTEM}|{other.din}"}
    ).json()
    assert ids(with_system) == [str(other.id)]
    alternatives = fhir.get(f"BiologicallyDerivedProduct?identifier={red.din},{other.din}", headers).json()
    assert alternatives["total"] == 3
    assert fhir.get("BiologicallyDerivedProduct?identifier=W999926999999", headers).json()["total"] == 0
    # a part of a DIN is not the identifier
    assert fhir.get(f"BiologicallyDerivedProduct?identifier={red.din[:8]}", headers).json()["total"] == 0
    wrong = fhir.get("BiologicallyDerivedProduct", headers, params={"identifier": f"urn:x|{red.din}"})
    assert wrong.status_code == 400


def test_search_by_code_category_and_status(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    red = make_unit(cast.org, "A+", "red_cells", product_code="E0336V00")
    platelets = make_unit(cast.org, "A+", "platelets", product_code="E3083V00", status="quarantined")
    plasma = make_unit(cast.org, "A+", "plasma", product_code="E2555V00", status="issued")
    headers = sign_in(cast["bloodbank_staff"])

    def found(query: str) -> set[str]:
        response = fhir.get(f"BiologicallyDerivedProduct?{query}", headers)
        assert response.status_code == 200, response.text
        return set(ids(response.json()))

    assert found("code=E0336V00") == {str(red.id)}
    assert found("code=E9999V00") == set()
    assert found("product-category=cells") == {str(red.id), str(platelets.id)}
    assert found("product-category=fluid") == {str(plasma.id)}
    assert found("product-category=organ") == set()
    assert found("product-status=available") == {str(red.id)}
    assert found("product-status=unavailable") == {str(platelets.id), str(plasma.id)}
    assert found("product-status=unavailable&product-category=cells") == {str(platelets.id)}
    bad = fhir.get("BiologicallyDerivedProduct?product-status=reserved", headers)
    assert bad.status_code == 400
    assert "available or unavailable" in bad.json()["issue"][0]["diagnostics"]
    assert fhir.get("BiologicallyDerivedProduct?product-category=blood", headers).status_code == 400
    assert fhir.get("BiologicallyDerivedProduct?blood-group=A%2B", headers).status_code == 400
    assert fhir.get("BiologicallyDerivedProduct?code:text=red", headers).status_code == 400


def test_paging_with_total_and_next_links(fhir: FhirApi, cast: Cast, sign_in: SignIn) -> None:
    made = {str(make_unit(cast.org, expires_in=timedelta(days=5 + n)).id) for n in range(5)}
    headers = sign_in(cast["bloodbank_staff"])
    first = fhir.get("BiologicallyDerivedProduct?_count=2", headers).json()
    assert first["total"] == 5
    assert len(ids(first)) == 2
    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert next_url.startswith("http")
    assert "_cursor=" in next_url
    everything = fhir.search_all("BiologicallyDerivedProduct?_count=2", headers)
    assert {p["id"] for p in everything} == made
    expiries = [p["storage"][0]["duration"]["end"] for p in everything]
    assert expiries == sorted(expiries)  # soonest expiry first
    assert fhir.get("BiologicallyDerivedProduct?_summary=count", headers).json()["total"] == 5


def test_scopes_decide_app_access(
    fhir: FhirApi, cast: Cast, sign_in: SignIn, app_token: Callable[[Headers, str], Headers]
) -> None:
    unit = make_unit(cast.org)
    headers = sign_in(cast["bloodbank_staff"])
    allowed = app_token(headers, "user/BiologicallyDerivedProduct.read")
    assert fhir.get(f"BiologicallyDerivedProduct/{unit.id}", allowed).status_code == 200
    other_type = app_token(headers, "user/Patient.read")
    refused = fhir.get(f"BiologicallyDerivedProduct/{unit.id}", other_type)
    assert refused.status_code == 403
    assert refused.json()["issue"][0]["code"] == "forbidden"


def test_unauthenticated_is_401(fhir: FhirApi, cast: Cast) -> None:
    unit = make_unit(cast.org)
    assert fhir.get(f"BiologicallyDerivedProduct/{unit.id}").status_code == 401


def test_capability_statement_says_the_search_parameters_are_r5s(
    fhir: FhirApi, cast: Cast, sign_in: SignIn
) -> None:
    statement = fhir.get("metadata").json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "BiologicallyDerivedProduct"]
    assert {i["code"] for i in entry["interaction"]} == {"read", "search-type"}
    params = {p["name"]: p for p in entry["searchParam"]}
    assert {"identifier", "code", "product-category", "product-status"} <= set(params)
    for name in ("identifier", "code", "product-category", "product-status"):
        assert "R4 defines no" in params[name]["documentation"]
