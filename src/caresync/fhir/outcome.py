"""Errors as FHIR ``OperationOutcome`` resources, with the issue codes FHIR clients act on."""

from __future__ import annotations

from typing import Any

from caresync.core.errors import DomainError

# HTTP status -> OperationOutcome issue type (http://hl7.org/fhir/R4/valueset-issue-type.html)
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "business-rule",
    423: "lock-error",
    429: "throttled",
}


class FhirError(DomainError):
    """An error specific to the FHIR API, with an explicit status and issue code."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code or ISSUE_CODES.get(status, "processing")


def invalid(detail: str) -> FhirError:
    """A malformed request or resource (400 ``invalid``)."""
    return FhirError(400, detail)


def not_supported(detail: str) -> FhirError:
    """Something this server does not do (400 ``not-supported``)."""
    return FhirError(400, detail, "not-supported")


def operation_outcome(
    status: int, detail: str, code: str | None = None, *, severity: str = "error"
) -> dict[str, Any]:
    """An OperationOutcome with one issue whose ``diagnostics`` a person can act on."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "fatal" if status >= 500 else severity,
                "code": code or ISSUE_CODES.get(status, "exception" if status >= 500 else "processing"),
                "diagnostics": detail,
            }
        ],
    }


def for_error(exc: DomainError) -> dict[str, Any]:
    """The OperationOutcome for a domain error raised by a service or by the FHIR layer."""
    code = exc.code if isinstance(exc, FhirError) else None
    return operation_outcome(exc.status, exc.detail, code)
