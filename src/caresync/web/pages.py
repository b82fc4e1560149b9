"""HTML pages: sign-in, MFA, registration, per-role dashboards, patient profiles, staff admin, the audit
viewer, notifications and account security. Thin: they parse forms and call the same services as the API.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.bloodbank import dashboards as bloodbank_dashboards
from caresync.config import get_settings
from caresync.core import jobs, notify
from caresync.core.audit import AuditEntry, verify_audit_job
from caresync.core.auth import Principal, anonymous
from caresync.core.errors import DomainError, Forbidden, NotFound
from caresync.core.rbac import Perm, has_perm
from caresync.db import utcnow
from caresync.fhir import tokens as app_tokens
from caresync.identity import patients, service
from caresync.identity.models import CareRelationship, User
from caresync.identity.rules import Role
from caresync.identity.schemas import PatientCreate, PatientFields, RegisterIn, StaffCreateIn
from caresync.scheduling import booking, directory
from caresync.web.deps import (
    SESSION_COOKIE,
    Db,
    FormValues,
    client_ip,
)
from caresync.web.pagekit import (
    PageUser,
    PartialPageUser,
    clean_form,
    domain_field_errors,
    form_field_errors,
    is_htmx,
    redirect,
    render_page,
)
from caresync.web.templating import ROLE_LABELS

router = APIRouter(include_in_schema=False)
HTML = HTMLResponse


def _set_session_cookie(response: Response, token: str) -> None:
    settings = get_settings()
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_hours * 3600,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="lax",
        path="/",
    )


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


# --- sign-in ----------------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, db: Db, next: str = "/") -> HTMLResponse:
    """The sign-in page."""
    return render_page(
        request, db, None, "auth/login.html", {"next": _safe_next(next), "errors": {}, "values": {}}
    )


@router.post("/login")
def login_submit(request: Request, db: Db, values: FormValues) -> Response:
    """Check the password; continue to MFA or enrolment when needed."""
    target = _safe_next(values.get("next"))
    try:
        result = service.login(
            db,
            email=values.get("email", ""),
            password=values.get("password", ""),
            kind="web",
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    except DomainError as exc:
        context = {
            "next": target,
            "errors": {"form": exc.detail},
            "values": {"email": values.get("email", "")},
        }
        return render_page(request, db, None, "auth/login.html", context, status_code=exc.status)
    db.commit()
    stage = result.auth_session.stage
    url = {"mfa": f"/login/mfa?next={quote(target)}", "enrol": "/account/mfa"}.get(stage, target)
    response = redirect(url)
    _set_session_cookie(response, result.token)
    return response


@router.get("/login/mfa")
def mfa_form(request: Request, db: Db, principal: PartialPageUser, next: str = "/") -> Response:
    """Ask for the authenticator code."""
    return render_page(request, db, principal, "auth/mfa.html", {"next": _safe_next(next), "errors": {}})


@router.post("/login/mfa")
def mfa_submit(request: Request, db: Db, principal: PartialPageUser, values: FormValues) -> Response:
    """Finish sign-in with a TOTP or recovery code."""
    try:
        service.complete_mfa(db, principal, values.get("code", ""))
    except DomainError as exc:
        context = {"next": _safe_next(values.get("next")), "errors": {"code": exc.detail}}
        return render_page(request, db, principal, "auth/mfa.html", context, status_code=exc.status)
    db.commit()
    return redirect(_safe_next(values.get("next")))


@router.post("/logout")
def logout(request: Request, db: Db, principal: PartialPageUser) -> Response:
    """Sign out (revokes the session)."""
    service.logout(db, principal)
    db.commit()
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/register")
def register_form(request: Request, db: Db) -> HTMLResponse:
    """Self-registration for patients and donors."""
    return render_page(request, db, None, "auth/register.html", {"errors": {}, "values": {"role": "patient"}})


@router.post("/register")
def register_submit(request: Request, db: Db, values: FormValues) -> Response:
    """Create the account and sign in."""
    try:
        body = RegisterIn.model_validate(clean_form(values, RegisterIn))
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
        service.register(
            db,
            anonymous(client_ip(request)),
            role=Role(body.role),
            email=str(body.email),
            password=body.password,
            full_name=body.full_name,
            patient=profile,
        )
        db.commit()
        result = service.login(
            db,
            email=str(body.email),
            password=body.password,
            kind="web",
            client_ip=client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
        db.commit()
    except ValidationError as exc:
        db.rollback()
        return render_page(
            request, db, None, "auth/register.html", {"errors": form_field_errors(exc), "values": values}, 422
        )
    except DomainError as exc:
        db.rollback()
        return render_page(
            request,
            db,
            None,
            "auth/register.html",
            {"errors": domain_field_errors(exc), "values": values},
            exc.status,
        )
    response = redirect("/")
    _set_session_cookie(response, result.token)
    return response


@router.get("/password/forgot")
def forgot_form(request: Request, db: Db) -> HTMLResponse:
    """Ask for a reset link."""
    return render_page(request, db, None, "auth/forgot.html", {"sent": False})


@router.post("/password/forgot")
def forgot_submit(request: Request, db: Db, values: FormValues) -> HTMLResponse:
    """Send the link if the account exists; the page says the same either way."""
    service.request_password_reset(db, values.get("email", ""), client_ip(request))
    db.commit()
    return render_page(request, db, None, "auth/forgot.html", {"sent": True})


@router.get("/password/reset")
def reset_form(request: Request, db: Db, token: str = "") -> HTMLResponse:
    """Choose a new password."""
    return render_page(request, db, None, "auth/reset.html", {"token": token, "errors": {}, "done": False})


@router.post("/password/reset")
def reset_submit(request: Request, db: Db, values: FormValues) -> HTMLResponse:
    """Set the new password."""
    token = values.get("token", "")
    try:
        service.reset_password(db, token, values.get("new_password", ""), client_ip(request))
    except DomainError as exc:
        db.rollback()
        return render_page(
            request,
            db,
            None,
            "auth/reset.html",
            {"token": token, "errors": domain_field_errors(exc), "done": False},
            exc.status,
        )
    db.commit()
    return render_page(request, db, None, "auth/reset.html", {"token": "", "errors": {}, "done": True})


# --- dashboards -------------------------------------------------------------------------------------------


def _todays_appointments(db: Session, principal: Principal) -> list[Any]:
    """A doctor's own appointments of the next 24 hours (for the dashboard)."""
    profile = directory.profile_for_user(db, principal.user_id)
    if profile is None:
        return []
    now = utcnow()
    return booking.list_appointments(
        db,
        principal,
        practitioner_id=profile.id,
        status="booked,arrived,checked-in",
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=24),
        limit=12,
    ).items


@router.get("/")
def dashboard(request: Request, db: Db, principal: PageUser) -> Response:
    """Each role lands on its own dashboard."""
    context: dict[str, Any] = {"role_label": ROLE_LABELS.get(principal.role, principal.role)}
    if principal.role == "patient" and principal.patient_id:
        context["patient"] = patients.get_patient(db, principal, principal.patient_id)
        context["team"] = patients.care_team(db, principal, principal.patient_id)
        context["access"] = patients.access_history(db, principal, principal.patient_id, limit=5).items
        context["upcoming"] = booking.list_appointments(
            db, principal, status="booked,proposed", start=utcnow(), limit=3
        ).items
    elif principal.role in ("doctor", "nurse"):
        page = patients.list_patients(db, principal, sort="-updated_at", limit=8)
        context["recent"] = page.items
        context["today"] = _todays_appointments(db, principal)
        context["care_count"] = db.execute(
            select(func.count()).where(
                CareRelationship.practitioner_id == principal.user_id, CareRelationship.ended_at.is_(None)
            )
        ).scalar_one()
    elif principal.role == "admin":
        counts = db.execute(
            select(User.role, func.count())
            .where(User.organisation_id == principal.organisation_id, User.is_active.is_(True))
            .group_by(User.role)
        ).all()
        context["staff_counts"] = dict(counts)
        context["without_mfa"] = (
            db.execute(
                select(User)
                .where(
                    User.organisation_id == principal.organisation_id,
                    User.is_active.is_(True),
                    User.mfa_enabled.is_(False),
                )
                .order_by(User.full_name)
                .limit(10)
            )
            .scalars()
            .all()
        )
        context["recent_audit"] = patients.search_audit(db, principal, limit=8).items
        context["flagged"] = db.execute(
            select(func.count()).where(
                AuditEntry.organisation_id == principal.organisation_id, AuditEntry.flagged.is_(True)
            )
        ).scalar_one()
    elif principal.role == "bloodbank_staff":
        context |= bloodbank_dashboards.staff_dashboard(db, principal)
    elif principal.role == "donor":
        context |= bloodbank_dashboards.donor_dashboard(db, principal)
    db.commit()
    return render_page(request, db, principal, f"dashboards/{principal.role}.html", context)


# --- patients ---------------------------------------------------------------------------------------------


@router.get("/patients")
def patient_list(
    request: Request,
    db: Db,
    principal: PageUser,
    q: str = "",
    sort: str = "family_name",
    cursor: str | None = None,
) -> Response:
    """Search the care list (HTMX swaps just the table while typing)."""
    if principal.role == "patient":
        return redirect("/me/profile")
    page = patients.list_patients(db, principal, q=q[:100], sort=sort, limit=20, cursor=cursor)
    db.commit()
    next_url = (
        f"/patients?{urlencode({'q': q, 'sort': sort, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else ""
    )
    context = {
        "page": page,
        "q": q,
        "sort": sort,
        "next_url": next_url,
        "cursor": cursor,
        "can_break_glass": has_perm(principal, Perm.PATIENT_BREAK_GLASS),
        "errors": {},
    }
    template = "patients/_table.html" if is_htmx(request) else "patients/list.html"
    return render_page(request, db, principal, template, context)


@router.post("/patients/break-glass")
def break_glass(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Emergency access by Health ID and reason."""
    try:
        patient = patients.break_glass(db, principal, values.get("health_id", ""), values.get("reason", ""))
    except DomainError as exc:
        db.rollback()
        page = patients.list_patients(db, principal, limit=20)
        context = {
            "page": page,
            "q": "",
            "sort": "family_name",
            "next_url": "",
            "cursor": None,
            "can_break_glass": True,
            "errors": domain_field_errors(exc),
            "glass": values,
        }
        return render_page(request, db, principal, "patients/list.html", context, exc.status)
    db.commit()
    return redirect(f"/patients/{patient.id}")


@router.get("/patients/new")
def patient_new_form(request: Request, db: Db, principal: PageUser) -> Response:
    """Register a patient (clinicians)."""
    if not has_perm(principal, Perm.PATIENT_CREATE):
        raise Forbidden("Only doctors and nurses register patients.")
    return render_page(
        request, db, principal, "patients/edit.html", {"patient": None, "errors": {}, "values": {}}
    )


@router.post("/patients/new")
def patient_new_submit(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Create the patient and open their profile."""
    try:
        body = PatientCreate.model_validate(clean_form(values, PatientCreate))
        patient = patients.create_patient(db, principal, body.changes())
    except (ValidationError, DomainError) as exc:
        db.rollback()
        errors = form_field_errors(exc) if isinstance(exc, ValidationError) else domain_field_errors(exc)
        context = {"patient": None, "errors": errors, "values": values}
        return render_page(request, db, principal, "patients/edit.html", context, 422)
    db.commit()
    return redirect(f"/patients/{patient.id}?saved=1")


@router.get("/me/profile")
def my_profile(request: Request, db: Db, principal: PageUser) -> Response:
    """A patient's own profile."""
    if principal.patient_id is None:
        raise NotFound("You have no patient profile.")
    return redirect(f"/patients/{principal.patient_id}")


@router.get("/patients/{patient_id}")
def patient_view(
    request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID, saved: int = 0
) -> Response:
    """A patient's profile with their care team."""
    patient = patients.get_patient(db, principal, patient_id)
    team = patients.care_team(db, principal, patient_id)
    db.commit()
    return render_page(
        request, db, principal, "patients/view.html", {"patient": patient, "team": team, "saved": saved}
    )


@router.get("/patients/{patient_id}/edit")
def patient_edit_form(request: Request, db: Db, principal: PageUser, patient_id: uuid.UUID) -> Response:
    """Edit a profile."""
    patient = patients.get_patient(db, principal, patient_id)
    db.commit()
    return render_page(
        request, db, principal, "patients/edit.html", {"patient": patient, "errors": {}, "values": {}}
    )


@router.post("/patients/{patient_id}/edit")
def patient_edit_submit(
    request: Request, db: Db, principal: PageUser, values: FormValues, patient_id: uuid.UUID
) -> Response:
    """Save the profile."""
    try:
        body = PatientFields.model_validate(clean_form(values, PatientFields))
        changes = {
            k: v
            for k, v in body.changes().items()
            if not (k == "blood_group" and principal.role == "patient")
        }
        patients.update_patient(db, principal, patient_id, changes)
    except (ValidationError, DomainError) as exc:
        db.rollback()
        if isinstance(exc, DomainError) and exc.status == 404:
            raise
        errors = form_field_errors(exc) if isinstance(exc, ValidationError) else domain_field_errors(exc)
        patient = patients.get_patient(db, principal, patient_id)
        db.commit()
        context = {"patient": patient, "errors": errors, "values": values}
        return render_page(request, db, principal, "patients/edit.html", context, 422)
    db.commit()
    return redirect(f"/patients/{patient_id}?saved=1")


@router.get("/me/access")
def my_access(request: Request, db: Db, principal: PageUser, cursor: str | None = None) -> Response:
    """Who accessed my data."""
    if principal.patient_id is None:
        raise NotFound("You have no patient profile.")
    page = patients.access_history(db, principal, principal.patient_id, limit=25, cursor=cursor)
    db.commit()
    next_url = f"/me/access?cursor={page.next_cursor}" if page.next_cursor else ""
    return render_page(request, db, principal, "patients/access.html", {"page": page, "next_url": next_url})


# --- administration ---------------------------------------------------------------------------------------


@router.get("/admin/users")
def users(
    request: Request,
    db: Db,
    principal: PageUser,
    q: str = "",
    role: str = "",
    sort: str = "full_name",
    cursor: str | None = None,
) -> Response:
    """The organisation's staff."""
    page = service.list_staff(db, principal, q=q[:100], role=role[:20], sort=sort, limit=25, cursor=cursor)
    db.commit()
    query = {"q": q, "role": role, "sort": sort}
    next_url = f"/admin/users?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else ""
    context = {
        "page": page,
        "next_url": next_url,
        "roles": STAFF_ROLE_CHOICES,
        **query,
        "created": request.query_params.get("created"),
    }
    template = "admin/_users_table.html" if is_htmx(request) else "admin/users.html"
    return render_page(request, db, principal, template, context)


STAFF_ROLE_CHOICES = ("admin", "doctor", "nurse", "bloodbank_staff", "pharmacist")


@router.get("/admin/users/new")
def user_new_form(request: Request, db: Db, principal: PageUser) -> Response:
    """Create a staff account."""
    if not has_perm(principal, Perm.USER_MANAGE):
        raise Forbidden("Only administrators manage staff.")
    return render_page(
        request,
        db,
        principal,
        "admin/user_new.html",
        {"errors": {}, "values": {}, "roles": STAFF_ROLE_CHOICES},
    )


@router.post("/admin/users/new")
def user_new_submit(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Save the new account; the person enrols MFA at first sign-in."""
    try:
        body = StaffCreateIn.model_validate(clean_form(values, StaffCreateIn))
        user = service.create_staff(
            db,
            principal,
            email=str(body.email),
            password=body.password,
            full_name=body.full_name,
            role=Role(body.role),
        )
    except (ValidationError, DomainError) as exc:
        db.rollback()
        errors = form_field_errors(exc) if isinstance(exc, ValidationError) else domain_field_errors(exc)
        context = {"errors": errors, "values": values, "roles": STAFF_ROLE_CHOICES}
        return render_page(request, db, principal, "admin/user_new.html", context, 422)
    db.commit()
    return redirect(f"/admin/users?created={quote(user.email)}")


@router.post("/admin/users/{user_id}")
def user_update(
    request: Request, db: Db, principal: PageUser, values: FormValues, user_id: uuid.UUID
) -> Response:
    """Change a role, (de)activate, or reset MFA (the page asks for confirmation first)."""
    action = values.get("action", "")
    role = values.get("role")
    kwargs: dict[str, Any] = {
        "role": Role(role) if action == "role" and role in STAFF_ROLE_CHOICES else None,
        "is_active": {"deactivate": False, "activate": True}.get(action),
        "reset_mfa": action == "reset_mfa",
    }
    service.update_staff(db, principal, user_id, **kwargs)
    db.commit()
    return redirect("/admin/users")


@router.get("/admin/audit")
def audit_viewer(
    request: Request,
    db: Db,
    principal: PageUser,
    action: str = "",
    outcome: str = "",
    actor: str = "",
    health_id: str = "",
    flagged: str = "",
    cursor: str | None = None,
) -> Response:
    """Search the audit log."""
    filters = {
        "action": action[:60],
        "outcome": outcome[:10],
        "actor": actor[:100],
        "health_id": health_id[:20],
        "flagged": flagged,
    }
    errors: dict[str, str] = {}
    try:
        page = patients.search_audit(
            db,
            principal,
            action=filters["action"],
            outcome=filters["outcome"],
            actor=filters["actor"],
            health_id=filters["health_id"],
            flagged=True if flagged == "1" else None,
            limit=30,
            cursor=cursor,
        )
    except DomainError as exc:
        if exc.status != 422:
            raise
        db.rollback()
        errors = domain_field_errors(exc)
        page = patients.search_audit(db, principal, limit=30)
    db.commit()
    next_url = (
        f"/admin/audit?{urlencode({**filters, 'cursor': page.next_cursor})}" if page.next_cursor else ""
    )
    return render_page(
        request,
        db,
        principal,
        "admin/audit.html",
        {"page": page, "next_url": next_url, "errors": errors, **filters},
    )


@router.post("/admin/audit/verify")
def audit_verify(request: Request, db: Db, principal: PageUser) -> Response:
    """Start the chain check as a job and show its progress."""
    if not has_perm(principal, Perm.AUDIT_READ):
        raise Forbidden("Only administrators verify the audit log.")
    job = jobs.submit(db, principal, verify_audit_job)
    db.commit()
    return redirect(f"/jobs/{job.id}")


@router.get("/jobs/{job_id}")
def job_status(request: Request, db: Db, principal: PageUser, job_id: uuid.UUID) -> Response:
    """A job's progress; the partial refreshes itself until the job ends."""
    job = jobs.get_job(db, principal, job_id)
    view = jobs.job_view(job)
    template = "jobs/_status.html" if is_htmx(request) else "jobs/status.html"
    return render_page(request, db, principal, template, {"job": view})


# --- notifications and account ----------------------------------------------------------------------------


@router.get("/notifications")
def notifications(request: Request, db: Db, principal: PageUser) -> Response:
    """The user's notifications, newest first."""
    rows = (
        db.execute(
            select(notify.Notification)
            .where(notify.Notification.user_id == principal.user_id)
            .order_by(notify.Notification.created_at.desc())
            .limit(100)
        )
        .scalars()
        .all()
    )
    return render_page(request, db, principal, "notifications.html", {"items": rows})


@router.post("/notifications/read")
def notifications_read(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Mark one (``id``) or all notifications read."""
    assert principal.user_id
    target = values.get("id")
    notify.mark_read(db, principal.user_id, uuid.UUID(target) if target else None)
    db.commit()
    return redirect("/notifications")


def security_context(db: Session, principal: Principal, **overrides: Any) -> dict[str, Any]:
    """What the account security page shows: MFA state, sessions and app tokens, password form."""
    context: dict[str, Any] = {
        "me": service.get_me(db, principal),
        "sessions": service.list_sessions(db, principal),
        "errors": {},
        "codes_left": service.remaining_recovery_codes(db, principal),
        "message": "",
        "app_errors": {},
        "app_values": {},
        "new_app_token": None,
        "app_presets": app_tokens.presets_for(principal),
        "app_hours": app_tokens.HOUR_CHOICES,
    }
    context.update(overrides)
    return context


@router.get("/account/security")
def security(request: Request, db: Db, principal: PageUser) -> Response:
    """MFA, recovery codes, sessions, app tokens and password."""
    context = security_context(db, principal, message=request.query_params.get("message", ""))
    return render_page(request, db, principal, "account/security.html", context)


@router.post("/account/password")
def password_change(request: Request, db: Db, principal: PageUser, values: FormValues) -> Response:
    """Change the password."""
    try:
        service.change_password(
            db, principal, values.get("current_password", ""), values.get("new_password", "")
        )
    except DomainError as exc:
        db.rollback()
        context = security_context(db, principal, errors=domain_field_errors(exc))
        return render_page(request, db, principal, "account/security.html", context, exc.status)
    db.commit()
    return redirect("/account/security?message=Password+changed")


@router.post("/account/sessions/{session_id}/revoke")
def session_revoke(request: Request, db: Db, principal: PageUser, session_id: uuid.UUID) -> Response:
    """Sign out another device."""
    service.revoke_session(db, principal, session_id)
    db.commit()
    return redirect("/account/security?message=Session+signed+out")


@router.get("/account/mfa")
def mfa_enrol_form(request: Request, db: Db, principal: PartialPageUser) -> Response:
    """Start MFA enrolment: show the QR code."""
    me = service.get_me(db, principal)
    if me.mfa_enabled:
        return redirect("/account/security")
    enrolment = service.start_mfa_enrolment(db, principal)
    db.commit()
    stage = request.state.resolved.stage
    return render_page(
        request,
        db,
        principal,
        "account/mfa.html",
        {"enrolment": enrolment, "errors": {}, "codes": None, "forced": stage == "enrol"},
    )


@router.post("/account/mfa")
def mfa_enrol_submit(request: Request, db: Db, principal: PartialPageUser, values: FormValues) -> Response:
    """Confirm enrolment with a code and show the recovery codes once."""
    try:
        codes = service.confirm_mfa_enrolment(db, principal, values.get("code", ""))
    except DomainError as exc:
        db.rollback()
        enrolment = service.start_mfa_enrolment(db, principal)
        db.commit()
        context = {"enrolment": enrolment, "errors": domain_field_errors(exc), "codes": None, "forced": False}
        return render_page(request, db, principal, "account/mfa.html", context, exc.status)
    db.commit()
    return render_page(
        request,
        db,
        principal,
        "account/mfa.html",
        {"enrolment": None, "errors": {}, "codes": codes, "forced": False},
    )


@router.post("/account/recovery-codes")
def recovery_codes(request: Request, db: Db, principal: PageUser) -> Response:
    """Replace the recovery codes and show the new ones once."""
    codes = service.regenerate_recovery_codes(db, principal)
    db.commit()
    return render_page(
        request,
        db,
        principal,
        "account/mfa.html",
        {"enrolment": None, "errors": {}, "codes": codes, "forced": False},
    )
