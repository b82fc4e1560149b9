"""Directory search over the API: each filter, ranking by distance from the patient's home (nearest first),
"a free slot before", the next free slot shown, pagination, and clear errors for bad codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import API
from tests.scheduling.test_booking import MONDAY, at

SEARCH = f"{API}/scheduling/practitioners"

# Around Lisbon: the patient lives at the first point; clinics at increasing distances.
HOME = (38.7369, -9.1427)
PLACES = {
    "near": (38.7400, -9.1400),
    "middle": (38.5244, -8.8882),
    "far": (41.1496, -8.6109),
}  # ~0.4, 32, 270 km


@pytest.fixture
def directory(sched: Any, make: Any) -> dict[str, Any]:
    """Five practitioners at three clinics with different specialties, plans, languages and modes."""
    clinics = {
        name: sched.location(name=f"{name} clinic", latitude=lat, longitude=lon)
        for name, (lat, lon) in PLACES.items()
    }
    people = {
        "far_cardio": sched.practitioner(
            specialties=("cardiology",), insurance=("medis",), full_name="Dr Far Heart"
        ),
        "near_cardio": sched.practitioner(
            specialties=("cardiology",), insurance=("sns",), languages=("pt", "en"), full_name="Dr Near Heart"
        ),
        "middle_cardio": sched.practitioner(
            specialties=("cardiology",), insurance=("medis", "sns"), video=True, full_name="Dr Middle Heart"
        ),
        "near_skin": sched.practitioner(
            specialties=("dermatology",), insurance=("medis",), languages=("fr",), full_name="Dr Near Skin"
        ),
        "no_hours": sched.practitioner(specialties=("cardiology",), full_name="Dr Unlisted"),
    }
    sched.hours(people["far_cardio"], clinics["far"])
    sched.hours(people["near_cardio"], clinics["near"], weekdays=(4,))  # Fridays only: later first slot
    sched.hours(people["middle_cardio"], clinics["middle"])
    sched.hours(people["near_skin"], clinics["near"])
    return people


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["practitioner"]["display_name"] for item in response.json()["items"]]


def test_patients_see_the_nearest_first_from_their_home(
    client: TestClient, directory: dict[str, Any], make: Any, sign_in: Any
) -> None:
    patient = make.patient_user(latitude=HOME[0], longitude=HOME[1])
    response = client.get(SEARCH, params={"specialty": "cardiology"}, headers=sign_in(patient))
    assert names(response) == ["Dr Near Heart", "Dr Middle Heart", "Dr Far Heart"]  # never the unlisted one
    distances = [item["distance_km"] for item in response.json()["items"]]
    assert distances[0] < 1 < distances[1] < 40 < 200 < distances[2]
    assert response.json()["items"][0]["location"]["name"] == "near clinic"


def test_explicit_point_sorts_and_filters(
    client: TestClient, directory: dict[str, Any], make: Any, sign_in: Any
) -> None:
    headers = sign_in(make.staff("nurse"))
    far = PLACES["far"]
    by_far = client.get(
        SEARCH,
        params={"specialty": "cardiology", "lat": far[0], "lon": far[1], "sort": "distance"},
        headers=headers,
    )
    assert names(by_far)[0] == "Dr Far Heart"
    assert names(
        client.get(
            SEARCH, params={"insurance": "medis", "specialty": "cardiology", "sort": "name"}, headers=headers
        )
    ) == [
        "Dr Far Heart",
        "Dr Middle Heart",
    ]
    assert names(client.get(SEARCH, params={"language": "fr"}, headers=headers)) == ["Dr Near Skin"]
    assert names(client.get(SEARCH, params={"mode": "video"}, headers=headers)) == ["Dr Middle Heart"]
    assert names(client.get(SEARCH, params={"q": "skin"}, headers=headers)) == ["Dr Near Skin"]
    assert names(client.get(SEARCH, params={"q": "derma"}, headers=headers)) == [
        "Dr Near Skin"
    ]  # specialty names match too
    assert names(client.get(SEARCH, params={"q": "100%_"}, headers=headers)) == []  # wildcards are literal


def test_next_free_slot_and_free_before(
    client: TestClient, directory: dict[str, Any], make: Any, sign_in: Any, sched: Any
) -> None:
    headers = sign_in(make.staff("nurse"))
    everyone = client.get(
        SEARCH, params={"specialty": "cardiology", "sort": "next_free"}, headers=headers
    ).json()["items"]
    frees = [item["practitioner"]["next_free_slot_at"] for item in everyone]
    assert all(frees)
    assert frees == sorted(frees)
    assert everyone[-1]["practitioner"]["display_name"] == "Dr Near Heart"  # works Fridays only
    # leave from today over the middle cardiologist's next weeks pushes their next free slot back
    sched.time_off(
        directory["middle_cardio"], datetime.now(UTC) - timedelta(days=1), at(MONDAY + timedelta(days=14), 0)
    )
    soon = (MONDAY + timedelta(days=7)).isoformat()
    names_soon = names(
        client.get(SEARCH, params={"specialty": "cardiology", "free_before": soon}, headers=headers)
    )
    assert "Dr Middle Heart" not in names_soon
    assert "Dr Far Heart" in names_soon


def test_pagination_walks_every_result_once(
    client: TestClient, directory: dict[str, Any], make: Any, sign_in: Any
) -> None:
    headers = sign_in(make.patient_user())
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "sort": "name", **({"cursor": cursor} if cursor else {})}
        page = client.get(SEARCH, params=params, headers=headers).json()
        assert page["total"] == 4
        seen += [item["practitioner"]["display_name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen)
    assert len(set(seen)) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"specialty": "astrology"}, "specialty"),
        ({"insurance": "acme"}, "insurance"),
        ({"language": "xx"}, "language"),
        ({"mode": "telepathy"}, "mode"),
        ({"sort": "random"}, "sort"),
        ({"lat": 10}, "lat"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_criteria_are_clear_422s(
    client: TestClient, make: Any, sign_in: Any, params: dict[str, Any], field: str
) -> None:
    response = client.get(SEARCH, params=params, headers=sign_in(make.patient_user()))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


def test_the_periodic_job_refreshes_next_free_slots_that_have_started(
    directory: dict[str, Any], tx: Any
) -> None:
    from caresync.scheduling.jobs import refresh_stale_next_free
    from caresync.scheduling.models import Practitioner

    doctor = directory["far_cardio"]
    with tx() as s:
        s.get(Practitioner, doctor.id).next_free_slot_at = datetime.now(UTC) - timedelta(hours=1)
    assert refresh_stale_next_free.call_local() == 1
    with tx() as s:
        fresh = s.get(Practitioner, doctor.id).next_free_slot_at
    assert fresh is not None
    assert fresh > datetime.now(UTC)
    assert refresh_stale_next_free.call_local() == 0
