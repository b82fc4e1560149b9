"""Pydantic request and response models of the activities API (``/api/v1/activities``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from caresync.engagement.models import ActivityLog, BadgeAward
from caresync.engagement.streaks import rules, service

Activity = Literal["exercise", "meditation", "medication", "water", "custom"]


class LogIn(BaseModel):
    """Log an activity for today (the patient's local day). Custom activities need a ``name``."""

    activity: Activity
    name: str = Field(default="", max_length=200, description="custom activities only: 1-60 characters")
    amount: str = Field(default="", max_length=200, description='optional, e.g. "30 min" (60 characters)')


class BadgeOut(BaseModel):
    """A badge a streak earned."""

    activity: str
    name: str
    label: str
    days: int
    badge: str
    awarded_on: date

    @classmethod
    def of(cls, award: BadgeAward) -> BadgeOut:
        """From a row."""
        return cls(
            activity=award.activity,
            name=award.name,
            label=rules.activity_label(award.activity, award.name),
            days=award.days,
            badge=rules.badge_name(award.days),
            awarded_on=award.awarded_on,
        )


class EntryOut(BaseModel):
    """One logged activity on one local day."""

    id: uuid.UUID
    activity: str
    name: str
    label: str
    day: date
    amount: str
    logged_at: datetime

    @classmethod
    def of(cls, entry: ActivityLog) -> EntryOut:
        """From a row."""
        return cls(
            id=entry.id,
            activity=entry.activity,
            name=entry.name,
            label=rules.activity_label(entry.activity, entry.name),
            day=entry.day,
            amount=entry.amount,
            logged_at=entry.logged_at,
        )


class LoggedOut(EntryOut):
    """The day's entry, and the badges this log earned (empty when it was already logged today)."""

    created: bool
    new_badges: list[BadgeOut]

    @classmethod
    def of_logged(cls, logged: service.Logged) -> LoggedOut:
        """From the outcome of a log."""
        return cls(
            **EntryOut.of(logged.entry).model_dump(),
            created=logged.created,
            new_badges=[BadgeOut.of(b) for b in logged.new_badges],
        )


class EntriesOut(BaseModel):
    """A page of entries, newest day first."""

    items: list[EntryOut]
    next_cursor: str | None


class NextBadgeOut(BaseModel):
    """The next badge to earn and how many more consecutive days it takes."""

    days: int
    badge: str
    days_to_go: int


class StreakOut(BaseModel):
    """One activity's streaks and badges."""

    activity: str
    name: str
    label: str
    current: int
    longest: int
    total_days: int
    logged_today: bool
    today_entry_id: uuid.UUID | None
    badges: list[int]
    next_badge: NextBadgeOut | None

    @classmethod
    def of(cls, streak: service.Streak) -> StreakOut:
        """From the service's view."""
        upcoming = None
        if streak.next_badge is not None and streak.days_to_go is not None:
            upcoming = NextBadgeOut(
                days=streak.next_badge,
                badge=rules.badge_name(streak.next_badge),
                days_to_go=streak.days_to_go,
            )
        return cls(
            activity=streak.activity,
            name=streak.name,
            label=streak.label,
            current=streak.current,
            longest=streak.longest,
            total_days=streak.total_days,
            logged_today=streak.logged_today,
            today_entry_id=streak.today_entry.id if streak.today_entry else None,
            badges=streak.badges,
            next_badge=upcoming,
        )


class StreaksOut(BaseModel):
    """A patient's streaks on their local today."""

    patient_id: uuid.UUID
    today: date
    streaks: list[StreakOut]

    @classmethod
    def of(cls, board: service.Board) -> StreaksOut:
        """From the service's view."""
        return cls(
            patient_id=board.patient_id, today=board.today, streaks=[StreakOut.of(s) for s in board.streaks]
        )
