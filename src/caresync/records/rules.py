"""Record categories and accepted file types (no I/O)."""

from __future__ import annotations

CATEGORIES: dict[str, str] = {
    "document": "Document",
    "lab": "Lab result",
    "diagnosis": "Diagnosis",
    "allergy": "Allergy",
    "immunisation": "Immunisation",
    "procedure": "Procedure",
    "vitals": "Vital signs",
    "discharge": "Discharge summary",
    "mental-health": "Mental health",
    "note": "Clinical note",
}
FILE_TYPES = ("application/pdf", "image/png", "image/jpeg", "text/plain")
MANIFEST_VERSION = 1
