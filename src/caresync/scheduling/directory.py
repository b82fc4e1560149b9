"""The provider directory: practitioner profiles and search by free text, specialty, insurance plan,
language, consultation mode, distance from the patient (nearest first) and "a free slot before a date".

Filters run in SQL; distance is computed in Python over the filtered candidates' locations (a few thousand
rows at most per organisation network), which keeps the query portable across SQLite and PostgreSQL.
``next_free_slot_at`` is a stored value kept fresh by bookings and schedule changes; a value that time has
overtaken is recomputed for the rows on the page being shown."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, exists, func, or_, select, type_coerce
from sqlalchemy.orm import InstrumentedAttribute, Session

from caresync.core.auth import Principal
from caresync.core.errors import NotFound, ValidationFailed
from caresync.core.pagination import MAX_LIMIT, Page, paginate
from caresync.core.rbac import Perm, require
from caresync.db import utcnow
from caresync.identity.credentials.service import is_verified, verified_user_ids
from caresync.identity.models import Patient, User
from caresync.scheduling import availability
from caresync.scheduling.models import (
    Location,
    Practitioner,
    PractitionerInsurance,
    PractitionerLanguage,
    PractitionerSpecialty,
    Schedule,
)
from caresync.scheduling.rules import INSURANCE_PLANS, LANGUAGES, SPECIALTIES, ConsultationMode, distance_km

SORTS = ("relevance", "distance", "next_free", "name")


@dataclass(frozen=True)
class SearchQuery:
    """Directory search criteria (all optional)."""

    q: str = ""
    specialty: str = ""
    insurance: str = ""
    language: str = ""
    mode: str = ""
    free_before: date | None = None
    near: tuple[float, float] | None = None  # latitude, longitude
    sort: str = "relevance"
    # narrower filters (the FHIR API's): every word of ``name`` starts a word of the practitioner's name;
    # a non-empty tuple keeps the practitioners matching any of its values
    name: str = ""
    specialties: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    practitioner_ids: tuple[uuid.UUID, ...] = ()
    organisation_ids: tuple[uuid.UUID, ...] = ()
    location_ids: tuple[uuid.UUID, ...] = ()


@dataclass(frozen=True)
class Hit:
    """A practitioner in search results: the profile, their nearest location and its distance, and the
    next free slot."""

    practitioner: Practitioner
    location: Location | None
    distance_km: float | None
    next_free_slot_at: datetime | None


@dataclass(frozen=True)
class Results:
    """A page of hits, the total that matched, and the cursor of the next page."""

    hits: list[Hit]
    total: int
    next_cursor: str | None
    near: tuple[float, float] | None


def _check_codes(query: SearchQuery) -> None:
    for field, value, known in (
        ("specialty", query.specialty, SPECIALTIES),
        ("insurance", query.insurance, INSURANCE_PLANS),
        ("language", query.language, LANGUAGES),
    ):
        if value and value not in known:
            raise ValidationFailed(f"Unknown {field} {value!r}.", extra={"field": field})
    if query.mode and query.mode not in {m.value for m in ConsultationMode}:
        raise ValidationFailed("mode must be in-person or video.", extra={"field": "mode"})
    if query.sort not in SORTS:
        raise ValidationFailed(f"sort must be one of {', '.join(SORTS)}.", extra={"field": "sort"})


def patient_home(session: Session, principal: Principal) -> tuple[float, float] | None:
    """Where a signed-in patient lives (from their profile), if known."""
    if principal.role != "patient" or principal.patient_id is None:
        return None
    patient = session.get(Patient, principal.patient_id)
    if patient is None or patient.latitude is None or patient.longitude is None:
        return None
    return patient.latitude, patient.longitude


@dataclass(frozen=True)
class _Candidate:
    """What ranking needs of a matching practitioner (full rows are loaded for the page only)."""

    id: Any  # as the database returned it (see _candidates)
    name: str
    next_free: datetime | None
    location_id: Any
    distance_km: float | None


def search(
    session: Session,
    principal: Principal,
    query: SearchQuery,
    *,
    limit: int = 20,
    cursor: str | None = None,
    now: datetime | None = None,
) -> Results:
    """Search the directory. Relevance = distance when a location is known, else the next free slot.

    Ranking works on a few columns of every match; full profiles are loaded for the page shown only."""
    require(session, principal, Perm.DIRECTORY_READ, "directory.search")
    _check_codes(query)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}.", extra={"field": "limit"})
    now = now or utcnow()
    near = query.near or patient_home(session, principal)
    candidates = _candidates(session, _matching_ids(query, now), near)
    sort = query.sort if query.sort != "relevance" else ("distance" if near else "next_free")
    candidates.sort(key=_sort_key(sort))
    offset = _decode(cursor)
    page = candidates[offset : offset + limit]
    # ids come back as the driver returns them (see _candidates): turn only the page's into UUIDs
    keys = [(uuid.UUID(str(c.id)), uuid.UUID(str(c.location_id))) for c in page]
    chosen = select(Practitioner).where(Practitioner.id.in_([pid for pid, _ in keys]))
    profiles = {p.id: p for p in session.execute(chosen).scalars()}
    where = select(Location).where(Location.id.in_({lid for _, lid in keys}))
    places = {loc.id: loc for loc in session.execute(where).scalars()}
    hits = [
        _fresh(session, Hit(profiles[pid], places.get(lid), c.distance_km, c.next_free), now)
        for (pid, lid), c in zip(keys, page, strict=True)
    ]
    next_cursor = _encode(offset + limit) if offset + limit < len(candidates) else None
    return Results(hits=hits, total=len(candidates), next_cursor=next_cursor, near=near)


def _matching_ids(query: SearchQuery, now: datetime) -> Select[uuid.UUID]:
    """The ids of practitioners matching every filter (listed once licensed and with working hours)."""
    statement = select(Practitioner.id).where(
        exists().where(Schedule.practitioner_id == Practitioner.id),
        Practitioner.user_id.in_(verified_user_ids()),  # only licensed practitioners are listed
    )
    for term in query.q.lower().split():
        statement = statement.where(Practitioner.search_text.like(f"%{_escape(term)}%", escape="\\"))
    if query.specialty:
        statement = statement.where(
            exists().where(
                PractitionerSpecialty.practitioner_id == Practitioner.id,
                PractitionerSpecialty.code == query.specialty,
            )
        )
    if query.insurance:
        statement = statement.where(
            exists().where(
                PractitionerInsurance.practitioner_id == Practitioner.id,
                PractitionerInsurance.plan == query.insurance,
            )
        )
    if query.language:
        statement = statement.where(
            exists().where(
                PractitionerLanguage.practitioner_id == Practitioner.id,
                PractitionerLanguage.code == query.language,
            )
        )
    if query.mode == ConsultationMode.VIDEO.value:
        statement = statement.where(Practitioner.video.is_(True))
    elif query.mode == ConsultationMode.IN_PERSON.value:
        statement = statement.where(Practitioner.in_person.is_(True))
    if query.free_before:
        before = datetime.combine(query.free_before, time(), tzinfo=now.tzinfo)
        statement = statement.where(
            Practitioner.next_free_slot_at.is_not(None), Practitioner.next_free_slot_at < before
        )
    return _narrow(statement, query)


def _narrow(statement: Select[uuid.UUID], query: SearchQuery) -> Select[uuid.UUID]:
    """Apply the narrower (FHIR) filters of ``query``."""
    if query.name:
        statement = statement.where(words_match(Practitioner.display_name, query.name))
    if query.specialties:
        statement = statement.where(
            exists().where(
                PractitionerSpecialty.practitioner_id == Practitioner.id,
                PractitionerSpecialty.code.in_(query.specialties),
            )
        )
    if query.languages:
        statement = statement.where(
            exists().where(
                PractitionerLanguage.practitioner_id == Practitioner.id,
                PractitionerLanguage.code.in_(query.languages),
            )
        )
    if query.roles:
        statement = statement.where(
            Practitioner.user_id.in_(select(User.id).where(User.role.in_(query.roles)))
        )
    if query.practitioner_ids:
        statement = statement.where(Practitioner.id.in_(query.practitioner_ids))
    if query.organisation_ids:
        statement = statement.where(Practitioner.organisation_id.in_(query.organisation_ids))
    if query.location_ids:
        statement = statement.where(
            exists().where(
                Schedule.practitioner_id == Practitioner.id, Schedule.location_id.in_(query.location_ids)
            )
        )
    return statement


def words_match(column: InstrumentedAttribute[str], text: str) -> ColumnElement[bool]:
    """Every word of ``text`` starts a word of ``column`` (case-insensitive): "ana sil" finds "Ana Silva"."""
    value = func.lower(column)
    return and_(
        *(
            or_(value.like(f"{_escape(w)}%", escape="\\"), value.like(f"% {_escape(w)}%", escape="\\"))
            for w in text.lower().split()
        )
    )


def _escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _candidates(
    session: Session, matching: Select[uuid.UUID], near: tuple[float, float] | None
) -> list[_Candidate]:
    """Each matching practitioner once, at their nearest working location (any, without a reference point).

    One query of plain columns; ids stay as the database returns them (text on SQLite) and are turned into
    UUIDs for the page only: parsing thousands of UUIDs per search would cost more than the query."""
    practitioner_id = type_coerce(Practitioner.id, String).label("practitioner_id")
    location_id = type_coerce(Location.id, String).label("location_id")
    rows = session.execute(
        select(
            practitioner_id,
            Practitioner.display_name,
            Practitioner.next_free_slot_at,
            location_id,
            Location.latitude,
            Location.longitude,
        )
        .join(Schedule, Schedule.practitioner_id == Practitioner.id)
        .join(Location, Location.id == Schedule.location_id)
        .where(Practitioner.id.in_(matching))
        .distinct()
    ).all()
    best: dict[Any, _Candidate] = {}
    for pid, name, next_free, lid, latitude, longitude in rows:
        distance = None
        if near and latitude is not None and longitude is not None:
            distance = round(distance_km(near[0], near[1], latitude, longitude), 1)
        current = best.get(pid)
        if current is None or (
            distance is not None and (current.distance_km is None or distance < current.distance_km)
        ):
            best[pid] = _Candidate(pid, name, next_free, lid, distance)
    return list(best.values())


FAR = float("inf")
NEVER = datetime.max.replace(tzinfo=None)


def _sort_key(sort: str) -> Callable[[_Candidate], Any]:
    def free(c: _Candidate) -> datetime:
        return c.next_free.replace(tzinfo=None) if c.next_free else NEVER

    def name(c: _Candidate) -> tuple[str, str]:
        return (c.name.lower(), str(c.id))

    def distance(c: _Candidate) -> float:
        return c.distance_km if c.distance_km is not None else FAR

    if sort == "distance":
        return lambda c: (distance(c), free(c), name(c))
    if sort == "next_free":
        return lambda c: (free(c), distance(c), name(c))
    return name


def _fresh(session: Session, hit: Hit, now: datetime) -> Hit:
    """Recompute a next free slot that time has overtaken (it started already)."""
    stored = hit.next_free_slot_at
    if stored is None or stored > now:
        return hit
    fresh = availability.refresh_next_free(session, hit.practitioner.id, now)
    return Hit(hit.practitioner, hit.location, hit.distance_km, fresh)


def _encode(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _decode(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        raise ValidationFailed(
            "The cursor is invalid; start again from the first page.", extra={"field": "cursor"}
        ) from None
    if offset < 0:
        raise ValidationFailed(
            "The cursor is invalid; start again from the first page.", extra={"field": "cursor"}
        )
    return offset


def get_practitioner(session: Session, principal: Principal, practitioner_id: uuid.UUID) -> Practitioner:
    """One directory profile (of a licensed practitioner)."""
    require(session, principal, Perm.DIRECTORY_READ, "directory.read")
    practitioner = session.get(Practitioner, practitioner_id)
    if practitioner is None or not is_verified(session, practitioner.user_id):
        raise NotFound("No such practitioner.")
    return practitioner


def working_hours(
    session: Session, practitioner_ids: list[uuid.UUID], *, on: date | None = None
) -> dict[uuid.UUID, list[Schedule]]:
    """The weekly hours (with their locations) of several practitioners in one query, by practitioner:
    those still valid on ``on`` (today by default), by weekday and start."""
    if not practitioner_ids:
        return {}
    day = on or utcnow().date()
    rows = session.execute(
        select(Schedule)
        .where(
            Schedule.practitioner_id.in_(practitioner_ids),
            or_(Schedule.valid_until.is_(None), Schedule.valid_until >= day),
        )
        .order_by(Schedule.weekday, Schedule.start_time)
    ).scalars()
    found: dict[uuid.UUID, list[Schedule]] = {pid: [] for pid in practitioner_ids}
    for row in rows:
        found[row.practitioner_id].append(row)
    return found


def get_location(session: Session, principal: Principal, location_id: uuid.UUID) -> Location:
    """One location where an organisation sees patients (public directory information)."""
    require(session, principal, Perm.DIRECTORY_READ, "directory.location")
    location = session.get(Location, location_id)
    if location is None:
        raise NotFound("No such location.")
    return location


def search_locations(
    session: Session,
    principal: Principal,
    *,
    name: str = "",
    city: str = "",
    organisation_ids: tuple[uuid.UUID, ...] = (),
    limit: int = 20,
    cursor: str | None = None,
    count_total: bool = False,
) -> Page[Location]:
    """Locations by name (every word starts a word of the name), city (prefix, case-insensitive) and
    organisation, ordered by name."""
    require(session, principal, Perm.DIRECTORY_READ, "directory.locations")
    query = select(Location)
    if name:
        query = query.where(words_match(Location.name, name))
    if city:
        query = query.where(func.lower(Location.city).like(f"{_escape(city.lower())}%", escape="\\"))
    if organisation_ids:
        query = query.where(Location.organisation_id.in_(organisation_ids))
    return paginate(
        session,
        query,
        sort_column=Location.name,
        id_column=Location.id,
        descending=False,
        limit=limit,
        cursor=cursor,
        count_total=count_total,
    )


def practitioner_locations(session: Session, practitioner_id: uuid.UUID) -> list[Location]:
    """Where the practitioner works (from their schedules)."""
    return list(
        session.execute(
            select(Location)
            .where(
                exists().where(
                    Schedule.location_id == Location.id, Schedule.practitioner_id == practitioner_id
                )
            )
            .order_by(Location.name)
        ).scalars()
    )


def slots_for(
    session: Session, principal: Principal, practitioner_id: uuid.UUID, first_day: date, last_day: date
) -> list[availability.Slot]:
    """A practitioner's free slots in a date range (at most ``MAX_RANGE_DAYS`` days)."""
    get_practitioner(session, principal, practitioner_id)
    if last_day < first_day:
        raise ValidationFailed("The end date must not be before the start date.", extra={"field": "end"})
    if (last_day - first_day).days > availability.MAX_RANGE_DAYS:
        raise ValidationFailed(
            f"Ask for at most {availability.MAX_RANGE_DAYS} days at a time.", extra={"field": "end"}
        )
    return availability.free_slots(session, practitioner_id, first_day, last_day)


def profile_for_user(session: Session, user_id: uuid.UUID | None) -> Practitioner | None:
    """The directory profile of a signed-in practitioner, if they have one."""
    if user_id is None:
        return None
    return session.execute(select(Practitioner).where(Practitioner.user_id == user_id)).scalar_one_or_none()


def profile_ids_for_users(session: Session, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The directory profile id of each of these users who has one (one query)."""
    if not user_ids:
        return {}
    query = select(Practitioner.user_id, Practitioner.id).where(Practitioner.user_id.in_(set(user_ids)))
    return {user_id: profile_id for user_id, profile_id in session.execute(query) if user_id is not None}


def search_text_for(display_name: str, title: str, specialties: list[str], bio: str) -> str:
    """What free-text search matches: name, title, specialty names and the biography, lower-cased."""
    names = [SPECIALTIES.get(code, code) for code in specialties]
    return " ".join((display_name, title, *names, *specialties, bio)).lower()
