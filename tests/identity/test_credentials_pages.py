"""Credential pages: a clinician submits their licence, an administrator reviews it (with the document
preview), rejects with a reason or approves, and suspends after confirming; plus the pages' permission
matrix."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.identity.credentials import pages as credentials_pages
from tests.conftest import ROLES, Cast, Factory, Person, web_login
from tests.identity.test_credentials import (
    PDF,
    PNG,
    TODAY,
    add_credential,
    app,  # noqa: F401  (the application with the credential routers)
    router_routes,
    statuses,
    submit,
    verified,
)

ANON = "anonymous"


def form(csrf: str, **values: str) -> dict[str, str]:
    base = {
        "csrf_token": csrf,
        "registration_number": "MC-445566",
        "issuing_body": "Medical Council",
        "issued_on": TODAY.replace(year=TODAY.year - 1).isoformat(),
        "expires_on": TODAY.replace(year=TODAY.year + 2).isoformat(),
    }
    return {**base, **values}


def test_a_clinician_submits_their_licence(client: TestClient, make: Factory) -> None:
    doctor = make.staff("doctor", verified=False)
    csrf = web_login(client, doctor)
    page = client.get("/me/credentials")
    assert page.status_code == 200
    assert 'data-testid="submit-form"' in page.text
    assert "Not verified" in page.text
    assert "Nothing submitted yet" in page.text
    sent = client.post(
        "/me/credentials",
        data=form(csrf),
        files={"document": ("licence.pdf", PDF, "application/pdf")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/me/credentials?submitted=1"
    [credential_id] = statuses(doctor)
    after = client.get("/me/credentials?submitted=1")
    assert 'data-testid="submitted"' in after.text
    assert "Waiting for review" in after.text
    assert "MC-445566" in after.text
    assert f"/api/v1/credentials/{credential_id}/document" in after.text
    assert "This replaces the submission still waiting for review." in after.text


@pytest.mark.parametrize(
    ("values", "document", "message"),
    [
        ({"registration_number": "#"}, ("l.pdf", PDF, "application/pdf"), "3 to 40 letters"),
        ({"expires_on": ""}, ("l.pdf", PDF, "application/pdf"), "Enter the expiry date."),
        ({"issuing_body": ""}, ("l.pdf", PDF, "application/pdf"), "Name the body"),
        ({}, ("l.txt", b"trust me", "text/plain"), "accepted: application/pdf"),
        ({}, None, "Attach the licence document"),
    ],
    ids=["bad-number", "no-expiry", "no-issuing-body", "text-document", "no-document"],
)
def test_submission_errors_are_shown_on_the_form(
    client: TestClient, make: Factory, values: dict[str, str], document: Any, message: str
) -> None:
    nurse = make.staff("nurse", verified=False)
    csrf = web_login(client, nurse)
    files = {"document": document} if document else None
    response = client.post("/me/credentials", data=form(csrf, **values), files=files)
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert statuses(nurse) == {}


def test_an_admin_rejects_then_approves(client: TestClient, cast: Cast, make: Factory) -> None:
    doctor = make.staff("doctor", cast.org, verified=False)
    first = submit(doctor, PNG)
    csrf = web_login(client, cast["admin"])
    queue = client.get("/admin/credentials")
    assert queue.status_code == 200
    assert doctor.full_name in queue.text
    assert f"/admin/credentials/{first}" in queue.text
    detail = client.get(f"/admin/credentials/{first}")
    assert 'data-testid="preview-image"' in detail.text
    assert f'src="/api/v1/credentials/{first}/document"' in detail.text
    assert client.get(f"/api/v1/credentials/{first}/document").content == PNG  # what the preview loads

    no_reason = client.post(
        f"/admin/credentials/{first}/review", data={"csrf_token": csrf, "decision": "reject", "reason": " "}
    )
    assert no_reason.status_code == 422
    assert "Give the reason" in no_reason.text
    assert statuses(doctor) == {first: "pending"}
    rejected = client.post(
        f"/admin/credentials/{first}/review",
        data={"csrf_token": csrf, "decision": "reject", "reason": "The scan is cut off."},
        follow_redirects=False,
    )
    assert rejected.status_code == 303
    assert rejected.headers["location"] == "/admin/credentials?done=rejected"
    assert statuses(doctor) == {first: "rejected"}

    second = submit(doctor, PDF)
    assert 'data-testid="preview-pdf"' in client.get(f"/admin/credentials/{second}").text
    approved = client.post(
        f"/admin/credentials/{second}/review",
        data={"csrf_token": csrf, "decision": "approve"},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    assert statuses(doctor) == {first: "rejected", second: "approved"}
    assert verified(doctor)
    assert "Nothing to review" in client.get("/admin/credentials").text
    assert doctor.full_name in client.get("/admin/credentials?status=approved").text

    client.cookies.clear()
    web_login(client, doctor)
    mine = client.get("/me/credentials").text
    assert "Verified" in mine
    assert "The scan is cut off." in mine


def test_suspension_asks_for_confirmation_and_a_reason(client: TestClient, cast: Cast, make: Factory) -> None:
    nurse = make.staff("nurse", cast.org, verified=False)
    credential_id = add_credential(nurse, "approved")
    csrf = web_login(client, cast["admin"])
    detail = client.get(f"/admin/credentials/{credential_id}")
    assert f'href="/admin/credentials/{credential_id}/suspend"' in detail.text
    confirm = client.get(f"/admin/credentials/{credential_id}/suspend")
    assert confirm.status_code == 200
    assert 'data-testid="confirm-suspend"' in confirm.text
    assert statuses(nurse) == {credential_id: "approved"}  # looking at the confirmation changes nothing
    missing = client.post(
        f"/admin/credentials/{credential_id}/suspend", data={"csrf_token": csrf, "reason": ""}
    )
    assert missing.status_code == 422
    assert "Give the reason" in missing.text
    done = client.post(
        f"/admin/credentials/{credential_id}/suspend",
        data={"csrf_token": csrf, "reason": "Registration lapsed at the council."},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/credentials/{credential_id}?suspended=1"
    assert statuses(nurse) == {credential_id: "suspended"}
    assert not verified(nurse)
    again = client.post(
        f"/admin/credentials/{credential_id}/suspend", data={"csrf_token": csrf, "reason": "Twice."}
    )
    assert again.status_code == 409
    assert "only an approved one" in again.text


def test_forms_need_the_csrf_token(client: TestClient, cast: Cast, make: Factory) -> None:
    doctor = make.staff("doctor", cast.org, verified=False)
    credential_id = submit(doctor)
    web_login(client, cast["admin"])
    forged = client.post(f"/admin/credentials/{credential_id}/review", data={"decision": "approve"})
    assert forged.status_code == 403
    assert statuses(doctor) == {credential_id: "pending"}


# --- the pages' permission matrix ---------------------------------------------------------------------------


def expect(**codes: int) -> dict[str, int]:
    """403 for every role not named; signed-out visitors are sent to sign in."""
    return {**dict.fromkeys(ROLES, 403), ANON: 303, **codes}


HOLDER_AND_ADMIN = {**dict.fromkeys(ROLES, 404), "doctor": 200, "admin": 200, ANON: 303}


@dataclass
class World:
    """The cast, the doctor's pending credential, and fresh credentials of new doctors."""

    cast: Cast
    make: Factory
    doctors_credential: uuid.UUID

    def fresh(self, status: str) -> uuid.UUID:
        return add_credential(self.make.staff("doctor", self.cast.org, verified=False), status)


@dataclass
class Call:
    """How to call one page, and what each role gets."""

    expect: dict[str, int]
    call: Callable[[TestClient, World, str], Any]


def _post(client: TestClient, url: str, csrf: str, **data: str) -> Any:
    return client.post(url, data={"csrf_token": csrf, **data}, follow_redirects=False)


PAGE_CASES: dict[tuple[str, str], Call] = {
    ("GET", "/me/credentials"): Call(
        expect(doctor=200, nurse=200, pharmacist=200),
        lambda c, w, t: c.get("/me/credentials", follow_redirects=False),
    ),
    ("POST", "/me/credentials"): Call(
        expect(doctor=303, nurse=303, pharmacist=303),
        lambda c, w, t: c.post(
            "/me/credentials",
            data=form(t),
            files={"document": ("l.pdf", PDF, "application/pdf")},
            follow_redirects=False,
        ),
    ),
    ("GET", "/admin/credentials"): Call(
        expect(admin=200), lambda c, w, t: c.get("/admin/credentials", follow_redirects=False)
    ),
    ("GET", "/admin/credentials/{credential_id}"): Call(
        HOLDER_AND_ADMIN,
        lambda c, w, t: c.get(f"/admin/credentials/{w.doctors_credential}", follow_redirects=False),
    ),
    ("POST", "/admin/credentials/{credential_id}/review"): Call(
        expect(admin=303),
        lambda c, w, t: _post(c, f"/admin/credentials/{w.fresh('pending')}/review", t, decision="approve"),
    ),
    ("GET", "/admin/credentials/{credential_id}/suspend"): Call(
        expect(admin=200),
        lambda c, w, t: c.get(f"/admin/credentials/{w.fresh('approved')}/suspend", follow_redirects=False),
    ),
    ("POST", "/admin/credentials/{credential_id}/suspend"): Call(
        expect(admin=303),
        lambda c, w, t: _post(c, f"/admin/credentials/{w.fresh('approved')}/suspend", t, reason="Check."),
    ),
}


def test_the_page_matrix_covers_every_route() -> None:
    served = router_routes(credentials_pages.router)
    assert served == set(PAGE_CASES), (
        f"missing: {served - set(PAGE_CASES)}; extra: {set(PAGE_CASES) - served}"
    )


@pytest.mark.parametrize("role", [*ROLES, ANON])
def test_page_permission_matrix(client: TestClient, cast: Cast, make: Factory, role: str) -> None:
    world = World(cast, make, submit(cast["doctor"]))
    person: Person | None = cast[role] if role != ANON else None
    csrf = web_login(client, person) if person else ""
    got = {route: case.call(client, world, csrf).status_code for route, case in PAGE_CASES.items()}
    assert got == {route: case.expect[role] for route, case in PAGE_CASES.items()}


def test_an_admin_of_another_organisation_gets_404(client: TestClient, cast: Cast, make: Factory) -> None:
    doctor = make.staff("doctor", cast.org, verified=False)
    credential_id = submit(doctor)
    stranger = make.staff("admin", make.org())
    csrf = web_login(client, stranger)
    assert client.get(f"/admin/credentials/{credential_id}").status_code == 404
    refused = _post(client, f"/admin/credentials/{credential_id}/review", csrf, decision="approve")
    assert refused.status_code == 404
    assert doctor.full_name not in client.get("/admin/credentials").text
    assert statuses(doctor) == {credential_id: "pending"}
