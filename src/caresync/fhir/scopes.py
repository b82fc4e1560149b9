"""SMART-on-FHIR style scopes: what an app token may do on the FHIR API (pure rules, no I/O).

A scope is ``<context>/<resource type or *>.<permissions>``:

- context ``patient``: only the data of the token holder's own patient record (the patient's compartment);
  ``user``: whatever the user may see or do in CareSync anyway. Scopes never add permissions: the role
  rules, consent and care relationships still decide every request.
- permissions in SMART v1 form (``read``, ``write``, ``*``) or v2 form (letters of ``cruds``: create, read,
  update, delete, search), e.g. ``patient/*.read``, ``user/Appointment.write``, ``patient/Observation.rs``.

The launch and identity scopes of SMART (``openid``, ``fhirUser``, ``launch/patient`` …) are accepted and
carry no data permission. ``system/`` scopes (backend services without a user) are not offered.
See https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from caresync.core.errors import ValidationFailed

READ, SEARCH, CREATE, UPDATE, DELETE = "r", "s", "c", "u", "d"
V1_PERMISSIONS = {"read": frozenset({READ, SEARCH}), "write": frozenset({CREATE, UPDATE, DELETE})}
V1_PERMISSIONS["*"] = V1_PERMISSIONS["read"] | V1_PERMISSIONS["write"]
IDENTITY_SCOPES = frozenset(
    {"openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access", "online_access"}
)
CONTEXTS = ("patient", "user")
MAX_SCOPES = 40
_SCOPE = re.compile(r"^(?P<context>[a-z]+)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perms>read|write|\*|[cruds]+)$")


@dataclass(frozen=True)
class Grant:
    """One data scope: a context, a resource type (``*`` for all) and the interactions it allows."""

    context: str
    resource_type: str
    interactions: frozenset[str]

    def covers(self, resource_type: str, interaction: str) -> bool:
        """Whether this grant allows ``interaction`` on ``resource_type``."""
        return self.resource_type in ("*", resource_type) and interaction in self.interactions


@dataclass(frozen=True)
class Scopes:
    """The parsed scopes of a token. ``None`` grants (``Scopes.full()``) mean the user's own session."""

    grants: tuple[Grant, ...] | None
    text: str = ""

    @classmethod
    def full(cls) -> Scopes:
        """A user's own session or token: every interaction the user's role allows, in ``user`` context."""
        return cls(grants=None)

    @property
    def is_full(self) -> bool:
        """True for the user's own sessions (no app scopes)."""
        return self.grants is None

    def allows(self, resource_type: str, interaction: str) -> bool:
        """Whether some grant covers ``interaction`` on ``resource_type``."""
        return self.grants is None or any(g.covers(resource_type, interaction) for g in self.grants)

    def patient_only(self, resource_type: str, interaction: str) -> bool:
        """True when only ``patient/`` grants cover the interaction: the app sees one patient's data."""
        if self.grants is None:
            return False
        covering = [g for g in self.grants if g.covers(resource_type, interaction)]
        return bool(covering) and all(g.context == "patient" for g in covering)


def _permissions(text: str, scope: str) -> frozenset[str]:
    if text in V1_PERMISSIONS:
        return V1_PERMISSIONS[text]
    if len(set(text)) != len(text) or "".join(sorted(text, key="cruds".index)) != text:
        raise ValidationFailed(f"Scope '{scope}': permissions must be letters of 'cruds', in that order.")
    return frozenset(text)


def parse(text: str, *, known_types: frozenset[str]) -> Scopes:
    """Parse a space-separated scope string; raises a 422 naming the first scope that is wrong."""
    words = text.split()
    if not words:
        raise ValidationFailed("Give at least one scope, e.g. 'patient/*.read'.")
    if len(words) > MAX_SCOPES:
        raise ValidationFailed(f"At most {MAX_SCOPES} scopes per token.")
    grants: list[Grant] = []
    for word in words:
        if word in IDENTITY_SCOPES:
            continue
        match = _SCOPE.match(word)
        if match is None:
            raise ValidationFailed(
                f"'{word}' is not a scope. Use <patient|user>/<Resource or *>.<read|write|*|cruds>."
            )
        context, resource_type = match["context"], match["type"]
        if context not in CONTEXTS:
            raise ValidationFailed(f"Scope '{word}': the context must be 'patient' or 'user'.")
        if resource_type != "*" and resource_type not in known_types:
            raise ValidationFailed(f"Scope '{word}': this server has no {resource_type} resource.")
        grants.append(Grant(context, resource_type, _permissions(match["perms"], word)))
    if not grants:
        raise ValidationFailed("Ask for at least one data scope, e.g. 'patient/*.read'.")
    return Scopes(grants=tuple(grants), text=" ".join(words))
