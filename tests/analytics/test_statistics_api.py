"""The statistics API: who may call it (``analytics:view``: administrators, doctors and nurses, for their own
organisation), what it answers on a few known encounters, its CSV and JSON exports, validation, the audit
entry, and that a new encounter refreshes a cached answer."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.analytics import cache
from caresync.analytics.statistics import api as statistics_api
from caresync.analytics.statistics import service
from caresync.analytics.statistics.demographics import GroupShare
from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.db import session_factory, transaction
from tests.conftest import API, Cast, Factory
from tests.permission_matrix import Case, assert_covered, check_api, only

Encounter = Callable[..., uuid.UUID]
VIEWERS = ("admin", "doctor", "nurse")
PERIOD = {"start": "2026-01-01", "end": "2026-03-31"}


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.results.clear()
    yield
    cache.results.clear()


def _period(_: None) -> dict[str, str]:
    return PERIOD


API_CASES: dict[tuple[str, str], Case[None]] = {
    ("GET", f"{API}/analytics/{name}"): Case(only(200, *VIEWERS), query=_period)
    for name in ("trends", "seasonality", "demographics", "associations")
}


def test_matrix_covers_every_route() -> None:
    assert_covered((statistics_api.router, API_CASES))


def test_statistics_permission_matrix(client: TestClient, cast: Cast, encounter: Encounter) -> None:
    encounter(cast["patient"].patient_id, cast.org.id, datetime(2026, 2, 3, 9, tzinfo=UTC), ("J11",))
    check_api(client, cast, None, API_CASES)


def _rows(response_bytes: bytes) -> list[dict[str, str]]:
    text = response_bytes.decode("utf-8")
    assert text.startswith("\ufeff")  # the byte order mark spreadsheets need
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_trends_answer_and_csv_export(
    client: TestClient, cast: Cast, encounter: Encounter, sign_in: Callable[..., dict[str, str]]
) -> None:
    patient, org = cast["patient"].patient_id, cast.org.id
    encounter(patient, org, datetime(2026, 1, 7, 10, tzinfo=UTC), ("J11",))  # baseline week 2026-W02
    encounter(patient, org, datetime(2026, 1, 12, 0, tzinfo=UTC), ("J11", "I10"))  # 2026-W03
    encounter(patient, org, datetime(2026, 1, 18, 23, 59, tzinfo=UTC), ("J11",))
    encounter(patient, org, datetime(2026, 1, 19, 0, tzinfo=UTC), ("A09",))  # 2026-W04: outside
    headers = sign_in(cast["doctor"])
    query = {"start": "2026-01-14", "end": "2026-01-16"}  # whole ISO weeks: 2026-W03

    body = client.get(f"{API}/analytics/trends", params=query, headers=headers).json()
    assert (body["first_week"], body["last_week"], body["organisation_id"]) == (
        "2026-01-12",
        "2026-01-12",
        None,
    )
    assert [(w["week"], w["rank"], w["code"], w["count"], w["previous"], w["change"], w["change_pct"])
            for w in body["weeks"]] == [
        ("2026-W03", 1, "J11", 2, 1, 1, 100.0),
        ("2026-W03", 2, "I10", 1, 0, 1, None),
    ]  # fmt: skip

    response = client.get(f"{API}/analytics/trends", params={**query, "format": "csv"}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="caresync-trends.csv"' in response.headers["content-disposition"]
    rows = _rows(response.content)
    assert list(rows[0]) == ["week", "week_start", "rank", "code", "name", "count", "previous", "change",
                             "change_pct"]  # fmt: skip
    assert [(r["code"], r["name"], r["count"], r["change_pct"]) for r in rows] == [
        ("J11", "Influenza, virus not identified", "2", "100.0"),
        ("I10", "Essential (primary) hypertension", "1", ""),
    ]


def test_each_answer_exports_as_csv_and_json(
    client: TestClient, cast: Cast, encounter: Encounter, sign_in: Callable[..., dict[str, str]]
) -> None:
    patient, org = cast["patient"].patient_id, cast.org.id
    for month in (1, 2, 2, 3):
        encounter(patient, org, datetime(2026, month, 10, 10, tzinfo=UTC), ("J11",))
    headers = sign_in(cast["nurse"])
    for name in ("seasonality", "demographics", "associations"):
        url = f"{API}/analytics/{name}"
        body = client.get(url, params=PERIOD, headers=headers).json()
        exported = client.get(url, params={**PERIOD, "format": "json"}, headers=headers)
        assert exported.headers["content-type"] == "application/json"
        assert f'filename="caresync-{name}.json"' in exported.headers["content-disposition"]
        assert json.loads(exported.content) == body
        assert client.get(url, params={**PERIOD, "format": "csv"}, headers=headers).status_code == 200

    seasonality = client.get(f"{API}/analytics/seasonality", params=PERIOD, headers=headers)
    assert seasonality.json()["peaks"][0] | {"name": ""} == {
        "code": "J11", "name": "", "total": 4, "monthly_mean": 1.333, "peak_month": 2, "peak_ratio": 1.5,
        "usual_peak_month": 1,
    }  # fmt: skip
    rows = _rows(
        client.get(
            f"{API}/analytics/seasonality", params={**PERIOD, "format": "csv"}, headers=headers
        ).content
    )
    assert [(r["month"], r["mean_count"], r["ratio"], r["peak"]) for r in rows] == [
        ("1", "1.0", "0.75", "False"),
        ("2", "2.0", "1.5", "True"),
        ("3", "1.0", "0.75", "False"),
    ]
    rows = _rows(
        client.get(
            f"{API}/analytics/demographics", params={**PERIOD, "format": "csv"}, headers=headers
        ).content
    )
    overall_female = next(r for r in rows if r["scope"] == "overall" and r["group"] == "female")
    assert (overall_female["patients"], overall_female["encounters"], overall_female["patient_share"]) == (
        "1",
        "4",
        "1.0",
    )
    associations = client.get(f"{API}/analytics/associations", params=PERIOD, headers=headers).json()
    assert (associations["unit"], associations["correction"], associations["patients"]) == (
        "patient",
        "benjamini-hochberg",
        1,
    )
    assert associations["tests"] == []  # one patient: nothing can be tested
    assert {s["reason"] for s in associations["skipped"]} == {
        "only one age band group present",
        "only one sex group present",
    }


def test_associations_csv_names_low_expected_cells(
    client: TestClient,
    cast: Cast,
    make: Factory,
    encounter: Encounter,
    sign_in: Callable[..., dict[str, str]],
) -> None:
    for sex, code in (("female", "O80"), ("female", "O80"), ("male", "I21.9"), ("male", "I21.9")):
        patient = make.patient(sex=sex, birth_date=date(1990, 1, 1))
        encounter(patient.id, cast.org.id, datetime(2026, 2, 3, 9, tzinfo=UTC), (code,))
    headers = sign_in(cast["admin"])
    url = f"{API}/analytics/associations"
    body = client.get(url, params=PERIOD, headers=headers).json()
    delivery = next(t for t in body["tests"] if t["grouping"] == "sex" and t["code"] == "O80")
    assert (delivery["patients"], delivery["cases"], delivery["dof"], delivery["yates_correction"]) == (
        4,
        2,
        1,
        True,
    )
    assert delivery["warning"].startswith("4 of 4 cells have an expected count below 5")
    rows = _rows(client.get(url, params={**PERIOD, "format": "csv"}, headers=headers).content)
    assert [(r["grouping"], r["code"]) for r in rows] == [("sex", "I21.9"), ("sex", "O80")]  # rules order
    assert rows[1]["low_expected"] == ("female:with=1.0; female:without=1.0; male:with=1.0; male:without=1.0")
    assert rows[1]["p_adjusted"] == str(delivery["p_adjusted"])
    assert rows[1]["significant"] == "False"


def test_scope_is_the_callers_organisation(
    client: TestClient,
    cast: Cast,
    make: Factory,
    encounter: Encounter,
    sign_in: Callable[..., dict[str, str]],
) -> None:
    elsewhere = make.org()
    stranger = make.patient(sex="male", birth_date=date(1940, 1, 1))
    encounter(cast["patient"].patient_id, cast.org.id, datetime(2026, 2, 3, 9, tzinfo=UTC), ("J11",))
    encounter(stranger.id, elsewhere.id, datetime(2026, 2, 3, 9, tzinfo=UTC), ("I21.9",))
    headers = sign_in(cast["admin"])
    url = f"{API}/analytics/demographics"

    body = client.get(url, params=PERIOD, headers=headers).json()
    assert {g["scope"] for g in body["groups"]} == {
        "overall",
        str(cast.org.id),
    }  # the other hospital is not seen
    overall = {
        (g["dimension"], g["group"]): g["encounters"] for g in body["groups"] if g["scope"] == "overall"
    }
    assert (overall[("sex", "male")], overall[("age_band", "80+")]) == (0, 0)

    own = client.get(url, params={**PERIOD, "organisation_id": str(cast.org.id)}, headers=headers)
    assert own.status_code == 200
    assert own.json()["organisation_id"] == str(cast.org.id)

    refused = client.get(url, params={**PERIOD, "organisation_id": str(elsewhere.id)}, headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "own organisation" in refused.json()["detail"]
    with transaction(session_factory()) as s:
        entries = s.execute(
            select(AuditEntry)
            .where(AuditEntry.action == "analytics.demographics.view")
            .order_by(AuditEntry.seq)
        ).scalars()
        outcomes = [(e.outcome, e.resource_id, e.patient_id) for e in entries]
    assert outcomes == [
        ("success", "", None),
        ("success", str(cast.org.id), None),
        ("denied", str(elsewhere.id), None),
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-03-01", "end": "2026-02-01"}, "ends (2026-02-01) before it starts"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "at most 265 weeks"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, "between 1900-01-01 and 2199-12-31"),
        ({"end": "9999-12-31"}, "9999-12-31 is not"),
        ({"weeks": "0"}, ""),
        ({"format": "xml"}, ""),
        ({"organisation_id": "not-a-uuid"}, ""),
    ],
)
def test_invalid_filters_are_422(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[..., dict[str, str]],
    query: dict[str, str],
    message: str,
) -> None:
    response = client.get(f"{API}/analytics/trends", params=query, headers=sign_in(cast["doctor"]))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert message in response.text


def test_every_endpoint_checks_the_period(
    client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]]
) -> None:
    headers = sign_in(cast["nurse"])
    for name in ("trends", "seasonality", "demographics", "associations"):
        for query in (
            {"start": "2026-03-01", "end": "2026-02-01"},
            {"start": "1899-12-31"},
            {"end": "2200-01-01"},
        ):
            response = client.get(f"{API}/analytics/{name}", params=query, headers=headers)
            assert response.status_code == 422, (name, query, response.text)


def test_a_new_encounter_refreshes_the_cached_answer(cast: Cast, encounter: Encounter) -> None:
    doctor = cast["doctor"]
    principal = Principal(doctor.id, "doctor", doctor.full_name, organisation_id=cast.org.id)
    filters = service.Filters(organisation_id=None, start=date(2026, 1, 1), end=date(2026, 12, 31))
    patient = cast["patient"].patient_id
    encounter(patient, cast.org.id, datetime(2026, 2, 3, 9, tzinfo=UTC), ("J11",))

    def answer() -> service.Analysis[list[GroupShare]]:
        with transaction(session_factory()) as s:
            return service.demographic_profile(s, principal, filters)

    first, again = answer(), answer()
    assert again.result is first.result  # served from the cache: not recomputed
    assert first.result[0].encounters + first.result[1].encounters == 0  # 45 years old: 40-59
    assert sum(g.encounters for g in first.result if g.scope == "overall" and g.dimension == "age_band") == 1

    encounter(patient, cast.org.id, datetime(2026, 2, 10, 9, tzinfo=UTC), ("I10",))
    fresh = answer()
    assert fresh.data_version != first.data_version
    assert sum(g.encounters for g in fresh.result if g.scope == "overall" and g.dimension == "age_band") == 2
