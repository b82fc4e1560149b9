"""Ed25519 signing keys and manifests: good signatures verify; an altered byte, an altered manifest or the
wrong key do not; private keys are encrypted at rest and bound to their owner; one active key per user;
user-registered keys; and a stock ``openssl`` verifies what CareSync signed."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.exc import IntegrityError

from caresync.core import crypto, signing
from caresync.core.errors import Conflict, ValidationFailed
from caresync.core.signing import SigningKey

MANIFEST = {
    "sha256": signing.sha256_hex(b"%PDF-1.7 lab report"),
    "uploader": "Dr Ines Duarte",
    "health_id": "123456789012",
    "category": "lab",
    "signed_at": "2030-01-07T09:30:00+00:00",
    "client": "web",
}


def test_canonical_json_is_one_exact_byte_string() -> None:
    assert signing.canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()
    assert signing.canonical_json(dict(reversed(MANIFEST.items()))) == signing.canonical_json(MANIFEST)


@pytest.mark.parametrize(
    ("tamper", "valid"),
    [
        ("nothing", True),
        ("manifest", False),  # a changed field
        ("byte", False),  # one flipped byte of the signed bytes
        ("signature", False),
        ("key", False),  # someone else's key
    ],
)
def test_signatures_verify_only_unaltered(tx: Any, make: Any, tamper: str, valid: bool) -> None:
    alice, bob = make.staff("doctor"), make.staff("doctor")
    message = signing.canonical_json(MANIFEST)
    with tx() as s:
        signature, key = signing.sign(s, alice.id, message)
        other = signing.ensure_key(s, bob.id)
    pem = key.public_key_pem
    if tamper == "manifest":
        message = signing.canonical_json({**MANIFEST, "category": "mental-health"})
    elif tamper == "byte":
        message = message[:10] + bytes([message[10] ^ 1]) + message[11:]
    elif tamper == "signature":
        signature = signature[:-1] + bytes([signature[-1] ^ 1])
    elif tamper == "key":
        pem = other.public_key_pem
    assert signing.verify(pem, message, signature) is valid


def test_private_keys_are_encrypted_and_bound_to_their_owner(tx: Any, make: Any) -> None:
    alice, bob = make.staff("nurse"), make.staff("nurse")
    with tx() as s:
        key = signing.ensure_key(s, alice.id)
        assert signing.ensure_key(s, alice.id).id == key.id  # one key, reused
        assert key.private_key_encrypted is not None
        blob = base64.b64decode(key.private_key_encrypted)
        assert len(blob) > 32
        # copied onto another user's row, the encrypted key does not decrypt
        with pytest.raises(ValueError, match="integrity"):
            crypto.decrypt(blob, aad=f"signing-key:{bob.id}".encode())


def test_a_user_has_one_active_key(tx: Any, make: Any) -> None:
    doctor = make.staff("doctor")
    with tx() as s:
        signing.ensure_key(s, doctor.id)
    other = Ed25519PrivateKey.generate().public_key()
    pem = other.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with tx() as s:
        s.add(SigningKey(user_id=doctor.id, public_key_pem=pem.decode(), fingerprint="f" * 64))
        with pytest.raises(IntegrityError):  # the database refuses a second active key
            s.flush()
        s.rollback()


def test_registering_an_own_key_revokes_the_old_one_and_keeps_it_verifiable(tx: Any, make: Any) -> None:
    patient = make.patient_user()
    message = signing.canonical_json(MANIFEST)
    with tx() as s:
        old_signature, old_key = signing.sign(s, patient.id, message)
    device_key = Ed25519PrivateKey.generate()
    pem = (
        device_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with tx() as s:
        mine = signing.register_public_key(s, patient.id, pem)
        assert not mine.server_held
        assert signing.active_key(s, patient.id).id == mine.id
        assert s.get(SigningKey, old_key.id).revoked_at is not None
        with pytest.raises(Conflict, match="sign on your device"):
            signing.sign(s, patient.id, message)
        with pytest.raises(Conflict):
            signing.register_public_key(s, patient.id, pem)
    assert signing.verify(old_key.public_key_pem, message, old_signature)  # still verifiable
    assert signing.verify(pem, message, device_key.sign(message))  # a client-side signature


def _ec_public_pem() -> str:
    """A valid PEM public key of another algorithm (EC P-256)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@pytest.mark.parametrize(
    ("pem", "message"),
    [("not a key", "not a PEM"), (_ec_public_pem(), "Only Ed25519")],
    ids=["garbage", "ec-p256-key"],  # fixed ids: the key differs per process, xdist needs equal names
)
def test_only_ed25519_pem_keys_are_accepted(pem: str, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        signing.load_public_key(pem)
    assert signing.verify(pem, b"x", b"y" * 64) is False


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_stock_openssl_verifies_a_caresync_signature(tx: Any, make: Any, tmp_path: Path) -> None:
    doctor = make.staff("doctor")
    message = signing.canonical_json(MANIFEST)
    with tx() as s:
        signature, key = signing.sign(s, doctor.id, message)
    (tmp_path / "manifest.json").write_bytes(message)
    (tmp_path / "manifest.sig").write_bytes(signature)
    (tmp_path / "public_key.pem").write_text(key.public_key_pem)
    command = [
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        "public_key.pem",
        "-rawin",
        "-in",
        "manifest.json",
        "-sigfile",
        "manifest.sig",
    ]
    good = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert good.returncode == 0, good.stderr
    assert "Signature Verified Successfully" in good.stdout
    (tmp_path / "manifest.json").write_bytes(message.replace(b'"lab"', b'"lap"'))
    bad = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert bad.returncode != 0
    assert "Signature Verification Failure" in bad.stdout + bad.stderr
