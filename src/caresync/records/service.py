"""Record use cases: upload (store encrypted, hash, sign a manifest), the timeline, read, verify, and
export a bundle that stock tools can check. Every read passes the consent rule of
:mod:`caresync.records.consent` (a record outside the reader's consented categories does not exist for
them) and is audited; reads under break-glass are flagged."""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from caresync.core import audit, signing, storage
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, authorize_patient
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Patient, User
from caresync.records.consent import ReadScope, read_scope
from caresync.records.models import HealthRecord
from caresync.records.rules import (
    CATEGORIES,
    FILE_TYPES,
    MANIFEST_VERSION,
    check_vital_signs,
    parse_categories,
)
from caresync.scheduling import booking as scheduling
from caresync.scheduling.models import Practitioner

CLIENT_CLOCK_SKEW = timedelta(minutes=10)
OPENSSL_COMMAND = (
    "openssl pkeyutl -verify -pubin -inkey public_key.pem -rawin -in manifest.json -sigfile manifest.sig"
)


@dataclass(frozen=True)
class Upload:
    """What an upload carries besides the file."""

    patient_id: uuid.UUID
    category: str
    title: str
    recorded_on: date
    client_id: str = "web"
    supersedes_id: uuid.UUID | None = None
    appointment_id: uuid.UUID | None = None
    measurements: dict[str, float] | None = None
    client_signature: ClientSignature | None = None


@dataclass(frozen=True)
class ClientSignature:
    """A manifest signed on the uploader's own device, with their registered key."""

    manifest: str
    signature: bytes


def upload(session: Session, principal: Principal, request: Upload, data: bytes) -> HealthRecord:
    """Store the file (encrypted), sign its manifest with the uploader's key, and add the record. A
    correction names the record it supersedes; the old one stays, marked as superseded."""
    authorize_patient(session, principal, request.patient_id, Perm.PATIENT_WRITE, "record.create")
    if request.category not in CATEGORIES:
        raise ValidationFailed(f"Unknown category {request.category!r}.", extra={"field": "category"})
    title = clean_line(request.title)
    if not title:
        raise ValidationFailed("Give the record a title.", extra={"field": "title"})
    if request.recorded_on > utcnow().date():
        raise ValidationFailed("The record's date is in the future.", extra={"field": "recorded_on"})
    if request.supersedes_id is not None:
        _check_supersedable(session, request.patient_id, request.supersedes_id)
    measurements = _check_measurements(request)
    if request.appointment_id is not None:
        _check_appointment(session, request.patient_id, request.appointment_id)
    stored = storage.put(session, data, allowed_types=FILE_TYPES)
    patient = session.get(Patient, request.patient_id)
    assert patient is not None  # authorize_patient found it
    assert principal.user_id is not None  # only signed-in users pass authorize_patient
    key = signing.ensure_key(session, principal.user_id)
    described = {
        "v": MANIFEST_VERSION,
        "sha256": stored.sha256,
        "size": stored.size,
        "media_type": stored.media_type,
        "category": request.category,
        "title": title,
        "recorded_on": request.recorded_on.isoformat(),
        "patient_health_id": patient.health_id,
        "uploader_id": str(principal.user_id),
        "uploader_name": principal.full_name,
        "uploader_role": principal.role,
        "client": request.client_id[:60],
        "supersedes": str(request.supersedes_id) if request.supersedes_id else None,
        "appointment_id": str(request.appointment_id) if request.appointment_id else None,
        "measurements": measurements,
        "key_fingerprint": key.fingerprint,
    }
    if key.private_key_encrypted is None:  # the uploader keeps their private key: they signed on their device
        record_id, manifest, signature = _check_client_signature(
            session, request.client_signature, described, key
        )
    else:
        if request.client_signature is not None:
            raise ValidationFailed(
                "Register your public key before uploading your own signatures.", extra={"field": "signature"}
            )
        record_id = uuid.uuid4()
        manifest = signing.canonical_json(
            {**described, "record_id": str(record_id), "signed_at": utcnow().isoformat()}
        )
        signature = signing.sign_with(key, manifest)
    record = HealthRecord(
        id=record_id,
        patient_id=request.patient_id,
        category=request.category,
        title=title,
        recorded_on=request.recorded_on,
        file_sha256=stored.sha256,
        media_type=stored.media_type,
        size=stored.size,
        manifest=manifest.decode(),
        signature=base64.b64encode(signature).decode(),
        signing_key_id=key.id,
        uploaded_by=principal.user_id,
        supersedes_id=request.supersedes_id,
        appointment_id=request.appointment_id,
        measurements=measurements,
    )
    session.add(record)
    session.flush()
    audit.record(
        session,
        principal,
        "record.create",
        patient_id=request.patient_id,
        resource_type="HealthRecord",
        resource_id=record.id,
        detail={"category": request.category, "sha256": stored.sha256},
    )
    from caresync.documents.search import service as search  # lazy: search.service imports this module

    search.index_later(session, principal, record)
    return record


def my_signing_key(session: Session, principal: Principal) -> signing.SigningKey:
    """The caller's active signing key (a server-held one is created on first use)."""
    return signing.ensure_key(session, _signed_in(principal))


def register_signing_key(session: Session, principal: Principal, public_key_pem: str) -> signing.SigningKey:
    """From now on the caller signs on their own device: their uploads must carry a manifest signed with
    the private half of ``public_key_pem``. Earlier keys are revoked but keep verifying old records."""
    key = signing.register_public_key(session, _signed_in(principal), public_key_pem)
    audit.record(
        session,
        principal,
        "signing_key.register",
        resource_type="SigningKey",
        resource_id=key.id,
        detail={"fingerprint": key.fingerprint},
    )
    return key


def _signed_in(principal: Principal) -> uuid.UUID:
    if principal.user_id is None:
        raise Forbidden("Only a signed-in person has a signing key.")
    return principal.user_id


def _check_client_signature(
    session: Session,
    client: ClientSignature | None,
    described: dict[str, Any],
    key: signing.SigningKey,
) -> tuple[uuid.UUID, bytes, bytes]:
    """Accept a manifest the uploader signed on their own device: it must be canonical JSON describing
    exactly this upload (plus a fresh ``record_id`` and a ``signed_at`` within minutes of now), and the
    signature must verify with their registered key. Returns (record id, manifest, signature)."""
    if client is None:
        raise ValidationFailed(
            "You registered your own signing key: sign the manifest on your device and send it with its "
            "signature.",
            extra={"field": "signature"},
        )
    try:
        document = json.loads(client.manifest)
        if not isinstance(document, dict):
            raise ValueError
    except ValueError:
        raise ValidationFailed("The manifest is not a JSON object.", extra={"field": "manifest"}) from None
    manifest = client.manifest.encode()
    if signing.canonical_json(document) != manifest:
        raise ValidationFailed(
            "The manifest must be canonical JSON: sorted keys, no spaces, UTF-8.", extra={"field": "manifest"}
        )
    wrong = sorted(name for name, value in described.items() if document.get(name) != value)
    extra = sorted(set(document) - set(described) - {"record_id", "signed_at"})
    if wrong or extra:
        raise ValidationFailed(
            f"The manifest does not describe this upload: check {', '.join(wrong + extra)}.",
            extra={"field": "manifest"},
        )
    try:
        record_id = uuid.UUID(str(document.get("record_id")))
        signed_at = datetime.fromisoformat(str(document.get("signed_at")))
    except ValueError:
        raise ValidationFailed(
            "The manifest needs a record_id (a new UUID) and signed_at (ISO 8601 with time zone).",
            extra={"field": "manifest"},
        ) from None
    if signed_at.tzinfo is None or abs(utcnow() - signed_at) > CLIENT_CLOCK_SKEW:
        raise ValidationFailed(
            "signed_at must be the current time (with its time zone); check your device's clock.",
            extra={"field": "manifest"},
        )
    if session.get(HealthRecord, record_id) is not None:
        raise Conflict("A record with this record_id exists: sign a manifest with a new UUID.")
    if not signing.verify(key.public_key_pem, manifest, client.signature):
        raise ValidationFailed(
            "The signature does not verify with your registered public key.", extra={"field": "signature"}
        )
    return record_id, manifest, client.signature


def _check_supersedable(session: Session, patient_id: uuid.UUID, old_id: uuid.UUID) -> None:
    old = session.get(HealthRecord, old_id)
    if old is None or old.patient_id != patient_id:
        raise ValidationFailed(
            "The record to correct is not in this patient's record.", extra={"field": "supersedes_id"}
        )
    if session.execute(select(HealthRecord.id).where(HealthRecord.supersedes_id == old_id)).first():
        raise Conflict("That record was already corrected; correct the newest version instead.")


def _check_measurements(request: Upload) -> dict[str, float] | None:
    if not request.measurements:
        return None
    if request.category != "vitals":
        raise ValidationFailed("Only vital-sign records carry measurements.", extra={"field": "measurements"})
    try:
        return check_vital_signs(request.measurements)
    except ValueError as error:
        raise ValidationFailed(str(error), extra={"field": "measurements"}) from None


def _check_appointment(session: Session, patient_id: uuid.UUID, appointment_id: uuid.UUID) -> None:
    if not scheduling.appointment_belongs_to(session, appointment_id, patient_id):
        raise ValidationFailed("That appointment is not this patient's.", extra={"field": "appointment_id"})


def get(
    session: Session, principal: Principal, record_id: uuid.UUID, action: str = "record.read"
) -> HealthRecord:
    """One record the principal may read under the consent rule (404 otherwise, audited)."""
    return _readable(session, principal, record_id, action)[0]


def _readable(
    session: Session, principal: Principal, record_id: uuid.UUID, action: str
) -> tuple[HealthRecord, ReadScope]:
    """The record and the reader's scope over its patient, if the scope covers it (audited either way)."""
    record = session.get(HealthRecord, record_id)
    scope = None
    if record is not None:
        try:
            scope = read_scope(session, principal, record.patient_id, action)
        except NotFound:
            raise NotFound("No such record.") from None
    if record is None or scope is None or not scope.allows(record.category):
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=record.patient_id if record else None,
            resource_type="HealthRecord",
            resource_id=record_id,
        )
        raise NotFound("No such record.")
    audit.record(
        session,
        principal,
        action,
        patient_id=record.patient_id,
        resource_type="HealthRecord",
        resource_id=record.id,
        detail={"access": scope.access.value},
        flagged=scope.break_glass,
    )
    return record, scope


@dataclass(frozen=True)
class TimelineFilter:
    """Which of a patient's records to list: categories (all readable when empty), who uploaded them,
    and a date range (inclusive)."""

    categories: tuple[str, ...] = ()
    uploaded_by: uuid.UUID | None = None
    date_from: date | None = None
    date_to: date | None = None
    created_from: datetime | None = None  # when the record was added: from (inclusive) …
    created_before: datetime | None = None  # … until (exclusive)
    superseded: bool | None = None  # True: only versions a correction replaced; False: only current ones


@dataclass(frozen=True)
class Timeline:
    """One page of the timeline, what the reader may see, and the uploaders' names."""

    page: Page[HealthRecord]
    scope: ReadScope
    superseded: set[uuid.UUID]
    uploaders: dict[uuid.UUID, str]


def timeline(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    filters: TimelineFilter = TimelineFilter(),
    *,
    limit: int = 50,
    cursor: str | None = None,
    count_total: bool = False,
) -> Timeline:
    """The patient's records the principal may read, newest first, one page at a time (superseded
    versions included and marked). With ``count_total`` the page also counts every match."""
    scope = read_scope(session, principal, patient_id, "record.list")
    try:
        wanted = parse_categories(filters.categories) or frozenset(CATEGORIES)
    except ValueError as error:
        raise ValidationFailed(str(error), extra={"field": "category"}) from None
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise ValidationFailed("The start date is after the end date.", extra={"field": "date_from"})
    query = select(HealthRecord).where(
        HealthRecord.patient_id == patient_id, HealthRecord.category.in_(sorted(wanted & scope.categories))
    )
    if filters.uploaded_by is not None:
        query = query.where(HealthRecord.uploaded_by == filters.uploaded_by)
    if filters.date_from is not None:
        query = query.where(HealthRecord.recorded_on >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(HealthRecord.recorded_on <= filters.date_to)
    if filters.created_from is not None:
        query = query.where(HealthRecord.created_at >= filters.created_from)
    if filters.created_before is not None:
        query = query.where(HealthRecord.created_at < filters.created_before)
    if filters.superseded is not None:
        newer = aliased(HealthRecord)
        replaced = exists().where(newer.supersedes_id == HealthRecord.id)
        query = query.where(replaced if filters.superseded else ~replaced)
    page = paginate(
        session,
        query,
        sort_column=HealthRecord.recorded_on,
        id_column=HealthRecord.id,
        descending=True,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
    audit.record(
        session,
        principal,
        "record.list",
        patient_id=patient_id,
        resource_type="HealthRecord",
        detail={"count": len(page.items), "access": scope.access.value},
        flagged=scope.break_glass,
    )
    return Timeline(page, scope, superseded_ids(session, page.items), uploader_names(session, page.items))


def uploader_names(session: Session, records: list[HealthRecord]) -> dict[uuid.UUID, str]:
    """The names of whoever uploaded ``records``."""
    ids = {r.uploaded_by for r in records}
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.full_name).where(User.id.in_(ids)))
    return {row.id: row.full_name for row in rows}


@dataclass(frozen=True)
class Uploader:
    """Who added a record: their name and role, and the profile that stands for them elsewhere (their
    directory profile for a practitioner, their own patient profile for a patient)."""

    name: str
    role: str
    practitioner_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None


def uploader_details(
    session: Session, records: Sequence[HealthRecord | RecordSummary]
) -> dict[uuid.UUID, Uploader]:
    """Whoever uploaded ``records``, by user id (one query, however many records)."""
    ids = {r.uploaded_by for r in records}
    if not ids:
        return {}
    query = (
        select(User.id, User.full_name, User.role, Practitioner.id, Patient.id)
        .outerjoin(Practitioner, Practitioner.user_id == User.id)
        .outerjoin(Patient, Patient.user_id == User.id)
        .where(User.id.in_(ids))
    )
    return {
        user_id: Uploader(name, str(role), practitioner_id, patient_id)
        for user_id, name, role, practitioner_id, patient_id in session.execute(query)
    }


def uploader_user_id(session: Session, resource_type: str, profile_id: uuid.UUID) -> uuid.UUID | None:
    """The user behind a practitioner's directory profile or a patient's profile (``None``: no such user),
    to filter the timeline by who uploaded."""
    if resource_type == "Practitioner":
        return session.execute(
            select(Practitioner.user_id).where(Practitioner.id == profile_id)
        ).scalar_one_or_none()
    return session.execute(select(Patient.user_id).where(Patient.id == profile_id)).scalar_one_or_none()


def readable_predecessors(
    session: Session, scope: ReadScope, records: Sequence[HealthRecord | RecordSummary]
) -> set[uuid.UUID]:
    """The versions ``records`` correct that the reader's ``scope`` covers (one query)."""
    ids = {r.supersedes_id for r in records if r.supersedes_id is not None}
    if not ids:
        return set()
    rows = session.execute(select(HealthRecord.id, HealthRecord.category).where(HealthRecord.id.in_(ids)))
    return {record_id for record_id, category in rows if scope.allows(category)}


@dataclass(frozen=True, slots=True)
class RecordSummary:
    """What a listing shows of a record, without its manifest, signature or key (cheap to load)."""

    id: uuid.UUID
    patient_id: uuid.UUID
    category: str
    title: str
    recorded_on: date
    media_type: str
    size: int
    uploaded_by: uuid.UUID
    supersedes_id: uuid.UUID | None
    appointment_id: uuid.UUID | None
    created_at: datetime
    measurements: dict[str, float] | None = None  # vital signs, for vital-sign records


@dataclass(frozen=True)
class WholeRecord:
    """Every record of a patient the reader may see, newest first, and which of them were corrected."""

    records: list[RecordSummary]
    scope: ReadScope
    superseded: set[uuid.UUID]


def whole_record(session: Session, principal: Principal, patient_id: uuid.UUID) -> WholeRecord:
    """All of the patient's records the principal may read, at once (for exports such as FHIR's
    ``$everything``): two queries however long the record, no file read, one audit entry."""
    scope = read_scope(session, principal, patient_id, "record.list")
    query = (
        select(
            HealthRecord.id,
            HealthRecord.category,
            HealthRecord.title,
            HealthRecord.recorded_on,
            HealthRecord.media_type,
            HealthRecord.size,
            HealthRecord.uploaded_by,
            HealthRecord.supersedes_id,
            HealthRecord.appointment_id,
            HealthRecord.created_at,
            HealthRecord.measurements,
        )
        .where(HealthRecord.patient_id == patient_id, HealthRecord.category.in_(sorted(scope.categories)))
        .order_by(HealthRecord.recorded_on.desc(), HealthRecord.id.desc())
    )
    records = [
        RecordSummary(
            id=row.id,
            patient_id=patient_id,
            category=row.category,
            title=row.title,
            recorded_on=row.recorded_on,
            media_type=row.media_type,
            size=row.size,
            uploaded_by=row.uploaded_by,
            supersedes_id=row.supersedes_id,
            appointment_id=row.appointment_id,
            created_at=row.created_at,
            measurements=row.measurements,
        )
        for row in session.execute(query)
    ]
    replaced = select(HealthRecord.supersedes_id).where(
        HealthRecord.patient_id == patient_id, HealthRecord.supersedes_id.is_not(None)
    )
    superseded = {old for old in session.execute(replaced).scalars() if old is not None}
    audit.record(
        session,
        principal,
        "record.list",
        patient_id=patient_id,
        resource_type="HealthRecord",
        detail={"count": len(records), "access": scope.access.value, "all": True},
        flagged=scope.break_glass,
    )
    return WholeRecord(records, scope, superseded)


def read_with_scope(
    session: Session, principal: Principal, record_id: uuid.UUID
) -> tuple[HealthRecord, ReadScope]:
    """One record and the reader's scope over its patient (404 otherwise; audited like :func:`get`)."""
    return _readable(session, principal, record_id, "record.read")


def uploaders(session: Session, principal: Principal, patient_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """Everyone who added to the patient's record (for the timeline's provider filter), by name."""
    scope = read_scope(session, principal, patient_id, "record.list")
    readable = select(HealthRecord.uploaded_by).where(
        HealthRecord.patient_id == patient_id, HealthRecord.category.in_(sorted(scope.categories))
    )  # an unreadable record's author would betray that it exists
    query = select(User.id, User.full_name).where(User.id.in_(readable)).order_by(User.full_name)
    return [(user_id, name) for user_id, name in session.execute(query)]


def versions(session: Session, principal: Principal, record_id: uuid.UUID) -> list[HealthRecord]:
    """Every version of the record (older and newer), oldest first, that the principal may read."""
    record, scope = _readable(session, principal, record_id, "record.read")
    return [r for r in _chain(session, record) if scope.allows(r.category)]


def _chain(session: Session, record: HealthRecord) -> list[HealthRecord]:
    """``record`` with the versions it corrects and those correcting it, oldest first."""
    chain = [record]
    while chain[0].supersedes_id is not None:
        older = session.get(HealthRecord, chain[0].supersedes_id)
        if older is None:
            break
        chain.insert(0, older)
    while True:
        newer = session.execute(
            select(HealthRecord).where(HealthRecord.supersedes_id == chain[-1].id)
        ).scalar_one_or_none()
        if newer is None:
            break
        chain.append(newer)
    return chain


@dataclass(frozen=True)
class RecordView:
    """A record with everything its page shows."""

    record: HealthRecord
    patient: Patient
    scope: ReadScope
    verification: Verification
    versions: list[HealthRecord]
    content: bytes | None  # the decrypted file; None when it is damaged or missing


def open_record(session: Session, principal: Principal, record_id: uuid.UUID) -> RecordView:
    """Read a record once (one audited read) with its patient, the reader's scope, its verification, the
    versions the reader may see and its decrypted file."""
    record, scope = _readable(session, principal, record_id, "record.read")
    try:
        data: bytes | None = storage.get(record.file_sha256)
    except (ValueError, NotFound):
        data = None
    patient = session.get(Patient, record.patient_id)
    assert patient is not None  # the record's foreign key
    readable = [r for r in _chain(session, record) if scope.allows(r.category)]
    return RecordView(record, patient, scope, _check(record, data), readable, data)


def content(session: Session, principal: Principal, record_id: uuid.UUID) -> tuple[HealthRecord, bytes]:
    """A record and its decrypted file (audited as a download)."""
    record = get(session, principal, record_id, "record.download")
    return record, stored_file(record)


def stored_file(record: HealthRecord) -> bytes:
    """The record's decrypted file; 409 when the stored copy is damaged (verification tells how)."""
    try:
        return storage.get(record.file_sha256)
    except ValueError:
        raise Conflict(
            "The stored file is damaged: it no longer matches its fingerprint. Verify the record for details."
        ) from None


def superseded_ids(session: Session, records: list[HealthRecord]) -> set[uuid.UUID]:
    """Which of ``records`` have a newer version."""
    ids = [r.id for r in records]
    successors = select(HealthRecord.supersedes_id).where(HealthRecord.supersedes_id.in_(ids))
    return {old for old in session.execute(successors).scalars() if old is not None}


@dataclass
class Verification:
    """The outcome of checking a record: the stored file still has the manifest's hash, the manifest
    describes this record, and the signature is the uploader's over exactly the stored manifest."""

    file_intact: bool = False
    manifest_matches: bool = False
    signature_valid: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything checked out."""
        return self.file_intact and self.manifest_matches and self.signature_valid


def verify(session: Session, principal: Principal, record_id: uuid.UUID) -> tuple[HealthRecord, Verification]:
    """Re-hash the stored file and check the manifest and its signature (for a reader the consent rule
    lets in; audited)."""
    record = get(session, principal, record_id, "record.verify")
    return record, check_record(record)


def check_record(record: HealthRecord) -> Verification:
    """Re-hash the stored file and check the manifest and its signature. No permission check: the caller
    has already decided the record may be shown (see :func:`verify`)."""
    try:
        data: bytes | None = storage.get(record.file_sha256)
    except (ValueError, NotFound):
        data = None
    return _check(record, data)


def _check(record: HealthRecord, data: bytes | None) -> Verification:
    """Verify ``record`` given its decrypted file (``None``: it could not be read)."""
    result = Verification()
    result.file_intact = data is not None and signing.sha256_hex(data) == record.file_sha256
    if not result.file_intact:
        result.problems.append("The stored file is damaged or missing: it no longer matches its fingerprint.")
    try:
        manifest = json.loads(record.manifest)
    except ValueError:
        manifest = {}
    result.manifest_matches = (
        manifest.get("sha256") == record.file_sha256
        and manifest.get("record_id") == str(record.id)
        and manifest.get("category") == record.category
    )
    if not result.manifest_matches:
        result.problems.append(
            "The manifest does not describe this record (its hash, id or category differ)."
        )
    result.signature_valid = signing.verify(
        record.signing_key.public_key_pem, record.manifest.encode(), base64.b64decode(record.signature)
    )
    if not result.signature_valid:
        result.problems.append("The signature does not match the manifest: it was altered after signing.")
    return result


def file_extension(media_type: str) -> str:
    """The usual file name extension of an accepted media type."""
    return {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(media_type, "txt")


def bundle(session: Session, principal: Principal, record_id: uuid.UUID) -> tuple[str, bytes]:
    """A zip anyone can check without CareSync: the file, the manifest, its signature and the signer's
    public key, with a README giving the openssl and sha256sum commands. Returns (filename, bytes)."""
    record = get(session, principal, record_id, "record.export")
    data = stored_file(record)
    extension = file_extension(record.media_type)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"record.{extension}", data)
        archive.writestr("manifest.json", record.manifest)
        archive.writestr("manifest.sig", base64.b64decode(record.signature))
        archive.writestr("public_key.pem", record.signing_key.public_key_pem)
        archive.writestr(
            "README.txt",
            "Check this record with stock tools:\n\n"
            f"  {OPENSSL_COMMAND}\n"
            "    -> 'Signature Verified Successfully': the manifest is exactly what the uploader signed.\n"
            f"  sha256sum record.{extension}\n"
            '    -> must equal the "sha256" field of manifest.json.\n',
        )
    return f"record-{record.id}.zip", buffer.getvalue()
