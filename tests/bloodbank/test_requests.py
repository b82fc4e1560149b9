"""Blood requests through the API: ordering, the queue, allocation (all or none, compatibility checked
again), emergency release, crossmatch, issue, return, transfusion, cancelling; audit and isolation."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from caresync.bloodbank.models import BloodRequest, BloodUnit
from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import BreakGlassGrant, Patient
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import Cast, Factory

R = "/api/v1/bloodbank/requests"
Headers = dict[str, str]


# --- helpers ------------------------------------------------------------------------------------------------


def set_patient(patient_id: uuid.UUID, **fields: Any) -> None:
    """Change the patient's profile directly (blood group, sex, birth date)."""
    with transaction(session_factory()) as s:
        s.execute(update(Patient).where(Patient.id == patient_id).values(**fields))


def unit_row(unit_id: Any) -> BloodUnit:
    with transaction(session_factory()) as s:
        row = s.get_one(BloodUnit, uuid.UUID(str(unit_id)))
        s.expunge(row)
        return row


def request_row(request_id: Any) -> BloodRequest:
    with transaction(session_factory()) as s:
        row = s.get_one(BloodRequest, uuid.UUID(str(request_id)))
        s.expunge(row)
        return row


def audit_entries(action: str) -> list[AuditEntry]:
    with transaction(session_factory()) as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))
        s.expunge_all()
        return rows


def order_body(patient_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": str(patient_id),
        "component": "red_cells",
        "units": 2,
        "urgency": "urgent",
        "needed_by": (utcnow() + timedelta(hours=2)).isoformat(),
        "indication": "Hb 6.8 g/dL, symptomatic",
    }
    return {**body, **overrides}


@pytest.fixture
def hdr(cast: Cast, sign_in: Callable[..., Headers]) -> Callable[[str], Headers]:
    """Bearer headers per role of the cast (signed in once each)."""
    cache: dict[str, Headers] = {}

    def get(role: str) -> Headers:
        if role not in cache:
            cache[role] = sign_in(cast[role])
        return cache[role]

    return get


@pytest.fixture
def typed(cast: Cast) -> Cast:
    """The whole cast (the blood bank's staff are told of orders), its patient typed A+."""
    cast.everyone()
    set_patient(cast["patient"].patient_id, blood_group="A+")
    return cast


def open_request(cast: Cast, **kwargs: Any) -> BloodRequest:
    return make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id, **kwargs)


# --- ordering -----------------------------------------------------------------------------------------------


def test_a_clinician_orders_blood_the_blood_bank_is_told_and_the_order_is_audited(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    response = client.post(R, json=order_body(typed["patient"].patient_id), headers=hdr("nurse"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["status"], body["patient_group"], body["units_requested"]) == ("open", "A+", 2)
    assert body["organisation_id"] == str(typed.org.id)
    assert body["requested_by"] == str(typed["nurse"].id)
    [entry] = audit_entries("bloodbank.request.create")
    assert (entry.patient_id, entry.resource_id, entry.outcome) == (
        typed["patient"].patient_id,
        body["id"],
        "success",
    )
    with transaction(session_factory()) as s:
        notes = list(
            s.scalars(select(Notification).where(Notification.user_id == typed["bloodbank_staff"].id))
        )
        assert [n.link for n in notes] == [f"/bloodbank/requests/{body['id']}"]


def test_the_group_may_be_given_only_when_the_record_has_none(
    client: TestClient, cast: Cast, hdr: Callable[[str], Headers]
) -> None:
    patient_id = cast["patient"].patient_id
    unknown = client.post(R, json=order_body(patient_id), headers=hdr("doctor"))
    assert unknown.status_code == 201
    assert unknown.json()["patient_group"] is None
    typed_now = client.post(R, json=order_body(patient_id, patient_group="B-"), headers=hdr("doctor"))
    assert typed_now.json()["patient_group"] == "B-"
    set_patient(patient_id, blood_group="A+")
    clash = client.post(R, json=order_body(patient_id, patient_group="B-"), headers=hdr("doctor"))
    assert clash.status_code == 422
    assert clash.json()["field"] == "patient_group"
    assert "A+" in clash.json()["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(
            {"needed_by": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}, "needed_by", id="past"
        ),
        pytest.param(
            {"needed_by": (datetime.now(UTC) + timedelta(days=120)).isoformat()}, "needed_by", id="far"
        ),
        pytest.param({"needed_by": "2030-01-01T10:00:00"}, "needed_by", id="no-time-zone"),
        pytest.param({"units": 0}, "units", id="no-units"),
        pytest.param({"units": 51}, "units", id="too-many-units"),
        pytest.param({"component": "serum"}, "component", id="unknown-component"),
        pytest.param({"urgency": "whenever"}, "urgency", id="unknown-urgency"),
        pytest.param({"patient_group": "C+"}, "patient_group", id="unknown-group"),
    ],
)
def test_invalid_orders_are_refused_with_the_field(
    client: TestClient, cast: Cast, hdr: Callable[[str], Headers], change: dict[str, Any], field: str
) -> None:
    response = client.post(R, json=order_body(cast["patient"].patient_id, **change), headers=hdr("doctor"))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert field in str(problem.get("field") or problem.get("errors"))
    with transaction(session_factory()) as s:
        assert s.scalars(select(BloodRequest)).first() is None


def test_only_clinicians_who_care_for_the_patient_or_broke_the_glass_may_order(
    client: TestClient, cast: Cast, make: Factory, sign_in: Callable[..., Headers]
) -> None:
    stranger = make.staff("doctor", cast.org)
    body = order_body(cast.other_patient.id)
    refused = client.post(R, json=body, headers=sign_in(stranger))
    assert refused.status_code == 404
    assert [e.outcome for e in audit_entries("bloodbank.request.create")] == ["denied"]
    with transaction(session_factory()) as s:
        now = utcnow()
        s.add(BreakGlassGrant(patient_id=cast.other_patient.id, user_id=stranger.id, reason="trauma bay",
                              created_at=now, expires_at=now + timedelta(hours=4)))  # fmt: skip
    allowed = client.post(R, json=body, headers=sign_in(stranger))
    assert allowed.status_code == 201, allowed.text
    assert audit_entries("bloodbank.request.create")[-1].flagged
    for role in ("bloodbank_staff", "admin", "pharmacist", "patient", "donor"):
        assert client.post(R, json=body, headers=sign_in(cast[role])).status_code == 403, role


# --- the queue and isolation ---------------------------------------------------------------------------


def test_the_queue_puts_emergencies_first_then_the_soonest_needed_and_pages(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    later = open_request(typed, urgency="routine", needed_in=timedelta(hours=1))
    urgent_late = open_request(typed, urgency="urgent", needed_in=timedelta(hours=9))
    urgent_soon = open_request(typed, urgency="urgent", needed_in=timedelta(hours=3))
    emergency = open_request(typed, urgency="emergency", needed_in=timedelta(hours=5))
    open_request(typed, status="cancelled", status_reason="duplicate")
    expected = [str(r.id) for r in (emergency, urgent_soon, urgent_late, later)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params: dict[str, Any] = {"status": "queue", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(R, params=params, headers=hdr("bloodbank_staff"))
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    only_urgent = client.get(R, params={"urgency": "urgent"}, headers=hdr("bloodbank_staff")).json()
    assert [i["id"] for i in only_urgent["items"]] == [str(urgent_soon.id), str(urgent_late.id)]
    reads = audit_entries("bloodbank.request.list")
    assert reads
    assert all(e.patient_id == typed["patient"].patient_id for e in reads)
    naive = base64.urlsafe_b64encode(
        json.dumps([0, "2030-01-01T10:00:00", str(uuid.uuid4())]).encode()
    ).decode()
    for cursor in ("garbage!", naive, base64.urlsafe_b64encode(b"[1, 2]").decode()):
        refused = client.get(R, params={"cursor": cursor}, headers=hdr("bloodbank_staff"))
        assert refused.status_code == 422, cursor


def test_clinicians_see_only_their_patients_and_other_organisations_see_nothing(
    client: TestClient,
    typed: Cast,
    make: Factory,
    hdr: Callable[[str], Headers],
    sign_in: Callable[..., Headers],
) -> None:
    mine = open_request(typed)
    theirs = make_request(typed.org, typed.other_patient, typed["doctor"].id)
    assert [i["id"] for i in client.get(R, headers=hdr("doctor")).json()["items"]] == [str(mine.id)]
    assert client.get(f"{R}/{theirs.id}", headers=hdr("doctor")).status_code == 404
    assert {i["id"] for i in client.get(R, headers=hdr("bloodbank_staff")).json()["items"]} == {
        str(mine.id),
        str(theirs.id),
    }
    elsewhere = make.org()
    outsider = sign_in(make.staff("bloodbank_staff", elsewhere))
    assert client.get(R, headers=outsider).json()["items"] == []
    for path in ("", "/proposals"):
        response = client.get(f"{R}/{mine.id}{path}", headers=outsider)
        assert response.status_code == 404, path
        assert typed["patient"].patient.family_name not in response.text  # type: ignore[union-attr]
    assert client.post(f"{R}/{mine.id}/auto-allocate", headers=outsider).status_code == 404
    denied = [e for e in audit_entries("bloodbank.request.read") if e.outcome == "denied"]
    assert len(denied) == 2


def test_reading_a_request_shows_units_and_history_and_is_audited(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    request = open_request(typed, units_requested=1)
    unit = make_unit(typed.org, "A+")
    client.post(
        f"{R}/{request.id}/allocate", json={"unit_ids": [str(unit.id)]}, headers=hdr("bloodbank_staff")
    )
    detail = client.get(f"{R}/{request.id}", headers=hdr("doctor")).json()
    assert [u["din"] for u in detail["units"]] == [unit.din]
    assert [(h["din"], h["from_status"], h["to_status"]) for h in detail["history"]] == [
        (unit.din, "available", "reserved")
    ]
    assert (detail["status"], detail["shortfall"]) == ("allocated", 0)
    [entry] = audit_entries("bloodbank.request.read")
    assert (entry.patient_id, entry.actor_id) == (typed["patient"].patient_id, typed["doctor"].id)


# --- allocation ---------------------------------------------------------------------------------------------


def test_allocation_reserves_every_unit_and_fills_the_request(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    request = open_request(typed, units_requested=2)
    first, second = make_unit(typed.org, "A+"), make_unit(typed.org, "O+")
    one = client.post(
        f"{R}/{request.id}/allocate", json={"unit_ids": [str(first.id)]}, headers=hdr("bloodbank_staff")
    )
    assert one.status_code == 200, one.text
    assert request_row(request.id).status == "open"
    two = client.post(
        f"{R}/{request.id}/allocate", json={"unit_ids": [str(second.id)]}, headers=hdr("bloodbank_staff")
    )
    assert two.status_code == 200
    assert request_row(request.id).status == "allocated"
    assert {unit_row(u.id).request_id for u in (first, second)} == {request.id}
    extra = make_unit(typed.org, "A+")
    full = client.post(
        f"{R}/{request.id}/allocate", json={"unit_ids": [str(extra.id)]}, headers=hdr("bloodbank_staff")
    )
    assert full.status_code == 409
    assert unit_row(extra.id).status == "available"


def test_a_unit_taken_by_another_request_is_a_conflict_naming_it_and_nothing_is_half_done(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    other = open_request(typed, units_requested=1)
    taken = make_unit(typed.org, "A+", status="reserved", request_id=other.id)
    free = make_unit(typed.org, "A+")
    request = open_request(typed, units_requested=2)
    response = client.post(
        f"{R}/{request.id}/allocate",
        json={"unit_ids": [str(free.id), str(taken.id)]},
        headers=hdr("bloodbank_staff"),
    )
    assert response.status_code == 409
    assert taken.din in response.json()["detail"]
    assert (unit_row(free.id).status, unit_row(free.id).request_id) == ("available", None)
    assert unit_row(taken.id).request_id == other.id
    assert request_row(request.id).status == "open"


@pytest.mark.parametrize(
    ("unit_group", "component", "status"),
    [
        pytest.param("B+", "red_cells", 422, id="incompatible-group"),
        pytest.param("A-", "plasma", 422, id="other-component"),
        pytest.param("AB+", "red_cells", 422, id="AB-red-cells-to-A"),
    ],
)
def test_incompatible_units_are_refused_whatever_the_client_says(
    client: TestClient,
    typed: Cast,
    hdr: Callable[[str], Headers],
    unit_group: str,
    component: str,
    status: int,
) -> None:
    request = open_request(typed, units_requested=1, patient_group="A+")
    unit = make_unit(typed.org, unit_group, component)
    response = client.post(
        f"{R}/{request.id}/allocate", json={"unit_ids": [str(unit.id)]}, headers=hdr("bloodbank_staff")
    )
    assert response.status_code == status, response.text
    assert unit.din in response.json()["detail"]
    assert unit_row(unit.id).status == "available"


def test_expired_duplicate_and_foreign_units_are_refused(
    client: TestClient, typed: Cast, make: Factory, hdr: Callable[[str], Headers]
) -> None:
    request = open_request(typed, units_requested=2)
    staff = hdr("bloodbank_staff")
    expired = make_unit(typed.org, "A+", expires_in=timedelta(hours=-1))
    assert (
        client.post(
            f"{R}/{request.id}/allocate", json={"unit_ids": [str(expired.id)]}, headers=staff
        ).status_code
        == 409
    )
    same = make_unit(typed.org, "A+")
    twice = client.post(f"{R}/{request.id}/allocate", json={"unit_ids": [str(same.id)] * 2}, headers=staff)
    assert twice.status_code == 422
    foreign = make_unit(make.org(), "A+")
    assert (
        client.post(
            f"{R}/{request.id}/allocate", json={"unit_ids": [str(foreign.id)]}, headers=staff
        ).status_code
        == 404
    )
    assert unit_row(foreign.id).status == "available"


def test_unknown_group_cannot_be_matched_and_proposals_follow_the_rules(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    staff = hdr("bloodbank_staff")
    soon_o_neg = make_unit(typed.org, "O-", expires_in=timedelta(days=1))
    late_a = make_unit(typed.org, "A+", expires_in=timedelta(days=30))
    soon_a = make_unit(typed.org, "A+", expires_in=timedelta(days=3))
    request = open_request(typed, units_requested=3, patient_group="A+")
    proposed = client.get(f"{R}/{request.id}/proposals", headers=staff).json()["items"]
    assert [u["id"] for u in proposed] == [str(soon_a.id), str(late_a.id), str(soon_o_neg.id)]
    auto = client.post(f"{R}/{request.id}/auto-allocate", headers=staff)
    assert auto.status_code == 200
    assert request_row(request.id).status == "allocated"
    unknown = open_request(typed, patient_group=None)
    assert client.get(f"{R}/{unknown.id}/proposals", headers=staff).json()["items"] == []
    refused = client.post(f"{R}/{unknown.id}/allocate", json={"unit_ids": [str(late_a.id)]}, headers=staff)
    assert refused.status_code == 422
    assert client.post(f"{R}/{unknown.id}/auto-allocate", headers=staff).status_code == 409


# --- emergency release -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "born", "component", "stock", "expected"),
    [
        pytest.param(
            "female", date(1995, 1, 1), "red_cells", ["O+", "O-", "O-"], ["O-", "O-"], id="young-woman-O-neg"
        ),
        pytest.param(
            "unknown", date(1950, 1, 1), "red_cells", ["O+", "O-", "O-"], ["O-", "O-"], id="unknown-sex"
        ),
        pytest.param(
            "male", date(1980, 1, 1), "red_cells", ["O+", "O-", "O-"], ["O+", "O-"], id="man-O-pos-first"
        ),
        pytest.param(
            "female", date(1960, 1, 1), "red_cells", ["O-", "O+", "O+"], ["O+", "O+"], id="older-woman"
        ),
        pytest.param(
            "male", date(1980, 1, 1), "plasma", ["O+", "A+", "AB-", "AB+"], ["AB+", "AB-"], id="AB-plasma"
        ),
    ],
)
def test_emergency_release_issues_the_right_uncrossmatched_units(
    client: TestClient,
    cast: Cast,
    hdr: Callable[[str], Headers],
    sex: str,
    born: date,
    component: str,
    stock: list[str],
    expected: list[str],
) -> None:
    set_patient(cast["patient"].patient_id, sex=sex, birth_date=born)
    units = [make_unit(cast.org, g, component) for g in stock]
    request = open_request(
        cast, component=component, urgency="emergency", patient_group=None, units_requested=2
    )
    response = client.post(f"{R}/{request.id}/emergency-release", headers=hdr("bloodbank_staff"))
    assert response.status_code == 200, response.text
    assert sorted(u["blood_group"] for u in response.json()["items"]) == sorted(expected)
    assert all(u["status"] == "issued" for u in response.json()["items"])
    row = request_row(request.id)
    assert (row.emergency_release, row.status) == (True, "issued")
    untouched = [u for u in units if str(u.id) not in {i["id"] for i in response.json()["items"]}]
    assert all(unit_row(u.id).status == "available" for u in untouched)
    [entry] = audit_entries("bloodbank.request.emergency_release")
    assert entry.flagged
    assert entry.patient_id == cast["patient"].patient_id


@pytest.mark.parametrize(
    ("urgency", "group", "component", "status"),
    [
        pytest.param("urgent", None, "red_cells", 409, id="not-an-emergency"),
        pytest.param("emergency", "A+", "red_cells", 409, id="group-known"),
        pytest.param("emergency", None, "platelets", 422, id="platelets"),
    ],
)
def test_emergency_release_is_refused_outside_its_rules(
    client: TestClient,
    cast: Cast,
    hdr: Callable[[str], Headers],
    urgency: str,
    group: str | None,
    component: str,
    status: int,
) -> None:
    make_unit(cast.org, "O-", component)
    request = open_request(cast, urgency=urgency, patient_group=group, component=component)
    assert (
        client.post(f"{R}/{request.id}/emergency-release", headers=hdr("bloodbank_staff")).status_code
        == status
    )
    assert request_row(request.id).emergency_release is False


def test_after_emergency_release_an_incompatible_crossmatch_alerts_the_clinician(
    client: TestClient, cast: Cast, hdr: Callable[[str], Headers]
) -> None:
    unit = make_unit(cast.org, "O-")
    request = open_request(cast, urgency="emergency", patient_group=None, units_requested=1)
    client.post(f"{R}/{request.id}/emergency-release", headers=hdr("bloodbank_staff"))
    bad = client.post(
        f"{R}/{request.id}/crossmatch",
        json={"unit_id": str(unit.id), "compatible": False, "note": "anti-K"},
        headers=hdr("bloodbank_staff"),
    )
    assert bad.status_code == 200
    with transaction(session_factory()) as s:
        titles = list(s.scalars(select(Notification.title).where(Notification.user_id == cast["doctor"].id)))
    assert any(unit.din in t and "STOP" in t for t in titles)


# --- crossmatch, issue, return, transfusion ---------------------------------------------------------------


def allocated(
    client: TestClient, cast: Cast, staff: Headers, groups: tuple[str, ...] = ("A+", "A+"), **kw: Any
) -> tuple[BloodRequest, list[BloodUnit]]:
    request = open_request(cast, units_requested=len(groups), **kw)
    units = [make_unit(cast.org, g, kw.get("component", "red_cells")) for g in groups]
    response = client.post(
        f"{R}/{request.id}/allocate", json={"unit_ids": [str(u.id) for u in units]}, headers=staff
    )
    assert response.status_code == 200, response.text
    return request, units


def test_crossmatch_issue_and_transfusion_complete_the_request(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    staff = hdr("bloodbank_staff")
    request, (first, second) = allocated(client, typed, staff)
    not_ready = client.post(f"{R}/{request.id}/issue", json={}, headers=staff)
    assert not_ready.status_code == 409
    assert "crossmatch" in not_ready.json()["detail"]
    for unit in (first, second):
        ok = client.post(
            f"{R}/{request.id}/crossmatch", json={"unit_id": str(unit.id), "compatible": True}, headers=staff
        )
        assert ok.json()["status"] == "crossmatched"
    issued = client.post(f"{R}/{request.id}/issue", json={}, headers=staff)
    assert [u["status"] for u in issued.json()["items"]] == ["issued", "issued"]
    assert request_row(request.id).status == "issued"
    assert (
        client.post(
            f"{R}/{request.id}/transfusions", json={"unit_id": str(first.id)}, headers=staff
        ).status_code
        == 403
    )
    for unit in (first, second):
        done = client.post(
            f"{R}/{request.id}/transfusions", json={"unit_id": str(unit.id)}, headers=hdr("nurse")
        )
        assert done.status_code == 200
        assert done.json()["status"] == "transfused"
    assert request_row(request.id).status == "completed"
    again = client.post(
        f"{R}/{request.id}/transfusions", json={"unit_id": str(first.id)}, headers=hdr("nurse")
    )
    assert again.status_code == 409
    steps = ("allocate", "crossmatch", "issue", "transfuse")
    counted = {step: audit_entries(f"bloodbank.request.{step}") for step in steps}
    assert {step: len(entries) for step, entries in counted.items()} == {
        "allocate": 1,
        "crossmatch": 2,
        "issue": 1,
        "transfuse": 3,
    }
    successes = [e for entries in counted.values() for e in entries if e.outcome == "success"]
    assert {e.patient_id for e in successes} == {typed["patient"].patient_id}
    assert {e.resource_id for e in successes} == {str(request.id)}


def test_an_incompatible_crossmatch_puts_the_unit_back_and_reopens_the_request(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    staff = hdr("bloodbank_staff")
    request, (first, _second) = allocated(client, typed, staff)
    assert request_row(request.id).status == "allocated"
    bad = client.post(
        f"{R}/{request.id}/crossmatch",
        json={"unit_id": str(first.id), "compatible": False, "note": "incompatible at AHG"},
        headers=staff,
    )
    assert bad.status_code == 200
    row = unit_row(first.id)
    assert (row.status, row.request_id) == ("available", None)
    assert request_row(request.id).status == "open"
    history = client.get(f"{R}/{request.id}", headers=staff).json()["history"]
    assert "incompatible at AHG" in history[-1]["note"]


def test_plasma_is_issued_without_a_crossmatch(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    staff = hdr("bloodbank_staff")
    request, _units = allocated(client, typed, staff, ("A+", "AB+"), component="plasma")
    assert client.post(f"{R}/{request.id}/issue", json={}, headers=staff).status_code == 200
    assert request_row(request.id).status == "issued"


def _issue_one(client: TestClient, cast: Cast, staff: Headers) -> tuple[BloodRequest, BloodUnit]:
    request, (unit,) = allocated(client, cast, staff, ("A+",), component="plasma")
    assert client.post(f"{R}/{request.id}/issue", json={}, headers=staff).status_code == 200
    return request, unit


@pytest.mark.parametrize(
    ("minutes_out", "kept_cold", "status"),
    [
        pytest.param(10, True, "available", id="within-window-kept-cold"),
        pytest.param(29, True, "available", id="just-within"),
        pytest.param(10, False, "discarded", id="storage-not-confirmed"),
        pytest.param(31, True, "discarded", id="past-the-window"),
    ],
)
def test_returns_within_the_window_and_kept_cold_go_back_to_stock_others_are_discarded(
    client: TestClient,
    typed: Cast,
    hdr: Callable[[str], Headers],
    minutes_out: int,
    kept_cold: bool,
    status: str,
) -> None:
    staff = hdr("bloodbank_staff")
    request, unit = _issue_one(client, typed, staff)
    with transaction(session_factory()) as s:  # issued a while ago (the default window is 30 minutes)
        s.execute(
            update(BloodUnit)
            .where(BloodUnit.id == unit.id)
            .values(issued_at=utcnow() - timedelta(minutes=minutes_out))
        )
    body = {"unit_id": str(unit.id), "kept_cold": kept_cold, "reason": "patient transferred"}
    response = client.post(f"{R}/{request.id}/return", json=body, headers=staff)
    assert response.status_code == 200, response.text
    assert unit_row(unit.id).status == status
    assert request_row(request.id).status == "completed"  # the only issued unit came back
    [entry] = audit_entries("bloodbank.request.return")
    assert entry.patient_id == typed["patient"].patient_id


def test_cancelling_releases_held_units_and_needs_a_reason(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    staff = hdr("bloodbank_staff")
    request, units = allocated(client, typed, staff)
    assert (
        client.post(f"{R}/{request.id}/cancel", json={"reason": ""}, headers=hdr("doctor")).status_code == 422
    )
    done = client.post(
        f"{R}/{request.id}/cancel", json={"reason": "Patient stabilised"}, headers=hdr("doctor")
    )
    assert done.status_code == 200
    assert (done.json()["status"], done.json()["status_reason"]) == ("cancelled", "Patient stabilised")
    assert all((unit_row(u.id).status, unit_row(u.id).request_id) == ("available", None) for u in units)
    assert client.post(f"{R}/{request.id}/cancel", json={"reason": "again"}, headers=staff).status_code == 409
    [entry] = [e for e in audit_entries("bloodbank.request.cancel") if e.outcome == "success"]
    assert (entry.patient_id, entry.actor_id) == (typed["patient"].patient_id, typed["doctor"].id)


def test_a_request_with_issued_units_cannot_be_cancelled(
    client: TestClient, typed: Cast, hdr: Callable[[str], Headers]
) -> None:
    staff = hdr("bloodbank_staff")
    request, units = allocated(client, typed, staff, ("A+", "A+"), component="plasma")
    client.post(f"{R}/{request.id}/issue", json={"unit_ids": [str(units[0].id)]}, headers=staff)
    assert request_row(request.id).status == "allocated"
    refused = client.post(f"{R}/{request.id}/cancel", json={"reason": "no longer needed"}, headers=staff)
    assert refused.status_code == 409
    assert unit_row(units[1].id).status == "reserved"
