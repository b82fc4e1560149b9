"""Engagement tables: health articles, the patient's daily activity log (one entry per activity and local
day, enforced by the database) and the badges their streaks earned (each once per activity)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caresync.db import Base, IdMixin, TimestampMixin, UTCDateTime, sql_in, utcnow
from caresync.engagement.rules import ACTIVITIES, ARTICLE_STATUSES, BADGES
from caresync.identity.models import User


class Article(IdMixin, TimestampMixin, Base):
    """A health article written by staff in Markdown (sanitised when rendered), tagged by topic, with
    keywords (condition codes, medication names) that match it to patients' records."""

    __tablename__ = "articles"
    __table_args__ = (
        CheckConstraint(sql_in("status", ARTICLE_STATUSES), name="status"),
        Index("ix_articles_status_published", "status", "published_at"),
    )

    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    body_markdown: Mapped[str] = mapped_column(Text)
    topics: Mapped[list[str]] = mapped_column(JSON)  # codes of engagement.rules.TOPICS, at least one
    keywords: Mapped[list[str]] = mapped_column(JSON)  # lower-case: ICD-10 prefixes, drug names, words
    status: Mapped[str] = mapped_column(String(10), default="draft")
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    author: Mapped[User] = relationship(lazy="joined")


class ActivityLog(IdMixin, Base):
    """One activity the patient did on one of their local days. ``name`` is the custom activity's name
    (empty for the built-in ones)."""

    __tablename__ = "activity_logs"
    __table_args__ = (
        UniqueConstraint("patient_id", "activity", "name", "day", name="uq_activity_logs_day"),
        CheckConstraint(sql_in("activity", ACTIVITIES), name="activity"),
        CheckConstraint("(activity = 'custom') = (name <> '')", name="custom_has_name"),
        Index("ix_activity_logs_streak", "patient_id", "activity", "name", "day"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    activity: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60), default="")
    day: Mapped[date] = mapped_column(Date)  # the patient's local date when it was logged
    amount: Mapped[str] = mapped_column(String(60), default="")  # optional, e.g. "30 min", "2 l"
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BadgeAward(IdMixin, Base):
    """A streak badge: awarded the first time an activity's streak reached ``days`` consecutive days."""

    __tablename__ = "badge_awards"
    __table_args__ = (
        UniqueConstraint("patient_id", "activity", "name", "days", name="uq_badge_awards_once"),
        CheckConstraint(f"days IN ({', '.join(str(days) for days in BADGES)})", name="days"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    activity: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60), default="")
    days: Mapped[int] = mapped_column(Integer)
    awarded_on: Mapped[date] = mapped_column(Date)  # the local day the streak reached ``days``
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
