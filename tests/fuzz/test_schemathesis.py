"""Fuzz every API operation from the OpenAPI schema (schemathesis, in-process over ASGI): whatever the input,
signed in as a doctor or not signed in at all, the API answers without a server error (no 5xx).

Generation is derandomized, so every run sends the same requests; ``max_examples`` keeps the run short (the
examples and coverage phases add schema-derived and boundary cases on top of the random ones, when signed
in). Without a token every operation stops at the 401 whatever its parameters, so that run sends a few random
cases per operation and skips the coverage phase. Each operation is its own test item
(``test_...[GET /api/v1/patients]``).

The schema is loaded when the module is collected (schemathesis's lazy ``from_fixture`` loader does not
work with pytest 9: it sets ``Node._nodeid``, which pytest 9 no longer has). Building the app needs no
database: the app reads the settings per request, and the ``fuzz_target`` fixture points them at the fuzzing
database while these tests run.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error

from caresync.app import create_app
from tests.fuzz.schemas import fuzz_settings, load_schema

pytestmark = pytest.mark.fuzz

FUZZ_SETTINGS = fuzz_settings(max_examples=15)
ANONYMOUS_SETTINGS = fuzz_settings(max_examples=3)

APP = create_app()
schema = load_schema(APP, "/api/openapi.json")
anonymous_schema = load_schema(APP, "/api/openapi.json", coverage=False)
# Signed in as a doctor, logout is left out: it revokes the very token every other request of the run uses,
# after which the remaining operations would only exercise the 401 path (the anonymous run covers that).
signed_in_schema = schema.exclude(method="POST", path="/api/v1/auth/logout")


@pytest.fixture
def doctor_headers(fuzz_target: Any) -> dict[str, str]:
    """A demo doctor's bearer token (a full session: password and TOTP)."""
    return fuzz_target.doctor_headers


@anonymous_schema.parametrize()
@ANONYMOUS_SETTINGS
def test_no_server_error_without_credentials(case: schemathesis.Case, fuzz_target: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error])


@signed_in_schema.parametrize()
@FUZZ_SETTINGS
def test_no_server_error_as_a_doctor(case: schemathesis.Case, doctor_headers: dict[str, str]) -> None:
    case.call_and_validate(headers=doctor_headers, checks=[not_a_server_error])
