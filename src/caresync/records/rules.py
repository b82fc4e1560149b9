"""Record categories, consent scopes, accepted file types, vital-sign ranges and care-team vocabularies
(no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

CATEGORIES: dict[str, str] = {
    "document": "Document",
    "lab": "Lab result",
    "diagnosis": "Diagnosis",
    "allergy": "Allergy",
    "medication": "Medication",
    "immunisation": "Immunisation",
    "procedure": "Procedure",
    "vitals": "Vital signs",
    "discharge": "Discharge summary",
    "mental-health": "Mental health",
    "note": "Clinical note",
}
# Categories a care relationship never opens by itself: only the patient's explicit consent (or
# break-glass) does, as with 42 CFR Part 2 style segmentation of mental-health records.
SENSITIVE_CATEGORIES = frozenset({"mental-health"})

# What an organisation lets an active care relationship read without an explicit consent.
CARE_TEAM_POLICIES: dict[str, str] = {
    "standard": "Care team reads everything except sensitive categories",
    "full": "Care team reads every category",
    "consent-only": "Only the patient's explicit consent opens records",
}
DEFAULT_CARE_TEAM_POLICY = "standard"

FILE_TYPES = ("application/pdf", "image/png", "image/jpeg", "text/plain")
MANIFEST_VERSION = 1

# Vital signs recorded as numbers (for the consultation summary): code -> (label, unit, low, high), the
# range being what a human body can plausibly show, so typos are caught, not what is normal.
VITAL_SIGNS: dict[str, tuple[str, str, float, float]] = {
    "systolic": ("Systolic blood pressure", "mmHg", 50, 260),
    "diastolic": ("Diastolic blood pressure", "mmHg", 30, 160),
    "heart_rate": ("Heart rate", "/min", 20, 250),
    "temperature": ("Temperature", "°C", 30, 44),
    "spo2": ("Oxygen saturation", "%", 50, 100),
    "respiratory_rate": ("Respiratory rate", "/min", 4, 60),
    "weight": ("Weight", "kg", 0.3, 400),
}

NOTE_CATEGORIES = ("note", "mental-health")
TASK_STATUSES = ("open", "done", "cancelled")
THREAD_KINDS: dict[str, str] = {
    "patient": "Patient and care team",
    "team": "Care team only",
}


def care_team_categories(policy: str) -> frozenset[str]:
    """The categories an active care relationship reads under an organisation's ``policy``."""
    if policy == "full":
        return frozenset(CATEGORIES)
    if policy == "consent-only":
        return frozenset()
    return frozenset(CATEGORIES) - SENSITIVE_CATEGORIES


def grant_status(revoked_at: datetime | None, expires_at: datetime | None, now: datetime) -> str:
    """``revoked``, ``expired`` or ``active``, for anything a patient grants until a time (consents,
    share links)."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"


def parse_categories(values: Iterable[str]) -> frozenset[str]:
    """Known categories among ``values``; raises ``ValueError`` naming the first unknown one."""
    chosen = frozenset(v.strip() for v in values if v.strip())
    unknown = sorted(chosen - CATEGORIES.keys())
    if unknown:
        raise ValueError(f"Unknown category {unknown[0]!r}.")
    return chosen


def check_vital_signs(values: dict[str, float]) -> dict[str, float]:
    """The recorded vital signs, rejecting unknown codes and implausible values (``ValueError``)."""
    clean: dict[str, float] = {}
    for code, value in values.items():
        if code not in VITAL_SIGNS:
            raise ValueError(f"Unknown vital sign {code!r}.")
        label, unit, low, high = VITAL_SIGNS[code]
        if not low <= value <= high:
            raise ValueError(f"{label} of {value:g} {unit} is outside {low:g} to {high:g} {unit}.")
        clean[code] = value
    if "systolic" in clean and "diastolic" in clean and clean["diastolic"] >= clean["systolic"]:
        raise ValueError("Diastolic pressure must be lower than systolic.")
    return clean
