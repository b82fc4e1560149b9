"""The signed code a prescription's QR code carries, and turning it into a PNG and back.

Format: ``CSRX1.<payload>.<signature>``, where ``<payload>`` is the base64url (no padding) of the canonical
JSON (``core.signing.canonical_json``: sorted keys, no spaces, UTF-8) of an object with short keys:

====== ===============================================================================================
key    meaning
====== ===============================================================================================
``rx``  prescription id (UUID, 32 hex digits)
``hid`` the patient's Health ID
``dc``  drug: formulary code
``dn``  drug: name
``ds``  drug: strength
``q``   quantity per dispense
``rl``  refills left when the code was issued
``fu``  fills used (dispenses so far) when the code was issued: a code printed before a dispense is
        recognisably out of date afterwards
``pr``  prescriber's user id (UUID, 32 hex digits)
``kid`` the first 16 hex digits of the signing key's fingerprint (SHA-256 of the raw public key)
``iat`` issue time, Unix seconds
``vu``  valid until (ISO date, inclusive)
====== ===============================================================================================

and ``<signature>`` is the base64url (no padding) of the prescriber's Ed25519 signature over exactly the
payload bytes. The prescriber's key is held by the server (``core.signing``); a prescriber who registered
a key of their own signs on their device, so CareSync cannot issue a code for them (409).

The code is verified against the database by ``dispensing.service``: this module only builds it and parses
its structure (422 with a clear reason for anything that is not such a code).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import segno
import zxingcpp
from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from caresync.core.errors import Conflict, TooLarge, UnsupportedMedia, ValidationFailed
from caresync.core.signing import canonical_json, ensure_key, sign_with
from caresync.db import utcnow
from caresync.prescriptions.models import Prescription
from caresync.prescriptions.rules import refills_left

PREFIX = "CSRX1"
KID_LENGTH = 16
MAX_CODE_LENGTH = 2000  # a real code is about 450 characters
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP"})
PNG_SCALE = 8  # pixels per module: a version-15 code is ~ 600 px wide, sharp on a phone screenshot
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
_KEYS = frozenset({"rx", "hid", "dc", "dn", "ds", "q", "rl", "fu", "pr", "kid", "iat", "vu"})
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_HEX = re.compile(r"[0-9a-f]+")
MALFORMED = "This is not a CareSync prescription code. Scan the QR code again or type the code exactly."


@dataclass(frozen=True)
class Payload:
    """A parsed (not yet verified) prescription code: what it claims, and the exact bytes signed."""

    prescription_id: uuid.UUID
    health_id: str
    drug_code: str
    drug_name: str
    strength: str
    quantity: int
    refills_left: int
    fills_used: int
    prescriber_id: uuid.UUID
    kid: str
    issued_at: datetime
    valid_until: date
    message: bytes  # the signed payload bytes, exactly as they came
    signature: bytes


def encode(session: Session, prescription: Prescription, now: datetime | None = None) -> str:
    """The prescription's current code, issued ``now`` (default: this moment) and signed with the
    prescriber's server-held key (created on first use). 409 when the prescriber holds their own key,
    which CareSync cannot sign with."""
    key = ensure_key(session, prescription.prescriber_id)
    document = {
        "rx": prescription.id.hex,
        "hid": prescription.patient.health_id,
        "dc": prescription.medication_code,
        "dn": prescription.medication_name,
        "ds": prescription.strength,
        "q": prescription.quantity,
        "rl": refills_left(prescription.refills, prescription.dispense_count),
        "fu": prescription.dispense_count,
        "pr": prescription.prescriber_id.hex,
        "kid": key.fingerprint[:KID_LENGTH],
        "iat": int((now or utcnow()).timestamp()),
        "vu": prescription.valid_until.isoformat(),
    }
    message = canonical_json(document)
    try:
        signature = sign_with(key, message)
    except Conflict:
        raise Conflict(
            "The prescriber signs with a key of their own device, so CareSync cannot issue this QR code. "
            "Ask the prescriber to issue it.",
            extra={"reason": "prescriber_key"},
        ) from None
    return f"{PREFIX}.{_b64encode(message)}.{_b64encode(signature)}"


def decode(text: str) -> Payload:
    """Parse a code's structure (whitespace around it is ignored); 422 with ``reason: malformed`` for
    anything that is not a well-formed prescription code. The signature is not checked here."""
    parts = compact(text).split(".")
    if len(text) > MAX_CODE_LENGTH or len(parts) != 3 or parts[0] != PREFIX:
        raise _malformed()
    message, signature = _b64decode(parts[1]), _b64decode(parts[2])
    try:
        document = json.loads(message)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep
        raise _malformed() from None
    if not isinstance(document, dict) or set(document) != _KEYS or len(signature) != 64:
        raise _malformed()
    try:
        return Payload(
            prescription_id=_uuid(document["rx"]),
            health_id=_text(document["hid"], 20),
            drug_code=_text(document["dc"], 20),
            drug_name=_text(document["dn"], 120),
            strength=_text(document["ds"], 60),
            quantity=_count(document["q"]),
            refills_left=_count(document["rl"]),
            fills_used=_count(document["fu"]),
            prescriber_id=_uuid(document["pr"]),
            kid=_kid(document["kid"]),
            issued_at=datetime.fromtimestamp(_count(document["iat"]), tz=UTC),
            valid_until=date.fromisoformat(_text(document["vu"], 10)),
            message=message,
            signature=signature,
        )
    except (TypeError, ValueError, OverflowError, OSError):
        raise _malformed() from None


def compact(text: str) -> str:
    """The code without the spaces and line breaks a person may have typed or pasted into it."""
    return "".join(text.split())


def render_png(text: str) -> bytes:
    """The code as a QR code PNG (error correction M, 8 pixels a module, quiet zone of 4 modules)."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False, boost_error=False).save(
        buffer, kind="png", scale=PNG_SCALE, border=4
    )
    return buffer.getvalue()


def read_image(data: bytes) -> str:
    """The prescription code in a photo or screenshot (PNG, JPEG, WebP, GIF or BMP). 413 over 10 MB or
    40 megapixels, 415 for other files, 422 when the image holds no QR code, or several codes."""
    if len(data) > MAX_IMAGE_BYTES:
        raise TooLarge(f"The image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB. Send a smaller one.")
    try:
        image = Image.open(io.BytesIO(data))  # reads the header only
        if image.format not in IMAGE_FORMATS:
            raise UnidentifiedImageError(image.format)
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise TooLarge("The image has more than 40 megapixels. Send a smaller one.")
        image.load()
    except Image.DecompressionBombError:
        raise TooLarge("The image has more than 40 megapixels. Send a smaller one.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UnsupportedMedia(
            "That file is not a picture we can read. Send a PNG or JPEG photo or screenshot of the QR code.",
            extra={"reason": "not_an_image"},
        ) from None
    texts = [
        barcode.text for barcode in zxingcpp.read_barcodes(_opaque(image), formats=QR_ONLY) if barcode.valid
    ]
    if not texts:
        raise ValidationFailed(
            "No QR code found in the image. Photograph the whole code, flat, sharp and well lit.",
            extra={"reason": "no_code"},
        )
    ours = [t for t in dict.fromkeys(texts) if t.startswith(f"{PREFIX}.")]
    if len(ours) > 1:
        raise ValidationFailed(
            "The image holds more than one prescription code. Photograph one code at a time.",
            extra={"reason": "several_codes"},
        )
    return ours[0] if ours else texts[0]


def _opaque(image: Image.Image) -> Image.Image:
    """The image in grey levels, transparent parts on white (a transparent screenshot would read as black)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        background = Image.new("RGBA", image.size, "white")
        background.alpha_composite(image.convert("RGBA"))
        image = background
    return image.convert("L")


def _malformed() -> ValidationFailed:
    return ValidationFailed(MALFORMED, extra={"reason": "malformed", "field": "code"})


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64decode(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise _malformed()
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise _malformed() from None


def _uuid(value: Any) -> uuid.UUID:
    if not isinstance(value, str) or len(value) != 32 or not _HEX.fullmatch(value):
        raise ValueError("not a compact UUID")
    return uuid.UUID(hex=value)


def _text(value: Any, max_length: int) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        raise ValueError("not a short text")
    return value


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError("not a count")
    return value


def _kid(value: Any) -> str:
    if not isinstance(value, str) or len(value) != KID_LENGTH or not _HEX.fullmatch(value):
        raise ValueError("not a key id")
    return value
