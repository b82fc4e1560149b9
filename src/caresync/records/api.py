"""Health record endpoints under ``/api/v1/records``: upload (multipart), the timeline, one record, its
file, versions, verification and an exportable bundle; the patient's consents; the organisation's
care-team policy."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response

from caresync.core.errors import ValidationFailed
from caresync.records import consent, service
from caresync.records.rules import CARE_TEAM_POLICIES, care_team_categories
from caresync.records.schemas import (
    ConsentIn,
    ConsentOut,
    PolicyIn,
    PolicyOut,
    RecordOut,
    RecordPage,
    SigningKeyIn,
    SigningKeyOut,
    VerificationOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/records", tags=["records"])
MAX_TEXT = 100_000
ED25519_SIGNATURE_BYTES = 64
# A stored file may be previewed in a frame of our own pages, and nothing in it may load or run anything.
FILE_HEADERS = {
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'",
}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RecordOut)
def upload(
    principal: CurrentUser,
    db: Db,
    patient_id: Annotated[uuid.UUID, Form()],
    category: Annotated[str, Form(max_length=20)],
    title: Annotated[str, Form(max_length=200)],
    recorded_on: Annotated[date, Form()],
    file: Annotated[UploadFile | None, File(description="PDF, PNG, JPEG or plain text")] = None,
    text: Annotated[str, Form(max_length=MAX_TEXT, description="the record as text, instead of a file")] = "",
    measurements: Annotated[str, Form(max_length=2000, description='vital signs as JSON: {"spo2": 97}')] = "",
    client_id: Annotated[str, Form(max_length=60)] = "api",
    supersedes_id: Annotated[uuid.UUID | None, Form()] = None,
    appointment_id: Annotated[uuid.UUID | None, Form()] = None,
    manifest: Annotated[
        str, Form(max_length=10_000, description="client-side signing: the signed manifest")
    ] = "",
    signature: Annotated[str, Form(max_length=200, description="client-side signing: base64 Ed25519")] = "",
) -> RecordOut:
    """Add a record (a file, or typed text): stored encrypted, hashed, and its manifest signed with your
    server-held key — or, if you registered your own public key, with the manifest and signature you
    made on your device. A correction names the record it supersedes."""
    if file is not None and file.filename:
        data = file.file.read()  # already received and spooled by the framework; this thread may block
    elif text.strip():
        data = text.strip().encode()
    else:
        raise ValidationFailed("Attach a file or type the record's text.", extra={"field": "file"})
    request = service.Upload(
        patient_id,
        category,
        title,
        recorded_on,
        client_id,
        supersedes_id,
        appointment_id,
        parse_measurements(measurements),
        parse_client_signature(manifest, signature),
    )
    out = RecordOut.of(service.upload(db, principal, request, data), uploader_name=principal.full_name)
    db.commit()
    return out


def parse_measurements(raw: str) -> dict[str, float] | None:
    """Vital signs from a JSON object of numbers (``None`` when empty)."""
    if not raw.strip():
        return None
    try:
        values = json.loads(raw)
        if not isinstance(values, dict):
            raise ValueError
        return {str(k): float(v) for k, v in values.items() if not isinstance(v, bool)}
    except (ValueError, TypeError):
        raise ValidationFailed(
            'Measurements must be a JSON object of numbers, like {"heart_rate": 72}.',
            extra={"field": "measurements"},
        ) from None


def parse_client_signature(manifest: str, signature: str) -> service.ClientSignature | None:
    """A device-made manifest and its base64 signature (``None`` when neither is sent)."""
    if not manifest and not signature:
        return None
    try:
        raw = base64.b64decode(signature, validate=True)
    except ValueError:
        raise ValidationFailed("The signature must be base64.", extra={"field": "signature"}) from None
    if not manifest or len(raw) != ED25519_SIGNATURE_BYTES:
        raise ValidationFailed(
            "Send the signed manifest with its 64-byte Ed25519 signature.", extra={"field": "signature"}
        )
    return service.ClientSignature(manifest, raw)


@router.get("/signing-key", response_model=SigningKeyOut)
def my_signing_key(principal: CurrentUser, db: Db) -> SigningKeyOut:
    """Your active signing key: its public half and whether CareSync holds the private half."""
    out = SigningKeyOut.of(service.my_signing_key(db, principal))
    db.commit()
    return out


@router.put("/signing-key", response_model=SigningKeyOut)
def register_signing_key(body: SigningKeyIn, principal: CurrentUser, db: Db) -> SigningKeyOut:
    """Sign on your own device from now on: register the Ed25519 public key (PEM) whose private half you
    keep. Your earlier key is revoked and still verifies your earlier records."""
    out = SigningKeyOut.of(service.register_signing_key(db, principal, body.public_key_pem))
    db.commit()
    return out


@router.get("", response_model=RecordPage)
def timeline(
    principal: CurrentUser,
    db: Db,
    patient_id: uuid.UUID,
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
    uploaded_by: uuid.UUID | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RecordPage:
    """A patient's records that you may read, newest first; superseded versions stay listed and are
    marked. Records outside your consented categories are left out."""
    filters = service.TimelineFilter(tuple(category or ()), uploaded_by, date_from, date_to)
    result = service.timeline(db, principal, patient_id, filters, limit=limit, cursor=cursor)
    out = RecordPage(
        items=[
            RecordOut.of(r, r.id in result.superseded, result.uploaders.get(r.uploaded_by, ""))
            for r in result.page.items
        ],
        next_cursor=result.page.next_cursor,
        readable_categories=sorted(result.scope.categories),
    )
    db.commit()
    return out


@router.post("/consents", status_code=status.HTTP_201_CREATED, response_model=ConsentOut)
def grant_consent(body: ConsentIn, principal: CurrentUser, db: Db) -> ConsentOut:
    """The patient lets a practitioner or an organisation read the chosen categories, optionally until a
    date."""
    request = consent.Grant(
        body.patient_id,
        tuple(body.categories),
        body.practitioner_id,
        body.organisation_id,
        body.expires_at,
        body.note,
    )
    out = ConsentOut.of(consent.grant(db, principal, request))
    db.commit()
    return out


@router.get("/consents", response_model=list[ConsentOut])
def list_consents(patient_id: uuid.UUID, principal: CurrentUser, db: Db) -> list[ConsentOut]:
    """Every consent the patient gave, newest first, with whether it is active, expired or revoked."""
    out = [ConsentOut.of(c) for c in consent.list_consents(db, principal, patient_id)]
    db.commit()
    return out


@router.post("/consents/{consent_id}/revoke", response_model=ConsentOut)
def revoke_consent(consent_id: uuid.UUID, principal: CurrentUser, db: Db) -> ConsentOut:
    """The patient withdraws a consent; it stops counting at once (revoking twice is harmless)."""
    out = ConsentOut.of(consent.revoke(db, principal, consent_id))
    db.commit()
    return out


@router.get("/policy", response_model=PolicyOut)
def get_policy(principal: CurrentUser, db: Db) -> PolicyOut:
    """What an active care relationship in your organisation reads without explicit consent."""
    out = _policy_out(consent.care_team_policy(db, principal.organisation_id))
    db.commit()
    return out


@router.put("/policy", response_model=PolicyOut)
def set_policy(body: PolicyIn, principal: CurrentUser, db: Db) -> PolicyOut:
    """An administrator sets the organisation's care-team policy."""
    out = _policy_out(consent.set_care_team_policy(db, principal, body.care_team))
    db.commit()
    return out


def _policy_out(policy: str) -> PolicyOut:
    return PolicyOut(
        care_team=policy,
        description=CARE_TEAM_POLICIES[policy],
        categories=sorted(care_team_categories(policy)),
    )


@router.get("/{record_id}", response_model=RecordOut)
def get_record(record_id: uuid.UUID, principal: CurrentUser, db: Db) -> RecordOut:
    """One record's metadata."""
    record = service.get(db, principal, record_id)
    names = service.uploader_names(db, [record])
    out = RecordOut.of(record, record.id in service.superseded_ids(db, [record]), names[record.uploaded_by])
    db.commit()
    return out


@router.get("/{record_id}/versions", response_model=list[RecordOut])
def record_versions(record_id: uuid.UUID, principal: CurrentUser, db: Db) -> list[RecordOut]:
    """Every version of the record, oldest first: the original and each correction."""
    chain = service.versions(db, principal, record_id)
    names = service.uploader_names(db, chain)
    out = [RecordOut.of(r, r is not chain[-1], names.get(r.uploaded_by, "")) for r in chain]
    db.commit()
    return out


@router.get("/{record_id}/file", response_class=Response)
def record_file(record_id: uuid.UUID, principal: CurrentUser, db: Db, download: bool = False) -> Response:
    """The record's file, decrypted: shown inline (for previews) unless ``download`` is set."""
    record, data = service.content(db, principal, record_id)
    response = file_response(record.id, record.media_type, data, download)
    db.commit()
    return response


def file_response(record_id: uuid.UUID, media_type: str, data: bytes, download: bool) -> Response:
    """A record's file as a response that browsers preview or save, never sniff or run."""
    return stored_file_response(
        f"record-{record_id}.{service.file_extension(media_type)}", media_type, data, download
    )


def stored_file_response(name: str, media_type: str, data: bytes, download: bool) -> Response:
    """A stored file (of a record, a scan …) named ``name``: previewed inline unless ``download``, with
    headers that keep browsers from sniffing or running it."""
    disposition = "attachment" if download else "inline"
    safe = "".join(c for c in name if c.isalnum() or c in "._-") or "file"
    return Response(
        data,
        media_type=media_type,
        headers={"Content-Disposition": f'{disposition}; filename="{safe}"', **FILE_HEADERS},
    )


@router.get("/{record_id}/verify", response_model=VerificationOut)
def verify(record_id: uuid.UUID, principal: CurrentUser, db: Db) -> VerificationOut:
    """Re-hash the stored file and check the signed manifest."""
    record, result = service.verify(db, principal, record_id)
    out = VerificationOut(
        ok=result.ok,
        file_intact=result.file_intact,
        manifest_matches=result.manifest_matches,
        signature_valid=result.signature_valid,
        problems=result.problems,
        signer_fingerprint=record.signing_key.fingerprint,
    )
    db.commit()
    return out


@router.get("/{record_id}/bundle", response_class=Response)
def export_bundle(record_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """A zip with the file, manifest, signature and public key, checkable with openssl."""
    name, content = service.bundle(db, principal, record_id)
    db.commit()
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
