"""Demo activity history: realistic logs for a demo patient and the badges those streaks earned."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.orm import Session

from caresync.core import localtime
from caresync.db import utcnow
from caresync.engagement.models import ActivityLog, BadgeAward
from caresync.engagement.streaks import rules
from caresync.identity.models import Patient

# activity -> (current streak, whether it includes today, days of history before it, chance of logging on
# those days). Streaks not logged today yet let the demo patient keep them alive with one click.
DEMO_PLAN: dict[str, tuple[int, bool, int, float]] = {
    "exercise": (12, False, 75, 0.7),
    "meditation": (34, False, 40, 0.4),
    "water": (95, True, 0, 0.0),
    "medication": (5, True, 60, 0.85),
}
AMOUNTS = {"exercise": ("20 min walk", "30 min", "45 min cycling"), "water": ("1.5 l", "2 l", "2.5 l")}


def plan_days(last: date, current: int, before: int, chance: float, rng: random.Random) -> set[date]:
    """Days logged: a streak of ``current`` days ending on ``last``, a missed day before it, then ``before``
    days each logged with probability ``chance``."""
    days = {last - timedelta(days=offset) for offset in range(current)}
    gap = last - timedelta(days=current)  # the day that broke the previous streak
    days.update(gap - timedelta(days=offset) for offset in range(1, before + 1) if rng.random() < chance)
    return days


def create_demo_streaks(
    session: Session, patient: Patient, today: date, rng: random.Random
) -> dict[str, int]:
    """Write ``patient``'s activity history up to ``today`` (their local date) and the badges it earned
    (exercise most days with a current 12-day streak, meditation 34 days and water 95 days, the first
    two waiting for today's log). Returns each activity's current streak."""
    zone = localtime.zone(patient.timezone)
    streaks: dict[str, int] = {}
    now = utcnow()
    for activity, (current, includes_today, before, chance) in DEMO_PLAN.items():
        last = today if includes_today else today - timedelta(days=1)
        days = plan_days(last, current, before, chance, rng)
        choices = AMOUNTS.get(activity, ("",))
        for day in sorted(days):
            local = datetime.combine(day, time(rng.randint(7, 21), rng.randint(0, 59)), tzinfo=zone)
            session.add(
                ActivityLog(
                    patient_id=patient.id,
                    activity=activity,
                    name="",
                    day=day,
                    amount=rng.choice(choices),
                    logged_at=min(local.astimezone(UTC), now),
                )
            )
        for threshold, reached_on in sorted(rules.first_reached(days).items()):
            session.add(
                BadgeAward(
                    patient_id=patient.id,
                    activity=activity,
                    name="",
                    days=threshold,
                    awarded_on=reached_on,
                    awarded_at=min(
                        datetime.combine(reached_on, time(21, 0), tzinfo=zone).astimezone(UTC), now
                    ),
                )
            )
        streaks[activity] = rules.current_streak(days, today)
    session.flush()
    return streaks
