"""Recording and reading encounters: the API (validation, access, audit, the live event), the clinicians'
page, the permission matrix, and the demo loader."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from caresync.analytics import demo
from caresync.analytics.encounters import api as encounters_api
from caresync.analytics.encounters import pages as encounters_pages
from caresync.analytics.models import Encounter, EncounterDiagnosis
from caresync.core import realtime
from caresync.core.audit import AuditEntry
from caresync.db import session_factory, transaction
from caresync.identity.models import Patient
from tests.conftest import Cast, Factory, web_login
from tests.permission_matrix import ANON, Case, Expect, assert_covered, check_api, check_pages, only, pages

URL = "/api/v1/encounters"


def _when(hours_ago: float = 1) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat()


def _body(patient_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": str(patient_id),
        "codes": ["J11", "I10"],
        "department": "general-practice",
        "outcome": "discharged",
        "started_at": _when(),
        "systolic_mmhg": 135,
        "heart_rate_bpm": 88,
        "temperature_c": 38.24,
        "spo2_pct": 96,
    }
    return {**body, **changes}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[uuid.UUID, dict[str, Any]]]:
    sent: list[tuple[uuid.UUID, dict[str, Any]]] = []
    monkeypatch.setattr(realtime, "publish", lambda user_id, event: sent.append((user_id, event)))
    return sent


def _audit(action: str) -> list[AuditEntry]:
    with transaction(session_factory()) as s:
        return list(s.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars())


def test_doctor_records_lists_and_reads_a_visit(
    client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]], published: list[Any]
) -> None:
    doctor = sign_in(cast["doctor"])
    patient_id = cast["patient"].patient_id
    response = client.post(URL, json=_body(patient_id), headers=doctor)
    assert response.status_code == 201, response.text
    created = response.json()
    assert [(d["code"], d["principal"]) for d in created["diagnoses"]] == [("J11", True), ("I10", False)]
    assert created["diagnoses"][0]["name"] == "Influenza, virus not identified"
    assert created["organisation_id"] == str(cast.org.id)
    assert created["temperature_c"] == 38.2
    assert created["source"] == "app"
    assert created["recorded_by"] == str(cast["doctor"].id)

    listed = client.get(URL, params={"patient_id": str(patient_id)}, headers=doctor)
    assert listed.status_code == 200
    assert [e["id"] for e in listed.json()["items"]] == [created["id"]]
    one = client.get(f"{URL}/{created['id']}", headers=doctor)
    assert one.json() == created
    # the patient sees their own visits too
    mine = client.get(URL, params={"patient_id": str(patient_id)}, headers=sign_in(cast["patient"]))
    assert [e["id"] for e in mine.json()["items"]] == [created["id"]]

    entries = _audit("encounter.create")
    assert [(e.patient_id, e.resource_id, e.outcome) for e in entries] == [
        (patient_id, created["id"], "success")
    ]
    assert {e.patient_id for e in _audit("encounter.list")} == {patient_id}
    assert {e.patient_id for e in _audit("encounter.read")} == {patient_id}


def test_the_organisations_analytics_viewers_are_told(
    client: TestClient,
    cast: Cast,
    make: Factory,
    sign_in: Callable[..., dict[str, str]],
    published: list[Any],
) -> None:
    elsewhere = make.staff("admin", make.org())
    cast.everyone()
    response = client.post(URL, json=_body(cast["patient"].patient_id), headers=sign_in(cast["nurse"]))
    assert response.status_code == 201
    recipients = {user_id for user_id, _ in published}
    assert recipients == {cast["admin"].id, cast["doctor"].id, cast["nurse"].id}
    assert elsewhere.id not in recipients  # another organisation's administrator
    event = published[0][1]
    assert event == {
        "type": "analytics.encounter",
        "organisation_id": str(cast.org.id),
        "started_at": response.json()["started_at"].replace("Z", "+00:00"),
        "codes": ["J11", "I10"],
    }


def test_nothing_is_announced_when_the_visit_is_refused(
    client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]], published: list[Any]
) -> None:
    response = client.post(
        URL, json=_body(cast["patient"].patient_id, codes=["XYZ"]), headers=sign_in(cast["doctor"])
    )
    assert response.status_code == 422
    assert published == []


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"codes": []}, "codes", "between 1 and 10"),
        (
            {
                "codes": [
                    "J11",
                    "I10",
                    "E11.9",
                    "R51",
                    "A09",
                    "N39.0",
                    "M54.5",
                    "J45.9",
                    "L50.9",
                    "F41.1",
                    "K35.8",
                ]
            },
            "codes",
            "between 1 and 10",
        ),
        ({"codes": ["J11", "X99"]}, "codes", "Unknown diagnosis code 'X99'"),
        ({"codes": ["J11", "j11"]}, "codes", "once"),
        ({"department": "surgery"}, "department", "one of emergency"),
        ({"outcome": "better"}, "outcome", "discharged"),
        ({"started_at": _when(-2)}, "started_at", "future"),
        ({"started_at": "2026-01-01T10:00:00"}, "started_at", "time zone"),
        ({"started_at": "1950-01-01T10:00:00+00:00"}, "started_at", "before the patient was born"),
        ({"spo2_pct": 101}, "spo2_pct", "50 to 100"),
        ({"temperature_c": 20}, "temperature_c", "25 to 45"),
        ({"heart_rate_bpm": 300}, "heart_rate_bpm", "20 to 250"),
        ({"systolic_mmhg": 30}, "systolic_mmhg", "40 to 300"),
        ({"appointment_id": str(uuid.uuid4())}, "appointment_id", "not the patient's"),
    ],
)
def test_invalid_visits_get_a_clear_422(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[..., dict[str, str]],
    changes: dict[str, Any],
    field: str,
    words: str,
) -> None:
    response = client.post(
        URL, json=_body(cast["patient"].patient_id, **changes), headers=sign_in(cast["doctor"])
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["field"] == field
    assert words in problem["detail"]
    with transaction(session_factory()) as s:
        assert s.execute(select(func.count(Encounter.id))).scalar_one() == 0


def test_who_may_record(client: TestClient, cast: Cast, sign_in: Callable[..., dict[str, str]]) -> None:
    body = _body(cast["patient"].patient_id)
    assert client.post(URL, json=body, headers=sign_in(cast["patient"])).status_code == 403
    assert client.post(URL, json=body, headers=sign_in(cast["pharmacist"])).status_code == 403
    assert client.post(URL, json=body, headers=sign_in(cast["admin"])).status_code == 403
    stranger = _body(cast.other_patient.id)
    assert client.post(URL, json=stranger, headers=sign_in(cast["doctor"])).status_code == 404
    denied = [e for e in _audit("encounter.create") if e.outcome == "denied"]
    assert cast.other_patient.id in {e.patient_id for e in denied}
    assert client.post(URL, json=body).status_code == 401


def test_mental_health_visits_stay_hidden_from_the_care_team_without_consent(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[..., dict[str, str]],
    encounter: Callable[..., uuid.UUID],
) -> None:
    patient_id = cast["patient"].patient_id
    shown = encounter(patient_id, cast.org.id, datetime.now(UTC) - timedelta(days=2), ("J11",))
    hidden = encounter(patient_id, cast.org.id, datetime.now(UTC) - timedelta(days=1), ("F32.9",))
    doctor = sign_in(cast["doctor"])
    listed = client.get(URL, params={"patient_id": str(patient_id)}, headers=doctor).json()["items"]
    assert [e["id"] for e in listed] == [str(shown)]
    assert client.get(f"{URL}/{hidden}", headers=doctor).status_code == 404
    own = client.get(URL, params={"patient_id": str(patient_id)}, headers=sign_in(cast["patient"])).json()
    assert [e["id"] for e in own["items"]] == [str(hidden), str(shown)]


def test_pages_of_visits(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[..., dict[str, str]],
    encounter: Callable[..., uuid.UUID],
) -> None:
    patient_id = cast["patient"].patient_id
    for day in range(3):
        encounter(patient_id, cast.org.id, datetime(2025, 3, 1 + day, 10, tzinfo=UTC))
    doctor = sign_in(cast["doctor"])
    first = client.get(URL, params={"patient_id": str(patient_id), "limit": 2}, headers=doctor).json()
    assert [e["started_at"][:10] for e in first["items"]] == ["2025-03-03", "2025-03-02"]
    rest = client.get(
        URL,
        params={"patient_id": str(patient_id), "limit": 2, "cursor": first["next_cursor"]},
        headers=doctor,
    ).json()
    assert [e["started_at"][:10] for e in rest["items"]] == ["2025-03-01"]
    assert rest["next_cursor"] is None


def _form(**changes: str) -> dict[str, str]:
    local = datetime.now(ZoneInfo("Europe/Lisbon")) - timedelta(hours=1)
    values = {
        "code": "A09",
        "other_codes": "I10, E11.9",
        "department": "emergency",
        "outcome": "admitted",
        "started_at": local.strftime("%Y-%m-%dT%H:%M"),
        "systolic_mmhg": "",
        "heart_rate_bpm": "104",
        "temperature_c": "38.4",
        "spo2_pct": "",
    }
    return {**values, **changes}


def test_the_page_records_a_visit_over_htmx(app: Any, cast: Cast) -> None:
    patient_id = cast["patient"].patient_id
    with TestClient(app) as browser:
        csrf = web_login(browser, cast["nurse"])
        page = browser.get(f"/patients/{patient_id}/encounters")
        assert page.status_code == 200
        assert 'data-testid="encounter-form"' in page.text
        assert "No visits yet" in page.text
        headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
        bad = browser.post(f"/patients/{patient_id}/encounters", data=_form(spo2_pct="120"), headers=headers)
        assert bad.status_code == 200
        assert "Enter a value from 50 to 100 %" in bad.text
        assert "<html" not in bad.text  # the panel only
        done = browser.post(f"/patients/{patient_id}/encounters", data=_form(), headers=headers)
        assert done.status_code == 200
        assert "Visit recorded." in done.text
        assert "Infectious gastroenteritis and colitis" in done.text
    with transaction(session_factory()) as s:
        visit = s.execute(select(Encounter)).scalar_one()
        assert visit.heart_rate_bpm == 104
        assert visit.systolic_mmhg is None
        assert sorted((d.code, d.principal) for d in visit.diagnoses) == [
            ("A09", True),
            ("E11.9", False),
            ("I10", False),
        ]


def test_the_page_shows_no_form_to_the_patient(app: Any, cast: Cast) -> None:
    with TestClient(app) as browser:
        web_login(browser, cast["patient"])
        page = browser.get(f"/patients/{cast['patient'].patient_id}/encounters")
        assert page.status_code == 200
        assert "encounter-form" not in page.text


# --- permission matrix --------------------------------------------------------------------------------------


@dataclass
class World:
    patient_id: uuid.UUID
    other_patient_id: uuid.UUID
    encounter_id: uuid.UUID
    other_encounter_id: uuid.UUID


@pytest.fixture
def world(cast: Cast, encounter: Callable[..., uuid.UUID]) -> World:
    when = datetime.now(UTC) - timedelta(days=1)
    patient_id = cast["patient"].patient_id
    return World(
        patient_id=patient_id,
        other_patient_id=cast.other_patient.id,
        encounter_id=encounter(patient_id, cast.org.id, when),
        other_encounter_id=encounter(cast.other_patient.id, cast.org.id, when),
    )


def readers(code: int, anonymous: int = 401) -> Expect:
    """The patient and their care team read; other roles are told the patient does not exist."""
    return only(code, "doctor", "nurse", "patient", others=404, anonymous=anonymous)


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("POST", URL): Case(only(201, "doctor", "nurse"), json=lambda w: _body(w.patient_id)),
    ("GET", URL): Case(readers(200), query=lambda w: {"patient_id": str(w.patient_id)}),
    ("GET", URL + "/{encounter_id}"): Case(
        readers(200),
        path=lambda w: {"encounter_id": str(w.encounter_id)},
        foreign=lambda w: {"encounter_id": str(w.other_encounter_id)},
    ),
}
PAGE = "/patients/{patient_id}/encounters"
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", PAGE): Case(
        pages(readers(200)),
        path=lambda w: {"patient_id": str(w.patient_id)},
        foreign=lambda w: {"patient_id": str(w.other_patient_id)},
    ),
    ("POST", PAGE): Case(
        pages(only(303, "doctor", "nurse")),
        path=lambda w: {"patient_id": str(w.patient_id)},
        data=lambda _w: _form(),
        foreign=lambda w: {"patient_id": str(w.other_patient_id)},
    ),
}


def test_matrices_cover_every_route() -> None:
    assert_covered((encounters_api.router, API_CASES), (encounters_pages.router, PAGE_CASES))


def test_encounters_api_permission_matrix(client: TestClient, cast: Cast, world: World) -> None:
    check_api(client, cast, world, API_CASES, secrets=("Zwartkopf",))


def test_encounters_page_permission_matrix(app: Any, cast: Cast, world: World) -> None:
    check_pages(app, cast, world, PAGE_CASES, secrets=("Zwartkopf",))
    assert ANON in PAGE_CASES[("GET", PAGE)].expect


# --- the demo loader ----------------------------------------------------------------------------------------


def test_demo_load_writes_years_of_activity_for_the_real_patients(make: Factory) -> None:
    hospital, clinic, blood_bank = make.org(), make.org(kind="clinic"), make.org(kind="blood_bank")
    doctors = {org.id: make.staff("doctor", org) for org in (hospital, clinic, blood_bank)}
    homes = [hospital] * 30 + [clinic] * 20
    for i, org in enumerate(homes):
        patient = make.patient(sex="male" if i % 2 else "female", birth_date=datetime(1940 + i, 3, 1).date())
        make.care(doctors[org.id], patient)
    started = time.perf_counter()
    with transaction(session_factory()) as s:
        written = demo.load(s, years=3, seed=4)
    elapsed = time.perf_counter() - started
    assert elapsed < 10, f"loading took {elapsed:.1f} s"
    with transaction(session_factory()) as s:
        count = s.execute(
            select(func.count(Encounter.id)).where(Encounter.source == "synthetic")
        ).scalar_one()
        assert count == written > 2 * 3 * 365 * 1.5  # two clinics, at least 2 visits a day each
        per_org = dict(
            s.execute(
                select(Encounter.organisation_id, func.count()).group_by(Encounter.organisation_id)
            ).all()
        )
        assert set(per_org) == {hospital.id, clinic.id}  # not the blood bank
        assert per_org[hospital.id] > per_org[clinic.id]  # more patients, more visits
        deliveries = s.execute(
            select(Patient.sex)
            .join(Encounter, Encounter.patient_id == Patient.id)
            .join(EncounterDiagnosis, EncounterDiagnosis.encounter_id == Encounter.id)
            .where(EncounterDiagnosis.code == "O80")
        ).scalars()
        assert set(deliveries) <= {"female"}
        newest = s.execute(select(func.max(Encounter.started_at))).scalar_one()
        assert newest <= datetime.now(UTC)
    print(f"demo.load: {written} encounters in {elapsed:.2f} s")
    with transaction(session_factory()) as s:  # loading again replaces, with the same data for the seed
        assert demo.load(s, years=3, seed=4) == written
        assert s.execute(select(func.count(Encounter.id))).scalar_one() == written
