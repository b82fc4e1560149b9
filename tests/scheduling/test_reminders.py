"""Appointment reminders and follow-up prompts on a fake clock, their idempotence (re-runs and two workers
at once), per-organisation offsets, the emails they send, and the missed-appointment rate."""

from __future__ import annotations

import email
import email.policy
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.scheduling.conftest import Clinician, SchedulingFactory

from caresync.core.audit import AuditEntry
from caresync.core.notify import Notification
from caresync.db import session_factory, transaction, utcnow
from caresync.scheduling import jobs
from caresync.scheduling.models import Appointment, ClinicSettings, ReminderSent
from caresync.scheduling.reminders import (
    DEFAULT_REMINDER_HOURS,
    due_reminder,
    missed_appointment_rate,
    parse_reminder_hours,
    send_due_reminders,
)

NOW = datetime(2031, 1, 14, 8, 0, tzinfo=UTC)  # a Tuesday in winter: London is on GMT
H = timedelta(hours=1)
LONG_AGO = timedelta(days=10)


def run(at: datetime, **kwargs: Any) -> int:
    """One run of the periodic job at ``at`` (its own committed transaction, as the worker does)."""
    with transaction(session_factory()) as session:
        return send_due_reminders(session, at, **kwargs)


def sent_kinds(appointment_id: uuid.UUID | None = None) -> dict[uuid.UUID, set[str]]:
    """Which reminders were recorded, per appointment."""
    with transaction(session_factory()) as s:
        query = select(ReminderSent.appointment_id, ReminderSent.kind)
        if appointment_id is not None:
            query = query.where(ReminderSent.appointment_id == appointment_id)
        found: dict[uuid.UUID, set[str]] = {}
        for aid, kind in s.execute(query):
            found.setdefault(aid, set()).add(kind)
        return found


def notifications(user_id: uuid.UUID) -> list[Notification]:
    with transaction(session_factory()) as s:
        query = select(Notification).where(Notification.user_id == user_id).order_by(Notification.created_at)
        return list(s.scalars(query))


def read_outbox(outbox: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]


def book(
    sched: SchedulingFactory,
    clinician: Clinician,
    patient: Any,
    start: datetime,
    *,
    booked_before: timedelta = LONG_AGO,
    **fields: Any,
) -> Appointment:
    """An appointment starting at ``start``, booked ``booked_before`` earlier."""
    return sched.appointment(clinician, patient, start, created_at=start - booked_before, **fields)


# --- the pure rules -----------------------------------------------------------------------------------------


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, DEFAULT_REMINDER_HOURS),
        ("24,2", (24, 2)),
        ("2, 24", (24, 2)),
        (" 48 ,1,1 ", (48, 1)),
        ("", ()),
        ("0,-3,2.5,abc,24", (24,)),
        ("337,336", (336,)),  # at most two weeks ahead
    ],
)
def test_parse_reminder_hours(text: str | None, expected: tuple[int, ...]) -> None:
    assert parse_reminder_hours(text) == expected


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("booked_hours_ahead", "hours_to_start", "expected"),
    [
        (240, 30, None),  # too early for any
        (240, 24, 24),  # the 24 h moment itself
        (240, 23, 24),
        (240, 3, 24),
        (240, 2, 2),
        (240, 1, 2),  # a late worker still sends the 2 h one
        (240, 0, None),  # starting now: too late
        (240, -1, None),  # started
        (3, 2.5, None),  # booked 3 h ahead: no 24 h reminder ...
        (3, 1, 2),  # ... only the 2 h one
        (24, 23, 24),  # booked exactly at the 24 h moment
        (2, 1, 2),
        (1, 0.5, None),  # booked inside the last offset: nothing
    ],
)
def test_due_reminder(booked_hours_ahead: float, hours_to_start: float, expected: int | None) -> None:
    start = NOW + hours_to_start * H
    assert due_reminder(start, start - booked_hours_ahead * H, NOW, (24, 2)) == expected


# --- sending ------------------------------------------------------------------------------------------------


def test_exactly_the_due_reminders_are_sent_once(sched: SchedulingFactory, make: Any, outbox: Path) -> None:
    doctor = sched.practitioner()
    cases = {  # (hours to start, booked how long before) -> the kinds recorded after one run at NOW
        (30, LONG_AGO): set(),
        (24, LONG_AGO): {"24h"},
        (23, LONG_AGO): {"24h"},
        (2, LONG_AGO): {"2h"},
        (1, LONG_AGO): {"2h"},  # both moments passed: only the latest is sent
        (-1, LONG_AGO): set(),
        (1.5, 3 * H): {"2h"},  # booked only three hours ahead
        (4, 3 * H): set(),
    }
    patient = make.patient_user()
    appointments = {
        case: book(sched, doctor, patient, NOW + case[0] * H, booked_before=case[1]) for case in cases
    }

    assert run(NOW) == 5
    recorded = sent_kinds()
    assert {case: recorded.get(a.id, set()) for case, a in appointments.items()} == cases
    assert len(notifications(patient.id)) == 5
    assert len(read_outbox(outbox)) == 5

    assert run(NOW) == 0  # a re-run sends nothing twice
    assert run(NOW + timedelta(minutes=5)) == 0
    assert len(notifications(patient.id)) == 5
    assert len(read_outbox(outbox)) == 5


def test_fake_clock_walks_through_one_appointment(sched: SchedulingFactory, make: Any, outbox: Path) -> None:
    """Every five minutes from 30 h before to 1 h after the start: the 24 h and 2 h reminders, once each,
    at their moments."""
    patient = make.patient_user()
    start = NOW + 30 * H
    appointment = book(sched, sched.practitioner(), patient, start)
    sent_at: dict[str, datetime] = {}
    clock = NOW
    while clock <= start + H:
        before = sent_kinds(appointment.id).get(appointment.id, set())
        run(clock)
        for kind in sent_kinds(appointment.id).get(appointment.id, set()) - before:
            sent_at[kind] = clock
        clock += timedelta(minutes=5)
    assert sent_at == {"24h": start - 24 * H, "2h": start - 2 * H}
    assert len(notifications(patient.id)) == 2
    assert len(read_outbox(outbox)) == 2


def test_a_late_worker_sends_only_the_latest_reminder(sched: SchedulingFactory, make: Any) -> None:
    patient = make.patient_user()
    appointment = book(sched, sched.practitioner(), patient, NOW + 90 * timedelta(minutes=1))
    assert run(NOW) == 1
    assert run(NOW + 30 * timedelta(minutes=1)) == 0  # the missed 24 h one never follows
    assert sent_kinds() == {appointment.id: {"2h"}}


def test_offsets_are_configured_per_organisation(
    sched: SchedulingFactory, make: Any, tx: Any, outbox: Path
) -> None:
    custom, silent, default = make.org(), make.org(), make.org()
    with tx() as s:
        s.add(ClinicSettings(organisation_id=custom.id, reminder_hours="48,1"))
        s.add(ClinicSettings(organisation_id=silent.id, reminder_hours=""))
    doctors = {org.id: sched.practitioner(org=org) for org in (custom, silent, default)}
    patient = make.patient_user()
    minute = timedelta(minutes=1)
    at_47h, at_1h = {}, {}
    for i, (org_id, doctor) in enumerate(doctors.items()):  # the patient's starts must differ a little
        at_47h[org_id] = book(sched, doctor, patient, NOW + 47 * H + i * minute)
        at_1h[org_id] = book(sched, doctor, patient, NOW + 50 * minute + i * minute)

    run(NOW)
    recorded = sent_kinds()
    assert recorded.get(at_47h[custom.id].id) == {"48h"}
    assert recorded.get(at_1h[custom.id].id) == {"1h"}
    assert at_47h[silent.id].id not in recorded
    assert at_1h[silent.id].id not in recorded
    assert at_47h[default.id].id not in recorded  # 24 h has not come yet
    assert recorded.get(at_1h[default.id].id) == {"2h"}
    assert len(read_outbox(outbox)) == 3


@pytest.mark.parametrize("status", ["cancelled", "proposed", "arrived", "checked-in", "noshow", "waitlist"])
def test_only_booked_appointments_are_reminded(sched: SchedulingFactory, make: Any, status: str) -> None:
    patient = make.patient_user()
    book(sched, sched.practitioner(), patient, NOW + H, status=status)
    assert run(NOW) == 0
    assert notifications(patient.id) == []


def test_reminder_content_in_app_and_by_email(
    sched: SchedulingFactory, make: Any, outbox: Path, settings_env: Any
) -> None:
    settings_env(base_url="https://care.example.org")
    location = sched.location(name="Harbour Clinic", timezone="America/New_York")
    doctor = sched.practitioner(full_name="Ada Quill")
    patient = make.patient_user(given_name="Mira")
    start = datetime(2031, 1, 15, 15, 0, tzinfo=UTC)  # 10:00 in New York
    appointment = book(sched, doctor, patient, start, location=location, reason="Suspected melanoma")

    assert run(start - 20 * H) == 1

    [note] = notifications(patient.id)
    assert note.kind == "appointment.reminder"
    assert note.link == f"/appointments/{appointment.id}"
    assert "Wednesday 15 January 2031 at 10:00 EST" in note.title + note.body
    assert "Dr Ada Quill" in note.body
    assert "Harbour Clinic" in note.body
    [message] = read_outbox(outbox)
    assert message["To"] == patient.email
    assert "10:00 EST" in message["Subject"]
    text = message.get_content()
    assert text.startswith("Hello Mira,")
    assert "Dr Ada Quill" in text
    assert "Harbour Clinic" in text
    assert f"https://care.example.org/appointments/{appointment.id}" in text
    assert "melanoma" not in (note.title + note.body + text).lower()  # never the reason for the visit


def test_patient_without_account_gets_email_only_and_is_audited(
    sched: SchedulingFactory, make: Any, outbox: Path, tx: Any
) -> None:
    with_email = make.patient(email="walk.in@example.org")
    without = make.patient()
    first = book(sched, sched.practitioner(), with_email, NOW + H)
    second = book(sched, sched.practitioner(), without, NOW + H)

    assert run(NOW) == 2  # recorded for both, so neither is retried
    assert [m["To"] for m in read_outbox(outbox)] == ["walk.in@example.org"]
    with tx() as s:
        assert s.scalars(select(Notification)).all() == []
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "appointment.reminder")).all()
        assert {(e.patient_id, e.resource_id, e.actor_role) for e in entries} == {
            (with_email.id, str(first.id), "system"),
            (without.id, str(second.id), "system"),
        }


def test_two_workers_at_once_send_each_reminder_once(sched: SchedulingFactory, make: Any) -> None:
    patients = [make.patient_user() for _ in range(3)]
    doctor = sched.practitioner()
    for i, patient in enumerate(patients):
        book(sched, doctor, patient, NOW + H + i * timedelta(minutes=15))
    barrier = threading.Barrier(2)
    results: list[int] = []

    def worker() -> None:
        barrier.wait()
        results.append(run(NOW))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2
    assert sum(results) == 3
    assert all(len(notifications(p.id)) == 1 for p in patients)


# --- follow-up prompts --------------------------------------------------------------------------------------


def test_followup_after_a_fulfilled_visit(sched: SchedulingFactory, make: Any, outbox: Path) -> None:
    location = sched.location(name="Riverside Surgery")
    doctor = sched.practitioner(full_name="Bo Lind")
    seen, too_recent, too_old, no_show = (make.patient_user() for _ in range(4))
    visit = book(
        sched, doctor, seen, NOW - 25 * H - 30 * timedelta(minutes=1), status="fulfilled", location=location
    )
    book(sched, doctor, too_recent, NOW - 23 * H, status="fulfilled")
    book(sched, doctor, too_old, NOW - 10 * timedelta(days=1), status="fulfilled")
    book(sched, doctor, no_show, NOW - 25 * H - H, status="noshow")

    assert run(NOW) == 1
    [note] = notifications(seen.id)
    assert note.kind == "appointment.followup"
    assert note.title == "How was your visit?"
    assert "Dr Bo Lind" in note.body
    assert "Riverside Surgery" in note.body
    assert "book" in note.body
    assert "follow-up" in note.body
    assert note.link == f"/appointments/{visit.id}"
    assert all(notifications(p.id) == [] for p in (too_recent, too_old, no_show))
    assert read_outbox(outbox) == []  # an in-app prompt only
    assert sent_kinds() == {visit.id: {"followup"}}

    assert run(NOW + timedelta(hours=1)) == 0  # once only
    assert run(NOW + 2 * H) == 1  # the too-recent one is now due


def test_followup_delay_is_configurable(sched: SchedulingFactory, make: Any) -> None:
    patient = make.patient_user()
    book(sched, sched.practitioner(), patient, NOW - 4 * H, status="fulfilled")
    assert run(NOW) == 0
    assert run(NOW, followup_after=timedelta(hours=3)) == 1


def test_periodic_job_runs_every_five_minutes_on_the_real_clock(sched: SchedulingFactory, make: Any) -> None:
    validate = jobs.send_reminders.task_class().validate_datetime
    assert [validate(NOW.replace(minute=m)) for m in (0, 5, 7, 55)] == [True, True, False, True]
    patient = make.patient_user()
    appointment = book(sched, sched.practitioner(), patient, utcnow().replace(microsecond=0) + H)
    assert jobs.send_reminders.call_local() == 1
    assert jobs.send_reminders.call_local() == 0
    assert sent_kinds() == {appointment.id: {"2h"}}


def test_naive_time_is_refused(tx: Any) -> None:
    with tx() as s, pytest.raises(ValueError, match="timezone-aware"):
        send_due_reminders(s, NOW.replace(tzinfo=None))


# --- the missed-appointment rate ----------------------------------------------------------------------------


def test_missed_appointment_rate(sched: SchedulingFactory, make: Any, tx: Any) -> None:
    org_a, org_b = make.org(), make.org()
    a1, a2, b1 = sched.practitioner(org=org_a), sched.practitioner(org=org_a), sched.practitioner(org=org_b)
    since, until = NOW - timedelta(days=30), NOW
    statuses = [  # practitioner, statuses of their appointments in the period
        (a1, ["noshow", "fulfilled", "fulfilled", "fulfilled", "cancelled", "booked"]),
        (a2, ["noshow", "noshow", "fulfilled"]),
        (b1, ["fulfilled", "fulfilled"]),
    ]
    for clinician, states in statuses:
        for i, status in enumerate(states):
            patient = make.patient()
            book(sched, clinician, patient, since + timedelta(days=i + 1), status=status)
    book(sched, a1, make.patient(), until, status="noshow")  # the end is exclusive
    book(sched, a1, make.patient(), since - H, status="noshow")  # before the period

    table = [  # (organisation, practitioner) -> (noshow, fulfilled, rate)
        ((None, None), (3, 6, 3 / 9)),
        ((org_a.id, None), (3, 4, 3 / 7)),
        ((org_b.id, None), (0, 2, 0.0)),
        ((None, a1.id), (1, 3, 0.25)),
        ((org_a.id, a2.id), (2, 1, 2 / 3)),
        ((org_b.id, a1.id), (0, 0, None)),
    ]
    with tx() as s:
        for (org_id, practitioner_id), (noshow, fulfilled, rate) in table:
            got = missed_appointment_rate(
                s, organisation_id=org_id, practitioner_id=practitioner_id, since=since, until=until
            )
            assert got == {
                "noshow": noshow,
                "fulfilled": fulfilled,
                "total": noshow + fulfilled,
                "rate": rate,
            }
        empty = missed_appointment_rate(s, since=until + H, until=until + 2 * H)
        assert empty == {"noshow": 0, "fulfilled": 0, "total": 0, "rate": None}
