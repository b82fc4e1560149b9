"""The pharmacy counter pages (cookie sign-in, CSRF, HTMX and plain forms) and the patient's QR code image
and printable PDF pages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.db import session_factory, transaction
from caresync.prescriptions.dispensing import qr
from caresync.prescriptions.models import Dispense, Prescription
from tests.conftest import Cast, web_login
from tests.prescriptions.test_qr import parts, rebuild

HTMX = {"HX-Request": "true"}


def fresh_code(prescription_id: Any) -> str:
    """A code for the prescription as its patient would show it now."""
    with transaction(session_factory()) as s:
        found = s.get(Prescription, prescription_id)
        assert found is not None
        return qr.encode(s, found)


def dispenses(prescription_id: Any) -> list[Dispense]:
    """The prescription's dispense rows."""
    with transaction(session_factory()) as s:
        query = select(Dispense).where(Dispense.prescription_id == prescription_id)
        return list(s.execute(query).scalars())


class Counter:
    """The pharmacist signed in to the pages, and a prescription of the cast's patient (2 refills)."""

    def __init__(self, client: TestClient, cast: Cast, rx: Prescription) -> None:
        self.client, self.cast, self.rx = client, cast, rx
        self.csrf = web_login(client, cast["pharmacist"])

    def verify(self, code: str, *, htmx: bool = False) -> Any:
        """Post the scan form with a typed code."""
        data = {"code": code, "csrf_token": self.csrf}
        return self.client.post("/pharmacy/verify", data=data, headers=HTMX if htmx else {})

    def dispense(self, code: str, fields: dict[str, str] | None = None, *, htmx: bool = False) -> Any:
        """Post the dispense form (``fields`` override the defaults)."""
        data = {"code": code, "quantity": "21", "lot": "LOT-9", "days_supply": "", "csrf_token": self.csrf}
        return self.client.post(
            "/pharmacy/dispense",
            data={**data, **(fields or {})},
            headers=HTMX if htmx else {},
            follow_redirects=False,
        )


@pytest.fixture
def counter(client: TestClient, cast: Cast, prescription_factory: Any) -> Counter:
    """The pharmacist at the counter, and a prescription ready to dispense."""
    return Counter(client, cast, prescription_factory(cast["doctor"], cast["patient"], refills=2))


def patient_name(cast: Cast) -> str:
    """The cast patient's full name, as the pages show it."""
    patient = cast["patient"].patient
    assert patient is not None
    return f"{patient.given_name} {patient.family_name}"


def test_console_shows_the_scan_form_and_empty_states(counter: Counter) -> None:
    page = counter.client.get("/pharmacy")
    assert page.status_code == 200
    assert 'data-testid="verify-form"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert "Scan a prescription to begin" in page.text
    assert "No dispenses yet" in page.text


def test_typed_code_shows_the_verified_prescription_with_a_confirmed_dispense_form(
    counter: Counter, cast: Cast
) -> None:
    code = fresh_code(counter.rx.id)
    page = counter.verify(f"  {code}\n")
    assert page.status_code == 200, page.text
    assert 'data-testid="verified"' in page.text
    assert patient_name(cast) in page.text
    assert "Amoxicillin 500 mg capsule" in page.text
    assert "fill 1 of 3" in page.text
    assert "Take with water, with or without food." in page.text
    assert f'name="code" value="{code}"' in page.text
    form = page.text.split('data-testid="dispense-form"')[0].rsplit("<form", 1)[1]
    assert f'hx-confirm="Dispense fill 1 of 3: Amoxicillin 500 mg for {patient_name(cast)}?"' in form


def test_uploaded_screenshot_is_read_and_verified(counter: Counter, cast: Cast) -> None:
    png = qr.render_png(fresh_code(counter.rx.id))
    page = counter.client.post(
        "/pharmacy/verify",
        data={"csrf_token": counter.csrf, "code": ""},
        files={"image": ("IMG_2041.png", png, "image/png")},
        headers=HTMX,
    )
    assert page.status_code == 200
    assert 'data-testid="verified"' in page.text
    assert patient_name(cast) in page.text
    assert "<html" not in page.text  # HTMX gets the console fragment only
    assert page.text.lstrip().startswith('<div id="pharmacy-console"')


def test_a_picture_without_a_code_is_a_red_card(counter: Counter) -> None:
    page = counter.client.post(
        "/pharmacy/verify",
        data={"csrf_token": counter.csrf},
        files={"image": ("notes.txt", b"just some text", "text/plain")},
    )
    assert page.status_code == 415
    assert 'data-reason="not_an_image"' in page.text
    assert "photo or screenshot of the QR code" in page.text


def test_nothing_given_asks_for_a_code(counter: Counter) -> None:
    page = counter.verify("   ")
    assert page.status_code == 422
    assert "Type or paste the code, or choose a photo" in page.text
    assert 'aria-invalid="true"' in page.text


def test_altered_code_is_refused_in_red_with_the_reason(counter: Counter, cast: Cast) -> None:
    document, signature = parts(fresh_code(counter.rx.id))
    page = counter.verify(rebuild({**document, "q": 500}, signature))
    assert page.status_code == 422
    assert 'data-reason="altered"' in page.text
    assert "Altered code: do not dispense" in page.text
    assert patient_name(cast) not in page.text  # nothing about the patient for a refused code
    htmx = counter.verify(rebuild({**document, "q": 500}, signature), htmx=True)
    assert htmx.status_code == 200  # HTMX only swaps 2xx responses in
    assert 'data-reason="altered"' in htmx.text


def test_dispensing_redirects_to_the_success_card_and_lists_the_dispense(
    counter: Counter, cast: Cast
) -> None:
    response = counter.dispense(fresh_code(counter.rx.id), {"days_supply": "6"})
    assert response.status_code == 303
    [row] = dispenses(counter.rx.id)
    assert (row.fill_number, row.quantity, row.lot, row.days_supply) == (1, 21, "LOT-9", 6)
    assert response.headers["location"] == f"/pharmacy?dispensed={row.id}"
    page = counter.client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Dispensed: fill 1 of 3" in page.text
    assert re.search(r'data-testid="refills-left">\s*2\s*<', page.text)
    assert page.text.count('data-testid="dispense-row"') == 1


def test_replaying_the_same_dispense_form_is_refused_as_out_of_date(counter: Counter) -> None:
    code = fresh_code(counter.rx.id)
    assert counter.dispense(code).status_code == 303
    replay = counter.dispense(code)
    assert replay.status_code == 409
    assert 'data-reason="superseded"' in replay.text
    assert "Ask the patient to refresh it." in replay.text
    assert len(dispenses(counter.rx.id)) == 1


def test_last_fill_success_says_a_renewal_is_needed(
    client: TestClient, cast: Cast, prescription_factory: Any
) -> None:
    counter = Counter(client, cast, prescription_factory(cast["doctor"], cast["patient"], refills=0))
    page = counter.dispense(fresh_code(counter.rx.id), htmx=True)
    assert page.status_code == 200
    assert "Dispensed: fill 1 of 1" in page.text
    assert "none: the patient needs a renewal" in page.text


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"lot": "  "}, "lot", "Enter the lot number printed on the pack"),
        ({"quantity": "abc"}, "quantity", "Enter a whole number."),
        ({"quantity": "99"}, "quantity", "Dispense between 1 and 21 units"),
        ({"days_supply": "400"}, "days_supply", "Days of supply must be between 1 and 365."),
    ],
    ids=["lot", "quantity-text", "quantity-over", "days-supply"],
)
def test_dispense_form_errors_show_next_to_their_field(
    counter: Counter, fields: dict[str, str], field: str, message: str
) -> None:
    page = counter.dispense(fresh_code(counter.rx.id), fields)
    assert page.status_code == 422
    assert 'data-testid="dispense-form"' in page.text  # the verified prescription stays on screen
    assert re.search(rf'id="e-{field}">[^<]*{re.escape(message)}', page.text), page.text
    assert dispenses(counter.rx.id) == []


def test_recent_dispenses_paginate(client: TestClient, cast: Cast, prescription_factory: Any) -> None:
    counter = Counter(client, cast, prescription_factory(cast["doctor"], cast["patient"], refills=11))
    for _fill in range(11):
        assert counter.dispense(fresh_code(counter.rx.id), htmx=True).status_code == 200
    first = counter.client.get("/pharmacy")
    assert first.text.count('data-testid="dispense-row"') == 10
    next_url = re.search(r'href="(/pharmacy\?cursor=[^"]+)" rel="next"', first.text)
    assert next_url
    second = counter.client.get(next_url.group(1))
    assert second.text.count('data-testid="dispense-row"') == 1
    assert "1 of 12" in second.text  # the oldest: the first fill
    assert 'href="/pharmacy"' in second.text


def test_the_counter_is_for_pharmacists(client: TestClient, cast: Cast) -> None:
    csrf = web_login(client, cast["doctor"])
    page = client.get("/pharmacy", headers={"Accept": "text/html"})
    assert page.status_code == 403
    posted = client.post("/pharmacy/verify", data={"code": "CSRX1.a.b", "csrf_token": csrf})
    assert posted.status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    page = client.get("/pharmacy", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/login?next=/pharmacy")


def test_forms_without_the_csrf_token_are_refused(counter: Counter) -> None:
    response = counter.client.post(
        "/pharmacy/dispense", data={"code": fresh_code(counter.rx.id), "quantity": "1"}
    )
    assert response.status_code == 403
    assert dispenses(counter.rx.id) == []


def test_the_patient_pages_serve_the_qr_png_and_the_pdf(
    client: TestClient, cast: Cast, prescription_factory: Any
) -> None:
    rx = prescription_factory(cast["doctor"], cast["patient"])
    web_login(client, cast["patient"])
    png = client.get(f"/prescriptions/{rx.id}/qr.png")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert qr.decode(qr.read_image(png.content)).prescription_id == rx.id
    pdf = client.get(f"/prescriptions/{rx.id}/print.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")


def test_the_qr_page_of_someone_elses_prescription_is_not_found(
    client: TestClient, cast: Cast, prescription_factory: Any, make: Any
) -> None:
    rx = prescription_factory(cast["doctor"], cast["patient"])
    web_login(client, make.patient_user())
    page = client.get(f"/prescriptions/{rx.id}/qr.png", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "No such prescription." in page.text
