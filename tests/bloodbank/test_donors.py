"""Donor registration (by staff and self-service), the donor list and detail, eligibility through the
service (the rules plus deferrals: temporary ends, permanent never), deferrals added and lifted, and
availability (eligible but unavailable)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.donors import service
from caresync.bloodbank.donors.appointments import local_day
from caresync.bloodbank.models import BloodBankPolicy, Donor, DonorDeferral
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_donor

B = "/api/v1/bloodbank"
TODAY = local_day(utcnow())
NEW_DONOR = {
    "given_name": "Inês",
    "family_name": "Carvalho",
    "birth_date": "1988-02-11",
    "sex": "F",
    "blood_group": "A+",
    "weight_kg": 64.5,
    "phone": "+351 912 345 678",
    "email": "ines@example.org",
    "city": "Lisbon",
    "latitude": 38.7,
    "longitude": -9.1,
}


def audit_actions(user_id: Any) -> list[str]:
    """The audit actions by a user, oldest first."""
    with transaction(session_factory()) as s:
        rows = s.execute(
            select(AuditEntry.action).where(AuditEntry.actor_id == user_id).order_by(AuditEntry.seq)
        )
        return list(rows.scalars())


def test_staff_register_a_donor_with_a_unique_number(client: TestClient, cast: Any, sign_in: Any) -> None:
    staff = sign_in(cast["bloodbank_staff"])
    first = client.post(f"{B}/donors", json=NEW_DONOR, headers=staff)
    second = client.post(f"{B}/donors", json={**NEW_DONOR, "blood_group": None}, headers=staff)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["donor_number"].startswith("D")
    assert len(body["donor_number"]) == 10
    assert body["donor_number"] != second.json()["donor_number"]
    assert body["organisation_id"] == str(cast.org.id)
    assert body["has_account"] is False
    assert second.json()["blood_group"] is None  # unknown until typed
    assert "bloodbank.donor.register" in audit_actions(cast["bloodbank_staff"].id)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"sex": "X"}, "sex", id="sex"),
        pytest.param({"blood_group": "C+"}, "blood_group", id="group"),
        pytest.param({"weight_kg": 12}, "weight_kg", id="weight-too-low"),
        pytest.param({"birth_date": "2999-01-01"}, "birth_date", id="born-in-the-future"),
        pytest.param({"email": "not-an-address"}, "email", id="email"),
        pytest.param({"given_name": ""}, "given_name", id="empty-name"),
        pytest.param({"given_name": "\x00\x07"}, "given_name", id="control-characters-only"),
        pytest.param({"nickname": "Dee"}, "nickname", id="unknown-field"),
        pytest.param({"latitude": 38.7, "longitude": None}, "request", id="half-a-position"),
    ],
)
def test_registration_validation(
    client: TestClient, cast: Any, sign_in: Any, change: dict[str, Any], field: str
) -> None:
    response = client.post(
        f"{B}/donors", json={**NEW_DONOR, **change}, headers=sign_in(cast["bloodbank_staff"])
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_a_donor_completes_and_changes_their_own_profile(client: TestClient, cast: Any, sign_in: Any) -> None:
    donor = sign_in(cast["donor"])
    assert client.get(f"{B}/me/donor", headers=donor).status_code == 404
    own = {k: v for k, v in NEW_DONOR.items() if k != "blood_group"}
    created = client.post(f"{B}/me/donor", json=own, headers=donor)
    assert created.status_code == 201, created.text
    assert created.json()["has_account"] is True
    assert created.json()["blood_group"] is None
    assert client.post(f"{B}/me/donor", json=own, headers=donor).status_code == 409  # one per account
    assert (
        client.post(f"{B}/me/donor", json=NEW_DONOR, headers=donor).status_code == 422
    )  # no self-typed group
    changed = client.patch(f"{B}/me/donor", json={"phone": "+351 000", "available": False}, headers=donor)
    assert changed.status_code == 200
    assert changed.json()["available"] is False
    refused = client.patch(f"{B}/me/donor", json={"blood_group": "O-"}, headers=donor)
    assert refused.status_code == 422
    assert "blood_group" in refused.text
    mine = client.get(f"{B}/me/donor", headers=donor).json()
    assert mine["donor"]["phone"] == "+351 000"
    assert {e["donation_type"] for e in mine["eligibility"]} == {
        "whole_blood",
        "double_red_cells",
        "platelets",
        "plasma",
    }
    with transaction(session_factory()) as s:
        found = service.donor_for_user(s, cast["donor"].id)
        assert found is not None
        assert found.id.hex == created.json()["id"].replace("-", "")


def test_staff_list_search_filter_and_page(client: TestClient, cast: Any, sign_in: Any, make: Any) -> None:
    org = cast.org
    ours = [make_donor(organisation=org, family_name=f"Almeida{i}", blood_group="O-") for i in range(3)]
    deferred = make_donor(organisation=org, family_name="Almeida9", blood_group="O-")
    _defer(deferred, "permanent")
    other_org = make_donor(organisation=make.org(), family_name="Almeida7")
    staff = sign_in(cast["bloodbank_staff"])
    page = client.get(f"{B}/donors", params={"q": "almeida", "limit": 2}, headers=staff).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = client.get(
        f"{B}/donors", params={"q": "almeida", "limit": 2, "cursor": page["next_cursor"]}, headers=staff
    )
    names = [d["family_name"] for d in page["items"] + rest.json()["items"]]
    assert names == [
        "Almeida0",
        "Almeida1",
        "Almeida2",
        "Almeida9",
    ]  # another organisation's donor is not shown
    assert other_org.family_name not in rest.text
    by_number = client.get(f"{B}/donors", params={"q": ours[1].donor_number}, headers=staff).json()["items"]
    assert [d["id"] for d in by_number] == [str(ours[1].id)]
    eligible = client.get(f"{B}/donors", params={"q": "almeida", "eligible_now": True}, headers=staff).json()
    assert {d["family_name"] for d in eligible["items"]} == {"Almeida0", "Almeida1", "Almeida2"}
    assert client.get(f"{B}/donors", params={"blood_group": "AB+"}, headers=staff).json()["items"] == []
    nul = client.get(f"{B}/donors", params={"q": "alm\x00eida"}, headers=staff)  # no NUL reaches PostgreSQL
    assert nul.status_code == 200
    assert len(nul.json()["items"]) == 4


def test_a_walk_in_without_a_blood_bank_is_found_by_exact_donor_number(
    client: TestClient, cast: Any, sign_in: Any, make: Any
) -> None:
    """A donor who registered themselves and never booked has no blood bank: staff find them only by the
    exact donor number they bring, then may open them; another blood bank's donor stays hidden."""
    walk_in = make_donor(family_name="Walkin", donor_number="D000000123")
    elsewhere = make_donor(organisation=make.org(), family_name="Walkin", donor_number="D000000124")
    staff = sign_in(cast["bloodbank_staff"])

    def found(q: str) -> list[str]:
        return [d["id"] for d in client.get(f"{B}/donors", params={"q": q}, headers=staff).json()["items"]]

    assert found("walkin") == []  # no browsing of other people's donors
    assert found("d000000123") == [str(walk_in.id)]
    assert found("D00000012") == []  # a partial number is not enough
    assert found("D000000124") == []
    assert client.get(f"{B}/donors/{walk_in.id}", headers=staff).status_code == 200
    assert client.get(f"{B}/donors/{elsewhere.id}", headers=staff).status_code == 404


def test_detail_shows_history_deferrals_and_eligibility(client: TestClient, cast: Any, sign_in: Any) -> None:
    donor = make_donor(organisation=cast.org, donations=((TODAY - timedelta(days=20), "whole_blood"),))
    staff = sign_in(cast["bloodbank_staff"])
    body = client.get(f"{B}/donors/{donor.id}", headers=staff).json()
    verdicts = {e["donation_type"]: e for e in body["eligibility"]}
    assert verdicts["whole_blood"]["eligible"] is False
    assert (
        verdicts["whole_blood"]["next_eligible_date"] == (TODAY + timedelta(days=36)).isoformat()
    )  # 56-day US interval
    assert verdicts["platelets"]["eligible"] is True  # 7 days after whole blood
    assert len(body["donations"]) == 1
    assert body["donations"][0]["din_label"]
    assert "bloodbank.donor.read" in audit_actions(cast["bloodbank_staff"].id)


def _defer(donor: Donor, kind: str, ends_on: date | None = None, starts_on: date = TODAY) -> None:
    with transaction(session_factory()) as s:
        s.add(
            DonorDeferral(
                donor_id=donor.id, kind=kind, reason="Test deferral", starts_on=starts_on, ends_on=ends_on
            )
        )


def _status(donor: Donor, on: date, kind: str = "whole_blood") -> Any:
    with transaction(session_factory()) as s:
        return service.donor_status(s, s.get(Donor, donor.id), kind, on)


def test_temporary_deferral_ends_on_its_end_date() -> None:
    donor = make_donor()
    ends = TODAY + timedelta(days=10)
    _defer(donor, "temporary", ends)
    during = _status(donor, ends - timedelta(days=1))
    assert not during.eligible
    assert during.next_eligible_date == ends
    assert any("Deferred until" in r and "Test deferral" in r for r in during.reasons)
    assert _status(donor, ends).eligible


@pytest.mark.parametrize(
    ("height_cm", "eligible"),
    [(150.0, False), (155.0, True), (None, True)],
    ids=["short", "at-minimum", "unknown"],
)
def test_double_red_cells_check_a_mans_recorded_height(height_cm: float | None, eligible: bool) -> None:
    """The donor's height reaches the rules: 155 cm is the minimum for men (unknown is not judged)."""
    donor = make_donor(sex="M", weight_kg=80.0, height_cm=height_cm)
    verdict = _status(donor, TODAY, "double_red_cells")
    assert verdict.eligible is eligible
    assert any("Height" in reason for reason in verdict.reasons) is not eligible


def test_permanent_deferral_never_ends() -> None:
    donor = make_donor()
    _defer(donor, "permanent")
    for on in (TODAY, TODAY + timedelta(days=3650)):
        verdict = _status(donor, on)
        assert not verdict.eligible
        assert verdict.next_eligible_date is None
        assert verdict.reasons == ["Permanently deferred: Test deferral"]


def test_deferral_and_interval_give_the_later_date(make: Any) -> None:
    org = make.org(kind="blood_bank")
    donor = make_donor(organisation=org, donations=((TODAY - timedelta(days=50), "whole_blood"),))
    _defer(donor, "temporary", TODAY + timedelta(days=3))
    verdict = _status(donor, TODAY)
    assert verdict.next_eligible_date == TODAY + timedelta(days=6)  # the interval ends after the deferral
    assert len(verdict.reasons) == 2


def test_the_home_organisations_rule_profile_applies(make: Any) -> None:
    org = make.org(kind="blood_bank")
    donor = make_donor(organisation=org, donations=((TODAY - timedelta(days=60), "whole_blood"),))
    assert _status(donor, TODAY).eligible  # US: 56 days
    with transaction(session_factory()) as s:
        s.add(BloodBankPolicy(organisation_id=org.id, rule_profile="UK"))
    uk = _status(donor, TODAY)
    assert not uk.eligible
    assert uk.next_eligible_date == TODAY + timedelta(days=52)


def test_staff_defer_and_lift_through_the_api(client: TestClient, cast: Any, sign_in: Any) -> None:
    donor = make_donor(organisation=cast.org)
    staff = sign_in(cast["bloodbank_staff"])
    url = f"{B}/donors/{donor.id}/deferrals"
    assert (
        client.post(url, json={"kind": "temporary", "reason": "Recent tattoo"}, headers=staff).status_code
        == 422
    )
    assert (
        client.post(
            url, json={"kind": "permanent", "reason": "x", "ends_on": None}, headers=staff
        ).status_code
        == 422
    )
    past = client.post(
        url,
        json={"kind": "temporary", "reason": "Recent tattoo", "ends_on": TODAY.isoformat()},
        headers=staff,
    )
    assert past.status_code == 422
    assert "after today" in past.json()["detail"]
    ends = (TODAY + timedelta(days=90)).isoformat()
    added = client.post(
        url, json={"kind": "temporary", "reason": "Recent tattoo", "ends_on": ends}, headers=staff
    )
    assert added.status_code == 201, added.text
    detail = client.get(f"{B}/donors/{donor.id}", headers=staff).json()
    whole = next(e for e in detail["eligibility"] if e["donation_type"] == "whole_blood")
    assert whole["eligible"] is False
    assert whole["next_eligible_date"] == ends
    lifted = client.post(f"{url}/{added.json()['id']}/lift", headers=staff)
    assert lifted.status_code == 200
    assert lifted.json()["lifted_at"]
    assert client.post(f"{url}/{added.json()['id']}/lift", headers=staff).status_code == 409
    assert _status(donor, TODAY).eligible
    actions = audit_actions(cast["bloodbank_staff"].id)
    assert "bloodbank.deferral.add" in actions
    assert "bloodbank.deferral.lift" in actions


@pytest.mark.parametrize(
    ("available", "until", "on", "expected"),
    [
        pytest.param(True, None, TODAY, True, id="available"),
        pytest.param(False, None, TODAY, False, id="switched-off"),
        pytest.param(True, TODAY + timedelta(days=5), TODAY + timedelta(days=4), False, id="paused"),
        pytest.param(True, TODAY + timedelta(days=5), TODAY + timedelta(days=5), True, id="pause-ended"),
    ],
)
def test_availability(available: bool, until: date | None, on: date, expected: bool) -> None:
    donor = make_donor(available=available, unavailable_until=until)
    assert service.is_available(donor, on) is expected
    assert _status(donor, on).eligible  # eligible whatever their availability


def test_staff_toggle_availability_and_type_the_group(client: TestClient, cast: Any, sign_in: Any) -> None:
    donor = make_donor(organisation=cast.org, blood_group=None)
    staff = sign_in(cast["bloodbank_staff"])
    until = (TODAY + timedelta(days=14)).isoformat()
    changed = client.patch(
        f"{B}/donors/{donor.id}", json={"unavailable_until": until, "blood_group": "B-"}, headers=staff
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["blood_group"] == "B-"
    assert changed.json()["unavailable_until"] == until
    assert client.get(f"{B}/donors/{donor.id}", headers=staff).json()["available_now"] is False
    cleared = client.patch(f"{B}/donors/{donor.id}", json={"blood_group": None}, headers=staff)
    assert cleared.status_code == 422


def test_another_organisations_donor_is_not_found_and_audited(
    client: TestClient, cast: Any, sign_in: Any, make: Any
) -> None:
    stranger = make_donor(organisation=make.org())
    staff = sign_in(cast["bloodbank_staff"])
    assert client.get(f"{B}/donors/{stranger.id}", headers=staff).status_code == 404
    assert client.patch(f"{B}/donors/{stranger.id}", json={"phone": "1"}, headers=staff).status_code == 404
    with transaction(session_factory()) as s:
        denied = (
            s.execute(
                select(AuditEntry).where(
                    AuditEntry.actor_id == cast["bloodbank_staff"].id, AuditEntry.outcome == "denied"
                )
            )
            .scalars()
            .all()
        )
        assert {e.resource_id for e in denied} == {str(stranger.id)}
