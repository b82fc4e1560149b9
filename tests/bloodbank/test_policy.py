"""The per-organisation blood bank settings: defaults until saved, updates by the organisation's
administrator (each field range-checked with a 422 naming it), the audit entry, the API and the page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.models import BloodBankPolicy
from caresync.bloodbank.policy import service
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import ValidationFailed
from tests.conftest import Cast, web_login

URL = "/api/v1/bloodbank/policy"
VALID: dict[str, Any] = {
    "rule_profile": "UK",
    "low_stock_days": 4.5,
    "critical_stock_days": 1.5,
    "stock_thresholds": {"O-:red_cells": 6, "AB+:plasma": 2},
    "baseline_daily_use": {"O+:red_cells": 3.5},
    "expiry_warning_days": 5,
    "callout_wave_size": 30,
    "callout_cooldown_days": 14,
    "donation_chairs": 6,
    "return_window_minutes": 45,
}


def saved_row(tx: Any, cast: Cast) -> BloodBankPolicy | None:
    with tx() as s:
        row = s.get(BloodBankPolicy, cast.org.id)
        if row is not None:
            s.expunge(row)
        return row


def test_defaults_until_saved(tx: Any, cast: Cast) -> None:
    with tx() as s:
        policy = service.get_policy(s, cast.org.id)
        assert policy.organisation_id == cast.org.id
        assert not service.is_saved(policy)
        assert policy not in s  # never written by a read
        assert {name: getattr(policy, name) for name in service.SETTINGS} == {
            "rule_profile": "US",
            "low_stock_days": 3.0,
            "critical_stock_days": 1.0,
            "stock_thresholds": {},
            "baseline_daily_use": {},
            "expiry_warning_days": 3,
            "callout_wave_size": 20,
            "callout_cooldown_days": 7,
            "donation_chairs": 4,
            "return_window_minutes": 30,
        }
        policy.stock_thresholds["O-:red_cells"] = 9  # an unsaved row's tables are its own
        assert service.get_policy(s, cast.org.id).stock_thresholds == {}
    assert saved_row(tx, cast) is None


@pytest.mark.parametrize("role", ["admin", "bloodbank_staff"])
def test_api_reads_the_defaults(client: TestClient, sign_in: Any, cast: Cast, role: str) -> None:
    response = client.get(URL, headers=sign_in(cast[role]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["saved"] is False
    assert body["updated_at"] is None
    assert body["organisation_id"] == str(cast.org.id)
    assert (body["rule_profile"], body["low_stock_days"], body["donation_chairs"]) == ("US", 3.0, 4)
    assert body["rule_profile_title"].startswith("United States")


def test_admin_replaces_the_settings(client: TestClient, sign_in: Any, cast: Cast, tx: Any) -> None:
    headers = sign_in(cast["admin"])
    response = client.put(URL, headers=headers, json=VALID)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["saved"] is True
    assert body["updated_at"]
    assert body["stock_thresholds"] == {"AB+:plasma": 2.0, "O-:red_cells": 6.0}
    assert client.get(URL, headers=sign_in(cast["bloodbank_staff"])).json() == body
    row = saved_row(tx, cast)
    assert row is not None
    assert (row.rule_profile, row.low_stock_days, row.critical_stock_days) == ("UK", 4.5, 1.5)
    assert (row.expiry_warning_days, row.callout_wave_size, row.callout_cooldown_days) == (5, 30, 14)
    assert (row.donation_chairs, row.return_window_minutes) == (6, 45)
    assert row.baseline_daily_use == {"O+:red_cells": 3.5}
    assert service.threshold_days(row, "O-", "red_cells") == 6.0
    assert service.threshold_days(row, "A+", "red_cells") == 4.5
    with tx() as s:
        entry = (
            s.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "bloodbank.policy_update")
                .order_by(AuditEntry.seq.desc())
            )
            .scalars()
            .first()
        )
        assert entry is not None
        assert (entry.actor_id, entry.outcome, entry.resource_id) == (
            cast["admin"].id,
            "success",
            str(cast.org.id),
        )
        assert json.loads(entry.detail)["rule_profile"] == {"from": "US", "to": "UK"}
        assert json.loads(entry.detail)["donation_chairs"] == {"from": 4, "to": 6}


def test_a_second_save_updates_the_same_row_and_audits_only_changes(
    client: TestClient, sign_in: Any, cast: Cast, tx: Any
) -> None:
    headers = sign_in(cast["admin"])
    assert client.put(URL, headers=headers, json=VALID).status_code == 200
    again = client.put(URL, headers=headers, json={**VALID, "donation_chairs": 8})
    assert again.status_code == 200
    with tx() as s:
        assert len(s.execute(select(BloodBankPolicy)).scalars().all()) == 1
        entry = (
            s.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "bloodbank.policy_update")
                .order_by(AuditEntry.seq.desc())
            )
            .scalars()
            .first()
        )
        assert entry is not None
        assert json.loads(entry.detail) == {"donation_chairs": {"from": 6, "to": 8}}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        pytest.param(
            {"rule_profile": "FR"}, "rule_profile", "Choose a donor rule profile: US, UK, WHO.", id="profile"
        ),
        pytest.param(
            {"low_stock_days": 0.4},
            "low_stock_days",
            "Low stock must be a number from 0.5 to 60",
            id="low-0.4",
        ),
        pytest.param({"low_stock_days": 61}, "low_stock_days", "from 0.5 to 60 days of supply", id="low-61"),
        pytest.param(
            {"critical_stock_days": 5, "low_stock_days": 4},
            "critical_stock_days",
            "Critical stock cannot be more days of supply than low stock.",
            id="critical-above-low",
        ),
        pytest.param({"expiry_warning_days": 0}, "expiry_warning_days", "from 1 to 30 days", id="expiry-0"),
        pytest.param({"expiry_warning_days": 31}, "expiry_warning_days", "from 1 to 30 days", id="expiry-31"),
        pytest.param({"callout_wave_size": 501}, "callout_wave_size", "from 1 to 500 donors", id="wave-501"),
        pytest.param(
            {"callout_cooldown_days": 91}, "callout_cooldown_days", "from 1 to 90 days", id="cooldown-91"
        ),
        pytest.param({"donation_chairs": 0}, "donation_chairs", "a whole number from 1 to 50", id="chairs-0"),
        pytest.param(
            {"return_window_minutes": 241}, "return_window_minutes", "0 to 240 minutes", id="return-241"
        ),
        pytest.param(
            {"return_window_minutes": -1}, "return_window_minutes", "0 to 240 minutes", id="return-neg"
        ),
        pytest.param(
            {"stock_thresholds": {"O-:red_cell": 3}},
            "stock_thresholds",
            "'O-:red_cell' is not a blood group and component",
            id="threshold-bad-key",
        ),
        pytest.param(
            {"stock_thresholds": {"O-:red_cells": 0}},
            "stock_thresholds",
            "Low-stock threshold for O- red cells must be a number from 0.5 to 60",
            id="threshold-zero",
        ),
        pytest.param(
            {"baseline_daily_use": {"A+:platelets": 1001}},
            "baseline_daily_use",
            "Baseline daily use for A+ platelets must be a number from 0 to 1000 units a day.",
            id="baseline-too-high",
        ),
    ],
)
def test_api_validation_names_the_field(
    client: TestClient, sign_in: Any, cast: Cast, tx: Any, change: dict[str, Any], field: str, message: str
) -> None:
    response = client.put(URL, headers=sign_in(cast["admin"]), json={**VALID, **change})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field
    assert message in response.json()["detail"]
    assert saved_row(tx, cast) is None  # nothing half-saved


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({k: v for k, v in VALID.items() if k != "donation_chairs"}, id="missing-field"),
        pytest.param({**VALID, "colour": "red"}, id="unknown-field"),
        pytest.param({**VALID, "donation_chairs": "many"}, id="not-a-number"),
    ],
)
def test_malformed_bodies_are_422(client: TestClient, sign_in: Any, cast: Cast, body: dict[str, Any]) -> None:
    response = client.put(URL, headers=sign_in(cast["admin"]), json=body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_service_partial_update_keeps_the_rest_and_refuses_unknown_settings(
    tx: Any, cast: Cast, make: Any
) -> None:
    admin = cast["admin"]
    principal = Principal(
        user_id=admin.id, role="admin", organisation_id=cast.org.id, full_name=admin.full_name
    )
    with tx() as s:
        policy = service.update_policy(s, principal, donation_chairs="7", low_stock_days="2.5")
        assert (policy.donation_chairs, policy.low_stock_days, policy.rule_profile) == (7, 2.5, "US")
    with tx() as s, pytest.raises(ValidationFailed, match="no blood bank setting called 'colour'"):
        service.update_policy(s, principal, colour="red")
    with tx() as s, pytest.raises(ValidationFailed, match="whole number"):
        service.update_policy(s, principal, donation_chairs=2.5)
    row = saved_row(tx, cast)
    assert row is not None
    assert row.donation_chairs == 7


def test_each_organisation_has_its_own_settings(
    client: TestClient, sign_in: Any, cast: Cast, make: Any
) -> None:
    other_admin = make.staff("admin", make.org())
    assert client.put(URL, headers=sign_in(other_admin), json=VALID).status_code == 200
    mine = client.get(URL, headers=sign_in(cast["admin"])).json()
    assert (mine["saved"], mine["rule_profile"]) == (False, "US")


# --- the page ---------------------------------------------------------------------------------------------


def form(csrf: str, **changes: str) -> dict[str, str]:
    values = {
        "csrf_token": csrf,
        "rule_profile": "WHO",
        "low_stock_days": "5",
        "critical_stock_days": "2",
        "expiry_warning_days": "4",
        "callout_wave_size": "25",
        "callout_cooldown_days": "10",
        "donation_chairs": "3",
        "return_window_minutes": "20",
        "threshold:O-:red_cells": "7",
        "threshold:A+:platelets": "",
        "baseline:O+:red_cells": "2.5",
    }
    return {**values, **changes}


def test_page_shows_the_defaults_and_what_each_profile_means(client: TestClient, cast: Cast) -> None:
    web_login(client, cast["admin"])
    page = client.get("/bloodbank/settings")
    assert page.status_code == 200
    assert 'data-testid="defaults"' in page.text
    assert 'value="US" data-testid="profile-US" checked' in page.text
    uk = page.text.split('data-testid="profile-table-UK"')[1].split("</section>")[0]
    assert "84 (men) / 112 (women)" in uk  # 12 weeks for men, 16 for women between whole blood donations
    us = page.text.split('data-testid="profile-table-US"')[1].split("</section>")[0]
    assert "<td>56</td>" in us
    assert "<td>112</td>" in us


def test_page_saves_the_form(client: TestClient, cast: Cast, tx: Any) -> None:
    csrf = web_login(client, cast["admin"])
    response = client.post("/bloodbank/settings", data=form(csrf), follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/bloodbank/settings?saved=1"
    row = saved_row(tx, cast)
    assert row is not None
    assert (row.rule_profile, row.low_stock_days, row.critical_stock_days, row.donation_chairs) == (
        "WHO",
        5,
        2,
        3,
    )
    assert row.stock_thresholds == {"O-:red_cells": 7.0}
    assert row.baseline_daily_use == {"O+:red_cells": 2.5}
    page = client.get(response.headers["location"])
    assert 'data-testid="saved"' in page.text
    assert 'inputmode="decimal" value="7" data-testid="threshold:O-:red_cells"' in page.text


@pytest.mark.parametrize(
    ("changes", "testid", "message"),
    [
        pytest.param(
            {"donation_chairs": "0"},
            "error-donation_chairs",
            "Donation chairs must be a whole number",
            id="chairs",
        ),
        pytest.param(
            {"low_stock_days": ""}, "error-low_stock_days", "Low stock must be a number", id="blank"
        ),
        pytest.param(
            {"critical_stock_days": "9"}, "error-critical_stock_days", "cannot be more days", id="critical"
        ),
        pytest.param(
            {"threshold:B-:cryo": "abc"}, "error-stock_thresholds", "for B- cryo must be a number", id="grid"
        ),
    ],
)
def test_page_shows_errors_beside_the_field(
    client: TestClient,
    cast: Cast,
    tx: Any,
    changes: dict[str, str],
    testid: str,
    message: str,
) -> None:
    csrf = web_login(client, cast["admin"])
    response = client.post("/bloodbank/settings", data=form(csrf, **changes), follow_redirects=False)
    assert response.status_code == 422
    error = response.text.split(f'data-testid="{testid}">')[1].split("</div>")[0]
    assert message in error
    assert 'value="WHO" data-testid="profile-WHO" checked' in response.text  # the form keeps what was typed
    assert saved_row(tx, cast) is None
