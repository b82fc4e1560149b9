"""Ed25519 signatures that stock tools can check: every user's key pair, canonical manifests, and
verification.

Each user has at most one active signing key. A key CareSync generates keeps its private half encrypted at
rest (AES-GCM under the server master key, bound to the user's id); a user may instead register a public
key of their own and sign on their device, in which case CareSync never holds the private half. Revoked
keys stay in the table, so that what they signed can still be verified.

A manifest is signed as canonical JSON (sorted keys, no spaces, UTF-8): the exact bytes are kept with the
signature, and ``openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in manifest.json -sigfile sig.bin``
checks them with nothing but the public key PEM.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import ForeignKey, Index, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from caresync.core import crypto
from caresync.core.errors import Conflict, ValidationFailed
from caresync.db import Base, IdMixin, UTCDateTime, utcnow

ALGORITHM = "ed25519"


class SigningKey(IdMixin, Base):
    """A user's Ed25519 public key and, when CareSync generated it, the encrypted private key."""

    __tablename__ = "signing_keys"
    __table_args__ = (
        # one active key per user, enforced by the database
        Index(
            "uq_signing_keys_active_user",
            "user_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    algorithm: Mapped[str] = mapped_column(String(20), default=ALGORITHM)
    public_key_pem: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the raw public key
    private_key_encrypted: Mapped[str | None] = mapped_column(Text)  # None: the user holds it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def server_held(self) -> bool:
        """Whether CareSync can sign with this key (it generated it and holds the private half)."""
        return self.private_key_encrypted is not None


def canonical_json(document: dict[str, Any]) -> bytes:
    """The one byte string a manifest is signed as: sorted keys, no insignificant spaces, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_hex(data: bytes) -> str:
    """The SHA-256 digest of ``data``, hex encoded."""
    return hashlib.sha256(data).hexdigest()


def _public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _fingerprint(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)


def load_public_key(pem: str) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM text; 422 for anything else."""
    try:
        key = serialization.load_pem_public_key(pem.strip().encode())
    except ValueError:
        raise ValidationFailed("That is not a PEM public key.", extra={"field": "public_key_pem"}) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValidationFailed("Only Ed25519 public keys are accepted.", extra={"field": "public_key_pem"})
    return key


def active_key(session: Session, user_id: uuid.UUID) -> SigningKey | None:
    """The user's current signing key, if any."""
    return session.execute(
        select(SigningKey).where(SigningKey.user_id == user_id, SigningKey.revoked_at.is_(None))
    ).scalar_one_or_none()


def ensure_key(session: Session, user_id: uuid.UUID) -> SigningKey:
    """The user's active key, generating a server-held one on first use."""
    existing = active_key(session, user_id)
    if existing is not None:
        return existing
    private = Ed25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    key = SigningKey(
        user_id=user_id,
        public_key_pem=_public_pem(private.public_key()),
        fingerprint=_fingerprint(private.public_key()),
        private_key_encrypted=base64.b64encode(crypto.encrypt(raw, aad=_aad(user_id))).decode(),
    )
    session.add(key)
    session.flush()
    return key


def register_public_key(session: Session, user_id: uuid.UUID, pem: str) -> SigningKey:
    """Replace the user's active key with a public key they hold the private half of (client-side
    signing). The previous key is revoked, not deleted: its signatures stay verifiable."""
    public = load_public_key(pem)
    fingerprint = _fingerprint(public)
    if session.execute(select(SigningKey.id).where(SigningKey.fingerprint == fingerprint)).first():
        raise Conflict("This public key is already registered.")
    previous = active_key(session, user_id)
    if previous is not None:
        previous.revoked_at = utcnow()
        session.flush()
    key = SigningKey(user_id=user_id, public_key_pem=_public_pem(public), fingerprint=fingerprint)
    session.add(key)
    session.flush()
    return key


def sign(session: Session, user_id: uuid.UUID, message: bytes) -> tuple[bytes, SigningKey]:
    """Sign ``message`` with the user's server-held key (created if the user has none yet)."""
    key = ensure_key(session, user_id)
    return sign_with(key, message), key


def sign_with(key: SigningKey, message: bytes) -> bytes:
    """Sign ``message`` with a server-held ``key`` the caller already has in hand."""
    if key.private_key_encrypted is None:
        raise Conflict("You registered your own signing key: sign on your device and upload the signature.")
    raw = crypto.decrypt(base64.b64decode(key.private_key_encrypted), aad=_aad(key.user_id))
    return Ed25519PrivateKey.from_private_bytes(raw).sign(message)


def verify(public_key_pem: str, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the key's Ed25519 signature of exactly ``message``."""
    try:
        load_public_key(public_key_pem).verify(signature, message)
    except (InvalidSignature, ValidationFailed):
        return False
    return True


def _aad(user_id: uuid.UUID) -> bytes:
    """Binds an encrypted private key to its owner: copied to another user's row, it fails to decrypt."""
    return f"signing-key:{user_id}".encode()
