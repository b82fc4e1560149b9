"""Who is acting: the ``Principal`` every service receives.

The web layer builds it from a session cookie or a bearer token (see ``identity.service``); jobs and the
CLI build it for a system actor. Services never look at HTTP objects.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

SYSTEM_ROLE = "system"


@dataclass(frozen=True)
class Principal:
    """An authenticated actor, plus where the request came from (for the audit log)."""

    user_id: uuid.UUID | None
    role: str
    full_name: str
    organisation_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    client_ip: str = ""
    patient_id: uuid.UUID | None = field(default=None)

    @property
    def is_system(self) -> bool:
        """True for jobs and command-line actions that no person performed."""
        return self.role == SYSTEM_ROLE


def system_principal(name: str = "CareSync system") -> Principal:
    """The actor used by jobs, migrations and the CLI."""
    return Principal(user_id=None, role=SYSTEM_ROLE, full_name=name)


def anonymous(client_ip: str = "") -> Principal:
    """An unauthenticated caller (for auditing failed logins and registrations)."""
    return Principal(user_id=None, role="anonymous", full_name="anonymous", client_ip=client_ip)
