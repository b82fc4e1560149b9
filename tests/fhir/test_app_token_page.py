"""The account page's "Connect an app" card issues scoped FHIR app tokens, shown once and revocable."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import Cast, bearer, web_login


def _issued_token(html: str) -> str:
    shown = r'data-testid="new-app-token".*?<code class="user-select-all">([^<]+)</code>'
    match = re.search(shown, html, re.S)
    assert match, "the page should show the new token once"
    return match.group(1)


def test_patient_connects_an_app_that_reads_only_their_record(client: TestClient, cast: Cast) -> None:
    csrf = web_login(client, cast["patient"])
    page = client.get("/account/security")
    assert "Read my whole record" in page.text
    issued = client.post(
        "/account/app-tokens",
        data={"csrf_token": csrf, "label": "My health app", "scope": "patient/*.read", "hours": "24"},
    )
    assert issued.status_code == 200, issued.text
    token = _issued_token(issued.text)
    mine = client.get(f"/fhir/R4/Patient/{cast['patient'].patient_id}", headers=bearer(token))
    assert mine.status_code == 200
    assert client.get(f"/fhir/R4/Patient/{cast.other_patient.id}", headers=bearer(token)).status_code == 404
    listed = client.get("/account/security").text
    assert "App: My health app" in listed
    assert "patient/*.read" in listed
    assert token not in listed  # shown once, never again


def test_bad_scope_is_explained_on_the_form(client: TestClient, cast: Cast) -> None:
    csrf = web_login(client, cast["doctor"])
    page = client.get("/account/security")
    assert "Read what I may see" in page.text
    assert "Read my whole record" not in page.text
    refused = client.post(
        "/account/app-tokens",
        data={"csrf_token": csrf, "label": "x", "scope": "user/*.read", "custom_scope": "patient/*.read"},
    )
    assert refused.status_code == 422
    assert "only patients can grant them" in refused.text
    assert 'data-testid="new-app-token"' not in refused.text
