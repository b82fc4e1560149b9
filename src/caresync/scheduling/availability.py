"""Working hours, time off and free slots: the practitioner's schedules minus their time off and the
appointments holding their time, computed with :func:`caresync.scheduling.rules.generate_slots`."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.orm import Session

from caresync.core import audit
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, require
from caresync.db import utcnow
from caresync.identity.credentials.service import verified_user_ids
from caresync.scheduling.models import Appointment, Location, Practitioner, Schedule, TimeOff
from caresync.scheduling.rules import (
    HOLDS_SLOT,
    Interval,
    Slot,
    WeeklyHours,
    _is_busy,
    generate_slots,
    merge_intervals,
)

SEARCH_HORIZON_DAYS = 180  # how far ahead "next free slot" looks
MAX_RANGE_DAYS = 62  # the longest range one slots request may ask for


def parse_breaks(raw: str) -> tuple[tuple[time, time], ...]:
    """A schedule's breaks from their JSON form (``[["12:00", "13:00"], …]``)."""
    return tuple((time.fromisoformat(a), time.fromisoformat(b)) for a, b in json.loads(raw or "[]"))


def weekly_hours(schedule: Schedule) -> WeeklyHours:
    """A schedule row as the rule's value object."""
    return WeeklyHours(
        weekday=schedule.weekday,
        start=schedule.start_time,
        end=schedule.end_time,
        slot_minutes=schedule.slot_minutes,
        location_id=schedule.location_id,
        breaks=parse_breaks(schedule.breaks),
        valid_from=schedule.valid_from,
        valid_until=schedule.valid_until,
    )


def busy_intervals(
    session: Session, practitioner_id: uuid.UUID, start: datetime, end: datetime
) -> list[Interval]:
    """Time off and slot-holding appointments of the practitioner overlapping ``[start, end)``."""
    off = session.execute(
        select(TimeOff.starts_at, TimeOff.ends_at).where(
            TimeOff.practitioner_id == practitioner_id, TimeOff.starts_at < end, TimeOff.ends_at > start
        )
    ).all()
    booked = session.execute(
        select(Appointment.start_at, Appointment.end_at).where(*_holding(practitioner_id, start, end))
    ).all()
    return [(a, b) for a, b in (*off, *booked)]


def _holding(practitioner_id: uuid.UUID, start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    """Conditions: an appointment of the practitioner that holds time overlapping ``[start, end)``."""
    return (
        Appointment.practitioner_id == practitioner_id,
        Appointment.status.in_([s.value for s in HOLDS_SLOT]),
        Appointment.start_at < end,
        Appointment.end_at > start,
    )


def free_slots(
    session: Session, practitioner_id: uuid.UUID, first_day: date, last_day: date, now: datetime | None = None
) -> list[Slot]:
    """The practitioner's free slots between two dates (inclusive), none before ``now``."""
    now = now or utcnow()
    schedules = (
        session.execute(select(Schedule).where(Schedule.practitioner_id == practitioner_id)).scalars().all()
    )
    by_zone: dict[str, list[WeeklyHours]] = defaultdict(list)
    for schedule in schedules:
        by_zone[schedule.location.timezone].append(weekly_hours(schedule))
    if not by_zone:
        return []
    # Local dates can straddle UTC days: widen the busy window by a day each side.
    window_start = datetime.combine(first_day - timedelta(days=1), time(), tzinfo=now.tzinfo)
    window_end = datetime.combine(last_day + timedelta(days=2), time(), tzinfo=now.tzinfo)
    busy = busy_intervals(session, practitioner_id, window_start, window_end)
    slots: set[Slot] = set()
    for zone, rules in by_zone.items():
        slots.update(generate_slots(rules, ZoneInfo(zone), first_day, last_day, busy=busy, not_before=now))
    return sorted(slots)


SlotState = str  # "free", "booked" (an appointment holds the time) or "off" (leave, holiday, block)


def slots_with_state(
    session: Session, practitioner_id: uuid.UUID, first_day: date, last_day: date, now: datetime | None = None
) -> list[tuple[Slot, SlotState]]:
    """Every slot of the practitioner's weekly hours between two dates (inclusive, none before ``now``)
    with its state: ``free`` (what :func:`free_slots` offers), ``booked`` or ``off``. Time off wins over a
    booking when both overlap a slot."""
    now = now or utcnow()
    schedules = (
        session.execute(select(Schedule).where(Schedule.practitioner_id == practitioner_id)).scalars().all()
    )
    by_zone: dict[str, list[WeeklyHours]] = defaultdict(list)
    for schedule in schedules:
        by_zone[schedule.location.timezone].append(weekly_hours(schedule))
    if not by_zone:
        return []
    window_start = datetime.combine(first_day - timedelta(days=1), time(), tzinfo=now.tzinfo)
    window_end = datetime.combine(last_day + timedelta(days=2), time(), tzinfo=now.tzinfo)
    off = merge_intervals(
        (a, b)
        for a, b in session.execute(
            select(TimeOff.starts_at, TimeOff.ends_at).where(
                TimeOff.practitioner_id == practitioner_id,
                TimeOff.starts_at < window_end,
                TimeOff.ends_at > window_start,
            )
        ).all()
    )
    booked = merge_intervals(
        (a, b)
        for a, b in session.execute(
            select(Appointment.start_at, Appointment.end_at).where(
                *_holding(practitioner_id, window_start, window_end)
            )
        ).all()
    )
    off_starts, booked_starts = [a for a, _ in off], [a for a, _ in booked]
    slots: set[Slot] = set()
    for zone, rules in by_zone.items():
        slots.update(generate_slots(rules, ZoneInfo(zone), first_day, last_day, not_before=now))
    found: list[tuple[Slot, SlotState]] = []
    for slot in sorted(slots):
        if _is_busy(slot, off, off_starts):
            found.append((slot, "off"))
        elif _is_busy(slot, booked, booked_starts):
            found.append((slot, "booked"))
        else:
            found.append((slot, "free"))
    return found


def next_free_slot(
    session: Session,
    practitioner_id: uuid.UUID,
    now: datetime | None = None,
    horizon_days: int = SEARCH_HORIZON_DAYS,
) -> Slot | None:
    """The earliest free slot within the horizon, looking two weeks at a time."""
    now = now or utcnow()
    first = now.date() - timedelta(days=1)
    last = now.date() + timedelta(days=horizon_days)
    while first <= last:
        window_end = min(first + timedelta(days=13), last)
        slots = free_slots(session, practitioner_id, first, window_end, now)
        if slots:
            return slots[0]
        first = window_end + timedelta(days=1)
    return None


def refresh_next_free(
    session: Session, practitioner_id: uuid.UUID, now: datetime | None = None
) -> datetime | None:
    """Recompute and store the practitioner's next free slot (shown and filtered on by search)."""
    slot = next_free_slot(session, practitioner_id, now)
    practitioner = session.get(Practitioner, practitioner_id)
    if practitioner is not None:
        practitioner.next_free_slot_at = slot.start if slot else None
    return slot.start if slot else None


def find_free_slot(session: Session, practitioner_id: uuid.UUID, start: datetime, now: datetime) -> Slot:
    """The free slot starting at ``start``, or a 409-worthy error saying why it cannot be booked."""
    if start <= now:
        raise ValidationFailed("That time is in the past.", extra={"field": "start"})
    day = start.date()
    for slot in free_slots(session, practitioner_id, day - timedelta(days=1), day + timedelta(days=1), now):
        if slot.start == start:
            return slot
    raise Conflict("That slot is no longer free. Pick another time.")


# --- managing schedules and time off -----------------------------------------------------------------------


def managed_practitioner(session: Session, principal: Principal, practitioner_id: uuid.UUID) -> Practitioner:
    """A practitioner whose schedule ``principal`` may change: admins of the same organisation; a
    practitioner may also manage their own time off."""
    practitioner = session.get(Practitioner, practitioner_id)
    if practitioner is None or (
        practitioner.organisation_id != principal.organisation_id and not principal.is_system
    ):
        raise NotFound("No such practitioner.")
    return practitioner


def set_schedule(
    session: Session, principal: Principal, practitioner_id: uuid.UUID, blocks: list[WeeklyHours]
) -> list[Schedule]:
    """Replace the practitioner's weekly hours (admins of their organisation)."""
    require(session, principal, Perm.SCHEDULE_MANAGE, "schedule.update")
    practitioner = managed_practitioner(session, principal, practitioner_id)
    for block in blocks:
        location = session.get(Location, block.location_id)
        if location is None or location.organisation_id != practitioner.organisation_id:
            raise ValidationFailed(
                "Pick a location of the practitioner's organisation.", extra={"field": "location_id"}
            )
    session.execute(delete(Schedule).where(Schedule.practitioner_id == practitioner.id))
    rows = [
        Schedule(
            practitioner_id=practitioner.id,
            location_id=b.location_id,
            weekday=b.weekday,
            start_time=b.start,
            end_time=b.end,
            slot_minutes=b.slot_minutes,
            breaks=json.dumps([[s.strftime("%H:%M"), e.strftime("%H:%M")] for s, e in b.breaks]),
            valid_from=b.valid_from,
            valid_until=b.valid_until,
        )
        for b in blocks
    ]
    session.add_all(rows)
    session.flush()
    refresh_next_free(session, practitioner.id)
    audit.record(
        session,
        principal,
        "schedule.update",
        resource_type="Practitioner",
        resource_id=practitioner.id,
        detail={"blocks": len(rows)},
    )
    return rows


def add_time_off(
    session: Session,
    principal: Principal,
    practitioner_id: uuid.UUID,
    *,
    starts_at: datetime,
    ends_at: datetime,
    kind: str,
    reason: str,
) -> TimeOff:
    """Block the practitioner's time (leave, holiday, block). Existing appointments in the period are kept
    and reported, so staff can move them."""
    practitioner = _time_off_owner(session, principal, practitioner_id)
    if ends_at <= starts_at:
        raise ValidationFailed("The end must be after the start.", extra={"field": "ends_at"})
    row = TimeOff(
        practitioner_id=practitioner.id,
        kind=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=principal.user_id,
    )
    session.add(row)
    session.flush()
    refresh_next_free(session, practitioner.id)
    audit.record(
        session,
        principal,
        "schedule.time_off.add",
        resource_type="TimeOff",
        resource_id=row.id,
        detail={"practitioner_id": str(practitioner.id), "kind": kind},
    )
    return row


def remove_time_off(session: Session, principal: Principal, time_off_id: uuid.UUID) -> None:
    """Delete a period of time off."""
    row = session.get(TimeOff, time_off_id)
    if row is None:
        raise NotFound("No such time off.")
    _time_off_owner(session, principal, row.practitioner_id)
    session.delete(row)
    session.flush()
    refresh_next_free(session, row.practitioner_id)
    audit.record(
        session, principal, "schedule.time_off.remove", resource_type="TimeOff", resource_id=time_off_id
    )


def _time_off_owner(session: Session, principal: Principal, practitioner_id: uuid.UUID) -> Practitioner:
    practitioner = session.get(Practitioner, practitioner_id)
    if practitioner is not None and practitioner.user_id == principal.user_id:
        return practitioner
    require(session, principal, Perm.SCHEDULE_MANAGE, "schedule.time_off")
    return managed_practitioner(session, principal, practitioner_id)


def appointments_during(session: Session, practitioner_id: uuid.UUID, start: datetime, end: datetime) -> int:
    """How many slot-holding appointments fall in a period (to warn before adding leave over them)."""
    counted = select(func.count(Appointment.id)).where(*_holding(practitioner_id, start, end))
    return int(session.execute(counted).scalar_one())


def refresh_stale(session: Session, now: datetime) -> int:
    """Recompute every stored next free slot that has already started; returns how many were refreshed."""
    stale = (
        session.execute(
            select(Practitioner.id).where(
                Practitioner.next_free_slot_at.is_not(None), Practitioner.next_free_slot_at <= now
            )
        )
        .scalars()
        .all()
    )
    for practitioner_id in stale:
        refresh_next_free(session, practitioner_id, now)
    return len(stale)


# --- schedules as a directory listing ----------------------------------------------------------------------


def schedules_of(session: Session, practitioner_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Schedule]]:
    """The weekly-hours rows of several practitioners at once (one query), by practitioner."""
    found: dict[uuid.UUID, list[Schedule]] = defaultdict(list)
    if not practitioner_ids:
        return found
    rows = session.execute(
        select(Schedule)
        .where(Schedule.practitioner_id.in_(practitioner_ids))
        .order_by(Schedule.weekday, Schedule.start_time)
    ).scalars()
    for row in rows:
        found[row.practitioner_id].append(row)
    return found


def list_scheduled_practitioners(
    session: Session,
    principal: Principal,
    *,
    practitioner_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
    active: bool | None = None,
    today: date | None = None,
    limit: int = 50,
    cursor: str | None = None,
    count_total: bool = False,
) -> Page[Practitioner]:
    """Directory practitioners (licensed) who have weekly hours, by name: optionally one practitioner, those
    working at a location, and those whose hours are still in force on ``today`` (``active``) or not."""
    require(session, principal, Perm.DIRECTORY_READ, "directory.read")
    today = today or utcnow().date()
    has_hours = select(Schedule.id).where(Schedule.practitioner_id == Practitioner.id)
    current = has_hours.where(or_(Schedule.valid_until.is_(None), Schedule.valid_until >= today))
    query = select(Practitioner).where(has_hours.exists(), Practitioner.user_id.in_(verified_user_ids(today)))
    if practitioner_id is not None:
        query = query.where(Practitioner.id == practitioner_id)
    if location_id is not None:
        query = query.where(has_hours.where(Schedule.location_id == location_id).exists())
    if active is True:
        query = query.where(current.exists())
    elif active is False:
        query = query.where(~current.exists())
    return paginate(
        session,
        query,
        sort_column=Practitioner.display_name,
        id_column=Practitioner.id,
        descending=False,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )
