"""FHIR Schedule, Slot and Appointment: the code tables, the practitioner's schedule, computed slots (free,
busy, busy-unavailable), booking through FHIR with the app's rules (409 on a taken slot, also in a race;
422 in the past), cancel / reschedule / visit progress through PUT, every search parameter, paging,
includes, ``Patient/$everything`` and who may see what."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from caresync.fhir.resources import scheduling as fhir_sched
from caresync.scheduling import booking
from caresync.scheduling.models import Appointment, Location
from caresync.scheduling.rules import AppointmentStatus
from tests.conftest import Cast, Factory, Person, login, run_coroutine
from tests.fhir.conftest import BASE, FHIR_JSON, FhirApi, ids
from tests.scheduling.conftest import Clinician, SchedulingFactory
from tests.scheduling.test_booking import MONDAY, at, iso

SignIn = Callable[[Person], dict[str, str]]
TUESDAY = MONDAY + timedelta(days=1)
SLOTS_PER_DAY = 14  # 09:00-12:00 and 13:00-17:00 in 30-minute slots


@dataclass
class Clinic(Clinician):
    """A clinician with weekly hours at ``location``."""

    location: Location


@pytest.fixture(name="sched")
def sched_fixture(make: Factory) -> SchedulingFactory:
    """The scheduling row factories of ``tests/scheduling``."""
    return SchedulingFactory(make)


@pytest.fixture
def clinic(sched: SchedulingFactory, cast: Cast) -> Clinic:
    """The cast's doctor (who cares for the cast's patient) working Monday to Friday 9-17, 30-minute
    slots, lunch 12-13, at one London clinic."""
    location = sched.location(name="Riverside clinic")
    doctor = sched.practitioner(person=cast["doctor"])
    sched.hours(doctor, location)
    return Clinic(person=doctor.person, practitioner=doctor.practitioner, location=location)


def appointment_body(
    clinic: Clinic, start: datetime, patient_id: uuid.UUID | None = None, **extra: Any
) -> dict[str, Any]:
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Practitioner/{clinic.id}"}, "status": "accepted"}
    ]
    if patient_id is not None:
        participants.append({"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"})
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": iso(start),
        "participant": participants,
    }
    body.update(extra)
    return body


def slot_ref(clinic: Clinic, start: datetime) -> str:
    return f"{clinic.id}-{start.astimezone(UTC):%Y%m%d%H%M}"


def day_slots(fhir: FhirApi, headers: dict[str, str], clinic: Clinic, extra: str = "") -> dict[str, Any]:
    response = fhir.get(
        f"Slot?schedule=Schedule/{clinic.id}&start=ge{MONDAY}&start=lt{TUESDAY}&_count=50{extra}", headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def issue(response: Any) -> dict[str, Any]:
    return response.json()["issue"][0]


# --- code tables --------------------------------------------------------------------------------------------


def test_every_domain_status_maps_to_an_r4_appointment_status() -> None:
    assert set(fhir_sched.APPOINTMENT_STATUS) == set(AppointmentStatus)
    for domain, code in fhir_sched.APPOINTMENT_STATUS.items():
        assert code in fhir_sched.FHIR_APPOINTMENT_STATUSES
        assert fhir_sched.DOMAIN_STATUS[code] == domain
    assert len(fhir_sched.FHIR_APPOINTMENT_STATUSES) == 10
    # the update's status changes record the step whose target is that very status
    for code, step in fhir_sched.PROGRESS_STEPS.items():
        assert fhir_sched.APPOINTMENT_STATUS[booking.PROGRESS[step][0]] == code
    assert set(fhir_sched.SLOT_STATUS.values()) <= set(fhir_sched.FHIR_SLOT_STATUSES)


def test_slot_ids_round_trip_and_reject_other_shapes() -> None:
    practitioner = uuid.uuid4()
    start = datetime(2030, 3, 4, 9, 30, tzinfo=UTC)
    slot_id = fhir_sched.slot_id(practitioner, start)
    assert len(slot_id) <= 64
    assert fhir_sched.parse_slot_id(slot_id) == (practitioner, start)
    for bad in (
        "x",
        str(practitioner),
        f"{practitioner}-20300304093",
        f"{practitioner.hex}0000-203003040930",
    ):
        with pytest.raises(ValueError, match=r"."):
            fhir_sched.parse_slot_id(bad)


# --- Schedule -----------------------------------------------------------------------------------------------


def test_schedule_read_maps_the_weekly_hours(
    fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn
) -> None:
    headers = sign_in(cast["patient"])
    response = fhir.get(f"Schedule/{clinic.id}", headers)
    assert response.status_code == 200, response.text
    schedule = response.json()
    assert schedule["id"] == str(clinic.id)
    assert schedule["active"] is True
    actors = [a["reference"] for a in schedule["actor"]]
    assert actors == [f"Practitioner/{clinic.id}", f"Location/{clinic.location.id}"]
    assert "Mon 09:00-17:00 at Riverside clinic (30-minute slots; breaks 12:00-13:00)" in schedule["comment"]
    assert schedule["planningHorizon"]["start"] == datetime.now(UTC).date().isoformat()
    # a practitioner without hours has no schedule; an unknown id neither
    no_hours = fhir.get(f"Schedule/{cast['nurse'].id}", headers)
    assert no_hours.status_code == 404
    assert fhir.get(f"Schedule/{uuid.uuid4()}", headers).status_code == 404


def test_schedule_search_by_actor_and_active(
    fhir: FhirApi,
    clinic: Clinic,
    sched: SchedulingFactory,
    sign_in: SignIn,
    cast: Cast,
) -> None:
    other_location = sched.location(name="Hilltop clinic")
    retired = sched.practitioner(full_name="Dr Retired")
    sched.hours(retired, other_location, valid_until=datetime.now(UTC).date() - timedelta(days=3))
    sched.practitioner(full_name="Dr No Hours")
    headers = sign_in(cast["patient"])

    def found(params: str) -> list[str]:
        response = fhir.get(f"Schedule?{params}", headers)
        assert response.status_code == 200, response.text
        assert response.json()["total"] == len(ids(response.json()))
        return ids(response.json())

    assert set(found("")) == {str(clinic.id), str(retired.id)}
    assert found(f"actor=Practitioner/{clinic.id}") == [str(clinic.id)]
    assert found(f"actor=Practitioner/{uuid.uuid4()}") == []
    assert found(f"actor=Location/{clinic.location.id}") == [str(clinic.id)]
    assert found(f"actor=Location/{other_location.id}") == [str(retired.id)]
    assert found("active=true") == [str(clinic.id)]
    assert found("active=false") == [str(retired.id)]
    expired = fhir.get(f"Schedule/{retired.id}", headers).json()
    assert expired["active"] is False
    assert fhir.get(f"Schedule?actor={clinic.id}", headers).status_code == 400  # no type
    assert fhir.get("Schedule?active=maybe", headers).status_code == 400
    assert fhir.get("Schedule", {}).status_code == 401


# --- Slot ---------------------------------------------------------------------------------------------------


def test_slots_of_a_practitioner_free_busy_and_time_off(
    fhir: FhirApi,
    clinic: Clinic,
    sched: SchedulingFactory,
    cast: Cast,
    sign_in: SignIn,
) -> None:
    headers = sign_in(cast["patient"])
    bundle = day_slots(fhir, headers, clinic)
    assert bundle["total"] == SLOTS_PER_DAY
    slots = [e["resource"] for e in bundle["entry"]]
    assert {s["status"] for s in slots} == {"free"}
    first = slots[0]
    assert first["id"] == slot_ref(clinic, at(MONDAY, 9))
    assert datetime.fromisoformat(first["start"]) == at(MONDAY, 9)
    assert first["schedule"]["reference"] == f"Schedule/{clinic.id}"
    assert datetime.fromisoformat(first["end"]) - datetime.fromisoformat(first["start"]) == timedelta(
        minutes=30
    )
    assert at(MONDAY, 12) not in {datetime.fromisoformat(s["start"]) for s in slots}  # lunch
    assert day_slots(fhir, headers, clinic, "&status=busy").get("total") == 0

    sched.appointment(clinic, cast.other_patient, at(MONDAY, 10))
    sched.time_off(clinic, at(MONDAY, 14), at(MONDAY, 15))
    assert day_slots(fhir, headers, clinic)["total"] == SLOTS_PER_DAY
    busy = day_slots(fhir, headers, clinic, "&status=busy")
    assert ids(busy) == [slot_ref(clinic, at(MONDAY, 10))]
    off = day_slots(fhir, headers, clinic, "&status=busy-unavailable")
    assert ids(off) == [slot_ref(clinic, at(MONDAY, 14)), slot_ref(clinic, at(MONDAY, 14, 30))]
    free = day_slots(fhir, headers, clinic, "&status=free")
    assert free["total"] == SLOTS_PER_DAY - 3
    assert slot_ref(clinic, at(MONDAY, 10)) not in ids(free)
    both = day_slots(fhir, headers, clinic, "&status=busy,busy-unavailable")
    assert both["total"] == 3

    # read: free, busy (no patient shows), busy-unavailable; not a slot / past / malformed: 404
    assert fhir.get(f"Slot/{slot_ref(clinic, at(MONDAY, 9))}", headers).json()["status"] == "free"
    taken = fhir.get(f"Slot/{slot_ref(clinic, at(MONDAY, 10))}", headers).json()
    assert taken["status"] == "busy"
    assert cast.other_patient.family_name not in str(taken)
    assert (
        fhir.get(f"Slot/{slot_ref(clinic, at(MONDAY, 14))}", headers).json()["status"] == "busy-unavailable"
    )
    assert fhir.get(f"Slot/{slot_ref(clinic, at(MONDAY, 10, 10))}", headers).status_code == 404
    last_monday = MONDAY - timedelta(days=14)
    assert fhir.get(f"Slot/{slot_ref(clinic, at(last_monday, 9))}", headers).status_code == 404
    assert fhir.get("Slot/not-a-slot", headers).status_code == 404
    assert (
        fhir.get(
            f"Slot/{slot_ref(clinic, at(MONDAY, 9)).replace(str(clinic.id)[:8], '0' * 8)}", headers
        ).status_code
        == 404
    )


def test_slot_search_start_prefixes_and_default_window(
    fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn
) -> None:
    headers = sign_in(cast["patient"])
    base = f"Slot?schedule=Schedule/{clinic.id}&_count=200"
    morning = fhir.get(f"{base}&start=ge{iso(at(MONDAY, 9))}&start=lt{iso(at(MONDAY, 10))}", headers).json()
    assert ids(morning) == [slot_ref(clinic, at(MONDAY, 9)), slot_ref(clinic, at(MONDAY, 9, 30))]
    exact = fhir.get(f"{base}&start={iso(at(MONDAY, 11, 30))}", headers).json()
    assert ids(exact) == [slot_ref(clinic, at(MONDAY, 11, 30))]
    after = fhir.get(f"{base}&start=gt{iso(at(MONDAY, 16))}&start=le{MONDAY}", headers).json()
    assert ids(after) == [slot_ref(clinic, at(MONDAY, 16, 30))]
    saturday = MONDAY + timedelta(days=5)
    assert fhir.get(f"{base}&start={saturday}", headers).json()["total"] == 0  # no hours at weekends
    # default: from now, the next 14 days (ten weekdays of 14 slots, fewer today)
    window = fhir.get(base, headers).json()
    starts = [datetime.fromisoformat(e["resource"]["start"]) for e in window.get("entry", [])]
    now = datetime.now(UTC)
    assert starts
    assert all(now <= s < now + timedelta(days=14) for s in starts)
    assert SLOTS_PER_DAY * 9 <= window["total"] <= SLOTS_PER_DAY * 10


def test_slot_search_refuses_bad_requests(fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["patient"])
    missing = fhir.get("Slot?status=free", headers)
    assert missing.status_code == 400
    assert "schedule" in issue(missing)["diagnostics"]
    too_long = fhir.get(
        f"Slot?schedule=Schedule/{clinic.id}&start=ge{MONDAY}&start=lt{MONDAY + timedelta(days=120)}", headers
    )
    assert too_long.status_code == 400
    assert "90 days" in issue(too_long)["diagnostics"]
    bad_status = fhir.get(f"Slot?schedule=Schedule/{clinic.id}&status=open", headers)
    assert bad_status.status_code == 400
    assert fhir.get(f"Slot?schedule=Schedule/{uuid.uuid4()}", headers).status_code == 404
    assert fhir.get(f"Slot?schedule=Patient/{clinic.id}", headers).status_code == 400
    assert fhir.get(f"Slot?schedule=Schedule/{clinic.id}&_cursor=nonsense", headers).status_code == 400


def test_slot_paging_follows_next_links(fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["patient"])
    first = fhir.get(
        f"Slot?schedule=Schedule/{clinic.id}&start=ge{MONDAY}&start=lt{TUESDAY}&_count=5", headers
    )
    bundle = first.json()
    assert bundle["total"] == SLOTS_PER_DAY
    assert len(ids(bundle)) == 5
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    assert next_url.startswith("http")
    everything = fhir.search_all(
        f"Slot?schedule=Schedule/{clinic.id}&start=ge{MONDAY}&start=lt{TUESDAY}&_count=5", headers
    )
    starts = [s["start"] for s in everything]
    assert len(everything) == SLOTS_PER_DAY
    assert starts == sorted(starts)
    assert len(set(starts)) == SLOTS_PER_DAY


# --- Appointment: booking -----------------------------------------------------------------------------------


def test_a_patient_books_through_fhir_and_the_slot_is_taken(
    fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn, tx: Any
) -> None:
    patient = cast["patient"]
    headers = sign_in(patient)
    body = appointment_body(clinic, at(MONDAY, 9, 30), reasonCode=[{"text": "Palpitations"}])
    response = fhir.post("Appointment", body, headers)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"].endswith(f"{BASE}/Appointment/{created['id']}")
    assert created["status"] == "booked"
    assert created["reasonCode"] == [{"text": "Palpitations"}]
    assert created["minutesDuration"] == 30
    assert datetime.fromisoformat(created["end"]) == at(MONDAY, 10)
    actors = {p["actor"]["reference"]: p for p in created["participant"]}
    assert f"Patient/{patient.patient_id}" in actors  # the patient booked for themselves
    assert actors[f"Practitioner/{clinic.id}"]["type"][0]["coding"][0]["code"] == "PPRF"
    assert f"Location/{clinic.location.id}" in actors
    assert created["slot"] == [{"reference": f"Slot/{slot_ref(clinic, at(MONDAY, 9, 30))}"}]
    # the slot is no longer free
    assert fhir.get(f"Slot/{slot_ref(clinic, at(MONDAY, 9, 30))}", headers).json()["status"] == "busy"
    assert slot_ref(clinic, at(MONDAY, 9, 30)) not in ids(day_slots(fhir, headers, clinic, "&status=free"))
    with tx() as s:
        row = s.get(Appointment, uuid.UUID(created["id"]))
        assert row is not None
        assert row.patient_id == patient.patient_id
        assert row.reason == "Palpitations"
    # the app's read of it agrees
    assert fhir.get(f"Appointment/{created['id']}", headers).json()["start"] == created["start"]


def test_booking_by_slot_reference_and_end_rules(
    fhir: FhirApi, clinic: Clinic, make: Factory, sign_in: SignIn
) -> None:
    headers = sign_in(make.patient_user())
    by_slot = {
        "resourceType": "Appointment",
        "status": "proposed",
        "slot": [{"reference": f"Slot/{slot_ref(clinic, at(MONDAY, 11))}"}],
        "participant": [{"actor": {"reference": f"Practitioner/{clinic.id}"}, "status": "accepted"}],
        "comment": "Follow-up",
    }
    response = fhir.post("Appointment", by_slot, headers)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "booked"
    assert datetime.fromisoformat(response.json()["start"]) == at(MONDAY, 11)
    assert response.json()["reasonCode"] == [{"text": "Follow-up"}]
    # an end that does not match the slot's length is refused (and nothing is booked)
    wrong_end = appointment_body(clinic, at(MONDAY, 13), end=iso(at(MONDAY, 14)))
    refused = fhir.post("Appointment", wrong_end, headers)
    assert refused.status_code == 422
    assert "30 minutes" in issue(refused)["diagnostics"]
    assert fhir.get(f"Slot/{slot_ref(clinic, at(MONDAY, 13))}", headers).json()["status"] == "free"
    right_end = appointment_body(clinic, at(MONDAY, 13), end=iso(at(MONDAY, 13, 30)))
    assert fhir.post("Appointment", right_end, headers).status_code == 201
    # a slot that disagrees with the start, a create that is not a booking, nothing to book
    mismatch = appointment_body(
        clinic, at(MONDAY, 15), slot=[{"reference": f"Slot/{slot_ref(clinic, at(MONDAY, 16))}"}]
    )
    assert fhir.post("Appointment", mismatch, headers).status_code == 400
    assert (
        fhir.post(
            "Appointment", appointment_body(clinic, at(MONDAY, 15), status="arrived"), headers
        ).status_code
        == 400
    )
    nothing = {
        "resourceType": "Appointment",
        "status": "booked",
        "participant": [{"actor": {"display": "x"}, "status": "accepted"}],
    }
    assert fhir.post("Appointment", nothing, headers).status_code == 400


def test_double_booking_is_a_conflict(fhir: FhirApi, clinic: Clinic, make: Factory, sign_in: SignIn) -> None:
    first, second = sign_in(make.patient_user()), sign_in(make.patient_user())
    assert fhir.post("Appointment", appointment_body(clinic, at(MONDAY, 15)), first).status_code == 201
    again = fhir.post("Appointment", appointment_body(clinic, at(MONDAY, 15)), second)
    assert again.status_code == 409
    assert issue(again)["code"] == "conflict"


def test_concurrent_creates_for_one_slot_one_wins(app: Any, clinic: Clinic, make: Factory) -> None:
    racers = 6
    people = [make.patient_user() for _ in range(racers)]
    with TestClient(app) as client:
        tokens = [login(client, p.email, p.password) for p in people]
    body = appointment_body(clinic, at(MONDAY, 16))

    async def race() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caresync.test") as client:
            calls = [
                client.post(f"{BASE}/Appointment", json=body, headers={**h, "Content-Type": FHIR_JSON})
                for h in tokens
            ]
            return list(await asyncio.gather(*calls))

    responses = run_coroutine(race())
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == racers - 1, statuses
    assert all(r.json()["issue"][0]["code"] == "conflict" for r in responses if r.status_code == 409)


def test_booking_in_the_past_is_refused(fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["patient"])
    past = at(MONDAY - timedelta(days=14), 9)
    response = fhir.post("Appointment", appointment_body(clinic, past), headers)
    assert response.status_code == 422
    assert "past" in issue(response)["diagnostics"]


def test_staff_book_for_a_patient_in_their_care_only(
    fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn, make: Factory
) -> None:
    headers = sign_in(cast["doctor"])
    ok = fhir.post(
        "Appointment", appointment_body(clinic, at(MONDAY, 9), cast["patient"].patient_id), headers
    )
    assert ok.status_code == 201, ok.text
    assert f"Patient/{cast['patient'].patient_id}" in str(ok.json()["participant"])
    stranger = fhir.post(
        "Appointment", appointment_body(clinic, at(MONDAY, 9, 30), cast.other_patient.id), headers
    )
    assert stranger.status_code == 404
    no_patient = fhir.post("Appointment", appointment_body(clinic, at(MONDAY, 9, 30)), headers)
    assert no_patient.status_code == 422
    # a patient cannot book for someone else
    patient_headers = sign_in(cast["patient"])
    other = fhir.post(
        "Appointment", appointment_body(clinic, at(MONDAY, 10), cast.other_patient.id), patient_headers
    )
    assert other.status_code == 404


# --- Appointment: update ------------------------------------------------------------------------------------


def book_one(fhir: FhirApi, headers: dict[str, str], clinic: Clinic, start: datetime) -> dict[str, Any]:
    response = fhir.post(
        "Appointment", appointment_body(clinic, start, reasonCode=[{"text": "Check"}]), headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_cancel_through_put(fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn) -> None:
    headers = sign_in(cast["patient"])
    booked = book_one(fhir, headers, clinic, at(MONDAY, 10))
    cancelled = {**booked, "status": "cancelled", "cancelationReason": {"text": "Feeling better"}}
    response = fhir.put(f"Appointment/{booked['id']}", cancelled, headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelationReason"] == {"text": "Feeling better"}
    assert "slot" not in response.json()
    assert fhir.get(f"Slot/{slot_ref(clinic, at(MONDAY, 10))}", headers).json()["status"] == "free"
    # a cancelled appointment cannot be brought back
    again = fhir.put(f"Appointment/{booked['id']}", {**response.json(), "status": "booked"}, headers)
    assert again.status_code == 400


def test_reschedule_through_put(
    fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn, make: Factory
) -> None:
    headers = sign_in(cast["patient"])
    booked = book_one(fhir, headers, clinic, at(MONDAY, 10))
    moved = {**booked, "start": iso(at(TUESDAY, 11)), "end": iso(at(TUESDAY, 11, 30))}
    response = fhir.put(f"Appointment/{booked['id']}", moved, headers)
    assert response.status_code == 200, response.text
    new = response.json()
    assert new["id"] != booked["id"]  # the domain books anew and cancels the old one
    assert datetime.fromisoformat(new["start"]) == at(TUESDAY, 11)
    assert new["status"] == "booked"
    assert new["reasonCode"] == [{"text": "Check"}]
    old = fhir.get(f"Appointment/{booked['id']}", headers).json()
    assert old["status"] == "cancelled"
    assert old["cancelationReason"] == {"text": "rescheduled"}
    # to a taken time: 409; both a new status and a new time: 400; an end of another length: 400
    taken = book_one(fhir, sign_in(make.patient_user()), clinic, at(TUESDAY, 9))
    clash = fhir.put(
        f"Appointment/{new['id']}", {**new, "start": taken["start"], "end": taken["end"]}, headers
    )
    assert clash.status_code == 409
    both = fhir.put(
        f"Appointment/{new['id']}",
        {**new, "start": iso(at(TUESDAY, 15)), "end": iso(at(TUESDAY, 15, 30)), "status": "cancelled"},
        headers,
    )
    assert both.status_code == 400
    longer = fhir.put(f"Appointment/{new['id']}", {**new, "end": iso(at(TUESDAY, 12))}, headers)
    assert longer.status_code == 422


def test_visit_progress_through_put(fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn) -> None:
    patient_headers = sign_in(cast["patient"])
    booked = book_one(fhir, patient_headers, clinic, at(MONDAY, 11))
    path = f"Appointment/{booked['id']}"
    # the patient may not record the visit's progress
    assert fhir.put(path, {**booked, "status": "arrived"}, patient_headers).status_code == 403
    staff = sign_in(cast["doctor"])
    arrived = fhir.put(path, {**booked, "status": "arrived"}, staff)
    assert arrived.status_code == 200, arrived.text
    assert arrived.json()["status"] == "arrived"
    checked_in = fhir.put(path, {**arrived.json(), "status": "checked-in"}, staff)
    assert checked_in.json()["status"] == "checked-in"
    # not a transition the rules allow: 409; not a change this API makes: 400
    assert fhir.put(path, {**checked_in.json(), "status": "noshow"}, staff).status_code == 409
    assert fhir.put(path, {**checked_in.json(), "status": "entered-in-error"}, staff).status_code == 400
    fulfilled = fhir.put(path, {**checked_in.json(), "status": "fulfilled"}, staff)
    assert fulfilled.json()["status"] == "fulfilled"
    # unchanged: nothing happens; other participants: 400
    assert fhir.put(path, fulfilled.json(), staff).json()["status"] == "fulfilled"
    swapped = dict(fulfilled.json())
    swapped["participant"] = [
        {"actor": {"reference": f"Patient/{cast.other_patient.id}"}, "status": "accepted"}
    ]
    refused = fhir.put(path, swapped, staff)
    assert refused.status_code == 400
    assert "cannot be changed" in issue(refused)["diagnostics"]


# --- Appointment: reading, search, includes, everything -----------------------------------------------------


def test_a_patient_sees_only_their_own_appointments(
    fhir: FhirApi,
    clinic: Clinic,
    cast: Cast,
    sched: SchedulingFactory,
    sign_in: SignIn,
    make: Factory,
) -> None:
    mine = sched.appointment(clinic, cast["patient"], at(MONDAY, 9))
    other_person = make.patient_user()
    theirs = sched.appointment(clinic, other_person, at(MONDAY, 10))
    headers = sign_in(cast["patient"])
    bundle = fhir.get("Appointment", headers).json()
    assert ids(bundle) == [str(mine.id)]
    assert bundle["total"] == 1
    assert fhir.get(f"Appointment/{theirs.id}", headers).status_code == 404
    assert fhir.get(f"Appointment/{uuid.uuid4()}", headers).status_code == 404
    assert ids(fhir.get(f"Appointment?patient=Patient/{other_person.patient_id}", headers).json()) == []
    assert (
        fhir.put(
            f"Appointment/{theirs.id}",
            {
                "resourceType": "Appointment",
                "id": str(theirs.id),
                "status": "cancelled",
                "participant": [
                    {"actor": {"reference": f"Patient/{other_person.patient_id}"}, "status": "accepted"}
                ],
            },
            headers,
        ).status_code
        == 404
    )
    # a patient-scoped app sees the same; a token without Appointment scope is refused
    app = fhir_app_token(fhir, headers, "patient/*.read")
    assert ids(fhir.get("Appointment", app).json()) == [str(mine.id)]
    assert fhir.post("Appointment", appointment_body(clinic, at(MONDAY, 15)), app).status_code == 403
    narrow = fhir_app_token(fhir, headers, "patient/Patient.read")
    assert fhir.get("Appointment", narrow).status_code == 403


def fhir_app_token(fhir: FhirApi, headers: dict[str, str], scope: str) -> dict[str, str]:
    response = fhir.client.post(
        "/api/v1/auth/app-tokens", json={"scope": scope, "label": "test"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_appointment_mapping(
    fhir: FhirApi, clinic: Clinic, cast: Cast, sched: SchedulingFactory, sign_in: SignIn
) -> None:
    row = sched.appointment(
        clinic,
        cast["patient"],
        at(MONDAY, 9),
        location=clinic.location,
        status="cancelled",
        reason="Back pain",
        cancel_reason="Clinic closed",
    )
    resource = fhir.get(f"Appointment/{row.id}", sign_in(cast["patient"])).json()
    assert resource["status"] == "cancelled"
    assert resource["cancelationReason"] == {"text": "Clinic closed"}
    assert resource["reasonCode"] == [{"text": "Back pain"}]
    assert datetime.fromisoformat(resource["start"]) == at(MONDAY, 9)
    assert resource["meta"]["lastUpdated"]
    assert resource["created"]
    patient = next(p for p in resource["participant"] if p["actor"]["reference"].startswith("Patient/"))
    profile = cast["patient"].patient
    assert profile is not None
    assert patient["actor"]["display"] == f"{profile.given_name} {profile.family_name}"
    assert "slot" not in resource  # a cancelled appointment holds no slot


@pytest.fixture
def diary(clinic: Clinic, cast: Cast, sched: SchedulingFactory, make: Factory) -> dict[str, Any]:
    """The doctor's appointments: three with the cast's patient (booked Monday 9:00, fulfilled Monday
    10:00 at the clinic, cancelled Tuesday 9:00) and one with a patient the doctor does not care for, with
    a second practitioner of the hospital."""
    second = sched.practitioner(full_name="Dr Second")
    patient = cast["patient"]
    stranger = make.patient()
    location = clinic.location
    return {
        "booked": sched.appointment(clinic, patient, at(MONDAY, 9)),
        "fulfilled": sched.appointment(
            clinic, patient, at(MONDAY, 10), status="fulfilled", location=location
        ),
        "cancelled": sched.appointment(clinic, patient, at(TUESDAY, 9), status="cancelled"),
        "stranger": sched.appointment(second, stranger, at(MONDAY, 11)),
        "second": second,
        "stranger_patient": stranger,
    }


def test_each_search_parameter(
    fhir: FhirApi, clinic: Clinic, cast: Cast, diary: dict[str, Any], sign_in: SignIn
) -> None:
    headers = sign_in(cast["doctor"])  # manages the organisation's appointments

    def found(params: str) -> set[str]:
        response = fhir.get(f"Appointment?{params}", headers)
        assert response.status_code == 200, response.text
        return set(ids(response.json()))

    a = {k: str(v.id) for k, v in diary.items() if isinstance(v, Appointment)}
    assert found("") == set(a.values())
    assert found(f"patient=Patient/{cast['patient'].patient_id}") == {
        a["booked"],
        a["fulfilled"],
        a["cancelled"],
    }
    assert found(f"patient={uuid.uuid4()}") == set()
    assert found(f"practitioner=Practitioner/{diary['second'].id}") == {a["stranger"]}
    assert found(f"practitioner=Practitioner/{uuid.uuid4()}") == set()
    assert found(f"location=Location/{clinic.location.id}") == {a["fulfilled"]}
    assert found(f"location=Location/{uuid.uuid4()}") == set()
    assert found(f"date={TUESDAY}") == {a["cancelled"]}
    assert found(f"date=ge{iso(at(MONDAY, 10))}&date=lt{TUESDAY}") == {a["fulfilled"], a["stranger"]}
    assert found(f"date=lt{MONDAY}") == set()
    assert found("status=fulfilled") == {a["fulfilled"]}
    assert found("status=booked,cancelled") == {a["booked"], a["cancelled"], a["stranger"]}
    assert found("status=pending") == set()  # a valid code CareSync never uses
    assert fhir.get("Appointment?status=done", headers).status_code == 400
    assert fhir.get("Appointment?date=yesterday", headers).status_code == 400
    assert fhir.get("Appointment?patient=Practitioner/x", headers).status_code == 400
    assert fhir.get("Appointment?colour=red", headers).status_code == 400


def test_appointment_paging_and_total(
    fhir: FhirApi, cast: Cast, diary: dict[str, Any], sign_in: SignIn
) -> None:
    headers = sign_in(cast["doctor"])
    first = fhir.get("Appointment?_count=2", headers).json()
    assert first["total"] == 4
    assert len(ids(first)) == 2
    assert any(link["relation"] == "next" for link in first["link"])
    every = fhir.search_all("Appointment?_count=2", headers)
    assert len(every) == 4
    assert len({r["id"] for r in every}) == 4
    starts = [r["start"] for r in every]
    assert starts == sorted(starts)
    assert fhir.get("Appointment?_summary=count", headers).json()["total"] == 4


def test_includes_patient_and_practitioner(
    fhir: FhirApi, clinic: Clinic, cast: Cast, diary: dict[str, Any], sign_in: SignIn
) -> None:
    headers = sign_in(cast["doctor"])
    response = fhir.get("Appointment?_include=Appointment:patient&_include=Appointment:practitioner", headers)
    assert response.status_code == 200, response.text
    included = [e for e in response.json()["entry"] if e["search"]["mode"] == "include"]
    keys = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in included}
    assert ("Patient", str(cast["patient"].patient_id)) in keys
    # the doctor sees the stranger's appointment (organisation's diary) but not their record
    assert ("Patient", str(diary["stranger_patient"].id)) not in keys
    assert ("Practitioner", str(clinic.id)) in keys
    assert ("Practitioner", str(diary["second"].id)) in keys
    assert len(included) == len(keys)  # each once
    assert not any(kind == "Location" for kind, _ in keys)  # only what was asked for
    located = fhir.get("Appointment?_include=Appointment:location", headers).json()
    assert [
        (e["resource"]["resourceType"], e["resource"]["id"])
        for e in located["entry"]
        if e["search"]["mode"] == "include"
    ] == [("Location", str(clinic.location.id))]
    plain = fhir.get("Appointment", headers).json()
    assert all(e["search"]["mode"] == "match" for e in plain["entry"])
    assert fhir.get("Appointment?_include=Appointment:slot", headers).status_code == 400


def test_everything_lists_the_patients_appointments(
    fhir: FhirApi, cast: Cast, diary: dict[str, Any], sign_in: SignIn
) -> None:
    # scoped to the two types, so the other resource types' share of $everything stays out of this test
    headers = fhir_app_token(fhir, sign_in(cast["patient"]), "patient/Patient.read patient/Appointment.read")
    response = fhir.get(f"Patient/{cast['patient'].patient_id}/$everything", headers)
    assert response.status_code == 200, response.text
    appointments = {
        e["resource"]["id"]
        for e in response.json()["entry"]
        if e["resource"]["resourceType"] == "Appointment"
    }
    assert appointments == {str(diary[k].id) for k in ("booked", "fulfilled", "cancelled")}
    # and nothing for a patient the caller cannot see
    other = fhir.get(f"Patient/{diary['stranger_patient'].id}/$everything", headers)
    assert other.status_code == 404


def test_schedule_and_slot_need_a_directory_role(
    fhir: FhirApi, clinic: Clinic, cast: Cast, sign_in: SignIn
) -> None:
    for role in ("admin", "pharmacist", "donor"):
        headers = sign_in(cast[role])
        assert fhir.get(f"Schedule/{clinic.id}", headers).status_code == 200
        assert fhir.get(f"Slot?schedule=Schedule/{clinic.id}&start={MONDAY}", headers).status_code == 200
    # a donor books no appointments
    donor = sign_in(cast["donor"])
    assert fhir.post("Appointment", appointment_body(clinic, at(MONDAY, 9)), donor).status_code == 403
    assert fhir.get("Appointment", donor).status_code == 403
