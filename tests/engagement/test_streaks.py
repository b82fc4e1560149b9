"""Activity streaks through the service and the API: local days in the patient's time zone (midnight, DST),
missed days, idempotent logging, custom names, badges and their notification, undo, who may read and
write, the audit trail, and concurrent logging of the same activity."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.notify import Notification
from caresync.engagement.models import ActivityLog, BadgeAward
from caresync.engagement.streaks import rules, service
from caresync.engagement.streaks.demo import create_demo_streaks
from caresync.identity import patients as patient_service
from caresync.identity.models import Patient
from caresync.records.models import RecordConsent
from tests.conftest import Factory, Person, login, run_coroutine

Tx = Callable[[], AbstractContextManager[Session]]
A = "/api/v1/activities"
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # a day without DST changes anywhere used here


def as_principal(person: Person) -> Principal:
    """The principal a service sees for ``person``."""
    return Principal(
        user_id=person.id,
        role=person.role,
        full_name=person.full_name,
        organisation_id=person.user.organisation_id,
        patient_id=person.patient.id if person.patient else None,
    )


def local(zone: str, year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone`` as an aware UTC instant (``fold=1``: the second of a repeated hour)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def log(
    tx: Tx, person: Person, activity: str, *, at: datetime, name: str = "", amount: str = ""
) -> service.Logged:
    with tx() as s:
        return service.log_activity(s, as_principal(person), activity, name, amount, now=at)


def board(tx: Tx, person: Person, *, at: datetime, patient_id: uuid.UUID | None = None) -> service.Board:
    with tx() as s:
        return service.streaks(s, as_principal(person), patient_id, now=at)


def streak_of(result: service.Board, activity: str, name: str = "") -> service.Streak:
    return next(s for s in result.streaks if (s.activity, s.name) == (activity, name))


def seed(tx: Tx, person: Person, activity: str, days: Iterable[date], name: str = "") -> None:
    """History rows written directly (the service never back-dates)."""
    with tx() as s:
        for day in days:
            s.add(ActivityLog(patient_id=person.patient_id, activity=activity, name=name, day=day, amount=""))


def award(tx: Tx, person: Person, activity: str, thresholds: Iterable[int], on: date) -> None:
    with tx() as s:
        for days in thresholds:
            s.add(
                BadgeAward(patient_id=person.patient_id, activity=activity, name="", days=days, awarded_on=on)
            )


def before(day: date, count: int) -> list[date]:
    """The ``count`` days just before ``day``."""
    return [day - timedelta(days=offset) for offset in range(1, count + 1)]


def held_badges(tx: Tx, person: Person, activity: str) -> list[tuple[int, date]]:
    with tx() as s:
        rows = s.execute(
            select(BadgeAward.days, BadgeAward.awarded_on)
            .where(BadgeAward.patient_id == person.patient_id, BadgeAward.activity == activity)
            .order_by(BadgeAward.days)
        )
        return [(days, on) for days, on in rows]


def entries_of(tx: Tx, person: Person) -> list[tuple[str, str, date]]:
    with tx() as s:
        rows = s.execute(
            select(ActivityLog.activity, ActivityLog.name, ActivityLog.day)
            .where(ActivityLog.patient_id == person.patient_id)
            .order_by(ActivityLog.day)
        )
        return [(a, n, d) for a, n, d in rows]


def audits(tx: Tx, actor: Person, prefix: str = "activity.") -> list[tuple[str, str, bool, uuid.UUID | None]]:
    with tx() as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.outcome, AuditEntry.flagged, AuditEntry.patient_id)
            .where(AuditEntry.actor_id == actor.id, AuditEntry.action.startswith(prefix))
            .order_by(AuditEntry.seq)
        )
        return [(a, o, bool(f), p) for a, o, f, p in rows]


def badge_notes(tx: Tx, person: Person) -> list[tuple[str, str]]:
    with tx() as s:
        rows = s.execute(
            select(Notification.title, Notification.link)
            .where(Notification.user_id == person.id, Notification.kind == "badge")
            .order_by(Notification.created_at)
        )
        return [(t, link) for t, link in rows]


# --- local days -------------------------------------------------------------------------------------------


def test_same_utc_instant_is_a_different_local_day_in_auckland_and_los_angeles(make: Factory, tx: Tx) -> None:
    auckland = make.patient_user(timezone="Pacific/Auckland")
    los_angeles = make.patient_user(timezone="America/Los_Angeles")
    instant = datetime(
        2026, 3, 10, 11, 30, tzinfo=UTC
    )  # 00:30 on the 11th in Auckland, 04:30 on the 10th in LA
    assert log(tx, auckland, "water", at=instant).entry.day == date(2026, 3, 11)
    assert log(tx, los_angeles, "water", at=instant).entry.day == date(2026, 3, 10)
    assert board(tx, auckland, at=instant).today == date(2026, 3, 11)
    assert board(tx, los_angeles, at=instant).today == date(2026, 3, 10)


@pytest.mark.parametrize("zone", ["Pacific/Auckland", "America/Los_Angeles", "UTC"])
def test_logging_just_before_and_just_after_local_midnight_counts_two_days(
    make: Factory, tx: Tx, zone: str
) -> None:
    patient = make.patient_user(timezone=zone)
    first = log(tx, patient, "meditation", at=local(zone, 2026, 6, 9, 23, 59))
    second = log(tx, patient, "meditation", at=local(zone, 2026, 6, 10, 0, 1))
    assert (first.created, second.created) == (True, True)
    assert [e[2] for e in entries_of(tx, patient)] == [date(2026, 6, 9), date(2026, 6, 10)]
    result = streak_of(board(tx, patient, at=local(zone, 2026, 6, 10, 0, 2)), "meditation")
    assert (result.current, result.longest, result.logged_today) == (2, 2, True)


def test_spring_forward_day_in_lisbon_neither_breaks_nor_doubles_the_streak(make: Factory, tx: Tx) -> None:
    patient = make.patient_user(timezone="Europe/Lisbon")
    zone = "Europe/Lisbon"
    for day in (27, 28, 30, 31):
        log(tx, patient, "exercise", at=local(zone, 2026, 3, day, 21, 0))
    # 29 March 2026 has 23 hours (01:00 -> 02:00): log at both ends of the short day
    early = log(tx, patient, "exercise", at=local(zone, 2026, 3, 29, 0, 30))
    late = log(tx, patient, "exercise", at=local(zone, 2026, 3, 29, 23, 30))
    assert early.entry.day == late.entry.day == date(2026, 3, 29)
    assert late.created is False
    assert len(entries_of(tx, patient)) == 5
    result = streak_of(board(tx, patient, at=local(zone, 2026, 3, 31, 22, 0)), "exercise")
    assert (result.current, result.longest) == (5, 5)


def test_fall_back_day_in_lisbon_neither_breaks_nor_doubles_the_streak(make: Factory, tx: Tx) -> None:
    patient = make.patient_user(timezone="Europe/Lisbon")
    zone = "Europe/Lisbon"
    log(tx, patient, "water", at=local(zone, 2026, 10, 24, 23, 59))
    # 25 October 2026 has 25 hours: 01:30 happens twice (summer time, then winter time)
    first = log(tx, patient, "water", at=local(zone, 2026, 10, 25, 1, 30, fold=0))
    repeat = log(tx, patient, "water", at=local(zone, 2026, 10, 25, 1, 30, fold=1))
    last_minute = log(tx, patient, "water", at=local(zone, 2026, 10, 25, 23, 59))
    assert repeat.entry.id == first.entry.id == last_minute.entry.id
    log(tx, patient, "water", at=local(zone, 2026, 10, 26, 0, 1))
    assert [e[2] for e in entries_of(tx, patient)] == [
        date(2026, 10, 24),
        date(2026, 10, 25),
        date(2026, 10, 26),
    ]
    assert streak_of(board(tx, patient, at=local(zone, 2026, 10, 26, 8, 0)), "water").current == 3


# --- streaks ----------------------------------------------------------------------------------------------


def test_a_missed_day_resets_the_current_streak_but_keeps_the_longest(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    today = NOON.date()
    seed(tx, patient, "exercise", [today - timedelta(days=offset) for offset in range(3, 11)])  # 8 days
    # two days ago nobody logged: yesterday's streak is gone
    assert streak_of(board(tx, patient, at=NOON), "exercise").current == 0
    log(tx, patient, "exercise", at=NOON)
    result = streak_of(board(tx, patient, at=NOON), "exercise")
    assert (result.current, result.longest, result.total_days) == (1, 8, 9)


def test_today_not_logged_yet_keeps_yesterdays_streak_until_the_day_is_over(make: Factory, tx: Tx) -> None:
    patient = make.patient_user(timezone="America/Los_Angeles")
    zone = "America/Los_Angeles"
    for day in (7, 8, 9):
        log(tx, patient, "meditation", at=local(zone, 2026, 6, day, 20, 0))
    alive = streak_of(board(tx, patient, at=local(zone, 2026, 6, 10, 23, 59)), "meditation")
    assert (alive.current, alive.logged_today) == (3, False)
    broken = streak_of(board(tx, patient, at=local(zone, 2026, 6, 11, 0, 0)), "meditation")
    assert (broken.current, broken.longest) == (0, 3)


def test_logging_the_same_activity_twice_a_day_returns_the_first_entry(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    first = log(tx, patient, "water", at=NOON, amount="1 l")
    again = log(tx, patient, "water", at=NOON + timedelta(hours=3), amount="2 l")
    assert (first.created, again.created) == (True, False)
    assert again.entry.id == first.entry.id
    assert again.entry.amount == "1 l"
    assert len(entries_of(tx, patient)) == 1
    assert [a[:2] for a in audits(tx, patient)] == [("activity.log", "success"), ("activity.log", "success")]


def test_new_patient_sees_every_built_in_activity_at_zero(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    result = board(tx, patient, at=NOON)
    assert [s.activity for s in result.streaks] == ["exercise", "meditation", "medication", "water"]
    assert all((s.current, s.longest, s.logged_today, s.badges) == (0, 0, False, []) for s in result.streaks)
    assert all((s.next_badge, s.days_to_go) == (7, 7) for s in result.streaks)
    assert not result.has_history
    assert result.latest_badge is None


# --- custom activities ------------------------------------------------------------------------------------


def test_custom_activity_names_are_cleaned_and_matched_ignoring_case(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    first = log(tx, patient, "custom", name="  Morning   Yoga ", at=NOON)
    again = log(tx, patient, "custom", name="morning yoga", at=NOON)
    assert first.entry.name == "Morning Yoga"
    assert (again.created, again.entry.id) == (False, first.entry.id)
    tomorrow = log(tx, patient, "custom", name="MORNING YOGA", at=NOON + timedelta(days=1))
    assert tomorrow.entry.name == "Morning Yoga"
    yoga = streak_of(board(tx, patient, at=NOON + timedelta(days=1)), "custom", "Morning Yoga")
    assert (yoga.label, yoga.current) == ("Morning Yoga", 2)


@pytest.mark.parametrize(
    ("activity", "name", "field", "message"),
    [
        pytest.param("custom", "", "name", "Give your activity a name.", id="custom-without-name"),
        pytest.param("custom", "   \t ", "name", "Give your activity a name.", id="custom-blank-name"),
        pytest.param("custom", "x" * 61, "name", "60 characters", id="custom-name-too-long"),
        pytest.param(
            "water", "Sparkling", "name", "Only custom activities have a name.", id="name-on-built-in"
        ),
        pytest.param("skydiving", "", "activity", "Choose one of", id="unknown-activity"),
    ],
)
def test_invalid_activities_are_refused(
    make: Factory, tx: Tx, activity: str, name: str, field: str, message: str
) -> None:
    patient = make.patient_user()
    with pytest.raises(ValidationFailed, match=message) as refused:
        log(tx, patient, activity, name=name, at=NOON)
    assert refused.value.extra["field"] == field
    assert entries_of(tx, patient) == []


def test_sixty_character_custom_name_is_accepted(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    assert log(tx, patient, "custom", name="y" * 60, at=NOON).entry.name == "y" * 60


# --- badges -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("threshold", "lower"), [(7, ()), (15, (7,)), (30, (7, 15)), (90, (7, 15, 30))])
def test_badge_is_awarded_exactly_when_the_streak_reaches_its_threshold(
    make: Factory, tx: Tx, threshold: int, lower: tuple[int, ...]
) -> None:
    patient = make.patient_user()
    yesterday, today = NOON - timedelta(days=1), NOON
    seed(tx, patient, "meditation", before(yesterday.date(), threshold - 2))
    award(tx, patient, "meditation", lower, yesterday.date() - timedelta(days=2))
    assert log(tx, patient, "meditation", at=yesterday).new_badges == []  # threshold - 1 days
    assert [d for d, _on in held_badges(tx, patient, "meditation")] == list(lower)
    earned = log(tx, patient, "meditation", at=today)
    assert [b.days for b in earned.new_badges] == [threshold]
    assert held_badges(tx, patient, "meditation")[-1] == (threshold, today.date())
    result = streak_of(board(tx, patient, at=today), "meditation")
    assert result.current == threshold
    assert result.badges == [*lower, threshold]


def test_a_badge_is_never_awarded_twice(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    seed(tx, patient, "exercise", before(NOON.date(), 6))
    assert [b.days for b in log(tx, patient, "exercise", at=NOON).new_badges] == [7]
    todays = streak_of(board(tx, patient, at=NOON), "exercise").today_entry
    assert todays is not None
    with tx() as s:  # undo today and log again: the badge stays, and is not given again
        service.undo(s, as_principal(patient), todays.id, now=NOON)
    assert held_badges(tx, patient, "exercise") == [(7, NOON.date())]
    assert log(tx, patient, "exercise", at=NOON).new_badges == []
    # break the streak and build another seven days: still one Bronze
    later = NOON + timedelta(days=10)
    seed(tx, patient, "exercise", before(later.date(), 6))
    assert log(tx, patient, "exercise", at=later).new_badges == []
    assert held_badges(tx, patient, "exercise") == [(7, NOON.date())]
    assert len(badge_notes(tx, patient)) == 1


def test_a_longer_unrewarded_streak_earns_every_badge_it_reached_on_the_right_days(
    make: Factory, tx: Tx
) -> None:
    patient = make.patient_user()
    today = NOON.date()
    seed(tx, patient, "water", before(today, 34))  # 35 days with today's log
    earned = log(tx, patient, "water", at=NOON)
    assert [b.days for b in earned.new_badges] == [7, 15, 30]
    first_day = today - timedelta(days=34)
    assert held_badges(tx, patient, "water") == [
        (7, first_day + timedelta(days=6)),
        (15, first_day + timedelta(days=14)),
        (30, first_day + timedelta(days=29)),
    ]
    result = streak_of(board(tx, patient, at=NOON), "water")
    assert (result.next_badge, result.days_to_go) == (90, 55)
    assert badge_notes(tx, patient) == [("New badge: Gold — 30 days of drinking water", "/me/activities")]


def test_badges_are_per_activity_and_custom_name(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    seed(tx, patient, "custom", before(NOON.date(), 6), name="Stretching")
    seed(tx, patient, "custom", before(NOON.date(), 2), name="Reading")
    assert [b.days for b in log(tx, patient, "custom", name="stretching", at=NOON).new_badges] == [7]
    assert log(tx, patient, "custom", name="Reading", at=NOON).new_badges == []
    result = board(tx, patient, at=NOON)
    assert streak_of(result, "custom", "Stretching").badges == [7]
    assert streak_of(result, "custom", "Reading").badges == []
    assert badge_notes(tx, patient) == [("New badge: Bronze — 7 days of Stretching", "/me/activities")]


def test_badge_notification_names_the_badge_and_activity(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    seed(tx, patient, "meditation", before(NOON.date(), 29))
    award(tx, patient, "meditation", (7, 15), NOON.date() - timedelta(days=10))
    log(tx, patient, "meditation", at=NOON)
    assert badge_notes(tx, patient) == [("New badge: Gold — 30 days of meditation", "/me/activities")]
    assert board(tx, patient, at=NOON).latest_badge.days == 30  # type: ignore[union-attr]


# --- undo -------------------------------------------------------------------------------------------------


def test_undo_removes_todays_entry_only(make: Factory, tx: Tx) -> None:
    patient = make.patient_user(timezone="Pacific/Auckland")
    yesterday = log(tx, patient, "water", at=NOON - timedelta(days=1)).entry.id
    today = log(tx, patient, "water", at=NOON).entry.id
    with tx() as s, pytest.raises(Conflict, match="Only today's entries"):
        service.undo(s, as_principal(patient), yesterday, now=NOON)
    with tx() as s:
        service.undo(s, as_principal(patient), today, now=NOON)
    assert len(entries_of(tx, patient)) == 1
    result = streak_of(board(tx, patient, at=NOON), "water")
    assert (result.current, result.logged_today) == (1, False)
    assert ("activity.undo", "success", False, patient.patient_id) in audits(tx, patient)


def test_undo_of_someone_elses_entry_is_not_found_and_audited(make: Factory, tx: Tx) -> None:
    owner, other = make.patient_user(), make.patient_user()
    entry = log(tx, owner, "water", at=NOON).entry.id
    with tx() as s, pytest.raises(NotFound):
        service.undo(s, as_principal(other), entry, now=NOON)
    with tx() as s, pytest.raises(NotFound):
        service.undo(s, as_principal(other), uuid.uuid4(), now=NOON)
    assert len(entries_of(tx, owner)) == 1
    assert [a[:2] for a in audits(tx, other)] == [("activity.undo", "denied")] * 2


# --- who may read and write -------------------------------------------------------------------------------


def test_care_team_reads_but_never_writes(cast: Any, tx: Tx) -> None:
    patient, doctor = cast["patient"], cast["doctor"]
    log(tx, patient, "exercise", at=NOON)
    seen = board(tx, doctor, at=NOON, patient_id=patient.patient_id)
    assert streak_of(seen, "exercise").current == 1
    assert audits(tx, doctor) == [("activity.streaks", "success", False, patient.patient_id)]
    with tx() as s, pytest.raises(Forbidden):
        service.log_activity(s, as_principal(doctor), "exercise", now=NOON)
    with tx() as s, pytest.raises(Forbidden):
        service.undo(s, as_principal(doctor), uuid.uuid4(), now=NOON)
    assert audits(tx, doctor)[-2:] == [
        ("activity.log", "denied", False, None),
        ("activity.undo", "denied", False, None),
    ]
    with tx() as s, pytest.raises(ValidationFailed, match="Name the patient"):
        service.streaks(s, as_principal(doctor), None, now=NOON)


def test_clinicians_outside_the_care_team_see_nothing(cast: Any, make: Factory, tx: Tx) -> None:
    patient = cast["patient"]
    stranger = make.staff("doctor")
    consented = make.staff("nurse")
    with tx() as s:  # a consent to read record categories does not open the activity log
        s.add(
            RecordConsent(
                patient_id=patient.patient_id,
                grantee_user_id=consented.id,
                categories=["medication"],
                created_by=patient.id,
            )
        )
    for person in (stranger, consented, cast["pharmacist"], cast["admin"]):
        with tx() as s, pytest.raises(NotFound):
            service.streaks(s, as_principal(person), patient.patient_id, now=NOON)
        assert audits(tx, person) == [("activity.streaks", "denied", False, patient.patient_id)]
    with tx() as s, pytest.raises(NotFound):  # a patient reading another patient
        service.badges(s, as_principal(cast["patient"]), cast.other_patient.id)


def test_break_glass_reads_are_flagged(cast: Any, make: Factory, tx: Tx) -> None:
    patient = cast["patient"]
    emergency = make.staff("nurse")
    with tx() as s:
        patient_service.break_glass(
            s, as_principal(emergency), patient.patient.health_id, "Unconscious in the ER"
        )
    with tx() as s:
        service.history(s, as_principal(emergency), patient.patient_id, now=NOON)
    assert audits(tx, emergency) == [("activity.history", "success", True, patient.patient_id)]


def test_patient_reads_and_writes_are_audited(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    log(tx, patient, "medication", at=NOON)
    board(tx, patient, at=NOON)
    with tx() as s:
        service.badges(s, as_principal(patient))
        service.entries(s, as_principal(patient))
        service.history(s, as_principal(patient), now=NOON)
    assert audits(tx, patient) == [
        (action, "success", False, patient.patient_id)
        for action in (
            "activity.log",
            "activity.streaks",
            "activity.badges",
            "activity.list",
            "activity.history",
        )
    ]


# --- history ----------------------------------------------------------------------------------------------


def test_history_counts_days_per_activity_over_the_weeks(make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    today = NOON.date()
    seed(tx, patient, "water", [today, *before(today, 20)])
    seed(tx, patient, "exercise", [today, today - timedelta(days=100)])  # the old day is outside 12 weeks
    with tx() as s:
        heat = service.history(s, as_principal(patient), now=NOON)
    assert heat.today == today
    assert len(heat.weeks) == 12
    assert {label: len(days) for label, days in heat.by_activity.items()} == {"Water": 21, "Exercise": 1}
    cells = {day: count for week in heat.weeks for day, count, _future in week}
    assert (cells[today], cells[today - timedelta(days=1)], heat.max_count) == (2, 1, 2)
    with tx() as s, pytest.raises(ValidationFailed):
        service.history(s, as_principal(patient), weeks=0, now=NOON)


# --- over HTTP --------------------------------------------------------------------------------------------


def test_api_log_is_201_then_200_and_reads_agree(
    client: TestClient, make: Factory, tx: Tx, sign_in: Any
) -> None:
    patient = make.patient_user()
    headers = sign_in(patient)
    first = client.post(A, json={"activity": "exercise", "amount": "30 min"}, headers=headers)
    assert first.status_code == 201, first.text
    again = client.post(A, json={"activity": "exercise"}, headers=headers)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    streaks = client.get(f"{A}/streaks", headers=headers).json()
    exercise = next(s for s in streaks["streaks"] if s["activity"] == "exercise")
    assert (exercise["current"], exercise["logged_today"], exercise["today_entry_id"]) == (
        1,
        True,
        first.json()["id"],
    )
    assert exercise["next_badge"] == {"days": 7, "badge": "Bronze", "days_to_go": 6}
    listed = client.get(A, headers=headers).json()
    assert [e["id"] for e in listed["items"]] == [first.json()["id"]]
    assert client.delete(f"{A}/{first.json()['id']}", headers=headers).status_code == 204
    assert client.get(A, headers=headers).json()["items"] == []


def test_api_validation_errors_are_clear(client: TestClient, make: Factory, sign_in: Any) -> None:
    headers = sign_in(make.patient_user())
    missing = client.post(A, json={"activity": "custom"}, headers=headers)
    assert missing.status_code == 422
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["detail"] == "Give your activity a name."
    assert client.post(A, json={"activity": "flying"}, headers=headers).status_code == 422
    backwards = client.get(A, params={"from": "2026-06-10", "to": "2026-06-01"}, headers=headers)
    assert backwards.status_code == 422
    assert client.get(A, params={"cursor": "not-a-cursor"}, headers=headers).status_code == 422


def test_api_history_pages_and_filters_by_date(
    client: TestClient, make: Factory, tx: Tx, sign_in: Any
) -> None:
    patient = make.patient_user()
    today = datetime.now(UTC).date()
    seed(tx, patient, "water", [today, *before(today, 9)])
    headers = sign_in(patient)
    first = client.get(A, params={"limit": 4}, headers=headers).json()
    second = client.get(A, params={"limit": 4, "cursor": first["next_cursor"]}, headers=headers).json()
    days = [e["day"] for e in first["items"] + second["items"]]
    assert days == [(today - timedelta(days=n)).isoformat() for n in range(8)]
    window = client.get(
        A,
        params={
            "from": (today - timedelta(days=5)).isoformat(),
            "to": (today - timedelta(days=3)).isoformat(),
        },
        headers=headers,
    ).json()
    assert [e["day"] for e in window["items"]] == [(today - timedelta(days=n)).isoformat() for n in (3, 4, 5)]
    assert window["next_cursor"] is None


def test_concurrent_logs_of_one_activity_make_one_entry(app: Any, make: Factory, tx: Tx) -> None:
    patient = make.patient_user()
    with TestClient(app) as client:
        headers = login(client, patient.email, patient.password)

    async def race() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caresync.test") as client:
            calls = [client.post(A, json={"activity": "water"}, headers=headers) for _ in range(8)]
            return list(await asyncio.gather(*calls))

    responses = run_coroutine(race())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201], [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    with tx() as s:
        count = s.execute(
            select(func.count()).select_from(ActivityLog).where(ActivityLog.patient_id == patient.patient_id)
        ).scalar_one()
    assert count == 1


# --- demo data --------------------------------------------------------------------------------------------


def test_demo_streaks_are_realistic_and_carry_their_badges(make: Factory, tx: Tx) -> None:
    patient = make.patient_user(timezone="Europe/Lisbon")
    today = date(2026, 6, 10)
    with tx() as s:
        profile = s.get(Patient, patient.patient_id)
        assert profile is not None
        current = create_demo_streaks(s, profile, today, random.Random(11))
    assert current == {"exercise": 12, "meditation": 34, "water": 95, "medication": 5}
    seen = board(tx, patient, at=local("Europe/Lisbon", 2026, 6, 10, 18, 0))
    assert {s.activity: s.current for s in seen.streaks} == current
    assert {s.activity: s.logged_today for s in seen.streaks} == {
        "exercise": False,
        "meditation": False,
        "medication": True,
        "water": True,
    }
    assert streak_of(seen, "water").badges == [7, 15, 30, 90]
    assert streak_of(seen, "meditation").badges[-1] == 30
    for streak in seen.streaks:  # every badge matches the history it was earned by
        assert streak.badges == rules.badges_for(streak.longest)
    assert [d for d, _on in held_badges(tx, patient, "water")] == [7, 15, 30, 90]
    exercise = streak_of(seen, "exercise")
    assert exercise.total_days > 12  # most days before the current run too
    # a demo patient keeps a streak alive with one click, and earns nothing twice
    assert log(tx, patient, "meditation", at=local("Europe/Lisbon", 2026, 6, 10, 18, 5)).new_badges == []
