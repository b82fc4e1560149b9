"""Clinic queue use cases: walk-ins and checked-in appointments join a location's queue, nurses triage them,
the queue is read in call order (``rules.queue_order``) with waits and estimates, clinicians call the next
patient and see them, overdue patients are escalated once (their organisation's nurses are told), and a
patient sees only their own place. Every change is audited and announced, once committed, on the
location's board channel and to the patient's own sockets."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import event as sqla_event
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.core import audit, realtime
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.core.notify import notify
from caresync.core.rbac import Access, Perm, patient_access, require, require_any
from caresync.db import utcnow
from caresync.identity import patients as patient_service
from caresync.identity.models import User
from caresync.identity.rules import STAFF_ROLES, normalise_health_id
from caresync.scheduling.models import Appointment, ClinicSettings, Location, QueueEntry
from caresync.scheduling.rules import (
    DEFAULT_MAX_WAIT_MINUTES,
    OPEN_QUEUE_STATUSES,
    TRIAGE_LABELS,
    TRIAGE_LEVELS,
    QueueStatus,
    TriageScale,
    effective_level,
    estimated_waits,
    is_overdue,
    queue_order,
    typical_consultation_minutes,
)

RECENT_CONSULTATIONS = 20  # how many finished consultations the typical duration is taken from
CLINICIAN_WINDOW = timedelta(hours=1)  # clinicians = distinct callers within this window
NOW_CALLING_WINDOW = timedelta(minutes=30)  # how long a call stays on the board
MAX_WAIT_LIMIT = 24 * 60
TRIAGE_COLOURS = {1: "red", 2: "orange", 3: "yellow", 4: "green", 5: "blue"}
# Which status may follow which (the clinic queue's small state machine).
NEXT_STATUSES: dict[QueueStatus, frozenset[QueueStatus]] = {
    QueueStatus.WAITING: frozenset({QueueStatus.CALLED, QueueStatus.LEFT}),
    QueueStatus.CALLED: frozenset({QueueStatus.IN_CONSULTATION, QueueStatus.DONE, QueueStatus.LEFT}),
    QueueStatus.IN_CONSULTATION: frozenset({QueueStatus.DONE}),
    QueueStatus.DONE: frozenset(),
    QueueStatus.LEFT: frozenset(),
}


# --- views ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TriagePolicy:
    """An organisation's triage scale and the maximum wait (minutes) per level."""

    scale: TriageScale
    max_wait: dict[int, int]
    customised: bool

    def label(self, level: int | None) -> str:
        """The scale's name for a level ("Not triaged" when none)."""
        return TRIAGE_LABELS[self.scale][level] if level else "Not triaged"


@dataclass(frozen=True)
class QueueItem:
    """One open queue entry as the console and the API show it."""

    entry: QueueEntry
    position: int | None  # 1 = next to be called; None once called
    effective_level: int
    overdue: bool
    waited_minutes: int
    estimated_wait_minutes: int | None
    triage_label: str
    triage_colour: str

    @property
    def patient_name(self) -> str:
        """The patient's display name (never shown on the board)."""
        return f"{self.entry.patient.given_name} {self.entry.patient.family_name}"


@dataclass(frozen=True)
class QueueView:
    """A location's open queue: waiting patients in call order, then those called or being seen."""

    location: Location
    policy: TriagePolicy
    waiting: list[QueueItem]
    in_progress: list[QueueItem]
    consultation_minutes: float
    clinicians: int


@dataclass(frozen=True)
class BoardTicket:
    """A ticket on the waiting-room board (no patient data)."""

    ticket: str
    position: int
    estimated_wait_minutes: int
    overdue: bool


@dataclass(frozen=True)
class BoardCall:
    """A recent call shown on the board."""

    ticket: str
    room: str
    called_at: datetime


@dataclass(frozen=True)
class BoardView:
    """What the waiting-room screen shows: tickets only."""

    location: Location
    tickets: list[BoardTicket]
    calls: list[BoardCall]


@dataclass(frozen=True)
class OwnPlace:
    """A patient's own place in one queue."""

    entry: QueueEntry
    location_name: str
    position: int | None
    ahead: int
    estimated_wait_minutes: int | None


# --- settings ---------------------------------------------------------------------------------------------


def _parse_max_wait(raw: str, scale: TriageScale) -> tuple[dict[int, int], bool]:
    if raw:
        try:
            data = json.loads(raw)
            parsed = {int(k): int(v) for k, v in data.items()}
            if set(parsed) == set(TRIAGE_LEVELS):
                return parsed, True
        except (ValueError, TypeError, AttributeError):
            pass  # a damaged value falls back to the scale's defaults
    return dict(DEFAULT_MAX_WAIT_MINUTES[scale]), False


def policy_for(session: Session, organisation_id: uuid.UUID) -> TriagePolicy:
    """The organisation's triage policy (Manchester with its own target times when nothing is set)."""
    row = session.get(ClinicSettings, organisation_id)
    scale = TriageScale(row.triage_scale) if row else TriageScale.MANCHESTER
    max_wait, customised = _parse_max_wait(row.max_wait_minutes if row else "", scale)
    return TriagePolicy(scale=scale, max_wait=max_wait, customised=customised)


def get_settings(session: Session, principal: Principal) -> TriagePolicy:
    """The caller's organisation's triage policy (clinicians and administrators)."""
    require_any(
        session,
        principal,
        (Perm.QUEUE_MANAGE, Perm.SCHEDULE_MANAGE),
        "queue.settings_read",
        "Only clinicians and administrators see the triage settings.",
    )
    org = _organisation_of(principal)
    return policy_for(session, org)


def validate_max_wait(max_wait: dict[int, int]) -> dict[int, int]:
    """Check a table of maximum waits: every level 1-5, 0 to 1440 minutes, never shorter for a less urgent
    level. Raises ``ValidationFailed`` naming the field."""
    if set(max_wait) != set(TRIAGE_LEVELS):
        raise ValidationFailed(
            "Give a maximum wait for each level 1 to 5.", extra={"field": "max_wait_minutes"}
        )
    for level in TRIAGE_LEVELS:
        minutes = max_wait[level]
        if not 0 <= minutes <= MAX_WAIT_LIMIT:
            raise ValidationFailed(
                f"Level {level}: the maximum wait must be between 0 and {MAX_WAIT_LIMIT} minutes.",
                extra={"field": f"max_wait_{level}"},
            )
        if level > 1 and minutes < max_wait[level - 1]:
            raise ValidationFailed(
                f"Level {level} is less urgent than level {level - 1}; its maximum wait cannot be shorter.",
                extra={"field": f"max_wait_{level}"},
            )
    return dict(max_wait)


def update_settings(
    session: Session, principal: Principal, scale: TriageScale | str, max_wait: dict[int, int] | None
) -> TriagePolicy:
    """Administrators choose the triage scale and, optionally, their own maximum waits (``None`` = the
    scale's defaults)."""
    require(session, principal, Perm.SCHEDULE_MANAGE, "queue.settings_update")
    org = _organisation_of(principal)
    try:
        chosen = TriageScale(scale)
    except ValueError:
        raise ValidationFailed(
            "Choose the Manchester or ESI triage scale.", extra={"field": "scale"}
        ) from None
    row = session.get(ClinicSettings, org)
    if row is None:
        row = ClinicSettings(organisation_id=org)
        session.add(row)
    row.triage_scale = chosen.value
    row.max_wait_minutes = (
        json.dumps({str(k): v for k, v in sorted(validate_max_wait(max_wait).items())}) if max_wait else ""
    )
    session.flush()
    policy = policy_for(session, org)
    audit.record(
        session,
        principal,
        "queue.settings_update",
        resource_type="ClinicSettings",
        resource_id=org,
        detail={"scale": policy.scale.value, "max_wait": policy.max_wait, "customised": policy.customised},
    )
    return policy


# --- access helpers ---------------------------------------------------------------------------------------


def _organisation_of(principal: Principal) -> uuid.UUID:
    if principal.organisation_id is None:
        raise Forbidden("Only staff of an organisation can do this.")
    return principal.organisation_id


def _is_org_staff(principal: Principal, organisation_id: uuid.UUID) -> bool:
    return principal.is_system or (
        principal.role in STAFF_ROLES and principal.organisation_id == organisation_id
    )


def locations(session: Session, principal: Principal) -> list[Location]:
    """The locations of the caller's organisation, by name (where a queue can be run)."""
    require(session, principal, Perm.QUEUE_MANAGE, "queue.locations")
    query = select(Location).where(Location.organisation_id == principal.organisation_id)
    return list(session.execute(query.order_by(Location.name)).scalars())


def _location(session: Session, principal: Principal, location_id: uuid.UUID, action: str) -> Location:
    """A location of the caller's organisation; anything else looks missing (and the denial is audited)."""
    location = session.get(Location, location_id)
    if location is None or not _is_org_staff(principal, location.organisation_id):
        if location is not None:
            audit.record_and_commit(
                session,
                principal,
                action,
                outcome="denied",
                resource_type="Location",
                resource_id=location_id,
            )
        raise NotFound("No such clinic location.")
    return location


def _entry(session: Session, principal: Principal, entry_id: uuid.UUID, action: str) -> QueueEntry:
    """A queue entry of the caller's organisation, locked for the change (others: 404, audited)."""
    require(session, principal, Perm.QUEUE_MANAGE, action)
    entry = session.execute(
        select(QueueEntry).where(QueueEntry.id == entry_id).with_for_update(of=QueueEntry)
    ).scalar_one_or_none()
    if entry is None or not _is_org_staff(principal, entry.organisation_id):
        if entry is not None:
            audit.record_and_commit(
                session,
                principal,
                action,
                outcome="denied",
                patient_id=entry.patient_id,
                resource_type="QueueEntry",
                resource_id=entry_id,
            )
        raise NotFound("No such queue entry.")
    return entry


def entry_location(session: Session, principal: Principal, entry_id: uuid.UUID) -> uuid.UUID:
    """The location of a queue entry the caller may manage (others: 404)."""
    return _entry(session, principal, entry_id, "queue.entry").location_id


def _lock_location(session: Session, location_id: uuid.UUID) -> None:
    """Serialise joins and calls per location (a row lock on PostgreSQL; SQLite writers are serial)."""
    session.execute(select(Location.id).where(Location.id == location_id).with_for_update())


def _link_care(session: Session, principal: Principal, patient_id: uuid.UUID, reason: str) -> None:
    """Give the acting clinician a care relationship with the patient (audited) unless one is active."""
    if (
        principal.user_id is None
        or principal.organisation_id is None
        or principal.role not in {"doctor", "nurse"}
    ):
        return
    if patient_access(session, principal, patient_id) is Access.CARE_TEAM:
        return
    patient_service.link_care(
        session, patient_id, principal.user_id, principal.organisation_id, reason, actor=principal
    )


# --- announcing changes -----------------------------------------------------------------------------------


def _announce(session: Session, entry: QueueEntry, change: str) -> None:
    """Once the transaction commits, tell the location's board channel and the patient's sockets. The
    board event carries the ticket and room only, never patient data."""
    event = {
        "type": "queue",
        "change": change,
        "location_id": str(entry.location_id),
        "entry_id": str(entry.id),
        "ticket": entry.ticket,
        "status": entry.status,
        "room": entry.room,
    }
    location_id = entry.location_id
    user_id = entry.patient.user_id if entry.patient is not None else None

    def send(_session: Session) -> None:
        realtime.publish(location_id, event)
        if user_id is not None:
            realtime.publish(user_id, event)

    sqla_event.listen(session, "after_commit", send, once=True)


# --- joining ----------------------------------------------------------------------------------------------


def _local_midnight_utc(location: Location, now: datetime) -> datetime:
    try:
        zone = ZoneInfo(location.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _next_ticket(session: Session, location: Location, prefix: str, now: datetime) -> str:
    """``W007``: the letter says walk-in (W) or appointment (A); the number counts today's arrivals at the
    location (its local day), so tickets are unique per location and day."""
    since = _local_midnight_utc(location, now)
    count = session.execute(
        select(func.count()).where(QueueEntry.location_id == location.id, QueueEntry.arrived_at >= since)
    ).scalar_one()
    return f"{prefix}{int(count) + 1:03d}"


def _open_entry(session: Session, location_id: uuid.UUID, patient_id: uuid.UUID) -> QueueEntry | None:
    return session.execute(
        select(QueueEntry).where(
            QueueEntry.location_id == location_id,
            QueueEntry.patient_id == patient_id,
            QueueEntry.status.in_([s.value for s in OPEN_QUEUE_STATUSES]),
        )
    ).scalar_one_or_none()


def _insert(session: Session, entry: QueueEntry) -> None:
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        raise Conflict("This patient is already in the queue at this location.") from None


def join_walk_in(
    session: Session, principal: Principal, location_id: uuid.UUID, health_id: str, complaint: str = ""
) -> QueueEntry:
    """A nurse adds a walk-in by Health ID. The nurse gets a care relationship (reason "walk-in") if
    none is active; a patient already waiting at this location is refused (409)."""
    require(session, principal, Perm.QUEUE_MANAGE, "queue.join")
    location = _location(session, principal, location_id, "queue.join")
    patient = patient_service.patient_by_health_id(session, health_id)
    if patient is None:
        audit.record_and_commit(
            session,
            principal,
            "queue.join",
            outcome="failure",
            resource_type="Location",
            resource_id=location.id,
            detail={"health_id": normalise_health_id(health_id)},
        )
        raise NotFound("No patient has this Health ID.", extra={"field": "health_id"})
    _lock_location(session, location.id)
    if _open_entry(session, location.id, patient.id) is not None:
        raise Conflict("This patient is already in the queue at this location.", extra={"field": "health_id"})
    now = utcnow()
    entry = QueueEntry(
        organisation_id=location.organisation_id,
        location_id=location.id,
        patient_id=patient.id,
        ticket=_next_ticket(session, location, "W", now),
        complaint=complaint.strip()[:300],
        arrived_at=now,
        status=QueueStatus.WAITING.value,
        triage_scale=policy_for(session, location.organisation_id).scale.value,
        patient=patient,
    )
    _insert(session, entry)
    _link_care(session, principal, patient.id, "walk-in")
    audit.record(
        session,
        principal,
        "queue.join",
        patient_id=patient.id,
        resource_type="QueueEntry",
        resource_id=entry.id,
        detail={"location_id": str(location.id), "ticket": entry.ticket, "source": "walk-in"},
    )
    _announce(session, entry, "joined")
    return entry


def join_from_appointment(session: Session, principal: Principal, appointment: Appointment) -> QueueEntry:
    """Put a checked-in appointment's patient in the queue of the appointment's location (called by the
    check-in use case, in its transaction). Idempotent: a patient already in that queue keeps their place
    (the appointment is linked to it if it had none)."""
    require(session, principal, Perm.QUEUE_MANAGE, "queue.join")
    if appointment.location_id is None:
        raise ValidationFailed("This appointment has no location, so it has no clinic queue to join.")
    location = _location(session, principal, appointment.location_id, "queue.join")
    _lock_location(session, location.id)
    existing = _open_entry(session, location.id, appointment.patient_id)
    if existing is not None:
        if existing.appointment_id is None:
            existing.appointment_id = appointment.id
        return existing
    now = utcnow()
    entry = QueueEntry(
        organisation_id=location.organisation_id,
        location_id=location.id,
        patient_id=appointment.patient_id,
        appointment_id=appointment.id,
        ticket=_next_ticket(session, location, "A", now),
        complaint=(appointment.reason or "").strip()[:300],
        arrived_at=appointment.checked_in_at or now,
        status=QueueStatus.WAITING.value,
        triage_scale=policy_for(session, location.organisation_id).scale.value,
    )
    _insert(session, entry)
    session.refresh(entry)
    audit.record(
        session,
        principal,
        "queue.join",
        patient_id=entry.patient_id,
        resource_type="QueueEntry",
        resource_id=entry.id,
        detail={
            "location_id": str(location.id),
            "ticket": entry.ticket,
            "appointment_id": str(appointment.id),
        },
    )
    _announce(session, entry, "joined")
    return entry


# --- triage -----------------------------------------------------------------------------------------------


def triage(session: Session, principal: Principal, entry_id: uuid.UUID, level: int) -> QueueEntry:
    """Set (or change) a waiting patient's triage level on the organisation's scale. A re-triage clears
    an earlier escalation, so a patient overdue at the new level is escalated again."""
    entry = _entry(session, principal, entry_id, "queue.triage")
    if level not in TRIAGE_LEVELS:
        raise ValidationFailed("Choose a triage level from 1 (most urgent) to 5.", extra={"field": "level"})
    if entry.status != QueueStatus.WAITING:
        raise Conflict("Only patients still waiting can be triaged.")
    policy = policy_for(session, entry.organisation_id)
    previous = entry.triage_level
    entry.triage_level = level
    entry.triage_scale = policy.scale.value
    entry.triaged_by = principal.user_id
    entry.triaged_at = utcnow()
    entry.escalated_at = None
    session.flush()
    audit.record(
        session,
        principal,
        "queue.triage",
        patient_id=entry.patient_id,
        resource_type="QueueEntry",
        resource_id=entry.id,
        detail={"level": level, "previous": previous, "scale": policy.scale.value},
    )
    _announce(session, entry, "triaged")
    return entry


# --- reading the queue ------------------------------------------------------------------------------------


def _open_entries(session: Session, location_id: uuid.UUID) -> list[QueueEntry]:
    query = select(QueueEntry).where(
        QueueEntry.location_id == location_id,
        QueueEntry.status.in_([s.value for s in OPEN_QUEUE_STATUSES]),
    )
    return list(session.execute(query.order_by(QueueEntry.arrived_at, QueueEntry.id)).scalars())


def _consultation_stats(session: Session, location_id: uuid.UUID, now: datetime) -> tuple[float, int]:
    """The typical consultation length (median of the last finished ones) and how many clinicians called
    patients here in the last hour (at least one)."""
    rows = session.execute(
        select(QueueEntry.consultation_started_at, QueueEntry.called_at, QueueEntry.finished_at)
        .where(
            QueueEntry.location_id == location_id,
            QueueEntry.status == QueueStatus.DONE.value,
            QueueEntry.finished_at.is_not(None),
        )
        .order_by(QueueEntry.finished_at.desc())
        .limit(RECENT_CONSULTATIONS)
    ).all()
    durations: list[float] = []
    for started, called, finished in rows:
        began = started or called
        if began is not None and finished is not None:
            durations.append((finished - began).total_seconds() / 60)
    callers = session.execute(
        select(func.count(func.distinct(QueueEntry.called_by))).where(
            QueueEntry.location_id == location_id,
            QueueEntry.called_at >= now - CLINICIAN_WINDOW,
            QueueEntry.called_by.is_not(None),
        )
    ).scalar_one()
    return typical_consultation_minutes(durations), max(1, int(callers))


def _waited(entry: QueueEntry, now: datetime) -> int:
    return max(0, int((now - entry.arrived_at).total_seconds() // 60))


def _build(session: Session, location: Location, now: datetime) -> QueueView:
    policy = policy_for(session, location.organisation_id)
    entries = _open_entries(session, location.id)
    waiting = queue_order([e for e in entries if e.status == QueueStatus.WAITING], now, policy.max_wait)
    minutes, clinicians = _consultation_stats(session, location.id, now)
    estimates = estimated_waits(list(range(len(waiting))), minutes, clinicians)

    def item(entry: QueueEntry, position: int | None, estimate: int | None) -> QueueItem:
        return QueueItem(
            entry=entry,
            position=position,
            effective_level=effective_level(entry, now, policy.max_wait),
            overdue=entry.status == QueueStatus.WAITING and is_overdue(entry, now, policy.max_wait),
            waited_minutes=_waited(entry, now),
            estimated_wait_minutes=estimate,
            triage_label=policy.label(entry.triage_level),
            triage_colour=TRIAGE_COLOURS.get(entry.triage_level or 0, "secondary"),
        )

    in_progress = sorted(
        (e for e in entries if e.status != QueueStatus.WAITING), key=lambda e: e.called_at or e.arrived_at
    )
    return QueueView(
        location=location,
        policy=policy,
        waiting=[item(e, i + 1, estimates[i]) for i, e in enumerate(waiting)],
        in_progress=[item(e, None, None) for e in in_progress],
        consultation_minutes=minutes,
        clinicians=clinicians,
    )


def _escalate(session: Session, principal: Principal, view: QueueView, now: datetime) -> int:
    """Mark newly overdue waiting patients as escalated (once) and tell the organisation's nurses."""
    fresh = [i for i in view.waiting if i.overdue and i.entry.escalated_at is None]
    if not fresh:
        return 0
    nurses = list(
        session.execute(
            select(User.id).where(
                User.organisation_id == view.location.organisation_id,
                User.role == "nurse",
                User.is_active.is_(True),
            )
        ).scalars()
    )
    for item in fresh:
        entry = item.entry
        entry.escalated_at = now
        limit = view.policy.max_wait[entry.triage_level or 5]
        audit.record(
            session,
            principal,
            "queue.escalate",
            patient_id=entry.patient_id,
            resource_type="QueueEntry",
            resource_id=entry.id,
            detail={"level": entry.triage_level, "waited_minutes": item.waited_minutes, "max_wait": limit},
        )
        for nurse_id in nurses:
            notify(
                session,
                nurse_id,
                "queue_overdue",
                f"Ticket {entry.ticket} has waited past the limit",
                f"{view.policy.label(entry.triage_level)} patients should wait at most {limit} minutes; "
                f"ticket {entry.ticket} at {view.location.name} has waited {item.waited_minutes}.",
                link=f"/queue/{view.location.id}",
            )
        _announce(session, entry, "escalated")
    session.flush()
    return len(fresh)


def read_queue(
    session: Session, principal: Principal, location_id: uuid.UUID, now: datetime | None = None
) -> QueueView:
    """The open queue of a location in call order, with position, effective level, overdue flag, waited
    minutes and estimated wait; escalates newly overdue patients (so the caller must commit). Audited as
    a read of the listed patients' data."""
    require(session, principal, Perm.QUEUE_MANAGE, "queue.read")
    location = _location(session, principal, location_id, "queue.read")
    now = now or utcnow()
    view = _build(session, location, now)
    _escalate(session, principal, view, now)
    audit.record(
        session,
        principal,
        "queue.read",
        resource_type="Location",
        resource_id=location.id,
        detail={"waiting": len(view.waiting), "in_progress": len(view.in_progress)},
    )
    return view


def board_access(session: Session, principal: Principal, location_id: uuid.UUID) -> Location:
    """The location, if ``principal`` may watch its board: staff of its organisation (other roles 403,
    staff of other organisations 404)."""
    if not principal.is_system and principal.role not in STAFF_ROLES:
        audit.record_and_commit(session, principal, "queue.board", outcome="denied")
        raise Forbidden("Only staff can show the waiting-room board.")
    return _location(session, principal, location_id, "queue.board")


def board(
    session: Session, principal: Principal, location_id: uuid.UUID, now: datetime | None = None
) -> BoardView:
    """The waiting-room board: tickets in call order with estimated waits and the recent calls. Any staff
    member of the location's organisation may show it (it holds no patient data)."""
    location = board_access(session, principal, location_id)
    now = now or utcnow()
    view = _build(session, location, now)
    calls = sorted(
        (
            BoardCall(ticket=e.ticket, room=e.room, called_at=e.called_at)
            for e in (i.entry for i in view.in_progress)
            if e.status == QueueStatus.CALLED and e.called_at and now - e.called_at <= NOW_CALLING_WINDOW
        ),
        key=lambda call: call.called_at,
        reverse=True,
    )
    tickets = [
        BoardTicket(
            ticket=i.entry.ticket,
            position=i.position or 0,
            estimated_wait_minutes=i.estimated_wait_minutes or 0,
            overdue=i.overdue,
        )
        for i in view.waiting
    ]
    return BoardView(location=location, tickets=tickets, calls=calls)


def escalate_overdue(session: Session, principal: Principal, now: datetime | None = None) -> int:
    """Escalate every newly overdue waiting patient at every location (the periodic job); returns how
    many were escalated."""
    now = now or utcnow()
    location_ids = session.execute(
        select(QueueEntry.location_id)
        .where(
            QueueEntry.status == QueueStatus.WAITING.value,
            QueueEntry.triage_level.is_not(None),
            QueueEntry.escalated_at.is_(None),
        )
        .distinct()
    ).scalars()
    escalated = 0
    for location_id in list(location_ids):
        location = session.get(Location, location_id)
        if location is not None:
            escalated += _escalate(session, principal, _build(session, location, now), now)
    return escalated


def own_places(session: Session, principal: Principal) -> list[OwnPlace]:
    """A patient's own open queue entries with their position and estimated wait (nobody else's data)."""
    if principal.role != "patient" or principal.patient_id is None:
        audit.record_and_commit(session, principal, "queue.own_place", outcome="denied")
        raise Forbidden("Only patients have a place in a queue.")
    now = utcnow()
    mine = list(
        session.execute(
            select(QueueEntry).where(
                QueueEntry.patient_id == principal.patient_id,
                QueueEntry.status.in_([s.value for s in OPEN_QUEUE_STATUSES]),
            )
        ).scalars()
    )
    places: list[OwnPlace] = []
    for entry in mine:
        location = session.get(Location, entry.location_id)
        assert location is not None
        view = _build(session, location, now)
        item = next((i for i in view.waiting if i.entry.id == entry.id), None)
        places.append(
            OwnPlace(
                entry=entry,
                location_name=location.name,
                position=item.position if item else None,
                ahead=(item.position - 1) if item and item.position else 0,
                estimated_wait_minutes=item.estimated_wait_minutes if item else None,
            )
        )
    audit.record(
        session,
        principal,
        "queue.own_place",
        patient_id=principal.patient_id,
        resource_type="QueueEntry",
        detail={"entries": len(places)},
    )
    return places


# --- calling and seeing -----------------------------------------------------------------------------------


def _move(entry: QueueEntry, new: QueueStatus) -> None:
    current = QueueStatus(entry.status)
    if new not in NEXT_STATUSES[current]:
        raise Conflict(
            f"Ticket {entry.ticket} is {current.value.replace('-', ' ')}; it cannot be {_verb(new)} now."
        )
    entry.status = new.value


def _verb(status: QueueStatus) -> str:
    return {
        QueueStatus.CALLED: "called",
        QueueStatus.IN_CONSULTATION: "seen",
        QueueStatus.DONE: "finished",
        QueueStatus.LEFT: "marked as left",
        QueueStatus.WAITING: "put back in the queue",
    }[status]


def call_next(session: Session, principal: Principal, location_id: uuid.UUID, room: str) -> QueueEntry:
    """Call the first patient in call order to ``room``. The caller gets a care relationship with the
    patient (reason "queue call"); the patient is notified. 409 when nobody is waiting."""
    require(session, principal, Perm.QUEUE_MANAGE, "queue.call")
    room = room.strip()
    if not room or len(room) > 40:
        raise ValidationFailed("Say which room to go to (up to 40 characters).", extra={"field": "room"})
    location = _location(session, principal, location_id, "queue.call")
    _lock_location(session, location.id)
    now = utcnow()
    view = _build(session, location, now)
    if not view.waiting:
        raise Conflict("Nobody is waiting at this location.")
    entry = view.waiting[0].entry
    _move(entry, QueueStatus.CALLED)
    entry.called_at, entry.called_by, entry.room = now, principal.user_id, room
    session.flush()
    _link_care(session, principal, entry.patient_id, "queue call")
    audit.record(
        session,
        principal,
        "queue.call",
        patient_id=entry.patient_id,
        resource_type="QueueEntry",
        resource_id=entry.id,
        detail={"ticket": entry.ticket, "room": room, "level": entry.triage_level},
    )
    if entry.patient.user_id:
        notify(
            session,
            entry.patient.user_id,
            "queue_called",
            f"It is your turn: please go to {room}",
            f"Ticket {entry.ticket} at {location.name}.",
            link="/me/queue",
        )
    _announce(session, entry, "called")
    return entry


def _advance(
    session: Session, principal: Principal, entry_id: uuid.UUID, new: QueueStatus, action: str
) -> QueueEntry:
    entry = _entry(session, principal, entry_id, action)
    _move(entry, new)
    now = utcnow()
    if new is QueueStatus.IN_CONSULTATION:
        entry.consultation_started_at = now
    elif new is QueueStatus.DONE:
        entry.consultation_started_at = entry.consultation_started_at or entry.called_at
        entry.finished_at = now
    elif new is QueueStatus.LEFT:
        entry.finished_at = now
    session.flush()
    audit.record(
        session,
        principal,
        action,
        patient_id=entry.patient_id,
        resource_type="QueueEntry",
        resource_id=entry.id,
        detail={"ticket": entry.ticket, "status": entry.status},
    )
    _announce(session, entry, new.value)
    return entry


def start_consultation(session: Session, principal: Principal, entry_id: uuid.UUID) -> QueueEntry:
    """The called patient is now being seen."""
    return _advance(session, principal, entry_id, QueueStatus.IN_CONSULTATION, "queue.start")


def finish_consultation(session: Session, principal: Principal, entry_id: uuid.UUID) -> QueueEntry:
    """The consultation is over (its length feeds the wait estimates)."""
    return _advance(session, principal, entry_id, QueueStatus.DONE, "queue.finish")


def mark_left(session: Session, principal: Principal, entry_id: uuid.UUID) -> QueueEntry:
    """The patient left without being seen."""
    return _advance(session, principal, entry_id, QueueStatus.LEFT, "queue.left")
