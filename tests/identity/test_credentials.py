"""Practitioner credential verification: submission rules, the review workflow, who counts as verified,
expiry reminders and expiry, document access, and the API's permission matrix.

The credential routers are not yet registered in ``caresync.app`` (the lead does that), so this module's
``app`` fixture adds them to a fresh application when they are missing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from caresync.core import storage
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.credentials import api as credentials_api
from caresync.identity.credentials import pages as credentials_pages
from caresync.identity.credentials import service
from caresync.identity.credentials.jobs import check_expiry
from caresync.identity.credentials.models import (
    DOCUMENT_TYPES,
    KIND_BY_ROLE,
    CredentialReminder,
    PractitionerCredential,
)
from tests.conftest import API, ROLES, Cast, Factory, Person, login

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(20)
JPEG = b"\xff\xd8\xff\xe0" + bytes(32)
CREDENTIALS = f"{API}/credentials"
ANON = "anonymous"
TODAY = utcnow().date()


@pytest.fixture(scope="module")
def app(database: str) -> FastAPI:
    """The application, with the credential routers added if ``create_app`` does not register them yet."""
    from caresync.app import create_app

    application = create_app()
    served = {route.path for route in application.routes if isinstance(route, APIRoute)}
    for router in (credentials_api.router, credentials_pages.router):
        if not any(route.path in served for route in router.routes if isinstance(route, APIRoute)):
            application.include_router(router)
    return application


def principal_of(person: Person) -> Principal:
    """The principal a signed-in ``person`` acts as."""
    return Principal(person.id, person.role, person.full_name, organisation_id=person.user.organisation_id)


def add_credential(
    person: Person,
    status: str = "pending",
    *,
    expires_on: date | None = None,
    issued_on: date | None = None,
    reason: str = "",
) -> uuid.UUID:
    """A credential row of ``person`` with a stored PDF, written directly (any status, any dates)."""
    expires = expires_on or TODAY + timedelta(days=365)
    with transaction(session_factory()) as s:
        stored = storage.put(s, PDF, allowed_types=DOCUMENT_TYPES)
        credential = PractitionerCredential(
            user_id=person.id,
            kind=KIND_BY_ROLE[person.role],
            registration_number="MD-12345",
            issuing_body="Medical Council",
            file_sha256=stored.sha256,
            media_type=stored.media_type,
            filename="licence.pdf",
            issued_on=issued_on or expires - timedelta(days=730),
            expires_on=expires,
            status=status,
            submitted_at=utcnow(),
            review_reason=reason
            or ("Checked with the register." if status in ("rejected", "suspended") else ""),
        )
        s.add(credential)
        s.flush()
        return credential.id


def submission(**overrides: Any) -> service.Submission:
    values: dict[str, Any] = {
        "registration_number": "gmc-1234/56",
        "issuing_body": "General Medical Council",
        "issued_on": TODAY - timedelta(days=100),
        "expires_on": TODAY + timedelta(days=600),
        "filename": "my licence.pdf",
    }
    values.update(overrides)
    return service.Submission(**values)


def submit(person: Person, document: bytes = PDF, **overrides: Any) -> uuid.UUID:
    """Submit through the service, committed; returns the credential's id."""
    with transaction(session_factory()) as s:
        return service.submit(s, principal_of(person), submission(**overrides), document).id


def review(admin: Person, credential_id: uuid.UUID, decision: str, reason: str = "") -> str:
    with transaction(session_factory()) as s:
        return service.review(s, principal_of(admin), credential_id, decision, reason).status


def statuses(person: Person) -> dict[uuid.UUID, str]:
    with transaction(session_factory()) as s:
        rows = s.execute(
            select(PractitionerCredential.id, PractitionerCredential.status).where(
                PractitionerCredential.user_id == person.id
            )
        )
        return {row.id: row.status for row in rows}


def verified(person: Person, today: date | None = None) -> bool:
    with transaction(session_factory()) as s:
        return service.is_verified(s, person.id, today)


def notifications(person: Person, kind_prefix: str = "credential.") -> list[Notification]:
    with transaction(session_factory()) as s:
        query = select(Notification).where(
            Notification.user_id == person.id, Notification.kind.startswith(kind_prefix)
        )
        return list(s.scalars(query.order_by(Notification.created_at)))


def audit_entries(action: str, outcome: str = "success") -> list[AuditEntry]:
    with transaction(session_factory()) as s:
        query = select(AuditEntry).where(AuditEntry.action == action, AuditEntry.outcome == outcome)
        return list(s.scalars(query.order_by(AuditEntry.seq)))


# --- submission ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "document", "error", "field"),
    [
        ({"registration_number": "ab"}, PDF, ValidationFailed, "registration_number"),
        ({"registration_number": "A" * 41}, PDF, ValidationFailed, "registration_number"),
        ({"registration_number": "MD 1234"}, PDF, ValidationFailed, "registration_number"),
        ({"registration_number": "-12345"}, PDF, ValidationFailed, "registration_number"),
        ({"registration_number": "MD#1234"}, PDF, ValidationFailed, "registration_number"),
        ({"registration_number": "MD-١٢٣٤"}, PDF, ValidationFailed, "registration_number"),
        ({"issuing_body": "   "}, PDF, ValidationFailed, "issuing_body"),
        ({"issuing_body": "C" * 201}, PDF, ValidationFailed, "issuing_body"),
        ({"issued_on": TODAY + timedelta(days=1)}, PDF, ValidationFailed, "issued_on"),
        ({"expires_on": TODAY - timedelta(days=100)}, PDF, ValidationFailed, "expires_on"),
        ({"expires_on": TODAY - timedelta(days=1)}, PDF, ValidationFailed, "expires_on"),
        ({"issued_on": TODAY, "expires_on": TODAY}, PDF, ValidationFailed, "expires_on"),
        ({}, b"just some text", DomainError, "415"),
        ({}, bytes(range(256)), DomainError, "415"),
        ({}, b"", ValidationFailed, "file"),
    ],
    ids=[
        "number-too-short",
        "number-too-long",
        "number-with-space",
        "number-starting-with-dash",
        "number-with-symbol",
        "number-with-non-ascii-digits",
        "issuing-body-blank",
        "issuing-body-too-long",
        "issued-in-the-future",
        "expired-long-ago",
        "expired-yesterday",
        "expires-on-issue-day",
        "text-file",
        "binary-file",
        "empty-file",
    ],
)
def test_submission_is_refused(
    make: Factory, overrides: dict[str, Any], document: bytes, error: type[DomainError], field: str | None
) -> None:
    doctor = make.staff("doctor", verified=False)
    with pytest.raises(error) as raised:
        submit(doctor, document, **overrides)
    if field == "415":
        assert raised.value.status == 415
    else:
        assert raised.value.extra.get("field") == field
    assert statuses(doctor) == {}


@pytest.mark.parametrize(
    ("role", "overrides", "document", "number", "media_type"),
    [
        ("doctor", {}, PDF, "GMC-1234/56", "application/pdf"),
        ("nurse", {"registration_number": " rn123 "}, PNG, "RN123", "image/png"),
        ("pharmacist", {"expires_on": TODAY}, JPEG, "GMC-1234/56", "image/jpeg"),
        ("doctor", {"registration_number": "A" * 40}, PDF, "A" * 40, "application/pdf"),
    ],
    ids=["doctor-pdf", "nurse-png-trimmed", "pharmacist-jpeg-expiring-today", "number-of-40"],
)
def test_submission_is_accepted(
    make: Factory, role: str, overrides: dict[str, Any], document: bytes, number: str, media_type: str
) -> None:
    admin = make.staff("admin")
    clinician = make.staff(role, verified=False)
    credential_id = submit(clinician, document, **overrides)
    with transaction(session_factory()) as s:
        credential = s.get(PractitionerCredential, credential_id)
        assert credential is not None
        assert (
            credential.status,
            credential.kind,
            credential.registration_number,
            credential.media_type,
        ) == (
            "pending",
            KIND_BY_ROLE[role],
            number,
            media_type,
        )
        assert storage.get(credential.file_sha256) == document
    [entry] = audit_entries("credential.submit")
    assert (entry.actor_id, entry.resource_id) == (clinician.id, str(credential_id))
    [note] = notifications(admin)  # the organisation's admin hears of it
    assert note.link == f"/admin/credentials/{credential_id}"
    assert not verified(clinician)


@pytest.mark.parametrize("role", ["admin", "bloodbank_staff", "patient", "donor"])
def test_roles_without_a_licence_cannot_submit(make: Factory, role: str) -> None:
    person = make.user(role)
    with pytest.raises(Forbidden):
        submit(person)
    [denied] = audit_entries("credential.submit", "denied")
    assert denied.actor_id == person.id


# --- the workflow -------------------------------------------------------------------------------------------


def test_pending_approved_suspended(make: Factory) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor", verified=False)
    credential_id = submit(doctor)
    assert review(admin, credential_id, "approve") == "approved"
    assert verified(doctor)
    assert [n.kind for n in notifications(doctor)] == ["credential.approved"]
    with transaction(session_factory()) as s, pytest.raises(ValidationFailed) as no_reason:
        service.suspend(s, principal_of(admin), credential_id, "  ")
    assert no_reason.value.extra == {"field": "reason"}
    with transaction(session_factory()) as s:
        service.suspend(s, principal_of(admin), credential_id, "Struck off the register.")
    assert statuses(doctor) == {credential_id: "suspended"}
    assert not verified(doctor)
    assert notifications(doctor)[-1].kind == "credential.suspended"
    assert "Struck off the register." in notifications(doctor)[-1].body
    review_entry, suspend_entry = (
        audit_entries("credential.review")[0],
        audit_entries("credential.suspend")[0],
    )
    assert json.loads(review_entry.detail)["decision"] == "approve"
    assert (review_entry.actor_id, suspend_entry.actor_id) == (admin.id, admin.id)
    with transaction(session_factory()) as s, pytest.raises(Conflict):
        service.suspend(s, principal_of(admin), credential_id, "again")  # only an approved one


def test_rejection_needs_a_reason_and_the_clinician_reads_it(make: Factory) -> None:
    admin, nurse = make.staff("admin"), make.staff("nurse", verified=False)
    credential_id = submit(nurse)
    with pytest.raises(ValidationFailed) as raised:
        review(admin, credential_id, "reject", " \n ")
    assert raised.value.extra == {"field": "reason"}
    assert statuses(nurse) == {credential_id: "pending"}
    assert review(admin, credential_id, "reject", "The document is unreadable.") == "rejected"
    with transaction(session_factory()) as s:
        credential = s.get(PractitionerCredential, credential_id)
        assert credential is not None
        assert (credential.review_reason, credential.reviewed_by) == ("The document is unreadable.", admin.id)
    [note] = notifications(nurse)
    assert (note.kind, "The document is unreadable." in note.body) == ("credential.rejected", True)
    with pytest.raises(Conflict):
        review(admin, credential_id, "approve")  # decided already
    with pytest.raises(ValidationFailed):
        review(admin, credential_id, "maybe")


def test_resubmission_replaces_the_pending_one(make: Factory) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor", verified=False)
    first = submit(doctor)
    second = submit(doctor, PNG, registration_number="GMC-99999")
    assert statuses(doctor) == {first: "superseded", second: "pending"}
    rejected = second
    review(admin, rejected, "reject", "Wrong number.")
    third = submit(doctor, JPEG)
    assert statuses(doctor) == {first: "superseded", second: "rejected", third: "pending"}
    with transaction(session_factory()) as s:
        current = service.current(s, doctor.id)
        assert current is not None
        assert current.id == third
        assert [c.id for c in service.history(s, doctor.id)] == [third, second]


def test_a_renewal_waits_while_the_approved_licence_stays_valid(make: Factory) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor", verified=False)
    old = submit(doctor, expires_on=TODAY + timedelta(days=20))
    review(admin, old, "approve")
    renewal = submit(doctor, issued_on=TODAY, expires_on=TODAY + timedelta(days=1000))
    assert statuses(doctor) == {old: "approved", renewal: "pending"}
    assert verified(doctor)
    review(admin, renewal, "approve")
    assert statuses(doctor) == {old: "superseded", renewal: "approved"}
    assert verified(doctor, TODAY + timedelta(days=500))


def test_an_expired_pending_licence_cannot_be_approved(make: Factory) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor", verified=False)
    lapsed = add_credential(doctor, expires_on=TODAY - timedelta(days=1))
    with pytest.raises(Conflict):
        review(admin, lapsed, "approve")
    assert statuses(doctor) == {lapsed: "pending"}


@pytest.mark.parametrize(
    "broken",
    [
        {"status": "pending"},  # a second pending credential
        {"status": "rejected", "review_reason": ""},
        {"status": "suspended", "review_reason": ""},
        {"issued_on": TODAY, "expires_on": TODAY},
        {"status": "revoked"},
        {"kind": "vet_licence"},
        {"registration_number": "ab"},
    ],
    ids=[
        "two-pending",
        "rejected-without-reason",
        "suspended-without-reason",
        "expires-on-issue",
        "bad-status",
        "bad-kind",
        "short-number",
    ],
)
def test_the_database_refuses_broken_rows(make: Factory, broken: dict[str, Any]) -> None:
    doctor = make.staff("doctor", verified=False)
    existing = add_credential(doctor, "pending")
    with transaction(session_factory()) as s:
        template = s.get(PractitionerCredential, existing)
        assert template is not None
        values = {
            c.key: getattr(template, c.key) for c in PractitionerCredential.__table__.columns if c.key != "id"
        }
    values.update({"status": "rejected", "review_reason": "x", **broken})
    with transaction(session_factory()) as s:
        s.add(PractitionerCredential(**values))
        with pytest.raises(IntegrityError):
            s.flush()
        s.rollback()


def test_two_approved_credentials_are_refused_by_the_database(make: Factory) -> None:
    doctor = make.staff("doctor", verified=False)
    add_credential(doctor, "approved")
    with pytest.raises(IntegrityError):
        add_credential(doctor, "approved")


# --- who is verified ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expires_in_days", "expected"),
    [
        (None, None, False),
        ("pending", 100, False),
        ("approved", 100, True),
        ("approved", 0, True),  # valid through its expiry date
        ("approved", -1, False),  # approved but expired (the job has not run yet)
        ("rejected", 100, False),
        ("suspended", 100, False),
        ("expired", -1, False),
        ("superseded", 100, False),
    ],
    ids=[
        "none",
        "pending",
        "approved",
        "approved-expiring-today",
        "approved-but-expired",
        "rejected",
        "suspended",
        "expired",
        "superseded",
    ],
)
def test_is_verified(make: Factory, status: str | None, expires_in_days: int | None, expected: bool) -> None:
    doctor, colleague = make.staff("doctor", verified=False), make.staff("doctor", verified=False)
    add_credential(colleague, "approved")  # someone else's valid licence never counts for the doctor
    if status is not None:
        assert expires_in_days is not None
        add_credential(doctor, status, expires_on=TODAY + timedelta(days=expires_in_days))
    assert verified(doctor, TODAY) is expected
    with transaction(session_factory()) as s:
        ids = set(s.scalars(service.verified_user_ids(TODAY)))
    assert ids == ({doctor.id} if expected else set()) | {colleague.id}


# --- organisations ------------------------------------------------------------------------------------------


def test_an_admin_of_another_organisation_sees_nothing(make: Factory) -> None:
    doctor = make.staff("doctor", verified=False)
    credential_id = submit(doctor)
    stranger = make.staff("admin", make.org())
    for call in (
        lambda s: service.review(s, principal_of(stranger), credential_id, "approve"),
        lambda s: service.suspend(s, principal_of(stranger), credential_id, "no"),
        lambda s: service.get(s, principal_of(stranger), credential_id),
        lambda s: service.document(s, principal_of(stranger), credential_id),
    ):
        with pytest.raises(NotFound), transaction(session_factory()) as s:
            call(s)
    with transaction(session_factory()) as s:
        queue = service.pending_for_review(s, principal_of(stranger))
    assert queue.items == []
    assert statuses(doctor) == {credential_id: "pending"}
    denied = [e.action for e in audit_entries("credential.review", "denied")]
    assert denied == ["credential.review"]
    assert len(audit_entries("credential.document", "denied")) == 1


def test_the_queue_is_oldest_first_and_paginated(make: Factory) -> None:
    admin = make.staff("admin")
    doctors = [make.staff("doctor", verified=False) for _ in range(3)]
    ids = [submit(d) for d in doctors]
    with transaction(session_factory()) as s:
        first = service.pending_for_review(s, principal_of(admin), limit=2)
        second = service.pending_for_review(s, principal_of(admin), limit=2, cursor=first.next_cursor)
    assert [c.id for c, _holder in first.items] + [c.id for c, _holder in second.items] == ids
    assert second.next_cursor is None
    assert [h.id for _c, h in first.items] == [d.id for d in doctors[:2]]
    with transaction(session_factory()) as s, pytest.raises(ValidationFailed):
        service.pending_for_review(s, principal_of(admin), status="lost")


# --- expiry reminders and expiry ----------------------------------------------------------------------------


def at(day: date) -> datetime:
    return datetime.combine(day, time(5, 15), tzinfo=UTC)


def run(task: Callable[[Any, datetime], int], day: date) -> int:
    with transaction(session_factory()) as s:
        return task(s, at(day))


def test_reminders_at_30_and_7_days_are_sent_once(make: Factory, outbox: Any) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor", verified=False)
    other_admin = make.staff("admin", make.org())
    expires = TODAY + timedelta(days=400)
    credential_id = add_credential(doctor, "approved", expires_on=expires)
    send = service.send_expiry_reminders
    assert run(send, expires - timedelta(days=31)) == 0
    assert run(send, expires - timedelta(days=30)) == 1
    assert run(send, expires - timedelta(days=30)) == 0  # once
    assert run(send, expires - timedelta(days=20)) == 0  # the 30-day reminder was sent
    assert run(send, expires - timedelta(days=7)) == 1
    assert run(send, expires - timedelta(days=3)) == 0
    assert run(send, expires + timedelta(days=1)) == 0  # expired: the expiry job's business
    assert [n.kind for n in notifications(doctor)] == ["credential.30d", "credential.7d"]
    assert [n.kind for n in notifications(admin)] == ["credential.30d", "credential.7d"]
    assert notifications(admin)[0].link == f"/admin/credentials/{credential_id}"
    assert doctor.full_name in notifications(admin)[0].title
    assert notifications(other_admin) == []
    with transaction(session_factory()) as s:
        kinds = set(
            s.scalars(
                select(CredentialReminder.kind).where(CredentialReminder.credential_id == credential_id)
            )
        )
    assert kinds == {"30d", "7d"}
    emails = [p.read_text() for p in outbox.iterdir()]
    assert len(emails) == 2
    assert all(doctor.email in e for e in emails)
    assert len(audit_entries("credential.reminder")) == 2


def test_a_licence_approved_late_gets_only_the_nearest_reminder(make: Factory) -> None:
    doctor = make.staff("doctor", verified=False)
    expires = TODAY + timedelta(days=5)
    add_credential(doctor, "approved", expires_on=expires)
    add_credential(
        make.staff("nurse", verified=False), "pending", expires_on=expires
    )  # pending: not reminded
    assert run(service.send_expiry_reminders, TODAY) == 1
    assert run(service.send_expiry_reminders, TODAY + timedelta(days=1)) == 0
    assert [n.kind for n in notifications(doctor)] == ["credential.7d"]


def test_expiry_sets_expired_and_notifies_once(make: Factory) -> None:
    admin, doctor, nurse = (
        make.staff("admin"),
        make.staff("doctor", verified=False),
        make.staff("nurse", verified=False),
    )
    expires = TODAY + timedelta(days=10)
    approved = add_credential(doctor, "approved", expires_on=expires)
    pending = add_credential(nurse, "pending", expires_on=expires)
    suspended = add_credential(make.staff("pharmacist", verified=False), "suspended", expires_on=expires)
    assert run(service.expire_lapsed, expires) == 0  # valid through its expiry date
    assert verified(doctor, expires)
    assert run(service.expire_lapsed, expires + timedelta(days=1)) == 2
    assert run(service.expire_lapsed, expires + timedelta(days=2)) == 0
    assert statuses(doctor) == {approved: "expired"}
    assert statuses(nurse) == {pending: "expired"}
    with transaction(session_factory()) as s:
        assert s.get(PractitionerCredential, suspended).status == "suspended"  # type: ignore[union-attr]
    assert [n.kind for n in notifications(doctor)] == ["credential.expired"]
    assert [n.kind for n in notifications(admin)] == ["credential.expired", "credential.expired"]
    assert not verified(doctor, expires + timedelta(days=1))
    assert len(audit_entries("credential.expire")) == 2


def test_the_daily_job_expires_and_reminds(make: Factory) -> None:
    lapsed_doctor, soon_doctor = make.staff("doctor", verified=False), make.staff("doctor", verified=False)
    lapsed = add_credential(lapsed_doctor, "approved", expires_on=TODAY - timedelta(days=1))
    add_credential(soon_doctor, "approved", expires_on=TODAY + timedelta(days=30))
    assert check_expiry.call_local() == {"expired": 1, "reminded": 1}
    assert check_expiry.call_local() == {"expired": 0, "reminded": 0}
    assert statuses(lapsed_doctor) == {lapsed: "expired"}


# --- the API ------------------------------------------------------------------------------------------------


def api_submit(
    client: TestClient, headers: dict[str, str], document: tuple[str, bytes, str] | None, **data: Any
) -> Any:
    form = {
        "registration_number": "NMC-778899",
        "issuing_body": "Nursing Council",
        "issued_on": (TODAY - timedelta(days=30)).isoformat(),
        "expires_on": (TODAY + timedelta(days=700)).isoformat(),
        **data,
    }
    files = {"document": document} if document else None
    return client.post(CREDENTIALS, data=form, files=files, headers=headers)


def test_api_submit_review_and_me(client: TestClient, cast: Cast, make: Factory) -> None:
    nurse = make.staff("nurse", cast.org, verified=False)
    nurse_headers = login(client, nurse.email, nurse.password)
    created = api_submit(client, nurse_headers, ("scan.png", PNG, "image/png"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["status"], body["kind"], body["media_type"], body["filename"]) == (
        "pending",
        "nursing_registration",
        "image/png",
        "scan.png",
    )
    me = client.get(f"{CREDENTIALS}/me", headers=nurse_headers).json()
    assert (me["verified"], [c["id"] for c in me["credentials"]]) == (False, [body["id"]])

    admin_headers = login(client, cast["admin"].email, cast["admin"].password)
    queue = client.get(CREDENTIALS, headers=admin_headers).json()
    assert [c["id"] for c in queue["items"]] == [body["id"]]
    no_reason = client.post(
        f"{CREDENTIALS}/{body['id']}/review", json={"decision": "reject"}, headers=admin_headers
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["field"] == "reason"
    approved = client.post(
        f"{CREDENTIALS}/{body['id']}/review", json={"decision": "approve"}, headers=admin_headers
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert client.get(f"{CREDENTIALS}/me", headers=nurse_headers).json()["verified"] is True
    again = client.post(
        f"{CREDENTIALS}/{body['id']}/review", json={"decision": "approve"}, headers=admin_headers
    )
    assert again.status_code == 409
    suspended = client.post(
        f"{CREDENTIALS}/{body['id']}/suspend", json={"reason": "Under investigation."}, headers=admin_headers
    )
    assert suspended.status_code == 200
    assert suspended.json()["review_reason"] == "Under investigation."
    assert (
        client.get(f"{CREDENTIALS}?status=suspended", headers=admin_headers).json()["items"][0]["id"]
        == body["id"]
    )
    assert client.get(f"{CREDENTIALS}?status=nonsense", headers=admin_headers).status_code == 422


@pytest.mark.parametrize(
    ("document", "data", "status", "text"),
    [
        (None, {}, 422, "Attach the licence"),
        (("licence.txt", b"I am a doctor", "text/plain"), {}, 415, "accepted"),
        (("licence.pdf", b"not really a pdf\x00\x01", "application/pdf"), {}, 415, "accepted"),
        (("licence.pdf", PDF, "application/pdf"), {"registration_number": "no"}, 422, "registration number"),
        (("licence.pdf", PDF, "application/pdf"), {"expires_on": "2020-13-40"}, 422, "expires_on"),
        (("licence.pdf", PDF, "application/pdf"), {"issuing_body": ""}, 422, "issuing"),
    ],
    ids=["no-document", "text-document", "fake-pdf", "bad-number", "bad-date", "no-issuing-body"],
)
def test_api_submission_errors(
    client: TestClient, make: Factory, document: Any, data: dict[str, str], status: int, text: str
) -> None:
    nurse = make.staff("nurse", verified=False)
    response = api_submit(client, login(client, nurse.email, nurse.password), document, **data)
    assert response.status_code == status, response.text
    assert text in response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert statuses(nurse) == {}


def test_document_access(client: TestClient, cast: Cast, make: Factory) -> None:
    doctor = cast["doctor"]
    credential_id = submit(doctor, PNG)
    url = f"{CREDENTIALS}/{credential_id}/document"
    own = client.get(url, headers=login(client, doctor.email, doctor.password))
    assert (own.status_code, own.content, own.headers["content-type"]) == (200, PNG, "image/png")
    assert own.headers["x-frame-options"] == "SAMEORIGIN"
    assert own.headers["content-disposition"].startswith("inline")
    admin = client.get(
        f"{url}?download=true", headers=login(client, cast["admin"].email, cast["admin"].password)
    )
    assert (admin.status_code, admin.content) == (200, PNG)
    assert admin.headers["content-disposition"].startswith("attachment")
    stranger = make.staff("admin", make.org())
    for person in (cast["nurse"], cast["pharmacist"], cast["patient"], stranger):
        refused = client.get(url, headers=login(client, person.email, person.password))
        assert refused.status_code == 404, person.role
        assert PNG not in refused.content
    readers = {e.actor_id for e in audit_entries("credential.document")}
    refused_by = {e.actor_id for e in audit_entries("credential.document", "denied")}
    assert readers == {doctor.id, cast["admin"].id}
    assert refused_by == {cast["nurse"].id, cast["pharmacist"].id, cast["patient"].id, stranger.id}


# --- the API permission matrix ------------------------------------------------------------------------------


def expect(**codes: int) -> dict[str, int]:
    """403 for every role not named, 401 anonymously."""
    return {**dict.fromkeys(ROLES, 403), ANON: 401, **codes}


CLINICIANS_OK = {"doctor": 200, "nurse": 200, "pharmacist": 200}
HOLDER_AND_ADMIN = {**dict.fromkeys(ROLES, 404), "doctor": 200, "admin": 200, ANON: 401}


@dataclass
class World:
    """The cast, plus fresh credentials of new doctors of the cast's hospital."""

    cast: Cast
    make: Factory
    doctors_credential: uuid.UUID

    def fresh(self, status: str) -> uuid.UUID:
        return add_credential(self.make.staff("doctor", self.cast.org, verified=False), status)


@dataclass
class Call:
    """How to call one route, and what each role gets."""

    expect: dict[str, int]
    call: Callable[[TestClient, World, dict[str, str]], Any]


API_CASES: dict[tuple[str, str], Call] = {
    ("GET", "/api/v1/credentials/me"): Call(
        expect(**CLINICIANS_OK), lambda c, w, h: c.get(f"{CREDENTIALS}/me", headers=h)
    ),
    ("POST", "/api/v1/credentials"): Call(
        expect(doctor=201, nurse=201, pharmacist=201),
        lambda c, w, h: api_submit(c, h, ("licence.pdf", PDF, "application/pdf")),
    ),
    ("GET", "/api/v1/credentials"): Call(expect(admin=200), lambda c, w, h: c.get(CREDENTIALS, headers=h)),
    ("GET", "/api/v1/credentials/{credential_id}"): Call(
        HOLDER_AND_ADMIN, lambda c, w, h: c.get(f"{CREDENTIALS}/{w.doctors_credential}", headers=h)
    ),
    ("GET", "/api/v1/credentials/{credential_id}/document"): Call(
        HOLDER_AND_ADMIN, lambda c, w, h: c.get(f"{CREDENTIALS}/{w.doctors_credential}/document", headers=h)
    ),
    ("POST", "/api/v1/credentials/{credential_id}/review"): Call(
        expect(admin=200),
        lambda c, w, h: c.post(
            f"{CREDENTIALS}/{w.fresh('pending')}/review", json={"decision": "approve"}, headers=h
        ),
    ),
    ("POST", "/api/v1/credentials/{credential_id}/suspend"): Call(
        expect(admin=200),
        lambda c, w, h: c.post(
            f"{CREDENTIALS}/{w.fresh('approved')}/suspend", json={"reason": "Check."}, headers=h
        ),
    ),
}


def router_routes(router: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a router."""
    return {(m, r.path) for r in router.routes if isinstance(r, APIRoute) for m in r.methods or ()}


def test_the_api_matrix_covers_every_route() -> None:
    served = router_routes(credentials_api.router)
    assert served == set(API_CASES), f"missing: {served - set(API_CASES)}; extra: {set(API_CASES) - served}"


@pytest.mark.parametrize("role", [*ROLES, ANON])
def test_api_permission_matrix(client: TestClient, cast: Cast, make: Factory, role: str) -> None:
    world = World(cast, make, submit(cast["doctor"]))
    person = cast[role] if role != ANON else None
    headers = login(client, person.email, person.password) if person else {}
    got = {route: case.call(client, world, headers).status_code for route, case in API_CASES.items()}
    assert got == {route: case.expect[role] for route, case in API_CASES.items()}
    if person is not None:
        with transaction(session_factory()) as s:
            denials = s.scalar(
                select(func.count()).where(AuditEntry.actor_id == person.id, AuditEntry.outcome == "denied")
            )
        assert denials == sum(1 for case in API_CASES.values() if case.expect[role] in (403, 404))
