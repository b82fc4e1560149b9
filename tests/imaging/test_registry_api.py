"""The imaging registry over HTTP: the permission matrix of its API and pages, the list (paginated,
filtered), the model card, switching the serving version, the catalog's tasks and conditions, and what the
pages show (metrics, confusion matrix, "demonstration only" badges, the admins' serve button, empty
states)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from caresync.imaging import catalog
from caresync.imaging.registry import api, pages, service
from tests.conftest import API, Cast, web_login
from tests.imaging.test_registry import TASK, constant_result, register
from tests.permission_matrix import Case, assert_covered, check_api, check_pages, only
from tests.permission_matrix import pages as page_expect

M = f"{API}/imaging"
STAFF = ("admin", "doctor", "nurse")


@dataclass
class World:
    """A served demonstration version of the pneumonia task and a second, real-data one not serving."""

    served: uuid.UUID
    other: uuid.UUID


@pytest.fixture
def world() -> World:
    served = register(constant_result(favour=0), serve=True)
    other = register(constant_result(favour=1), demonstration=False, data_source="pneumoniamnist.npz")
    return World(served.id, other.id)


def _model(w: World) -> dict[str, str]:
    return {"model_id": str(w.other)}


def _missing(_w: World) -> dict[str, str]:
    return {"model_id": str(uuid.uuid4())}


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", f"{M}/models"): Case(only(200, *STAFF)),
    ("GET", f"{M}/models/{{model_id}}"): Case(only(200, *STAFF), path=_model, foreign=_missing),
    ("POST", f"{M}/models/{{model_id}}/serve"): Case(only(200, "admin"), path=_model, foreign=_missing),
    ("GET", f"{M}/tasks"): Case(only(200, *STAFF)),
    ("GET", f"{M}/conditions"): Case(only(200, *STAFF)),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/imaging/models"): Case(page_expect(only(200, *STAFF))),
    ("GET", "/imaging/models/{model_id}"): Case(
        page_expect(only(200, *STAFF)), path=_model, foreign=_missing
    ),
    ("POST", "/imaging/models/{model_id}/serve"): Case(
        page_expect(only(303, "admin")), path=_model, data=lambda _w: {}, foreign=_missing
    ),
    ("GET", "/imaging/conditions"): Case(page_expect(only(200, *STAFF))),
}


def test_the_matrix_names_every_route() -> None:
    assert_covered((api.router, API_CASES), (pages.router, PAGE_CASES))


def test_api_permission_matrix(client: TestClient, cast: Cast, world: World) -> None:
    check_api(client, cast, world, API_CASES)


def test_page_permission_matrix(app: Any, cast: Cast, world: World) -> None:
    check_pages(app, cast, world, PAGE_CASES)


# --- the API ------------------------------------------------------------------------------------------------


def test_list_pages_filters_and_flags(client: TestClient, cast: Cast, world: World, sign_in: Any) -> None:
    derm = register(constant_result("dermatology"), task="dermatology")
    headers = sign_in(cast["nurse"])
    first = client.get(f"{M}/models", params={"limit": 2}, headers=headers).json()
    assert first["total"] == 3
    assert [m["id"] for m in first["items"]] == [str(derm.id), str(world.other)]  # newest first
    rest = client.get(
        f"{M}/models", params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert [m["id"] for m in rest["items"]] == [str(world.served)]
    assert rest["next_cursor"] is None
    served = rest["items"][0]
    assert served["serving"] is True
    assert served["demonstration"] is True
    assert served["label"] == service.DEMONSTRATION_LABEL == "Demonstration only — not for clinical use"
    assert served["version"] == 1
    assert served["labels"] == ["normal", "pneumonia"]
    assert served["accuracy"] is not None
    assert 0 < served["baseline"] <= 1  # the majority answer's accuracy
    other = first["items"][1]
    assert (other["serving"], other["demonstration"], other["label"]) == (False, False, None)

    only_pneumonia = client.get(f"{M}/models", params={"task": TASK}, headers=headers).json()
    assert {m["task"] for m in only_pneumonia["items"]} == {TASK}
    assert only_pneumonia["total"] == 2
    unknown = client.get(f"{M}/models", params={"task": "xray"}, headers=headers)
    assert unknown.status_code == 422
    assert "Unknown imaging task 'xray'" in unknown.json()["detail"]
    bad_cursor = client.get(f"{M}/models", params={"cursor": "nonsense"}, headers=headers)
    assert bad_cursor.status_code == 422


def test_model_card_over_the_api(client: TestClient, cast: Cast, world: World, sign_in: Any) -> None:
    response = client.get(f"{M}/models/{world.served}", headers=sign_in(cast["doctor"]))
    assert response.status_code == 200
    body = response.json()
    assert body["serving"] is True
    assert body["label"] == service.DEMONSTRATION_LABEL
    card = body["card"]
    assert card["label"] == service.DEMONSTRATION_LABEL
    assert card["task"] == TASK
    assert card["data"]["fingerprint"] == "ab" * 32
    assert set(card["metrics"]["per_class"]) == {"normal", "pneumonia"}
    assert card["intended_use"]
    assert card["limitations"]
    with transaction(session_factory()) as s:
        read = s.scalars(select(AuditEntry).where(AuditEntry.action == "imaging.model.read")).all()
        assert [(e.actor_id, e.resource_id) for e in read] == [(cast["doctor"].id, str(world.served))]


def test_admin_serves_over_the_api_and_contract_breaks_are_409(
    client: TestClient, cast: Cast, world: World, sign_in: Any
) -> None:
    headers = sign_in(cast["admin"])
    response = client.post(f"{M}/models/{world.other}/serve", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["task"], body["model_id"], body["version"], body["label"]) == (
        TASK,
        str(world.other),
        2,
        None,
    )
    listed = client.get(f"{M}/tasks", headers=headers).json()
    assert next(t for t in listed if t["key"] == TASK)["serving"]["version"] == 2

    swapped = register(constant_result(labels=("pneumonia", "normal")))
    refused = client.post(f"{M}/models/{swapped.id}/serve", headers=headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "expects normal, pneumonia" in refused.json()["detail"]
    assert client.get(f"{M}/models/{world.other}", headers=headers).json()["serving"] is True


def test_tasks_and_conditions_of_the_catalog(
    client: TestClient, cast: Cast, world: World, sign_in: Any
) -> None:
    headers = sign_in(cast["doctor"])
    tasks = client.get(f"{M}/tasks", headers=headers).json()
    assert [t["key"] for t in tasks] == list(catalog.TASKS)
    pneumonia = next(t for t in tasks if t["key"] == TASK)
    assert pneumonia["serving"] == {
        "model_id": str(world.served),
        "version": 1,
        "architecture": "basic_cnn",
        "demonstration": True,
        "label": service.DEMONSTRATION_LABEL,
    }
    assert pneumonia["labels"] == ["normal", "pneumonia"]
    assert pneumonia["modalities"] == ["CR", "DX"]
    assert [c["label"] for c in pneumonia["conditions"]] == [c.label for c in catalog.conditions_of(TASK)]
    chest = next(t for t in tasks if t["key"] == "chest_xray")
    assert chest["serving"] is None
    assert chest["multilabel"] is True
    assert len(chest["conditions"]) >= 10

    conditions = client.get(f"{M}/conditions", headers=headers).json()
    assert len(conditions) >= 50
    assert len({c["specialty"] for c in conditions}) >= 7
    assert all(c["icd10"] and c["task"] in catalog.TASKS for c in conditions)
    derm = client.get(f"{M}/conditions", params={"specialty": "Dermatology"}, headers=headers).json()
    assert derm
    assert {c["specialty"] for c in derm} == {"Dermatology"}
    assert any(c["name"] == "Malignant melanoma of skin" and c["label"] == "melanoma" for c in derm)
    unknown = client.get(f"{M}/conditions", params={"specialty": "Astrology"}, headers=headers)
    assert unknown.status_code == 422
    assert "Unknown specialty 'Astrology'. Known: " in unknown.json()["detail"]


# --- the pages ----------------------------------------------------------------------------------------------


def test_registry_page_for_admins_and_clinicians(client: TestClient, cast: Cast, world: World) -> None:
    web_login(client, cast["admin"])
    page = client.get("/imaging/models").text
    assert 'data-task="pneumonia"' in page
    assert 'data-testid="serving-version"' in page
    assert page.count('data-testid="version-row"') == 2
    assert service.DEMONSTRATION_LABEL in page
    assert page.count('data-testid="serve"') == 1  # only the version not serving
    assert f"/imaging/models/{world.other}/serve" in page
    assert 'data-confirm="Serve version 2' in page
    assert "No model trained for this task yet" in page  # e.g. chest X-ray
    assert "caresync imaging train --task chest_xray" in page
    assert "/imaging/conditions" in page

    client.cookies.clear()
    web_login(client, cast["doctor"])
    seen = client.get("/imaging/models").text
    assert 'data-testid="serve"' not in seen
    assert 'data-testid="versions"' in seen


def test_registry_page_empty_state(client: TestClient, cast: Cast) -> None:
    web_login(client, cast["nurse"])
    page = client.get("/imaging/models").text
    assert "No imaging model trained yet" in page
    assert 'data-testid="version-row"' not in page
    assert page.count('data-testid="untrained-task"') == len(catalog.TASKS)


def test_card_page_shows_metrics_and_serving_via_the_page(
    client: TestClient, cast: Cast, world: World
) -> None:
    csrf = web_login(client, cast["admin"])
    page = client.get(f"/imaging/models/{world.served}").text
    assert 'data-testid="per-class"' in page
    assert 'data-testid="confusion"' in page
    assert 'data-testid="demo-warning"' in page
    assert 'data-testid="serving-badge"' in page
    assert "ab" * 32 in page  # the data fingerprint
    assert "6 training" not in page  # no splits were given for these versions
    other = client.get(f"/imaging/models/{world.other}").text
    assert 'data-testid="demo-warning"' not in other
    assert 'data-testid="serve"' in other

    response = client.post(
        f"/imaging/models/{world.other}/serve", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/imaging/models/{world.other}?served=1"
    done = client.get(response.headers["location"]).text
    assert 'data-testid="served"' in done
    assert 'data-testid="serving-badge"' in done
    with transaction(session_factory()) as s:
        assert service.serving_model(s, TASK).id == world.other  # type: ignore[union-attr]


def test_conditions_page(client: TestClient, cast: Cast, world: World) -> None:
    web_login(client, cast["doctor"])
    page = client.get("/imaging/conditions").text
    assert page.count('data-testid="condition"') == len(catalog.CONDITIONS) >= 50
    assert "Version 1" in page  # the pneumonia conditions name their serving version
    derm = client.get("/imaging/conditions", params={"specialty": "Dermatology"}).text
    assert derm.count('data-testid="condition"') == sum(
        c.specialty == "Dermatology" for c in catalog.CONDITIONS
    )
    assert client.get("/imaging/conditions", params={"specialty": "Astrology"}).status_code == 422
