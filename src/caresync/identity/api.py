"""Identity and patient endpoints under ``/api/v1``: thin wrappers over the services."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from caresync.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from caresync.identity import patients, service
from caresync.identity.rules import Role
from caresync.identity.schemas import (
    AuditEntryOut,
    AuditPage,
    BreakGlassIn,
    CareTeamIn,
    LoginIn,
    MeOut,
    MfaEnrolOut,
    OrganisationOut,
    OtpIn,
    PasswordChangeIn,
    PasswordIn,
    PatientCreate,
    PatientFields,
    PatientOut,
    PatientPage,
    PractitionerOut,
    RecoveryCodesOut,
    RegisterIn,
    ResetIn,
    ResetRequestIn,
    SessionOut,
    StaffCreateIn,
    StaffUpdateIn,
    TokenOut,
    UserOut,
    UserPage,
    patient_out,
)
from caresync.web.deps import CurrentUser, Db, PartialUser, client_ip

auth = APIRouter(prefix="/api/v1/auth", tags=["auth"])
people = APIRouter(prefix="/api/v1/patients", tags=["patients"])
admin = APIRouter(prefix="/api/v1/admin", tags=["admin"])
orgs = APIRouter(prefix="/api/v1/organisations", tags=["organisations"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=500)]
Text = Annotated[str, Query(max_length=100)]


@auth.post("/register", status_code=status.HTTP_201_CREATED, response_model=MeOut)
def register(body: RegisterIn, request: Request, db: Db) -> MeOut:
    """Create a patient or donor account (patients get a profile and Health ID)."""
    from caresync.core.auth import anonymous

    profile = None
    if body.role == "patient":
        given, _, family = body.full_name.rpartition(" ")
        profile = patients.register_own_profile(
            db,
            {
                "given_name": given or body.full_name,
                "family_name": family or body.full_name,
                "birth_date": body.birth_date,
                "sex": body.sex,
                "phone": body.phone,
                "email": str(body.email),
            },
        )
    user = service.register(
        db,
        anonymous(client_ip(request)),
        role=Role(body.role),
        email=str(body.email),
        password=body.password,
        full_name=body.full_name,
        patient=profile,
    )
    db.commit()
    return MeOut(**UserOut.model_validate(user).model_dump(), patient_id=profile.id if profile else None)


@auth.post("/login", response_model=TokenOut)
def login(body: LoginIn, request: Request, db: Db) -> TokenOut:
    """Exchange credentials for a bearer token. With MFA on and no ``otp``, the token's stage is ``mfa``:
    send the code to ``/auth/mfa/challenge``. Staff without MFA get stage ``enrol``."""
    result = service.login(
        db,
        email=body.email,
        password=body.password,
        kind="api",
        client_ip=client_ip(request),
        user_agent=request.headers.get("user-agent", ""),
        otp=body.otp,
    )
    db.commit()
    row = result.auth_session
    return TokenOut(access_token=result.token, expires_at=row.expires_at, stage=row.stage)


@auth.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: PartialUser, db: Db) -> Response:
    """Revoke the token used for this request."""
    service.logout(db, principal)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.get("/me", response_model=MeOut)
def me(principal: PartialUser, request: Request, db: Db) -> MeOut:
    """Who the token belongs to and what it may do yet."""
    user = service.get_me(db, principal)
    out = MeOut(
        **UserOut.model_validate(user).model_dump(),
        patient_id=principal.patient_id,
        session_stage=request.state.resolved.stage,
    )
    db.rollback()  # a read: end the transaction (after reading the rows: a rollback expires them)
    return out


@auth.post("/mfa/challenge", response_model=MeOut)
def mfa_challenge(body: OtpIn, principal: PartialUser, request: Request, db: Db) -> MeOut:
    """Complete sign-in with a TOTP or recovery code."""
    service.complete_mfa(db, principal, body.code)
    user = service.get_me(db, principal)
    out = MeOut(**UserOut.model_validate(user).model_dump(), patient_id=principal.patient_id)
    db.commit()
    return out


@auth.post("/mfa/enrol", response_model=MfaEnrolOut)
def mfa_enrol(principal: PartialUser, db: Db) -> MfaEnrolOut:
    """Start MFA enrolment: a new secret and its QR code."""
    enrolment = service.start_mfa_enrolment(db, principal)
    db.commit()
    return MfaEnrolOut(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg)


@auth.post("/mfa/verify", response_model=RecoveryCodesOut)
def mfa_verify(body: OtpIn, principal: PartialUser, db: Db) -> RecoveryCodesOut:
    """Confirm enrolment with a first code; returns recovery codes (shown once)."""
    codes = service.confirm_mfa_enrolment(db, principal, body.code)
    db.commit()
    return RecoveryCodesOut(recovery_codes=codes)


@auth.post("/mfa/recovery-codes", response_model=RecoveryCodesOut)
def mfa_recovery_codes(principal: CurrentUser, db: Db) -> RecoveryCodesOut:
    """Replace the recovery codes."""
    codes = service.regenerate_recovery_codes(db, principal)
    db.commit()
    return RecoveryCodesOut(recovery_codes=codes)


@auth.post("/mfa/disable", status_code=status.HTTP_204_NO_CONTENT)
def mfa_disable(body: PasswordIn, principal: CurrentUser, db: Db) -> Response:
    """Turn MFA off (patients and donors only)."""
    service.disable_mfa(db, principal, body.password)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.get("/sessions", response_model=list[SessionOut])
def sessions(principal: CurrentUser, db: Db) -> list[SessionOut]:
    """The user's live sessions and tokens."""
    rows = service.list_sessions(db, principal)
    out = [
        SessionOut.model_validate(r).model_copy(update={"current": r.id == principal.session_id})
        for r in rows
    ]
    db.rollback()
    return out


@auth.delete("/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke(session_id: uuid.UUID, principal: CurrentUser, db: Db) -> Response:
    """Revoke one session or token."""
    service.revoke_session(db, principal, session_id)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.post("/password/change", status_code=status.HTTP_204_NO_CONTENT)
def password_change(body: PasswordChangeIn, principal: CurrentUser, db: Db) -> Response:
    """Change the password; other sessions are signed out."""
    service.change_password(db, principal, body.current_password, body.new_password)
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@auth.post("/password/reset-request", status_code=status.HTTP_202_ACCEPTED)
def password_reset_request(body: ResetRequestIn, request: Request, db: Db) -> dict[str, str]:
    """Email a reset link if the account exists (the answer is the same either way)."""
    service.request_password_reset(db, body.email, client_ip(request))
    db.commit()
    return {"detail": "If an account exists for this email, a reset link is on its way."}


@auth.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT)
def password_reset(body: ResetIn, request: Request, db: Db) -> Response:
    """Choose a new password with the emailed token."""
    service.reset_password(db, body.token, body.new_password, client_ip(request))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- patients ---------------------------------------------------------------------------------------------


@people.get("", response_model=PatientPage)
def list_patients(
    principal: CurrentUser,
    db: Db,
    q: Text = "",
    sort: Text = "family_name",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PatientPage:
    """Patients you may see: your own profile, or your care list. Search by name or Health ID;
    sort by ``family_name``, ``birth_date``, ``created_at`` or ``updated_at`` (``-`` for descending)."""
    page = patients.list_patients(db, principal, q=q, sort=sort, limit=limit, cursor=cursor)
    db.commit()
    return PatientPage(items=[patient_out(p) for p in page.items], next_cursor=page.next_cursor)


@people.post("", status_code=status.HTTP_201_CREATED, response_model=PatientOut)
def create_patient(body: PatientCreate, principal: CurrentUser, db: Db) -> PatientOut:
    """Register a patient (doctors and nurses); they join your care list."""
    patient = patients.create_patient(db, principal, body.changes())
    db.commit()
    return patient_out(patient)


@people.post("/break-glass", response_model=PatientOut)
def break_glass(body: BreakGlassIn, principal: CurrentUser, db: Db) -> PatientOut:
    """Emergency access to a patient by Health ID, with a reason. Flagged and shown to the patient."""
    patient = patients.break_glass(db, principal, body.health_id, body.reason)
    db.commit()
    return patient_out(patient)


@people.get("/{patient_id}", response_model=PatientOut)
def get_patient(patient_id: uuid.UUID, principal: CurrentUser, db: Db) -> PatientOut:
    """A patient's profile."""
    patient = patients.get_patient(db, principal, patient_id)
    db.commit()
    return patient_out(patient)


@people.patch("/{patient_id}", response_model=PatientOut)
def update_patient(patient_id: uuid.UUID, body: PatientFields, principal: CurrentUser, db: Db) -> PatientOut:
    """Edit a profile (send only the fields to change)."""
    patient = patients.update_patient(db, principal, patient_id, body.changes())
    db.commit()
    return patient_out(patient)


@people.get("/{patient_id}/care-team", response_model=list[PractitionerOut])
def care_team(patient_id: uuid.UUID, principal: CurrentUser, db: Db) -> list[PractitionerOut]:
    """The doctors and nurses caring for the patient."""
    team = patients.care_team(db, principal, patient_id)
    db.commit()
    return [PractitionerOut.model_validate(u) for u in team]


@people.post(
    "/{patient_id}/care-team", status_code=status.HTTP_201_CREATED, response_model=list[PractitionerOut]
)
def add_care_team(
    patient_id: uuid.UUID, body: CareTeamIn, principal: CurrentUser, db: Db
) -> list[PractitionerOut]:
    """Add a colleague of your organisation to the care team."""
    patients.add_to_care_team(db, principal, patient_id, body.practitioner_id, body.reason)
    team = patients.care_team(db, principal, patient_id)
    db.commit()
    return [PractitionerOut.model_validate(u) for u in team]


@people.get("/{patient_id}/access-history", response_model=AuditPage)
def access_history(
    patient_id: uuid.UUID, principal: CurrentUser, db: Db, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> AuditPage:
    """Who read or changed this patient's data, newest first."""
    page = patients.access_history(db, principal, patient_id, limit=limit, cursor=cursor)
    db.commit()
    return AuditPage(
        items=[AuditEntryOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )


# --- organisation admin -----------------------------------------------------------------------------------


@admin.get("/users", response_model=UserPage)
def list_users(
    principal: CurrentUser,
    db: Db,
    q: Text = "",
    role: Text = "",
    sort: Text = "full_name",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> UserPage:
    """Your organisation's staff."""
    page = service.list_staff(db, principal, q=q, role=role, sort=sort, limit=limit, cursor=cursor)
    out = UserPage(items=[UserOut.model_validate(u) for u in page.items], next_cursor=page.next_cursor)
    db.rollback()
    return out


@admin.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: StaffCreateIn, principal: CurrentUser, db: Db) -> UserOut:
    """Create a staff account; they enrol MFA at first sign-in."""
    user = service.create_staff(
        db,
        principal,
        email=str(body.email),
        password=body.password,
        full_name=body.full_name,
        role=Role(body.role),
    )
    db.commit()
    return UserOut.model_validate(user)


@admin.patch("/users/{user_id}", response_model=UserOut)
def update_user(user_id: uuid.UUID, body: StaffUpdateIn, principal: CurrentUser, db: Db) -> UserOut:
    """Change role, (de)activate, or reset MFA."""
    user = service.update_staff(
        db,
        principal,
        user_id,
        role=Role(body.role) if body.role else None,
        is_active=body.is_active,
        reset_mfa=body.reset_mfa,
    )
    db.commit()
    return UserOut.model_validate(user)


@admin.get("/audit", response_model=AuditPage)
def search_audit(
    principal: CurrentUser,
    db: Db,
    action: Text = "",
    outcome: Text = "",
    actor: Text = "",
    health_id: Text = "",
    flagged: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> AuditPage:
    """Search your organisation's audit log, newest first."""
    page = patients.search_audit(
        db,
        principal,
        action=action,
        outcome=outcome,
        actor=actor,
        health_id=health_id,
        flagged=flagged,
        limit=limit,
        cursor=cursor,
    )
    db.commit()
    return AuditPage(
        items=[AuditEntryOut.model_validate(e) for e in page.items], next_cursor=page.next_cursor
    )


@orgs.get("", response_model=list[OrganisationOut])
def list_organisations(_principal: CurrentUser, db: Db, kind: Text = "") -> list[OrganisationOut]:
    """Every organisation on the platform (public directory information)."""
    out = [OrganisationOut.model_validate(o) for o in service.list_organisations(db, kind)]
    db.rollback()
    return out
