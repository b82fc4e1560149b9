"""Fuzz the FHIR R4 API from its own OpenAPI schema (``/fhir/R4/openapi.json``; schemathesis, in-process over
ASGI) on the fuzzing database with demo data: signed in as a doctor, or with no token at all, whatever the
generated request, the API

* never answers with a server error (no 5xx);
* always answers ``application/fhir+json``;
* answers every error (4xx) with an ``OperationOutcome`` whose issue has a severity, a code and a diagnostic
  a person can read;
* answers every success with a resource that validates with the FHIR R4B models (a Bundle entry by entry).

The schema lists the routes generated from the resource registry, with their declared search parameters, so
resource types added later are fuzzed without changes here. Generation is derandomized and kept small (see
``tests/fuzz/test_schemathesis.py`` for the set-up this follows); the whole module runs in well under a
minute.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from fhir.resources.R4B import get_fhir_model_class
from schemathesis.checks import not_a_server_error

from caresync.app import create_app
from tests.fuzz.schemas import fuzz_settings, load_schema

pytestmark = pytest.mark.fuzz

FHIR_JSON = "application/fhir+json"
FUZZ_SETTINGS = fuzz_settings(max_examples=5)
ANONYMOUS_SETTINGS = fuzz_settings(max_examples=3)

APP = create_app()
schema = load_schema(APP, "/fhir/R4/openapi.json")
# Without a token every operation stops at the 401 (after reading the body, for create and update).
anonymous_schema = load_schema(APP, "/fhir/R4/openapi.json", coverage=False)


def _validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    if resource["resourceType"] == "Bundle":
        for entry in resource.get("entry", []):
            _validate(entry["resource"])


def fhir_answer(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """FHIR JSON always; an OperationOutcome for errors; valid R4B resources for successes."""
    content_type = (response.headers.get("content-type") or [""])[0]
    if not content_type.startswith(FHIR_JSON):
        raise AssertionError(f"Content-Type is {content_type!r}, not {FHIR_JSON}")
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError("The body is not JSON") from None
    if response.status_code >= 400:
        if body.get("resourceType") != "OperationOutcome":
            raise AssertionError(f"A {response.status_code} answered with {body.get('resourceType')!r}")
        issue = body["issue"][0]
        if not (issue.get("severity") and issue.get("code") and issue.get("diagnostics")):
            raise AssertionError(f"An OperationOutcome issue without severity, code or diagnostics: {issue}")
    try:
        _validate(body)
    except Exception as exc:  # pydantic's ValidationError, or a missing resourceType
        raise AssertionError(f"Not valid FHIR R4B: {exc}") from None
    return None


@pytest.fixture
def doctor_headers(fuzz_target: Any) -> dict[str, str]:
    """A demo doctor's bearer token (a full session: password and TOTP)."""
    return fuzz_target.doctor_headers


@anonymous_schema.parametrize()
@ANONYMOUS_SETTINGS
def test_fhir_without_credentials(case: schemathesis.Case, fuzz_target: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error, fhir_answer])


@schema.parametrize()
@FUZZ_SETTINGS
def test_fhir_as_a_doctor(case: schemathesis.Case, doctor_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=doctor_headers, checks=[not_a_server_error, fhir_answer])


class Answer:
    """The parts of a schemathesis response the check reads."""

    def __init__(self, status_code: int, content_type: str, body: Any) -> None:
        self.status_code = status_code
        self.headers = {"content-type": [content_type]}
        self.content = json.dumps(body).encode()


OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "not-found", "diagnostics": "Patient/x does not exist."}],
}


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (Answer(404, "application/problem+json", OUTCOME), "Content-Type"),
        (Answer(404, FHIR_JSON, {"detail": "Not found"}), "answered with None"),
        (Answer(400, FHIR_JSON, {**OUTCOME, "issue": [{"severity": "error", "code": "invalid"}]}),
         "diagnostics"),
        (Answer(200, FHIR_JSON, {"resourceType": "Patient", "birthDate": "last spring"}), "Not valid FHIR"),
        (Answer(200, FHIR_JSON, {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {}}]}),
         "Not valid FHIR"),
    ],
)  # fmt: skip
def test_the_check_refuses_what_is_not_fhir(answer: Answer, problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        fhir_answer(None, answer, None)  # type: ignore[arg-type]


def test_the_check_accepts_fhir() -> None:
    fhir_answer(None, Answer(404, FHIR_JSON, OUTCOME), None)  # type: ignore[arg-type]
    bundle = {"resourceType": "Bundle", "type": "searchset", "total": 0}
    fhir_answer(None, Answer(200, FHIR_JSON, bundle), None)  # type: ignore[arg-type]
