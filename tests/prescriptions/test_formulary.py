"""The built-in formulary: what the demo prescribes is in it, its codes and routes are sound, and search
ranks codes and names as a prescriber expects (through the API too)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.prescriptions import formulary
from caresync.prescriptions.rules import ROUTES
from tests.conftest import Cast
from tests.prescriptions.conftest import P

# What the demo data prescribes: (name, strength, form).
DEMO_DRUGS = [
    ("Amlodipine", "5 mg", "tablet"),
    ("Ramipril", "5 mg", "capsule"),
    ("Metformin", "1000 mg", "tablet"),
    ("Empagliflozin", "10 mg", "tablet"),
    ("Atorvastatin", "20 mg", "tablet"),
    ("Tiotropium", "18 mcg", "inhalation capsule"),
    ("Salbutamol", "100 mcg/dose", "inhaler"),
    ("Apixaban", "5 mg", "tablet"),
    ("Bisoprolol", "2.5 mg", "tablet"),
    ("Paracetamol", "1 g", "tablet"),
    ("Omeprazole", "20 mg", "capsule"),
    ("Ferrous sulfate", "325 mg", "tablet"),
    ("Sertraline", "50 mg", "tablet"),
    ("Escitalopram", "10 mg", "tablet"),
    ("Hydrocortisone", "1%", "cream"),
    ("Amoxicillin", "500 mg", "capsule"),
    ("Amoxicillin/clavulanate", "875/125 mg", "tablet"),
    ("Fosfomycin", "3 g", "granules for oral solution"),
    ("Enoxaparin", "40 mg/0.4 mL", "prefilled syringe"),
    ("Ibuprofen", "400 mg", "tablet"),
    ("Levothyroxine", "75 mcg", "tablet"),
    ("Lisinopril", "10 mg", "tablet"),
    ("Simvastatin", "40 mg", "tablet"),
    ("Insulin glargine", "100 units/mL", "pen injector"),
    ("Azithromycin", "250 mg", "tablet"),
    ("Cefalexin", "500 mg", "capsule"),
    ("Prednisolone", "5 mg", "tablet"),
]


@pytest.mark.no_db
def test_the_demo_drugs_are_in_the_formulary() -> None:
    present = {(d.name, d.strength, d.form) for d in formulary.DRUGS}
    missing = [drug for drug in DEMO_DRUGS if drug not in present]
    assert not missing
    assert len(formulary.DRUGS) >= 40


@pytest.mark.no_db
def test_codes_routes_and_classes_are_sound() -> None:
    codes = [d.code for d in formulary.DRUGS]
    assert len(set(codes)) == len(codes)
    assert all(code.isdigit() and len(code) <= 20 for code in codes)  # fits Prescription.medication_code
    assert all(d.route in ROUTES for d in formulary.DRUGS)
    assert all(d.therapeutic_class for d in formulary.DRUGS)
    amoxicillin = formulary.get("308191")
    assert amoxicillin is not None
    assert {"penicillin", "beta-lactam"} <= amoxicillin.allergy_classes
    assert amoxicillin.allergy_terms >= {"amoxicillin", "penicillin"}
    assert formulary.get(" 308191 ") == amoxicillin
    assert formulary.get("nope") is None


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("308191", "Amoxicillin 500 mg capsule"),  # exact code
        ("AMOX", "Amoxicillin 250 mg/5 mL oral suspension"),  # name prefix, any case, alphabetical
        ("clav", "Amoxicillin/clavulanate 875/125 mg tablet"),  # a later word of the name
        ("glargine", "Insulin glargine 100 units/mL pen injector"),
        ("inhaler", "Budesonide/formoterol 160/4.5 mcg/dose inhaler"),  # anywhere in the label
        ("  sertraline  ", "Sertraline 50 mg tablet"),
    ],
    ids=["code", "prefix-any-case", "word-prefix", "second-word", "form", "padded"],
)
def test_search_finds_the_best_match_first(query: str, first: str) -> None:
    results = formulary.search(query)
    assert results
    assert results[0].label == first


@pytest.mark.no_db
def test_search_ranks_and_limits() -> None:
    ranked = [d.label for d in formulary.search("a", limit=50)]
    names_starting = [label for label in ranked if label.lower().startswith("a")]
    assert ranked[: len(names_starting)] == names_starting  # prefixes before substrings
    assert len(formulary.search("", limit=5)) == 5
    assert len(formulary.search("", limit=500)) == min(len(formulary.DRUGS), formulary.MAX_RESULTS)
    assert formulary.search("zzzz") == []
    code_prefix = formulary.search("3081")
    assert {d.code for d in code_prefix} == {"308182", "308191"}


def test_the_formulary_api(client: TestClient, cast: Cast, sign_in: Any) -> None:
    response = client.get(
        f"{P}/formulary", params={"q": "amoxicillin", "limit": 2}, headers=sign_in(cast["doctor"])
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 2
    assert body[0]["name"] == "Amoxicillin"
    assert set(body[0]) >= {"code", "label", "route", "dose_unit", "allergy_classes", "therapeutic_class"}
    assert (
        client.get(f"{P}/formulary", params={"limit": 0}, headers=sign_in(cast["doctor"])).status_code == 422
    )
    assert client.get(f"{P}/formulary").status_code == 401
