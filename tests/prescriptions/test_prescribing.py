"""Prescribing through the API: a valid prescription and what it derives, every field's validation, the
allergy check (profile text and allergy records, classes and cross-reactivity), duplicate therapy (same drug,
same class, only open prescriptions), overriding warnings, drafts, the status state machine (every pair,
with and without dispenses), reasons, notifications, lists and the refill/renewal next step."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import STATUSES
from tests.conftest import Cast, Person
from tests.prescriptions.conftest import AMOXICILLIN, P, PrescriptionFactory, problem_field, rx_body
from tests.records.test_records import upload

TODAY = date.today()


def audit_entries(tx: Any, action: str, resource_id: Any = None) -> list[AuditEntry]:
    with tx() as s:
        query = select(AuditEntry).where(AuditEntry.action == action)
        if resource_id is not None:
            query = query.where(AuditEntry.resource_id == str(resource_id))
        return list(s.execute(query.order_by(AuditEntry.seq)).scalars())


def notifications(tx: Any, person: Person) -> list[Notification]:
    with tx() as s:
        query = (
            select(Notification).where(Notification.user_id == person.id).order_by(Notification.created_at)
        )
        return list(s.execute(query).scalars())


def prescription_count(tx: Any) -> int:
    with tx() as s:
        return int(s.execute(select(func.count()).select_from(Prescription)).scalar_one())


@pytest.fixture
def doctor(cast: Cast, sign_in: Any) -> dict[str, str]:
    """The cast doctor's headers (they care for the cast's patient)."""
    return sign_in(cast["doctor"])


# --- a valid prescription ----------------------------------------------------------------------------------


def test_a_doctor_prescribes_and_the_patient_is_told(
    client: TestClient, cast: Cast, doctor: dict[str, str], sign_in: Any, tx: Any
) -> None:
    response = client.post(P, json=rx_body(cast["patient"]), headers=doctor)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "active"
    assert (body["medication_name"], body["strength"], body["form"]) == ("Amoxicillin", "500 mg", "capsule")
    assert body["route"] == "oral"  # the drug's usual route
    assert body["dose_times"] == ["08:00", "14:00", "20:00"]
    assert body["frequency_label"] == "Three times a day"
    assert date.fromisoformat(body["valid_until"]) == date.fromisoformat(body["start_date"]) + timedelta(
        days=365
    )
    assert (body["fills_left"], body["refills_left"], body["next_step"]) == (2, 1, "first-fill")
    assert body["prescriber_name"] == cast["doctor"].full_name
    assert body["warnings_overridden"] == []

    mine = client.get(f"{P}/{body['id']}", headers=sign_in(cast["patient"]))
    assert mine.status_code == 200
    assert mine.json()["instructions"] == "Finish the course."
    [note] = notifications(tx, cast["patient"])
    assert note.link == f"/prescriptions/{body['id']}"
    assert "Amoxicillin" in note.title
    [entry] = audit_entries(tx, "prescription.create", body["id"])
    assert entry.actor_id == cast["doctor"].id
    assert entry.patient_id == cast["patient"].patient_id
    assert json.loads(entry.detail)["warnings"] == []
    assert audit_entries(tx, "prescription.read", body["id"])  # the patient's read


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"medication_code": "99999999"}, "medication_code"),
        ({"route": "telepathic"}, "route"),
        ({"frequency": "Q2D"}, "frequency"),
        ({"dose": "   "}, "dose"),
        ({"duration_days": 30, "days_supply": 40}, "days_supply"),
        ({"start_date": (TODAY - timedelta(days=3)).isoformat()}, "start_date"),
        ({"start_date": (TODAY + timedelta(days=120)).isoformat()}, "start_date"),
        ({"valid_until": (TODAY + timedelta(days=400)).isoformat()}, "valid_until"),
        (
            {"start_date": (TODAY + timedelta(days=5)).isoformat(), "valid_until": TODAY.isoformat()},
            "valid_until",
        ),
        ({"refills": 12}, "refills"),
        ({"quantity": 0}, "quantity"),
        ({"duration_days": 366}, "duration_days"),
        ({"status": "completed"}, "status"),
        ({"instructions": "x" * 1001}, "instructions"),
    ],
    ids=[
        "unknown-drug",
        "unknown-route",
        "unknown-frequency",
        "blank-dose",
        "supply-longer-than-treatment",
        "start-in-the-past",
        "start-too-far-ahead",
        "valid-over-a-year",
        "valid-before-start",
        "too-many-refills",
        "no-quantity",
        "treatment-too-long",
        "created-completed",
        "instructions-too-long",
    ],
)
def test_every_field_is_validated(
    client: TestClient, cast: Cast, doctor: dict[str, str], tx: Any, overrides: dict[str, Any], field: str
) -> None:
    response = client.post(P, json=rx_body(cast["patient"], **overrides), headers=doctor)
    assert response.status_code == 422, response.text
    assert problem_field(response.json()) == field
    assert prescription_count(tx) == 0


def test_yesterday_is_still_a_valid_start(client: TestClient, cast: Cast, doctor: dict[str, str]) -> None:
    """A doctor ahead of the patient's time zone may still write "today" as the patient's yesterday."""
    yesterday = (TODAY - timedelta(days=1)).isoformat()
    response = client.post(P, json=rx_body(cast["patient"], start_date=yesterday), headers=doctor)
    assert response.status_code == 201, response.text


# --- the allergy check -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allergies", "code", "warned"),
    [
        ("Penicillin, latex", AMOXICILLIN, True),
        ("penicillins", "562508", True),  # amoxicillin/clavulanate; plural
        ("Penicillin", "309114", True),  # cefalexin: beta-lactam cross-reactivity
        ("ibuprofen", "198014", True),  # naproxen: an allergy to one NSAID covers the class
        ("NSAIDs", "197806", True),  # ibuprofen by its class
        ("sulfa drugs", "198335", True),  # co-trimoxazole
        ("amoxicillin", "105134", True),  # phenoxymethylpenicillin: same class as the named drug
        ("peanuts; latex", AMOXICILLIN, False),
        ("Penicillin", "308460", False),  # azithromycin is no beta-lactam
        ("", AMOXICILLIN, False),
    ],
    ids=[
        "penicillin-amoxicillin",
        "plural-co-amoxiclav",
        "penicillin-cefalexin",
        "ibuprofen-naproxen",
        "nsaids-ibuprofen",
        "sulfa-cotrimoxazole",
        "amoxicillin-penicillin-v",
        "unrelated-allergies",
        "penicillin-azithromycin",
        "no-allergies",
    ],
)
def test_the_profile_allergies_are_checked(
    client: TestClient, make: Any, sign_in: Any, tx: Any, allergies: str, code: str, warned: bool
) -> None:
    patient = make.patient_user(allergies=allergies)
    doctor = make.staff("doctor")
    make.care(doctor, patient)
    response = client.post(P, json=rx_body(patient, medication_code=code), headers=sign_in(doctor))
    if not warned:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 409, response.text
    [warning] = response.json()["warnings"]
    assert warning["code"] == "allergy"
    assert "patient profile" in warning["message"]
    assert prescription_count(tx) == 0


def test_allergy_records_are_checked_and_a_correction_replaces_them(
    client: TestClient, cast: Cast, doctor: dict[str, str]
) -> None:
    record = upload(
        client, doctor, cast["patient"].patient_id, category="allergy", title="Allergy: amoxicillin"
    )
    assert record.status_code == 201, record.text
    response = client.post(P, json=rx_body(cast["patient"]), headers=doctor)
    assert response.status_code == 409
    [warning] = response.json()["warnings"]
    assert warning["code"] == "allergy"
    assert "allergy record" in warning["message"]
    assert "amoxicillin" in warning["message"]

    corrected = upload(
        client,
        doctor,
        cast["patient"].patient_id,
        category="allergy",
        title="Allergy: latex (amended after testing)",
        supersedes_id=record.json()["id"],
        content=b"%PDF-1.7\n% corrected\n%%EOF\n",
    )
    assert corrected.status_code == 201, corrected.text
    assert client.post(P, json=rx_body(cast["patient"]), headers=doctor).status_code == 201


# --- duplicate therapy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing_code", "existing_status", "warning"),
    [
        (AMOXICILLIN, "active", "duplicate-drug"),
        (AMOXICILLIN, "draft", "duplicate-drug"),
        (AMOXICILLIN, "on-hold", "duplicate-drug"),
        ("562508", "active", "duplicate-class"),  # amoxicillin/clavulanate: another penicillin
        (AMOXICILLIN, "completed", None),
        (AMOXICILLIN, "stopped", None),
        (AMOXICILLIN, "cancelled", None),
        ("308460", "active", None),  # azithromycin: another class
    ],
    ids=[
        "same-drug-active",
        "same-drug-draft",
        "same-drug-on-hold",
        "same-class",
        "completed-ignored",
        "stopped-ignored",
        "cancelled-ignored",
        "other-class",
    ],
)
def test_duplicate_therapy_is_flagged(
    client: TestClient,
    cast: Cast,
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    existing_code: str,
    existing_status: str,
    warning: str | None,
) -> None:
    existing = prescription_factory(
        cast["doctor"], cast["patient"], medication_code=existing_code, status=existing_status
    )
    response = client.post(P, json=rx_body(cast["patient"]), headers=doctor)
    if warning is None:
        assert response.status_code == 201, response.text
        return
    assert response.status_code == 409, response.text
    [found] = response.json()["warnings"]
    assert found["code"] == warning
    assert found["prescription_id"] == str(existing.id)


def test_same_class_across_drugs(
    client: TestClient, cast: Cast, doctor: dict[str, str], prescription_factory: PrescriptionFactory
) -> None:
    """Lisinopril already active: ramipril is a second ACE inhibitor."""
    prescription_factory(
        cast["doctor"],
        cast["patient"],
        medication_code="314076",
        medication_name="Lisinopril",
        frequency="QD",
    )
    response = client.post(
        P, json=rx_body(cast["patient"], medication_code="198189", frequency="QD"), headers=doctor
    )
    assert response.status_code == 409
    assert [w["code"] for w in response.json()["warnings"]] == ["duplicate-class"]
    assert "ACE inhibitor" in response.json()["warnings"][0]["message"]


def test_other_patients_prescriptions_are_no_duplicates(
    client: TestClient, cast: Cast, doctor: dict[str, str], prescription_factory: PrescriptionFactory
) -> None:
    prescription_factory(cast["doctor"], cast.other_patient)
    assert client.post(P, json=rx_body(cast["patient"]), headers=doctor).status_code == 201


# --- overriding warnings -----------------------------------------------------------------------------------


def test_overriding_needs_the_acknowledgement_and_a_reason(
    client: TestClient, make: Any, sign_in: Any, tx: Any, prescription_factory: PrescriptionFactory
) -> None:
    patient = make.patient_user(allergies="penicillin")
    doctor = make.staff("doctor")
    make.care(doctor, patient)
    prescription_factory(doctor, patient)  # and a duplicate
    headers = sign_in(doctor)

    refused = client.post(P, json=rx_body(patient), headers=headers)
    assert refused.status_code == 409
    assert sorted(w["code"] for w in refused.json()["warnings"]) == ["allergy", "duplicate-drug"]
    no_reason = client.post(P, json=rx_body(patient, acknowledge_warnings=True), headers=headers)
    assert no_reason.status_code == 422
    assert problem_field(no_reason.json()) == "override_reason"
    reason_only = client.post(
        P, json=rx_body(patient, override_reason="tolerated it in 2024"), headers=headers
    )
    assert reason_only.status_code == 409
    assert prescription_count(tx) == 1

    done = client.post(
        P,
        json=rx_body(
            patient, acknowledge_warnings=True, override_reason="Tolerated it in 2024 under observation"
        ),
        headers=headers,
    )
    assert done.status_code == 201, done.text
    body = done.json()
    assert body["status_reason"] == "Warnings overridden: Tolerated it in 2024 under observation"
    assert sorted(w["code"] for w in body["warnings_overridden"]) == ["allergy", "duplicate-drug"]
    [entry] = audit_entries(tx, "prescription.create", body["id"])
    detail = json.loads(entry.detail)
    assert detail["overridden"] is True
    assert sorted(detail["warnings"]) == ["allergy", "duplicate-drug"]


# --- drafts ------------------------------------------------------------------------------------------------


def test_a_draft_is_hidden_from_the_patient_until_issued(
    client: TestClient, cast: Cast, doctor: dict[str, str], sign_in: Any, tx: Any
) -> None:
    draft = client.post(P, json=rx_body(cast["patient"], status="draft"), headers=doctor)
    assert draft.status_code == 201, draft.text
    draft_id = draft.json()["id"]
    assert draft.json()["next_step"] == "none"
    patient = sign_in(cast["patient"])
    assert client.get(f"{P}/{draft_id}", headers=patient).status_code == 404
    assert client.get(P, headers=patient).json()["items"] == []
    assert notifications(tx, cast["patient"]) == []

    issued = client.post(f"{P}/{draft_id}/status", json={"status": "active"}, headers=doctor)
    assert issued.status_code == 200, issued.text
    assert issued.json()["status"] == "active"
    assert client.get(f"{P}/{draft_id}", headers=patient).status_code == 200
    [note] = notifications(tx, cast["patient"])
    assert note.title.startswith("New prescription")


def test_issuing_a_draft_checks_again(
    client: TestClient, cast: Cast, doctor: dict[str, str], prescription_factory: PrescriptionFactory
) -> None:
    """A duplicate prescribed after the draft was saved is caught when the draft is issued."""
    draft = prescription_factory(cast["doctor"], cast["patient"], status="draft")
    prescription_factory(cast["doctor"], cast["patient"], status="active")
    refused = client.post(f"{P}/{draft.id}/status", json={"status": "active"}, headers=doctor)
    assert refused.status_code == 409
    assert [w["code"] for w in refused.json()["warnings"]] == ["duplicate-drug"]
    done = client.post(
        f"{P}/{draft.id}/status",
        json={"status": "active", "acknowledge_warnings": True, "reason": "Second course, other ward"},
        headers=doctor,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status_reason"] == "Warnings overridden: Second course, other ward"


# --- the state machine -------------------------------------------------------------------------------------

# What a prescriber may do by hand: (from, to) -> allowed with nothing dispensed, allowed after dispensing.
# ``completed`` is reached only by the last dispense or a renewal; ``cancelled`` only before dispensing.
BY_HAND: dict[tuple[str, str], tuple[bool, bool]] = {
    ("draft", "active"): (True, True),
    ("draft", "cancelled"): (True, False),
    ("active", "on-hold"): (True, True),
    ("active", "stopped"): (True, True),
    ("active", "cancelled"): (True, False),
    ("on-hold", "active"): (True, True),
    ("on-hold", "stopped"): (True, True),
    ("on-hold", "cancelled"): (True, False),
}


@pytest.mark.parametrize("dispensed", [0, 1], ids=["nothing-dispensed", "dispensed"])
@pytest.mark.parametrize("current", STATUSES)
def test_the_status_state_machine(
    client: TestClient,
    cast: Cast,
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
    current: str,
    dispensed: int,
) -> None:
    """Every (from, to) pair: allowed ones change the status (and are audited), the others are 409 and
    change nothing. (Each pair gets its own prescription: issuing a draft then meets the earlier ones as
    duplicates, hence the acknowledgement.)"""
    problems = []
    for target in STATUSES:
        prescription = prescription_factory(
            cast["doctor"], cast["patient"], status=current, dispense_count=dispensed, refills=2
        )
        response = client.post(
            f"{P}/{prescription.id}/status",
            json={"status": target, "reason": "Clinical review", "acknowledge_warnings": True},
            headers=doctor,
        )
        allowed = BY_HAND.get((current, target), (False, False))[dispensed]
        with tx() as s:
            stored = s.get(Prescription, prescription.id)
            assert stored is not None
            now = stored.status
        expected = (200, target) if allowed else (409, current)
        if (response.status_code, now) != expected:
            problems.append(f"{current} -> {target}: {response.status_code} {now}, wanted {expected}")
        if allowed and not audit_entries(tx, "prescription.status", prescription.id):
            problems.append(f"{current} -> {target}: not audited")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("target", ["on-hold", "stopped", "cancelled"])
def test_stopping_holding_and_cancelling_need_a_reason(
    client: TestClient,
    cast: Cast,
    doctor: dict[str, str],
    prescription_factory: PrescriptionFactory,
    tx: Any,
    target: str,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"])
    response = client.post(
        f"{P}/{prescription.id}/status", json={"status": target, "reason": " "}, headers=doctor
    )
    assert response.status_code == 422
    assert problem_field(response.json()) == "reason"
    assert notifications(tx, cast["patient"]) == []

    done = client.post(
        f"{P}/{prescription.id}/status", json={"status": target, "reason": "Rash on day 3"}, headers=doctor
    )
    assert done.status_code == 200, done.text
    assert done.json()["status_reason"] == "Rash on day 3"
    [note] = notifications(tx, cast["patient"])
    assert note.link == f"/prescriptions/{prescription.id}"
    assert "Rash on day 3" in note.body
    [entry] = audit_entries(tx, "prescription.status", prescription.id)
    assert json.loads(entry.detail)["from"] == "active"
    assert json.loads(entry.detail)["to"] == target


def test_the_refusals_say_why(
    client: TestClient, cast: Cast, doctor: dict[str, str], prescription_factory: PrescriptionFactory
) -> None:
    dispensed = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    cancel = client.post(
        f"{P}/{dispensed.id}/status", json={"status": "cancelled", "reason": "x"}, headers=doctor
    )
    assert cancel.status_code == 409
    assert "stop it instead" in cancel.json()["detail"]
    complete = client.post(f"{P}/{dispensed.id}/status", json={"status": "completed"}, headers=doctor)
    assert "not by hand" in complete.json()["detail"]
    unknown = client.post(f"{P}/{dispensed.id}/status", json={"status": "paused"}, headers=doctor)
    assert unknown.status_code == 422
    assert problem_field(unknown.json()) == "status"


# --- lists -------------------------------------------------------------------------------------------------


def test_lists_page_and_filter(
    client: TestClient,
    cast: Cast,
    doctor: dict[str, str],
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
) -> None:
    made = [
        prescription_factory(cast["doctor"], cast["patient"], status=status)
        for status in ("active", "on-hold", "stopped", "draft", "completed")
    ]
    params = {"patient_id": str(cast["patient"].patient_id), "limit": 2}
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(P, params={**params, **({"cursor": cursor} if cursor else {})}, headers=doctor)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(str(p.id) for p in made)

    def statuses(headers: dict[str, str], **query: Any) -> list[str]:
        response = client.get(P, params=query, headers=headers)
        assert response.status_code == 200, response.text
        return sorted(item["status"] for item in response.json()["items"])

    patient_id = str(cast["patient"].patient_id)
    assert statuses(doctor, patient_id=patient_id, status="open") == ["active", "draft", "on-hold"]
    assert statuses(doctor, patient_id=patient_id, status="closed") == ["completed", "stopped"]
    assert statuses(doctor, patient_id=patient_id, status="stopped") == ["stopped"]
    patient = sign_in(cast["patient"])
    assert statuses(patient) == ["active", "completed", "on-hold", "stopped"]  # their own, without drafts
    assert statuses(patient, status="open") == ["active", "on-hold"]
    bad = client.get(P, params={"patient_id": patient_id, "status": "paused"}, headers=doctor)
    assert bad.status_code == 422
    missing = client.get(P, headers=doctor)
    assert missing.status_code == 422
    assert problem_field(missing.json()) == "patient_id"


# --- what the patient needs next ---------------------------------------------------------------------------

# status, refills, dispensed, valid until (days from today) -> next step, fills left, refills left
NEXT_STEPS = [
    ("active", 2, 0, 30, "first-fill", 3, 2),
    ("active", 2, 1, 30, "refill", 2, 2),
    ("active", 2, 2, 30, "refill", 1, 1),
    ("active", 2, 3, 30, "renewal", 0, 0),
    ("active", 0, 0, 30, "first-fill", 1, 0),
    ("active", 0, 1, 30, "renewal", 0, 0),
    ("active", 2, 1, -1, "renewal", 2, 2),  # fills left, but no longer valid: a new prescription
    ("on-hold", 2, 1, 30, "none", 2, 2),
    ("on-hold", 2, 3, 30, "renewal", 0, 0),
    ("completed", 2, 3, 30, "renewal", 0, 0),
    ("stopped", 2, 1, 30, "none", 2, 2),
    ("cancelled", 2, 0, 30, "none", 3, 2),
]


@pytest.mark.parametrize(
    ("status", "refills", "dispensed", "valid_days", "step", "fills", "refills_left"),
    NEXT_STEPS,
    ids=[f"{s}-{r}refills-{d}dispensed-valid{v}" for s, r, d, v, *_rest in NEXT_STEPS],
)
def test_refill_or_renewal_is_shown_to_the_patient(
    client: TestClient,
    cast: Cast,
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
    status: str,
    refills: int,
    dispensed: int,
    valid_days: int,
    step: str,
    fills: int,
    refills_left: int,
) -> None:
    valid_until = TODAY + timedelta(days=valid_days)
    prescription = prescription_factory(
        cast["doctor"],
        cast["patient"],
        status=status,
        refills=refills,
        dispense_count=dispensed,
        start_date=min(TODAY, valid_until) - timedelta(days=60),
        valid_until=valid_until,
    )
    body = client.get(f"{P}/{prescription.id}", headers=sign_in(cast["patient"])).json()
    assert (body["next_step"], body["fills_left"], body["refills_left"]) == (step, fills, refills_left)
