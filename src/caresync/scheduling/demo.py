"""Scheduling demo data: a location per hospital and clinic, a directory profile with weekly hours for every
doctor, and appointments around today (past visits fulfilled or missed, upcoming ones booked), drawn from
the same seeded random generator as the rest of the demo."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from caresync.identity.models import CareRelationship, Organisation, Patient, User
from caresync.scheduling.availability import free_slots, next_free_slot
from caresync.scheduling.directory import search_text_for
from caresync.scheduling.models import (
    Appointment,
    Location,
    Practitioner,
    PractitionerInsurance,
    PractitionerLanguage,
    PractitionerSpecialty,
    Schedule,
)
from caresync.scheduling.rules import (
    INSURANCE_PLANS,
    AppointmentStatus,
    ConsultationMode,
    Slot,
    plan_for_insurer,
)

TIMEZONE = "Europe/Lisbon"
# The demo doctor (the first doctor of the first hospital) is a cardiologist, so the tour "find a
# cardiologist who takes my insurance" works; the others get a specialty each, in turn.
SPECIALTY_ORDER = (
    "cardiology",
    "general-practice",
    "dermatology",
    "paediatrics",
    "neurology",
    "orthopaedics",
    "endocrinology",
    "psychiatry",
    "cardiology",
    "gastroenterology",
    "ophthalmology",
    "pulmonology",
)
EXTRA_LANGUAGES = ("es", "fr", "de", "uk", "ar", "zh", "hi", "it")
WEEKDAY_HOURS = ((time(9), time(13)), (time(14), time(18)))  # morning and afternoon sessions
BOOKED_SHARE = 0.35  # of the next fortnight's slots
PAST_DAYS = 21


def load(
    session: Session,
    rng: random.Random,
    orgs: list[Organisation],
    doctors: dict[uuid.UUID, list[User]],
    patients: list[Patient],
    links: list[CareRelationship],
    now: datetime,
) -> int:
    """Add the scheduling data; returns how many appointments were created. ``links`` (the demo's care
    relationships, not yet flushed) gains one per booked patient and doctor pair that lacks one."""
    practitioners: list[Practitioner] = []
    for org in orgs:
        if org.kind not in ("hospital", "clinic"):
            continue
        location = Location(
            id=_uuid(rng),
            organisation_id=org.id,
            name=f"{org.name} outpatients",
            address=org.address,
            city=org.city,
            latitude=org.latitude,
            longitude=org.longitude,
            timezone=TIMEZONE,
        )
        session.add(location)
        for doctor in doctors.get(org.id, []):
            specialty = SPECIALTY_ORDER[len(practitioners) % len(SPECIALTY_ORDER)]
            tour_plan = plan_for_insurer(patients[0].insurance_provider or "")
            practitioner = _profile(rng, doctor, org, specialty, first=not practitioners, tour_plan=tour_plan)
            session.add(practitioner)
            session.add_all(_week(rng, practitioner, location))
            practitioners.append(practitioner)
    session.flush()
    diary = _Diary(
        session, rng, patients, links, cared={(link.patient_id, link.practitioner_id) for link in links}
    )
    count = 0
    for index, practitioner in enumerate(practitioners):
        count += diary.fill(practitioner, now, tour_patient=patients[0] if index == 0 else None)
    session.flush()
    for practitioner in practitioners:
        slot = next_free_slot(session, practitioner.id, now)
        practitioner.next_free_slot_at = slot.start if slot else None
    return count


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _profile(
    rng: random.Random, doctor: User, org: Organisation, specialty: str, *, first: bool, tour_plan: str
) -> Practitioner:
    if first:  # the tour's cardiologist takes the demo patient's insurance
        plans = sorted({"sns", "medis", tour_plan} - {""})
    else:
        plans = rng.sample(sorted(INSURANCE_PLANS), k=rng.randint(2, 5))
    languages = ["pt", "en", *rng.sample(EXTRA_LANGUAGES, k=rng.randint(0, 2))]
    name = doctor.full_name
    return Practitioner(
        id=_uuid(rng),
        user_id=doctor.id,
        organisation_id=org.id,
        display_name=name,
        title="Consultant",
        bio=f"{name} sees adults and families at {org.name}.",
        in_person=True,
        video=first or rng.random() < 0.5,
        accepting_patients=True,
        search_text=search_text_for(name, "Consultant", [specialty], org.name),
        specialties=[PractitionerSpecialty(code=specialty)],
        languages=[PractitionerLanguage(code=c) for c in languages],
        insurance_plans=[PractitionerInsurance(plan=p) for p in plans],
    )


def _week(rng: random.Random, practitioner: Practitioner, location: Location) -> list[Schedule]:
    slot_minutes = rng.choice((15, 20, 30))
    days = range(5) if rng.random() < 0.7 else sorted(rng.sample(range(5), k=3))
    rows = []
    for day in days:
        for start, end in WEEKDAY_HOURS:
            rows.append(
                Schedule(
                    id=_uuid(rng),
                    practitioner_id=practitioner.id,
                    location_id=location.id,
                    weekday=day,
                    start_time=start,
                    end_time=end,
                    slot_minutes=slot_minutes,
                    breaks=json.dumps([]),
                )
            )
    return rows


@dataclass
class _Diary:
    """Books demo appointments: never two at once for one patient, and a care relationship for every new
    patient and doctor pair (appended to the demo's ``links``)."""

    session: Session
    rng: random.Random
    patients: list[Patient]
    links: list[CareRelationship]
    cared: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    busy: dict[uuid.UUID, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    def free_patient(self, start: datetime, end: datetime) -> Patient | None:
        """A random patient with nothing else at that time (``None`` after a few tries)."""
        for _ in range(8):
            patient = self.rng.choice(self.patients)
            if self.is_free(patient, start, end):
                return patient
        return None

    def is_free(self, patient: Patient, start: datetime, end: datetime) -> bool:
        """Whether the patient has no appointment overlapping ``[start, end)``."""
        return all(end <= s or start >= e for s, e in self.busy.get(patient.id, []))

    def book(
        self, practitioner: Practitioner, patient: Patient, slot: Slot, status: AppointmentStatus
    ) -> None:
        """Add the appointment (and the care relationship it implies)."""
        self.busy.setdefault(patient.id, []).append((slot.start, slot.end))
        self.session.add(
            Appointment(
                id=_uuid(self.rng),
                patient_id=patient.id,
                practitioner_id=practitioner.id,
                location_id=slot.location_id,
                start_at=slot.start,
                end_at=slot.end,
                status=status.value,
                mode=ConsultationMode.IN_PERSON.value,
                reason=self.rng.choice(REASONS),
                fulfilled_at=slot.end if status == AppointmentStatus.FULFILLED else None,
            )
        )
        if (patient.id, practitioner.user_id) not in self.cared:
            self.cared.add((patient.id, practitioner.user_id))
            self.links.append(
                CareRelationship(
                    id=_uuid(self.rng),
                    patient_id=patient.id,
                    practitioner_id=practitioner.user_id,
                    organisation_id=practitioner.organisation_id,
                    reason="appointment",
                    created_at=slot.start,
                )
            )

    def fill(self, practitioner: Practitioner, now: datetime, tour_patient: Patient | None) -> int:
        """Past visits (mostly fulfilled, some missed) and upcoming bookings; ``tour_patient`` gets the
        first free slot more than two days ahead. Returns how many appointments were added."""
        today = now.astimezone(ZoneInfo(TIMEZONE)).date()
        past = free_slots(
            self.session,
            practitioner.id,
            today - timedelta(days=PAST_DAYS),
            today,
            now - timedelta(days=PAST_DAYS),
        )
        upcoming = free_slots(self.session, practitioner.id, today, today + timedelta(days=14), now)
        created = 0
        for slot in [s for s in past if s.start < now] + upcoming:
            tour = tour_patient is not None and slot.start > now + timedelta(days=2)
            if tour and tour_patient is not None and self.is_free(tour_patient, slot.start, slot.end):
                patient: Patient | None = tour_patient
                tour_patient = None
            elif self.rng.random() < BOOKED_SHARE:
                patient = self.free_patient(slot.start, slot.end)
            else:
                continue
            if patient is None:
                continue
            if slot.start >= now:
                status = AppointmentStatus.BOOKED
            else:
                status = AppointmentStatus.NOSHOW if self.rng.random() < 0.08 else AppointmentStatus.FULFILLED
            self.book(practitioner, patient, slot, status)
            created += 1
        return created


REASONS = (
    "Follow-up",
    "Blood pressure review",
    "Chest pain on exertion",
    "Annual check-up",
    "Skin rash",
    "Headaches",
    "Medication review",
    "Knee pain",
    "Test results",
    "",
)
