"""Search requests and searchset Bundles: parameters, ``_count`` paging with absolute ``next`` links.

Paging uses the domain services' keyset cursors (``_cursor`` in the links, opaque to clients), so a page
costs the same wherever it is and stays stable while new rows arrive. Search parameters follow the FHIR
rules used here: a repeated parameter means AND, a comma inside a value means OR, a date may carry a prefix
(``eq``, ``ge``, ``gt``, ``le``, ``lt``) and matches by its precision (``2024`` is the whole year).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from caresync.fhir.context import JSON, FhirContext
from caresync.fhir.outcome import invalid, not_supported

DEFAULT_COUNT = 20
MAX_COUNT = 200
# parameters every search understands; the rest are declared per resource type
CONTROL_PARAMS = frozenset({"_count", "_cursor", "_include", "_format", "_summary", "_total"})
DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")


@dataclass
class SearchQuery:
    """A parsed search: parameters by name (``name`` or ``name:modifier``), page size, cursor, includes."""

    params: dict[str, list[str]] = field(default_factory=dict)
    count: int = DEFAULT_COUNT
    cursor: str | None = None
    includes: tuple[str, ...] = ()
    summary_count: bool = False

    def values(self, name: str) -> list[str]:
        """Every OR-alternative of ``name`` across its repetitions, flattened (use when AND makes no sense
        twice, e.g. ``status``: the alternatives of all repetitions must each be allowed)."""
        return [alt for raw in self.params.get(name, []) for alt in split_or(raw)]

    def one(self, name: str) -> str | None:
        """The single value of ``name``; 400 when it is repeated or lists alternatives."""
        raw = self.params.get(name, [])
        if not raw:
            return None
        if len(raw) > 1 or len(split_or(raw[0])) > 1:
            raise not_supported(f"Search parameter '{name}' takes one value here.")
        return raw[0]

    def has(self, name: str) -> bool:
        """Whether the parameter was given (with any modifier)."""
        return any(key == name or key.startswith(name + ":") for key in self.params)


class NoMatch(Exception):
    """Raised by a search whose parameters cannot match anything (e.g. two different patients): the
    answer is an empty searchset, not an error."""


def searched_patient(
    ctx: FhirContext,
    query: SearchQuery,
    what: str,
    *,
    names: tuple[str, ...] = ("patient", "subject"),
    required: bool = True,
) -> uuid.UUID | None:
    """The patient a search is about: its ``patient``/``subject`` parameter, else the caller's own record
    (for a patient). ``None`` when not given and not ``required``; 400 naming ``what`` when required;
    :class:`NoMatch` when the parameters name different patients."""
    named = {reference_id(value, "Patient") for name in names if (value := query.one(name))}
    if len(named) > 1:
        raise NoMatch
    if named:
        return named.pop()
    if ctx.principal.patient_id is not None:
        return ctx.principal.patient_id
    if required:
        raise invalid(f"Say whose {what} to search: {names[0]}=Patient/<id>.")
    return None


def split_or(raw: str) -> list[str]:
    """A value's comma-separated alternatives (``\\,`` is a literal comma)."""
    parts, current, escaped = [], "", False
    for char in raw:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (part.strip() for part in parts) if p]


def fold_type_modifiers(query: SearchQuery) -> None:
    """Fold the type modifier of reference parameters into the plain parameter as typed references:
    ``patient:Patient=123`` becomes ``patient=Patient/123`` (declare the modified keys in ``modifiers``)."""
    for key in [k for k in query.params if ":" in k]:
        name, resource_type = key.split(":", 1)
        if resource_type[:1].isupper():
            typed = [
                ",".join(alt if "/" in alt else f"{resource_type}/{alt}" for alt in split_or(raw))
                for raw in query.params.pop(key)
            ]
            query.params.setdefault(name, []).extend(typed)


def parse_query(
    items: Sequence[tuple[str, str]],
    allowed: frozenset[str],
    *,
    strict: bool,
    modifiers: frozenset[str] = frozenset(),
) -> SearchQuery:
    """Build a :class:`SearchQuery` from the query string. Unknown parameters are refused (``strict``, the
    default: a misspelled filter must not silently return everything) or dropped (``Prefer:
    handling=lenient``). A modifier (``name:contains``) must be one the resource type declares: ignoring
    one would silently widen the search."""
    query = SearchQuery()
    includes: list[str] = []
    for key, value in items:
        name = key.split(":", 1)[0]
        if key == "_count":
            query.count = _count(value)
        elif key == "_cursor":
            query.cursor = value or None
        elif key == "_include":
            includes.append(value)
        elif key == "_summary":
            if value not in ("count", "false"):
                raise not_supported("_summary supports 'count' and 'false' only.")
            query.summary_count = value == "count"
        elif key in ("_format", "_total"):
            continue
        elif key in modifiers or (key == name and name in allowed):
            query.params.setdefault(key, []).append(value)
        elif name in allowed:
            offered = f" (supported: {', '.join(sorted(modifiers))})" if modifiers else ""
            raise not_supported(f"The modifier in '{key}' is not supported here{offered}.")
        elif strict:
            known = ", ".join(sorted(allowed | CONTROL_PARAMS))
            raise invalid(f"Unknown search parameter '{key}'. This resource supports: {known}.")
    query.includes = tuple(includes)
    return query


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise invalid("_count must be a whole number.") from None
    if not 0 <= count <= MAX_COUNT:
        raise invalid(f"_count must be between 0 and {MAX_COUNT}.")
    return count


def reference_id(value: str, resource_type: str) -> uuid.UUID:
    """The id in a reference parameter: ``Patient/<id>``, an absolute URL ending so, or a bare id."""
    tail = value.rstrip("/").split("/")
    if len(tail) >= 2 and tail[-2] != resource_type:
        raise invalid(f"'{value}' is not a {resource_type} reference.")
    try:
        return uuid.UUID(tail[-1])
    except ValueError:
        raise invalid(f"'{value}' is not a {resource_type} id.") from None


def token(value: str) -> tuple[str | None, str]:
    """A token parameter's (system, code); system ``None`` when absent (``code``), ``""`` for ``|code``."""
    if "|" in value:
        system, code = value.split("|", 1)
        return system, code
    return None, value


@dataclass(frozen=True)
class DateRange:
    """Half-open bounds [start, end) in UTC; ``None`` is unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, moment: datetime) -> bool:
        """Whether ``moment`` falls inside the range."""
        return (self.start is None or moment >= self.start) and (self.end is None or moment < self.end)


def _precision_interval(text: str) -> tuple[datetime, datetime]:
    try:
        if len(text) == 4:
            year = int(text)
            return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
        if len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            start = datetime(year, month, 1, tzinfo=UTC)
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"'{text}' is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, moment + timedelta(seconds=1)


def _prefixed(value: str) -> tuple[str, str]:
    """Split a date parameter into (prefix, date); no prefix means ``eq``."""
    if value[:2].isalpha():
        if value[:2] not in DATE_PREFIXES:
            raise not_supported(f"Date prefix '{value[:2]}' is not supported; use eq, ge, gt, le or lt.")
        return value[:2], value[2:]
    return "eq", value


def date_range(values: Sequence[str]) -> DateRange:
    """Intersect date parameters (AND across repetitions) into one range, e.g. ``ge2024-01&lt2024-03``."""
    start: datetime | None = None
    end: datetime | None = None
    for value in values:
        prefix, text = _prefixed(value)
        low, high = _precision_interval(text)
        lo, hi = {
            "eq": (low, high),
            "ge": (low, None),
            "gt": (high, None),
            "le": (None, high),
            "lt": (None, low),
        }[prefix]
        if lo is not None:
            start = lo if start is None else max(start, lo)
        if hi is not None:
            end = hi if end is None else min(end, hi)
    return DateRange(start, end)


@dataclass
class SearchResult:
    """What a resource type's search returns: one page of resources, and what the Bundle needs."""

    resources: list[JSON]
    total: int | None = None
    next_cursor: str | None = None
    included: list[JSON] = field(default_factory=list)


def page_link(ctx: FhirContext, resource_type: str, query: SearchQuery, cursor: str | None) -> str:
    """An absolute search URL repeating the query, at ``cursor``."""
    items: list[tuple[str, str]] = [(k, v) for k, values in query.params.items() for v in values]
    items += [("_include", include) for include in query.includes]
    items.append(("_count", str(query.count)))
    if cursor:
        items.append(("_cursor", cursor))
    return f"{ctx.base_url}/{resource_type}?{urlencode(items)}"


def searchset(ctx: FhirContext, resource_type: str, query: SearchQuery, result: SearchResult) -> JSON:
    """The searchset Bundle: matches, then included resources, ``total`` and self/next links."""
    links = [{"relation": "self", "url": page_link(ctx, resource_type, query, query.cursor)}]
    if result.next_cursor:
        links.append({"relation": "next", "url": page_link(ctx, resource_type, query, result.next_cursor)})
    entries = [_entry(ctx, r, "match") for r in result.resources]
    seen = {(r["resourceType"], r["id"]) for r in result.resources}
    for included in result.included:
        key = (included["resourceType"], included["id"])
        if key not in seen:
            seen.add(key)
            entries.append(_entry(ctx, included, "include"))
    return _bundle(entries, result.total, links)


def bundle_of(ctx: FhirContext, resources: list[JSON], self_url: str) -> JSON:
    """A searchset Bundle of ``resources`` (all matches, one page), e.g. for ``$everything``."""
    entries = [_entry(ctx, r, "match") for r in resources]
    return _bundle(entries, len(resources), [{"relation": "self", "url": self_url}])


def _bundle(entries: list[JSON], total: int | None, links: list[dict[str, str]]) -> JSON:
    bundle: JSON = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": datetime.now(UTC).isoformat(timespec="seconds")},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return bundle


def _entry(ctx: FhirContext, resource: JSON, mode: str) -> JSON:
    return {
        "fullUrl": ctx.full_url(resource["resourceType"], resource["id"]),
        "resource": resource,
        "search": {"mode": mode},
    }


def instant(moment: datetime | None) -> str | None:
    """A FHIR instant/dateTime (UTC, seconds) from an aware datetime."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def drop_empty(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without ``None``, empty strings, lists or dicts (FHIR forbids empty elements)."""
    return {k: v for k, v in resource.items() if v not in (None, "", [], {})}
