"""Credential use cases: a clinician submits their licence, an administrator of their organisation approves,
rejects or suspends it, and two idempotent periodic tasks send expiry reminders and expire lapsed licences.

Who sees what: a credential and its document are visible to the clinician who submitted it and to the
administrators of that clinician's organisation; to everyone else it does not exist (404, audited).
:func:`is_verified` and :func:`verified_user_ids` say which clinicians hold a valid approved licence today:
the rest of the platform uses them to keep unverified clinicians away from patients, prescribing and the
directory. Every change is audited; nothing here commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core import audit, storage
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.notify import notify, queue_email
from caresync.core.pagination import DEFAULT_LIMIT, Page, paginate
from caresync.core.rbac import Perm, require
from caresync.core.text import clean_line, clean_text
from caresync.db import utcnow
from caresync.identity.credentials.models import (
    APPROVED,
    DOCUMENT_TYPES,
    EXPIRED,
    EXPIRED_KIND,
    KIND_BY_ROLE,
    KIND_LABELS,
    PENDING,
    REGISTRATION_NUMBER,
    REJECTED,
    REMINDER_DAYS,
    STATUSES,
    SUPERSEDED,
    SUSPENDED,
    CredentialReminder,
    PractitionerCredential,
    reminder_kind,
)
from caresync.identity.models import User

DECISIONS = ("approve", "reject")
MAX_ISSUING_BODY = 200
MAX_FILENAME = 200
MAX_REASON = 1000
SENDER = "CareSync credential checks"
MY_PAGE = "/me/credentials"


def review_link(credential_id: uuid.UUID) -> str:
    """The administrator's page of one credential."""
    return f"/admin/credentials/{credential_id}"


@dataclass(frozen=True)
class Submission:
    """What a clinician submits besides the document."""

    registration_number: str
    issuing_body: str
    issued_on: date
    expires_on: date
    filename: str = ""


# --- who holds a valid licence ------------------------------------------------------------------------------


def _today(today: date | None) -> date:
    return today or utcnow().date()


def verified_user_ids(today: date | None = None) -> Select[Any]:
    """The ids of the users holding an approved credential that has not expired on ``today`` (UTC date by
    default): a subquery for ``User.id.in_(...)`` filters. A licence is valid through its expiry date."""
    return select(PractitionerCredential.user_id).where(
        PractitionerCredential.status == APPROVED, PractitionerCredential.expires_on >= _today(today)
    )


def is_verified(session: Session, user_id: uuid.UUID, today: date | None = None) -> bool:
    """Whether the user holds an approved credential that has not expired on ``today``."""
    query = verified_user_ids(today).where(PractitionerCredential.user_id == user_id)
    return bool(session.execute(select(query.exists())).scalar())


def current(session: Session, user_id: uuid.UUID) -> PractitionerCredential | None:
    """The user's latest submission still in play (a renewal waiting for review comes before the approved
    licence it renews), or their latest decided one; ``None`` if they never submitted."""
    rows = history(session, user_id, limit=20)
    in_play = [c for c in rows if c.status in (PENDING, APPROVED)]
    candidates = in_play or rows
    return candidates[0] if candidates else None


def history(session: Session, user_id: uuid.UUID, limit: int = 50) -> list[PractitionerCredential]:
    """The user's submissions, newest first (without those a later one replaced)."""
    query = (
        select(PractitionerCredential)
        .where(PractitionerCredential.user_id == user_id, PractitionerCredential.status != SUPERSEDED)
        .order_by(PractitionerCredential.submitted_at.desc(), PractitionerCredential.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def my_credentials(session: Session, principal: Principal) -> list[PractitionerCredential]:
    """The caller's own submissions, newest first (clinicians who must hold a licence only)."""
    _clinician(session, principal, "credential.list_own")
    assert principal.user_id is not None
    return history(session, principal.user_id)


# --- submitting ---------------------------------------------------------------------------------------------


def _clinician(session: Session, principal: Principal, action: str) -> str:
    """The credential kind the caller must hold; 403 (audited) for roles that hold none."""
    kind = KIND_BY_ROLE.get(principal.role)
    if kind is None or principal.user_id is None:
        audit.record_and_commit(session, principal, action, outcome="denied", detail={"role": principal.role})
        raise Forbidden("Only doctors, nurses and pharmacists submit a licence.")
    return kind


def check_submission(submission: Submission, today: date) -> Submission:
    """The submission cleaned up, or 422 naming the field that is wrong."""
    number = clean_line(submission.registration_number).upper()
    if not REGISTRATION_NUMBER.fullmatch(number):
        raise ValidationFailed(
            "Enter the registration number as printed: 3 to 40 letters, digits, '-' or '/'.",
            extra={"field": "registration_number"},
        )
    body = clean_line(submission.issuing_body)
    if not body:
        raise ValidationFailed("Name the body that issued the licence.", extra={"field": "issuing_body"})
    if len(body) > MAX_ISSUING_BODY:
        raise ValidationFailed(
            f"Keep the issuing body under {MAX_ISSUING_BODY} characters.", extra={"field": "issuing_body"}
        )
    if submission.issued_on > today:
        raise ValidationFailed("The issue date is in the future.", extra={"field": "issued_on"})
    if submission.expires_on <= submission.issued_on:
        raise ValidationFailed("The licence must expire after it was issued.", extra={"field": "expires_on"})
    if submission.expires_on < today:
        raise ValidationFailed(
            "This licence has already expired; submit the current one.", extra={"field": "expires_on"}
        )
    filename = clean_line(submission.filename.replace("/", " ").replace("\\", " "))[:MAX_FILENAME]
    return Submission(number, body, submission.issued_on, submission.expires_on, filename)


def record_verified(
    session: Session,
    user: User,
    *,
    registration_number: str,
    issuing_body: str,
    document: bytes,
    issued_on: date,
    expires_on: date,
    reviewed_by: uuid.UUID | None = None,
) -> PractitionerCredential:
    """Record a licence that was already verified outside this review queue, as approved: when staff are
    imported from another system with their checked licences (and for demo and test data). Not reachable
    from the API; audited as the system's act."""
    stored = storage.put(session, document, allowed_types=DOCUMENT_TYPES)
    credential = PractitionerCredential(
        user_id=user.id,
        kind=KIND_BY_ROLE[user.role],
        registration_number=registration_number,
        issuing_body=issuing_body,
        file_sha256=stored.sha256,
        media_type=stored.media_type,
        filename=f"licence.{stored.media_type.split('/')[1]}",
        issued_on=issued_on,
        expires_on=expires_on,
        status=APPROVED,
        submitted_at=utcnow(),
        reviewed_by=reviewed_by,
        reviewed_at=utcnow(),
        review_reason="",
    )
    session.add(credential)
    session.flush()
    audit.record(
        session,
        system_principal("licence import"),
        "credential.import",
        resource_type="PractitionerCredential",
        resource_id=credential.id,
        detail={"user_id": str(user.id), "expires_on": expires_on.isoformat()},
    )
    return credential


def submit(
    session: Session, principal: Principal, submission: Submission, document: bytes
) -> PractitionerCredential:
    """A doctor, nurse or pharmacist submits their licence with its document (PDF, PNG or JPEG, stored
    encrypted). It waits for an administrator of their organisation; a submission still waiting is replaced
    by this one. An approved licence stays valid while its renewal waits."""
    kind = _clinician(session, principal, "credential.submit")
    assert principal.user_id is not None
    cleaned = check_submission(submission, utcnow().date())
    stored = storage.put(session, document, allowed_types=DOCUMENT_TYPES)
    replaced = session.execute(
        update(PractitionerCredential)
        .where(PractitionerCredential.user_id == principal.user_id, PractitionerCredential.status == PENDING)
        .values(status=SUPERSEDED)
        .returning(PractitionerCredential.id)
    ).scalars()
    replaced_ids = [str(i) for i in replaced]
    credential = PractitionerCredential(
        user_id=principal.user_id,
        kind=kind,
        registration_number=cleaned.registration_number,
        issuing_body=cleaned.issuing_body,
        file_sha256=stored.sha256,
        media_type=stored.media_type,
        filename=cleaned.filename or f"licence.{stored.media_type.split('/')[1]}",
        issued_on=cleaned.issued_on,
        expires_on=cleaned.expires_on,
        status=PENDING,
        submitted_at=utcnow(),
        review_reason="",
    )
    try:
        with session.begin_nested():  # a concurrent submission by the same person took the pending place
            session.add(credential)
            session.flush()
    except IntegrityError:
        raise Conflict("Another submission of yours is being saved; reload the page and try again.") from None
    audit.record(
        session,
        principal,
        "credential.submit",
        resource_type="PractitionerCredential",
        resource_id=credential.id,
        detail={"kind": kind, "sha256": stored.sha256, "replaces": replaced_ids},
    )
    for admin_id in _admin_ids(session, principal.organisation_id):
        notify(
            session,
            admin_id,
            "credential.submitted",
            f"{KIND_LABELS[kind]} to review",
            f"{principal.full_name} submitted their {KIND_LABELS[kind].lower()} for review.",
            review_link(credential.id),
        )
    return credential


def _admin_ids(session: Session, organisation_id: uuid.UUID | None) -> list[uuid.UUID]:
    """The active administrators of an organisation."""
    if organisation_id is None:
        return []
    query = select(User.id).where(
        User.organisation_id == organisation_id, User.role == "admin", User.is_active.is_(True)
    )
    return list(session.scalars(query))


# --- reading ------------------------------------------------------------------------------------------------


def _load(session: Session, credential_id: uuid.UUID) -> tuple[PractitionerCredential, User] | None:
    row = session.execute(
        select(PractitionerCredential, User)
        .join(User, User.id == PractitionerCredential.user_id)
        .where(PractitionerCredential.id == credential_id)
    ).first()
    return (row[0], row[1]) if row else None


def _is_reviewer(principal: Principal, holder: User) -> bool:
    """An administrator of the holder's organisation."""
    return (
        principal.role == "admin"
        and principal.organisation_id is not None
        and holder.organisation_id == principal.organisation_id
    )


def _denied(session: Session, principal: Principal, action: str, credential_id: uuid.UUID) -> NotFound:
    audit.record_and_commit(
        session,
        principal,
        action,
        outcome="denied",
        resource_type="PractitionerCredential",
        resource_id=credential_id,
    )
    return NotFound("No such credential.")


def get(
    session: Session, principal: Principal, credential_id: uuid.UUID, action: str = "credential.read"
) -> tuple[PractitionerCredential, User]:
    """A credential and its holder, for the holder and the administrators of their organisation (404,
    audited, for everyone else). The read is audited."""
    found = _load(session, credential_id)
    if found is None or not (found[1].id == principal.user_id or _is_reviewer(principal, found[1])):
        raise _denied(session, principal, action, credential_id)
    audit.record(
        session, principal, action, resource_type="PractitionerCredential", resource_id=credential_id
    )
    return found


def document(
    session: Session, principal: Principal, credential_id: uuid.UUID
) -> tuple[PractitionerCredential, bytes]:
    """The credential's document, decrypted (same readers as :func:`get`)."""
    credential, _holder = get(session, principal, credential_id, "credential.document")
    return credential, storage.get(credential.file_sha256)


def pending_for_review(
    session: Session,
    principal: Principal,
    *,
    status: str = PENDING,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[tuple[PractitionerCredential, User]]:
    """The administrator's queue: credentials of their organisation's staff with ``status`` (pending by
    default), oldest submission first. Items are (credential, holder)."""
    require(session, principal, Perm.USER_MANAGE, "credential.queue")
    if status not in STATUSES:
        raise ValidationFailed(
            f"Unknown status {status!r}. Choose one of: {', '.join(STATUSES)}.", extra={"field": "status"}
        )
    staff = select(User.id).where(User.organisation_id == principal.organisation_id)
    query = select(PractitionerCredential).where(
        PractitionerCredential.status == status, PractitionerCredential.user_id.in_(staff)
    )
    page = paginate(
        session,
        query,
        sort_column=PractitionerCredential.submitted_at,
        id_column=PractitionerCredential.id,
        descending=status != PENDING,  # the queue is first come, first served; decisions newest first
        limit=limit,
        cursor=cursor,
    )
    holders = {
        u.id: u for u in session.scalars(select(User).where(User.id.in_({c.user_id for c in page.items})))
    }
    return Page(items=[(c, holders[c.user_id]) for c in page.items], next_cursor=page.next_cursor)


# --- deciding -----------------------------------------------------------------------------------------------


def _for_reviewer(
    session: Session, principal: Principal, credential_id: uuid.UUID, action: str
) -> tuple[PractitionerCredential, User]:
    """The credential, if the caller administers its holder's organisation: 403 for other roles, 404 for
    administrators of other organisations (both audited). Locks the row for the decision."""
    require(session, principal, Perm.USER_MANAGE, action)
    found = _load(session, credential_id)
    if found is None or not _is_reviewer(principal, found[1]):
        raise _denied(session, principal, action, credential_id)
    session.refresh(found[0], with_for_update=True)
    return found


def _reason(reason: str, required: bool) -> str:
    cleaned = clean_text(reason or "")
    if required and not cleaned:
        raise ValidationFailed("Give the reason: the clinician will read it.", extra={"field": "reason"})
    if len(cleaned) > MAX_REASON:
        raise ValidationFailed(f"Keep the reason under {MAX_REASON} characters.", extra={"field": "reason"})
    return cleaned


def review(
    session: Session, principal: Principal, credential_id: uuid.UUID, decision: str, reason: str = ""
) -> PractitionerCredential:
    """An administrator of the clinician's organisation approves or rejects a pending credential (a
    rejection needs a reason). Approving a renewal retires the licence it renews. The clinician is
    notified."""
    credential, holder = _for_reviewer(session, principal, credential_id, "credential.review")
    if decision not in DECISIONS:
        raise ValidationFailed("Choose approve or reject.", extra={"field": "decision"})
    cleaned = _reason(reason, required=decision == "reject")
    if credential.status != PENDING:
        raise Conflict(f"This credential is {credential.status}; only a pending one can be reviewed.")
    today = utcnow().date()
    if decision == "approve" and credential.expires_on < today:
        raise Conflict("This licence has expired; ask the clinician to submit the current one.")
    if decision == "approve":
        session.execute(
            update(PractitionerCredential)
            .where(PractitionerCredential.user_id == holder.id, PractitionerCredential.status == APPROVED)
            .values(status=SUPERSEDED)
        )
    status = APPROVED if decision == "approve" else REJECTED
    _decide(
        session,
        principal,
        credential,
        status,
        cleaned,
        "credential.review",
        decision=decision,
        holder=holder.id,
    )
    label = KIND_LABELS[credential.kind]
    if decision == "approve":
        title = f"Your {label.lower()} was approved"
        body = f"It is valid until {credential.expires_on:%d %B %Y}."
    else:
        title = f"Your {label.lower()} was not approved"
        body = f"Reason: {cleaned} Please submit it again with the correction."
    _tell_holder(session, principal, holder, credential.status, title, body)
    return credential


def suspend(
    session: Session, principal: Principal, credential_id: uuid.UUID, reason: str
) -> PractitionerCredential:
    """An administrator of the clinician's organisation suspends an approved credential, with a reason: the
    clinician is unverified from now on, and is notified."""
    credential, holder = _for_reviewer(session, principal, credential_id, "credential.suspend")
    cleaned = _reason(reason, required=True)
    if credential.status != APPROVED:
        raise Conflict(f"This credential is {credential.status}; only an approved one can be suspended.")
    _decide(session, principal, credential, SUSPENDED, cleaned, "credential.suspend", holder=holder.id)
    title = f"Your {KIND_LABELS[credential.kind].lower()} was suspended"
    _tell_holder(session, principal, holder, SUSPENDED, title, f"Reason: {cleaned}")
    return credential


# --- expiry ------------------------------------------------------------------------------------------------


def _claim(session: Session, credential_id: uuid.UUID, kind: str, now: datetime) -> bool:
    """Record that ``kind`` is being sent; ``False`` if a run (or a concurrent worker) already did."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(CredentialReminder)
        .values(credential_id=credential_id, kind=kind, sent_at=now)
        .on_conflict_do_nothing(index_elements=["credential_id", "kind"])
        .returning(CredentialReminder.kind)
    )
    return session.execute(statement).first() is not None


def due_reminder(expires_on: date, today: date) -> int | None:
    """The reminder due ``today`` (days before expiry: the nearest whose moment has passed), or ``None``
    when none is, or the licence has expired."""
    left = (expires_on - today).days
    due = [days for days in REMINDER_DAYS if 0 <= left <= days]
    return min(due) if due else None


def _decide(
    session: Session,
    principal: Principal,
    credential: PractitionerCredential,
    status: str,
    reason: str,
    action: str,
    **detail: Any,
) -> None:
    """Record an administrator's decision on a credential (who, when, why) and audit it."""
    credential.status = status
    credential.reviewed_by, credential.reviewed_at, credential.review_reason = (
        principal.user_id,
        utcnow(),
        reason,
    )
    session.flush()
    audit.record(
        session,
        principal,
        action,
        resource_type="PractitionerCredential",
        resource_id=credential.id,
        detail=detail,
    )


def _tell_holder(session: Session, actor: Principal, holder: User, kind: str, title: str, body: str) -> None:
    """Notify the credential's holder in the app and by email (which carries no more than the notice)."""
    notify(session, holder.id, f"credential.{kind}", title, body, MY_PAGE)
    url = f"{get_settings().base_url.rstrip('/')}{MY_PAGE}"
    queue_email(session, actor, holder.email, title, f"Hello {holder.full_name},\n\n{body}\n\nSee: {url}\n")


def _tell_all(
    session: Session,
    credential: PractitionerCredential,
    holder: User,
    kind: str,
    titles: tuple[str, str],
    body: str,
) -> None:
    """Tell the holder (``titles[0]``) and their organisation's administrators (``titles[1]``) about an
    expiry, and audit it."""
    actor = system_principal(SENDER)
    _tell_holder(session, actor, holder, kind, titles[0], body)
    for admin_id in _admin_ids(session, holder.organisation_id):
        notify(session, admin_id, f"credential.{kind}", titles[1], body, review_link(credential.id))
    audit.record(
        session,
        actor,
        "credential.expire" if kind == EXPIRED_KIND else "credential.reminder",
        resource_type="PractitionerCredential",
        resource_id=credential.id,
        detail={"kind": kind, "holder": holder.id},
    )


def _utc_day(now: datetime) -> date:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC).date()


def send_expiry_reminders(session: Session, now: datetime) -> int:
    """Remind the holders of approved licences expiring within 30 and within 7 days, and their
    organisations' administrators, once per reminder. Returns how many were sent. Safe to re-run, and
    from several workers at once."""
    today = _utc_day(now)
    query = (
        select(PractitionerCredential, User)
        .join(User, User.id == PractitionerCredential.user_id)
        .where(
            PractitionerCredential.status == APPROVED,
            PractitionerCredential.expires_on >= today,
            PractitionerCredential.expires_on <= today + timedelta(days=max(REMINDER_DAYS)),
        )
        .order_by(PractitionerCredential.expires_on)
    )
    sent = 0
    for credential, holder in session.execute(query).all():
        days = due_reminder(credential.expires_on, today)
        if days is None or not _claim(session, credential.id, reminder_kind(days), now):
            continue
        label = KIND_LABELS[credential.kind].lower()
        when = f"{credential.expires_on:%d %B %Y}"
        titles = (f"Your {label} expires on {when}", f"{holder.full_name}'s {label} expires on {when}")
        body = (
            f"The {label} ({credential.registration_number}) expires in "
            f"{(credential.expires_on - today).days} days. The renewed licence must be submitted and "
            "approved before then: without a valid licence its holder cannot see patients or prescribe."
        )
        _tell_all(session, credential, holder, reminder_kind(days), titles, body)
        sent += 1
    return sent


def expire_lapsed(session: Session, now: datetime) -> int:
    """Mark approved and pending credentials whose expiry date has passed as expired and tell their holders
    and administrators. Returns how many expired. Safe to re-run, and from several workers at once."""
    today = _utc_day(now)
    query = (
        select(PractitionerCredential, User)
        .join(User, User.id == PractitionerCredential.user_id)
        .where(
            PractitionerCredential.status.in_((APPROVED, PENDING)), PractitionerCredential.expires_on < today
        )
    )
    expired = 0
    for credential, holder in session.execute(query).all():
        changed = session.execute(  # a concurrent run that got here first leaves nothing to change
            update(PractitionerCredential)
            .where(
                PractitionerCredential.id == credential.id, PractitionerCredential.status == credential.status
            )
            .values(status=EXPIRED)
            .returning(PractitionerCredential.id)
        ).first()
        if changed is None:
            continue
        expired += 1
        if not _claim(session, credential.id, EXPIRED_KIND, now):
            continue
        label = KIND_LABELS[credential.kind].lower()
        titles = (f"Your {label} has expired", f"{holder.full_name}'s {label} has expired")
        body = (
            f"The {label} ({credential.registration_number}) expired on {credential.expires_on:%d %B %Y}. "
            "Until a renewed licence is approved, its holder cannot see patients or prescribe."
        )
        _tell_all(session, credential, holder, EXPIRED_KIND, titles, body)
    return expired
