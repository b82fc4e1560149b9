"""Health record endpoints under ``/api/v1/records``: upload (multipart), timeline, one record, its file,
its verification, and an exportable bundle."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel

from caresync.records import service
from caresync.records.models import HealthRecord
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/records", tags=["records"])


class RecordOut(BaseModel):
    """A record's metadata (the file itself is at ``/file``)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    category: str
    title: str
    recorded_on: date
    media_type: str
    size: int
    sha256: str
    uploaded_by: uuid.UUID
    supersedes_id: uuid.UUID | None
    superseded: bool = False
    created_at: datetime

    @classmethod
    def of(cls, record: HealthRecord, superseded: bool = False) -> RecordOut:
        """From a row."""
        return cls(
            id=record.id,
            patient_id=record.patient_id,
            category=record.category,
            title=record.title,
            recorded_on=record.recorded_on,
            media_type=record.media_type,
            size=record.size,
            sha256=record.file_sha256,
            uploaded_by=record.uploaded_by,
            supersedes_id=record.supersedes_id,
            superseded=superseded,
            created_at=record.created_at,
        )


class VerificationOut(BaseModel):
    """Whether the record is intact and authentic, and what is wrong if not."""

    ok: bool
    file_intact: bool
    manifest_matches: bool
    signature_valid: bool
    problems: list[str]
    signer_fingerprint: str


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RecordOut)
def upload(
    principal: CurrentUser,
    db: Db,
    file: Annotated[UploadFile, File(description="PDF, PNG, JPEG or plain text")],
    patient_id: Annotated[uuid.UUID, Form()],
    category: Annotated[str, Form(max_length=20)],
    title: Annotated[str, Form(max_length=200)],
    recorded_on: Annotated[date, Form()],
    client_id: Annotated[str, Form(max_length=60)] = "api",
    supersedes_id: Annotated[uuid.UUID | None, Form()] = None,
) -> RecordOut:
    """Upload a record: stored encrypted, hashed, and its manifest signed with your key."""
    data = file.file.read()  # already received and spooled by the framework; this thread may block
    request = service.Upload(patient_id, category, title, recorded_on, client_id, supersedes_id)
    out = RecordOut.of(service.upload(db, principal, request, data))
    db.commit()
    return out


@router.get("", response_model=list[RecordOut])
def timeline(
    principal: CurrentUser, db: Db, patient_id: uuid.UUID, category: Annotated[str, Query(max_length=20)] = ""
) -> list[RecordOut]:
    """A patient's records, newest first; superseded versions stay listed and are marked."""
    records = service.timeline(db, principal, patient_id, category=category)
    old = service.superseded_ids(db, records)
    out = [RecordOut.of(r, r.id in old) for r in records]
    db.commit()
    return out


@router.get("/{record_id}", response_model=RecordOut)
def get_record(record_id: uuid.UUID, principal: CurrentUser, db: Db) -> RecordOut:
    """One record's metadata."""
    record = service.get(db, principal, record_id)
    out = RecordOut.of(record, record.id in service.superseded_ids(db, [record]))
    db.commit()
    return out


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
