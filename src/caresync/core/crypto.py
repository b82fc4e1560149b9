"""Cryptographic primitives: argon2 password hashing, opaque tokens, AES-GCM encryption and HMAC.

Everything here is a thin, well-named wrapper over ``pwdlib`` and ``cryptography`` so that callers never
pick algorithms, nonce sizes or comparison functions themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from caresync.config import get_settings

NONCE_BYTES = 12


@lru_cache
def _password_hasher(fast: bool) -> PasswordHash:
    if fast:  # tests only: the same algorithm with cheap parameters
        return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    return PasswordHash((Argon2Hasher(),))


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _password_hasher(get_settings().argon2_fast).hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Check a password against its argon2 hash in constant time."""
    try:
        return _password_hasher(get_settings().argon2_fast).verify(password, password_hash)
    except ValueError:
        return False


@lru_cache
def dummy_password_hash() -> str:
    """A hash to verify against when the user does not exist, so timing does not reveal accounts."""
    return hash_password(secrets.token_urlsafe(16))


def new_token(nbytes: int = 32) -> str:
    """A random URL-safe token for sessions, resets and feeds."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a token: what the database stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    """Compare two strings without leaking where they differ."""
    return hmac.compare_digest(a.encode(), b.encode())


def hmac_hex(key: str, message: str) -> str:
    """HMAC-SHA256 of ``message`` under ``key``, hex encoded."""
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def storage_key() -> bytes:
    """The AES-256 key for data at rest (generated into ``var/`` on first use if not configured)."""
    key = base64.b64decode(get_settings().secret("storage_key"))
    if len(key) != 32:
        raise RuntimeError("CARESYNC_STORAGE_KEY must be 32 bytes, base64 encoded")
    return key


def encrypt(plaintext: bytes, *, aad: bytes = b"", key: bytes | None = None) -> bytes:
    """AES-256-GCM encrypt; returns nonce + ciphertext + tag."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key or storage_key()).encrypt(nonce, plaintext, aad)


def decrypt(blob: bytes, *, aad: bytes = b"", key: bytes | None = None) -> bytes:
    """Reverse :func:`encrypt`; raises ``ValueError`` if the data was altered or the key is wrong."""
    try:
        return AESGCM(key or storage_key()).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise ValueError("encrypted data failed its integrity check") from exc


def encrypt_text(text: str, *, aad: str) -> str:
    """Encrypt a short string (e.g. an MFA secret) to base64 for a text column."""
    return base64.b64encode(encrypt(text.encode(), aad=aad.encode())).decode()


def decrypt_text(blob: str, *, aad: str) -> str:
    """Reverse :func:`encrypt_text`."""
    return decrypt(base64.b64decode(blob), aad=aad.encode()).decode()
