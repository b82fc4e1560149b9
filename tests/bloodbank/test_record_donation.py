"""Recording a donation: a passing screening makes a completed donation with a new DIN and its quarantined
units (expiry from the component's shelf life) and completes the appointment; a failing one makes a
deferred donation and a temporary deferral with the reason and no unit; a deferred donor is refused; and
nothing is half-written when making the units fails."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.bloodbank import rules
from caresync.bloodbank.donors import din
from caresync.bloodbank.donors.appointments import local_day
from caresync.bloodbank.inventory import service as inventory
from caresync.bloodbank.models import BloodUnit, Donation, DonationAppointment, Donor, DonorDeferral
from caresync.core.errors import Conflict
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_donor

B = "/api/v1/bloodbank"
TODAY = local_day(utcnow())
SCREENING = {
    "weight_kg": 70.0,
    "hemoglobin_g_dl": 13.4,
    "temperature_c": 36.6,
    "systolic_mmhg": 120,
    "diastolic_mmhg": 78,
    "pulse_bpm": 72,
}


def count(model: Any, *where: Any) -> int:
    with transaction(session_factory()) as s:
        return int(s.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def appointment(org: Any, donor: Donor, hours_ago: float = 0.5) -> DonationAppointment:
    with transaction(session_factory()) as s:
        row = DonationAppointment(
            donor_id=donor.id,
            organisation_id=org.id,
            donation_type="whole_blood",
            starts_at=utcnow() - timedelta(hours=hours_ago),
            chair=1,
        )
        s.add(row)
    return row


def test_a_completed_donation_makes_units_with_a_din(client: TestClient, cast: Any, sign_in: Any) -> None:
    donor = make_donor(organisation=cast.org, blood_group="A-", weight_kg=66.0)
    booked = appointment(cast.org, donor)
    body = {
        **SCREENING,
        "donor_id": str(donor.id),
        "appointment_id": str(booked.id),
        "volume_ml": 470,
        "storage_location": "Quarantine fridge 2",
    }
    response = client.post(f"{B}/donations", json=body, headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 201, response.text
    result = response.json()
    donation = result["donation"]
    assert donation["outcome"] == "completed"
    assert donation["donation_type"] == "whole_blood"
    number = donation["din"]
    assert number.startswith(din.facility_number(cast.org.id) + f"{utcnow().year % 100:02d}")
    assert len(number) == 13
    assert donation["din_label"].endswith(din.check_character(number))
    assert result["deferral"] is None
    collected = donation["collected_at"]
    units = result["units"]
    assert sorted(u["component"] for u in units) == ["plasma", "red_cells"]
    with transaction(session_factory()) as s:
        for unit in s.execute(select(BloodUnit).where(BloodUnit.din == number)).scalars():
            assert unit.status == "quarantined"
            assert unit.blood_group == "A-"
            assert unit.storage_location == "Quarantine fridge 2"
            assert unit.expires_at - unit.collected_at == rules.shelf_life(unit.component, **unit.details)
            assert unit.collected_at.isoformat().startswith(collected[:19])
        assert s.get(DonationAppointment, booked.id).status == "completed"
        assert s.get(Donor, donor.id).weight_kg == 70.0  # the measured weight updates the profile
    detail = client.get(f"{B}/donors/{donor.id}", headers=sign_in(cast["bloodbank_staff"])).json()
    whole = next(e for e in detail["eligibility"] if e["donation_type"] == "whole_blood")
    assert whole["next_eligible_date"] == (TODAY + timedelta(days=56)).isoformat()


def test_consecutive_donations_get_consecutive_dins(client: TestClient, cast: Any, sign_in: Any) -> None:
    staff = sign_in(cast["bloodbank_staff"])
    numbers = []
    for _ in range(2):
        donor = make_donor(organisation=cast.org)
        body = {**SCREENING, "donor_id": str(donor.id), "donation_type": "plasma"}
        numbers.append(client.post(f"{B}/donations", json=body, headers=staff).json()["donation"]["din"])
    assert int(numbers[1][7:]) == int(numbers[0][7:]) + 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param({"hemoglobin_g_dl": 12.4}, "Haemoglobin 12.4", id="low-haemoglobin-woman"),
        pytest.param({"temperature_c": 37.9}, "Temperature 37.9", id="fever"),
        pytest.param({"systolic_mmhg": 185}, "Systolic blood pressure 185", id="high-blood-pressure"),
        pytest.param({"pulse_bpm": 110}, "Pulse 110", id="fast-pulse"),
        pytest.param({"weight_kg": 48.0}, "Weight 48", id="underweight"),
    ],
)
def test_a_failed_screening_defers_without_units(
    client: TestClient, cast: Any, sign_in: Any, change: dict[str, Any], reason: str
) -> None:
    donor = make_donor(organisation=cast.org, sex="F")
    booked = appointment(cast.org, donor)
    body = {**SCREENING, **change, "donor_id": str(donor.id), "appointment_id": str(booked.id)}
    response = client.post(f"{B}/donations", json=body, headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["donation"]["outcome"] == "deferred"
    assert result["donation"]["din"] is None
    assert result["units"] == []
    assert any(reason in r for r in result["reasons"])
    deferral = result["deferral"]
    assert deferral["kind"] == "temporary"
    assert reason in deferral["reason"]
    assert deferral["ends_on"] == (TODAY + timedelta(days=1)).isoformat()  # deferred for the day
    assert count(BloodUnit, BloodUnit.donation_id == uuid.UUID(result["donation"]["id"])) == 0
    with transaction(session_factory()) as s:
        assert s.get(DonationAppointment, booked.id).status == "completed"


def test_too_soon_defers_until_the_interval_ends(client: TestClient, cast: Any, sign_in: Any) -> None:
    gave = TODAY - timedelta(days=40)
    donor = make_donor(organisation=cast.org, donations=((gave, "whole_blood"),))
    body = {**SCREENING, "donor_id": str(donor.id), "donation_type": "whole_blood"}
    result = client.post(f"{B}/donations", json=body, headers=sign_in(cast["bloodbank_staff"])).json()
    assert result["donation"]["outcome"] == "deferred"
    assert result["deferral"]["ends_on"] == (gave + timedelta(days=56)).isoformat()


def test_a_deferred_donor_or_an_untyped_group_is_refused(client: TestClient, cast: Any, sign_in: Any) -> None:
    staff = sign_in(cast["bloodbank_staff"])
    deferred = make_donor(organisation=cast.org)
    with transaction(session_factory()) as s:
        s.add(
            DonorDeferral(donor_id=deferred.id, kind="permanent", reason="Positive HIV test", starts_on=TODAY)
        )
    refused = client.post(
        f"{B}/donations",
        json={**SCREENING, "donor_id": str(deferred.id), "donation_type": "plasma"},
        headers=staff,
    )
    assert refused.status_code == 409
    assert "Permanently deferred" in refused.json()["detail"]
    untyped = make_donor(organisation=cast.org, blood_group=None)
    body = {**SCREENING, "donor_id": str(untyped.id), "donation_type": "plasma"}
    missing = client.post(f"{B}/donations", json=body, headers=staff)
    assert missing.status_code == 422
    assert missing.json()["field"] == "blood_group"
    typed = client.post(f"{B}/donations", json={**body, "blood_group": "B+"}, headers=staff)
    assert typed.status_code == 201
    assert {u["blood_group"] for u in typed.json()["units"]} == {"B+"}
    mismatch = make_donor(organisation=cast.org, blood_group="O+")
    wrong = client.post(
        f"{B}/donations", json={**body, "donor_id": str(mismatch.id), "blood_group": "A+"}, headers=staff
    )
    assert wrong.status_code == 422
    assert "differs" in wrong.json()["detail"]
    assert count(Donation, Donation.donor_id.in_([deferred.id, mismatch.id])) == 0


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"diastolic_mmhg": 130}, id="diastolic-above-systolic"),
        pytest.param({"hemoglobin_g_dl": 40}, id="impossible-haemoglobin"),
        pytest.param({"donation_type": "blood"}, id="unknown-type"),
    ],
)
def test_screening_validation(client: TestClient, cast: Any, sign_in: Any, change: dict[str, Any]) -> None:
    donor = make_donor(organisation=cast.org)
    body = {**SCREENING, "donor_id": str(donor.id), "donation_type": "whole_blood", **change}
    assert (
        client.post(f"{B}/donations", json=body, headers=sign_in(cast["bloodbank_staff"])).status_code == 422
    )


def test_nothing_is_half_written_when_making_units_fails(
    client: TestClient, cast: Any, sign_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    donor = make_donor(organisation=cast.org, weight_kg=66.0)
    booked = appointment(cast.org, donor)

    def fail(*_args: Any, **_kwargs: Any) -> list[BloodUnit]:
        raise Conflict("The label printer is offline.")

    monkeypatch.setattr(inventory, "receive_donation", fail)
    body = {**SCREENING, "donor_id": str(donor.id), "appointment_id": str(booked.id)}
    response = client.post(f"{B}/donations", json=body, headers=sign_in(cast["bloodbank_staff"]))
    assert response.status_code == 409
    assert count(Donation, Donation.donor_id == donor.id) == 0
    with transaction(session_factory()) as s:
        assert s.get(DonationAppointment, booked.id).status == "booked"
        assert s.get(Donor, donor.id).weight_kg == 66.0


def test_another_sites_appointment_is_not_found(
    client: TestClient, cast: Any, sign_in: Any, make: Any
) -> None:
    donor = make_donor(organisation=cast.org)
    elsewhere = appointment(make.org(kind="blood_bank"), donor)
    body = {**SCREENING, "donor_id": str(donor.id), "appointment_id": str(elsewhere.id)}
    assert (
        client.post(f"{B}/donations", json=body, headers=sign_in(cast["bloodbank_staff"])).status_code == 404
    )
