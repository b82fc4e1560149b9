"""Verifying and dispensing over the API: the full QR round trip, every refusal with its reason code and
audit entry, input validation, the last-fill race between pharmacists, the patient's notification and
refill count, the pharmacy's dispense list, and the printable PDF."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import struct
import uuid
import zlib
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.core.signing import SigningKey, canonical_json, ensure_key, sign_with
from caresync.db import session_factory, transaction
from caresync.prescriptions.dispensing import qr
from caresync.prescriptions.models import Dispense, Prescription
from tests.conftest import API, Cast, login, run_coroutine
from tests.prescriptions.test_qr import b64, parts, rebuild

PHARMACY = f"{API}/pharmacy"


# --- helpers ------------------------------------------------------------------------------------------------


def code_of(client: TestClient, headers: dict[str, str], prescription_id: uuid.UUID) -> dict[str, Any]:
    """The prescription's code as the patient's app gets it."""
    response = client.get(f"{API}/prescriptions/{prescription_id}/qr", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def dispense_body(code: str, **changes: Any) -> dict[str, Any]:
    """A valid dispense request for ``code``."""
    return {"code": code, "quantity": 21, "lot": "LOT-4711", **changes}


def audit_entries(action: str, outcome: str | None = None) -> list[AuditEntry]:
    """The audit entries of ``action`` (and ``outcome``), oldest first."""
    with transaction(session_factory()) as s:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        if outcome:
            query = query.where(AuditEntry.outcome == outcome)
        return list(s.execute(query).scalars())


def dispense_rows(prescription_id: uuid.UUID) -> list[Dispense]:
    """The prescription's dispenses, by fill number."""
    with transaction(session_factory()) as s:
        query = (
            select(Dispense).where(Dispense.prescription_id == prescription_id).order_by(Dispense.fill_number)
        )
        return list(s.execute(query).scalars())


def current(prescription_id: uuid.UUID) -> Prescription:
    """The prescription as stored now."""
    with transaction(session_factory()) as s:
        found = s.get(Prescription, prescription_id)
        assert found is not None
        return found


def signed_by(key_owner: uuid.UUID, document: dict[str, Any]) -> str:
    """A code whose payload is ``document``, signed with ``key_owner``'s server-held key (kid included)."""
    with transaction(session_factory()) as s:
        key = ensure_key(s, key_owner)
        document = {**document, "kid": key.fingerprint[:16]}
        message = canonical_json(document)
        return f"CSRX1.{b64(message)}.{b64(sign_with(key, message))}"


class Setup:
    """The cast with bearer headers for the patient, the doctor and the pharmacist, and a prescription."""

    def __init__(self, client: TestClient, cast: Cast, rx: Prescription) -> None:
        self.client, self.cast, self.rx = client, cast, rx
        self.patient = login(client, cast["patient"].email, cast["patient"].password)
        self.pharmacist = login(client, cast["pharmacist"].email, cast["pharmacist"].password)

    def code(self) -> str:
        """A fresh code, as the patient shows it."""
        return str(code_of(self.client, self.patient, self.rx.id)["code"])

    def verify(self, code: str) -> httpx.Response:
        """The pharmacist verifies ``code``."""
        return self.client.post(f"{PHARMACY}/verify", json={"code": code}, headers=self.pharmacist)

    def dispense(self, code: str, **changes: Any) -> httpx.Response:
        """The pharmacist dispenses ``code``."""
        return self.client.post(
            f"{PHARMACY}/dispenses", json=dispense_body(code, **changes), headers=self.pharmacist
        )


@pytest.fixture
def world(client: TestClient, cast: Cast, prescription_factory: Any) -> Setup:
    """An active prescription (21 capsules, 2 refills: 3 fills) and signed-in patient and pharmacist."""
    return Setup(client, cast, prescription_factory(cast["doctor"], cast["patient"], refills=2))


def assert_refused(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The response is a problem document refusing with ``reason``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = dict(response.json())
    assert body["reason"] == reason, body
    return body


# --- the round trip -----------------------------------------------------------------------------------------


def test_qr_round_trip_png_to_zxing_to_verified(world: Setup, cast: Cast) -> None:
    png = world.client.get(f"{API}/prescriptions/{world.rx.id}/qr.png", headers=world.patient)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    response = world.client.post(
        f"{PHARMACY}/verify-image",
        files={"image": ("screenshot.png", png.content, "image/png")},
        headers=world.pharmacist,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    patient = cast["patient"].patient
    assert patient is not None
    assert body["patient"] == {
        "id": str(patient.id),
        "name": f"{patient.given_name} {patient.family_name}",
        "health_id": patient.health_id,
        "birth_date": patient.birth_date.isoformat(),
    }
    assert body["drug"] == {"code": "308191", "name": "Amoxicillin", "strength": "500 mg", "form": "capsule"}
    assert (body["dose"], body["instructions"]) == ("1 capsule", "Take with water, with or without food.")
    assert (body["quantity"], body["fill_number"], body["fills_allowed"], body["refills_left"]) == (
        21,
        1,
        3,
        2,
    )
    assert body["prescriber_name"] == cast["doctor"].full_name
    assert qr.decode(body["code"]).prescription_id == world.rx.id
    # the verified code is the one the picture carried: it dispenses
    assert world.dispense(body["code"]).status_code == 201


def test_verify_is_audited_as_the_pharmacist_reading_the_patient(world: Setup, cast: Cast) -> None:
    assert world.verify(world.code()).status_code == 200
    [entry] = audit_entries("prescription.verify", "success")
    assert entry.actor_id == cast["pharmacist"].id
    assert entry.patient_id == cast["patient"].patient_id
    assert (entry.resource_type, entry.resource_id) == ("MedicationRequest", str(world.rx.id))
    # issuing the code was audited as the patient reading their prescription
    [issued] = audit_entries("prescription.qr", "success")
    assert issued.actor_id == cast["patient"].id


# --- refusals -----------------------------------------------------------------------------------------------


def test_forged_code_signed_by_another_key_is_refused(world: Setup, cast: Cast, make: Any) -> None:
    document, _signature = parts(world.code())
    impostor = make.staff("doctor")
    forged = signed_by(impostor.id, document)  # names the real prescriber, signed by someone else
    body = assert_refused(world.verify(forged), 422, "forged")
    assert "forged" in body["detail"]
    [denied] = audit_entries("prescription.verify", "denied")
    assert denied.actor_id == cast["pharmacist"].id
    assert denied.patient_id is None  # an unverified code names nobody in the audit log
    assert '"forged"' in denied.detail


def test_code_signed_by_the_prescriber_for_another_patient_is_refused(world: Setup, cast: Cast) -> None:
    document, _signature = parts(world.code())
    other = {**document, "hid": cast.other_patient.health_id}
    assert_refused(world.verify(signed_by(cast["doctor"].id, other)), 422, "forged")


@pytest.mark.parametrize(
    "change",
    [{"q": 210}, {"rl": 9}, {"fu": 0, "dn": "Oxycodone"}, {"vu": "2099-12-31"}, {"hid": "000000000000"}],
    ids=["quantity", "refills", "drug-name", "validity", "patient"],
)
def test_altered_payload_with_the_signature_kept_is_refused(world: Setup, change: dict[str, Any]) -> None:
    document, signature = parts(world.code())
    body = assert_refused(world.verify(rebuild({**document, **change}, signature)), 422, "altered")
    assert "changed after the prescriber signed it" in body["detail"]
    assert len(audit_entries("prescription.verify", "denied")) == 1


def test_signature_bytes_flipped_is_refused_as_altered(world: Setup) -> None:
    document, signature = parts(world.code())
    raw = bytearray(base64.urlsafe_b64decode(signature + "=="))
    raw[10] ^= 0x01
    assert_refused(world.verify(rebuild(document, b64(bytes(raw)))), 422, "altered")


def test_unknown_key_id_is_refused_as_forged(world: Setup) -> None:
    document, _signature = parts(world.code())
    key = Ed25519PrivateKey.generate()
    message = canonical_json({**document, "kid": "f" * 16})
    assert_refused(world.verify(f"CSRX1.{b64(message)}.{b64(key.sign(message))}"), 422, "forged")


@pytest.mark.parametrize(
    "text", ["", "   ", "hello", "CSRX1.abc.def"], ids=["empty", "blank", "word", "garbage"]
)
def test_malformed_code_is_refused(world: Setup, text: str) -> None:
    response = world.verify(text)
    if not text:
        assert response.status_code == 422  # rejected by the request schema already
        return
    assert_refused(response, 422, "malformed")
    [denied] = audit_entries("prescription.verify", "denied")
    assert '"malformed"' in denied.detail


def set_state(prescription_id: uuid.UUID, **values: Any) -> None:
    """Change a stored prescription (as the prescriber's service or time would)."""
    with transaction(session_factory()) as s:
        found = s.get(Prescription, prescription_id)
        assert found is not None
        for name, value in values.items():
            setattr(found, name, value)


@pytest.mark.parametrize(
    ("state", "reason", "words"),
    [
        ({"status": "cancelled"}, "cancelled", "cancelled"),
        ({"status": "stopped"}, "stopped", "stopped"),
        ({"status": "on-hold"}, "on_hold", "on hold"),
        ({"status": "draft"}, "draft", "draft"),
        ({"dispense_count": 3}, "used_up", "needs a renewal"),
        ({"status": "completed"}, "completed", "completed"),
        (
            {
                "start_date": date.today() - timedelta(days=400),
                "valid_until": date.today() - timedelta(days=1),
            },
            "expired",
            "expired",
        ),
    ],
    ids=["cancelled", "stopped", "on-hold", "draft", "used-up", "completed", "expired"],
)
def test_codes_of_prescriptions_that_cannot_be_dispensed_are_refused(
    world: Setup, cast: Cast, state: dict[str, Any], reason: str, words: str
) -> None:
    code = world.code()  # issued while the prescription was active
    set_state(world.rx.id, **state)
    body = assert_refused(world.verify(code), 409, reason)
    assert words in body["detail"]
    assert_refused(world.dispense(code), 409, reason)
    assert dispense_rows(world.rx.id) == []
    denied = audit_entries("prescription.verify", "denied") + audit_entries("prescription.dispense", "denied")
    assert len(denied) == 2
    assert all(e.patient_id == cast["patient"].patient_id and f'"{reason}"' in e.detail for e in denied)
    # and the patient's app gets no code for it either, saying why
    refused = world.client.get(f"{API}/prescriptions/{world.rx.id}/qr", headers=world.patient)
    assert_refused(refused, 409, reason)


def test_expiry_is_inclusive_of_the_last_valid_day(world: Setup) -> None:
    code = world.code()
    set_state(world.rx.id, start_date=date.today() - timedelta(days=30), valid_until=date.today())
    assert world.verify(code).status_code == 200


def test_an_old_code_is_superseded_after_a_dispense_and_a_fresh_code_works(world: Setup) -> None:
    old = world.code()
    assert world.dispense(old).status_code == 201
    body = assert_refused(world.verify(old), 409, "superseded")
    assert "out of date" in body["detail"]
    assert "refresh" in body["detail"]
    assert_refused(world.dispense(old), 409, "superseded")
    fresh = world.code()
    assert world.verify(fresh).json()["fill_number"] == 2
    assert world.dispense(fresh).json()["fill_number"] == 2


def test_code_of_a_deleted_prescription_is_not_found(world: Setup) -> None:
    code = world.code()
    with transaction(session_factory()) as s:
        s.execute(delete(Prescription).where(Prescription.id == world.rx.id))
    assert_refused(world.verify(code), 404, "not_found")


# --- dispensing ---------------------------------------------------------------------------------------------


def test_dispense_records_the_fill_and_tells_the_patient(world: Setup, cast: Cast) -> None:
    response = world.dispense(world.code(), quantity=20, lot=" B-2231 ", days_supply=6)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["fill_number"], body["fills_allowed"], body["refills_left"]) == (1, 3, 2)
    assert (body["quantity"], body["lot"], body["days_supply"]) == (20, "B-2231", 6)
    assert body["prescription_status"] == "active"
    assert body["pharmacy_id"] == str(cast.org.id)
    assert body["pharmacy_name"] == cast.org.name
    assert body["dispensed_on"] == body["dispensed_at"][:10]  # the UTC date
    [row] = dispense_rows(world.rx.id)
    assert (row.fill_number, row.quantity, row.lot, row.days_supply) == (1, 20, "B-2231", 6)
    assert row.pharmacist_id == cast["pharmacist"].id
    assert row.patient_id == cast["patient"].patient_id
    assert current(world.rx.id).dispense_count == 1
    [entry] = audit_entries("prescription.dispense", "success")
    assert (entry.actor_id, entry.patient_id) == (cast["pharmacist"].id, cast["patient"].patient_id)
    assert (entry.resource_type, entry.resource_id) == ("MedicationDispense", str(row.id))
    with transaction(session_factory()) as s:
        [note] = s.execute(select(Notification).where(Notification.user_id == cast["patient"].id)).scalars()
        assert note.body == (
            f"Your prescription for Amoxicillin 500 mg was dispensed at {cast.org.name}; 2 refills left."
        )


def test_days_supply_defaults_to_the_prescription(world: Setup) -> None:
    assert world.dispense(world.code()).json()["days_supply"] == 7


def test_the_last_fill_keeps_the_prescription_active_and_asks_for_a_renewal(
    client: TestClient, cast: Cast, prescription_factory: Any
) -> None:
    world = Setup(client, cast, prescription_factory(cast["doctor"], cast["patient"], refills=0))
    code = world.code()
    body = world.dispense(code).json()
    assert (body["fill_number"], body["refills_left"], body["prescription_status"]) == (1, 0, "active")
    stored = current(world.rx.id)
    assert (stored.status, stored.dispense_count) == ("active", 1)
    assert_refused(world.verify(code), 409, "used_up")
    with transaction(session_factory()) as s:
        [note] = s.execute(select(Notification).where(Notification.user_id == cast["patient"].id)).scalars()
        assert note.body.endswith("no refills left: ask for a renewal before you run out.")


def test_the_patient_sees_the_refill_count_drop(world: Setup) -> None:
    seen = []
    for _fill in range(3):
        shown = code_of(world.client, world.patient, world.rx.id)
        seen.append((shown["fills_used"], shown["refills_left"]))
        assert world.dispense(shown["code"]).status_code == 201
    assert seen == [(0, 2), (1, 2), (2, 1)]  # the first fill is not a refill
    # fully used now: no more codes, the patient needs a renewal
    assert_refused(
        world.client.get(f"{API}/prescriptions/{world.rx.id}/qr", headers=world.patient), 409, "used_up"
    )
    assert [d.fill_number for d in dispense_rows(world.rx.id)] == [1, 2, 3]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": 22}, "quantity"),  # more than prescribed per fill
        ({"quantity": 0}, "quantity"),
        ({"lot": "   "}, "lot"),
        ({"lot": "LOT\x07"}, "lot"),
        ({"lot": "L" * 41}, "lot"),
        ({"days_supply": 0}, "days_supply"),
        ({"days_supply": 366}, "days_supply"),
    ],
    ids=[
        "quantity-over",
        "quantity-zero",
        "lot-blank",
        "lot-control-char",
        "lot-too-long",
        "days-zero",
        "days-over",
    ],
)
def test_dispense_input_is_validated(world: Setup, changes: dict[str, Any], field: str) -> None:
    response = world.dispense(world.code(), **changes)
    assert response.status_code == 422, response.text
    body = response.json()
    named = body.get("field") or " ".join(e["field"] for e in body.get("errors", []))
    assert field in named, body
    assert dispense_rows(world.rx.id) == []
    assert current(world.rx.id).dispense_count == 0


def test_a_doctor_may_not_dispense(world: Setup, cast: Cast) -> None:
    doctor = login(world.client, cast["doctor"].email, cast["doctor"].password)
    response = world.client.post(f"{PHARMACY}/dispenses", json=dispense_body(world.code()), headers=doctor)
    assert response.status_code == 403
    assert dispense_rows(world.rx.id) == []
    [denied] = audit_entries("prescription.dispense", "denied")
    assert denied.actor_id == cast["doctor"].id


def test_eight_pharmacists_racing_for_the_last_fill_exactly_one_wins(
    app: Any, cast: Cast, make: Any, prescription_factory: Any
) -> None:
    racers = 8
    rx = prescription_factory(cast["doctor"], cast["patient"], refills=1, dispense_count=1)  # one fill left
    pharmacists = [make.staff("pharmacist", make.org()) for _ in range(racers)]
    with TestClient(app) as client:
        tokens = [login(client, p.email, p.password) for p in pharmacists]
        code = code_of(client, login(client, cast["patient"].email, cast["patient"].password), rx.id)["code"]

    async def race() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caresync.test") as client:
            calls = [
                client.post(f"{PHARMACY}/dispenses", json=dispense_body(code), headers=h) for h in tokens
            ]
            return list(await asyncio.gather(*calls))

    responses = run_coroutine(race())
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == racers - 1, statuses
    reasons = {r.json()["reason"] for r in responses if r.status_code == 409}
    assert reasons <= {"already_dispensed", "superseded", "used_up"}, reasons
    rows = dispense_rows(rx.id)
    assert [d.fill_number for d in rows] == [2]  # fills allowed: 2, one was dispensed before
    stored = current(rx.id)
    assert (stored.dispense_count, stored.status) == (2, "active")


def test_the_database_refuses_a_fill_beyond_the_allowed_count(cast: Cast, prescription_factory: Any) -> None:
    rx = prescription_factory(cast["doctor"], cast["patient"], refills=0, dispense_count=1)
    session = session_factory()()
    try:
        found = session.get(Prescription, rx.id)
        assert found is not None
        found.dispense_count = 2  # one more than refills + 1
        with pytest.raises(IntegrityError):
            session.flush()
    finally:
        session.rollback()
        session.close()
    assert current(rx.id).dispense_count == 1


# --- the pharmacy's dispenses -------------------------------------------------------------------------------


def test_pharmacy_lists_its_own_dispenses_newest_first_in_pages(
    world: Setup, cast: Cast, make: Any, prescription_factory: Any
) -> None:
    second = prescription_factory(
        cast["doctor"], cast["patient"], medication_name="Ibuprofen", medication_code="197806"
    )
    assert world.dispense(world.code()).status_code == 201
    assert world.dispense(code_of(world.client, world.patient, second.id)["code"]).status_code == 201
    first_page = world.client.get(
        f"{PHARMACY}/dispenses", params={"limit": 1}, headers=world.pharmacist
    ).json()
    assert [i["drug"]["name"] for i in first_page["items"]] == ["Ibuprofen"]
    assert first_page["next_cursor"]
    rest = world.client.get(
        f"{PHARMACY}/dispenses",
        params={"limit": 1, "cursor": first_page["next_cursor"]},
        headers=world.pharmacist,
    ).json()
    assert [i["drug"]["name"] for i in rest["items"]] == ["Amoxicillin"]
    assert rest["next_cursor"] is None
    # another pharmacy sees none of them
    elsewhere = make.staff("pharmacist", make.org())
    other = world.client.get(
        f"{PHARMACY}/dispenses", headers=login(world.client, elsewhere.email, elsewhere.password)
    )
    assert other.status_code == 200
    assert other.json() == {"items": [], "next_cursor": None}
    assert cast["patient"].patient is not None
    assert cast["patient"].patient.family_name not in other.text
    assert audit_entries("dispense.list", "success")


def test_a_bad_cursor_is_a_clear_422(world: Setup) -> None:
    response = world.client.get(
        f"{PHARMACY}/dispenses", params={"cursor": "nonsense"}, headers=world.pharmacist
    )
    assert response.status_code == 422
    assert "cursor" in response.json()["detail"]


# --- the printable PDF --------------------------------------------------------------------------------------


def pdf_images(pdf: bytes) -> list[bytes]:
    """The RGB images WeasyPrint embedded (Flate + PNG predictors), rebuilt as PNG files."""
    found = []
    pattern = (
        rb"/Subtype /Image/Width (\d+)/Height (\d+)/ColorSpace /DeviceRGB/BitsPerComponent 8"
        rb".*?/Length (\d+)>>\nstream\n"
    )
    for match in re.finditer(pattern, pdf, re.DOTALL):
        width, height, length = (int(g) for g in match.groups())
        data = pdf[match.end() : match.end() + length]

        def chunk(kind: bytes, body: bytes) -> bytes:
            return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        found.append(
            b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
        )
    return found


def pdf_texts(pdf: bytes) -> bytes:
    """Every Flate stream of the PDF, inflated (object streams hold the outline's titles)."""
    out = []
    for match in re.finditer(rb"stream\r?\n", pdf):
        try:
            out.append(zlib.decompressobj().decompress(pdf[match.end() :]))
        except zlib.error:
            continue
    return b"\n".join(out)


def test_printable_pdf_carries_the_drug_and_a_qr_code_that_verifies(world: Setup, cast: Cast) -> None:
    response = world.client.get(f"{API}/prescriptions/{world.rx.id}/print.pdf", headers=world.patient)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert f'filename="prescription-{world.rx.id}.pdf"' in response.headers["content-disposition"]
    pdf = response.content
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert b"(Amoxicillin 500 mg)" in pdf_texts(pdf)  # the heading, in the document outline
    [image] = pdf_images(pdf)
    code = qr.read_image(image)
    assert world.verify(code).status_code == 200
    [printed] = audit_entries("prescription.print", "success")
    assert printed.patient_id == cast["patient"].patient_id


def test_nothing_is_fetched_while_rendering_the_pdf(world: Setup) -> None:
    from caresync.prescriptions.dispensing.pdf import data_only_fetcher

    fetcher = data_only_fetcher()
    for url in ("http://example.org/tracker.png", "file:///etc/passwd", "https://example.org/font.woff"):
        with pytest.raises(ValueError, match="disallowed protocol"):
            fetcher.fetch(url)
    png = qr.render_png("x")
    assert fetcher.fetch("data:image/png;base64," + base64.b64encode(png).decode()).read() == png


def test_image_upload_errors_are_clear(world: Setup) -> None:
    def upload(data: bytes) -> httpx.Response:
        files = {"image": ("qr.png", data, "image/png")}
        return world.client.post(f"{PHARMACY}/verify-image", files=files, headers=world.pharmacist)

    assert upload(b"%PDF-1.7 not an image").status_code == 415
    from PIL import Image

    blank = io.BytesIO()
    Image.new("RGB", (300, 300), "white").save(blank, "PNG")
    empty = upload(blank.getvalue())
    assert empty.status_code == 422
    assert empty.json()["detail"].startswith("No QR code found in the image")
    missing = world.client.post(f"{PHARMACY}/verify-image", headers=world.pharmacist)
    assert missing.status_code == 422
    assert "photo or screenshot" in missing.json()["detail"]


def test_issuing_codes_reuses_the_prescribers_key(world: Setup) -> None:
    for _ in range(3):
        world.code()
    with transaction(session_factory()) as s:
        keys = s.execute(
            select(func.count()).where(SigningKey.user_id == world.rx.prescriber_id)
        ).scalar_one()
    assert keys == 1
