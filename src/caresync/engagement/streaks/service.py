"""Activity streak use cases: a patient logs today's activities (in their own time zone), undoes today's
entry, and reads their streaks, badges and history; the patient's care team may read them too.

Only the patient writes. The day of a log is always the patient's local date *now* (no back-dating), so a
streak survives a day only if the patient logged on that day. Logging the same activity twice on one day
returns the first entry (the database's unique constraint settles races). New badges are awarded after
each log, once per activity, and announced to the patient; undoing an entry never takes a badge back.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.core import audit, localtime, notify
from caresync.core.auth import Principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import DEFAULT_LIMIT, Page, paginate
from caresync.core.rbac import CLINICIANS, Access, Perm, authorize_patient, has_perm, require
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.engagement.models import ActivityLog, BadgeAward
from caresync.engagement.rules import ACTIVITIES
from caresync.engagement.streaks import rules
from caresync.identity.models import Patient

BUILT_IN = tuple(activity for activity in ACTIVITIES if activity != "custom")
DEFAULT_WEEKS = 12
MAX_WEEKS = 53
LINK = "/me/activities"


@dataclass(frozen=True)
class Logged:
    """The outcome of :func:`log_activity`: the day's entry, whether this call created it, and the badges
    it earned."""

    entry: ActivityLog
    created: bool
    new_badges: list[BadgeAward] = field(default_factory=list)


@dataclass(frozen=True)
class Streak:
    """One activity's streaks, today's state and badges (``name`` is empty for built-in activities)."""

    activity: str
    name: str
    current: int
    longest: int
    total_days: int
    today_entry: ActivityLog | None
    badges: list[int]  # thresholds awarded, lowest first
    next_badge: int | None
    days_to_go: int | None

    @property
    def label(self) -> str:
        """The activity's display name."""
        return rules.activity_label(self.activity, self.name)

    @property
    def logged_today(self) -> bool:
        """Whether the activity is logged on the patient's today."""
        return self.today_entry is not None

    @property
    def card_id(self) -> str:
        """The HTML id of the activity's card."""
        return rules.card_id(self.activity, self.name)

    @property
    def progress(self) -> int:
        """Percent of the way to the next badge (100 when every badge is earned)."""
        return rules.progress_percent(self.current, self.next_badge or 0)


@dataclass(frozen=True)
class Board:
    """A patient's streaks on their local ``today`` and their latest badge."""

    patient_id: uuid.UUID
    today: date
    streaks: list[Streak]
    latest_badge: BadgeAward | None

    @property
    def has_history(self) -> bool:
        """Whether the patient ever logged anything."""
        return any(s.total_days for s in self.streaks)


@dataclass(frozen=True)
class Heatmap:
    """Days logged over the last weeks: per activity (label -> days) and as calendar columns."""

    today: date
    weeks: list[list[tuple[date, int, bool]]]
    by_activity: dict[str, set[date]]
    max_count: int


# --- who is acting ----------------------------------------------------------------------------------------


def own_patient_id(session: Session, principal: Principal, action: str) -> uuid.UUID:
    """The acting patient's own profile id: 403 (audited) for roles that do not log activities."""
    require(session, principal, Perm.ACTIVITY_LOG, action)
    if principal.patient_id is None:
        audit.record_and_commit(session, principal, action, outcome="denied", detail={"reason": "no profile"})
        raise NotFound("You have no patient profile.")
    return principal.patient_id


def _readable(
    session: Session, principal: Principal, patient_id: uuid.UUID | None, action: str
) -> tuple[uuid.UUID, bool]:
    """Whose streaks the principal reads, and whether under break-glass. Without ``patient_id``: the
    patient's own; clinicians must name the patient. With it: the patient themself or their care team
    (break-glass flagged); a consent to read record categories does not cover activity logs. 404 (audited)
    for anyone else."""
    if patient_id is None:
        if principal.role in CLINICIANS:
            raise ValidationFailed(
                "Name the patient whose streaks you want to see.", extra={"field": "patient_id"}
            )
        return own_patient_id(session, principal, action), False
    access = authorize_patient(session, principal, patient_id, Perm.PATIENT_READ, action)
    if access is Access.CONSENT:
        audit.record_and_commit(
            session,
            principal,
            action,
            outcome="denied",
            patient_id=patient_id,
            resource_type="Patient",
            resource_id=patient_id,
        )
        raise NotFound("No such patient.")
    return patient_id, access is Access.BREAK_GLASS


def _patient(session: Session, patient_id: uuid.UUID) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:  # the access checks above found it; only a concurrent deletion gets here
        raise NotFound("No such patient.")
    return patient


def patient_today(session: Session, patient_id: uuid.UUID, now: datetime | None = None) -> date:
    """The patient's local date at ``now`` (default: the current time)."""
    return localtime.local_date(_patient(session, patient_id).timezone, now)


# --- writing ----------------------------------------------------------------------------------------------


def clean_name(activity: str, raw: str) -> str:
    """A custom activity's name, cleaned (1-60 characters); built-in activities take none."""
    name = clean_line(raw)
    if activity != "custom":
        if name:
            raise ValidationFailed("Only custom activities have a name.", extra={"field": "name"})
        return ""
    if not name:
        raise ValidationFailed("Give your activity a name.", extra={"field": "name"})
    if len(name) > rules.MAX_NAME:
        raise ValidationFailed(
            f"Keep the name to {rules.MAX_NAME} characters or fewer.", extra={"field": "name"}
        )
    return name


def _canonical_name(session: Session, patient_id: uuid.UUID, name: str) -> str:
    """The spelling the patient first used for this custom activity (names match ignoring case and
    spacing), or ``name`` for a new one."""
    key = rules.name_key(name)
    known = session.execute(
        select(ActivityLog.name)
        .where(ActivityLog.patient_id == patient_id, ActivityLog.activity == "custom")
        .group_by(ActivityLog.name)
        .order_by(ActivityLog.name)
    ).scalars()
    return next((spelling for spelling in known if rules.name_key(spelling) == key), name)


def _entry_on(
    session: Session, patient_id: uuid.UUID, activity: str, name: str, day: date
) -> ActivityLog | None:
    return session.execute(
        select(ActivityLog).where(
            ActivityLog.patient_id == patient_id,
            ActivityLog.activity == activity,
            ActivityLog.name == name,
            ActivityLog.day == day,
        )
    ).scalar_one_or_none()


def _days(session: Session, patient_id: uuid.UUID, activity: str, name: str) -> set[date]:
    return set(
        session.execute(
            select(ActivityLog.day).where(
                ActivityLog.patient_id == patient_id,
                ActivityLog.activity == activity,
                ActivityLog.name == name,
            )
        ).scalars()
    )


def log_activity(
    session: Session,
    principal: Principal,
    activity: str,
    name: str = "",
    amount: str = "",
    *,
    now: datetime | None = None,
) -> Logged:
    """The patient logs ``activity`` for their local today. Logging it again the same day returns the
    day's first entry (``created`` false). Awards and announces the badges the streak newly reached."""
    patient_id = own_patient_id(session, principal, "activity.log")
    if activity not in ACTIVITIES:
        choices = ", ".join(ACTIVITIES)
        raise ValidationFailed(f"Choose one of: {choices}.", extra={"field": "activity"})
    name = clean_name(activity, name)
    amount = clean_line(amount)
    if len(amount) > rules.MAX_AMOUNT:
        raise ValidationFailed(
            f"Keep the amount to {rules.MAX_AMOUNT} characters or fewer.", extra={"field": "amount"}
        )
    if name:
        name = _canonical_name(session, patient_id, name)
    instant = now or utcnow()
    day = patient_today(session, patient_id, instant)
    entry = _entry_on(session, patient_id, activity, name, day)
    created = entry is None
    if entry is None:
        entry = ActivityLog(
            patient_id=patient_id, activity=activity, name=name, day=day, amount=amount, logged_at=instant
        )
        try:
            with session.begin_nested():
                session.add(entry)
        except IntegrityError:  # a concurrent request logged it first: theirs is the day's entry
            entry = _entry_on(session, patient_id, activity, name, day)
            created = False
            if entry is None:
                raise Conflict("Your activity could not be saved. Please try again.") from None
    new_badges = _award_badges(session, principal, patient_id, activity, name) if created else []
    audit.record(
        session,
        principal,
        "activity.log",
        patient_id=patient_id,
        resource_type="ActivityLog",
        resource_id=entry.id,
        detail={
            "activity": activity,
            "day": day.isoformat(),
            "created": created,
            "badges": [badge.days for badge in new_badges],
        },
    )
    return Logged(entry=entry, created=created, new_badges=new_badges)


def _award_badges(
    session: Session, principal: Principal, patient_id: uuid.UUID, activity: str, name: str
) -> list[BadgeAward]:
    """Award every badge the activity's history reached and the patient does not hold yet, and notify."""
    held = set(
        session.execute(
            select(BadgeAward.days).where(
                BadgeAward.patient_id == patient_id, BadgeAward.activity == activity, BadgeAward.name == name
            )
        ).scalars()
    )
    awarded: list[BadgeAward] = []
    for threshold, reached_on in sorted(
        rules.first_reached(_days(session, patient_id, activity, name)).items()
    ):
        if threshold in held:
            continue
        badge = BadgeAward(
            patient_id=patient_id, activity=activity, name=name, days=threshold, awarded_on=reached_on
        )
        try:
            with session.begin_nested():
                session.add(badge)
        except IntegrityError:  # a concurrent log awarded it already (and told the patient)
            continue
        awarded.append(badge)
    if awarded and principal.user_id is not None:
        top = awarded[-1]
        label = rules.activity_label(activity, name).lower()
        body = f"You logged {label} {top.days} days in a row. Keep it going!"
        notify.notify(
            session, principal.user_id, "badge", rules.badge_title(top.days, activity, name), body, LINK
        )
    return awarded


def undo(
    session: Session, principal: Principal, log_id: uuid.UUID, *, now: datetime | None = None
) -> ActivityLog:
    """The patient removes one of today's entries (earlier days are history: 409). Badges stay."""
    patient_id = own_patient_id(session, principal, "activity.undo")
    entry = session.get(ActivityLog, log_id)
    if entry is None or entry.patient_id != patient_id:
        audit.record_and_commit(
            session,
            principal,
            "activity.undo",
            outcome="denied",
            patient_id=patient_id,
            resource_type="ActivityLog",
            resource_id=log_id,
        )
        raise NotFound("No such activity entry.")
    if entry.day != patient_today(session, patient_id, now):
        raise Conflict("Only today's entries can be undone: earlier days are part of your history.")
    session.delete(entry)
    audit.record(
        session,
        principal,
        "activity.undo",
        patient_id=patient_id,
        resource_type="ActivityLog",
        resource_id=log_id,
        detail={"activity": entry.activity, "day": entry.day.isoformat()},
    )
    session.flush()
    return entry


# --- reading ----------------------------------------------------------------------------------------------


def _audit_read(
    session: Session,
    principal: Principal,
    action: str,
    patient_id: uuid.UUID,
    flagged: bool,
    **detail: object,
) -> None:
    audit.record(
        session,
        principal,
        action,
        patient_id=patient_id,
        resource_type="ActivityLog",
        detail=dict(detail),
        flagged=flagged,
    )


def _board(session: Session, patient_id: uuid.UUID, today: date) -> Board:
    days: dict[tuple[str, str], set[date]] = defaultdict(set)
    rows = session.execute(
        select(ActivityLog.activity, ActivityLog.name, ActivityLog.day).where(
            ActivityLog.patient_id == patient_id
        )
    )
    for activity, name, day in rows:
        days[(activity, name)].add(day)
    todays = {
        (e.activity, e.name): e
        for e in session.execute(
            select(ActivityLog).where(ActivityLog.patient_id == patient_id, ActivityLog.day == today)
        ).scalars()
    }
    badges: dict[tuple[str, str], list[int]] = defaultdict(list)
    latest: BadgeAward | None = None
    for badge in session.execute(
        select(BadgeAward).where(BadgeAward.patient_id == patient_id).order_by(BadgeAward.days)
    ).scalars():
        badges[(badge.activity, badge.name)].append(badge.days)
        if latest is None or (badge.awarded_on, badge.days) > (latest.awarded_on, latest.days):
            latest = badge
    customs = sorted((key for key in days if key[0] == "custom"), key=lambda k: rules.name_key(k[1]))
    streaks = []
    for key in [(activity, "") for activity in BUILT_IN] + customs:
        logged = days.get(key, set())
        current = rules.current_streak(logged, today)
        upcoming = rules.next_badge(current, badges[key])
        streaks.append(
            Streak(
                activity=key[0],
                name=key[1],
                current=current,
                longest=rules.longest_streak(logged),
                total_days=len(logged),
                today_entry=todays.get(key),
                badges=badges[key],
                next_badge=upcoming[0] if upcoming else None,
                days_to_go=upcoming[1] if upcoming else None,
            )
        )
    return Board(patient_id=patient_id, today=today, streaks=streaks, latest_badge=latest)


def streaks(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID | None = None,
    *,
    now: datetime | None = None,
) -> Board:
    """Per activity (built-in ones always, custom ones once logged): current and longest streak, today's
    entry, badges earned and the next badge with days to go, on the patient's local today."""
    patient_id, flagged = _readable(session, principal, patient_id, "activity.streaks")
    board = _board(session, patient_id, patient_today(session, patient_id, now))
    _audit_read(session, principal, "activity.streaks", patient_id, flagged)
    return board


def badges(session: Session, principal: Principal, patient_id: uuid.UUID | None = None) -> list[BadgeAward]:
    """Every badge the patient earned, newest first."""
    patient_id, flagged = _readable(session, principal, patient_id, "activity.badges")
    found = list(
        session.execute(
            select(BadgeAward)
            .where(BadgeAward.patient_id == patient_id)
            .order_by(BadgeAward.awarded_on.desc(), BadgeAward.days.desc())
        ).scalars()
    )
    _audit_read(session, principal, "activity.badges", patient_id, flagged, count=len(found))
    return found


def entries(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID | None = None,
    *,
    start: date | None = None,
    end: date | None = None,
    activity: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[ActivityLog]:
    """The patient's log entries, newest day first, optionally between two local dates (inclusive) and of
    one activity."""
    if start and end and start > end:
        raise ValidationFailed("The start date must not be after the end date.", extra={"field": "from"})
    if activity is not None and activity not in ACTIVITIES:
        raise ValidationFailed(f"Choose one of: {', '.join(ACTIVITIES)}.", extra={"field": "activity"})
    patient_id, flagged = _readable(session, principal, patient_id, "activity.list")
    query = select(ActivityLog).where(ActivityLog.patient_id == patient_id)
    if start:
        query = query.where(ActivityLog.day >= start)
    if end:
        query = query.where(ActivityLog.day <= end)
    if activity:
        query = query.where(ActivityLog.activity == activity)
    page = paginate(
        session,
        query,
        sort_column=ActivityLog.day,
        id_column=ActivityLog.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    _audit_read(session, principal, "activity.list", patient_id, flagged, count=len(page.items))
    return page


def history(
    session: Session,
    principal: Principal,
    patient_id: uuid.UUID | None = None,
    *,
    weeks: int = DEFAULT_WEEKS,
    now: datetime | None = None,
) -> Heatmap:
    """Days logged per activity over the last ``weeks`` weeks (ending with the patient's current week),
    for a calendar heatmap."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValidationFailed(f"weeks must be between 1 and {MAX_WEEKS}.", extra={"field": "weeks"})
    patient_id, flagged = _readable(session, principal, patient_id, "activity.history")
    today = patient_today(session, patient_id, now)
    first = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    rows = session.execute(
        select(ActivityLog.activity, ActivityLog.name, ActivityLog.day).where(
            ActivityLog.patient_id == patient_id, ActivityLog.day >= first, ActivityLog.day <= today
        )
    )
    by_activity: dict[str, set[date]] = defaultdict(set)
    counts: dict[date, int] = defaultdict(int)
    for activity, name, day in rows:
        by_activity[rules.activity_label(activity, name)].add(day)
        counts[day] += 1
    _audit_read(session, principal, "activity.history", patient_id, flagged, weeks=weeks)
    return Heatmap(
        today=today,
        weeks=rules.calendar_weeks(counts, today, weeks),
        by_activity=dict(by_activity),
        max_count=max(counts.values(), default=0),
    )


def can_log(principal: Principal) -> bool:
    """Whether the principal logs activities of their own (patients with a profile)."""
    return has_perm(principal, Perm.ACTIVITY_LOG) and principal.patient_id is not None
