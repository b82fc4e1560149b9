"""Tables of the analytics domain (pure, no I/O): conditions, departments, outcomes, age bands, risk levels.

Conditions carry their ICD-10 code (WHO ICD-10 2019) and the season in which they peak in the northern
hemisphere, which the synthetic generator uses and the surge detector compares against.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Condition:
    """A diagnosis CareSync counts: ICD-10 code, name, and its usual seasonal peak (month 1-12, or 0 for
    none)."""

    code: str
    name: str
    peak_month: int = 0


CONDITIONS: tuple[Condition, ...] = (
    Condition("J11", "Influenza, virus not identified", 1),
    Condition("J06.9", "Acute upper respiratory infection", 12),
    Condition("J18.9", "Pneumonia, unspecified", 1),
    Condition("J20.9", "Acute bronchitis", 2),
    Condition("U07.1", "COVID-19", 12),
    Condition("J30.1", "Allergic rhinitis due to pollen", 5),
    Condition("J45.9", "Asthma", 9),
    Condition("L50.9", "Urticaria", 6),
    Condition("A09", "Infectious gastroenteritis and colitis", 8),
    Condition("T67.0", "Heatstroke and sunstroke", 7),
    Condition("I10", "Essential (primary) hypertension"),
    Condition("E11.9", "Type 2 diabetes mellitus without complications"),
    Condition("I25.1", "Atherosclerotic heart disease"),
    Condition("I50.9", "Heart failure, unspecified"),
    Condition("I21.9", "Acute myocardial infarction"),
    Condition("I63.9", "Cerebral infarction"),
    Condition("J44.9", "Chronic obstructive pulmonary disease"),
    Condition("N39.0", "Urinary tract infection"),
    Condition("M54.5", "Low back pain"),
    Condition("S52.5", "Fracture of lower end of radius"),
    Condition("F32.9", "Depressive episode"),
    Condition("F41.1", "Generalized anxiety disorder"),
    Condition("O80", "Single spontaneous delivery"),
    Condition("K35.8", "Acute appendicitis"),
    Condition("R51", "Headache"),
)
CONDITION_BY_CODE = {c.code: c for c in CONDITIONS}


class Department(StrEnum):
    """Where the encounter happened."""

    EMERGENCY = "emergency"
    GENERAL_PRACTICE = "general-practice"
    PAEDIATRICS = "paediatrics"
    CARDIOLOGY = "cardiology"
    RESPIRATORY = "respiratory"
    OBSTETRICS = "obstetrics"
    ORTHOPAEDICS = "orthopaedics"
    PSYCHIATRY = "psychiatry"


class Outcome(StrEnum):
    """How the encounter ended. ``admitted`` and ``died`` are the adverse outcomes the risk model learns."""

    DISCHARGED = "discharged"
    FOLLOW_UP = "follow-up"
    REFERRED = "referred"
    ADMITTED = "admitted"
    DIED = "died"


ADVERSE_OUTCOMES = frozenset({Outcome.ADMITTED, Outcome.DIED})

# Age bands of the issue: 0-19, 20-39, 40-59, 60-79, 80+ (lower bound, label).
AGE_BANDS: tuple[tuple[int, str], ...] = (
    (0, "0-19"),
    (20, "20-39"),
    (40, "40-59"),
    (60, "60-79"),
    (80, "80+"),
)


def age_band(age: int) -> str:
    """The age band of an age in whole years."""
    if age < 0:
        raise ValueError("age cannot be negative")
    label = AGE_BANDS[0][1]
    for lower, name in AGE_BANDS:
        if age >= lower:
            label = name
    return label


class RiskLevel(StrEnum):
    """The four levels a patient's risk is reported in."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    CRITICAL = "critical"


class SurgeLevel(StrEnum):
    """How far a condition's forecast stands above its seasonal norm."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    CRITICAL = "critical"
