"""App tokens for FHIR clients: a signed-in user issues a bearer token limited to SMART-style scopes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.orm import Session

from caresync.core.auth import Principal
from caresync.core.errors import ValidationFailed
from caresync.fhir import scopes
from caresync.fhir.registry import resource_types
from caresync.identity import service as accounts
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/auth/app-tokens", tags=["auth"])
MAX_HOURS = 24 * 90


class AppTokenIn(BaseModel):
    """What the app may do (SMART scopes), a name to recognise it by, and how long the token lives."""

    model_config = ConfigDict(extra="forbid")

    scope: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=120)] = ""
    hours: Annotated[int, Field(ge=1, le=MAX_HOURS)] = 24 * 30


class AppTokenOut(BaseModel):
    """The app token (shown once), its scopes and expiry."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    scope: str
    expires_at: datetime
    patient: str | None = None  # the patient context of patient/ scopes (SMART's launch context)


# Common choices offered on the account page (the API takes any valid scope string).
PATIENT_PRESETS = (
    ("patient/*.read", "Read my whole record"),
    (
        "patient/Appointment.crus patient/Slot.rs patient/Schedule.rs patient/Practitioner.rs "
        "patient/PractitionerRole.rs patient/Location.rs",
        "See and book my appointments",
    ),
    ("patient/MedicationRequest.rs patient/MedicationDispense.rs", "Read my medications"),
)
STAFF_PRESETS = (("user/*.read", "Read what I may see"), ("user/*.*", "Read and write what I may"))
HOUR_CHOICES = {"24": "1 day", "720": "30 days", "2160": "90 days"}


def presets_for(principal: Principal) -> tuple[tuple[str, str], ...]:
    """The scope choices the account page offers this user."""
    return PATIENT_PRESETS if principal.patient_id else STAFF_PRESETS


def issue_app_token(
    session: Session, principal: Principal, *, scope: str, label: str, hours: int, user_agent: str = ""
) -> tuple[accounts.SignIn, str]:
    """Check ``scope`` and issue an app token for it; returns the sign-in and the normalised scope.
    ``patient/`` scopes are for patients (their own record): staff use ``user/`` scopes."""
    if not 1 <= hours <= MAX_HOURS:
        raise ValidationFailed(f"An app token lives between 1 and {MAX_HOURS} hours.")
    parsed = scopes.parse(scope, known_types=frozenset(resource_types()))
    assert parsed.grants is not None
    if any(g.context == "patient" for g in parsed.grants) and principal.patient_id is None:
        raise ValidationFailed(
            "patient/ scopes give an app one patient's record: only patients can grant them."
        )
    sign_in = accounts.open_app_token(
        session, principal, scope=parsed.text, label=label or "FHIR app", hours=hours, user_agent=user_agent
    )
    return sign_in, parsed.text


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AppTokenOut)
def issue(body: AppTokenIn, principal: CurrentUser, request: Request, db: Db) -> AppTokenOut:
    """Issue a bearer token for a FHIR app, e.g. ``scope: "patient/*.read"`` for a patient's health app.
    ``patient/`` scopes are for patients (their own record); staff use ``user/`` scopes. Revoke it like
    any session (``DELETE /api/v1/auth/sessions/{id}``)."""
    sign_in, scope = issue_app_token(
        db,
        principal,
        scope=body.scope,
        label=body.label,
        hours=body.hours,
        user_agent=request.headers.get("user-agent", ""),
    )
    db.commit()
    return AppTokenOut(
        access_token=sign_in.token,
        scope=scope,
        expires_at=sign_in.auth_session.expires_at,
        patient=str(principal.patient_id) if principal.patient_id else None,
    )
