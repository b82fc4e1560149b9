"""The prescription pages, through the browser's forms: the doctor prescribes (formulary search fragment,
warnings shown with "Prescribe anyway" and the values kept, errors per field), changes a status with a
reason; the patient sees their medications (active first), the QR code and the refill or renewal they
need, asks and withdraws; the doctor decides requests in the inbox. Roles that may not are refused."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.prescriptions.models import Prescription, PrescriptionRequest
from tests.conftest import Cast, web_login
from tests.prescriptions.conftest import AMOXICILLIN, PrescriptionFactory


def _form(csrf: str, **fields: str) -> dict[str, str]:
    values = {
        "csrf_token": csrf,
        "q": "amox",
        "medication_code": AMOXICILLIN,
        "dose": "2 capsules",
        "route": "",
        "frequency": "BID",
        "duration_days": "10",
        "quantity": "40",
        "days_supply": "10",
        "refills": "1",
        "instructions": "After meals.",
        "reminders_enabled": "on",
        "save_as": "active",
    }
    values.update(fields)
    return values


def test_the_doctor_prescribes_through_the_form(
    client: TestClient, cast: Cast, tx: Any, prescription_factory: PrescriptionFactory
) -> None:
    patient_id = cast["patient"].patient_id
    csrf = web_login(client, cast["doctor"])
    listing = client.get(f"/patients/{patient_id}/prescriptions")
    assert listing.status_code == 200
    assert 'data-testid="new-prescription"' in listing.text
    assert "No prescriptions" in listing.text
    form = client.get(f"/patients/{patient_id}/prescriptions/new")
    assert form.status_code == 200
    assert 'hx-get="/prescriptions/formulary"' in form.text
    fragment = client.get("/prescriptions/formulary", params={"q": "amox"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert f'value="{AMOXICILLIN}"' in fragment.text
    assert "<html" not in fragment.text
    nothing = client.get("/prescriptions/formulary", params={"q": "zzzz"})
    assert 'data-testid="formulary-empty"' in nothing.text

    done = client.post(f"/patients/{patient_id}/prescriptions/new", data=_form(csrf), follow_redirects=False)
    assert done.status_code == 303, done.text
    with tx() as s:
        prescription = s.execute(select(Prescription)).scalar_one()
    assert done.headers["location"] == f"/prescriptions/{prescription.id}?saved=1"
    assert (prescription.dose, prescription.frequency, prescription.quantity) == ("2 capsules", "BID", 40)
    assert prescription.reminders_enabled is True
    page = client.get(done.headers["location"])
    assert "Amoxicillin 500 mg capsule" in page.text
    assert "Prescription issued" in page.text
    assert 'data-testid="to-on-hold"' in page.text  # the prescriber's status buttons
    assert "Amoxicillin" in client.get(f"/patients/{patient_id}/prescriptions").text


def test_the_form_shows_the_warnings_and_keeps_the_values(client: TestClient, make: Any, tx: Any) -> None:
    patient = make.patient_user(allergies="Penicillin")
    doctor = make.staff("doctor")
    make.care(doctor, patient)
    csrf = web_login(client, doctor)
    url = f"/patients/{patient.patient_id}/prescriptions/new"
    warned = client.post(url, data=_form(csrf))
    assert warned.status_code == 409
    assert 'data-testid="warnings"' in warned.text
    assert 'data-warning="allergy"' in warned.text
    assert "Prescribe anyway" in warned.text
    assert 'value="2 capsules"' in warned.text
    assert f'value="{AMOXICILLIN}" required checked' in warned.text
    no_reason = client.post(url, data=_form(csrf, acknowledge_warnings="on"))
    assert no_reason.status_code == 422
    assert "Say why you prescribe despite the warnings." in no_reason.text
    done = client.post(
        url,
        data=_form(csrf, acknowledge_warnings="on", override_reason="Desensitised in 2025"),
        follow_redirects=False,
    )
    assert done.status_code == 303
    with tx() as s:
        assert (
            s.execute(select(Prescription.status_reason)).scalar_one()
            == "Warnings overridden: Desensitised in 2025"
        )


def test_the_form_names_the_wrong_field(client: TestClient, cast: Cast, tx: Any) -> None:
    csrf = web_login(client, cast["doctor"])
    url = f"/patients/{cast['patient'].patient_id}/prescriptions/new"
    not_a_number = client.post(url, data=_form(csrf, duration_days="ten"))
    assert not_a_number.status_code == 422
    assert 'id="e-duration_days"' in not_a_number.text
    no_drug = client.post(url, data=_form(csrf, medication_code=""))
    assert no_drug.status_code == 422
    assert "Choose a medication from the formulary." in no_drug.text
    draft = client.post(url, data=_form(csrf, save_as="draft"), follow_redirects=False)
    assert draft.status_code == 303
    with tx() as s:
        assert s.execute(select(Prescription.status)).scalar_one() == "draft"


def test_a_nurse_reads_but_cannot_prescribe(
    client: TestClient, cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"])
    web_login(client, cast["nurse"])
    listing = client.get(f"/patients/{cast['patient'].patient_id}/prescriptions")
    assert listing.status_code == 200
    assert "Amoxicillin" in listing.text
    assert 'data-testid="new-prescription"' not in listing.text
    assert client.get(f"/patients/{cast['patient'].patient_id}/prescriptions/new").status_code == 403
    detail = client.get(f"/prescriptions/{prescription.id}")
    assert detail.status_code == 200
    assert 'data-testid="status-actions"' not in detail.text
    assert client.get(f"/patients/{cast.other_patient.id}/prescriptions").status_code == 404


def test_the_prescriber_changes_the_status_with_a_reason(
    client: TestClient, cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"])
    csrf = web_login(client, cast["doctor"])
    url = f"/prescriptions/{prescription.id}/status"
    refused = client.post(url, data={"csrf_token": csrf, "status": "on-hold", "reason": ""})
    assert refused.status_code == 422
    assert "Give the reason" in refused.text
    done = client.post(
        url,
        data={"csrf_token": csrf, "status": "on-hold", "reason": "Await kidney results"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert 'data-testid="status">on-hold' in page.text
    assert "Await kidney results" in page.text
    assert 'data-testid="to-active"' in page.text  # reactivate
    completed = client.post(url, data={"csrf_token": csrf, "status": "completed"})
    assert completed.status_code == 409
    assert "not by hand" in completed.text


def test_the_patient_sees_the_qr_code_and_asks_for_a_refill(
    client: TestClient, cast: Cast, tx: Any, prescription_factory: PrescriptionFactory
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"], refills=2, dispense_count=1)
    csrf = web_login(client, cast["patient"])
    page = client.get(f"/prescriptions/{prescription.id}")
    assert page.status_code == 200
    assert f'<img src="/prescriptions/{prescription.id}/qr.png" alt="Prescription QR code"' in page.text
    assert f'href="/prescriptions/{prescription.id}/print.pdf"' in page.text
    assert 'data-step="refill"' in page.text
    assert "You need a refill" in page.text
    assert 'data-testid="status-actions"' not in page.text
    asked = client.post(
        f"/prescriptions/{prescription.id}/requests",
        data={"csrf_token": csrf, "kind": "refill", "note": "Running low"},
        follow_redirects=False,
    )
    assert asked.status_code == 303
    page = client.get(asked.headers["location"])
    assert 'data-testid="pending-request"' in page.text
    again = client.post(
        f"/prescriptions/{prescription.id}/requests", data={"csrf_token": csrf, "kind": "refill"}
    )
    assert again.status_code == 409
    assert 'data-testid="request-error"' in again.text
    with tx() as s:
        request = s.execute(select(PrescriptionRequest)).scalar_one()
    withdrawn = client.post(
        f"/prescriptions/requests/{request.id}/withdraw", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert withdrawn.status_code == 303
    assert "Request withdrawn" in client.get(withdrawn.headers["location"]).text
    assert (
        client.get(
            f"/prescriptions/{prescription_factory(cast['doctor'], cast.other_patient).id}"
        ).status_code
        == 404
    )


def test_the_patient_is_told_to_ask_for_a_renewal(
    client: TestClient, cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    used_up = prescription_factory(cast["doctor"], cast["patient"], refills=1, dispense_count=2)
    on_hold = prescription_factory(cast["doctor"], cast["patient"], status="on-hold")
    web_login(client, cast["patient"])
    page = client.get(f"/prescriptions/{used_up.id}")
    assert 'data-step="renewal"' in page.text
    assert 'data-testid="request-renewal"' in page.text
    held = client.get(f"/prescriptions/{on_hold.id}")
    assert 'data-testid="qr-card"' not in held.text  # only an active prescription can be dispensed


def test_my_medications_lists_active_first(
    client: TestClient, cast: Cast, make: Any, prescription_factory: PrescriptionFactory
) -> None:
    held = prescription_factory(cast["doctor"], cast["patient"], status="on-hold", medication_name="Ramipril")
    active = prescription_factory(
        cast["doctor"], cast["patient"], medication_name="Amlodipine", dispense_count=1
    )
    done = prescription_factory(
        cast["doctor"], cast["patient"], status="completed", medication_name="Fosfomycin"
    )
    draft = prescription_factory(
        cast["doctor"], cast["patient"], status="draft", medication_name="Sertraline"
    )
    web_login(client, cast["patient"])
    page = client.get("/me/medications")
    assert page.status_code == 200
    text = page.text
    current = text[text.index('data-testid="current"') : text.index('id="past"')]
    assert current.index(str(active.id)) < current.index(str(held.id))
    assert str(done.id) in text[text.index('id="past"') :]
    assert str(draft.id) not in text
    assert 'href="/me/medications/schedule"' in text
    assert 'href="/me/medications/adherence"' in text
    assert "You need a refill" in current

    newcomer = make.patient_user()
    web_login(client, newcomer)
    assert "No current medications" in client.get("/me/medications").text


def test_the_doctor_decides_in_the_inbox(
    client: TestClient, cast: Cast, tx: Any, prescription_factory: PrescriptionFactory
) -> None:
    refill = prescription_factory(cast["doctor"], cast["patient"], dispense_count=1)
    renewal = prescription_factory(cast["doctor"], cast["patient"], refills=0, dispense_count=1)
    patient_csrf = web_login(client, cast["patient"])
    for prescription, kind in ((refill, "refill"), (renewal, "renewal")):
        asked = client.post(
            f"/prescriptions/{prescription.id}/requests",
            data={"csrf_token": patient_csrf, "kind": kind},
            follow_redirects=False,
        )
        assert asked.status_code == 303
    assert (
        client.get("/prescriptions/requests", follow_redirects=False).headers["location"] == "/me/medications"
    )

    csrf = web_login(client, cast["doctor"])
    inbox = client.get("/prescriptions/requests")
    assert inbox.status_code == 200
    assert inbox.text.count('data-testid="request"') == 2
    with tx() as s:
        requests = {r.kind: r.id for r in s.execute(select(PrescriptionRequest)).scalars()}
    declined = client.post(
        f"/prescriptions/requests/{requests['refill']}/decision",
        data={"csrf_token": csrf, "decision": "decline"},
    )
    assert declined.status_code == 422
    assert 'data-testid="decision-error"' in declined.text
    approved = client.post(
        f"/prescriptions/requests/{requests['renewal']}/decision",
        data={"csrf_token": csrf, "decision": "approve", "note": ""},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert approved.headers["location"] == "/prescriptions/requests?decided=approved"
    after = client.get(approved.headers["location"])
    assert after.text.count('data-testid="request"') == 1
    assert "new prescription" in client.get("/prescriptions/requests?status=approved").text
    with tx() as s:
        assert s.execute(select(Prescription).where(Prescription.renewal_of_id == renewal.id)).scalar_one()

    web_login(client, cast["nurse"])
    assert client.get("/prescriptions/requests").status_code == 403


def test_issuing_a_draft_with_warnings_asks_for_the_acknowledgement(
    client: TestClient, cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    draft = prescription_factory(cast["doctor"], cast["patient"], status="draft")
    prescription_factory(cast["doctor"], cast["patient"])  # the same drug, already active
    csrf = web_login(client, cast["doctor"])
    url = f"/prescriptions/{draft.id}/status"
    warned = client.post(url, data={"csrf_token": csrf, "status": "active"})
    assert warned.status_code == 409
    assert 'data-warning="duplicate-drug"' in warned.text
    assert 'data-testid="override"' in warned.text
    no_reason = client.post(url, data={"csrf_token": csrf, "status": "active", "acknowledge_warnings": "on"})
    assert no_reason.status_code == 422
    assert 'data-testid="reason-error"' in no_reason.text
    assert 'data-warning="duplicate-drug"' in no_reason.text
    issued = client.post(
        url,
        data={
            "csrf_token": csrf,
            "status": "active",
            "acknowledge_warnings": "on",
            "reason": "Second supply",
        },
        follow_redirects=False,
    )
    assert issued.status_code == 303
    assert 'data-testid="status">active' in client.get(issued.headers["location"]).text
