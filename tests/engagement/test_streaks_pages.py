"""The patient's activity pages: ``/me/activities`` (log with one button, HTMX card updates, custom
activities, undo with confirmation, badges, heatmap, empty state) and the dashboard panel."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from caresync.engagement.models import ActivityLog
from caresync.engagement.streaks.demo import create_demo_streaks
from caresync.identity.models import Patient
from tests.conftest import Factory, Person, web_login

Tx = Callable[[], AbstractContextManager[Session]]
PAGE = "/me/activities"


def htmx(csrf: str) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": csrf}


def logged(tx: Tx, person: Person) -> list[tuple[str, str, str]]:
    with tx() as s:
        rows = s.execute(
            select(ActivityLog.activity, ActivityLog.name, ActivityLog.amount).where(
                ActivityLog.patient_id == person.patient_id
            )
        )
        return sorted((a, n, m) for a, n, m in rows)


def card(html: str, card_id: str) -> str:
    """The HTML of one activity card (up to the next card)."""
    start = html.index(f'id="{card_id}"')
    following = html.find('data-testid="activity-card"', html.index(">", start))
    return html[start : following if following > 0 else len(html)]


def test_new_patient_sees_an_empty_state_and_a_button_per_activity(client: TestClient, make: Factory) -> None:
    web_login(client, make.patient_user())
    page = client.get(PAGE)
    assert page.status_code == 200
    assert 'data-testid="activities-empty"' in page.text
    assert "Start your first streak today" in page.text
    assert re.findall(r'data-testid="activity-card" data-activity="(\w+)"', page.text) == [
        "exercise",
        "meditation",
        "medication",
        "water",
    ]
    assert page.text.count('data-testid="log-button"') == 4
    assert "Nothing logged in these weeks" in page.text
    assert 'data-testid="latest-badge"' not in page.text


def test_logging_with_htmx_updates_the_card_in_place(client: TestClient, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    csrf = web_login(client, patient)
    response = client.post(f"{PAGE}/log", data={"activity": "water", "amount": "2 l"}, headers=htmx(csrf))
    assert response.status_code == 200, response.text
    assert "<html" not in response.text
    assert response.text.lstrip().startswith("<div")
    water = card(response.text, "activity-water")
    assert 'data-testid="today-state">Done today' in water
    assert 'data-testid="current-streak">1<' in water
    assert "Logged today (2 l)" in water
    assert 'data-testid="undo-button"' in water
    assert 'id="activity-heatmap" hx-swap-oob="true"' in response.text
    assert 'data-count="1"' in response.text
    assert "Logged. Well done!" in response.text
    assert logged(tx, patient) == [("water", "", "2 l")]


def test_logging_without_javascript_redirects_back(client: TestClient, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    csrf = web_login(client, patient)
    response = client.post(
        f"{PAGE}/log", data={"activity": "meditation", "csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == PAGE
    page = client.get(PAGE)
    assert 'data-testid="today-state">Done today' in card(page.text, "activity-meditation")
    assert 'data-testid="activities-empty"' not in page.text
    assert logged(tx, patient) == [("meditation", "", "")]


def test_forms_without_the_csrf_token_are_refused(client: TestClient, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    web_login(client, patient)
    assert client.post(f"{PAGE}/log", data={"activity": "water"}).status_code == 403
    assert logged(tx, patient) == []


def test_adding_a_custom_activity_shows_its_card(client: TestClient, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    csrf = web_login(client, patient)
    data = {"activity": "custom", "name": "  Evening   walk ", "target": "board"}
    response = client.post(f"{PAGE}/log", data=data, headers=htmx(csrf))
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#activity-board"
    assert 'id="activity-board"' in response.text
    assert re.search(r'data-activity="custom" data-name="Evening walk"', response.text)
    assert logged(tx, patient) == [("custom", "Evening walk", "")]


def test_custom_activity_errors_are_shown_next_to_the_field(
    client: TestClient, make: Factory, tx: Tx
) -> None:
    patient = make.patient_user()
    csrf = web_login(client, patient)
    data = {"activity": "custom", "name": "", "target": "board"}
    response = client.post(f"{PAGE}/log", data=data, headers=htmx(csrf))
    assert response.status_code == 200  # HTMX swaps 200s only
    assert response.headers["HX-Retarget"] == "#activity-board"
    assert 'id="e-name"' in response.text
    assert "Give your activity a name." in response.text
    plain = client.post(f"{PAGE}/log", data={**data, "name": "z" * 61, "csrf_token": csrf})
    assert plain.status_code == 422
    assert "60 characters or fewer" in plain.text
    assert logged(tx, patient) == []


def test_undo_asks_first_and_removes_todays_entry(client: TestClient, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    csrf = web_login(client, patient)
    client.post(f"{PAGE}/log", data={"activity": "exercise"}, headers=htmx(csrf))
    page = client.get(PAGE).text
    exercise = card(page, "activity-exercise")
    action = re.search(r'hx-post="(/me/activities/[0-9a-f-]+/undo)"', exercise)
    assert action is not None
    assert "hx-confirm=\"Remove today's entry for Exercise?" in exercise
    response = client.post(action.group(1), headers=htmx(csrf))
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#activity-board"
    assert "Removed today&#39;s entry for Exercise." in response.text
    assert 'data-testid="log-button"' in card(response.text, "activity-exercise")
    assert logged(tx, patient) == []


def test_undo_of_an_earlier_day_is_refused_with_a_reason(client: TestClient, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    with tx() as s:
        entry = ActivityLog(
            patient_id=patient.patient_id,
            activity="water",
            name="",
            day=datetime.now(UTC).date() - timedelta(days=1),
            amount="",
        )
        s.add(entry)
        s.flush()
        entry_id = entry.id
    csrf = web_login(client, patient)
    response = client.post(f"{PAGE}/{entry_id}/undo", data={"csrf_token": csrf})
    assert response.status_code == 409
    assert "Only today&#39;s entries can be undone" in response.text
    assert len(logged(tx, patient)) == 1


def test_reaching_a_badge_shows_it_with_its_colour(client: TestClient, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    today = datetime.now(UTC).date()
    with tx() as s:
        for offset in range(1, 7):
            s.add(
                ActivityLog(
                    patient_id=patient.patient_id,
                    activity="exercise",
                    name="",
                    day=today - timedelta(days=offset),
                    amount="",
                )
            )
    csrf = web_login(client, patient)
    response = client.post(f"{PAGE}/log", data={"activity": "exercise"}, headers=htmx(csrf))
    assert "New badge: Bronze — 7 days of exercise!" in response.text
    exercise = card(response.text, "activity-exercise")
    assert 'class="badge badge-level badge-level-7" data-testid="badge" data-days="7"' in exercise
    assert "Next badge: <strong>Silver</strong> (15 days) · 8 more days" in exercise
    assert 'id="activity-latest" hx-swap-oob="true"' in response.text
    page = client.get(PAGE).text
    assert "Bronze — 7 days of exercise" in page
    assert re.search(r'data-day="\d{4}-\d\d-\d\d" data-count="1"', page)


def test_dashboard_panel_is_a_fragment_with_streaks_and_the_latest_badge(
    client: TestClient, make: Factory, tx: Tx
) -> None:
    patient = make.patient_user()
    web_login(client, patient)
    empty = client.get(f"{PAGE}/panel")
    assert empty.status_code == 200
    assert "<html" not in empty.text
    assert "No streaks yet" in empty.text
    with tx() as s:
        profile = s.get(Patient, patient.patient_id)
        assert profile is not None
        create_demo_streaks(s, profile, datetime.now(UTC).date(), random.Random(7))
    panel = client.get(f"{PAGE}/panel").text
    assert 'data-testid="latest-badge"' in panel
    counts = dict(re.findall(r'data-activity="(\w+)">.*?class="streak-count">(\d+)<', panel, re.S))
    assert counts == {"exercise": "12", "meditation": "34", "medication": "5", "water": "95"}
    assert "Log today to keep it" in panel  # exercise and meditation wait for today's log


def test_staff_have_no_activity_pages(client: TestClient, make: Factory) -> None:
    web_login(client, make.staff("doctor"))
    assert client.get(PAGE).status_code == 403
    assert client.get(f"{PAGE}/panel").status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get(PAGE, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_page_works_for_a_clinician_free_patient_with_many_custom_activities(
    client: TestClient, make: Factory, tx: Tx
) -> None:
    patient: Any = make.patient_user()
    csrf = web_login(client, patient)
    for name in ("Reading", "Stretching", '<script>alert("x")</script>'):
        data = {"activity": "custom", "name": name, "target": "board"}
        assert client.post(f"{PAGE}/log", data=data, headers=htmx(csrf)).status_code == 200
    page = client.get(PAGE).text
    assert '<script>alert("x")</script>' not in page
    assert "&lt;script&gt;alert(" in page
    assert page.count('data-testid="activity-card"') == 7
