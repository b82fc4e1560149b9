"""Scheduling: Schedule (a practitioner's weekly hours), Slot (computed, never stored) and Appointment.

- **Schedule**: one per practitioner who has weekly hours; its id is the practitioner profile's id, its
  actors the Practitioner and every Location of their hours. Read and searched through the directory
  rules (any signed-in role with directory access; licensed practitioners only).
- **Slot**: free slots are computed from the hours, breaks, time off and appointments
  (``scheduling.availability``), so a slot's id encodes how to find it again:
  ``<practitioner uuid>-<YYYYMMDDHHMM>`` (its start in UTC). A slot taken by an appointment is ``busy``,
  one inside time off ``busy-unavailable``; a time that is not (or no longer) in the hours is 404.
- **Appointment**: read and searched through ``scheduling.booking`` (a patient sees their own; a
  practitioner theirs; staff managing appointments their organisation's), created by booking with the
  app's rules (409 when the slot is taken, 422 in the past) and updated by status or time changes that
  map onto cancel, reschedule, the visit's progress and accepting a waitlist offer.

Rescheduling follows the domain: the old appointment is cancelled and a new one booked, so ``PUT`` that
moves an appointment answers with the *new* appointment (another id); the old one reads as cancelled.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from caresync.core.errors import NotFound, ValidationFailed
from caresync.db import utcnow
from caresync.fhir.context import JSON, FhirContext, reference
from caresync.fhir.outcome import invalid, not_supported
from caresync.fhir.registry import ResourceType, SearchParam
from caresync.fhir.registry import included as included_reads
from caresync.fhir.search import SearchQuery, SearchResult, date_range, drop_empty, instant, reference_id
from caresync.scheduling import availability, booking, directory
from caresync.scheduling.models import Appointment, Location, Practitioner, Schedule
from caresync.scheduling.rules import ACTIVE, AppointmentStatus, ConsultationMode, Slot

S = AppointmentStatus

# --- code tables --------------------------------------------------------------------------------------------

# http://hl7.org/fhir/R4/valueset-appointmentstatus.html
FHIR_APPOINTMENT_STATUSES = (
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
)
APPOINTMENT_STATUS: dict[AppointmentStatus, str] = {
    S.PROPOSED: "proposed",  # a waitlist offer held for the patient
    S.BOOKED: "booked",
    S.ARRIVED: "arrived",
    S.CHECKED_IN: "checked-in",
    S.FULFILLED: "fulfilled",
    S.CANCELLED: "cancelled",
    S.NOSHOW: "noshow",
    S.WAITLIST: "waitlist",
}
DOMAIN_STATUS = {fhir: domain for domain, fhir in APPOINTMENT_STATUS.items()}
# FHIR statuses an update may move an appointment to, and the visit step each records
PROGRESS_STEPS = {"arrived": "arrive", "checked-in": "check-in", "fulfilled": "fulfil", "noshow": "no-show"}
# a create books the slot: these requested statuses are accepted (the result is ``booked``)
CREATE_STATUSES = ("proposed", "pending", "booked")

# http://hl7.org/fhir/R4/valueset-slotstatus.html
FHIR_SLOT_STATUSES = ("busy", "free", "busy-unavailable", "busy-tentative", "entered-in-error")
SLOT_STATUS: dict[str, str] = {"free": "free", "booked": "busy", "off": "busy-unavailable"}

# http://hl7.org/fhir/R4/valueset-encounter-participant-type.html (v3 ParticipationType)
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PRIMARY_PERFORMER = {"system": PARTICIPATION_TYPE, "code": "PPRF", "display": "primary performer"}

SLOT_WINDOW_DAYS = 14  # Slot search without an end: the next two weeks
MAX_SLOT_WINDOW_DAYS = 90
MAX_SCHEDULES_PER_SEARCH = 20
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _display(resource_type: str, resource_id: Any, display: str = "") -> JSON:
    return reference(resource_type, resource_id, display)


# --- Schedule -----------------------------------------------------------------------------------------------


def _hours_text(rows: Iterable[Schedule]) -> str:
    parts = []
    for row in rows:
        text = f"{WEEKDAYS[row.weekday]} {row.start_time:%H:%M}-{row.end_time:%H:%M} at {row.location.name}"
        text += f" ({row.slot_minutes}-minute slots"
        breaks = availability.parse_breaks(row.breaks)
        if breaks:
            text += "; breaks " + ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in breaks)
        if row.valid_from or row.valid_until:
            text += f"; {row.valid_from or '…'} to {row.valid_until or '…'}"
        parts.append(text + ")")
    return "; ".join(parts)


def schedule_to_fhir(practitioner: Practitioner, rows: list[Schedule], today: date) -> JSON:
    """The FHIR Schedule of a practitioner's weekly hours."""
    locations: dict[uuid.UUID, Location] = {}
    for row in rows:
        locations.setdefault(row.location_id, row.location)
    actors = [_display("Practitioner", practitioner.id, practitioner.display_name)]
    actors += [_display("Location", loc.id, loc.name) for loc in locations.values()]
    horizon_end = today + timedelta(days=availability.SEARCH_HORIZON_DAYS)
    if rows and all(r.valid_until is not None for r in rows):
        horizon_end = min(horizon_end, max(r.valid_until for r in rows if r.valid_until is not None))
    active = any(r.valid_until is None or r.valid_until >= today for r in rows)
    return drop_empty(
        {
            "resourceType": "Schedule",
            "id": str(practitioner.id),
            "active": active,
            "actor": actors,
            "planningHorizon": {"start": today.isoformat(), "end": max(horizon_end, today).isoformat()}
            if active
            else None,
            "comment": _hours_text(rows),
        }
    )


def read_schedule(ctx: FhirContext, practitioner_id: uuid.UUID) -> JSON:
    """A practitioner's schedule (404 without weekly hours or outside the directory)."""
    practitioner = directory.get_practitioner(ctx.session, ctx.principal, practitioner_id)
    rows = availability.schedules_of(ctx.session, [practitioner.id]).get(practitioner.id, [])
    if not rows:
        raise NotFound("No such schedule.")
    return schedule_to_fhir(practitioner, rows, utcnow().date())


def _actor(value: str) -> tuple[str, uuid.UUID]:
    tail = value.rstrip("/").split("/")
    if len(tail) < 2 or tail[-2] not in ("Practitioner", "Location"):
        raise invalid(f"actor must be Practitioner/<id> or Location/<id> (got '{value}').")
    return tail[-2], reference_id(value, tail[-2])


def _boolean(query: SearchQuery, name: str) -> bool | None:
    raw = query.one(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise invalid(f"{name} must be true or false.")
    return raw == "true"


def search_schedules(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Schedules by actor (practitioner or location) and active."""
    practitioner_id = location_id = None
    actor = query.one("actor")
    if actor is not None:
        kind, actor_id = _actor(actor)
        if kind == "Practitioner":
            practitioner_id = actor_id
        else:
            location_id = actor_id
    today = utcnow().date()
    page = availability.list_scheduled_practitioners(
        ctx.session,
        ctx.principal,
        practitioner_id=practitioner_id,
        location_id=location_id,
        active=_boolean(query, "active"),
        today=today,
        limit=max(query.count, 1),
        cursor=query.cursor,
        count_total=True,
    )
    rows = availability.schedules_of(ctx.session, [p.id for p in page.items])
    return SearchResult(
        resources=[schedule_to_fhir(p, rows.get(p.id, []), today) for p in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
    )


# --- Slot ---------------------------------------------------------------------------------------------------


def slot_id(practitioner_id: uuid.UUID, start: datetime) -> str:
    """The stable id of a computed slot: ``<practitioner uuid>-<YYYYMMDDHHMM in UTC>``."""
    return f"{practitioner_id}-{start.astimezone(UTC):%Y%m%d%H%M}"


def parse_slot_id(raw: str) -> tuple[uuid.UUID, datetime]:
    """The practitioner and start a slot id stands for; ``ValueError`` for anything else."""
    if len(raw) != 49 or raw[36] != "-" or not raw[37:].isdigit():
        raise ValueError(raw)
    practitioner_id = uuid.UUID(raw[:36])
    if str(practitioner_id) != raw[:36].lower():
        raise ValueError(raw)
    return practitioner_id, datetime.strptime(raw[37:], "%Y%m%d%H%M").replace(tzinfo=UTC)


def slot_to_fhir(practitioner: Practitioner, slot: Slot, state: str) -> JSON:
    """The FHIR Slot for a computed slot and its state (free, booked, off)."""
    return {
        "resourceType": "Slot",
        "id": slot_id(practitioner.id, slot.start),
        "schedule": _display("Schedule", practitioner.id, practitioner.display_name),
        "status": SLOT_STATUS[state],
        "start": instant(slot.start),
        "end": instant(slot.end),
    }


def read_slot(ctx: FhirContext, key: tuple[uuid.UUID, datetime]) -> JSON:
    """A slot, free or busy; 404 when the time is not in the practitioner's hours (or has passed)."""
    practitioner_id, start = key
    practitioner = directory.get_practitioner(ctx.session, ctx.principal, practitioner_id)
    day = start.date()
    for slot, state in availability.slots_with_state(
        ctx.session, practitioner.id, day - timedelta(days=1), day + timedelta(days=1)
    ):
        if slot.start == start:
            return slot_to_fhir(practitioner, slot, state)
    raise NotFound("No such slot: that time is not in the practitioner's hours, or it has passed.")


def _slot_window(query: SearchQuery, now: datetime) -> tuple[datetime, datetime]:
    wanted = date_range(query.params.get("start", []))
    low = max(wanted.start or now, now)
    high = wanted.end or low + timedelta(days=SLOT_WINDOW_DAYS)
    if high - low > timedelta(days=MAX_SLOT_WINDOW_DAYS):
        raise invalid(
            f"Ask for at most {MAX_SLOT_WINDOW_DAYS} days of slots at a time, "
            "e.g. start=ge2025-03-01&start=lt2025-04-01."
        )
    return low, high


def search_slots(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Slots of one or more schedules (required), by status and start (default: the next 14 days)."""
    schedules = query.values("schedule")
    if not schedules:
        raise invalid(
            "Slot search needs schedule=Schedule/<id> "
            "(find schedules with GET Schedule?actor=Practitioner/<id>)."
        )
    if len(schedules) > MAX_SCHEDULES_PER_SEARCH:
        raise not_supported(f"Search at most {MAX_SCHEDULES_PER_SEARCH} schedules at a time.")
    statuses = set(query.values("status"))
    unknown = statuses - set(FHIR_SLOT_STATUSES)
    if unknown:
        raise invalid(
            f"Unknown slot status {', '.join(sorted(unknown))}; use {', '.join(FHIR_SLOT_STATUSES)}."
        )
    now = utcnow()
    low, high = _slot_window(query, now)
    found: list[tuple[datetime, str, JSON]] = []
    for practitioner_id in dict.fromkeys(reference_id(v, "Schedule") for v in schedules):
        practitioner = directory.get_practitioner(ctx.session, ctx.principal, practitioner_id)
        if high <= low:
            continue
        states = availability.slots_with_state(
            ctx.session, practitioner.id, low.date() - timedelta(days=1), high.date() + timedelta(days=1), now
        )
        for slot, state in states:
            if low <= slot.start < high and (not statuses or SLOT_STATUS[state] in statuses):
                found.append((slot.start, str(practitioner.id), slot_to_fhir(practitioner, slot, state)))
    found.sort(key=lambda item: (item[0], item[1]))
    total = len(found)  # every match in the window, on every page
    if query.cursor:
        try:
            after_id, after_start = parse_slot_id(query.cursor)
        except ValueError:
            raise invalid("The _cursor is invalid; start the search again.") from None
        found = [item for item in found if (item[0], item[1]) > (after_start, str(after_id))]
    size = max(query.count, 1)
    page = found[:size]
    next_cursor = page[-1][2]["id"] if len(found) > size else None
    return SearchResult(resources=[item[2] for item in page], total=total, next_cursor=next_cursor)


# --- Appointment --------------------------------------------------------------------------------------------


def appointment_to_fhir(appointment: Appointment) -> JSON:
    """The FHIR Appointment."""
    status = APPOINTMENT_STATUS[S(appointment.status)]
    patient = appointment.patient
    participants: list[JSON] = [
        {
            "actor": _display(
                "Patient", appointment.patient_id, f"{patient.given_name} {patient.family_name}"
            ),
            "required": "required",
            "status": "needs-action" if status == "proposed" else "accepted",
        },
        {
            "type": [{"coding": [PRIMARY_PERFORMER]}],
            "actor": _display(
                "Practitioner", appointment.practitioner_id, appointment.practitioner.display_name
            ),
            "required": "required",
            "status": "accepted",
        },
    ]
    if appointment.location_id is not None and appointment.location is not None:
        participants.append(
            {
                "actor": _display("Location", appointment.location_id, appointment.location.name),
                "required": "required",
                "status": "accepted",
            }
        )
    minutes = int((appointment.end_at - appointment.start_at).total_seconds() // 60)
    holds = S(appointment.status) in ACTIVE
    return drop_empty(
        {
            "resourceType": "Appointment",
            "id": str(appointment.id),
            "meta": {"lastUpdated": instant(appointment.updated_at)},
            "status": status,
            "cancelationReason": {"text": appointment.cancel_reason}
            if status == "cancelled" and appointment.cancel_reason
            else None,
            "reasonCode": [{"text": appointment.reason}] if appointment.reason else None,
            "start": instant(appointment.start_at),
            "end": instant(appointment.end_at),
            "minutesDuration": minutes,
            "slot": [reference("Slot", slot_id(appointment.practitioner_id, appointment.start_at))]
            if holds
            else None,
            "created": instant(appointment.created_at),
            "participant": participants,
        }
    )


def read_appointment(ctx: FhirContext, appointment_id: uuid.UUID) -> JSON:
    """One appointment the caller may see (others: 404, audited by the service)."""
    return appointment_to_fhir(booking.get_appointment(ctx.session, ctx.principal, appointment_id))


def _statuses(query: SearchQuery) -> str | None:
    """The domain statuses a status search asks for ("" = any; ``None`` = none can match)."""
    wanted = query.values("status")
    if not wanted:
        return ""
    unknown = [s for s in wanted if s not in FHIR_APPOINTMENT_STATUSES]
    if unknown:
        raise invalid(
            f"Unknown appointment status {', '.join(unknown)}; use {', '.join(FHIR_APPOINTMENT_STATUSES)}."
        )
    domain = [DOMAIN_STATUS[s].value for s in wanted if s in DOMAIN_STATUS]
    return ",".join(domain) if domain else None


def _reference_param(query: SearchQuery, name: str, resource_type: str) -> uuid.UUID | None:
    value = query.one(name)
    return reference_id(value, resource_type) if value is not None else None


def search_appointments(ctx: FhirContext, query: SearchQuery) -> SearchResult:
    """Appointments the caller may see, by patient, practitioner, location, date and status, in time order."""
    statuses = _statuses(query)
    window = date_range(query.params.get("date", []))
    patient_id = _reference_param(query, "patient", "Patient")
    practitioner_id = _reference_param(query, "practitioner", "Practitioner")
    location_id = _reference_param(query, "location", "Location")
    if statuses is None:  # only statuses CareSync never uses (pending, entered-in-error)
        return SearchResult(resources=[], total=0)
    page = booking.list_appointments(
        ctx.session,
        ctx.principal,
        status=statuses,
        start=window.start,
        end=window.end,
        patient_id=patient_id,
        practitioner_id=practitioner_id,
        location_id=location_id,
        limit=max(query.count, 1),
        cursor=query.cursor,
        count_total=True,
    )
    included: list[JSON] = []
    if "Appointment:patient" in query.includes:
        included += included_reads(ctx, "Patient", (a.patient_id for a in page.items))
    if "Appointment:practitioner" in query.includes:
        included += included_reads(ctx, "Practitioner", (a.practitioner_id for a in page.items))
    if "Appointment:location" in query.includes:
        locations = (a.location_id for a in page.items if a.location_id)
        included += included_reads(ctx, "Location", locations)
    return SearchResult(
        resources=[appointment_to_fhir(a) for a in page.items],
        total=page.total,
        next_cursor=page.next_cursor,
        included=included,
    )


def everything(ctx: FhirContext, patient_id: uuid.UUID) -> list[JSON]:
    """All of a patient's appointments the caller may see (one query)."""
    return [
        appointment_to_fhir(a) for a in booking.patient_appointments(ctx.session, ctx.principal, patient_id)
    ]


# --- Appointment create and update --------------------------------------------------------------------------


def _moment(body: JSON, name: str) -> datetime | None:
    raw = body.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{name} must be an instant, e.g. 2025-03-03T09:30:00Z.") from None
    if moment.tzinfo is None:
        raise invalid(f"{name} must carry a time zone, e.g. 2025-03-03T09:30:00Z.")
    return moment.astimezone(UTC)


def _participants(body: JSON) -> dict[str, uuid.UUID]:
    """The body's participant actors by type (Patient, Practitioner, Location), one each."""
    found: dict[str, uuid.UUID] = {}
    for participant in body.get("participant", []):
        ref = (participant.get("actor") or {}).get("reference")
        if not ref:
            continue
        kind = ref.rstrip("/").split("/")[-2] if "/" in ref else ""
        if kind not in ("Patient", "Practitioner", "Location"):
            raise invalid(f"Participant '{ref}': use Patient/<id>, Practitioner/<id> or Location/<id>.")
        actor_id = reference_id(ref, kind)
        if found.get(kind, actor_id) != actor_id:
            raise not_supported(f"An appointment here has one {kind}.")
        found[kind] = actor_id
    return found


def _reason(body: JSON) -> str:
    texts = []
    for concept in body.get("reasonCode", []):
        text = concept.get("text") or next(
            (c.get("display") or c.get("code") for c in concept.get("coding", []) if c), None
        )
        if text:
            texts.append(text)
    if not texts and body.get("comment"):
        texts.append(body["comment"])
    return "; ".join(texts)[:500]


def _slot_of(body: JSON) -> tuple[uuid.UUID, datetime] | None:
    slots = body.get("slot", [])
    if not slots:
        return None
    if len(slots) > 1:
        raise not_supported("Book one slot per appointment.")
    ref = slots[0].get("reference", "")
    try:
        return parse_slot_id(ref.rstrip("/").split("/")[-1])
    except ValueError:
        raise invalid(f"'{ref}' is not a slot of this server (Slot/<id> from a Slot search).") from None


def _check_end(body: JSON, appointment: Appointment) -> None:
    end = _moment(body, "end")
    minutes = int((appointment.end_at - appointment.start_at).total_seconds() // 60)
    if (end is not None and end != appointment.end_at) or body.get("minutesDuration") not in (None, minutes):
        raise ValidationFailed(
            f"The slot is {minutes} minutes long (the practitioner's schedule decides): "
            f"end must be {instant(appointment.end_at)} or be left out."
        )


def create_appointment(ctx: FhirContext, body: JSON) -> JSON:
    """Book: the Practitioner participant (or a slot) and start; a patient books for themselves, staff for
    a patient in their care (the Patient participant). 409 when taken, 422 in the past."""
    status = body.get("status")
    if status not in CREATE_STATUSES:
        raise invalid(f"Create books the slot: status must be one of {', '.join(CREATE_STATUSES)}.")
    actors = _participants(body)
    slot = _slot_of(body)
    practitioner_id = actors.get("Practitioner") or (slot[0] if slot else None)
    start = _moment(body, "start") or (slot[1] if slot else None)
    if practitioner_id is None or start is None:
        raise invalid("Name the Practitioner participant and the start (or give the slot to book).")
    if slot and (slot[0] != practitioner_id or slot[1] != start):
        raise invalid("The slot does not match the Practitioner participant and start.")
    practitioner = directory.get_practitioner(ctx.session, ctx.principal, practitioner_id)
    if "Location" in actors and actors["Location"] not in {
        loc.id for loc in directory.practitioner_locations(ctx.session, practitioner.id)
    }:
        raise invalid("The Location participant is not where this practitioner works.")
    modes = practitioner.modes
    mode = ConsultationMode.IN_PERSON.value if ConsultationMode.IN_PERSON.value in modes else modes[0]
    request = booking.BookingRequest(
        practitioner_id=practitioner.id,
        start=start,
        patient_id=actors.get("Patient"),
        mode=mode,
        reason=_reason(body),
    )
    appointment = booking.book(ctx.session, ctx.principal, request)
    _check_end(body, appointment)
    return appointment_to_fhir(appointment)


def _refuse_other_changes(body: JSON, current: Appointment) -> None:
    actors = _participants(body)
    unchanged = {
        "Patient": current.patient_id,
        "Practitioner": current.practitioner_id,
        "Location": current.location_id,
    }
    for kind, actor_id in actors.items():
        if actor_id != unchanged[kind]:
            raise invalid(f"The {kind} of an appointment cannot be changed; book a new appointment instead.")
    if "reasonCode" in body and _reason(body) != current.reason:
        raise invalid("The reason of an appointment cannot be changed here.")


def update_appointment(ctx: FhirContext, appointment_id: uuid.UUID, body: JSON) -> JSON:
    """Change the status (cancel, visit progress, accept an offer) or the time (reschedule), one at a time."""
    current = booking.get_appointment(ctx.session, ctx.principal, appointment_id)
    _refuse_other_changes(body, current)
    old_status, new_status = APPOINTMENT_STATUS[S(current.status)], body["status"]
    start = _moment(body, "start")
    moved = start is not None and start != current.start_at
    if moved and new_status != old_status:
        raise invalid("Change either the status or the time in one update, not both.")
    if moved:
        assert start is not None
        new = booking.reschedule(ctx.session, ctx.principal, current.id, start)
        _check_end(body, new)
        return appointment_to_fhir(new)
    _check_end(body, current)
    if new_status == old_status:
        return appointment_to_fhir(current)
    if new_status == "cancelled":
        reason = (body.get("cancelationReason") or {}).get("text") or ""
        changed = booking.cancel(ctx.session, ctx.principal, current.id, reason)
    elif new_status in PROGRESS_STEPS:
        changed = booking.progress(ctx.session, ctx.principal, current.id, PROGRESS_STEPS[new_status])
    elif new_status == "booked" and old_status == "proposed":
        changed = booking.accept_offer(ctx.session, ctx.principal, current.id)
    else:
        raise invalid(
            f"An appointment cannot go from {old_status} to {new_status} here. Allowed: cancelled, "
            f"{', '.join(PROGRESS_STEPS)} (visit progress, staff), booked (accepting an offer), "
            "or a new start (reschedule)."
        )
    return appointment_to_fhir(changed)


RESOURCES = (
    ResourceType(
        name="Schedule",
        documentation="A practitioner's weekly working hours (one Schedule per practitioner; id = the "
        "Practitioner's id). Readable by every signed-in role with directory access.",
        read=read_schedule,
        search=search_schedules,
        search_params=(
            SearchParam("actor", "reference", "Practitioner/<id> or Location/<id> the schedule is for."),
            SearchParam("active", "token", "true: hours still in force; false: only expired hours."),
        ),
    ),
    ResourceType(
        name="Slot",
        documentation="Bookable times computed from the schedule, breaks, time off and appointments; id = "
        "<practitioner id>-<start as YYYYMMDDHHMM UTC>. free, busy (booked) or busy-unavailable (time off).",
        read=read_slot,
        search=search_slots,
        search_params=(
            SearchParam("schedule", "reference", "Required: Schedule/<id> (comma-separated for several)."),
            SearchParam("status", "token", "free, busy or busy-unavailable (default: all)."),
            SearchParam(
                "start",
                "date",
                f"Start time with eq/ge/gt/le/lt prefixes; default the next {SLOT_WINDOW_DAYS} days, at "
                f"most {MAX_SLOT_WINDOW_DAYS} days per search.",
            ),
        ),
        parse_id=parse_slot_id,
    ),
    ResourceType(
        name="Appointment",
        documentation="Appointments: a patient's own, a practitioner's own, an organisation's for staff "
        "managing appointments. Create books a slot with the app's rules (409 when taken); update cancels, "
        "reschedules (a new appointment; the old one is cancelled), records the visit's progress or accepts "
        "a waitlist offer.",
        read=read_appointment,
        search=search_appointments,
        create=create_appointment,
        update=update_appointment,
        everything=everything,
        search_params=(
            SearchParam("patient", "reference", "Patient/<id>."),
            SearchParam("practitioner", "reference", "Practitioner/<id>."),
            SearchParam("location", "reference", "Location/<id>."),
            SearchParam("date", "date", "Start time, with eq/ge/gt/le/lt prefixes."),
            SearchParam("status", "token", "Appointment status (comma-separated alternatives)."),
        ),
        includes=("Appointment:patient", "Appointment:practitioner", "Appointment:location"),
    ),
)
