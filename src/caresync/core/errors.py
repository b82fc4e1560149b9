"""Domain errors and their RFC 9457 ``application/problem+json`` rendering.

Services raise these; the web layer turns them into a problem document with a ``detail`` a person can act
on. Nothing here ever carries a stack trace, a secret or another patient's data to the client.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


class DomainError(Exception):
    """Base class: an HTTP status, a short title and a human-readable detail."""

    status: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        """The problem+json body for this error."""
        return problem_body(
            self.status, self.title, self.detail, slug=self.slug, instance=instance, **self.extra
        )


class ValidationFailed(DomainError):
    """Input is well-formed but breaks a rule (422)."""

    status, title, slug = 422, "Validation failed", "validation"


class Unauthenticated(DomainError):
    """No valid credentials (401)."""

    status, title, slug = 401, "Authentication required", "unauthenticated"


class Forbidden(DomainError):
    """Authenticated but not allowed; only used where existence is not secret (403)."""

    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(DomainError):
    """Missing, or hidden from this caller: the two look the same on purpose (404)."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(DomainError):
    """Clashes with the current state, e.g. a duplicate (409)."""

    status, title, slug = 409, "Conflict", "conflict"


class Locked(DomainError):
    """The account is temporarily locked (423)."""

    status, title, slug = 423, "Locked", "locked"


class TooLarge(DomainError):
    """The upload is larger than allowed (413)."""

    status, title, slug = 413, "Payload too large", "too-large"


class UnsupportedMedia(DomainError):
    """The upload's content is not an accepted type (415)."""

    status, title, slug = 415, "Unsupported media type", "unsupported-media"


class TooManyAttempts(DomainError):
    """Too many failed attempts from one caller; they must wait (429)."""

    status, title, slug = 429, "Too many attempts", "too-many-attempts"


def field_errors(errors: Sequence[Any]) -> dict[str, str]:
    """Pydantic errors as ``{field: message}``: one message per field, the field named as the caller sent
    it (``address.city``), without Pydantic's internal union-branch labels."""
    result: dict[str, str] = {}
    for error in errors:
        parts = [str(p) for p in error.get("loc", ()) if p != "body"]
        field = ".".join(p for p in parts if re.fullmatch(r"\w+", p)) or "request"
        message = str(error.get("msg", "")).removeprefix("Value error, ")
        result.setdefault(field, message)
    return result


def problem_body(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str = "about:blank",
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build an RFC 9457 problem document."""
    body: dict[str, Any] = {
        "type": f"https://caresync.dev/problems/{slug}" if slug != "about:blank" else slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body
