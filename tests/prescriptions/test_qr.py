"""The prescription code and its QR code: the payload's format, the structural parser, PNG rendering and
reading codes back from pictures with zxing-cpp (screenshots, photos, transparent and rotated images)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
import segno
from PIL import Image, ImageFilter

from caresync.core.errors import Conflict, TooLarge, UnsupportedMedia, ValidationFailed
from caresync.core.signing import SigningKey, canonical_json, register_public_key, verify
from caresync.db import session_factory, transaction, utcnow
from caresync.prescriptions.dispensing import qr
from caresync.prescriptions.models import Prescription
from tests.conftest import Cast


def b64(data: bytes) -> str:
    """base64url without padding, as codes use it."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def parts(code: str) -> tuple[dict[str, Any], str]:
    """A code's payload document and its signature part."""
    _prefix, payload, signature = code.split(".")
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))), signature


def rebuild(document: dict[str, Any], signature: str) -> str:
    """A code with this payload and signature part."""
    return f"CSRX1.{b64(canonical_json(document))}.{signature}"


def encode_now(prescription_id: Any) -> str:
    """Encode a prescription's code in a committed transaction of its own."""
    with transaction(session_factory()) as s:
        prescription = s.get(Prescription, prescription_id)
        assert prescription is not None
        return qr.encode(s, prescription)


@pytest.fixture
def rx(cast: Cast, prescription_factory: Any) -> Prescription:
    """An active prescription of the cast's doctor for the cast's patient: 21 units, 2 refills."""
    return prescription_factory(cast["doctor"], cast["patient"], refills=2)


# --- encode -------------------------------------------------------------------------------------------------


def test_code_carries_the_documented_payload_signed_by_the_prescriber(cast: Cast, rx: Prescription) -> None:
    before = int(utcnow().timestamp())
    code = encode_now(rx.id)
    document, signature = parts(code)
    assert code.startswith("CSRX1.")
    assert document == {
        "rx": rx.id.hex,
        "hid": rx.patient.health_id,
        "dc": "308191",
        "dn": "Amoxicillin",
        "ds": "500 mg",
        "q": 21,
        "rl": 2,
        "fu": 0,
        "pr": cast["doctor"].id.hex,
        "kid": document["kid"],
        "iat": document["iat"],
        "vu": rx.valid_until.isoformat(),
    }
    assert before <= document["iat"] <= int(utcnow().timestamp())
    with transaction(session_factory()) as s:
        key = s.query(SigningKey).filter_by(user_id=cast["doctor"].id).one()
        assert key.fingerprint.startswith(document["kid"])
        assert len(document["kid"]) == 16
        signed = base64.urlsafe_b64decode(code.split(".")[1] + "==")
        assert verify(key.public_key_pem, signed, base64.urlsafe_b64decode(signature + "=="))
    assert len(code) < 600  # compact enough for a QR code a phone camera reads easily


def test_decode_returns_what_the_code_claims(cast: Cast, rx: Prescription) -> None:
    code = encode_now(rx.id)
    payload = qr.decode(f"  {code[:100]}\n{code[100:]} ")  # pasted with a line break
    assert payload.prescription_id == rx.id
    assert payload.prescriber_id == cast["doctor"].id
    assert (payload.drug_code, payload.drug_name, payload.strength) == ("308191", "Amoxicillin", "500 mg")
    assert (payload.quantity, payload.refills_left, payload.fills_used) == (21, 2, 0)
    assert payload.valid_until == rx.valid_until
    assert payload.message == base64.urlsafe_b64decode(code.split(".")[1] + "==")
    assert len(payload.signature) == 64


def test_a_prescriber_with_their_own_key_cannot_have_codes_issued(cast: Cast, rx: Prescription) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with transaction(session_factory()) as s:
        register_public_key(s, cast["doctor"].id, pem)
    with pytest.raises(Conflict) as refused:
        encode_now(rx.id)
    assert refused.value.extra["reason"] == "prescriber_key"
    assert "own device" in refused.value.detail


# --- decode: structure --------------------------------------------------------------------------------------

SIGNATURE = b64(bytes(64))
GOOD = {
    "rx": "0" * 32,
    "hid": "123456789012",
    "dc": "308191",
    "dn": "Amoxicillin",
    "ds": "500 mg",
    "q": 21,
    "rl": 1,
    "fu": 0,
    "pr": "1" * 32,
    "kid": "ab" * 8,
    "iat": 1_700_000_000,
    "vu": "2027-01-31",
}
MALFORMED: dict[str, str] = {
    "empty": "",
    "words": "hello pharmacist",
    "a-url": "https://example.org/rx?id=1",
    "two-parts": f"CSRX1.{b64(canonical_json(GOOD))}",
    "four-parts": f"CSRX1.{b64(canonical_json(GOOD))}.{SIGNATURE}.x",
    "other-prefix": f"CSRX2.{b64(canonical_json(GOOD))}.{SIGNATURE}",
    "not-base64": f"CSRX1.{b64(canonical_json(GOOD))}!.{SIGNATURE}",
    "not-json": f"CSRX1.{b64(b'not json')}.{SIGNATURE}",
    "not-utf8": f"CSRX1.{b64(bytes([0xFF, 0xFE]))}.{SIGNATURE}",
    "json-list": f"CSRX1.{b64(b'[1,2]')}.{SIGNATURE}",
    "deeply-nested": f"CSRX1.{b64(b'[' * 700 + b']' * 700)}.{SIGNATURE}",
    "missing-key": rebuild({k: v for k, v in GOOD.items() if k != "q"}, SIGNATURE),
    "extra-key": rebuild({**GOOD, "admin": True}, SIGNATURE),
    "quantity-text": rebuild({**GOOD, "q": "21"}, SIGNATURE),
    "quantity-bool": rebuild({**GOOD, "q": True}, SIGNATURE),
    "negative-fills": rebuild({**GOOD, "fu": -1}, SIGNATURE),
    "bad-uuid": rebuild({**GOOD, "rx": "z" * 32}, SIGNATURE),
    "bad-kid": rebuild({**GOOD, "kid": "AB" * 8}, SIGNATURE),
    "bad-date": rebuild({**GOOD, "vu": "2027-02-30"}, SIGNATURE),
    "huge-iat": rebuild({**GOOD, "iat": 10**30}, SIGNATURE),
    "empty-name": rebuild({**GOOD, "dn": ""}, SIGNATURE),
    "short-signature": rebuild(GOOD, b64(bytes(32))),
    "too-long": rebuild({**GOOD, "dn": "A" * 120}, SIGNATURE) + "A" * 2000,
}


@pytest.mark.no_db
@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_anything_but_a_well_formed_code_is_malformed(text: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        qr.decode(text)
    assert refused.value.extra["reason"] == "malformed"
    assert refused.value.detail == qr.MALFORMED


@pytest.mark.no_db
def test_the_well_formed_reference_code_parses() -> None:
    payload = qr.decode(rebuild(GOOD, SIGNATURE))  # the table above differs from this in one way each
    assert payload.quantity == 21
    assert payload.kid == "ab" * 8
    assert payload.issued_at.timestamp() == 1_700_000_000


# --- PNG and reading pictures -------------------------------------------------------------------------------


def png_of(image: Image.Image, kind: str = "PNG", **options: Any) -> bytes:
    """An image file of ``image``."""
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def test_render_png_is_a_scannable_png(cast: Cast, rx: Prescription) -> None:
    code = encode_now(rx.id)
    data = qr.render_png(code)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    assert image.width == image.height
    assert image.width % qr.PNG_SCALE == 0
    assert image.width >= 400
    assert qr.read_image(data) == code


def test_reads_a_phone_photo_rotated_blurred_and_jpeg_compressed(cast: Cast, rx: Prescription) -> None:
    code = encode_now(rx.id)
    picture = Image.open(io.BytesIO(qr.render_png(code))).convert("RGB")
    canvas = Image.new("RGB", (1400, 1100), (205, 200, 190))  # a grey counter around the phone
    canvas.paste(picture.rotate(90, expand=True), (300, 200))
    photo = canvas.rotate(7, fillcolor=(205, 200, 190)).filter(ImageFilter.GaussianBlur(1.2))
    assert qr.read_image(png_of(photo, "JPEG", quality=55)) == code


def test_reads_a_screenshot_with_a_transparent_background(cast: Cast, rx: Prescription) -> None:
    code = encode_now(rx.id)
    qr_image = segno.make(code, error="m")
    buffer = io.BytesIO()
    qr_image.save(buffer, kind="png", scale=6, light=None)  # light modules transparent
    assert Image.open(io.BytesIO(buffer.getvalue())).info.get("transparency") is not None
    assert qr.read_image(buffer.getvalue()) == code


@pytest.mark.no_db
def test_a_picture_without_a_qr_code_is_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        qr.read_image(png_of(Image.new("RGB", (640, 480), "white")))
    assert refused.value.extra["reason"] == "no_code"
    assert refused.value.detail.startswith("No QR code found in the image")


@pytest.mark.no_db
def test_a_picture_with_two_prescription_codes_is_refused() -> None:
    sheet = Image.new("L", (1300, 700), 255)
    for n, left in enumerate((20, 660)):
        buffer = io.BytesIO()
        segno.make(rebuild({**GOOD, "q": n + 1}, SIGNATURE), error="m").save(buffer, kind="png", scale=5)
        sheet.paste(Image.open(io.BytesIO(buffer.getvalue())).convert("L"), (left, 20))
    with pytest.raises(ValidationFailed) as refused:
        qr.read_image(png_of(sheet))
    assert refused.value.extra["reason"] == "several_codes"


@pytest.mark.no_db
def test_another_qr_code_is_returned_for_the_verifier_to_refuse() -> None:
    buffer = io.BytesIO()
    segno.make("https://example.org", error="m").save(buffer, kind="png", scale=6)
    text = qr.read_image(buffer.getvalue())
    assert text == "https://example.org"
    with pytest.raises(ValidationFailed):
        qr.decode(text)


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"%PDF-1.7 not a picture", UnsupportedMedia),
        (b"\x89PNG\r\n\x1a\n truncated", UnsupportedMedia),
        (b"", UnsupportedMedia),
        (b"\0" * (qr.MAX_IMAGE_BYTES + 1), TooLarge),
    ],
    ids=["pdf", "broken-png", "empty", "over-10-mb"],
)
def test_files_that_are_not_readable_pictures_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        qr.read_image(data)


@pytest.mark.no_db
def test_pictures_over_40_megapixels_are_refused_before_decoding() -> None:
    huge = png_of(Image.new("1", (8000, 5001), 1), optimize=True)  # 40.008 Mpx, a few kB
    assert len(huge) < qr.MAX_IMAGE_BYTES
    with pytest.raises(TooLarge) as refused:
        qr.read_image(huge)
    assert "40 megapixels" in refused.value.detail
