"""The resource types this server offers: their interactions, search parameters and mapping functions.

Each module under ``caresync.fhir.resources`` describes its types with :class:`ResourceType` and lists
them in a module-level ``RESOURCES`` tuple; :func:`resource_types` collects them. The API, the
CapabilityStatement and ``Patient/$everything`` are all built from this one registry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from caresync.fhir.context import JSON, FhirContext
from caresync.fhir.search import SearchQuery, SearchResult

Read = Callable[[FhirContext, Any], JSON]
Search = Callable[[FhirContext, SearchQuery], SearchResult]
Create = Callable[[FhirContext, JSON], JSON]
Update = Callable[[FhirContext, Any, JSON], JSON]
Everything = Callable[[FhirContext, uuid.UUID], list[JSON]]


@dataclass(frozen=True)
class SearchParam:
    """A search parameter as the CapabilityStatement declares it (type: string, token, date, reference …)."""

    name: str
    type: str
    documentation: str


@dataclass(frozen=True)
class ResourceType:
    """One FHIR resource type and the functions that serve it (``None``: interaction not offered).

    ``everything`` returns all of one patient's resources of this type for ``Patient/$everything``;
    ``includes`` lists the ``_include`` values the search honours (e.g. ``Appointment:patient``).
    ``modifiers`` lists the modified parameters the search understands (others are refused with 400).
    ``parse_id`` turns the id in a URL into what ``read``/``update`` receive (a UUID unless the type says
    otherwise) and raises ``ValueError`` for an id that cannot exist."""

    name: str
    documentation: str
    read: Read | None = None
    search: Search | None = None
    create: Create | None = None
    update: Update | None = None
    everything: Everything | None = None
    search_params: tuple[SearchParam, ...] = ()
    includes: tuple[str, ...] = ()
    modifiers: tuple[str, ...] = ()  # the modified parameters the search handles, e.g. "name:contains"
    parse_id: Callable[[str], Any] = uuid.UUID

    @property
    def param_names(self) -> frozenset[str]:
        """The names of the declared search parameters."""
        return frozenset(p.name for p in self.search_params)


RESOURCE_MODULES = (
    "patient",
    "directory",
    "scheduling",
    "medications",
    "documents",
    "audit_event",
    "observations",
    "blood",
    "encounters",
)


@cache
def resource_types() -> dict[str, ResourceType]:
    """Every offered resource type by name, in a stable order."""
    import importlib

    found: dict[str, ResourceType] = {}
    for module_name in RESOURCE_MODULES:
        module = importlib.import_module(f"caresync.fhir.resources.{module_name}")
        for resource in module.RESOURCES:
            found[resource.name] = resource
    return dict(sorted(found.items()))


def included(ctx: FhirContext, resource_type: str, ids: Iterable[Any]) -> list[JSON]:
    """``_include`` targets, each read through its own type's ``read`` (so its rules, consent and audit
    apply). Those the token's scopes do not cover, or the caller may not see, are left out; patients are
    checked first, so that an include never leaves a denied-access entry in the audit log."""
    from caresync.core.errors import DomainError
    from caresync.core.rbac import patient_access
    from caresync.fhir import scopes

    target = resource_types().get(resource_type)
    if target is None or target.read is None or not ctx.scopes.allows(resource_type, scopes.READ):
        return []
    found: list[JSON] = []
    for resource_id in dict.fromkeys(ids):
        if resource_type == "Patient" and patient_access(ctx.session, ctx.principal, resource_id) is None:
            continue
        try:
            found.append(target.read(ctx, resource_id))
        except DomainError as exc:
            if exc.status not in (403, 404):
                raise
    return found
