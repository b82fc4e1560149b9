"""Health record pages: a patient's timeline (filters, "Load more"), uploading a record or a correction, one
record with its preview, verification and versions, the patient's consents (grant, revoke), and the
organisation's care-team policy for administrators. Thin: they parse forms and call the records services,
which decide what each reader may see."""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.core.errors import DomainError, NotFound, TooLarge, UnsupportedMedia, ValidationFailed
from caresync.core.rbac import CLINICIANS, Access, Perm, authorize_patient, require
from caresync.db import utcnow
from caresync.identity import patients
from caresync.identity import service as identity
from caresync.identity.models import Organisation, User
from caresync.records import consent, service
from caresync.records.consent import ReadScope
from caresync.records.models import HealthRecord, RecordConsent
from caresync.records.rules import (
    CARE_TEAM_POLICIES,
    CATEGORIES,
    SENSITIVE_CATEGORIES,
    VITAL_SIGNS,
    care_team_categories,
    check_vital_signs,
)
from caresync.scheduling import booking
from caresync.web.deps import Db, FormValues
from caresync.web.pagekit import PageUser, domain_field_errors, is_htmx, redirect, render_page

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
MAX_TEXT = 100_000  # characters of a typed record (as the API)
MAX_TITLE = 200
PREVIEW_CHARS = 200_000
ATTACHABLE_APPOINTMENTS = "booked,arrived,checked-in,fulfilled"
CLINICIAN_MATCHES = 20
NOTHING_ATTACHED = (
    "Attach a file or type the record's text (for vital signs, entering the measurements is enough)."
)


def _parse_date(raw: str, field: str, errors: dict[str, str]) -> date | None:
    """A date from a form or query value (``None`` when empty; an error for ``field`` when not a date)."""
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        errors[field] = "Enter a date (YYYY-MM-DD)."
        return None


def _parse_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw.strip()) if raw.strip() else None
    except ValueError:
        return None


def _may_write(scope: ReadScope) -> bool:
    """Whether the reader may add to the record (a consent only lets a clinician read)."""
    return scope.access is not Access.CONSENT


def _scope_note(scope: ReadScope) -> str:
    """Which categories the reader does not see, said without revealing whether such records exist."""
    hidden = [label for code, label in CATEGORIES.items() if not scope.allows(code)]
    if not hidden:
        return ""
    if not scope.categories:
        return "No part of this record is shared with you."
    readable = [label for code, label in CATEGORIES.items() if scope.allows(code)]
    if len(hidden) <= len(readable):
        return f"{_join(hidden)} records are not shared with you."
    return f"Only {_join(readable)} records are shared with you; the rest of this record is not."


def _render(
    request: Request,
    db: Session,
    principal: Principal,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
) -> HTMLResponse:
    """Render a records page (the category labels are available to every template)."""
    return render_page(request, db, principal, template, {"labels": CATEGORIES, **context}, status_code)


def _join(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


# --- the timeline ------------------------------------------------------------------------------------------


@router.get("/me/records", response_model=None)
def my_records(principal: PageUser) -> Response:
    """A patient's own timeline."""
    if principal.patient_id is None:
        raise NotFound("You have no patient profile.")
    return redirect(f"/patients/{principal.patient_id}/records")


@dataclass(frozen=True)
class MonthGroup:
    """The records of one month on the timeline."""

    key: str  # YYYY-MM
    label: str  # e.g. "March 2026"
    records: list[HealthRecord]


def _by_month(records: list[HealthRecord]) -> list[MonthGroup]:
    groups = []
    for (year, month), rows in groupby(records, key=lambda r: (r.recorded_on.year, r.recorded_on.month)):
        groups.append(
            MonthGroup(f"{year:04d}-{month:02d}", date(year, month, 1).strftime("%B %Y"), list(rows))
        )
    return groups


@router.get("/patients/{patient_id}/records", response_class=HTMLResponse)
def timeline(
    request: Request,
    patient_id: uuid.UUID,
    principal: PageUser,
    db: Db,
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
    uploaded_by: str = "",
    date_from: str = "",
    date_to: str = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
    after: Annotated[str, Query(max_length=7)] = "",
) -> HTMLResponse:
    """The patient's records newest first, grouped by month, filtered live (HTMX swaps the results; "Load
    more" appends the next page)."""
    errors: dict[str, str] = {}
    chosen = [c for c in (category or []) if c]
    values: dict[str, Any] = {
        "category": chosen,
        "uploaded_by": uploaded_by.strip(),
        "date_from": date_from.strip(),
        "date_to": date_to.strip(),
    }
    filters = service.TimelineFilter(
        categories=tuple(chosen),
        uploaded_by=_parse_uuid(uploaded_by),
        date_from=_parse_date(date_from, "date_from", errors),
        date_to=_parse_date(date_to, "date_to", errors),
    )
    result = None
    if not errors:
        try:
            result = service.timeline(
                db, principal, patient_id, filters, limit=PAGE_SIZE, cursor=cursor or None
            )
        except ValidationFailed as exc:
            db.rollback()
            errors = domain_field_errors(exc)
    # the timeline says what the reader may see; after a filter error, ask directly
    scope = result.scope if result else consent.read_scope(db, principal, patient_id, "record.list")
    groups = _by_month(result.page.items) if result else []
    next_url = ""
    if result and result.page.next_cursor:
        query = [(k, v) for k, v in values.items() if isinstance(v, str) and v]
        query += [("category", c) for c in chosen]
        query += [("cursor", result.page.next_cursor), ("after", groups[-1].key)]
        next_url = f"/patients/{patient_id}/records?{urlencode(query)}"
    context: dict[str, Any] = {
        "patient_id": patient_id,
        "result": result,
        "groups": groups,
        # "Load more" appends to the month the previous page ended with: not headed again
        "continues": after if is_htmx(request) else "",
        "next_url": next_url,
        "values": values,
        "errors": errors,
        "filtered": any(values.values()),
        "categories": [(code, label) for code, label in CATEGORIES.items() if scope.allows(code)],
        "scope_note": _scope_note(scope),
    }
    if is_htmx(request):
        template = "records/_items.html" if cursor else "records/_timeline.html"
        return _render(request, db, principal, template, context)
    context["patient"] = patients.get_patient(db, principal, patient_id)
    context["uploaders"] = service.uploaders(db, principal, patient_id)
    context["can_write"] = _may_write(scope)
    return _render(request, db, principal, "records/timeline.html", context)


# --- uploading ---------------------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/records/new", response_class=HTMLResponse)
def upload_form(
    request: Request, patient_id: uuid.UUID, principal: PageUser, db: Db, supersedes: str = ""
) -> HTMLResponse:
    """The upload form (with ``supersedes``: a correction of that record, pre-filled from it)."""
    values = {"recorded_on": utcnow().date().isoformat()}
    correcting = _correcting(db, principal, _parse_uuid(supersedes))
    if correcting is not None:
        values.update(
            category=correcting.category,
            title=correcting.title,
            recorded_on=correcting.recorded_on.isoformat(),
            supersedes_id=str(correcting.id),
        )
    return _upload_page(request, db, principal, patient_id, values, {}, correcting)


def _correcting(db: Session, principal: Principal, record_id: uuid.UUID | None) -> HealthRecord | None:
    return service.get(db, principal, record_id) if record_id else None


def _upload_page(
    request: Request,
    db: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    values: dict[str, str],
    errors: dict[str, str],
    correcting: HealthRecord | None,
    status_code: int = 200,
) -> HTMLResponse:
    authorize_patient(db, principal, patient_id, Perm.PATIENT_WRITE, "record.create")
    if correcting is not None and correcting.patient_id != patient_id:
        raise NotFound("No such record.")
    appointments = booking.list_appointments(
        db, principal, patient_id=patient_id, status=ATTACHABLE_APPOINTMENTS, descending=True, limit=30
    ).items
    context = {
        "patient": patients.get_patient(db, principal, patient_id),
        "values": values,
        "errors": errors,
        "correcting": correcting,
        "categories": list(CATEGORIES.items()),
        "vital_signs": VITAL_SIGNS,
        "appointments": appointments,
        "today": utcnow().date().isoformat(),
    }
    return _render(request, db, principal, "records/upload.html", context, status_code)


@router.post("/patients/{patient_id}/records/new", response_model=None)
def upload_submit(
    request: Request,
    patient_id: uuid.UUID,
    principal: PageUser,
    db: Db,
    form: FormValues,
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Store the record (signed with the uploader's key) and show it."""
    errors: dict[str, str] = {}
    status_code = 422
    values = {k: v for k, v in form.items() if k != "csrf_token"}
    upload = _upload_request(patient_id, values, errors)
    data = _upload_data(file, values, errors)
    if data is None and not errors.keys() & {"file", "text"}:
        if upload is not None and upload.measurements:
            data = _vitals_summary(upload).encode()  # the measurements are the record
        elif not any(values.get(f"m_{code}", "").strip() for code in VITAL_SIGNS):
            errors["file"] = NOTHING_ATTACHED
    if upload is not None and data is not None and not errors:
        try:
            record = service.upload(db, principal, upload, data)
        except DomainError as exc:
            db.rollback()
            if exc.status in (403, 404):
                raise
            errors, status_code = _upload_errors(exc), exc.status
        else:
            db.commit()
            return redirect(f"/records/{record.id}?uploaded=1")
    correcting = _correcting(db, principal, _parse_uuid(values.get("supersedes_id", "")))
    return _upload_page(request, db, principal, patient_id, values, errors, correcting, status_code)


def _upload_request(
    patient_id: uuid.UUID, values: dict[str, str], errors: dict[str, str]
) -> service.Upload | None:
    """The upload's metadata from the form, or ``None`` with ``errors`` filled in."""
    category = values.get("category", "")
    if category not in CATEGORIES:
        errors["category"] = "Choose a category."
    title = values.get("title", "").strip()
    if len(title) > MAX_TITLE:
        errors["title"] = f"Keep the title under {MAX_TITLE} characters."
    recorded_on = _parse_date(values.get("recorded_on", ""), "recorded_on", errors)
    if recorded_on is None and "recorded_on" not in errors:
        errors["recorded_on"] = "Enter the date of the record."
    measurements = _measurements(values, errors)
    if errors or recorded_on is None:
        return None
    return service.Upload(
        patient_id=patient_id,
        category=category,
        title=title,
        recorded_on=recorded_on,
        client_id="web",
        supersedes_id=_parse_uuid(values.get("supersedes_id", "")),
        appointment_id=_parse_uuid(values.get("appointment_id", "")),
        measurements=measurements or None,
    )


def _measurements(values: dict[str, str], errors: dict[str, str]) -> dict[str, float]:
    """The vital signs typed into the form (empty fields skipped)."""
    found: dict[str, float] = {}
    for code, (label, _unit, _low, _high) in VITAL_SIGNS.items():
        raw = values.get(f"m_{code}", "").strip().replace(",", ".")
        if not raw:
            continue
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            errors[f"m_{code}"] = f"Enter the {label.lower()} as a number."
            continue
        try:
            found.update(check_vital_signs({code: number}))  # marks the implausible field itself
        except ValueError as error:
            errors[f"m_{code}"] = str(error)
    return found


def _upload_data(file: UploadFile | None, values: dict[str, str], errors: dict[str, str]) -> bytes | None:
    """The record's content: the attached file or the typed text (``None`` when neither, or on an error
    added to ``errors``)."""
    text = values.get("text", "").strip()
    if file is not None and file.filename:
        if text:
            errors["file"] = "Attach a file or type the text, not both."
            return None
        data = file.file.read()  # already received and spooled by the framework
        if not data:
            errors["file"] = "The file is empty."
            return None
        return data
    if len(text) > MAX_TEXT:
        errors["text"] = f"The text is too long (at most {MAX_TEXT:,} characters); attach it as a file."
        return None
    return text.encode() if text else None


def _vitals_summary(upload: service.Upload) -> str:
    """A readable text of the measurements, stored (and signed) when no document comes with them."""
    lines = [f"{upload.title or 'Vital signs'} ({upload.recorded_on.isoformat()})"]
    for code, value in (upload.measurements or {}).items():
        label, unit, _low, _high = VITAL_SIGNS[code]
        lines.append(f"{label}: {value:g} {unit}")
    return "\n".join(lines) + "\n"


def _upload_errors(exc: DomainError) -> dict[str, str]:
    if isinstance(exc, TooLarge | UnsupportedMedia):
        return {"file": exc.detail}
    errors = domain_field_errors(exc)
    if "measurements" in errors:
        errors["vitals"] = errors.pop("measurements")
    if "supersedes_id" in errors:
        errors["form"] = errors.pop("supersedes_id")
    return errors


# --- one record --------------------------------------------------------------------------------------------


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record_page(
    request: Request, record_id: uuid.UUID, principal: PageUser, db: Db, uploaded: int = 0
) -> HTMLResponse:
    """A record: its details, a preview, whether it is intact and authentic, and its versions."""
    view = service.open_record(db, principal, record_id)
    record, verification, chain = view.record, view.verification, view.versions
    superseded = record.id in service.superseded_ids(db, [record])
    text = None
    if record.media_type == "text/plain" and verification.file_intact and view.content is not None:
        text = view.content.decode("utf-8", errors="replace")[:PREVIEW_CHARS]
    manifest = _manifest(record)
    context = {
        "record": record,
        "patient": view.patient,
        "verification": verification,
        "manifest": manifest,
        "signed_at": _signed_at(manifest) or record.created_at,
        "names": service.uploader_names(db, chain),
        "versions": chain,
        "superseded": superseded,
        "can_correct": _may_write(view.scope) and not superseded,
        "text": text,
        "vital_signs": VITAL_SIGNS,
        "category_label": CATEGORIES.get(record.category, record.category),
        "openssl_command": service.OPENSSL_COMMAND,
        "extension": service.file_extension(record.media_type),
        "uploaded": uploaded,
    }
    return _render(request, db, principal, "records/record.html", context)


def _manifest(record: HealthRecord) -> dict[str, Any]:
    """The record's signed description (empty when it is unreadable: verification says so)."""
    try:
        manifest = json.loads(record.manifest)
    except ValueError:
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _signed_at(manifest: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(manifest.get("signed_at")))
    except ValueError:
        return None


# --- consents ----------------------------------------------------------------------------------------------


def _own_patient(principal: Principal) -> uuid.UUID:
    if principal.role != "patient" or principal.patient_id is None:
        raise NotFound("Only patients manage who reads their record.")
    return principal.patient_id


DEFAULT_SHARED = [code for code in CATEGORIES if code not in SENSITIVE_CATEGORIES]


@router.get("/me/consents", response_class=HTMLResponse)
def consents(request: Request, principal: PageUser, db: Db) -> HTMLResponse:
    """Who reads my record: current and past consents, granting a new one, and the hospitals' policy."""
    values: dict[str, Any] = {"grantee": "practitioner", "categories": DEFAULT_SHARED}
    return _consents_page(request, db, principal, values, {})


def _consents_page(
    request: Request,
    db: Session,
    principal: Principal,
    values: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> HTMLResponse:
    patient_id = _own_patient(principal)
    rows = consent.list_consents(db, principal, patient_id)
    organisations = identity.list_organisations(db)
    org_names = {org.id: org.name for org in organisations}
    chosen = _parse_uuid(str(values.get("practitioner_id", "")))
    people = _user_names(db, {c.grantee_user_id for c in rows} | {chosen})
    team_orgs = {
        m.organisation_id for m in patients.care_team(db, principal, patient_id) if m.organisation_id
    }
    policies = [
        _policy_view(consent.care_team_policy(db, org_id), org_names.get(org_id, ""))
        for org_id in sorted(team_orgs, key=lambda o: org_names.get(o, ""))
    ]
    context = {
        "consents": [_consent_view(c, people, org_names) for c in rows],
        "organisations": [o for o in organisations if o.kind in ("hospital", "clinic")],
        "categories": list(CATEGORIES.items()),
        "sensitive": SENSITIVE_CATEGORIES,
        "values": values,
        "errors": errors,
        "chosen": (chosen, people[chosen]) if chosen in people else None,
        "matches": [],
        "policies": policies or [_policy_view(consent.care_team_policy(db, None), "")],
        "granted": request.query_params.get("granted"),
        "revoked": request.query_params.get("revoked"),
        "tomorrow": (utcnow().date() + timedelta(days=1)).isoformat(),
    }
    return _render(request, db, principal, "records/consents.html", context, status_code)


def _user_names(db: Session, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(db.execute(select(User.id, User.full_name).where(User.id.in_(wanted))).all())


def _consent_view(
    row: RecordConsent, people: dict[uuid.UUID, str], orgs: dict[uuid.UUID, str]
) -> dict[str, Any]:
    if row.grantee_user_id is not None:
        grantee = people.get(row.grantee_user_id, "A former clinician")
    else:
        grantee = (
            orgs.get(row.grantee_organisation_id, "An organisation") if row.grantee_organisation_id else ""
        )
    return {
        "row": row,
        "grantee": grantee,
        "kind": "practitioner" if row.grantee_user_id is not None else "organisation",
        "categories": [CATEGORIES.get(c, c) for c in row.categories],
        "status": consent.consent_status(row),
    }


def _policy_view(policy: str, organisation: str) -> dict[str, Any]:
    readable = care_team_categories(policy)
    return {
        "organisation": organisation,
        "code": policy,
        "description": CARE_TEAM_POLICIES[policy],
        "withheld": [label for code, label in CATEGORIES.items() if code not in readable],
    }


@router.get("/me/consents/clinicians", response_class=HTMLResponse)
def clinician_search(request: Request, principal: PageUser, db: Db, q: str = "") -> HTMLResponse:
    """Active doctors and nurses whose name matches (the grant form's practitioner picker)."""
    _own_patient(principal)
    term = q.strip()[:100].lower()
    matches: list[Any] = []
    if len(term) >= 2:
        query = (
            select(User.id, User.full_name, User.role, Organisation.name)
            .join(Organisation, Organisation.id == User.organisation_id)
            .where(
                User.role.in_(sorted(CLINICIANS)),
                User.is_active.is_(True),
                func.lower(User.full_name).contains(term, autoescape=True),
            )
            .order_by(User.full_name)
            .limit(CLINICIAN_MATCHES)
        )
        matches = list(db.execute(query).all())
    context = {"matches": matches, "term": term, "chosen": ""}
    return _render(request, db, principal, "records/_clinicians.html", context)


@router.post("/me/consents", response_model=None)
def consent_grant(
    request: Request,
    principal: PageUser,
    db: Db,
    form: FormValues,
    categories: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Let the chosen practitioner or organisation read the ticked categories, optionally until a day."""
    patient_id = _own_patient(principal)
    values: dict[str, Any] = {k: v for k, v in form.items() if k != "csrf_token"}
    values["categories"] = categories or []
    errors: dict[str, str] = {}
    grantee = values.get("grantee", "")
    practitioner_id = _parse_uuid(values.get("practitioner_id", "")) if grantee == "practitioner" else None
    organisation_id = _parse_uuid(values.get("organisation_id", "")) if grantee == "organisation" else None
    if grantee == "practitioner" and practitioner_id is None:
        errors["practitioner_id"] = "Search for the doctor or nurse by name and choose them."
    elif grantee == "organisation" and organisation_id is None:
        errors["organisation_id"] = "Choose an organisation."
    elif grantee not in ("practitioner", "organisation"):
        errors["grantee"] = "Choose whether to share with a person or an organisation."
    until = _parse_date(values.get("expires_at", ""), "expires_at", errors)
    if not errors:
        request_ = consent.Grant(
            patient_id=patient_id,
            categories=tuple(values["categories"]),
            practitioner_id=practitioner_id,
            organisation_id=organisation_id,
            expires_at=datetime.combine(until + timedelta(days=1), time(), tzinfo=UTC) if until else None,
            note=values.get("note", "")[:200],
        )
        try:
            consent.grant(db, principal, request_)
        except DomainError as exc:
            db.rollback()
            if exc.status in (403, 404):
                raise
            errors = domain_field_errors(exc)
        else:
            db.commit()
            return redirect("/me/consents?granted=1")
    return _consents_page(request, db, principal, values, errors, 422)


@router.get("/me/consents/{consent_id}/revoke", response_class=HTMLResponse)
def consent_revoke_confirm(
    request: Request, consent_id: uuid.UUID, principal: PageUser, db: Db
) -> HTMLResponse:
    """Ask before withdrawing a consent."""
    patient_id = _own_patient(principal)
    row = next((c for c in consent.list_consents(db, principal, patient_id) if c.id == consent_id), None)
    if row is None or consent.consent_status(row) != "active":
        raise NotFound("No such active consent.")
    orgs = {o.id: o.name for o in identity.list_organisations(db)}
    view = _consent_view(row, _user_names(db, {row.grantee_user_id}), orgs)
    return _render(request, db, principal, "records/revoke.html", {"consent": view})


@router.post("/me/consents/{consent_id}/revoke", response_model=None)
def consent_revoke(consent_id: uuid.UUID, principal: PageUser, db: Db) -> Response:
    """Withdraw the consent (after the confirmation page); it stops counting at once."""
    consent.revoke(db, principal, consent_id)
    db.commit()
    return redirect("/me/consents?revoked=1")


# --- the organisation's policy -----------------------------------------------------------------------------


@router.get("/admin/record-policy", response_class=HTMLResponse)
def policy_page(request: Request, principal: PageUser, db: Db, saved: int = 0) -> HTMLResponse:
    """What the organisation's care teams read without the patient's explicit consent."""
    require(db, principal, Perm.USER_MANAGE, "record.policy_read")
    current = consent.care_team_policy(db, principal.organisation_id)
    return _policy_page(request, db, principal, current, saved=bool(saved))


def _policy_page(
    request: Request,
    db: Session,
    principal: Principal,
    chosen: str,
    *,
    saved: bool = False,
    confirm: bool = False,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    context = {
        "current": consent.care_team_policy(db, principal.organisation_id),
        "chosen": chosen,
        "policies": [_policy_view(code, "") for code in CARE_TEAM_POLICIES],
        "sensitive": [CATEGORIES[c] for c in sorted(SENSITIVE_CATEGORIES)],
        "saved": saved,
        "confirm": confirm,
        "errors": errors or {},
    }
    return _render(request, db, principal, "records/policy.html", context, status_code)


@router.post("/admin/record-policy", response_model=None)
def policy_save(request: Request, principal: PageUser, db: Db, form: FormValues) -> Response:
    """Change the policy; widening it to every category asks for confirmation first."""
    require(db, principal, Perm.USER_MANAGE, "record.policy_update")
    chosen = form.get("care_team", "")
    current = consent.care_team_policy(db, principal.organisation_id)
    if chosen == "full" and current != "full" and form.get("confirm") != "1":
        return _policy_page(request, db, principal, chosen, confirm=True)
    try:
        consent.set_care_team_policy(db, principal, chosen)
    except ValidationFailed as exc:
        db.rollback()
        return _policy_page(
            request, db, principal, current, errors=domain_field_errors(exc), status_code=exc.status
        )
    db.commit()
    return redirect("/admin/record-policy?saved=1")
