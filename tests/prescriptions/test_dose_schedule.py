"""The daily dose schedule: local dose times in the patient's time zone (Tokyo and Los Angeles differ),
daylight-saving gaps and repeats, midnight, the course's first and last day, PRN and inactive
prescriptions, and the rules for marking a dose taken or skipped."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.core.audit import AuditEntry
from caresync.core.auth import Principal
from caresync.core.errors import ValidationFailed
from caresync.db import session_factory, transaction
from caresync.engagement.models import ActivityLog
from caresync.identity.models import Patient
from caresync.prescriptions.adherence.schedule import (
    dose_instants,
    mark_dose,
    prescription_doses,
    resolve_local,
)
from caresync.prescriptions.models import DoseLog, Prescription
from tests.conftest import API, Cast, Person
from tests.prescriptions.conftest import PrescriptionFactory

DOSES = f"{API}/prescriptions/doses"
NEW_YORK = ZoneInfo("America/New_York")
LISBON = ZoneInfo("Europe/Lisbon")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def course(**fields: Any) -> Prescription:
    """An unsaved prescription with a schedule (pure tests)."""
    values: dict[str, Any] = {
        "status": "active",
        "frequency": "BID",
        "dose_times": ["08:00", "20:00"],
        "start_date": date(2026, 3, 1),
        "duration_days": 7,
    }
    values.update(fields)
    return Prescription(**values)


# --- pure rules ---------------------------------------------------------------------------------------------


TIMES = {  # id -> (zone, local day, local time, expected UTC instant)
    "Tokyo 08:00 is the previous UTC evening": (
        "Asia/Tokyo",
        date(2026, 6, 15),
        time(8),
        utc(2026, 6, 14, 23),
    ),
    "Los Angeles 08:00 in summer (PDT)": (
        "America/Los_Angeles",
        date(2026, 6, 15),
        time(8),
        utc(2026, 6, 15, 15),
    ),
    "Los Angeles 08:00 in winter (PST)": (
        "America/Los_Angeles",
        date(2026, 1, 15),
        time(8),
        utc(2026, 1, 15, 16),
    ),
    "UTC is itself": ("UTC", date(2026, 6, 15), time(8), utc(2026, 6, 15, 8)),
    # New York springs forward on 8 March 2026: 02:00-02:59 do not exist; doses move to 03:00 EDT (07:00 UTC)
    "gap start moves to the end of the gap": (
        "America/New_York",
        date(2026, 3, 8),
        time(2),
        utc(2026, 3, 8, 7),
    ),
    "inside the gap moves to its end": (
        "America/New_York",
        date(2026, 3, 8),
        time(2, 30),
        utc(2026, 3, 8, 7),
    ),
    "the end of the gap exists": ("America/New_York", date(2026, 3, 8), time(3), utc(2026, 3, 8, 7)),
    "just before the gap": ("America/New_York", date(2026, 3, 8), time(1, 59), utc(2026, 3, 8, 6, 59)),
    "after the change, daylight time": ("America/New_York", date(2026, 3, 8), time(8), utc(2026, 3, 8, 12)),
    # Lisbon springs forward on 29 March 2026 at 01:00 WET -> 02:00 WEST
    "Lisbon gap": ("Europe/Lisbon", date(2026, 3, 29), time(1, 30), utc(2026, 3, 29, 1)),
    # Lord Howe Island moves its clocks by half an hour (02:00 -> 02:30 on 4 October 2026)
    "half-hour gap": ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15), utc(2026, 10, 3, 15, 30)),
    # New York falls back on 1 November 2026: 01:00-01:59 happen twice; the first (EDT) is taken
    "repeated hour: first occurrence": (
        "America/New_York",
        date(2026, 11, 1),
        time(1, 30),
        utc(2026, 11, 1, 5, 30),
    ),
    "after the repeat, standard time": ("America/New_York", date(2026, 11, 1), time(8), utc(2026, 11, 1, 13)),
    "Lisbon repeat": ("Europe/Lisbon", date(2026, 10, 25), time(1, 30), utc(2026, 10, 25, 0, 30)),
}


@pytest.mark.no_db
@pytest.mark.parametrize(("zone", "day", "at", "expected"), TIMES.values(), ids=TIMES.keys())
def test_local_dose_time_to_utc(zone: str, day: date, at: time, expected: datetime) -> None:
    assert resolve_local(day, at, ZoneInfo(zone)) == expected


@pytest.mark.no_db
def test_same_local_time_is_a_different_instant_in_tokyo_and_los_angeles() -> None:
    day = date(2026, 6, 15)
    tokyo = dose_instants(["08:00"], day, ZoneInfo("Asia/Tokyo"))
    los_angeles = dose_instants(["08:00"], day, ZoneInfo("America/Los_Angeles"))
    assert tokyo == [utc(2026, 6, 14, 23)]
    assert los_angeles == [utc(2026, 6, 15, 15)]
    assert los_angeles[0] - tokyo[0] == timedelta(hours=16)


@pytest.mark.no_db
def test_two_times_in_one_gap_make_one_dose() -> None:
    assert dose_instants(["02:00", "02:30", "08:00"], date(2026, 3, 8), NEW_YORK) == [
        utc(2026, 3, 8, 7),
        utc(2026, 3, 8, 12),
    ]


@pytest.mark.no_db
def test_repeated_hour_is_taken_once() -> None:
    instants = dose_instants(["01:30"], date(2026, 11, 1), NEW_YORK)
    assert instants == [utc(2026, 11, 1, 5, 30)]  # not also 06:30 UTC (01:30 EST)


@pytest.mark.no_db
def test_dst_days_keep_every_dose_of_the_day() -> None:
    p = course(frequency="QID", dose_times=["08:00", "12:00", "16:00", "20:00"], duration_days=30)
    for day in (date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)):  # before, on and after the change
        local = [at.astimezone(NEW_YORK).strftime("%H:%M") for at in prescription_doses(p, day, NEW_YORK)]
        assert local == ["08:00", "12:00", "16:00", "20:00"], day


@pytest.mark.no_db
def test_midnight_doses_belong_to_their_local_day() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    p = course(dose_times=["00:00", "23:59"])
    day = date(2026, 3, 3)
    instants = prescription_doses(p, day, tokyo)
    # both on the local 3rd, although 00:00 JST is still the 2nd in UTC
    assert instants == [utc(2026, 3, 2, 15), utc(2026, 3, 3, 14, 59)]
    assert {at.astimezone(tokyo).date() for at in instants} == {day}
    assert prescription_doses(p, day + timedelta(days=1), tokyo)[0] == utc(2026, 3, 3, 15)


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("day", "doses"),
    [
        (date(2026, 2, 28), 0),  # before the start
        (date(2026, 3, 1), 2),  # the first day
        (date(2026, 3, 7), 2),  # the 7th and last day of a 7-day course
        (date(2026, 3, 8), 0),  # the course is over
    ],
    ids=["before", "first-day", "last-day", "after"],
)
def test_course_bounds(day: date, doses: int) -> None:
    assert len(prescription_doses(course(), day, LISBON)) == doses


@pytest.mark.no_db
@pytest.mark.parametrize(
    "fields",
    [
        {"frequency": "PRN", "dose_times": []},
        {"status": "draft"},
        {"status": "on-hold"},
        {"status": "stopped"},
        {"status": "cancelled"},
        {"status": "completed"},
    ],
    ids=["prn", "draft", "on-hold", "stopped", "cancelled", "completed"],
)
def test_no_schedule(fields: dict[str, Any]) -> None:
    assert prescription_doses(course(**fields), date(2026, 3, 2), LISBON) == []


# --- the schedule over the API ------------------------------------------------------------------------------


def set_timezone(patient: Person | Patient, zone: str) -> None:
    patient_id = patient.patient_id if isinstance(patient, Person) else patient.id
    with transaction(session_factory()) as s:
        row = s.get(Patient, patient_id)
        assert row is not None
        row.timezone = zone


def test_tokyo_and_los_angeles_patients_over_the_api(
    client: TestClient,
    make: Any,
    cast: Cast,
    sign_in: Callable[[Person], dict[str, str]],
    prescription_factory: PrescriptionFactory,
) -> None:
    day = date(2026, 6, 15)
    found = {}
    for zone in ("Asia/Tokyo", "America/Los_Angeles"):
        patient = make.patient_user()
        set_timezone(patient, zone)
        prescription_factory(cast["doctor"], patient, frequency="QD", start_date=day - timedelta(days=2))
        response = client.get(DOSES, params={"day": day.isoformat()}, headers=sign_in(patient))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["timezone"] == zone
        [dose] = body["doses"]
        assert dose["local_time"] == "08:00"
        assert dose["medication"] == "Amoxicillin 500 mg capsule"
        found[zone] = datetime.fromisoformat(dose["scheduled_at"])
    assert found["Asia/Tokyo"] == utc(2026, 6, 14, 23)
    assert found["America/Los_Angeles"] == utc(2026, 6, 15, 15)


def test_schedule_lists_only_scheduled_prescriptions_with_their_marks(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[[Person], dict[str, str]],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    patient, doctor = cast["patient"], cast["doctor"]
    today = datetime.now(UTC).date()  # the cast's patient lives in UTC
    bid = prescription_factory(doctor, patient, frequency="BID", start_date=today - timedelta(days=3))
    prescription_factory(doctor, patient, frequency="PRN", medication_name="Paracetamol")
    prescription_factory(doctor, patient, status="on-hold", medication_name="Ramipril")
    yesterday = today - timedelta(days=1)
    with tx() as s:
        s.add(
            DoseLog(
                prescription_id=bid.id,
                patient_id=patient.patient_id,
                scheduled_at=datetime.combine(yesterday, time(8), tzinfo=UTC),
                status="taken",
            )
        )
    response = client.get(DOSES, params={"day": yesterday.isoformat()}, headers=sign_in(patient))
    assert response.status_code == 200, response.text
    doses = response.json()["doses"]
    assert [(d["local_time"], d["mark"]) for d in doses] == [("08:00", "taken"), ("20:00", None)]
    assert {d["prescription_id"] for d in doses} == {str(bid.id)}


def test_default_day_is_today_where_the_patient_lives(
    client: TestClient,
    make: Any,
    cast: Cast,
    sign_in: Callable[[Person], dict[str, str]],
    prescription_factory: PrescriptionFactory,
) -> None:
    patient = make.patient_user()
    set_timezone(patient, "Pacific/Kiritimati")  # UTC+14: often already tomorrow in UTC terms
    prescription_factory(cast["doctor"], patient, start_date=date.today() - timedelta(days=3))
    response = client.get(DOSES, headers=sign_in(patient))
    assert response.status_code == 200
    local_today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    assert response.json()["day"] == local_today.isoformat()


def test_clinician_reads_the_schedule_and_the_read_is_audited(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[[Person], dict[str, str]],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    prescription_factory(cast["doctor"], cast["patient"])
    patient_id = str(cast["patient"].patient_id)
    nurse = sign_in(cast["nurse"])
    response = client.get(DOSES, params={"patient_id": patient_id}, headers=nurse)
    assert response.status_code == 200
    assert len(response.json()["doses"]) == 3
    missing = client.get(DOSES, headers=nurse)
    assert missing.status_code == 422  # a clinician must name the patient
    assert missing.json()["field"] == "patient_id" or "patient_id" in missing.text
    other = client.get(DOSES, params={"patient_id": str(cast.other_patient.id)}, headers=nurse)
    assert other.status_code == 404
    with tx() as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "dose.schedule").order_by(AuditEntry.seq)
        ).all()
        assert [(e.actor_id, e.outcome, str(e.patient_id)) for e in entries] == [
            (cast["nurse"].id, "success", patient_id),
            (cast["nurse"].id, "denied", str(cast.other_patient.id)),
        ]


# --- marking ------------------------------------------------------------------------------------------------


def _at(day: date, hour: int) -> str:
    return datetime.combine(day, time(hour), tzinfo=UTC).isoformat()


def test_marking_rules(
    client: TestClient,
    cast: Cast,
    sign_in: Callable[[Person], dict[str, str]],
    prescription_factory: PrescriptionFactory,
    tx: Any,
) -> None:
    today = datetime.now(UTC).date()
    p = prescription_factory(
        cast["doctor"],
        cast["patient"],
        frequency="BID",
        start_date=today - timedelta(days=20),
        duration_days=60,
    )
    me = sign_in(cast["patient"])
    yesterday = today - timedelta(days=1)

    def put(scheduled_at: str, status: str = "taken", headers: dict[str, str] = me, pid: Any = p.id) -> Any:
        body = {"prescription_id": str(pid), "scheduled_at": scheduled_at, "status": status}
        return client.put(DOSES, json=body, headers=headers)

    first = put(_at(yesterday, 8))
    assert first.status_code == 200, first.text
    assert first.json()["mark"] == "taken"
    again = put(_at(yesterday, 8).replace("+00:00", "Z"), "skipped")  # the same instant, written differently
    assert again.status_code == 200
    with tx() as s:
        logs = s.scalars(select(DoseLog).where(DoseLog.prescription_id == p.id)).all()
        assert [(log.scheduled_at, log.status) for log in logs] == [
            (datetime.combine(yesterday, time(8), tzinfo=UTC), "skipped")  # the latest mark won, one row
        ]
    refusals = {  # why -> (response, words of the explanation)
        "not a dose time": (put(_at(yesterday, 9)), "not one of"),
        "too far ahead": (put(_at(today + timedelta(days=1), 8)), "not due yet"),
        "too old": (put(_at(today - timedelta(days=8), 8)), "more than 7 days old"),
        "before the course": (put(_at(today - timedelta(days=21), 8)), "not one of"),
        "no time zone": (put(datetime.combine(yesterday, time(8)).isoformat()), "time zone"),
        "end of the calendar": (put("9999-12-31T23:59:59-14:00"), "not one of"),
        "start of the calendar": (put("0001-01-01T00:00:00+14:00"), "not one of"),
    }
    for why, (response, words) in refusals.items():
        assert response.status_code == 422, why
        assert response.headers["content-type"].startswith("application/problem+json"), why
        assert words in response.json()["detail"], why
    assert put(_at(yesterday, 20), "forgotten").status_code == 422
    assert put(_at(yesterday, 20), pid=uuid.uuid4()).status_code == 404
    # the patient's nurse may read the schedule but never marks doses for them; others do not see it
    assert put(_at(yesterday, 20), headers=sign_in(cast["nurse"])).status_code == 403
    assert put(_at(yesterday, 20), headers=sign_in(cast["pharmacist"])).status_code == 404
    with tx() as s:
        marks = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "dose.mark", AuditEntry.outcome == "success")
        ).all()
        assert len(marks) == 2
        assert {m.patient_id for m in marks} == {cast["patient"].patient_id}


def test_another_patients_dose_is_not_found(
    client: TestClient,
    make: Any,
    cast: Cast,
    sign_in: Callable[[Person], dict[str, str]],
    prescription_factory: PrescriptionFactory,
) -> None:
    today = datetime.now(UTC).date()
    theirs = prescription_factory(cast["doctor"], cast["patient"], start_date=today - timedelta(days=2))
    stranger = make.patient_user()
    body = {
        "prescription_id": str(theirs.id),
        "scheduled_at": _at(today - timedelta(days=1), 8),
        "status": "taken",
    }
    response = client.put(DOSES, json=body, headers=sign_in(stranger))
    assert response.status_code == 404
    assert cast["patient"].patient.family_name not in response.text


@pytest.mark.parametrize(
    ("offset", "allowed"),
    [
        (timedelta(hours=1), True),  # an hour ahead: allowed
        (timedelta(hours=1, seconds=1), False),
        (-timedelta(days=7), True),  # a week old: still allowed
        (-timedelta(days=7, seconds=1), False),
    ],
    ids=["1h-ahead", "too-early", "7d-old", "too-late"],
)
def test_marking_window_edges(
    cast: Cast, prescription_factory: PrescriptionFactory, offset: timedelta, allowed: bool
) -> None:
    dose_at = utc(2026, 3, 10, 8)
    p = prescription_factory(
        cast["doctor"], cast["patient"], frequency="QD", start_date=date(2026, 3, 1), duration_days=30
    )
    person = cast["patient"]
    principal = Principal(
        user_id=person.id, role="patient", full_name=person.full_name, patient_id=person.patient_id
    )
    with transaction(session_factory()) as s:
        if allowed:
            assert mark_dose(s, principal, p.id, dose_at, "taken", now=dose_at - offset).mark == "taken"
        else:
            with pytest.raises(ValidationFailed):
                mark_dose(s, principal, p.id, dose_at, "taken", now=dose_at - offset)


def test_dst_gap_dose_is_marked_at_its_moved_instant(
    cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    set_timezone(cast["patient"], "America/New_York")
    p = prescription_factory(
        cast["doctor"],
        cast["patient"],
        frequency="QD",
        dose_times=["02:30"],
        start_date=date(2026, 3, 1),
        duration_days=30,
    )
    person = cast["patient"]
    principal = Principal(
        user_id=person.id, role="patient", full_name=person.full_name, patient_id=person.patient_id
    )
    now = utc(2026, 3, 8, 9)
    with transaction(session_factory()) as s:
        dose = mark_dose(s, principal, p.id, utc(2026, 3, 8, 7), "taken", now=now)  # 03:00 EDT
        assert dose.local.strftime("%H:%M %Z") == "03:00 EDT"
        with pytest.raises(ValidationFailed):  # 02:30 read as standard time is not the dose
            mark_dose(s, principal, p.id, utc(2026, 3, 8, 7, 30), "taken", now=now)


def test_a_dose_of_today_marked_taken_keeps_the_medication_streak(
    cast: Cast, prescription_factory: PrescriptionFactory
) -> None:
    p = prescription_factory(
        cast["doctor"], cast["patient"], frequency="BID", start_date=date(2026, 3, 1), duration_days=30
    )
    person = cast["patient"]
    principal = Principal(
        user_id=person.id, role="patient", full_name=person.full_name, patient_id=person.patient_id
    )
    now = utc(2026, 3, 10, 21)

    def medication_days() -> list[date]:
        with transaction(session_factory()) as s:
            query = select(ActivityLog.day).where(
                ActivityLog.patient_id == person.patient_id, ActivityLog.activity == "medication"
            )
            return list(s.scalars(query))

    with transaction(session_factory()) as s:
        mark_dose(s, principal, p.id, utc(2026, 3, 9, 20), "taken", now=now)  # yesterday's, marked late
        mark_dose(s, principal, p.id, utc(2026, 3, 10, 8), "skipped", now=now)
    assert medication_days() == []  # no back-dating, and a skipped dose is not a taken one
    for _ in range(2):
        with transaction(session_factory()) as s:
            mark_dose(s, principal, p.id, utc(2026, 3, 10, 20), "taken", now=now)
    assert medication_days() == [date(2026, 3, 10)]
