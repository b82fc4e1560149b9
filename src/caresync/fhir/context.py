"""Who is calling the FHIR API and with which scopes: the ``FhirContext`` every mapping receives."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.fhir.outcome import FhirError
from caresync.fhir.scopes import Scopes

JSON = dict[str, Any]


@dataclass
class FhirContext:
    """One request's database session, caller, token scopes and the server's absolute base URL."""

    session: Session
    principal: Principal
    scopes: Scopes
    base_url: str  # e.g. https://caresync.example/fhir/R4 (no trailing slash)

    def require(self, resource_type: str, interaction: str) -> None:
        """Refuse (403 ``forbidden``, audited) when the token's scopes do not cover the interaction.

        ``patient/`` scopes are issued to patients only, whom the domain services already limit to their
        own record: so a patient-scoped app sees exactly that patient's compartment."""
        if self.scopes.allows(resource_type, interaction):
            if self.scopes.patient_only(resource_type, interaction) and self.principal.patient_id is None:
                raise FhirError(403, "patient/ scopes need a patient's own account.", "forbidden")
            return
        audit.record_and_commit(
            self.session,
            self.principal,
            "fhir.scope",
            outcome="denied",
            resource_type=resource_type,
            detail={"interaction": interaction, "scope": self.scopes.text},
        )
        raise FhirError(
            403,
            f"This token's scopes ({self.scopes.text}) do not allow this on {resource_type}.",
            "forbidden",
        )

    def full_url(self, resource_type: str, resource_id: str | uuid.UUID) -> str:
        """The absolute URL of a resource (a Bundle entry's ``fullUrl``)."""
        return f"{self.base_url}/{resource_type}/{resource_id}"


def reference(resource_type: str, resource_id: str | uuid.UUID, display: str = "") -> JSON:
    """A relative literal reference, e.g. ``{"reference": "Patient/…", "display": "Ana Silva"}``."""
    ref: JSON = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        ref["display"] = display
    return ref
