"""Free text people type into the blood bank (an indication, a reason, a storage location) is stored without
control characters: PostgreSQL cannot store a NUL, and a request carrying one must not end in a 500."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.models import BloodRequest, BloodUnit, UnitEvent
from caresync.db import session_factory, transaction, utcnow
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import Cast

B = "/api/v1/bloodbank"
TYPED = "Bag\x00 leaking\x07 at the port"
STORED = "Bag leaking at the port"


def test_an_order_s_indication_drops_control_characters(client: TestClient, cast: Cast, sign_in: Any) -> None:
    body = {
        "patient_id": str(cast["patient"].patient_id),
        "component": "plasma",
        "units": 1,
        "urgency": "routine",
        "needed_by": (utcnow() + timedelta(hours=4)).isoformat(),
        "indication": "Coagulopathy\x00 before surgery",
        "patient_group": "A+",
    }
    created = client.post(f"{B}/requests", json=body, headers=sign_in(cast["doctor"]))
    assert created.status_code == 201, created.text
    assert created.json()["indication"] == "Coagulopathy before surgery"


def test_a_cancellation_reason_drops_control_characters(client: TestClient, cast: Cast, sign_in: Any) -> None:
    request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id)
    done = client.post(
        f"{B}/requests/{request.id}/cancel", json={"reason": TYPED}, headers=sign_in(cast["doctor"])
    )
    assert done.status_code == 200, done.text
    with transaction(session_factory()) as s:
        assert s.get_one(BloodRequest, request.id).status_reason == STORED


def test_a_discard_reason_and_a_location_drop_control_characters(
    client: TestClient, cast: Cast, sign_in: Any
) -> None:
    staff = sign_in(cast["bloodbank_staff"])
    moved, discarded = make_unit(cast.org), make_unit(cast.org)
    located = client.patch(f"{B}/units/{moved.id}", json={"storage_location": "Fridge\x00 2"}, headers=staff)
    assert located.status_code == 200, located.text
    gone = client.post(f"{B}/units/{discarded.id}/discard", json={"reason": TYPED}, headers=staff)
    assert gone.status_code == 200, gone.text
    with transaction(session_factory()) as s:
        assert s.get_one(BloodUnit, moved.id).storage_location == "Fridge 2"
        notes = s.scalars(select(UnitEvent.note).where(UnitEvent.unit_id == discarded.id)).all()
    assert STORED in notes
