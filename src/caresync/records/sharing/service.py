"""Share links and codes: a patient shows a chosen set of their records to someone outside CareSync (for a
second opinion, say) for a limited time.

A share has two credentials, both shown once and stored only as digests: a link token (256 random bits,
``/share/<token>``) and a short code to read out or type (``XXXX-XXXX-XXXX`` from an unambiguous alphabet,
about 59 bits). The code's digest is keyed with the server secret (HMAC-SHA256), so a leaked database does
not let anyone brute-force codes offline; online guessing is throttled per address from the audit log.

Redeeming a code gives a *view key*: a signed reference to the share valid for an hour, used where a link
token would be (in page and file addresses), so that the code itself never appears in a URL.

Anyone holding a credential may open the share (no account needed). Every open, file view and failed
attempt is audited with an anonymous actor and the patient's id, so the patient sees it under "Who saw my
data"; the patient is notified the first time a share is opened.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core import audit, crypto
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal, anonymous
from caresync.core.errors import Conflict, NotFound, TooManyAttempts, ValidationFailed
from caresync.core.notify import notify
from caresync.core.pagination import Page, paginate
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Patient
from caresync.records.consent import require_patient_self
from caresync.records.models import HealthRecord, ShareLink
from caresync.records.rules import grant_status
from caresync.records.service import Verification, check_record, stored_file, superseded_ids

DEFAULT_EXPIRY = timedelta(days=7)
MIN_EXPIRY = timedelta(hours=1)
MAX_EXPIRY = timedelta(days=30)
EXPIRY_GRACE = timedelta(minutes=1)  # a client computing "now + 1 hour" is a little late by the time we check
MAX_RECORDS = 50
MAX_ACTIVE_SHARES = 20
SHARE_REFUSAL = "Only the patient can share their records."
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"  # no 0/O, 1/I/L or U: nothing to misread
CODE_LENGTH = 12  # 30**12 ≈ 2**59
CODE_ATTEMPTS = 10  # failed codes allowed per address per window
ATTEMPT_WINDOW = timedelta(minutes=15)
VIEW_KEY_LIFETIME = timedelta(hours=1)

UNKNOWN = "This share link or code is not valid. Check it, or ask the patient for a new one."
EXPIRED = "This share link has expired. Ask the patient for a new one if you still need the records."
REVOKED = "This share link was withdrawn by the patient."
VIEW_TIMED_OUT = "This view has timed out. Enter the code again to continue."
NOT_SHARED = "This record is not part of the share."
NO_SHARE = "No such share."
SHARE_HOLDER = "Share link holder"


@dataclass(frozen=True)
class NewShare:
    """A share just created, with its credentials: the only time they are available."""

    share: ShareLink
    token: str
    code: str
    url: str


@dataclass(frozen=True)
class ViewKey:
    """What a redeemed code gives: a key to use in place of a link token, and when it stops working."""

    key: str
    expires_at: datetime


@dataclass(frozen=True)
class SharedView:
    """What the holder of a share sees: whose records, until when, and each record's integrity."""

    share: ShareLink
    patient_name: str
    records: list[HealthRecord]  # newest first
    verifications: dict[uuid.UUID, Verification]
    superseded: set[uuid.UUID]  # shared records that were corrected since (the correction is not shared)
    key: str  # the credential to use in this view's file addresses
    key_expires_at: datetime


# --- the patient's side ---------------------------------------------------------------------------------


def create_share(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    record_ids: list[uuid.UUID],
    *,
    expires_in_hours: int | None = None,
    expires_at: datetime | None = None,
    label: str = "",
) -> NewShare:
    """The patient shares 1 to ``MAX_RECORDS`` of their own records until ``expires_at`` (or for
    ``expires_in_hours``; 7 days when neither is given), between an hour and 30 days. Only the patient may
    share (their carers get 403, anyone else 404). Returns the link token and code, shown only now."""
    require_patient_self(session, principal, patient_id, "share.create", SHARE_REFUSAL)
    now = utcnow()
    expiry = _expiry(now, expires_in_hours, expires_at)
    records = _own_records(session, patient_id, record_ids)
    active = session.execute(
        select(func.count()).where(
            ShareLink.patient_id == patient_id, ShareLink.revoked_at.is_(None), ShareLink.expires_at > now
        )
    ).scalar_one()
    if active >= MAX_ACTIVE_SHARES:
        raise Conflict(f"You already have {MAX_ACTIVE_SHARES} active share links. Revoke one first.")
    assert principal.user_id is not None  # a signed-in patient
    token, code = crypto.new_token(), new_code()
    share = ShareLink(
        patient_id=patient_id,
        label=clean_line(label)[:120],
        token_digest=crypto.token_digest(token),
        code_digest=code_digest(code),
        created_by=principal.user_id,
        created_at=now,
        expires_at=expiry,
        use_count=0,
        records=records,
    )
    session.add(share)
    session.flush()
    audit.record(
        session,
        principal,
        "share.create",
        patient_id=patient_id,
        resource_type="ShareLink",
        resource_id=share.id,
        detail={"records": [str(r.id) for r in records], "expires_at": expiry.isoformat()},
    )
    return NewShare(share=share, token=token, code=code, url=share_url(token))


def _expiry(now: datetime, hours: int | None, at: datetime | None) -> datetime:
    if hours is not None and at is not None:
        raise ValidationFailed(
            "Give either a number of hours or an expiry time, not both.", extra={"field": "expires_at"}
        )
    if at is not None and at.tzinfo is None:
        raise ValidationFailed("Give the expiry time with its time zone.", extra={"field": "expires_at"})
    expiry = at if at is not None else now + (timedelta(hours=hours) if hours is not None else DEFAULT_EXPIRY)
    field = "expires_at" if at is not None else "expires_in_hours"
    if expiry < now + MIN_EXPIRY - EXPIRY_GRACE:
        raise ValidationFailed("A share must last at least an hour.", extra={"field": field})
    if expiry > now + MAX_EXPIRY + EXPIRY_GRACE:
        raise ValidationFailed("A share can last at most 30 days.", extra={"field": field})
    return expiry


def _own_records(session: Session, patient_id: uuid.UUID, record_ids: list[uuid.UUID]) -> list[HealthRecord]:
    wanted = list(dict.fromkeys(record_ids))
    if not wanted:
        raise ValidationFailed("Choose at least one record to share.", extra={"field": "record_ids"})
    if len(wanted) > MAX_RECORDS:
        raise ValidationFailed(
            f"Share at most {MAX_RECORDS} records at a time.", extra={"field": "record_ids"}
        )
    found = session.execute(select(HealthRecord).where(HealthRecord.id.in_(wanted))).scalars().all()
    if len(found) != len(wanted) or any(r.patient_id != patient_id for r in found):
        raise ValidationFailed(
            "Some of the chosen records are not in your record.", extra={"field": "record_ids"}
        )
    return sorted(found, key=lambda r: (r.recorded_on, r.created_at), reverse=True)


def list_shares(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[ShareLink]:
    """The patient's shares, newest first, active or not (only the patient sees them)."""
    require_patient_self(session, principal, patient_id, "share.list", SHARE_REFUSAL)
    page = paginate(
        session,
        select(ShareLink).where(ShareLink.patient_id == patient_id),
        sort_column=ShareLink.created_at,
        id_column=ShareLink.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    audit.record(
        session,
        principal,
        "share.list",
        patient_id=patient_id,
        resource_type="ShareLink",
        detail={"count": len(page.items)},
    )
    return page


def get_share(session: Session, principal: Principal, share_id: uuid.UUID) -> ShareLink:
    """One of the patient's own shares (404, audited, for anyone else's or an unknown one)."""
    share = _own_share(session, principal, share_id, "share.read")
    audit.record(
        session,
        principal,
        "share.read",
        patient_id=share.patient_id,
        resource_type="ShareLink",
        resource_id=share.id,
    )
    return share


def _own_share(session: Session, principal: Principal, share_id: uuid.UUID, action: str) -> ShareLink:
    share = session.get(ShareLink, share_id)
    if share is None or principal.role != "patient" or share.patient_id != principal.patient_id:
        audit.record_and_commit(
            session, principal, action, outcome="denied", resource_type="ShareLink", resource_id=share_id
        )
        raise NotFound(NO_SHARE)
    return share


def revoke_share(session: Session, principal: Principal, share_id: uuid.UUID) -> ShareLink:
    """The patient withdraws a share: its link and code stop working at once. Revoking twice is harmless."""
    share = _own_share(session, principal, share_id, "share.revoke")
    if share.revoked_at is None:
        share.revoked_at = utcnow()
        audit.record(
            session,
            principal,
            "share.revoke",
            patient_id=share.patient_id,
            resource_type="ShareLink",
            resource_id=share.id,
        )
    return share


def share_status(share: ShareLink, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    return grant_status(share.revoked_at, share.expires_at, now or utcnow())


# --- credentials ------------------------------------------------------------------------------------------


def new_code() -> str:
    """A fresh human code, ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalize_code(code: str) -> str | None:
    """The code as stored (upper case, no separators), or ``None`` if it cannot be a code."""
    raw = "".join(c for c in code.upper() if c.isalnum())
    if len(raw) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in raw):
        return None
    return raw


def code_digest(code: str) -> str:
    """The keyed digest stored for a code (HMAC-SHA256 under the server secret, of the normalised code)."""
    return crypto.hmac_hex(get_settings().secret("secret_key"), f"share-code:{normalize_code(code) or ''}")


def share_url(key: str) -> str:
    """The absolute address of the share's page for a link token or view key."""
    return f"{get_settings().base_url.rstrip('/')}/share/{key}"


def code_page_url() -> str:
    """The absolute address of the page where a share code is entered."""
    return f"{get_settings().base_url.rstrip('/')}/share"


def view_key(share_id: uuid.UUID, expires: int) -> str:
    """A signed key to view the share until ``expires`` (Unix seconds)."""
    body = f"{share_id.hex}.{expires}"
    return f"{body}.{crypto.hmac_hex(get_settings().secret('secret_key'), f'share-view:{body}')[:32]}"


def _parse_view_key(key: str) -> tuple[uuid.UUID, int] | None:
    """The share id and expiry (Unix seconds) of an authentic view key, else ``None``."""
    parts = key.split(".")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    try:
        share_id = uuid.UUID(hex=parts[0])
    except ValueError:
        return None
    if not crypto.constant_time_equal(key, view_key(share_id, int(parts[1]))):
        return None
    return share_id, int(parts[1])


# --- the holder's side (anonymous) --------------------------------------------------------------------------


def redeem_code(session: Session, code: str, client_ip: str) -> ViewKey:
    """Exchange a share code for a view key. Every failed lookup is audited (``share.redeem``, denied);
    after ``CODE_ATTEMPTS`` failures from one address within ``ATTEMPT_WINDOW`` the address is refused
    (429) until the window passes."""
    raw = normalize_code(code)
    if raw is None:
        raise ValidationFailed(
            f"A share code has {CODE_LENGTH} letters and digits, like ABCD-EFGH-JKMN.",
            extra={"field": "code"},
        )
    actor = _holder(client_ip)
    now = utcnow()
    if _recent_failures(session, client_ip, now) >= CODE_ATTEMPTS:
        audit.record_and_commit(
            session, actor, "share.redeem", outcome="denied", detail={"reason": "throttled"}
        )
        raise TooManyAttempts(
            "Too many wrong codes were tried from your network. Wait 15 minutes, then try again.",
            extra={"retry_after": int(ATTEMPT_WINDOW.total_seconds())},
        )
    share = session.execute(
        select(ShareLink).where(ShareLink.code_digest == code_digest(raw))
    ).scalar_one_or_none()
    _refuse_unusable(session, actor, "share.redeem", share, now, via="code")
    assert share is not None
    expires = min(share.expires_at, now + VIEW_KEY_LIFETIME)
    audit.record(
        session,
        actor,
        "share.redeem",
        patient_id=share.patient_id,
        resource_type="ShareLink",
        resource_id=share.id,
        detail={"share_id": str(share.id)},
    )
    return ViewKey(view_key(share.id, int(expires.timestamp())), expires)


def _recent_failures(session: Session, client_ip: str, now: datetime) -> int:
    query = select(func.count()).where(
        AuditEntry.action == "share.redeem",
        AuditEntry.outcome == "denied",
        AuditEntry.at >= now - ATTEMPT_WINDOW,
        AuditEntry.client_ip == client_ip,
    )
    return int(session.execute(query).scalar_one())


def open_share(session: Session, key: str, client_ip: str) -> SharedView:
    """Open a share by its link token or a view key: the records, newest first, each verified. Counts a
    use, audits ``share.open`` for the patient, and notifies them the first time. An unknown, expired or
    revoked share is a 404 saying which (audited as denied)."""
    actor = _holder(client_ip)
    now = utcnow()
    share, via, key_expires = _resolve(session, actor, "share.open", key, now)
    uses = session.execute(
        update(ShareLink)
        .where(ShareLink.id == share.id)
        .values(use_count=ShareLink.use_count + 1, last_used_at=now)
        .returning(ShareLink.use_count)
    ).scalar_one()
    session.refresh(share)
    records = sorted(share.records, key=lambda r: (r.recorded_on, r.created_at), reverse=True)
    audit.record(
        session,
        actor,
        "share.open",
        patient_id=share.patient_id,
        resource_type="ShareLink",
        resource_id=share.id,
        detail={"share_id": str(share.id), "via": via, "records": len(records)},
    )
    patient = session.get(Patient, share.patient_id)
    assert patient is not None  # shares are deleted with their patient
    if uses == 1 and patient.user_id is not None:
        name = f"“{share.label}”" if share.label else "you created"
        notify(
            session,
            patient.user_id,
            "share",
            "Your shared records were opened",
            f"The share {name} was opened for the first time. Every use is listed under Share links.",
            link="/me/shares",
        )
    return SharedView(
        share=share,
        patient_name=f"{patient.given_name} {patient.family_name}",
        records=records,
        verifications={r.id: check_record(r) for r in records},
        superseded=superseded_ids(session, records),
        key=key,
        key_expires_at=key_expires,
    )


def shared_record(
    session: Session, key: str, record_id: uuid.UUID, client_ip: str
) -> tuple[ShareLink, HealthRecord]:
    """The share a link token or view key opens and one of its records (404, audited, when the share is
    not usable or the record is not in it). Nothing is read from the record's file here."""
    actor = _holder(client_ip)
    share, _via, _expires = _resolve(session, actor, "share.download", key, utcnow())
    record = next((r for r in share.records if r.id == record_id), None)
    if record is None:
        audit.record_and_commit(
            session,
            actor,
            "share.download",
            outcome="denied",
            patient_id=share.patient_id,
            resource_type="HealthRecord",
            resource_id=record_id,
            detail={"share_id": str(share.id), "reason": "not in share"},
        )
        raise NotFound(NOT_SHARED)
    return share, record


def shared_file(
    session: Session, key: str, record_id: uuid.UUID, client_ip: str, *, download: bool = False
) -> tuple[HealthRecord, bytes]:
    """One shared record's file, decrypted, for the holder of a link token or view key (audited as
    ``share.download``). A record not in the share is a 404 (audited)."""
    share, record = shared_record(session, key, record_id, client_ip)
    share.last_used_at = utcnow()
    audit.record(
        session,
        _holder(client_ip),
        "share.download",
        patient_id=share.patient_id,
        resource_type="HealthRecord",
        resource_id=record.id,
        detail={"share_id": str(share.id), "download": download},
    )
    return record, stored_file(record)


def _holder(client_ip: str) -> Principal:
    """The anonymous actor of the audit entries a share's holder causes."""
    return replace(anonymous(client_ip), full_name=SHARE_HOLDER)


def _resolve(
    session: Session, actor: Principal, action: str, key: str, now: datetime
) -> tuple[ShareLink, str, datetime]:
    """The usable share a link token or view key names, how it was reached (``link`` or ``code``) and
    until when the key works; otherwise audit the denial and raise 404."""
    parsed = _parse_view_key(key) if "." in key else None
    via = "code" if "." in key else "link"
    if parsed is not None:
        share = session.get(ShareLink, parsed[0])
    elif via == "link" and key:
        query = select(ShareLink).where(ShareLink.token_digest == crypto.token_digest(key))
        share = session.execute(query).scalar_one_or_none()
    else:
        share = None
    _refuse_unusable(session, actor, action, share, now, via=via)
    assert share is not None
    if parsed is None:
        return share, via, share.expires_at
    if parsed[1] < now.timestamp():
        _deny(session, actor, action, share, "view timed out")
        raise NotFound(VIEW_TIMED_OUT)
    return share, via, min(share.expires_at, _from_unix(parsed[1]))


def _refuse_unusable(
    session: Session, actor: Principal, action: str, share: ShareLink | None, now: datetime, *, via: str
) -> None:
    """Audit and refuse (404 with a message saying why) an unknown, revoked or expired share."""
    if share is None:
        audit.record_and_commit(
            session,
            actor,
            action,
            outcome="denied",
            resource_type="ShareLink",
            detail={"reason": "unknown", "via": via},
        )
        raise NotFound(UNKNOWN)
    status = share_status(share, now)
    if status != "active":
        _deny(session, actor, action, share, status)
        raise NotFound(REVOKED if status == "revoked" else EXPIRED)


def _deny(session: Session, actor: Principal, action: str, share: ShareLink, reason: str) -> None:
    audit.record_and_commit(
        session,
        actor,
        action,
        outcome="denied",
        patient_id=share.patient_id,
        resource_type="ShareLink",
        resource_id=share.id,
        detail={"share_id": str(share.id), "reason": reason},
    )


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
