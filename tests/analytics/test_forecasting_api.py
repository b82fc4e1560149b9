"""The forecast and surge API: the forecast job and its reuse while no encounter arrives, the latest result
and its exports, too little history (422), another organisation (403), the surge table with an injected
spike, the audit entries, and who may call what (``analytics:view``: administrators, doctors, nurses)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from caresync.analytics import cache
from caresync.analytics.forecasting import api as forecasting_api
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.core.audit import AuditEntry
from caresync.core.jobs import Job
from caresync.db import session_factory, transaction, utcnow
from tests.conftest import API, Cast, Factory
from tests.permission_matrix import Case, assert_covered, check_api, only

AddEncounter = Callable[..., uuid.UUID]
VIEWERS = ("admin", "doctor", "nurse")
FORECASTS = f"{API}/analytics/forecasts"
SURGES = f"{API}/analytics/surges"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.results.clear()
    yield
    cache.results.clear()


def seed_history(
    organisation_id: uuid.UUID, patient_id: uuid.UUID, *, days: int, spike_days: int = 0, seed: int = 3
) -> int:
    """``days`` of daily encounters up to yesterday, bulk-inserted: influenza with a winter peak and
    gastroenteritis at a steady rate, multiplied by five in its last ``spike_days`` days. Returns how many."""
    rng = np.random.default_rng(seed)
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    encounters, diagnoses = [], []
    for back in range(days, 0, -1):
        day = today - timedelta(days=back)
        flu = 2.0 * (1 + 0.8 * np.cos(2 * np.pi * (day.timetuple().tm_yday - 15) / 365.25))
        gastro = 1.5 * (5 if back <= spike_days else 1)
        for code, rate in (("J11", flu), ("A09", gastro)):
            for _ in range(rng.poisson(rate)):
                encounter_id = uuid.uuid4()
                encounters.append(
                    {
                        "id": encounter_id,
                        "patient_id": patient_id,
                        "organisation_id": organisation_id,
                        "department": "general-practice",
                        "started_at": day + timedelta(hours=10),
                        "outcome": "discharged",
                        "source": "synthetic",
                        "created_at": utcnow(),
                    }
                )
                diagnoses.append({"encounter_id": encounter_id, "code": code, "principal": True})
    with transaction(session_factory()) as s:
        s.execute(insert(Encounter), encounters)
        s.execute(insert(EncounterDiagnosis), diagnoses)
    return len(encounters)


def job_count() -> int:
    with transaction(session_factory()) as s:
        return int(s.execute(select(func.count()).select_from(Job)).scalar_one())


def audit_actions(actor_id: uuid.UUID) -> list[tuple[str, str, dict[str, object]]]:
    with transaction(session_factory()) as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.detail, AuditEntry.patient_id)
            .where(AuditEntry.actor_id == actor_id, AuditEntry.action.like("analytics.%"))
            .order_by(AuditEntry.seq)
        ).all()
    assert all(patient_id is None for *_, patient_id in rows)  # aggregates: no patient named
    return [
        (action, outcome, json.loads(detail) if isinstance(detail, str) else detail)
        for action, outcome, detail, _ in rows
    ]


@pytest.fixture
def history(cast: Cast) -> int:
    """Three years of the cast's organisation, with a gastroenteritis spike in the last three weeks."""
    return seed_history(cast.org.id, cast["patient"].patient_id, days=3 * 365 + 20, spike_days=21)


def test_forecast_job_then_cached_until_new_data(
    client: TestClient,
    cast: Cast,
    history: int,
    sign_in: Callable[..., dict[str, str]],
    encounter: AddEncounter,
) -> None:
    admin, nurse = sign_in(cast["admin"]), sign_in(cast["nurse"])
    missing = client.get(f"{FORECASTS}/latest", headers=admin)
    assert missing.status_code == 404
    assert "run a forecast first" in missing.json()["detail"]

    first = client.post(FORECASTS, json={"granularity": "monthly"}, headers=admin)
    assert first.status_code == 202, first.text
    job = first.json()
    assert (job["kind"], job["status"], job["progress"], job["cached"]) == (
        "analytics.forecast",
        "succeeded",
        100,
        False,
    )
    result = job["result"]
    assert result["granularity"] == "monthly"
    assert result["organisation_ids"] == [str(cast.org.id)]
    assert [e["split"] for e in result["evaluations"]] == ["70/30", "80/20"]
    for evaluation in result["evaluations"]:
        assert evaluation["train_end"] < evaluation["test_start"]
        assert evaluation["train_size"] + evaluation["test_size"] == len(result["series"])
        assert evaluation["verdict"].split(" on MASE ")[0] in (
            "SARIMA beats seasonal naive",
            "seasonal naive beats SARIMA",
            "SARIMA and seasonal naive tie",
        )
    assert len(result["forecast"]) == 12
    assert sum(count for _, count in result["series"]) <= history  # whole months only

    # the same data again, by anyone of the organisation: the finished job at once, no new fit
    jobs_before = job_count()
    again = client.post(FORECASTS, json={"granularity": "monthly"}, headers=nurse)
    assert again.status_code == 200
    assert again.json()["id"] == job["id"]
    assert again.json()["cached"] is True
    assert job_count() == jobs_before

    latest = client.get(f"{FORECASTS}/latest", params={"granularity": "monthly"}, headers=nurse)
    assert latest.status_code == 200
    assert latest.json()["job_id"] == job["id"]
    assert latest.json()["stale"] is False
    assert latest.json()["verdict"] == result["verdict"]

    # a new encounter: the latest result is marked stale, and asking again fits anew
    encounter(cast["patient"].patient_id, cast.org.id, datetime.now(UTC) - timedelta(days=1), ("J11",))
    assert client.get(f"{FORECASTS}/latest", headers=nurse).json()["stale"] is True
    refreshed = client.post(FORECASTS, json={"granularity": "monthly"}, headers=admin)
    assert refreshed.status_code == 202
    assert refreshed.json()["id"] != job["id"]
    assert refreshed.json()["cached"] is False
    assert client.get(f"{FORECASTS}/latest", headers=nurse).json()["job_id"] == refreshed.json()["id"]

    actions = audit_actions(cast["admin"].id)
    assert [(a, d.get("cached")) for a, _, d in actions if a == "analytics.forecast.run"] == [
        ("analytics.forecast.run", False),
        ("analytics.forecast.run", False),
    ]
    assert (
        "analytics.forecast.run",
        "success",
        {"scope": str(cast.org.id), "granularity": "monthly", "cached": True},
    ) in audit_actions(cast["nurse"].id)


def test_weekly_forecast_and_exports(
    client: TestClient, cast: Cast, history: int, sign_in: Callable[..., dict[str, str]]
) -> None:
    doctor = sign_in(cast["doctor"])
    response = client.post(
        FORECASTS, json={"granularity": "weekly", "organisation_id": str(cast.org.id)}, headers=doctor
    )
    assert response.status_code == 202, response.text
    result = response.json()["result"]
    assert result["model"].startswith("ARIMA(1,1,1) + 3 yearly Fourier pairs")
    points = [p for e in result["evaluations"] for p in e["points"]] + result["forecast"]
    assert all(
        p["lower_95"] <= p["lower_80"] <= p["sarima"] <= p["upper_80"] <= p["upper_95"] for p in points
    )

    params = {"granularity": "weekly", "format": "csv"}
    table = client.get(f"{FORECASTS}/latest", params=params, headers=doctor)
    assert table.status_code == 200
    assert table.headers["content-type"].startswith("text/csv")
    assert 'filename="caresync-forecast-weekly-forecast.csv"' in table.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(table.content.decode("utf-8-sig"))))
    assert len(rows) == len(points)
    assert {r["section"] for r in rows} == {"test 70/30", "test 80/20", "forecast"}
    assert rows[-1]["actual"] == ""
    assert float(rows[-1]["upper_95"]) >= float(rows[-1]["sarima"])

    metrics = client.get(f"{FORECASTS}/latest", params={**params, "table": "metrics"}, headers=doctor)
    metric_rows = list(csv.DictReader(io.StringIO(metrics.content.decode("utf-8-sig"))))
    assert [(r["split"], r["model"]) for r in metric_rows] == [
        ("70/30", "SARIMA"),
        ("70/30", "seasonal naive"),
        ("80/20", "SARIMA"),
        ("80/20", "seasonal naive"),
    ]
    sarima_7030 = result["evaluations"][0]["sarima"]
    assert float(metric_rows[0]["mase"]) == pytest.approx(sarima_7030["mase"])

    as_json = client.get(
        f"{FORECASTS}/latest", params={"granularity": "weekly", "format": "json"}, headers=doctor
    )
    assert as_json.headers["content-type"] == "application/json"
    assert json.loads(as_json.content)["verdict"] == result["verdict"]


def test_too_little_history_is_422_with_how_much_is_needed(
    client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]]
) -> None:
    seed_history(cast.org.id, cast["patient"].patient_id, days=400)
    admin = sign_in(cast["admin"])
    monthly = client.post(FORECASTS, json={"granularity": "monthly"}, headers=admin)
    assert monthly.status_code == 422
    assert monthly.headers["content-type"].startswith("application/problem+json")
    assert "needs at least 35 whole months" in monthly.json()["detail"]
    weekly = client.post(FORECASTS, json={"granularity": "weekly"}, headers=admin)
    assert "needs at least 149 whole weeks" in weekly.json()["detail"]
    assert job_count() == 0
    bad = client.post(FORECASTS, json={"granularity": "daily"}, headers=admin)
    assert bad.status_code == 422


def test_another_organisation_is_refused_and_audited(
    client: TestClient, cast: Cast, make: Factory, sign_in: Callable[..., dict[str, str]]
) -> None:
    other = make.org()
    nurse = sign_in(cast["nurse"])
    for response in (
        client.post(FORECASTS, json={"organisation_id": str(other.id)}, headers=nurse),
        client.get(f"{FORECASTS}/latest", params={"organisation_id": str(other.id)}, headers=nurse),
        client.get(SURGES, params={"organisation_id": str(other.id)}, headers=nurse),
    ):
        assert response.status_code == 403
    denied = [(a, o) for a, o, _ in audit_actions(cast["nurse"].id)]
    assert denied == [
        ("analytics.forecast.run", "denied"),
        ("analytics.forecast.view", "denied"),
        ("analytics.surges.view", "denied"),
    ]


def test_surges_flag_the_spike(
    client: TestClient, cast: Cast, history: int, sign_in: Callable[..., dict[str, str]]
) -> None:
    admin = sign_in(cast["admin"])
    response = client.get(SURGES, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    top = body["surges"][0]
    assert (top["code"], top["organisation_id"], top["organisation_name"]) == (
        "A09",
        str(cast.org.id),
        cast.org.name,
    )
    assert top["level"] in ("high", "critical")
    assert top["signal"] == "observed"
    flu = next(s for s in body["surges"] if s["code"] == "J11")
    assert flu["level"] in ("low", "moderate")
    assert body["levels"][top["level"]] >= 1
    assert sum(body["levels"].values()) == 2
    assert [r["level"] for r in body["rules"]] == ["critical", "high", "moderate"]

    # before the spike, nothing stands out
    earlier = client.get(
        SURGES, params={"as_of": (utcnow() - timedelta(days=40)).date().isoformat()}, headers=admin
    )
    assert {s["level"] for s in earlier.json()["surges"]} <= {"low", "moderate"}

    exported = client.get(SURGES, params={"format": "csv"}, headers=admin)
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0]["code"] == "A09"
    assert rows[0]["level"] == top["level"]
    assert float(rows[0]["observed_ratio"]) == pytest.approx(top["observed"]["ratio"])
    for day in ((utcnow() + timedelta(days=3)).date().isoformat(), "9999-12-31"):
        future = client.get(SURGES, params={"as_of": day}, headers=admin)
        assert future.status_code == 422
        assert "cannot be in the future" in future.json()["detail"]
    assert ("analytics.surges.view", "success") in [(a, o) for a, o, _ in audit_actions(cast["admin"].id)]


# --- who may call what ----------------------------------------------------------------------------------


API_CASES: dict[tuple[str, str], Case[None]] = {
    ("POST", FORECASTS): Case(only(200, *VIEWERS), json=lambda _: {"granularity": "monthly"}),
    ("GET", f"{FORECASTS}/latest"): Case(only(200, *VIEWERS), query=lambda _: {"granularity": "monthly"}),
    ("GET", SURGES): Case(only(200, *VIEWERS)),
}


def test_matrix_covers_every_route() -> None:
    assert_covered((forecasting_api.router, API_CASES))


def test_forecasting_permission_matrix(
    client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]]
) -> None:
    seed_history(cast.org.id, cast["patient"].patient_id, days=3 * 365)
    # a forecast exists for the organisation: every viewer's request returns it (200, cached)
    assert (
        client.post(FORECASTS, json={"granularity": "monthly"}, headers=sign_in(cast["admin"])).status_code
        == 202
    )
    check_api(client, cast, None, API_CASES)
