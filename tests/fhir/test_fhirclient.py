"""Conformance: the SMART ``fhirclient`` library (4.4.0, unmodified) as a real client of the FHIR API.

A real uvicorn server runs the application in a background thread on a free port of 127.0.0.1 (same
process, so the test's factories and the server share the test database); the library talks to it over
HTTP with its own ``requests`` session. CareSync's CapabilityStatement declares bearer tokens without OAuth
endpoints, so the library picks its "none" auth; the supported way to authenticate then is the one
``requests.Session`` every call of a ``FHIRServer`` goes through (``smart.server.session``): we give it the
``Authorization: Bearer ...`` header.

Every resource the library receives is parsed by its own R4 models, which refuse unknown elements and wrong
types: a response that parses is one a standard client can use.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests
import uvicorn
from fhirclient import client as smart_client
from fhirclient.models.appointment import Appointment as FhirAppointment
from fhirclient.models.bundle import Bundle
from fhirclient.models.capabilitystatement import CapabilityStatement
from fhirclient.models.patient import Patient as FhirPatient
from fhirclient.server import FHIRNotFoundException, FHIRPermissionDeniedException, FHIRUnauthorizedException

from caresync.db import session_factory, transaction, utcnow
from caresync.fhir.registry import resource_types
from caresync.identity.models import CareRelationship
from caresync.identity.patients import new_patient
from tests.conftest import Cast, Factory, Person
from tests.scheduling.conftest import SchedulingFactory

APP_ID = "caresync-conformance"
PAGE = 10
PATIENTS = 25  # three pages of PAGE: 10, 10, 5


# --- the server and the client ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fhir_base(app: Any) -> Iterator[str]:
    """The absolute FHIR base URL of a real server (uvicorn in a background thread, free port)."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.02)
        assert server.started, "the uvicorn server did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/fhir/R4"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def smart(fhir_base: str) -> Callable[[dict[str, str] | None], smart_client.FHIRClient]:
    """``smart(headers)``: a ``FHIRClient`` for the server whose requests session sends ``headers``."""

    def build(headers: dict[str, str] | None = None) -> smart_client.FHIRClient:
        fhir = smart_client.FHIRClient(settings={"app_id": APP_ID, "api_base": fhir_base})
        if headers:
            fhir.server.session.headers.update(headers)
        return fhir

    return build


@pytest.fixture
def sched(make: Factory) -> SchedulingFactory:
    """Scheduling rows (practitioner profiles, appointments) as the scheduling tests make them."""
    return SchedulingFactory(make)


def care_list(doctor: Person, family: str, count: int) -> list[str]:
    """``count`` patients named ``Given<i> <family>`` in ``doctor``'s care (one transaction); their ids."""
    assert doctor.user.organisation_id is not None
    created: list[str] = []
    with transaction(session_factory()) as s:
        for i in range(count):
            patient = new_patient(
                given_name=f"Given{i:02d}",
                family_name=family,
                birth_date=date(1960, 1, 1) + timedelta(days=97 * i),
                sex="male" if i % 2 else "female",
            )
            s.add(patient)
            s.flush()
            s.add(
                CareRelationship(
                    patient_id=patient.id,
                    practitioner_id=doctor.id,
                    organisation_id=doctor.user.organisation_id,
                    reason="conformance test",
                    created_at=utcnow(),
                )
            )
            created.append(str(patient.id))
    return created


def monday(weeks_ahead: int = 1, hour: int = 10) -> datetime:
    """A Monday ``weeks_ahead`` weeks from now at ``hour``:00 UTC."""
    today = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + timedelta(days=7 * weeks_ahead - today.weekday())


def needs(resource_type: str) -> None:
    """Skip while a resource type is not served yet (other modules are being written)."""
    if resource_type not in resource_types():
        pytest.skip(f"{resource_type} is not served yet")


# --- CapabilityStatement ------------------------------------------------------------------------------------


def test_prepare_reads_the_capability_statement(smart: Callable[..., smart_client.FHIRClient]) -> None:
    fhir = smart()
    assert fhir.ready is False
    assert fhir.prepare() is True  # fetched /metadata (no token needed) and chose its auth
    assert fhir.ready is True
    assert fhir.server.auth.auth_type == "none"  # bearer tokens, no OAuth endpoints to redirect to
    assert fhir.authorize_url is None

    statement = fhir.server.capabilityStatement
    assert isinstance(statement, CapabilityStatement)
    assert statement.fhirVersion == "4.0.1"
    assert statement.kind == "instance"
    assert statement.status == "active"
    assert "application/fhir+json" in statement.format
    assert statement.implementation.url == fhir.server.aud
    [rest] = statement.rest
    assert rest.mode == "server"
    assert [c.code for c in rest.security.service[0].coding] == ["SMART-on-FHIR"]

    offered = {r.type: r for r in rest.resource}
    assert set(offered) == set(resource_types())
    patient = offered["Patient"]
    assert {i.code for i in patient.interaction} >= {"read", "search-type"}
    assert {"_id", "name"} <= {p.name for p in patient.searchParam}
    assert [op.name for op in patient.operation] == ["everything"]
    for name, resource in resource_types().items():  # every registered search parameter is declared
        declared = {p.name for p in offered[name].searchParam or []}
        assert {p.name for p in resource.search_params} <= declared, name


def test_get_capability_again_is_cached_and_forced(smart: Callable[..., smart_client.FHIRClient]) -> None:
    fhir = smart()
    first = fhir.server.capabilityStatement
    assert fhir.server.capabilityStatement is first  # no second request
    fhir.server.get_capability(force=True)
    assert fhir.server.capabilityStatement is not first
    assert fhir.server.capabilityStatement.as_json() == first.as_json()


# --- authentication -----------------------------------------------------------------------------------------


def test_without_a_token_reads_are_refused(smart: Callable[..., smart_client.FHIRClient], cast: Cast) -> None:
    fhir = smart()
    assert fhir.prepare() is True  # the CapabilityStatement is public
    with pytest.raises(FHIRUnauthorizedException) as refused:
        FhirPatient.read(str(cast["patient"].patient_id), fhir.server)
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["content-type"].startswith("application/fhir+json")
    outcome = refused.value.response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "login"

    fhir.server.session.headers["Authorization"] = "Bearer not-a-real-token"
    with pytest.raises(FHIRUnauthorizedException):
        FhirPatient.where({"name": "anything"}).perform_resources_iter(fhir.server).__next__()


# --- searching and paging patients --------------------------------------------------------------------------


def test_search_patients_and_page_through_next_links(
    smart: Callable[..., smart_client.FHIRClient],
    sign_in: Callable[[Person], dict[str, str]],
    cast: Cast,
) -> None:
    doctor = cast["doctor"]
    family = f"Conformance{uuid.uuid4().hex[:6]}"
    created = care_list(doctor, family, PATIENTS)
    fhir = smart(sign_in(doctor))
    assert fhir.prepare() is True

    search = FhirPatient.where({"name": family, "_count": str(PAGE)})
    assert search.construct() == f"Patient?name={family}&_count={PAGE}"
    bundles = list(search.perform_iter(fhir.server))  # follows Bundle.link "next" with the library's code
    assert [len(b.entry or []) for b in bundles] == [PAGE, PAGE, PATIENTS - 2 * PAGE]
    for i, bundle in enumerate(bundles):
        assert isinstance(bundle, Bundle)
        assert bundle.type == "searchset"
        assert bundle.total == PATIENTS
        links = {link.relation: link.url for link in bundle.link}
        assert links["self"].startswith(fhir.server.aud + "/Patient?")  # absolute links
        if i < len(bundles) - 1:
            assert links["next"].startswith(fhir.server.aud + "/Patient?")
            assert f"_count={PAGE}" in links["next"]
            assert f"name={family}" in links["next"]
        else:
            assert "next" not in links
        for entry in bundle.entry:
            assert entry.search.mode == "match"
            assert entry.fullUrl == f"{fhir.server.aud}/Patient/{entry.resource.id}"

    patients = [e.resource for b in bundles for e in b.entry]
    assert all(isinstance(p, FhirPatient) for p in patients)
    assert sorted(p.id for p in patients) == sorted(created)  # every patient once: no gaps, no repeats
    by_given = {p.name[0].given[0]: p for p in patients}
    assert sorted(by_given) == [f"Given{i:02d}" for i in range(PATIENTS)]
    seventh = by_given["Given07"]
    assert seventh.name[0].family == family
    assert seventh.gender == "male"
    assert seventh.birthDate.isostring == (date(1960, 1, 1) + timedelta(days=97 * 7)).isoformat()

    # the same through the resource iterator, and the (deprecated) list helpers
    resources = list(FhirPatient.where({"name": family, "_count": "7"}).perform_resources_iter(fhir.server))
    assert sorted(r.id for r in resources) == sorted(created)
    with pytest.warns(DeprecationWarning, match="perform_resources_iter"):
        listed = FhirPatient.where({"name": family, "_count": "7"}).perform_resources(fhir.server)
    assert sorted(r.id for r in listed) == sorted(created)
    with pytest.warns(DeprecationWarning, match="perform_iter"):
        first = FhirPatient.where({"name": family, "_count": "7"}).perform(fhir.server)
    assert (first.total, len(first.entry)) == (PATIENTS, 7)


def test_search_patients_only_finds_what_the_caller_may_see(
    smart: Callable[..., smart_client.FHIRClient],
    sign_in: Callable[[Person], dict[str, str]],
    cast: Cast,
) -> None:
    fhir = smart(sign_in(cast["doctor"]))
    mine = cast["patient"].patient
    assert mine is not None
    found = list(FhirPatient.where({"name": mine.family_name}).perform_resources_iter(fhir.server))
    assert [p.id for p in found] == [str(mine.id)]
    # the patient nobody cares for exists, but this doctor's search does not find them
    hidden = list(FhirPatient.where({"name": "Zwartkopf"}).perform_resources_iter(fhir.server))
    assert hidden == []
    bundle = next(FhirPatient.where({"name": "Zwartkopf"}).perform_iter(fhir.server))
    assert bundle.total == 0
    assert bundle.entry is None


# --- reading a patient --------------------------------------------------------------------------------------


def test_read_a_patient(
    smart: Callable[..., smart_client.FHIRClient],
    sign_in: Callable[[Person], dict[str, str]],
    cast: Cast,
) -> None:
    fhir = smart(sign_in(cast["doctor"]))
    profile = cast["patient"].patient
    assert profile is not None
    patient = FhirPatient.read(str(profile.id), fhir.server)
    assert patient.id == str(profile.id)
    assert patient.name[0].family == profile.family_name
    assert patient.name[0].given == [profile.given_name]
    assert patient.gender == profile.sex
    assert patient.birthDate.date == profile.birth_date
    assert [i.value for i in patient.identifier if i.system == "urn:caresync:health-id"] == [
        profile.health_id
    ]
    assert fhir.human_name(patient.name[0]) == f"{profile.given_name} {profile.family_name}"
    assert patient.origin_server is fhir.server

    # hidden and missing look the same
    with pytest.raises(FHIRNotFoundException) as hidden:
        FhirPatient.read(str(cast.other_patient.id), fhir.server)
    assert hidden.value.response.json()["issue"][0]["code"] == "not-found"
    with pytest.raises(FHIRNotFoundException):
        FhirPatient.read(str(uuid.uuid4()), fhir.server)


def test_a_patient_app_token_sees_only_that_patient(
    smart: Callable[..., smart_client.FHIRClient],
    sign_in: Callable[[Person], dict[str, str]],
    app_token: Callable[[dict[str, str], str], dict[str, str]],
    cast: Cast,
) -> None:
    patient = cast["patient"]
    fhir = smart(app_token(sign_in(patient), "launch/patient patient/*.read"))
    found = list(FhirPatient.where({}).perform_resources_iter(fhir.server))
    assert [p.id for p in found] == [str(patient.patient_id)]
    assert FhirPatient.read(str(patient.patient_id), fhir.server).id == str(patient.patient_id)
    with pytest.raises(FHIRNotFoundException):
        FhirPatient.read(str(cast.other_patient.id), fhir.server)

    # a scope that does not cover Patient is refused with 403 forbidden
    other_type = next((name for name in resource_types() if name != "Patient"), None)
    if other_type is None:
        pytest.skip("no resource type besides Patient is served yet")
    narrow = smart(app_token(sign_in(cast["doctor"]), f"user/{other_type}.read"))
    with pytest.raises(FHIRPermissionDeniedException) as refused:
        FhirPatient.read(str(patient.patient_id), narrow.server)
    assert refused.value.response.json()["issue"][0]["code"] == "forbidden"


# --- a patient's appointments -------------------------------------------------------------------------------


def test_read_a_patients_appointments(
    smart: Callable[..., smart_client.FHIRClient],
    sign_in: Callable[[Person], dict[str, str]],
    app_token: Callable[[dict[str, str], str], dict[str, str]],
    cast: Cast,
    make: Factory,
    sched: SchedulingFactory,
) -> None:
    needs("Appointment")
    patient = cast["patient"]
    clinician = sched.practitioner(person=cast["doctor"])
    location = sched.location()
    starts = [monday(1, 9), monday(1, 11), monday(2, 14)]
    booked = [
        sched.appointment(clinician, patient, start, location=location, reason=f"Check-up {i}")
        for i, start in enumerate(starts)
    ]
    cancelled = sched.appointment(clinician, patient, monday(3, 10), status="cancelled")
    other = make.patient_user()
    make.care(cast["doctor"], other)
    sched.appointment(clinician, other, monday(1, 15))  # someone else's: never in this patient's results

    fhir = smart(sign_in(cast["doctor"]))
    search = FhirAppointment.where({"patient": str(patient.patient_id)})
    appointments = list(search.perform_resources_iter(fhir.server))
    assert all(isinstance(a, FhirAppointment) for a in appointments)
    by_id = {a.id: a for a in appointments}
    assert set(by_id) == {str(a.id) for a in [*booked, cancelled]}
    for row, start in zip(booked, starts, strict=True):
        appointment = by_id[str(row.id)]
        assert appointment.status == "booked"
        assert appointment.start.datetime == start
        assert appointment.end.datetime == start + timedelta(minutes=30)
        actors = {p.actor.reference for p in appointment.participant if p.actor is not None}
        assert f"Patient/{patient.patient_id}" in actors
        assert f"Practitioner/{clinician.id}" in actors
    assert by_id[str(cancelled.id)].status == "cancelled"

    # the same with the patient's own app, paging one by one through the next links
    own = smart(app_token(sign_in(patient), "patient/*.read"))
    pages = list(
        FhirAppointment.where({"patient": str(patient.patient_id), "_count": "1"}).perform_iter(own.server)
    )
    assert len(pages) == 4
    assert all(page.total == 4 for page in pages)
    assert {p.entry[0].resource.id for p in pages} == set(by_id)
    # and the patient's app cannot list the other patient's appointments
    theirs = list(
        FhirAppointment.where({"patient": str(other.patient_id)}).perform_resources_iter(own.server)
    )
    assert theirs == []


def test_everything_parses_with_the_librarys_models(
    smart: Callable[..., smart_client.FHIRClient],
    sign_in: Callable[[Person], dict[str, str]],
    cast: Cast,
    sched: SchedulingFactory,
) -> None:
    patient = cast["patient"]
    if "Appointment" in resource_types():
        clinician = sched.practitioner(person=cast["doctor"])
        sched.appointment(clinician, patient, monday(1, 9))
    fhir = smart(sign_in(cast["doctor"]))
    data = fhir.server.request_json(f"Patient/{patient.patient_id}/$everything")
    bundle = Bundle(jsondict=data)  # strict: unknown elements or wrong types raise
    assert bundle.type == "searchset"
    assert bundle.total == len(bundle.entry)
    first = bundle.entry[0].resource
    assert isinstance(first, FhirPatient)
    assert first.id == str(patient.patient_id)
    types = {e.resource.resource_type for e in bundle.entry}
    if "Appointment" in resource_types():
        assert "Appointment" in types


def test_every_search_answer_parses_with_the_librarys_models(
    smart: Callable[..., smart_client.FHIRClient],
    sign_in: Callable[[Person], dict[str, str]],
    cast: Cast,
) -> None:
    """Each offered type's search (first page) as a clinician, an admin and a patient: whatever comes back,
    bundle or OperationOutcome, the standard client reads it."""
    for role in ("doctor", "admin", "patient"):
        fhir = smart(sign_in(cast[role]))
        for name, resource in resource_types().items():
            if resource.search is None:
                continue
            response = fhir.server.session.get(
                f"{fhir.server.aud}/{name}",
                params={"_count": "5"},
                headers={"Accept": "application/fhir+json"},
            )
            assert response.headers["content-type"].startswith("application/fhir+json"), (name, role)
            assert response.status_code < 500, (name, role, response.text)
            body = response.json()
            if response.status_code == 200:
                assert Bundle(jsondict=body).type == "searchset", (name, role)
            else:
                assert body["resourceType"] == "OperationOutcome", (name, role)
                assert response.status_code in (400, 403), (name, role, response.text)


def test_requests_session_is_the_librarys_own(smart: Callable[..., smart_client.FHIRClient]) -> None:
    """Guards the documented way of authenticating: one ``requests.Session`` per server."""
    fhir = smart({"Authorization": "Bearer x"})
    assert isinstance(fhir.server.session, requests.Session)
    assert fhir.server.session.headers["Authorization"] == "Bearer x"
