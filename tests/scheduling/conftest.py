"""Scheduling test data: ``sched`` creates locations, practitioner profiles with weekly hours, time off and
appointments as committed rows (each call its own transaction), on top of the root ``make`` factory."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from tests.conftest import Factory, Person

from caresync.db import session_factory, transaction
from caresync.identity.models import Organisation
from caresync.scheduling.availability import refresh_next_free
from caresync.scheduling.models import (
    Appointment,
    Location,
    Practitioner,
    PractitionerInsurance,
    PractitionerLanguage,
    PractitionerSpecialty,
    Schedule,
    TimeOff,
)
from caresync.scheduling.rules import AppointmentStatus


@dataclass
class Clinician:
    """A staff doctor (``person``, signs in) and their directory profile (``practitioner``)."""

    person: Person
    practitioner: Practitioner

    @property
    def id(self) -> uuid.UUID:
        """The practitioner profile's id."""
        return self.practitioner.id


class SchedulingFactory:
    """Scheduling rows for tests."""

    def __init__(self, make: Factory) -> None:
        self.make = make

    def location(
        self,
        org: Organisation | None = None,
        *,
        name: str = "Main clinic",
        latitude: float | None = 51.5074,
        longitude: float | None = -0.1278,
        timezone: str = "Europe/London",
    ) -> Location:
        """A location of ``org`` (the default hospital if omitted)."""
        org = org or self.make.default_org()
        with transaction(session_factory()) as s:
            location = Location(
                organisation_id=org.id,
                name=name,
                latitude=latitude,
                longitude=longitude,
                timezone=timezone,
                city="London",
            )
            s.add(location)
            s.flush()
            s.expunge(location)
        return location

    def practitioner(
        self,
        *,
        role: str = "doctor",
        org: Organisation | None = None,
        specialties: tuple[str, ...] = ("general-practice",),
        languages: tuple[str, ...] = ("en",),
        insurance: tuple[str, ...] = ("sns",),
        video: bool = False,
        full_name: str | None = None,
        person: Person | None = None,
    ) -> Clinician:
        """A staff member of ``role`` (or the given ``person``) with a directory profile (no working hours
        yet)."""
        person = person or self.make.staff(role, org, full_name=full_name)
        with transaction(session_factory()) as s:
            practitioner = Practitioner(
                user_id=person.id,
                organisation_id=person.user.organisation_id,
                display_name=person.full_name,
                title="Dr" if role == "doctor" else "",
                video=video,
                search_text=" ".join((person.full_name, *specialties)).lower(),
                specialties=[PractitionerSpecialty(code=c) for c in specialties],
                languages=[PractitionerLanguage(code=c) for c in languages],
                insurance_plans=[PractitionerInsurance(plan=p) for p in insurance],
            )
            s.add(practitioner)
            s.flush()
            s.refresh(practitioner)
            s.expunge(practitioner)
        return Clinician(person=person, practitioner=practitioner)

    def hours(
        self,
        clinician: Clinician,
        location: Location,
        *,
        weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
        start: time = time(9),
        end: time = time(17),
        slot_minutes: int = 30,
        breaks: tuple[tuple[str, str], ...] = (("12:00", "13:00"),),
        valid_from: date | None = None,
        valid_until: date | None = None,
    ) -> list[Schedule]:
        """Weekly working hours on ``weekdays`` (Monday to Friday, 9-17 with a lunch break by default)."""
        rows = [
            Schedule(
                practitioner_id=clinician.id,
                location_id=location.id,
                weekday=day,
                start_time=start,
                end_time=end,
                slot_minutes=slot_minutes,
                breaks=json.dumps([list(b) for b in breaks]),
                valid_from=valid_from,
                valid_until=valid_until,
            )
            for day in weekdays
        ]
        with transaction(session_factory()) as s:
            s.add_all(rows)
            s.flush()
            refresh_next_free(s, clinician.id)  # as the schedule service does
        return rows

    def time_off(
        self, clinician: Clinician, starts_at: datetime, ends_at: datetime, kind: str = "leave"
    ) -> TimeOff:
        """Leave (or a holiday, or a block) for the practitioner."""
        with transaction(session_factory()) as s:
            row = TimeOff(practitioner_id=clinician.id, kind=kind, starts_at=starts_at, ends_at=ends_at)
            s.add(row)
            s.flush()
            refresh_next_free(s, clinician.id)
        return row

    def appointment(
        self,
        clinician: Clinician,
        patient: Any,
        start: datetime,
        *,
        minutes: int = 30,
        status: str = AppointmentStatus.BOOKED.value,
        location: Location | None = None,
        **fields: Any,
    ) -> Appointment:
        """An appointment row written directly (no booking rules applied): for arranging a scenario."""
        patient_id = patient.patient_id if isinstance(patient, Person) else patient.id
        with transaction(session_factory()) as s:
            row = Appointment(
                patient_id=patient_id,
                practitioner_id=clinician.id,
                location_id=location.id if location else None,
                start_at=start,
                end_at=start + timedelta(minutes=minutes),
                status=status,
                **fields,
            )
            s.add(row)
            s.flush()
            s.expunge(row)
        return row


@pytest.fixture
def sched(make: Factory) -> SchedulingFactory:
    """Scheduling row factories (see :class:`SchedulingFactory`)."""
    return SchedulingFactory(make)
