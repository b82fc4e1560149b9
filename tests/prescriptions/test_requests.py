"""Refill and renewal requests: when a patient may ask for which, one pending request per prescription,
withdrawing, approving a renewal (a new prescription, the old one completed, its checks noted but not
blocking), approving a refill, declining with a note, the notifications on each side, the doctor's inbox
and the audit log."""

from __future__ import annotations

import asyncio
import json
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.identity.models import Patient
from caresync.prescriptions.models import Prescription, PrescriptionRequest
from tests.conftest import Cast, Person, run_coroutine
from tests.prescriptions.conftest import P, PrescriptionFactory, problem_field

TODAY = date.today()


def notes_for(tx: Any, person: Person) -> list[Notification]:
    with tx() as s:
        query = (
            select(Notification).where(Notification.user_id == person.id).order_by(Notification.created_at)
        )
        return list(s.execute(query).scalars())


def ask(client: TestClient, headers: dict[str, str], prescription: Any, kind: str, note: str = "") -> Any:
    return client.post(f"{P}/{prescription.id}/requests", json={"kind": kind, "note": note}, headers=headers)


@pytest.fixture
def patient(cast: Cast, sign_in: Any) -> dict[str, str]:
    return sign_in(cast["patient"])


@pytest.fixture
def doctor(cast: Cast, sign_in: Any) -> dict[str, str]:
    return sign_in(cast["doctor"])


# --- which request, when -----------------------------------------------------------------------------------

# (status, refills, dispensed, valid until in days) -> refill allowed, renewal allowed
WHEN = [
    ("active", 2, 0, 30, True, False),
    ("active", 2, 1, 30, True, False),
    ("active", 2, 3, 30, False, True),  # no fills left
    ("active", 2, 1, -1, False, True),  # expired
    ("on-hold", 2, 1, 30, False, False),
    ("on-hold", 2, 3, 30, False, True),
    ("completed", 2, 3, 30, False, True),
    ("stopped", 2, 1, 30, False, False),
    ("cancelled", 2, 0, 30, False, False),
]


@pytest.mark.parametrize(
    ("status", "refills", "dispensed", "valid_days", "refill", "renewal"),
    WHEN,
    ids=[f"{s}-{d}of{r + 1}-valid{v}" for s, r, d, v, *_rest in WHEN],
)
def test_which_request_the_patient_may_make(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    prescription_factory: PrescriptionFactory,
    status: str,
    refills: int,
    dispensed: int,
    valid_days: int,
    refill: bool,
    renewal: bool,
) -> None:
    valid_until = TODAY + timedelta(days=valid_days)
    for kind, allowed in (("refill", refill), ("renewal", renewal)):
        prescription = prescription_factory(
            cast["doctor"],
            cast["patient"],
            status=status,
            refills=refills,
            dispense_count=dispensed,
            start_date=min(TODAY, valid_until) - timedelta(days=60),
            valid_until=valid_until,
        )
        response = ask(client, patient, prescription, kind)
        assert response.status_code == (201 if allowed else 409), f"{kind}: {response.text}"
        if not allowed:
            assert response.json()["detail"]  # a reason the patient can act on


def test_the_refusal_points_to_the_other_kind(
    client: TestClient, cast: Cast, patient: dict[str, str], prescription_factory: PrescriptionFactory
) -> None:
    fills_left = prescription_factory(cast["doctor"], cast["patient"], refills=1, dispense_count=1)
    assert "refill instead" in ask(client, patient, fills_left, "renewal").json()["detail"]
    used_up = prescription_factory(cast["doctor"], cast["patient"], refills=1, dispense_count=2)
    assert "ask for a renewal" in ask(client, patient, used_up, "refill").json()["detail"]


def test_a_request_reaches_the_prescriber_and_the_audit_log(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    response = ask(client, patient, prescription, "refill", "Going abroad next week")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["kind"], body["status"], body["note"]) == ("refill", "pending", "Going abroad next week")
    assert body["medication"] == "Amoxicillin 500 mg capsule"
    [note] = notes_for(tx, cast["doctor"])
    assert note.link == "/prescriptions/requests"
    assert "Refill request" in note.title
    with tx() as s:
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "prescription.request")).scalar_one()
    assert entry.actor_id == cast["patient"].id
    assert json.loads(entry.detail) == {"kind": "refill", "request_id": body["id"]}


def test_one_pending_request_per_prescription(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    assert ask(client, patient, prescription, "refill").status_code == 201
    second = ask(client, patient, prescription, "refill")
    assert second.status_code == 409
    assert "already have a pending request" in second.json()["detail"]
    with tx() as s:
        rows = s.execute(select(PrescriptionRequest)).scalars().all()
    assert [r.status for r in rows] == ["pending"]


def test_the_patient_withdraws_and_may_ask_again(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    request_id = ask(client, patient, prescription, "refill").json()["id"]
    assert client.post(f"{P}/requests/{request_id}/withdraw", headers=doctor).status_code == 403
    withdrawn = client.post(f"{P}/requests/{request_id}/withdraw", headers=patient)
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert client.post(f"{P}/requests/{request_id}/withdraw", headers=patient).status_code == 409
    assert ask(client, patient, prescription, "refill").status_code == 201
    decided = client.post(f"{P}/requests/{request_id}/decision", json={"decision": "approve"}, headers=doctor)
    assert decided.status_code == 409  # the withdrawn one cannot be decided


def test_only_the_patient_asks(
    client: TestClient,
    cast: Cast,
    doctor: dict[str, str],
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    assert ask(client, doctor, prescription, "refill").status_code == 403
    stranger = prescription_factory(cast["doctor"], cast.other_patient, dispense_count=1)
    assert ask(client, sign_in(cast["patient"]), stranger, "refill").status_code == 404
    draft = prescription_factory(cast["doctor"], cast["patient"], status="draft")
    assert ask(client, sign_in(cast["patient"]), draft, "renewal").status_code == 404
    bad = client.post(
        f"{P}/{prescription.id}/requests", json={"kind": "extra"}, headers=sign_in(cast["patient"])
    )
    assert bad.status_code == 422
    assert problem_field(bad.json()) == "kind"


# --- decisions ---------------------------------------------------------------------------------------------


def test_approving_a_renewal_issues_a_new_prescription_and_completes_the_old(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    old = prescription_factory(
        cast["doctor"],
        cast["patient"],
        refills=1,
        dispense_count=2,
        start_date=TODAY - timedelta(days=40),
        dose="2 capsules",
        instructions="With food.",
    )
    request_id = ask(client, patient, old, "renewal").json()["id"]
    response = client.post(
        f"{P}/requests/{request_id}/decision",
        json={"decision": "approve", "note": "Review in a month"},
        headers=doctor,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request"]["status"] == "approved"
    renewal = body["renewal"]
    assert body["request"]["renewal_id"] == renewal["id"]
    assert renewal["renewal_of_id"] == str(old.id)
    assert (renewal["status"], renewal["dispense_count"], renewal["next_step"]) == ("active", 0, "first-fill")
    assert (renewal["dose"], renewal["instructions"], renewal["refills"]) == ("2 capsules", "With food.", 1)
    assert renewal["start_date"] == TODAY.isoformat()
    assert body["warnings"] == []  # the old prescription is no duplicate of its renewal
    with tx() as s:
        stored = s.get(Prescription, old.id)
        assert stored is not None
        assert stored.status == "completed"
        actions = set(s.execute(select(AuditEntry.action)).scalars())
    assert {"prescription.renew", "prescription.request_decide", "prescription.status"} <= actions
    last = notes_for(tx, cast["patient"])[-1]
    assert last.link == f"/prescriptions/{renewal['id']}"
    assert "renewed" in last.title
    assert "Review in a month" in last.body
    again = client.post(f"{P}/requests/{request_id}/decision", json={"decision": "approve"}, headers=doctor)
    assert again.status_code == 409


def test_a_renewal_notes_warnings_without_blocking(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    """An allergy recorded since the first prescription is noted on the renewal, which is still issued."""
    old = prescription_factory(cast["doctor"], cast["patient"], refills=0, dispense_count=1)
    with tx() as s:
        s.execute(
            update(Patient).where(Patient.id == cast["patient"].patient_id).values(allergies="penicillin")
        )
    request_id = ask(client, patient, old, "renewal").json()["id"]
    response = client.post(
        f"{P}/requests/{request_id}/decision", json={"decision": "approve"}, headers=doctor
    )
    assert response.status_code == 200, response.text
    assert [w["code"] for w in response.json()["warnings"]] == ["allergy"]
    assert response.json()["renewal"]["status_reason"] == "Renewal; warnings noted: allergy"


def test_approving_a_refill_tells_the_patient_the_pharmacy_may_dispense(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    request_id = ask(client, patient, prescription, "refill").json()["id"]
    response = client.post(
        f"{P}/requests/{request_id}/decision", json={"decision": "approve"}, headers=doctor
    )
    assert response.status_code == 200
    assert response.json()["renewal"] is None
    with tx() as s:
        assert s.execute(select(Prescription)).scalars().all() == [s.get(Prescription, prescription.id)]
    [note] = notes_for(tx, cast["patient"])
    assert "refill" in note.title
    assert "pharmacy may dispense" in note.body


def test_declining_needs_a_note_the_patient_sees(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], refills=0, dispense_count=1)
    request_id = ask(client, patient, prescription, "renewal").json()["id"]
    url = f"{P}/requests/{request_id}/decision"
    no_note = client.post(url, json={"decision": "decline"}, headers=doctor)
    assert no_note.status_code == 422
    assert problem_field(no_note.json()) == "note"
    declined = client.post(
        url, json={"decision": "decline", "note": "Come to the clinic first"}, headers=doctor
    )
    assert declined.status_code == 200
    assert declined.json()["request"]["status"] == "declined"
    [note] = notes_for(tx, cast["patient"])
    assert "declined" in note.title
    assert note.body == "Come to the clinic first"
    with tx() as s:
        stored = s.get(Prescription, prescription.id)
        assert stored is not None
        assert stored.status == "active"  # nothing else changed


def test_a_refill_that_is_no_longer_possible_cannot_be_approved(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], refills=1, dispense_count=1)
    request_id = ask(client, patient, prescription, "refill").json()["id"]
    with tx() as s:  # the pharmacy dispensed the last fill meanwhile
        s.execute(update(Prescription).where(Prescription.id == prescription.id).values(dispense_count=2))
    response = client.post(
        f"{P}/requests/{request_id}/decision", json={"decision": "approve"}, headers=doctor
    )
    assert response.status_code == 409
    assert "Decline it" in response.json()["detail"]


def test_only_a_doctor_of_the_care_team_decides(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    make: Any,
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    request_id = ask(client, patient, prescription, "refill").json()["id"]
    url = f"{P}/requests/{request_id}/decision"
    outsider = make.staff("doctor")
    assert client.post(url, json={"decision": "approve"}, headers=sign_in(outsider)).status_code == 404
    assert client.post(url, json={"decision": "approve"}, headers=sign_in(cast["nurse"])).status_code == 403
    colleague = make.staff("doctor")
    make.care(colleague, cast["patient"])
    assert client.post(url, json={"decision": "approve"}, headers=sign_in(colleague)).status_code == 200


# --- the inbox ---------------------------------------------------------------------------------------------


def test_the_inbox_holds_the_requests_of_my_patients(
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    doctor: dict[str, str],
    make: Any,
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    mine = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    mine_id = ask(client, patient, mine, "refill").json()["id"]
    elsewhere_doctor = make.staff("doctor")
    elsewhere = make.patient_user()
    make.care(elsewhere_doctor, elsewhere)
    theirs = prescription_factory(elsewhere_doctor, elsewhere, dispense_count=1)
    assert ask(client, sign_in(elsewhere), theirs, "refill").status_code == 201

    inbox = client.get(f"{P}/requests", headers=doctor)
    assert inbox.status_code == 200
    assert [r["id"] for r in inbox.json()["items"]] == [mine_id]
    assert inbox.json()["items"][0]["patient_name"].startswith("Test")
    own = client.get(f"{P}/requests", headers=patient)
    assert [r["id"] for r in own.json()["items"]] == [mine_id]
    client.post(f"{P}/requests/{mine_id}/decision", json={"decision": "approve"}, headers=doctor)
    assert client.get(f"{P}/requests", headers=doctor).json()["items"] == []
    approved = client.get(f"{P}/requests", params={"status": "approved"}, headers=doctor)
    assert [r["id"] for r in approved.json()["items"]] == [mine_id]
    assert client.get(f"{P}/requests", params={"status": "odd"}, headers=doctor).status_code == 422
    assert client.get(f"{P}/requests", headers=sign_in(cast["nurse"])).status_code == 403
    with tx() as s:
        listed = s.execute(
            select(AuditEntry).where(
                AuditEntry.action == "prescription.request_list", AuditEntry.actor_id == cast["doctor"].id
            )
        ).scalars()
        assert {entry.patient_id for entry in listed} == {cast["patient"].patient_id}


# --- races -------------------------------------------------------------------------------------------------


def _race(app: Any, calls: list[tuple[str, dict[str, Any], dict[str, str]]]) -> list[int]:
    """POST every (url, body, headers) at once; the statuses."""

    async def race() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caresync.test") as client:
            sent = [client.post(url, json=body, headers=headers) for url, body, headers in calls]
            return [response.status_code for response in await asyncio.gather(*sent)]

    return run_coroutine(race())


def test_doctors_approving_one_renewal_at_once_issue_one_prescription(
    app: Any,
    client: TestClient,
    cast: Cast,
    patient: dict[str, str],
    make: Any,
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    old = prescription_factory(cast["doctor"], cast["patient"], refills=0, dispense_count=1)
    request_id = ask(client, patient, old, "renewal").json()["id"]
    doctors = [cast["doctor"]]
    for _ in range(4):
        colleague = make.staff("doctor")
        make.care(colleague, cast["patient"])
        doctors.append(colleague)
    url = f"{P}/requests/{request_id}/decision"
    statuses = _race(app, [(url, {"decision": "approve"}, sign_in(d)) for d in doctors])
    assert sorted(statuses) == [200, 409, 409, 409, 409], statuses
    with tx() as s:
        renewals = s.execute(select(Prescription).where(Prescription.renewal_of_id == old.id)).scalars().all()
        assert len(renewals) == 1


def test_a_patient_asking_many_times_at_once_makes_one_request(
    app: Any, cast: Cast, patient: dict[str, str], prescription_factory: PrescriptionFactory, tx: Any
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    url = f"{P}/{prescription.id}/requests"
    statuses = _race(app, [(url, {"kind": "refill"}, patient)] * 6)
    assert sorted(statuses) == [201, 409, 409, 409, 409, 409], statuses
    with tx() as s:
        assert len(s.execute(select(PrescriptionRequest)).scalars().all()) == 1
