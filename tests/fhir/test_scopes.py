"""SMART scopes: parsing (v1 and v2 forms), what each grant allows, and when a token is patient-only."""

from __future__ import annotations

import pytest

from caresync.core.errors import ValidationFailed
from caresync.fhir import scopes
from caresync.fhir.registry import resource_types
from caresync.fhir.scopes import CREATE, DELETE, READ, SEARCH, UPDATE, Scopes

pytestmark = pytest.mark.no_db
KNOWN = frozenset({"Patient", "Appointment", "Observation", "DocumentReference"})
ALL = (CREATE, READ, UPDATE, DELETE, SEARCH)


def parse(text: str) -> Scopes:
    return scopes.parse(text, known_types=KNOWN)


def allowed(parsed: Scopes, resource_type: str) -> set[str]:
    return {i for i in ALL if parsed.allows(resource_type, i)}


# scope -> (resource type, the interactions allowed on it)
GRANTS = [
    ("patient/*.read", "Patient", {READ, SEARCH}),
    ("patient/*.read", "Observation", {READ, SEARCH}),
    ("user/*.write", "Appointment", {CREATE, UPDATE, DELETE}),
    ("user/*.*", "DocumentReference", set(ALL)),
    ("user/Appointment.read", "Appointment", {READ, SEARCH}),
    ("user/Appointment.read", "Patient", set()),
    ("user/Appointment.*", "Appointment", set(ALL)),
    ("patient/Observation.rs", "Observation", {READ, SEARCH}),
    ("patient/Observation.r", "Observation", {READ}),
    ("patient/Observation.s", "Observation", {SEARCH}),
    ("user/Patient.cruds", "Patient", set(ALL)),
    ("user/Patient.cu", "Patient", {CREATE, UPDATE}),
    ("user/Patient.rus", "Patient", {READ, UPDATE, SEARCH}),
    ("patient/Patient.read user/Appointment.write", "Appointment", {CREATE, UPDATE, DELETE}),
    ("patient/Patient.read user/Appointment.write", "Patient", {READ, SEARCH}),
    ("patient/Patient.r patient/Patient.s", "Patient", {READ, SEARCH}),  # grants add up
    ("openid fhirUser patient/Patient.read", "Patient", {READ, SEARCH}),
]


@pytest.mark.parametrize(("text", "resource_type", "expected"), GRANTS)
def test_what_a_scope_allows(text: str, resource_type: str, expected: set[str]) -> None:
    assert allowed(parse(text), resource_type) == expected


def test_parsed_grants_and_text() -> None:
    parsed = parse("openid  patient/*.read\tuser/Appointment.cu launch/patient")
    assert parsed.text == "openid patient/*.read user/Appointment.cu launch/patient"
    assert parsed.grants == (
        scopes.Grant("patient", "*", frozenset({READ, SEARCH})),
        scopes.Grant("user", "Appointment", frozenset({CREATE, UPDATE})),
    )
    assert not parsed.is_full


def test_identity_scopes_carry_no_permission() -> None:
    for identity in sorted(scopes.IDENTITY_SCOPES):
        with pytest.raises(ValidationFailed, match="at least one data scope"):
            parse(identity)
    with pytest.raises(ValidationFailed, match="at least one data scope"):
        parse(" ".join(sorted(scopes.IDENTITY_SCOPES)))


def test_a_users_own_session_allows_everything() -> None:
    full = Scopes.full()
    assert full.is_full
    for resource_type in (*KNOWN, "Anything"):
        assert allowed(full, resource_type) == set(ALL)
        assert not full.patient_only(resource_type, READ)


# scope -> (resource type, interaction, patient_only)
PATIENT_ONLY = [
    ("patient/*.read", "Patient", READ, True),
    ("patient/*.read", "Patient", UPDATE, False),  # not covered at all
    ("user/*.read", "Patient", READ, False),
    ("patient/*.read user/Patient.read", "Patient", READ, False),  # a user grant also covers it
    ("patient/*.read user/Appointment.read", "Patient", SEARCH, True),
    ("patient/*.read user/Appointment.read", "Appointment", SEARCH, False),
    ("patient/Patient.rs user/Patient.u", "Patient", UPDATE, False),
    ("patient/Patient.rs user/Patient.u", "Patient", READ, True),
]


@pytest.mark.parametrize(("text", "resource_type", "interaction", "expected"), PATIENT_ONLY)
def test_patient_only(text: str, resource_type: str, interaction: str, expected: bool) -> None:
    assert parse(text).patient_only(resource_type, interaction) is expected


BAD = [
    ("", "at least one scope"),
    ("   ", "at least one scope"),
    ("patient", "'patient' is not a scope"),
    ("patient/*", "'patient/*' is not a scope"),
    ("patient/Patient", "is not a scope"),
    ("Patient.read", "is not a scope"),
    ("patient/patient.read", "is not a scope"),  # resource types are capitalised
    ("patient/*.admin", "is not a scope"),
    ("patient/*.READ", "is not a scope"),
    ("patient/*.read?x=1", "is not a scope"),  # SMART v2 query constraints are not supported
    ("system/*.read", "the context must be 'patient' or 'user'"),
    ("practitioner/*.read", "the context must be 'patient' or 'user'"),
    ("patient/Spaceship.read", "this server has no Spaceship resource"),
    ("user/Encounter.read", "this server has no Encounter resource"),
    ("patient/*.sr", "letters of 'cruds', in that order"),
    ("patient/*.rr", "letters of 'cruds', in that order"),
    ("patient/*.dc", "letters of 'cruds', in that order"),
    ("patient/*.read launch nonsense", "'nonsense' is not a scope"),
    (" ".join(["patient/*.read"] * (scopes.MAX_SCOPES + 1)), f"At most {scopes.MAX_SCOPES} scopes"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_scopes_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(text)
    assert caught.value.status == 422
    assert message in caught.value.detail


def test_the_first_wrong_scope_is_named() -> None:
    with pytest.raises(ValidationFailed, match=r"'user/Patient\.xyz'"):
        parse("patient/*.read user/Patient.xyz user/Spaceship.read")


def test_every_offered_type_can_be_scoped() -> None:
    offered = frozenset(resource_types())
    assert "Patient" in offered
    for name in offered:
        parsed = scopes.parse(f"user/{name}.read", known_types=offered)
        assert parsed.allows(name, READ)
        assert parsed.allows(name, SEARCH)
        assert not parsed.allows(name, CREATE)
