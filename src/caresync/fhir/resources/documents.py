"""DocumentReference (the records of ``caresync.records``) and Consent (the patient's record consents).

A health record is a signed, stored file: it maps to a DocumentReference whose attachment points at the
file as a FHIR ``Binary`` (``Binary/{id}``, the same id; readable with the same token and scopes as the
document, and audited as a download). Records are never edited: a correction is a new version that
supersedes the old one, so the old one reads ``status: superseded`` and the new one ``relatesTo: replaces``
it. Creating a
DocumentReference uploads a record through the same service as the app (size and type checks, consent and
care rules, the signed manifest); updating one (PUT) is a correction: a new version replaces the one at
that id, and the answer is the new version (with its own id).

Consent and care rules come from the records service: a clinician sees only the categories a consent or
their care relationship opens, and a revoked consent hides the documents again at once.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from caresync.core import storage
from caresync.core.errors import NotFound
from caresync.db import utcnow
from caresync.fhir.context import JSON, FhirContext, reference
from caresync.fhir.outcome import invalid, not_supported
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.registry import included as included_reads
from caresync.fhir.search import (
    SearchQuery,
    SearchResult,
    date_range,
    drop_empty,
    fold_type_modifiers,
    instant,
    reference_id,
    searched_patient,
    split_or,
    token,
)
from caresync.records import consent as consents
from caresync.records import service
from caresync.records.consent import ReadScope, read_scope
from caresync.records.models import HealthRecord, RecordConsent
from caresync.records.rules import CATEGORIES, FILE_TYPES, SENSITIVE_CATEGORIES

CATEGORY_SYSTEM = "urn:caresync:record-category"
LOINC = "http://loinc.org"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

# record category -> LOINC document type (DocumentReference.type), only where the match is certain
DOCUMENT_TYPES: dict[str, tuple[str, str]] = {
    "lab": ("11502-2", "Laboratory report"),
    "discharge": ("18842-5", "Discharge summary"),
    "procedure": ("28570-0", "Procedure note"),
    "note": ("11506-3", "Progress note"),
}
# record category -> LOINC document class (the R4 value set for DocumentReference.category)
DOCUMENT_CLASSES: dict[str, tuple[str, str]] = {
    "lab": ("26436-6", "Laboratory Studies (set)"),
    "immunisation": ("11369-6", "History of Immunization"),
    "discharge": ("18842-5", "Discharge summary"),
    "procedure": ("28570-0", "Provider-unspecified procedure note"),
    "note": ("11506-3", "Provider-unspecified progress note"),
}
# whether a newer version replaced the record -> DocumentReferenceStatus
STATUSES: dict[bool, str] = {False: "current", True: "superseded"}
# whether the record corrects an earlier one -> CompositionStatus (docStatus): all records are signed
DOC_STATUSES: dict[bool, str] = {False: "final", True: "amended"}
# sensitive categories are segmented (consent only) -> restricted; the rest normal
CONFIDENTIALITY_CODES: dict[bool, tuple[str, str]] = {True: ("R", "restricted"), False: ("N", "normal")}


def category_concept(category: str) -> JSON:
    """DocumentReference.category: our category, with its LOINC document class where there is one."""
    codings = [{"system": CATEGORY_SYSTEM, "code": category, "display": CATEGORIES[category]}]
    if category in DOCUMENT_CLASSES:
        code, display = DOCUMENT_CLASSES[category]
        codings.append({"system": LOINC, "code": code, "display": display})
    return {"coding": codings, "text": CATEGORIES[category]}


def type_concept(category: str) -> JSON:
    """DocumentReference.type: the LOINC document type where certain, else the category's name as text."""
    concept: JSON = {"text": CATEGORIES[category]}
    if category in DOCUMENT_TYPES:
        code, display = DOCUMENT_TYPES[category]
        concept["coding"] = [{"system": LOINC, "code": code, "display": display}]
    return concept


def content_url(ctx: FhirContext, record_id: uuid.UUID) -> str:
    """The absolute URL of the record's file as a FHIR Binary."""
    return ctx.full_url("Binary", record_id)


def read_binary(ctx: FhirContext, record_id: uuid.UUID) -> JSON:
    """The record's file as a Binary (base64), under the same consent rule as its DocumentReference;
    audited as a download by the records service."""
    record, data = service.content(ctx.session, ctx.principal, record_id)
    return {
        "resourceType": "Binary",
        "id": str(record.id),
        "contentType": record.media_type,
        "securityContext": reference("DocumentReference", record.id),
        "data": base64.b64encode(data).decode("ascii"),
    }


def _author(record: HealthRecord | service.RecordSummary, uploader: service.Uploader | None) -> JSON | None:
    if uploader is None:
        return None
    if uploader.patient_id is not None and uploader.patient_id == record.patient_id:
        return reference("Patient", uploader.patient_id, uploader.name)
    if uploader.practitioner_id is not None:
        return reference("Practitioner", uploader.practitioner_id, uploader.name)
    return {"display": uploader.name}  # staff without a directory profile


def _security_label(category: str) -> JSON:
    code, display = CONFIDENTIALITY_CODES[category in SENSITIVE_CATEGORIES]
    return {"coding": [{"system": CONFIDENTIALITY, "code": code, "display": display}]}


# built once: $everything maps thousands of records (the resources share these read-only parts)
_TYPES = {c: type_concept(c) for c in CATEGORIES}
_CATEGORIES = {c: [category_concept(c)] for c in CATEGORIES}
_LABELS = {c: [_security_label(c)] for c in CATEGORIES}


def to_fhir(
    ctx: FhirContext,
    record: HealthRecord | service.RecordSummary,
    *,
    superseded: bool,
    uploader: service.Uploader | None,
    predecessor_visible: bool,
) -> JSON:
    """The FHIR DocumentReference for a record (no query, no file read)."""
    created = instant(record.created_at)
    recorded_on = record.recorded_on.isoformat()
    resource: JSON = {
        "resourceType": "DocumentReference",
        "id": str(record.id),
        "meta": {"lastUpdated": created},
        "status": STATUSES[superseded],
        "docStatus": DOC_STATUSES[record.supersedes_id is not None],
        "type": _TYPES[record.category],
        "category": _CATEGORIES[record.category],
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "date": created,
    }
    author = _author(record, uploader)
    if author:
        resource["author"] = [author]
    if record.title:
        resource["description"] = record.title
    resource["securityLabel"] = _LABELS[record.category]
    if record.supersedes_id is not None and predecessor_visible:
        target = {"reference": f"DocumentReference/{record.supersedes_id}"}
        resource["relatesTo"] = [{"code": "replaces", "target": target}]
    attachment: JSON = {
        "contentType": record.media_type,
        "url": content_url(ctx, record.id),
        "size": record.size,
        "creation": recorded_on,
    }
    if record.title:
        attachment["title"] = record.title
    resource["content"] = [{"attachment": attachment}]
    context: JSON = {"period": {"start": recorded_on}}
    if record.appointment_id is not None:
        context["related"] = [{"reference": f"Appointment/{record.appointment_id}"}]
    resource["context"] = context
    return resource


def _documents(
    ctx: FhirContext,
    records: Sequence[HealthRecord | service.RecordSummary],
    scope: ReadScope,
    superseded: set[uuid.UUID],
) -> list[JSON]:
    """Map records read under ``scope`` (two more queries for the page, none per record)."""
    uploaders = service.uploader_details(ctx.session, records)
    visible = service.readable_predecessors(ctx.session, scope, records)
    return [
        to_fhir(
            ctx,
            r,
            superseded=r.id in superseded,
            uploader=uploaders.get(r.uploaded_by),
            predecessor_visible=r.supersedes_id in visible,
        )
        for r in records
    ]


def _document(ctx: FhirContext, record: HealthRecord, scope: ReadScope) -> JSON:
    return _documents(ctx, [record], scope, service.superseded_ids(ctx.session, [record]))[0]


def read_document(ctx: FhirContext, record_id: uuid.UUID) -> JSON:
    """One record the caller may read under the consent rule (audited by the service; 404 otherwise)."""
    record, scope = service.read_with_scope(ctx.session, ctx.principal, record_id)
    return _document(ctx, record, scope)


# --- search ---------------------------------------------------------------------------------------------


def _anded(query: SearchQuery, name: str, resolve: Callable[[str], set[str]]) -> set[str] | None:
    """A token parameter as a set of categories: OR within a value, AND across repetitions (``None``: the
    parameter was not given)."""
    found: set[str] | None = None
    for raw in query.params.get(name, []):
        alternatives: set[str] = set()
        for value in split_or(raw):
            alternatives |= resolve(value)
        found = alternatives if found is None else found & alternatives
    return found


def _categories_for_category(value: str) -> set[str]:
    system, code = token(value)
    found: set[str] = set()
    if system in (None, CATEGORY_SYSTEM) and code in CATEGORIES:
        found.add(code)
    if system in (None, LOINC):
        found |= {c for c, (loinc, _) in DOCUMENT_CLASSES.items() if loinc == code}
    return found


def _categories_for_type(value: str) -> set[str]:
    system, code = token(value)
    if system not in (None, LOINC):
        return set()
    return {c for c, (loinc, _) in DOCUMENT_TYPES.items() if loinc == code}


def _statuses(query: SearchQuery) -> set[bool] | None:
    """``status`` as the set of 'was it superseded?' values wanted (``None``: not given)."""
    wanted: set[bool] | None = None
    for raw in query.params.get("status", []):
        alternatives: set[bool] = set()
        for value in split_or(raw):
            code = token(value)[1]
            if code not in (*STATUSES.values(), "entered-in-error"):
                raise invalid(f"status must be current, superseded or entered-in-error (got '{code}').")
            alternatives |= {superseded for superseded, status in STATUSES.items() if status == code}
        wanted = alternatives if wanted is None else wanted & alternatives
    return wanted


def _day_bounds(values: list[str]) -> tuple[date | None, date | None]:
    """``period`` (the record's date, a whole day) against a date range: the days that overlap it."""
    bounds = date_range(values)
    first = bounds.start.astimezone(UTC).date() if bounds.start else None
    last = None
    if bounds.end is not None:
        end = bounds.end.astimezone(UTC)
        midnight = end.hour == end.minute == end.second == end.microsecond == 0
        last = end.date() - timedelta(days=1) if midnight else end.date()
    return first, last


def _uploaded_by(ctx: FhirContext, value: str) -> uuid.UUID | None:
    kind = value.rstrip("/").split("/")[-2] if "/" in value else "Practitioner"
    if kind not in ("Practitioner", "Patient"):
        raise invalid(f"author must be a Practitioner or Patient reference (got '{value}').")
    return service.uploader_user_id(ctx.session, kind, reference_id(value, kind))


def search_documents(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """One patient's documents the caller may read, newest first (by the record's date), with total."""
    fold_type_modifiers(query)
    patient_id = searched_patient(ctx, query, "documents")
    categories = _anded(query, "category", _categories_for_category)
    typed = _anded(query, "type", _categories_for_type)
    if typed is not None:
        categories = typed if categories is None else categories & typed
    statuses = _statuses(query)
    uploaded_by = None
    author = query.one("author")
    if author:
        uploaded_by = _uploaded_by(ctx, author)
    if patient_id is None or categories == set() or statuses == set() or (author and uploaded_by is None):
        return SearchResult(resources=[], total=0)
    created = date_range(query.params.get("date", []))
    date_from, date_to = _day_bounds(query.params.get("period", []))
    filters = service.TimelineFilter(
        categories=tuple(sorted(categories or ())),
        uploaded_by=uploaded_by,
        date_from=date_from,
        date_to=date_to,
        created_from=created.start,
        created_before=created.end,
        superseded=next(iter(statuses)) if statuses is not None and len(statuses) == 1 else None,
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        return SearchResult(resources=[], total=0)
    timeline = service.timeline(
        ctx.session,
        ctx.principal,
        patient_id,
        filters,
        limit=max(query.count, 1),
        cursor=query.cursor,
        count_total=True,
    )
    resources = _documents(ctx, timeline.page.items, timeline.scope, timeline.superseded)
    included = _included_patient(ctx, query, "DocumentReference", patient_id if resources else None)
    return SearchResult(
        resources=resources,
        total=timeline.page.total,
        next_cursor=timeline.page.next_cursor,
        included=included,
    )


def _included_patient(
    ctx: FhirContext, query: SearchQuery, type_name: str, patient_id: uuid.UUID | None
) -> list[JSON]:
    wanted = {f"{type_name}:patient", f"{type_name}:subject"}
    if patient_id is None or not wanted & set(query.includes):
        return []
    return included_reads(ctx, "Patient", [patient_id])


def everything_documents(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """Every document of the patient the caller may read: a few queries however many, no file read."""
    try:
        whole = service.whole_record(ctx.session, ctx.principal, patient_id)
    except NotFound:
        return []
    return _documents(ctx, whole.records, whole.scope, whole.superseded)


# --- create and update -------------------------------------------------------------------------------------


def _one_reference(value: Any, resource_type: str, field: str) -> uuid.UUID:
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        raise invalid(f"{field} must be a reference to a {resource_type} ({resource_type}/<id>).")
    return reference_id(value["reference"], resource_type)


def _category_of(body: JSON) -> str:
    """The record category the body's category and type codings name (``document`` when none)."""
    found: set[str] = set()
    for concept in body.get("category", []):
        for coding in concept.get("coding", []):
            system, code = coding.get("system"), coding.get("code", "")
            if system == CATEGORY_SYSTEM:
                if code not in CATEGORIES:
                    raise invalid(f"Unknown record category '{code}'; known: {', '.join(CATEGORIES)}.")
                found.add(code)
            elif system == LOINC:
                found |= {c for c, (loinc, _) in DOCUMENT_CLASSES.items() if loinc == code}
    for coding in body.get("type", {}).get("coding", []):
        if coding.get("system") == LOINC:
            found |= {c for c, (loinc, _) in DOCUMENT_TYPES.items() if loinc == coding.get("code")}
    if len(found) > 1:
        raise invalid(f"The category and type name different record categories ({', '.join(sorted(found))}).")
    return found.pop() if found else "document"


def _date_of(text: str | None, field: str) -> date | None:
    if not text:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{field} must be a date (YYYY-MM-DD) or a dateTime.") from None
    return moment.date()


def _attachment(body: JSON) -> JSON:
    content = body.get("content", [])
    if len(content) != 1:
        raise not_supported("Send exactly one content element (one file per document).")
    attachment: JSON = content[0].get("attachment", {})
    return attachment


def _data_of(attachment: JSON) -> bytes:
    raw = attachment.get("data")
    if not raw:
        raise invalid(
            "Send the file in content[0].attachment.data (base64); this server does not fetch attachment.url."
        )
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("content[0].attachment.data is not valid base64.") from None
    declared = attachment.get("contentType")
    if declared is not None and declared.split(";")[0].strip() not in FILE_TYPES:
        raise invalid(f"contentType {declared} is not accepted; send one of {', '.join(FILE_TYPES)}.")
    sniffed = storage.sniff(data)
    if declared is not None and sniffed in FILE_TYPES and sniffed != declared.split(";")[0].strip():
        raise invalid(f"contentType says {declared} but the content is {sniffed}.")
    return data


def _appointment_of(body: JSON) -> uuid.UUID | None:
    related = [
        ref.get("reference", "")
        for ref in body.get("context", {}).get("related", [])
        if ref.get("reference", "").split("/")[-2:-1] == ["Appointment"]
    ]
    if len(related) > 1:
        raise not_supported("Link a document to one appointment at most.")
    return reference_id(related[0], "Appointment") if related else None


def _replaced(body: JSON) -> uuid.UUID | None:
    replaced: list[uuid.UUID] = []
    for relation in body.get("relatesTo", []):
        if relation.get("code") != "replaces":
            raise not_supported(f"relatesTo.code '{relation.get('code')}' is not supported; use 'replaces'.")
        replaced.append(_one_reference(relation.get("target"), "DocumentReference", "relatesTo.target"))
    if len(replaced) > 1:
        raise not_supported("A document replaces one earlier version at most.")
    return replaced[0] if replaced else None


def _check_status(body: JSON) -> None:
    if body.get("status") != "current":
        raise invalid(
            "A document is written with status 'current'; it becomes 'superseded' when a correction "
            "replaces it (records are never withdrawn)."
        )
    if body.get("docStatus") not in (None, "final", "amended"):
        raise invalid("docStatus must be 'final' (or 'amended' for a correction): records are signed.")


def _title_of(body: JSON, attachment: JSON) -> str:
    title = attachment.get("title") or body.get("description") or ""
    if not str(title).strip():
        raise invalid("Give the document a title: content[0].attachment.title or description.")
    return str(title)


def create_document(ctx: FhirContext, body: JSON) -> JSON:
    """Upload a record: the file in ``content[0].attachment.data``, for the patient in ``subject``, with
    the same rules as the app. ``relatesTo: replaces`` makes it a correction of an earlier version."""
    _check_status(body)
    patient_id = _one_reference(body.get("subject"), "Patient", "subject")
    attachment = _attachment(body)
    data = _data_of(attachment)
    period = body.get("context", {}).get("period", {})
    recorded_on = (
        _date_of(period.get("start"), "context.period.start")
        or _date_of(attachment.get("creation"), "content[0].attachment.creation")
        or utcnow().date()
    )
    request = service.Upload(
        patient_id=patient_id,
        category=_category_of(body),
        title=_title_of(body, attachment),
        recorded_on=recorded_on,
        client_id="fhir",
        supersedes_id=_replaced(body),
        appointment_id=_appointment_of(body),
    )
    return _uploaded(ctx, service.upload(ctx.session, ctx.principal, request, data))


def _uploaded(ctx: FhirContext, record: HealthRecord) -> JSON:
    """The document just added (audited as its upload; the scope only decides whether the version it
    replaces may be named)."""
    scope = read_scope(ctx.session, ctx.principal, record.patient_id, "record.create")
    return _document(ctx, record, scope)


def update_document(ctx: FhirContext, record_id: uuid.UUID, body: JSON) -> JSON:
    """A correction: a new version of the record replaces the one at ``record_id`` (new file in
    ``attachment.data``, or the same file with a corrected title, category, date or appointment). Returns
    the new version; an update that changes nothing returns the record as it is."""
    record, scope = service.read_with_scope(ctx.session, ctx.principal, record_id)
    _check_status(body)
    if _one_reference(body.get("subject"), "Patient", "subject") != record.patient_id:
        raise invalid("A document cannot move to another patient's record.")
    replaced = _replaced(body)  # as read back (what this version replaced), or naming this version
    if replaced not in (None, record_id, record.supersedes_id):
        raise invalid(f"A correction sent to DocumentReference/{record_id} replaces that document only.")
    attachment = _attachment(body)
    period = body.get("context", {}).get("period", {})
    recorded_on = _date_of(period.get("start"), "context.period.start") or record.recorded_on
    request = service.Upload(
        patient_id=record.patient_id,
        category=_category_of(body),
        title=_title_of(body, attachment),
        recorded_on=recorded_on,
        client_id="fhir",
        supersedes_id=record.id,
        appointment_id=_appointment_of(body),
    )
    if attachment.get("data"):
        data = _data_of(attachment)
    else:
        unchanged = (
            request.category == record.category
            and request.title.strip() == record.title
            and request.recorded_on == record.recorded_on
            and request.appointment_id == record.appointment_id
        )
        if unchanged:
            return _document(ctx, record, scope)
        data = service.stored_file(record)
    return _uploaded(ctx, service.upload(ctx.session, ctx.principal, request, data))


# --- Consent ------------------------------------------------------------------------------------------------

# consent status (records.consent.consent_status) -> ConsentState: a revoked or expired consent is over
CONSENT_STATUSES: dict[str, str] = {"active": "active", "expired": "inactive", "revoked": "inactive"}
CONSENT_SCOPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy",
            "display": "Privacy Consent",
        }
    ]
}
CONSENT_CATEGORY = {"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}
CONSENT_POLICY = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN", "display": "opt-in"}
    ]
}
RECIPIENT_ROLE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient",
        }
    ]
}
ACCESS_ACTION = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/consentaction",
            "code": "access",
            "display": "Access",
        }
    ]
}
DOCUMENTS_CLASS = {"system": "http://hl7.org/fhir/resource-types", "code": "DocumentReference"}


def _grantee_reference(grantee: consents.Grantee | None) -> JSON:
    if grantee is None:
        return {"display": "Unknown"}
    if grantee.organisation_id is not None:
        return reference("Organization", grantee.organisation_id, grantee.name)
    if grantee.practitioner_id is not None:
        return reference("Practitioner", grantee.practitioner_id, grantee.name)
    return {"display": grantee.name}  # a clinician without a directory profile


def consent_to_fhir(consent: RecordConsent, grantee: consents.Grantee | None) -> JSON:
    """The FHIR Consent for a record consent."""
    status = consents.consent_status(consent)
    ends = [moment for moment in (consent.expires_at, consent.revoked_at) if moment is not None]
    return drop_empty(
        {
            "resourceType": "Consent",
            "id": str(consent.id),
            "meta": {"lastUpdated": instant(consent.revoked_at or consent.created_at)},
            "status": CONSENT_STATUSES[status],
            "scope": CONSENT_SCOPE,
            "category": [CONSENT_CATEGORY],
            "patient": reference("Patient", consent.patient_id),
            "dateTime": instant(consent.created_at),
            "performer": [reference("Patient", consent.patient_id)],
            "policyRule": CONSENT_POLICY,
            "provision": drop_empty(
                {
                    "type": "permit",
                    "period": drop_empty(
                        {"start": instant(consent.created_at), "end": instant(min(ends)) if ends else None}
                    ),
                    "actor": [{"role": RECIPIENT_ROLE, "reference": _grantee_reference(grantee)}],
                    "action": [ACCESS_ACTION],
                    "class": [DOCUMENTS_CLASS],
                    "code": [category_concept(c) for c in consent.categories if c in CATEGORIES],
                }
            ),
        }
    )


def _consents(ctx: FhirContext, rows: list[RecordConsent]) -> list[JSON]:
    found = consents.grantees(ctx.session, rows)
    return [consent_to_fhir(c, found.get(c.id)) for c in rows]


def read_consent(ctx: FhirContext, consent_id: uuid.UUID) -> JSON:
    """One consent, for whoever may see the patient's consents (404 otherwise)."""
    return _consents(ctx, [consents.get_consent(ctx.session, ctx.principal, consent_id)])[0]


def _consent_cursor(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise invalid("The cursor is not valid; start again without it.") from None
    if offset < 0:
        raise invalid("The cursor is not valid; start again without it.")
    return offset


def _matches_actor(consent: RecordConsent, grantee: consents.Grantee | None, values: list[str]) -> bool:
    if grantee is None:
        return False
    for value in values:
        kind = value.rstrip("/").split("/")[-2] if "/" in value else None
        if kind in (None, "Organization") and grantee.organisation_id is not None:
            if reference_id(value, "Organization") == grantee.organisation_id:
                return True
        elif kind in (None, "Practitioner") and grantee.practitioner_id is not None:
            if reference_id(value, "Practitioner") == grantee.practitioner_id:
                return True
        elif kind not in (None, "Organization", "Practitioner"):
            raise invalid(f"actor must be a Practitioner or Organization reference (got '{value}').")
    return False


def search_consents(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """One patient's consents, newest first (status and actor filters), with total."""
    fold_type_modifiers(query)
    patient_id = searched_patient(ctx, query, "consents", names=("patient",))
    assert patient_id is not None  # required
    rows = consents.list_consents(ctx.session, ctx.principal, patient_id)
    wanted_statuses: set[str] | None = None
    for raw in query.params.get("status", []):
        codes = {token(v)[1] for v in split_or(raw)}
        unknown = codes - {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
        if unknown:
            raise invalid(f"Unknown Consent status '{sorted(unknown)[0]}'.")
        wanted_statuses = codes if wanted_statuses is None else wanted_statuses & codes
    if wanted_statuses is not None:
        rows = [c for c in rows if CONSENT_STATUSES[consents.consent_status(c)] in wanted_statuses]
    found = consents.grantees(ctx.session, rows)
    for raw in query.params.get("actor", []):
        alternatives = split_or(raw)
        rows = [c for c in rows if _matches_actor(c, found.get(c.id), alternatives)]
    start = _consent_cursor(query.cursor)
    page = rows[start : start + max(query.count, 1)]
    more = start + len(page) < len(rows)
    resources = [consent_to_fhir(c, found.get(c.id)) for c in page]
    included = _included_patient(ctx, query, "Consent", patient_id if resources else None)
    return SearchResult(
        resources=resources,
        total=len(rows),
        next_cursor=str(start + len(page)) if more else None,
        included=included,
    )


def everything_consents(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """Every consent the patient gave (for whoever may see them)."""
    try:
        rows = consents.list_consents(ctx.session, ctx.principal, patient_id)
    except NotFound:
        return []
    return _consents(ctx, rows)


RESOURCES = (
    ResourceType(
        name="DocumentReference",
        documentation="The patient's health records (signed, stored files); the attachment url is the file "
        "as a Binary. A correction is a new version: create one with relatesTo replaces, or PUT to "
        "the old id (the answer is the new version). Consent decides which categories a clinician sees.",
        read=read_document,
        search=search_documents,
        create=create_document,
        update=update_document,
        everything=everything_documents,
        search_params=(
            SearchParam("patient", "reference", "The patient (default: your own record, for a patient)."),
            SearchParam("subject", "reference", "Same as patient (Patient references only)."),
            SearchParam("category", "token", f"Record category ({CATEGORY_SYSTEM}) or LOINC document class."),
            SearchParam("type", "token", "LOINC document type (e.g. 11502-2 laboratory report)."),
            SearchParam("date", "date", "When the document was added (eq, ge, gt, le, lt)."),
            SearchParam("period", "date", "The date the record is about (context.period)."),
            SearchParam("author", "reference", "Who uploaded it: Practitioner/<id> or Patient/<id>."),
            SearchParam("status", "token", "current or superseded (replaced by a correction)."),
        ),
        includes=("DocumentReference:patient", "DocumentReference:subject"),
        modifiers=("patient:Patient", "subject:Patient", "author:Practitioner", "author:Patient"),
    ),
    ResourceType(
        name="Consent",
        documentation="The patient's consents letting a practitioner or an organisation read categories of "
        "their record (provision.code), until they expire or are revoked (then inactive).",
        read=read_consent,
        search=search_consents,
        everything=everything_consents,
        search_params=(
            SearchParam("patient", "reference", "The patient (default: your own, for a patient)."),
            SearchParam("status", "token", "active or inactive (expired or revoked)."),
            SearchParam("actor", "reference", "The grantee: Practitioner/<id> or Organization/<id>."),
        ),
        includes=("Consent:patient",),
        modifiers=("patient:Patient", "actor:Practitioner", "actor:Organization"),
    ),
    ResourceType(
        name="Binary",
        documentation="The file of a DocumentReference (same id), base64 in JSON; readable by whoever may "
        "read the document, and audited as a download.",
        read=read_binary,
    ),
)
