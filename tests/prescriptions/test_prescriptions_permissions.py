"""Who may do what with prescriptions: the permission matrix of every route of the prescriptions router
(each role on the cast's patient, and nobody on a stranger's, whose name never leaks), and the consent rule:
a clinician the patient consented to for medications reads them but never prescribes; one consented for lab
results only, or a care team under a "consent-only" policy, does not see them; a nurse cannot prescribe and
a doctor without a care relationship finds no patient. Denials are audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.db import utcnow
from caresync.prescriptions import api
from caresync.prescriptions.models import Prescription, PrescriptionRequest
from tests.conftest import ROLES, Cast, Person, login
from tests.prescriptions.conftest import P, PrescriptionFactory, rx_body
from tests.records.test_consent import set_policy

ANON = "anonymous"
ALL = (*ROLES, ANON)


def _only(**allowed: int) -> Callable[[int], dict[str, int]]:
    """A row of the matrix: ``allowed`` roles get their status, the rest ``default``, anonymous 401."""

    def row(default: int) -> dict[str, int]:
        return {**dict.fromkeys(ROLES, default), **allowed, ANON: 401}

    return row


MATRIX: dict[tuple[str, str], dict[str, int]] = {
    ("GET", f"{P}/formulary"): _only()(200),
    ("GET", P): _only(doctor=200, nurse=200, patient=200)(404),
    ("POST", P): _only(doctor=201)(403),
    ("GET", f"{P}/{{prescription_id}}"): _only(doctor=200, nurse=200, patient=200)(404),
    ("POST", f"{P}/{{prescription_id}}/status"): _only(doctor=200)(403),
    ("POST", f"{P}/{{prescription_id}}/requests"): _only(patient=201, doctor=403, nurse=403)(404),
    ("GET", f"{P}/requests"): _only(doctor=200, patient=200)(403),
    ("POST", f"{P}/requests/{{request_id}}/decision"): _only(doctor=200)(403),
    ("POST", f"{P}/requests/{{request_id}}/withdraw"): _only(patient=200, doctor=403, nurse=403)(404),
}
# The same routes on a patient nobody in the hospital cares for: only role checks may answer before 404.
STRANGER: dict[tuple[str, str], dict[str, int]] = {
    ("GET", P): _only()(404),
    ("POST", P): _only(doctor=404)(403),
    ("GET", f"{P}/{{prescription_id}}"): _only()(404),
    ("POST", f"{P}/{{prescription_id}}/status"): _only(doctor=404)(403),
    ("POST", f"{P}/{{prescription_id}}/requests"): _only()(404),
    ("POST", f"{P}/requests/{{request_id}}/decision"): _only(doctor=404)(403),
    ("POST", f"{P}/requests/{{request_id}}/withdraw"): _only()(404),
}


def test_the_matrix_names_every_route_of_the_router() -> None:
    routes = {
        (method, route.path)
        for route in api.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert routes == set(MATRIX)
    assert set(STRANGER) <= set(MATRIX)


def _pending_request(tx: Any, prescription: Prescription, patient: Person) -> uuid.UUID:
    with tx() as s:
        request = PrescriptionRequest(
            prescription_id=prescription.id,
            patient_id=prescription.patient_id,
            kind="refill",
            status="pending",
            requested_by=patient.id,
            requested_at=utcnow(),
        )
        s.add(request)
        s.flush()
        return request.id


def _call(
    client: TestClient,
    route: tuple[str, str],
    headers: dict[str, str],
    patient_id: uuid.UUID,
    prescription: Prescription,
    request_id: uuid.UUID,
) -> Any:
    method, path = route
    url = path.format(prescription_id=prescription.id, request_id=request_id)
    if route == ("GET", P):
        return client.get(url, params={"patient_id": str(patient_id)}, headers=headers)
    if method == "GET":
        return client.get(url, headers=headers)
    bodies = {
        P: rx_body(prescription.patient, acknowledge_warnings=True, override_reason="matrix"),
        f"{P}/{{prescription_id}}/status": {"status": "on-hold", "reason": "Review"},
        f"{P}/{{prescription_id}}/requests": {"kind": "refill"},
        f"{P}/requests/{{request_id}}/decision": {"decision": "approve"},
    }
    return client.post(url, json=bodies.get(path, {}), headers=headers)


def test_the_permission_matrix(
    client: TestClient, cast: Cast, tx: Any, prescription_factory: PrescriptionFactory
) -> None:
    """Every role on every route, each call on a fresh prescription (with a pending request for the request
    routes) of the cast's patient, and on one of a stranger's; the stranger's name never appears in an
    answer."""
    tokens = {role: login(client, cast[role].email, cast[role].password) for role in ROLES}
    tokens[ANON] = {}
    stranger = cast.other_patient
    problems = []
    for route in MATRIX:
        for role in ALL:
            for target, table in (("own", MATRIX), ("stranger", STRANGER)):
                if route not in table:
                    continue
                patient = cast["patient"].patient if target == "own" else stranger
                assert patient is not None
                prescription = prescription_factory(cast["doctor"], patient, refills=2, dispense_count=1)
                needs_request = "{request_id}" in route[1]
                request_id = (
                    _pending_request(tx, prescription, cast["patient"]) if needs_request else uuid.uuid4()
                )
                response = _call(client, route, tokens[role], patient.id, prescription, request_id)
                wanted = table[route][role]
                if response.status_code != wanted:
                    problems.append(f"{route} as {role} ({target}): {response.status_code} != {wanted}")
                if target == "stranger" and stranger.family_name in response.text:
                    problems.append(f"{route} as {role}: leaks the stranger's name")
    assert not problems, "\n".join(problems)


# --- consent -----------------------------------------------------------------------------------------------


def _grant(client: TestClient, cast: Cast, sign_in: Any, clinician: Person, categories: list[str]) -> None:
    body = {
        "patient_id": str(cast["patient"].patient_id),
        "categories": categories,
        "practitioner_id": str(clinician.id),
    }
    response = client.post("/api/v1/records/consents", json=body, headers=sign_in(cast["patient"]))
    assert response.status_code == 201, response.text


def _reads(
    client: TestClient, headers: dict[str, str], cast: Cast, prescription: Prescription
) -> tuple[int, int]:
    listed = client.get(P, params={"patient_id": str(cast["patient"].patient_id)}, headers=headers)
    one = client.get(f"{P}/{prescription.id}", headers=headers)
    return listed.status_code, one.status_code


def test_a_consent_for_medications_lets_a_clinician_read_but_not_prescribe(
    client: TestClient,
    cast: Cast,
    make: Any,
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"])
    consulted = make.staff("doctor", make.org())
    _grant(client, cast, sign_in, consulted, ["medication"])
    headers = sign_in(consulted)
    assert _reads(client, headers, cast, prescription) == (200, 200)
    assert client.post(P, json=rx_body(cast["patient"]), headers=headers).status_code == 404
    stop = client.post(
        f"{P}/{prescription.id}/status", json={"status": "stopped", "reason": "x"}, headers=headers
    )
    assert stop.status_code == 404
    with tx() as s:
        read = s.execute(
            select(AuditEntry).where(
                AuditEntry.action == "prescription.read", AuditEntry.actor_id == consulted.id
            )
        ).scalar_one()
        assert '"access": "consent"' in read.detail


def test_a_consent_for_labs_only_hides_the_medications(
    client: TestClient,
    cast: Cast,
    make: Any,
    sign_in: Any,
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"])
    consulted = make.staff("doctor", make.org())
    _grant(client, cast, sign_in, consulted, ["lab"])
    assert _reads(client, sign_in(consulted), cast, prescription) == (404, 404)
    with tx() as s:
        denied = s.execute(
            select(AuditEntry.action).where(
                AuditEntry.actor_id == consulted.id, AuditEntry.outcome == "denied"
            )
        ).scalars()
        assert {"prescription.list", "prescription.read"} <= set(denied)


def test_a_consent_only_policy_keeps_the_care_team_out(
    client: TestClient, cast: Cast, make: Any, sign_in: Any, prescription_factory: PrescriptionFactory
) -> None:
    prescription = prescription_factory(cast["doctor"], cast["patient"])
    assert _reads(client, sign_in(cast["nurse"]), cast, prescription) == (200, 200)
    set_policy(client, make, sign_in, cast.org, "consent-only")
    assert _reads(client, sign_in(cast["nurse"]), cast, prescription) == (404, 404)
    assert _reads(client, sign_in(cast["doctor"]), cast, prescription) == (404, 404)
    assert _reads(client, sign_in(cast["patient"]), cast, prescription) == (200, 200)


def test_a_nurse_cannot_prescribe_and_a_stranger_doctor_finds_no_patient(
    client: TestClient, cast: Cast, make: Any, sign_in: Any, tx: Any
) -> None:
    nurse = client.post(P, json=rx_body(cast["patient"]), headers=sign_in(cast["nurse"]))
    assert nurse.status_code == 403
    outsider = make.staff("doctor")
    stranger = client.post(P, json=rx_body(cast["patient"]), headers=sign_in(outsider))
    assert stranger.status_code == 404
    assert cast["patient"].patient is not None
    assert cast["patient"].patient.family_name not in stranger.text
    with tx() as s:
        denied = s.execute(
            select(AuditEntry.actor_id).where(
                AuditEntry.action == "prescription.create", AuditEntry.outcome == "denied"
            )
        ).scalars()
        assert set(denied) == {cast["nurse"].id, outsider.id}
        assert s.execute(select(Prescription)).first() is None
