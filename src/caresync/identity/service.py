"""Account use cases: registration, sign-in with lockout and MFA, sessions and tokens, passwords, and
staff administration. Every function takes a DB session and the acting principal, writes the audit log,
and leaves committing to the caller, except where a failure itself must be recorded."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
import segno
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from caresync.config import get_settings
from caresync.core import audit, crypto
from caresync.core.auth import Principal, anonymous
from caresync.core.errors import Conflict, Forbidden, Locked, NotFound, Unauthenticated, ValidationFailed
from caresync.core.notify import notify, queue_email
from caresync.core.pagination import Page, paginate, parse_sort
from caresync.core.rbac import Perm, require
from caresync.db import utcnow
from caresync.identity.models import AuthSession, Organisation, PasswordReset, Patient, RecoveryCode, User
from caresync.identity.rules import (
    ORG_STAFF_ROLES,
    SELF_REGISTER_ROLES,
    STAFF_ROLES,
    OrganisationKind,
    Role,
    password_problem,
    requires_mfa,
)

RECOVERY_CODES = 10
TOTP_ISSUER = "CareSync"
LAST_SEEN_GRANULARITY = timedelta(minutes=5)


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively."""
    return email.strip().lower()


def check_password(password: str, email: str) -> None:
    """Raise 422 with the reason if the password is not acceptable."""
    problem = password_problem(password, min_length=get_settings().password_min_length, email=email)
    if problem:
        raise ValidationFailed(problem, extra={"field": "password"})


def _ensure_email_free(session: Session, email: str) -> None:
    if session.execute(select(User.id).where(User.email == email)).first():
        raise Conflict("An account with this email already exists. Sign in or reset your password.")


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role,
    organisation_id: uuid.UUID | None = None,
) -> User:
    """Create a user after checking the rules (no audit: callers audit in their own terms)."""
    email = normalise_email(email)
    check_password(password, email)
    _ensure_email_free(session, email)
    user = User(
        email=email,
        full_name=full_name.strip(),
        role=role.value,
        organisation_id=organisation_id,
        password_hash=crypto.hash_password(password),
        password_changed_at=utcnow(),
    )
    session.add(user)
    session.flush()
    return user


def register(
    session: Session,
    actor: Principal,
    *,
    role: Role,
    email: str,
    password: str,
    full_name: str,
    patient: Patient | None = None,
) -> User:
    """Self-registration for patients and donors. A patient's profile is created with the account."""
    if role not in SELF_REGISTER_ROLES:
        raise ValidationFailed(
            "Only patients and donors can register themselves; staff accounts are "
            "created by their organisation's administrator."
        )
    user = create_user(session, email=email, password=password, full_name=full_name, role=role)
    if patient is not None:
        patient.user_id = user.id
        patient.email = patient.email or user.email
        session.add(patient)
        session.flush()
    registered = Principal(user.id, user.role, user.full_name, client_ip=actor.client_ip)
    audit.record(
        session,
        registered,
        "auth.register",
        resource_type="User",
        resource_id=user.id,
        patient_id=patient.id if patient else None,
    )
    return user


# --- sign-in ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignIn:
    """A new session: the raw token (shown once) and its row."""

    token: str
    auth_session: AuthSession


def login(
    session: Session,
    *,
    email: str,
    password: str,
    kind: str,
    client_ip: str,
    user_agent: str = "",
    otp: str | None = None,
) -> SignIn:
    """Check the password (and the second factor if given) and open a session.

    The session's stage says what is still missing: ``mfa`` (the user has MFA and gave no code yet),
    ``enrol`` (staff who must enrol MFA first) or ``full``. Failures are audited and count towards
    the lockout; locked accounts are refused whatever the password."""
    actor = anonymous(client_ip)
    email = normalise_email(email)
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    now = utcnow()
    if user is None or not user.is_active:
        crypto.verify_password(password, crypto.dummy_password_hash())
        audit.record_and_commit(
            session,
            actor,
            "auth.login",
            outcome="failure",
            detail={"email": email, "reason": "unknown or inactive account"},
        )
        raise Unauthenticated("Email or password is incorrect.")
    who = _principal_for(user, client_ip)
    if user.locked_until and user.locked_until > now:
        audit.record_and_commit(session, who, "auth.login", outcome="denied", detail={"reason": "locked"})
        raise Locked(
            f"Too many failed sign-ins. Try again after {user.locked_until:%H:%M} UTC, "
            "or reset your password."
        )
    if not crypto.verify_password(password, user.password_hash):
        _count_failure(session, user, who, "wrong password")
        raise Unauthenticated("Email or password is incorrect.")
    stage = "full"
    if user.mfa_enabled:
        if otp:
            if not _verify_second_factor(session, user, otp):
                _count_failure(session, user, who, "wrong MFA code")
                raise Unauthenticated("The authentication code is not valid.")
        else:
            stage = "mfa"
    elif requires_mfa(Role(user.role)):
        stage = "enrol"
    if stage == "full":
        user.failed_logins = 0
        user.last_login_at = now
    sign_in = _open_session(session, user, kind=kind, stage=stage, client_ip=client_ip, user_agent=user_agent)
    audit.record(
        session,
        who,
        "auth.login",
        detail={"stage": stage, "kind": kind},
        resource_type="AuthSession",
        resource_id=sign_in.auth_session.id,
    )
    return sign_in


def complete_mfa(session: Session, principal: Principal, otp: str) -> AuthSession:
    """Second step of sign-in: a TOTP or recovery code upgrades an ``mfa`` session to ``full``."""
    auth_session = _current_session(session, principal)
    if auth_session.stage != "mfa":
        raise ValidationFailed("This session is not waiting for an authentication code.")
    user = auth_session.user
    if user.locked_until and user.locked_until > utcnow():
        audit.record_and_commit(session, principal, "auth.mfa", outcome="denied", detail={"reason": "locked"})
        raise Locked("Too many failed attempts. Try again later.")
    if not _verify_second_factor(session, user, otp):
        _count_failure(session, user, principal, "wrong MFA code")
        raise Unauthenticated("The authentication code is not valid.")
    auth_session.stage = "full"
    user.failed_logins = 0
    user.last_login_at = utcnow()
    audit.record(session, principal, "auth.mfa", resource_type="AuthSession", resource_id=auth_session.id)
    return auth_session


def _count_failure(session: Session, user: User, who: Principal, reason: str) -> None:
    """Record a failed attempt durably (the request itself fails) and lock the account at the threshold."""
    settings = get_settings()
    session.rollback()
    user = session.get(User, user.id) or user
    user.failed_logins += 1
    detail = {"reason": reason, "failures": user.failed_logins}
    if user.failed_logins >= settings.lockout_threshold:
        user.locked_until = utcnow() + timedelta(minutes=settings.lockout_minutes)
        user.failed_logins = 0
        detail["locked_minutes"] = settings.lockout_minutes
        notify(
            session,
            user.id,
            "security",
            "Your account was locked",
            f"{settings.lockout_threshold} failed sign-ins in a row. It unlocks automatically.",
        )
    audit.record(session, who, "auth.login", outcome="failure", detail=detail)
    session.commit()


def _principal_for(
    user: User, client_ip: str, session_id: uuid.UUID | None = None, patient_id: uuid.UUID | None = None
) -> Principal:
    return Principal(
        user_id=user.id,
        role=user.role,
        full_name=user.full_name,
        organisation_id=user.organisation_id,
        session_id=session_id,
        client_ip=client_ip,
        patient_id=patient_id,
    )


def acting_user(session: Session, user_id: uuid.UUID) -> Principal:
    """The principal of an account as it is now, for work done on its behalf later (a job it started);
    403 when the account has been deactivated since."""
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise Forbidden("The account that started this work is no longer active.")
    patient_id = session.execute(select(Patient.id).where(Patient.user_id == user.id)).scalar_one_or_none()
    return _principal_for(user, "", patient_id=patient_id)


def _open_session(
    session: Session,
    user: User,
    *,
    kind: str,
    stage: str,
    client_ip: str,
    user_agent: str,
    scope: str | None = None,
    label: str = "",
    hours: int | None = None,
) -> SignIn:
    settings = get_settings()
    if hours is None:
        hours = settings.session_hours if kind == "web" else settings.api_token_hours
    token = crypto.new_token()
    now = utcnow()
    row = AuthSession(
        user_id=user.id,
        token_digest=crypto.token_digest(token),
        kind=kind,
        stage=stage,
        created_at=now,
        expires_at=now + timedelta(hours=hours),
        last_seen_at=now,
        client_ip=client_ip[:64],
        user_agent=user_agent[:300],
        scope=scope,
        label=label[:120],
    )
    session.add(row)
    session.flush()
    return SignIn(token=token, auth_session=row)


@dataclass(frozen=True)
class Resolved:
    """A valid session and who it belongs to."""

    principal: Principal
    stage: str
    kind: str
    scope: str | None = None  # an app token's scopes; ``None`` for the user's own sessions


def resolve_token(session: Session, token: str, client_ip: str) -> Resolved | None:
    """The principal behind a session token, or ``None`` if it is unknown, expired or revoked."""
    now = utcnow()
    row = session.execute(
        select(AuthSession, User, Patient.id)
        .join(User, User.id == AuthSession.user_id)
        .outerjoin(Patient, Patient.user_id == User.id)
        .where(AuthSession.token_digest == crypto.token_digest(token))
    ).first()
    if row is None:
        return None
    auth_session, user, patient_id = row
    if auth_session.revoked_at or auth_session.expires_at <= now or not user.is_active:
        return None
    if now - auth_session.last_seen_at > LAST_SEEN_GRANULARITY:
        auth_session.last_seen_at = now
    principal = _principal_for(user, client_ip, auth_session.id, patient_id)
    return Resolved(
        principal=principal, stage=auth_session.stage, kind=auth_session.kind, scope=auth_session.scope
    )


def open_app_token(
    session: Session, principal: Principal, *, scope: str, label: str, hours: int, user_agent: str = ""
) -> SignIn:
    """A bearer token for an app, limited to ``scope`` (checked by the caller, e.g. ``fhir.scopes``).

    Only a fully signed-in user can issue one, for themselves; it expires after ``hours`` and is listed
    and revoked with the user's other sessions."""
    current = _current_session(session, principal)
    if current.stage != "full" or current.scope is not None:
        raise Forbidden("Sign in fully (with your own session, not an app token) to issue app tokens.")
    sign_in = _open_session(
        session,
        current.user,
        kind="api",
        stage="full",
        client_ip=principal.client_ip,
        user_agent=user_agent,
        scope=scope,
        label=label,
        hours=hours,
    )
    audit.record(
        session,
        principal,
        "auth.app_token",
        resource_type="AuthSession",
        resource_id=sign_in.auth_session.id,
        detail={"scope": scope, "label": label, "hours": hours},
    )
    return sign_in


def _current_session(session: Session, principal: Principal) -> AuthSession:
    row = session.get(AuthSession, principal.session_id) if principal.session_id else None
    if row is None:
        raise Unauthenticated("Sign in first.")
    return row


def logout(session: Session, principal: Principal) -> None:
    """Revoke the current session."""
    row = _current_session(session, principal)
    row.revoked_at = utcnow()
    audit.record(session, principal, "auth.logout", resource_type="AuthSession", resource_id=row.id)


def list_sessions(session: Session, principal: Principal) -> list[AuthSession]:
    """The user's live sessions, newest first."""
    query = (
        select(AuthSession)
        .where(
            AuthSession.user_id == principal.user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
        )
        .order_by(AuthSession.created_at.desc())
    )
    return list(session.execute(query).scalars())


def revoke_session(session: Session, principal: Principal, session_id: uuid.UUID) -> None:
    """Revoke one of the user's own sessions (e.g. a lost phone's token)."""
    row = session.get(AuthSession, session_id)
    if row is None or row.user_id != principal.user_id:
        raise NotFound("No such session.")
    row.revoked_at = row.revoked_at or utcnow()
    audit.record(session, principal, "auth.revoke", resource_type="AuthSession", resource_id=row.id)


def _revoke_all(session: Session, user_id: uuid.UUID, keep: uuid.UUID | None = None) -> None:
    query = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep:
        query = query.where(AuthSession.id != keep)
    session.execute(query.values(revoked_at=utcnow()))


# --- MFA --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MfaEnrolment:
    """What the user needs to set up an authenticator app."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def start_mfa_enrolment(session: Session, principal: Principal) -> MfaEnrolment:
    """Create a (not yet active) TOTP secret, or reuse the pending one, and show it as a QR code."""
    user = _user(session, principal)
    if user.mfa_enabled:
        raise Conflict("MFA is already on. Turn it off first to enrol a new authenticator.")
    if user.mfa_secret_encrypted:  # a pending enrolment: keep the secret the user may already have scanned
        secret = crypto.decrypt_text(user.mfa_secret_encrypted, aad=str(user.id))
    else:
        secret = pyotp.random_base32()
        user.mfa_secret_encrypted = crypto.encrypt_text(secret, aad=str(user.id))
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=TOTP_ISSUER)
    svg = segno.make(uri, error="m").svg_inline(scale=4, dark="#1f2937", light="#ffffff")
    audit.record(session, principal, "auth.mfa_enrol_start", resource_type="User", resource_id=user.id)
    return MfaEnrolment(secret=secret, otpauth_uri=uri, qr_svg=svg)


def confirm_mfa_enrolment(session: Session, principal: Principal, otp: str) -> list[str]:
    """Turn MFA on once the user proves their app works; returns fresh single-use recovery codes and
    upgrades an ``enrol`` session to ``full``."""
    user = _user(session, principal)
    if user.mfa_enabled:
        raise Conflict("MFA is already on.")
    if not user.mfa_secret_encrypted:
        raise ValidationFailed("Start the enrolment first.")
    if not _verify_totp(user, otp):
        audit.record_and_commit(session, principal, "auth.mfa_enrol", outcome="failure")
        raise ValidationFailed(
            "The code does not match. Check the time on your phone and try again.", extra={"field": "code"}
        )
    user.mfa_enabled = True
    codes = _new_recovery_codes(session, user)
    row = _current_session(session, principal)
    if row.stage == "enrol":
        row.stage = "full"
    _revoke_all(session, user.id, keep=row.id)
    audit.record(session, principal, "auth.mfa_enrol", resource_type="User", resource_id=user.id)
    return codes


def regenerate_recovery_codes(session: Session, principal: Principal) -> list[str]:
    """Replace the user's recovery codes (the old ones stop working)."""
    user = _user(session, principal)
    if not user.mfa_enabled:
        raise ValidationFailed("Turn MFA on first.")
    codes = _new_recovery_codes(session, user)
    audit.record(session, principal, "auth.recovery_codes", resource_type="User", resource_id=user.id)
    return codes


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    session.add_all(RecoveryCode(user_id=user.id, code_digest=crypto.token_digest(c)) for c in codes)
    return codes


def _verify_totp(user: User, otp: str) -> bool:
    """Accept the current code or its neighbours (clock drift), never the same time step twice."""
    code = "".join(otp.split())
    if not user.mfa_secret_encrypted or not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(crypto.decrypt_text(user.mfa_secret_encrypted, aad=str(user.id)))
    now = utcnow()
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if user.mfa_last_counter is not None and step <= user.mfa_last_counter:
            continue
        if crypto.constant_time_equal(totp.generate_otp(step), code):
            user.mfa_last_counter = step
            return True
    return False


def _verify_second_factor(session: Session, user: User, otp: str) -> bool:
    """A TOTP code, or one unused recovery code (which is then spent)."""
    if _verify_totp(user, otp):
        return True
    digest = crypto.token_digest(otp.strip().lower())
    code = session.execute(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_digest == digest,
            RecoveryCode.used_at.is_(None),
        )
    ).scalar_one_or_none()
    if code is None:
        return False
    code.used_at = utcnow()
    return True


def disable_mfa(session: Session, principal: Principal, password: str) -> None:
    """Turn MFA off (patients and donors only: staff must keep it)."""
    user = _user(session, principal)
    if requires_mfa(Role(user.role)):
        raise Forbidden(
            "Staff accounts must keep MFA on. An administrator can reset it if you lost your device."
        )
    if not crypto.verify_password(password, user.password_hash):
        raise ValidationFailed("The password is incorrect.", extra={"field": "password"})
    _clear_mfa(session, user)
    audit.record(session, principal, "auth.mfa_disable", resource_type="User", resource_id=user.id)


def _clear_mfa(session: Session, user: User) -> None:
    user.mfa_enabled = False
    user.mfa_secret_encrypted = None
    user.mfa_last_counter = None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))


def remaining_recovery_codes(session: Session, principal: Principal) -> int:
    """How many unused recovery codes the user has."""
    query = select(func.count()).where(
        RecoveryCode.user_id == principal.user_id, RecoveryCode.used_at.is_(None)
    )
    return int(session.execute(query).scalar_one())


# --- passwords --------------------------------------------------------------------------------------------


def change_password(session: Session, principal: Principal, current: str, new: str) -> None:
    """Change the password; every other session is signed out."""
    user = _user(session, principal)
    if not crypto.verify_password(current, user.password_hash):
        audit.record_and_commit(session, principal, "auth.password_change", outcome="failure")
        raise ValidationFailed("The current password is incorrect.", extra={"field": "current_password"})
    check_password(new, user.email)
    user.password_hash = crypto.hash_password(new)
    user.password_changed_at = utcnow()
    _revoke_all(session, user.id, keep=principal.session_id)
    audit.record(session, principal, "auth.password_change", resource_type="User", resource_id=user.id)


def request_password_reset(session: Session, email: str, client_ip: str) -> str | None:
    """Email a reset link if the account exists. Always looks the same to the caller; returns the token
    (for tests and the CLI) or ``None``."""
    actor = anonymous(client_ip)
    user = session.execute(select(User).where(User.email == normalise_email(email))).scalar_one_or_none()
    if user is None or not user.is_active:
        audit.record(
            session,
            actor,
            "auth.password_reset_request",
            outcome="failure",
            detail={"reason": "unknown account"},
        )
        return None
    token = crypto.new_token()
    minutes = get_settings().password_reset_minutes
    session.add(
        PasswordReset(
            user_id=user.id,
            token_digest=crypto.token_digest(token),
            expires_at=utcnow() + timedelta(minutes=minutes),
        )
    )
    link = f"{get_settings().base_url}/password/reset?token={token}"
    queue_email(
        session,
        actor,
        user.email,
        "Reset your CareSync password",
        f"Someone asked to reset the password of your CareSync account.\n\n"
        f"To choose a new password, open this link within {minutes} minutes:\n{link}\n\n"
        "If it was not you, ignore this email; your password stays as it is.",
    )
    audit.record(
        session,
        _principal_for(user, client_ip),
        "auth.password_reset_request",
        resource_type="User",
        resource_id=user.id,
    )
    return token


def reset_password(session: Session, token: str, new: str, client_ip: str) -> None:
    """Set a new password with a reset token; signs out everywhere and clears the lockout."""
    reset = session.execute(
        select(PasswordReset).where(PasswordReset.token_digest == crypto.token_digest(token))
    ).scalar_one_or_none()
    if reset is None or reset.used_at or reset.expires_at <= utcnow():
        audit.record_and_commit(session, anonymous(client_ip), "auth.password_reset", outcome="failure")
        raise ValidationFailed("This reset link is invalid or has expired. Ask for a new one.")
    user = session.get(User, reset.user_id)
    assert user is not None
    check_password(new, user.email)
    user.password_hash = crypto.hash_password(new)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    reset.used_at = utcnow()
    _revoke_all(session, user.id)
    notify(
        session,
        user.id,
        "security",
        "Your password was changed",
        "If this was not you, contact your administrator at once.",
    )
    audit.record(
        session,
        _principal_for(user, client_ip),
        "auth.password_reset",
        resource_type="User",
        resource_id=user.id,
    )


# --- users and organisations ------------------------------------------------------------------------------


def _user(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id) if principal.user_id else None
    if user is None:
        raise Unauthenticated("Sign in first.")
    return user


def get_me(session: Session, principal: Principal) -> User:
    """The signed-in user."""
    return _user(session, principal)


def _managed_user(session: Session, principal: Principal, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id)
    if user is None or user.organisation_id is None or user.organisation_id != principal.organisation_id:
        raise NotFound("No such user in your organisation.")
    return user


def _check_staff_role(session: Session, organisation_id: uuid.UUID | None, role: Role) -> Organisation:
    """The organisation, if it may employ ``role`` (a pharmacy has no nurses); else 422."""
    if role not in STAFF_ROLES:
        raise ValidationFailed("Choose a staff role.", extra={"field": "role"})
    org = session.get(Organisation, organisation_id) if organisation_id else None
    if org is None:
        raise ValidationFailed("Staff must belong to an organisation.")
    if role not in ORG_STAFF_ROLES[OrganisationKind(org.kind)]:
        kind = org.kind.replace("_", " ")
        raise ValidationFailed(f"A {kind} cannot employ the role {role.value}.", extra={"field": "role"})
    return org


def create_staff(
    session: Session, principal: Principal, *, email: str, password: str, full_name: str, role: Role
) -> User:
    """An organisation admin creates a staff account in their organisation (MFA enrolment is forced at
    first sign-in)."""
    require(session, principal, Perm.USER_MANAGE, "user.create")
    if role not in STAFF_ROLES:
        raise ValidationFailed(
            "Patients and donors register themselves; choose a staff role.", extra={"field": "role"}
        )
    org = _check_staff_role(session, principal.organisation_id, role)
    user = create_user(
        session, email=email, password=password, full_name=full_name, role=role, organisation_id=org.id
    )
    audit.record(
        session,
        principal,
        "user.create",
        resource_type="User",
        resource_id=user.id,
        detail={"role": role.value},
    )
    return user


USER_SORTS = {
    "full_name": User.full_name,
    "email": User.email,
    "created_at": User.created_at,
    "role": User.role,
}


def list_staff(
    session: Session,
    principal: Principal,
    *,
    q: str = "",
    role: str = "",
    sort: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[User]:
    """The users of the admin's organisation, searchable and sortable."""
    require(session, principal, Perm.USER_MANAGE, "user.list")
    query = select(User).where(User.organisation_id == principal.organisation_id)
    if q:
        like = f"%{q.strip().lower()}%"
        query = query.where(func.lower(User.full_name).like(like) | User.email.like(like))
    if role:
        query = query.where(User.role == role)
    key, desc = parse_sort(sort, USER_SORTS, "full_name")
    return paginate(
        session,
        query,
        sort_column=USER_SORTS[key],
        id_column=User.id,
        descending=desc,
        limit=limit,
        cursor=cursor,
    )


def update_staff(
    session: Session,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    reset_mfa: bool = False,
) -> User:
    """Change a staff member's role, (de)activate them, or reset their MFA (lost device)."""
    require(session, principal, Perm.USER_MANAGE, "user.update")
    user = _managed_user(session, principal, user_id)
    changes: dict[str, object] = {}
    if user.id == principal.user_id and (is_active is False or (role and role != Role.ADMIN)):
        raise ValidationFailed("You cannot deactivate yourself or give up your own admin role.")
    if role is not None and role.value != user.role:
        _check_staff_role(session, user.organisation_id, role)
        changes["role"] = [user.role, role.value]
        user.role = role.value
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        changes["is_active"] = is_active
        if not is_active:
            _revoke_all(session, user.id)
    if reset_mfa:
        _clear_mfa(session, user)
        _revoke_all(session, user.id)
        changes["mfa"] = "reset"
    audit.record(session, principal, "user.update", resource_type="User", resource_id=user.id, detail=changes)
    return user


def list_organisations(session: Session, kind: str = "") -> list[Organisation]:
    """All organisations (public directory information), by name."""
    query = select(Organisation).order_by(Organisation.name)
    if kind:
        query = query.where(Organisation.kind == kind)
    return list(session.execute(query).scalars())


def get_organisation(session: Session, principal: Principal, organisation_id: uuid.UUID) -> Organisation:
    """One organisation (public directory information, for anyone who may read the directory)."""
    require(session, principal, Perm.DIRECTORY_READ, "organisation.read")
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("No such organisation.")
    return organisation


def search_organisations(
    session: Session,
    principal: Principal,
    *,
    name: str = "",
    kinds: tuple[str, ...] = (),
    city: str = "",
    limit: int = 20,
    cursor: str | None = None,
    count_total: bool = False,
) -> Page[Organisation]:
    """Organisations by name (every word starts a word of the name, case-insensitive), kind (any of
    ``kinds``) and city (prefix, case-insensitive), ordered by name."""
    require(session, principal, Perm.DIRECTORY_READ, "organisation.search")
    query = select(Organisation)
    lowered = func.lower(Organisation.name)
    for word in name.lower().split():
        term = _like_escape(word)
        query = query.where(
            or_(lowered.like(f"{term}%", escape="\\"), lowered.like(f"% {term}%", escape="\\"))
        )
    if kinds:
        query = query.where(Organisation.kind.in_(kinds))
    if city:
        query = query.where(func.lower(Organisation.city).like(f"{_like_escape(city.lower())}%", escape="\\"))
    return paginate(
        session,
        query,
        sort_column=Organisation.name,
        id_column=Organisation.id,
        descending=False,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def utc_iso(value: datetime | None) -> str | None:
    """ISO 8601 for an optional timestamp."""
    return value.isoformat() if value else None
