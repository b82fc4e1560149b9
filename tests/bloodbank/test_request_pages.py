"""Blood request pages: the clinician orders blood and follows it; the blood bank matches, allocates,
crossmatches and issues from its queue (stock drops); emergency release; refusals are shown, not lost."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from caresync.bloodbank.models import BloodRequest, BloodUnit
from caresync.db import session_factory, transaction
from caresync.identity.models import Patient
from tests.bloodbank.conftest import make_request, make_unit
from tests.conftest import Cast, web_login


def _browser(app: Any, cast: Cast, role: str) -> tuple[TestClient, str]:
    browser = TestClient(app)
    return browser, web_login(browser, cast[role])


def _available(org_id: uuid.UUID, group: str) -> int:
    with transaction(session_factory()) as s:
        query = select(func.count()).where(
            BloodUnit.organisation_id == org_id,
            BloodUnit.blood_group == group,
            BloodUnit.status == "available",
        )
        return int(s.execute(query).scalar_one())


def _type_patient(cast: Cast, group: str | None) -> None:
    with transaction(session_factory()) as s:
        s.execute(update(Patient).where(Patient.id == cast["patient"].patient_id).values(blood_group=group))


def test_a_clinician_orders_blood_and_the_blood_bank_matches_and_issues_it(app: Any, cast: Cast) -> None:
    _type_patient(cast, "B+")
    stock = [make_unit(cast.org, "B+") for _ in range(3)]
    doctor, doctor_csrf = _browser(app, cast, "doctor")
    staff, staff_csrf = _browser(app, cast, "bloodbank_staff")
    try:
        empty = doctor.get("/blood-requests")
        assert "No blood requests" in empty.text
        found = doctor.get("/blood-requests/new", params={"q": cast["patient"].patient.family_name})  # type: ignore[union-attr]
        assert 'data-testid="choose-patient"' in found.text
        assert cast.other_patient.family_name not in found.text
        form = doctor.get("/blood-requests/new", params={"patient_id": str(cast["patient"].patient_id)})
        assert 'data-testid="order-form"' in form.text
        assert 'data-testid="group-on-record">B+' in form.text
        fields = {
            "patient_id": str(cast["patient"].patient_id),
            "component": "red_cells",
            "units": "2",
            "urgency": "urgent",
            "needed_within": "2",
            "indication": "GI bleed",
            "csrf_token": doctor_csrf,
        }
        sent = doctor.post("/blood-requests/new", data=fields, follow_redirects=False)
        assert sent.status_code == 303, sent.text
        request_id = sent.headers["location"].rsplit("/", 1)[1]
        tracking = doctor.get(f"/blood-requests/{request_id}")
        assert 'data-testid="request-status">Open' in tracking.text

        queue = staff.get("/bloodbank/requests")
        assert f'data-request-id="{request_id}"' in queue.text
        assert 'data-testid="countdown">in 1 h' in queue.text
        work = staff.get(f"/bloodbank/requests/{request_id}")
        assert work.text.count('data-testid="proposed-unit"') == 3
        assert f'name="csrf_token" value="{staff_csrf}"' in work.text
        assert work.text.count(' checked data-testid="pick-unit"') == 2
        picked = re.findall(r'name="unit_([0-9a-f-]{36})"', work.text)[:2]
        data = {f"unit_{u}": "on" for u in picked} | {"csrf_token": staff_csrf}
        assert (
            staff.post(
                f"/bloodbank/requests/{request_id}/allocate", data=data, follow_redirects=False
            ).status_code
            == 303
        )
        assert _available(cast.org.id, "B+") == 1
        for unit_id in picked:
            crossmatched = staff.post(
                f"/bloodbank/requests/{request_id}/crossmatch",
                data={"unit_id": unit_id, "result": "compatible", "csrf_token": staff_csrf},
                follow_redirects=False,
            )
            assert crossmatched.status_code == 303
        issued = staff.post(f"/bloodbank/requests/{request_id}/issue", data={"csrf_token": staff_csrf})
        assert 'data-testid="request-status">Issued' in issued.text
        tracking = doctor.get(f"/blood-requests/{request_id}")
        assert tracking.text.count('data-testid="confirm-transfusion"') == 2
        assert tracking.text.count(f'name="csrf_token" value="{doctor_csrf}"') >= 2  # every form posts it
        for unit_id in picked:
            doctor.post(
                f"/blood-requests/{request_id}/transfuse",
                data={"unit_id": unit_id, "csrf_token": doctor_csrf},
            )
        assert 'data-testid="request-status">Completed' in doctor.get(f"/blood-requests/{request_id}").text
        assert {str(u.id) for u in stock} > set(picked)
    finally:
        doctor.close()
        staff.close()


def test_order_form_errors_are_shown_beside_their_fields(app: Any, cast: Cast) -> None:
    doctor, csrf = _browser(app, cast, "doctor")
    try:
        fields = {"patient_id": str(cast["patient"].patient_id), "component": "red_cells", "units": "0",
                  "urgency": "urgent", "needed_within": "2", "csrf_token": csrf}  # fmt: skip
        refused = doctor.post("/blood-requests/new", data=fields)
        assert refused.status_code == 422
        assert "Enter a number of units from 1 to 50." in refused.text
        stranger = doctor.get("/blood-requests/new", params={"patient_id": str(cast.other_patient.id)})
        assert stranger.status_code == 404
        assert cast.other_patient.family_name not in stranger.text
    finally:
        doctor.close()
    with transaction(session_factory()) as s:
        assert s.scalars(select(BloodRequest)).first() is None


def test_staff_see_an_empty_queue_and_refusals_on_the_work_page(app: Any, cast: Cast) -> None:
    staff, csrf = _browser(app, cast, "bloodbank_staff")
    try:
        assert 'data-testid="empty-queue"' in staff.get("/bloodbank/requests").text
        request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id, patient_group="A-")
        page = staff.get(f"/bloodbank/requests/{request.id}")
        assert "No compatible unit in stock" in page.text
        assert f'action="/bloodbank/requests/{request.id}/offer"' in page.text
        refused = staff.post(f"/bloodbank/requests/{request.id}/auto-allocate", data={"csrf_token": csrf})
        assert refused.status_code == 409
        assert 'data-testid="form-error"' in refused.text
        assert 'data-testid="emergency-release"' not in page.text  # not an emergency, group known
    finally:
        staff.close()


def test_emergency_release_button_asks_first_and_issues_group_o(app: Any, cast: Cast) -> None:
    o_neg = make_unit(cast.org, "O-")
    request = make_request(
        cast.org,
        cast["patient"].patient_id,
        cast["doctor"].id,
        patient_group=None,
        urgency="emergency",
        units_requested=1,
    )
    staff, csrf = _browser(app, cast, "bloodbank_staff")
    try:
        page = staff.get(f"/bloodbank/requests/{request.id}")
        button = re.search(r'<button[^>]*data-testid="emergency-release"[^>]*>', page.text)
        assert button is not None
        assert "data-confirm=" in button.group(0)
        staff.post(f"/bloodbank/requests/{request.id}/emergency-release", data={"csrf_token": csrf})
        after = staff.get(f"/bloodbank/requests/{request.id}")
        assert 'data-testid="emergency-flag"' in after.text
        assert o_neg.din in after.text
    finally:
        staff.close()
    with transaction(session_factory()) as s:
        assert s.get_one(BloodUnit, o_neg.id).status == "issued"


def test_a_clinician_cancels_with_a_reason_after_confirming(app: Any, cast: Cast) -> None:
    request = make_request(cast.org, cast["patient"].patient_id, cast["doctor"].id)
    doctor, csrf = _browser(app, cast, "doctor")
    try:
        page = doctor.get(f"/blood-requests/{request.id}")
        assert re.search(r'data-confirm="[^"]+" data-testid="cancel-request"', page.text)
        missing = doctor.post(f"/blood-requests/{request.id}/cancel", data={"reason": "", "csrf_token": csrf})
        assert missing.status_code == 422
        assert "Say why" in missing.text
        doctor.post(
            f"/blood-requests/{request.id}/cancel", data={"reason": "Surgery postponed", "csrf_token": csrf}
        )
        assert "Surgery postponed" in doctor.get(f"/blood-requests/{request.id}").text
    finally:
        doctor.close()
