"""Fixtures for the FHIR API tests.

``fhir`` wraps the test client: every call checks the content type and validates whatever came back with
the FHIR R4B models of ``fhir.resources`` (a resource, every entry of a Bundle, or an OperationOutcome for
errors), so a test that reads a resource also proves it is valid FHIR. ``app_token(headers, scope)``
issues a scoped app token for a signed-in user.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class
from httpx import Response

from tests.conftest import API, bearer

BASE = "/fhir/R4"
FHIR_JSON = "application/fhir+json"


def assert_valid(resource: dict[str, Any]) -> None:
    """Validate ``resource`` (and a Bundle's entries) with fhir.resources R4B; fails the test if invalid."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for entry in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        assert_valid(entry["resource"])


class FhirApi:
    """The FHIR API through the test client; paths are relative to ``/fhir/R4``."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Response:
        """Call the API and validate the response body as FHIR."""
        url = path if path.startswith("http") else f"{BASE}/{path.lstrip('/')}"
        response = self.client.request(method, url, headers=headers, **kwargs)
        assert response.headers["content-type"].startswith(FHIR_JSON), response.text
        body = response.json()
        assert_valid(body)
        if response.status_code >= 400:
            assert body["resourceType"] == "OperationOutcome", body
        return response

    def get(self, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Response:
        """GET and validate."""
        return self.request("GET", path, headers, **kwargs)

    def post(self, path: str, resource: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        """POST a resource as application/fhir+json and validate the answer."""
        return self.request("POST", path, {**(headers or {}), "Content-Type": FHIR_JSON}, json=resource)

    def put(self, path: str, resource: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
        """PUT a resource as application/fhir+json and validate the answer."""
        return self.request("PUT", path, {**(headers or {}), "Content-Type": FHIR_JSON}, json=resource)

    def search_all(self, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
        """Every matching resource of a search, following the ``next`` links."""
        found: list[dict[str, Any]] = []
        url: str | None = path
        while url:
            response = self.get(url, headers)
            assert response.status_code == 200, response.text
            bundle = response.json()
            found += [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]
            url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        return found


@pytest.fixture
def fhir(client: TestClient) -> FhirApi:
    """The FHIR API, validating every response."""
    return FhirApi(client)


def ids(bundle: dict[str, Any], resource_type: str | None = None) -> list[str]:
    """The ids of a searchset's matches (optionally of one type)."""
    return [
        e["resource"]["id"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "match" and resource_type in (None, e["resource"]["resourceType"])
    ]


@pytest.fixture
def app_token(client: TestClient) -> Callable[[dict[str, str], str], dict[str, str]]:
    """``app_token(headers, scope)``: bearer headers of an app token with ``scope`` for that user."""

    def issue(headers: dict[str, str], scope: str) -> dict[str, str]:
        response = client.post(
            f"{API}/auth/app-tokens", json={"scope": scope, "label": "test app"}, headers=headers
        )
        assert response.status_code == 201, response.text
        return bearer(response.json()["access_token"])

    return issue
