"""Client-side signing: a user registers their own Ed25519 public key, signs the manifest on their
device, and CareSync accepts the upload only if the manifest describes exactly that upload and the
signature verifies; the record then verifies like any other, with the old key still checking old records."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from caresync.core.signing import canonical_json
from caresync.db import utcnow
from tests.conftest import ROLES, login
from tests.records.test_records import PDF, R, upload

FORM = {"category": "lab", "title": "Home INR test", "recorded_on": "2026-03-02", "client_id": "my-phone"}


def manifest_for(person: Any, fingerprint: str, content: bytes, **changes: Any) -> dict[str, Any]:
    """The manifest a client builds for uploading ``content`` with ``FORM`` (see the README)."""
    document = {
        "v": 1,
        "record_id": str(uuid.uuid4()),
        "sha256": hashlib.sha256(content).hexdigest(),
        "size": len(content),
        "media_type": "application/pdf",
        "category": FORM["category"],
        "title": FORM["title"],
        "recorded_on": FORM["recorded_on"],
        "patient_health_id": person.patient.health_id,
        "uploader_id": str(person.id),
        "uploader_name": person.full_name,
        "uploader_role": "patient",
        "client": FORM["client_id"],
        "supersedes": None,
        "appointment_id": None,
        "measurements": None,
        "signed_at": utcnow().isoformat(),
        "key_fingerprint": fingerprint,
    }
    document.update(changes)
    return document


@pytest.fixture
def device(client: TestClient, make: Any, sign_in: Any) -> tuple[Any, dict[str, str], Ed25519PrivateKey, str]:
    """A patient who uploaded one record with the server-held key, then registered a device key."""
    patient = make.patient_user()
    headers = sign_in(patient)
    assert upload(client, headers, patient.patient_id, content=PDF + b"% before\n").status_code == 201
    assert client.get(f"{R}/signing-key", headers=headers).json()["server_held"] is True
    private = Ed25519PrivateKey.generate()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    registered = client.put(f"{R}/signing-key", json={"public_key_pem": pem}, headers=headers)
    assert registered.status_code == 200, registered.text
    assert registered.json()["server_held"] is False
    return patient, headers, private, registered.json()["fingerprint"]


def send(
    client: TestClient,
    headers: dict[str, str],
    patient: Any,
    content: bytes,
    manifest: bytes,
    signature: bytes,
) -> Any:
    form = {
        **FORM,
        "patient_id": str(patient.patient_id),
        "manifest": manifest.decode(),
        "signature": base64.b64encode(signature).decode(),
    }
    return client.post(R, data=form, files={"file": ("inr.pdf", content, "application/pdf")}, headers=headers)


def test_a_device_signed_upload_is_accepted_and_verifies(client: TestClient, device: Any) -> None:
    patient, headers, private, fingerprint = device
    content = PDF + f"% INR 2.4 {uuid.uuid4()}\n".encode()
    manifest = canonical_json(manifest_for(patient, fingerprint, content))
    created = send(client, headers, patient, content, manifest, private.sign(manifest))
    assert created.status_code == 201, created.text
    assert created.json()["id"] == json.loads(manifest)["record_id"]
    verdict = client.get(f"{R}/{created.json()['id']}/verify", headers=headers).json()
    assert verdict["ok"] is True
    assert verdict["signer_fingerprint"] == fingerprint
    listed = client.get(R, params={"patient_id": str(patient.patient_id)}, headers=headers).json()["items"]
    assert all(
        client.get(f"{R}/{r['id']}/verify", headers=headers).json()["ok"] for r in listed
    )  # old key too


Forge = Callable[[Any, str, bytes, Ed25519PrivateKey], tuple[bytes, bytes]]


def _signed(changes: dict[str, Any]) -> Forge:
    """A manifest with ``changes``, validly signed by the device key."""

    def forge(patient: Any, fingerprint: str, content: bytes, key: Ed25519PrivateKey) -> tuple[bytes, bytes]:
        manifest = canonical_json(manifest_for(patient, fingerprint, content, **changes))
        return manifest, key.sign(manifest)

    return forge


def _another_key(
    patient: Any, fingerprint: str, content: bytes, _key: Ed25519PrivateKey
) -> tuple[bytes, bytes]:
    manifest = canonical_json(manifest_for(patient, fingerprint, content))
    return manifest, Ed25519PrivateKey.generate().sign(manifest)


def _altered_after_signing(
    patient: Any, fingerprint: str, content: bytes, key: Ed25519PrivateKey
) -> tuple[bytes, bytes]:
    signed = manifest_for(patient, fingerprint, content)
    signature = key.sign(canonical_json({**signed, "title": "Something else"}))
    return canonical_json(signed), signature


def _not_canonical(
    patient: Any, fingerprint: str, content: bytes, key: Ed25519PrivateKey
) -> tuple[bytes, bytes]:
    manifest = json.dumps(manifest_for(patient, fingerprint, content), indent=1).encode()
    return manifest, key.sign(manifest)


STALE = {"signed_at": (utcnow() - timedelta(hours=2)).isoformat()}
CASES: list[tuple[str, Forge, str]] = [
    ("signed-by-another-key", _another_key, "does not verify"),
    ("altered-after-signing", _altered_after_signing, "does not verify"),
    ("wrong-hash", _signed({"sha256": "0" * 64}), "check sha256"),
    ("other-patient", _signed({"patient_health_id": "1234567890"}), "check patient_health_id"),
    ("extra-field", _signed({"ward": "7B"}), "check ward"),
    ("not-canonical", _not_canonical, "canonical JSON"),
    ("stale", _signed(STALE), "current time"),
]


@pytest.mark.parametrize(("forge", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_device_signatures_are_refused(
    client: TestClient, device: Any, forge: Forge, message: str
) -> None:
    patient, headers, private, fingerprint = device
    content = PDF + f"% INR {uuid.uuid4()}\n".encode()
    manifest, signature = forge(patient, fingerprint, content, private)
    refused = send(client, headers, patient, content, manifest, signature)
    assert refused.status_code == 422, refused.text
    assert message in refused.json()["detail"]


def test_with_a_device_key_an_unsigned_upload_is_refused(client: TestClient, device: Any) -> None:
    patient, headers, _private, _fingerprint = device
    refused = upload(client, headers, patient.patient_id)
    assert refused.status_code == 422
    assert "sign the manifest on your device" in refused.json()["detail"]


def test_a_server_key_user_cannot_send_a_device_signature(
    client: TestClient, make: Any, sign_in: Any
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    content = PDF + b"% x\n"
    manifest = canonical_json(manifest_for(patient, "whatever", content))
    refused = send(client, headers, patient, content, manifest, Ed25519PrivateKey.generate().sign(manifest))
    assert refused.status_code == 422
    assert "Register your public key" in refused.json()["detail"]


ANON = "anonymous"
SIGNING_KEY_ROUTES: dict[tuple[str, str], dict[str, int]] = {
    ("GET", "/api/v1/records/signing-key"): {**dict.fromkeys(ROLES, 200), ANON: 401},
    ("PUT", "/api/v1/records/signing-key"): {**dict.fromkeys(ROLES, 200), ANON: 401},
}


def test_signing_key_permission_matrix(client: TestClient, cast: Any) -> None:
    """Everyone signed in has a key of their own (every role may upload or sign something); anonymous
    callers have none."""
    problems = []
    for role in (*ROLES, ANON):
        headers = login(client, cast[role].email, cast[role].password) if role != ANON else {}
        for (method, path), expected in SIGNING_KEY_ROUTES.items():
            pem = (
                Ed25519PrivateKey.generate()
                .public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            )
            response = client.request(method, path, json={"public_key_pem": pem.decode()}, headers=headers)
            if response.status_code != expected[role]:
                problems.append(f"{method} {path} as {role}: {response.status_code} != {expected[role]}")
    assert not problems, "\n".join(problems)
