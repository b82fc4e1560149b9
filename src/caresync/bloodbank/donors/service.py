"""Donors' use cases: registration (by staff, or a donor completing their own profile), eligibility (the
country's rules plus the donor's deferrals), availability, donation appointments (free times, booking a
chair, cancelling, no-shows, reminders) and recording a donation (screening, then the units or a deferral).

Staff act for their own organisation: they see the donors registered there, or who booked or gave blood
there; anyone else's donor is 404, like a missing id. A donor sees only their own profile. Every read and
write of a donor is audited.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from caresync.bloodbank import rules
from caresync.bloodbank.donors import din as din_codes
from caresync.bloodbank.donors.appointments import (
    BOOKING_HORIZON_DAYS,
    REMINDER_AHEAD,
    is_slot_start,
    local_day,
    local_text,
    slot_starts,
)
from caresync.bloodbank.donors.schemas import DeferralIn, DonationIn, DonorIn, DonorUpdate, SelfDonorIn
from caresync.bloodbank.inventory import service as inventory
from caresync.bloodbank.models import BloodUnit, Donation, DonationAppointment, Donor, DonorDeferral
from caresync.bloodbank.policy import service as policy
from caresync.bloodbank.rules import DonationType
from caresync.core import audit, notify
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, has_perm, require, require_any
from caresync.core.text import clean_line
from caresync.db import utcnow
from caresync.identity.models import Organisation
from caresync.identity.rules import OrganisationKind

DEFAULT_PROFILE = "US"
DONATION_SITE_KINDS = (OrganisationKind.BLOOD_BANK.value, OrganisationKind.HOSPITAL.value)
SELF_EDITABLE = frozenset(
    {
        "weight_kg",
        "height_cm",
        "phone",
        "email",
        "city",
        "latitude",
        "longitude",
        "available",
        "unavailable_until",
    }
)
NOT_CLEARABLE = frozenset({"given_name", "family_name", "blood_group", "available", "parental_consent"})
TEXT_FIELDS = frozenset({"phone", "email", "city"})
HISTORY_LIMIT = 50
DIN_ATTEMPTS = 5
SCREENING_PREFIX = "Screening: "


# --- who may see which donor --------------------------------------------------------------------------------


def donor_for_user(session: Session, user_id: uuid.UUID) -> Donor | None:
    """The donor profile of an account (at most one), or None."""
    return session.execute(select(Donor).where(Donor.user_id == user_id)).scalar_one_or_none()


def staff_donors(organisation_id: uuid.UUID | None, *, walk_in_number: str = "") -> Select[Donor]:
    """Donors a blood bank's staff may see: registered there, or who booked or gave blood there. A donor
    who registered themselves and has no blood bank yet walks in with their donor number:
    ``walk_in_number`` (typed exactly) finds them too, and opening them by id works for any blood bank."""
    booked = select(DonationAppointment.donor_id).where(
        DonationAppointment.organisation_id == organisation_id
    )
    gave = select(Donation.donor_id).where(Donation.organisation_id == organisation_id)
    ours = or_(Donor.organisation_id == organisation_id, Donor.id.in_(booked), Donor.id.in_(gave))
    if walk_in_number:
        walk_in = and_(Donor.organisation_id.is_(None), Donor.donor_number == walk_in_number.upper())
        return select(Donor).where(or_(ours, walk_in))
    return select(Donor).where(ours)


def _denied(session: Session, principal: Principal, action: str, kind: str, object_id: uuid.UUID) -> NotFound:
    audit.record_and_commit(
        session, principal, action, outcome="denied", resource_type=kind, resource_id=object_id
    )
    return NotFound(f"No such {kind_label(kind)}.")


def kind_label(kind: str) -> str:
    """A resource type as people say it ("DonationAppointment" -> "donation appointment")."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in kind).strip()


def get_donor(session: Session, principal: Principal, donor_id: uuid.UUID, action: str) -> Donor:
    """A donor the principal may see (staff: their organisation's; a donor: themselves), audited."""
    require_any(session, principal, (Perm.BLOOD_STOCK, Perm.DONATE), action)
    if has_perm(principal, Perm.BLOOD_STOCK):
        found = session.execute(
            select(Donor).where(
                Donor.id == donor_id,
                or_(
                    Donor.organisation_id.is_(None),  # a walk-in without a blood bank yet
                    Donor.id.in_(staff_donors(principal.organisation_id).with_only_columns(Donor.id)),
                ),
            )
        ).scalar()
    else:
        own = donor_for_user(session, principal.user_id) if principal.user_id else None
        found = own if own is not None and own.id == donor_id else None
    if found is None:
        raise _denied(session, principal, action, "Donor", donor_id)
    audit.record(session, principal, action, resource_type="Donor", resource_id=found.id)
    return found


def own_donor(session: Session, principal: Principal, action: str) -> Donor:
    """The signed-in donor's own profile (404 until they complete it)."""
    require(session, principal, Perm.DONATE, action)
    found = donor_for_user(session, principal.user_id) if principal.user_id else None
    if found is None:
        raise NotFound("Complete your donor profile first.", extra={"reason": "no_profile"})
    audit.record(session, principal, action, resource_type="Donor", resource_id=found.id)
    return found


# --- registration and profile -------------------------------------------------------------------------------


def _donor_number(session: Session) -> str:
    """A fresh donor number: "D" and 9 random digits (unguessable, unique)."""
    while True:
        number = f"D{secrets.randbelow(10**9):09d}"
        if not session.execute(select(exists().where(Donor.donor_number == number))).scalar():
            return number


def register_donor(session: Session, principal: Principal, data: DonorIn) -> Donor:
    """Staff register a donor (without an account) at their organisation."""
    require(session, principal, Perm.BLOOD_STOCK, "bloodbank.donor.register")
    donor = Donor(
        donor_number=_donor_number(session), organisation_id=principal.organisation_id, **data.model_dump()
    )
    session.add(donor)
    session.flush()
    audit.record(session, principal, "bloodbank.donor.register", resource_type="Donor", resource_id=donor.id)
    return donor


def register_self(session: Session, principal: Principal, data: SelfDonorIn) -> Donor:
    """A donor account completes its donor profile (one per account: 409 for a second)."""
    require(session, principal, Perm.DONATE, "bloodbank.donor.self_register")
    assert principal.user_id is not None
    if donor_for_user(session, principal.user_id) is not None:
        raise Conflict("You already have a donor profile; change it instead.")
    donor = Donor(donor_number=_donor_number(session), user_id=principal.user_id, **data.model_dump())
    try:
        with session.begin_nested():
            session.add(donor)
    except IntegrityError:  # the same account, in two tabs at once
        raise Conflict("You already have a donor profile; change it instead.") from None
    audit.record(
        session, principal, "bloodbank.donor.self_register", resource_type="Donor", resource_id=donor.id
    )
    return donor


def update_donor(
    session: Session, principal: Principal, donor_id: uuid.UUID | None, changes: DonorUpdate
) -> Donor:
    """Change a donor (only the fields sent). ``donor_id`` None: the signed-in donor's own profile, where
    only contact, weight and availability may change."""
    action = "bloodbank.donor.update"
    if donor_id is None:
        donor = own_donor(session, principal, action)
        sent = changes.model_dump(exclude_unset=True)
        if forbidden := sorted(set(sent) - SELF_EDITABLE):
            raise ValidationFailed(
                f"Only blood bank staff can change: {', '.join(forbidden)}.", extra={"field": forbidden[0]}
            )
    else:
        require(session, principal, Perm.BLOOD_STOCK, action)
        donor = get_donor(session, principal, donor_id, action)
        sent = changes.model_dump(exclude_unset=True)
    if cleared := sorted(name for name in NOT_CLEARABLE if name in sent and sent[name] is None):
        raise ValidationFailed(
            f"{cleared[0].replace('_', ' ').capitalize()} cannot be removed.", extra={"field": cleared[0]}
        )
    for name, value in sent.items():
        setattr(donor, name, "" if value is None and name in TEXT_FIELDS else value)
    if (donor.latitude is None) != (donor.longitude is None):
        raise ValidationFailed("Give both latitude and longitude, or neither.", extra={"field": "latitude"})
    session.flush()
    audit.record(
        session,
        principal,
        action,
        resource_type="Donor",
        resource_id=donor.id,
        detail={"fields": sorted(sent)},
    )
    return donor


def set_availability(
    session: Session, principal: Principal, donor_id: uuid.UUID | None, available: bool, until: date | None
) -> Donor:
    """Whether the donor may be called now; ``until``: unavailable until that day (a pause)."""
    changes = DonorUpdate(available=available, unavailable_until=until)
    return update_donor(session, principal, donor_id, changes)


# --- eligibility and availability ---------------------------------------------------------------------------


def is_available(donor: Donor, on_date: date) -> bool:
    """Whether the donor is willing to be called on ``on_date``: their switch is on and any pause they set
    has ended (a donor unavailable until the 10th is available again on the 10th)."""
    return donor.available and (donor.unavailable_until is None or on_date >= donor.unavailable_until)


def rule_profile(session: Session, organisation_id: uuid.UUID | None) -> str:
    """The donor rule profile ("US", "UK", "WHO") of an organisation's policy; "US" without one."""
    if organisation_id is None:
        return DEFAULT_PROFILE
    return policy.get_policy(session, organisation_id).rule_profile or DEFAULT_PROFILE


def active_deferrals(session: Session, donor_id: uuid.UUID, on_date: date) -> list[DonorDeferral]:
    """The donor's deferrals in force on ``on_date`` (started, not ended, not lifted)."""
    query = select(DonorDeferral).where(
        DonorDeferral.donor_id == donor_id,
        DonorDeferral.lifted_at.is_(None),
        DonorDeferral.starts_on <= on_date,
        or_(DonorDeferral.ends_on.is_(None), DonorDeferral.ends_on > on_date),
    )
    return list(session.execute(query.order_by(DonorDeferral.starts_on, DonorDeferral.id)).scalars())


def donor_mapping(session: Session, donor: Donor, screening: dict[str, Any] | None = None) -> dict[str, Any]:
    """The donor as the rules read it. Weight (updated by each screening) and height are the profile's;
    haemoglobin the last *completed* donation's (a failed screening is represented by the deferral it made,
    so an old low value cannot block the donor after that deferral ends); ``screening`` overrides weight
    and haemoglobin with today's measurements (and adds temperature, blood pressure and pulse)."""
    donations = session.execute(
        select(Donation.collected_at, Donation.donation_type, Donation.hemoglobin_g_dl)
        .where(Donation.donor_id == donor.id, Donation.outcome == "completed")
        .order_by(Donation.collected_at.desc())
    ).all()
    latest_hb = next((row.hemoglobin_g_dl for row in donations if row.hemoglobin_g_dl is not None), None)
    return {
        "birth_date": donor.birth_date,
        "sex": donor.sex,
        "weight_kg": donor.weight_kg,
        "height_cm": donor.height_cm,
        "hemoglobin_g_dl": latest_hb,
        "parental_consent": donor.parental_consent,
        "donations": [(local_day(row.collected_at), row.donation_type) for row in donations],
        **(screening or {}),
    }


def donor_status(
    session: Session,
    donor: Donor,
    donation_type: str,
    on_date: date,
    *,
    organisation_id: uuid.UUID | None = None,
    screening: dict[str, Any] | None = None,
) -> rules.Eligibility:
    """Whether the donor may give ``donation_type`` on ``on_date``: the rules of the rule profile of
    ``organisation_id`` (default: the donor's home organisation; "US" without one), then the deferrals in
    force that day (temporary: not before it ends; permanent: never), with every reason and the first day
    all of them allow."""
    return _statuses(session, donor, (donation_type,), on_date, organisation_id, screening)[donation_type]


def _statuses(
    session: Session,
    donor: Donor,
    donation_types: Iterable[str],
    on_date: date,
    organisation_id: uuid.UUID | None = None,
    screening: dict[str, Any] | None = None,
) -> dict[str, rules.Eligibility]:
    """:func:`donor_status` for several donation types, reading the donor's history, deferrals and rule
    profile once."""
    profile = rule_profile(session, organisation_id or donor.organisation_id)
    mapping = donor_mapping(session, donor, screening)
    deferrals = active_deferrals(session, donor.id, on_date)
    return {
        kind: with_deferrals(rules.donor_eligibility(mapping, kind, on_date, profile=profile), deferrals)
        for kind in donation_types
    }


def with_deferrals(verdict: rules.Eligibility, deferrals: Iterable[DonorDeferral]) -> rules.Eligibility:
    """The rules' verdict combined with the deferrals in force (pure)."""
    reasons = list(verdict.reasons)
    eligible, next_date, never = verdict.eligible, verdict.next_eligible_date, False
    if not verdict.eligible and verdict.next_eligible_date is None:
        never = True  # the rules can promise no date (a measurement failed, or never): neither can we
    for deferral in deferrals:
        eligible = False
        if deferral.ends_on is None:
            never = True
            reasons.append(f"Permanently deferred: {deferral.reason}")
        else:
            reasons.append(f"Deferred until {deferral.ends_on.isoformat()}: {deferral.reason}")
            next_date = max(next_date, deferral.ends_on) if next_date else deferral.ends_on
    return rules.Eligibility(
        eligible=eligible, reasons=reasons, next_eligible_date=None if never else next_date
    )


def eligibility_by_type(session: Session, donor: Donor, on_date: date) -> dict[str, rules.Eligibility]:
    """The donor's eligibility on ``on_date`` for every donation type."""
    return _statuses(session, donor, rules.DONATION_TYPES, on_date)


# --- deferrals ----------------------------------------------------------------------------------------------


def add_deferral(
    session: Session,
    principal: Principal,
    donor_id: uuid.UUID,
    data: DeferralIn,
    *,
    today: date | None = None,
) -> DonorDeferral:
    """Staff defer a donor from today: temporarily (until ``ends_on``, after today) or permanently."""
    require(session, principal, Perm.BLOOD_STOCK, "bloodbank.deferral.add")
    donor = get_donor(session, principal, donor_id, "bloodbank.deferral.add")
    today = today or local_day(utcnow())
    if data.ends_on is not None and data.ends_on <= today:
        raise ValidationFailed("A temporary deferral must end after today.", extra={"field": "ends_on"})
    deferral = _defer(session, principal, donor, data.kind, data.reason, today, data.ends_on)
    _tell_donor(
        session, donor, "Your donor status changed", "Open your donor page to see when you can give again."
    )
    return deferral


def _defer(
    session: Session,
    principal: Principal,
    donor: Donor,
    kind: str,
    reason: str,
    starts_on: date,
    ends_on: date | None,
) -> DonorDeferral:
    deferral = DonorDeferral(
        donor_id=donor.id,
        kind=kind,
        reason=clean_line(reason)[:300],
        starts_on=starts_on,
        ends_on=ends_on,
        created_by=principal.user_id,
        created_at=utcnow(),
    )
    session.add(deferral)
    session.flush()
    audit.record(
        session,
        principal,
        "bloodbank.deferral.add",
        resource_type="DonorDeferral",
        resource_id=deferral.id,
        detail={"donor": str(donor.id), "kind": kind},
    )
    return deferral


def lift_deferral(
    session: Session, principal: Principal, donor_id: uuid.UUID, deferral_id: uuid.UUID
) -> DonorDeferral:
    """Staff lift a deferral (kept in the history, marked lifted). 409 when it is already lifted."""
    require(session, principal, Perm.BLOOD_STOCK, "bloodbank.deferral.lift")
    donor = get_donor(session, principal, donor_id, "bloodbank.deferral.lift")
    deferral = session.get(DonorDeferral, deferral_id)
    if deferral is None or deferral.donor_id != donor.id:
        raise _denied(session, principal, "bloodbank.deferral.lift", "DonorDeferral", deferral_id)
    if deferral.lifted_at is not None:
        raise Conflict("This deferral was already lifted.")
    deferral.lifted_at, deferral.lifted_by = utcnow(), principal.user_id
    session.flush()
    audit.record(
        session,
        principal,
        "bloodbank.deferral.lift",
        resource_type="DonorDeferral",
        resource_id=deferral.id,
        detail={"donor": str(donor.id)},
    )
    return deferral


# --- reading ------------------------------------------------------------------------------------------------


@dataclass
class DonorListRow:
    """A donor in a list."""

    donor: Donor
    eligible_now: bool
    available_now: bool


def list_donors(
    session: Session,
    principal: Principal,
    *,
    search: str = "",
    blood_group: str | None = None,
    eligible_now: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
    today: date | None = None,
) -> Page[DonorListRow]:
    """Staff: their organisation's donors by family name, searched by name or donor number (an exact donor
    number also finds a walk-in who has no blood bank yet), filtered by group and by whether they may give
    whole blood today. With ``eligible_now`` a page may hold fewer than
    ``limit`` donors (the rules run per donor): follow ``next_cursor`` until it is None."""
    require(session, principal, Perm.BLOOD_STOCK, "bloodbank.donor.search")
    text = clean_line(search)
    query = staff_donors(principal.organisation_id, walk_in_number=text)
    if text:
        pattern = f"%{text.lower()}%"
        full = func.lower(Donor.given_name + " " + Donor.family_name)
        query = query.where(or_(full.like(pattern), func.lower(Donor.donor_number).like(pattern)))
    if blood_group:
        query = query.where(Donor.blood_group == blood_group)
    page = paginate(
        session,
        query,
        sort_column=Donor.family_name,
        id_column=Donor.id,
        descending=False,
        limit=limit,
        cursor=cursor,
    )
    today = today or local_day(utcnow())
    rows = [
        DonorListRow(
            d, donor_status(session, d, DonationType.WHOLE_BLOOD, today).eligible, is_available(d, today)
        )
        for d in page.items
    ]
    if eligible_now is not None:
        rows = [row for row in rows if row.eligible_now == eligible_now]
    audit.record(
        session, principal, "bloodbank.donor.search", resource_type="Donor", detail={"returned": len(rows)}
    )
    return Page(items=rows, next_cursor=page.next_cursor)


@dataclass
class DonorDetail:
    """A donor's page: profile, availability, eligibility per type, deferrals, donations, appointments."""

    donor: Donor
    available_now: bool
    eligibility: dict[str, rules.Eligibility]
    deferrals: list[DonorDeferral]
    donations: list[Donation]
    appointments: list[DonationAppointment]
    upcoming: DonationAppointment | None = None  # the next booked appointment still to come
    units_by_donation: dict[uuid.UUID, int] = field(default_factory=dict)


def donor_detail(session: Session, principal: Principal, donor_id: uuid.UUID | None) -> DonorDetail:
    """A donor with everything about them (``donor_id`` None: the signed-in donor's own)."""
    action = "bloodbank.donor.read"
    donor = (
        own_donor(session, principal, action)
        if donor_id is None
        else get_donor(session, principal, donor_id, action)
    )
    return _detail(session, donor)


def _detail(session: Session, donor: Donor) -> DonorDetail:
    today = local_day(utcnow())
    deferrals = session.scalars(
        select(DonorDeferral)
        .where(DonorDeferral.donor_id == donor.id)
        .order_by(DonorDeferral.created_at.desc(), DonorDeferral.id)
    ).all()
    donations = session.scalars(
        select(Donation)
        .where(Donation.donor_id == donor.id)
        .order_by(Donation.collected_at.desc(), Donation.id)
        .limit(HISTORY_LIMIT)
    ).all()
    appointments = session.scalars(
        select(DonationAppointment)
        .where(DonationAppointment.donor_id == donor.id)
        .order_by(DonationAppointment.starts_at.desc(), DonationAppointment.id)
        .limit(HISTORY_LIMIT)
    ).all()
    units = session.execute(
        select(BloodUnit.donation_id, func.count())
        .where(BloodUnit.donation_id.in_([d.id for d in donations]))
        .group_by(BloodUnit.donation_id)
    ).all()
    return DonorDetail(
        donor=donor,
        available_now=is_available(donor, today),
        eligibility=eligibility_by_type(session, donor, today),
        deferrals=list(deferrals),
        donations=list(donations),
        appointments=list(appointments),
        upcoming=min(
            (a for a in appointments if a.status == "booked" and a.starts_at >= utcnow()),
            key=lambda a: a.starts_at,
            default=None,
        ),
        units_by_donation={row[0]: int(row[1]) for row in units if row[0] is not None},
    )


def donation_result(session: Session, donor: Donor, donation_id: uuid.UUID) -> RecordedDonation | None:
    """What one of the (already authorised) donor's donations made: its units, or the deferral its
    screening caused (the deferral starting that day); None when it is not theirs."""
    donation = session.get(Donation, donation_id)
    if donation is None or donation.donor_id != donor.id:
        return None
    units = session.execute(
        select(BloodUnit).where(BloodUnit.donation_id == donation.id).order_by(BloodUnit.product_code)
    ).scalars()
    deferral = None
    if donation.outcome == "deferred":
        deferral = session.execute(
            select(DonorDeferral)
            .where(
                DonorDeferral.donor_id == donor.id,
                DonorDeferral.starts_on == local_day(donation.collected_at),
            )
            .order_by(DonorDeferral.created_at.desc())
            .limit(1)
        ).scalar()
    reasons = deferral.reason.removeprefix(SCREENING_PREFIX).split("; ") if deferral else []
    return RecordedDonation(donation=donation, units=list(units), deferral=deferral, reasons=reasons)


# --- donation sites and free times --------------------------------------------------------------------------


def donation_sites(session: Session, principal: Principal) -> list[Organisation]:
    """The places donors can give blood (blood banks and hospitals), by name."""
    require_any(session, principal, (Perm.DONATE, Perm.BLOOD_STOCK), "bloodbank.donation_sites")
    query = select(Organisation).where(Organisation.kind.in_(DONATION_SITE_KINDS)).order_by(Organisation.name)
    return list(session.execute(query).scalars())


def checked_type(donation_type: str) -> str:
    """A donation type name; 422 for an unknown one."""
    if donation_type not in rules.DONATION_TYPES:
        raise ValidationFailed(
            f"Unknown donation type: choose one of {', '.join(rules.DONATION_TYPES)}.",
            extra={"field": "donation_type"},
        )
    return donation_type


def _site(session: Session, organisation_id: uuid.UUID) -> Organisation:
    site = session.get(Organisation, organisation_id)
    if site is None or site.kind not in DONATION_SITE_KINDS:
        raise NotFound("No such blood bank.", extra={"field": "organisation_id"})
    return site


def chairs(session: Session, organisation_id: uuid.UUID) -> int:
    """How many donors a slot of the organisation holds."""
    return policy.get_policy(session, organisation_id).donation_chairs or 1


def _booked_chairs(
    session: Session, organisation_id: uuid.UUID, starts: list[datetime]
) -> dict[datetime, set[int]]:
    rows = session.execute(
        select(DonationAppointment.starts_at, DonationAppointment.chair).where(
            DonationAppointment.organisation_id == organisation_id,
            DonationAppointment.status == "booked",
            DonationAppointment.starts_at.in_(starts),
        )
    ).all()
    taken: dict[datetime, set[int]] = {}
    for start, chair in rows:
        taken.setdefault(start, set()).add(chair)
    return taken


def free_slots(
    session: Session,
    principal: Principal,
    organisation_id: uuid.UUID,
    on_date: date,
    donation_type: str,
    *,
    now: datetime | None = None,
) -> list[datetime]:
    """The start times on the local day ``on_date`` at which the blood bank still has a free chair, from
    now on."""
    require_any(session, principal, (Perm.DONATE, Perm.BLOOD_STOCK), "bloodbank.donation_slots")
    checked_type(donation_type)
    _site(session, organisation_id)
    now = now or utcnow()
    starts = [s for s in slot_starts(on_date) if s > now]
    capacity = chairs(session, organisation_id)
    taken = _booked_chairs(session, organisation_id, starts)
    return [s for s in starts if len(taken.get(s, ())) < capacity]


# --- appointments -------------------------------------------------------------------------------------------


def _donor_to_book(
    session: Session, principal: Principal, donor_id: uuid.UUID | None, organisation_id: uuid.UUID
) -> Donor:
    """Whose appointment: a donor books for themselves; staff for a donor of theirs, at their own site."""
    action = "bloodbank.donation_appointment.book"
    require_any(session, principal, (Perm.DONATE, Perm.BLOOD_STOCK), action)
    if has_perm(principal, Perm.BLOOD_STOCK):
        if donor_id is None:
            raise ValidationFailed("Choose the donor to book for.", extra={"field": "donor_id"})
        if organisation_id != principal.organisation_id:
            raise ValidationFailed(
                "Staff book donors at their own blood bank.", extra={"field": "organisation_id"}
            )
        return get_donor(session, principal, donor_id, action)
    donor = own_donor(session, principal, action)
    if donor_id not in (None, donor.id):
        raise _denied(session, principal, action, "Donor", donor_id)
    return donor


def book_appointment(
    session: Session,
    principal: Principal,
    donor_id: uuid.UUID | None,
    organisation_id: uuid.UUID,
    starts_at: datetime,
    donation_type: str,
    *,
    callout_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> DonationAppointment:
    """Book the first free chair at ``starts_at`` (a slot start) for the donor. Refused (422) when the donor
    may not give that day, with the reasons and the next eligible date; 409 when they already hold a booked
    appointment or the time is full (also when a concurrent booking took the last chair). Audited; the
    donor is notified."""
    donor = _donor_to_book(session, principal, donor_id, organisation_id)
    site = _site(session, organisation_id)
    checked_type(donation_type)
    now = now or utcnow()
    if starts_at > now + timedelta(days=BOOKING_HORIZON_DAYS):
        raise ValidationFailed(
            f"Book at most {BOOKING_HORIZON_DAYS} days ahead.", extra={"field": "starts_at"}
        )
    if starts_at <= now or not is_slot_start(starts_at):
        raise ValidationFailed("Choose one of the free times offered.", extra={"field": "starts_at"})
    day = local_day(starts_at)
    verdict = donor_status(session, donor, donation_type, day, organisation_id=organisation_id)
    if not verdict.eligible:
        nxt = verdict.next_eligible_date
        raise ValidationFailed(
            f"Not eligible to give on {day.isoformat()}: {'; '.join(verdict.reasons)}"
            + (f" Next eligible date: {nxt.isoformat()}." if nxt else ""),
            extra={
                "field": "starts_at",
                "reasons": list(verdict.reasons),
                "next_eligible_date": nxt.isoformat() if nxt else None,
            },
        )
    _refuse_second_booking(session, donor)
    appointment = _take_chair(session, principal, donor, site, starts_at, donation_type, callout_id)
    if donor.organisation_id is None:
        donor.organisation_id = site.id  # their home blood bank from now on
    audit.record(
        session,
        principal,
        "bloodbank.donation_appointment.book",
        resource_type="DonationAppointment",
        resource_id=appointment.id,
        detail={"donor": str(donor.id), "starts_at": starts_at.isoformat()},
    )
    _tell_donor(session, donor, "Donation appointment booked", f"{site.name}, {local_text(starts_at)}.")
    return appointment


def _refuse_second_booking(session: Session, donor: Donor) -> None:
    held = select(DonationAppointment.id).where(
        DonationAppointment.donor_id == donor.id, DonationAppointment.status == "booked"
    )
    if session.execute(held.limit(1)).first():
        raise Conflict("This donor already has a booked donation appointment: cancel it first.")


def _take_chair(
    session: Session,
    principal: Principal,
    donor: Donor,
    site: Organisation,
    starts_at: datetime,
    donation_type: str,
    callout_id: uuid.UUID | None,
) -> DonationAppointment:
    """Insert the appointment on the first free chair; when a concurrent booking takes it first (the partial
    unique index), try the next one; 409 when none is left."""
    capacity = chairs(session, site.id)
    for chair in range(1, capacity + 1):
        if chair in _booked_chairs(session, site.id, [starts_at]).get(starts_at, set()):
            continue
        appointment = DonationAppointment(
            donor_id=donor.id,
            organisation_id=site.id,
            starts_at=starts_at,
            chair=chair,
            donation_type=donation_type,
            status="booked",
            callout_id=callout_id,
            booked_by=principal.user_id,
        )
        try:
            with session.begin_nested():
                session.add(appointment)
            return appointment
        except IntegrityError:
            _refuse_second_booking(session, donor)  # the same donor booked elsewhere meanwhile
    raise Conflict("That time was just taken by other donors. Pick another time.")


def _visible_appointment(
    session: Session, principal: Principal, appointment_id: uuid.UUID, action: str
) -> DonationAppointment:
    require_any(session, principal, (Perm.DONATE, Perm.BLOOD_STOCK), action)
    found = session.get(DonationAppointment, appointment_id)
    if found is not None and has_perm(principal, Perm.BLOOD_STOCK):
        visible = found.organisation_id == principal.organisation_id
    else:
        visible = (
            found is not None and principal.user_id is not None and found.donor.user_id == principal.user_id
        )
    if found is None or not visible:
        raise _denied(session, principal, action, "DonationAppointment", appointment_id)
    return found


def _set_status(
    session: Session, principal: Principal, appointment: DonationAppointment, status: str, action: str
) -> DonationAppointment:
    changed = session.execute(
        update(DonationAppointment)
        .where(DonationAppointment.id == appointment.id, DonationAppointment.status == "booked")
        .values(status=status, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(appointment)
        raise Conflict(f"This appointment is {appointment.status.replace('_', '-')}, no longer booked.")
    session.refresh(appointment)
    audit.record(
        session,
        principal,
        action,
        resource_type="DonationAppointment",
        resource_id=appointment.id,
        detail={"donor": str(appointment.donor_id)},
    )
    return appointment


def cancel_appointment(
    session: Session, principal: Principal, appointment_id: uuid.UUID, *, now: datetime | None = None
) -> DonationAppointment:
    """Cancel a booked appointment: the donor until it starts, staff at any time (the donor is told)."""
    action = "bloodbank.donation_appointment.cancel"
    appointment = _visible_appointment(session, principal, appointment_id, action)
    if not has_perm(principal, Perm.BLOOD_STOCK) and appointment.starts_at <= (now or utcnow()):
        raise Conflict("This appointment has already started; ask the blood bank's staff.")
    _set_status(session, principal, appointment, "cancelled", action)
    if has_perm(principal, Perm.BLOOD_STOCK):
        _tell_donor(
            session,
            appointment.donor,
            "Donation appointment cancelled",
            f"{appointment.organisation.name} cancelled your visit of {local_text(appointment.starts_at)}.",
        )
    return appointment


def mark_no_show(
    session: Session, principal: Principal, appointment_id: uuid.UUID, *, now: datetime | None = None
) -> DonationAppointment:
    """Staff: the donor did not come (only once the appointment's time has come)."""
    action = "bloodbank.donation_appointment.no_show"
    require(session, principal, Perm.BLOOD_STOCK, action)
    appointment = _visible_appointment(session, principal, appointment_id, action)
    if appointment.starts_at > (now or utcnow()):
        raise Conflict("This appointment has not started yet.")
    return _set_status(session, principal, appointment, "no_show", action)


def list_appointments(
    session: Session, principal: Principal, on_date: date | None = None
) -> list[DonationAppointment]:
    """Staff: their blood bank's appointments on the local day ``on_date`` (today by default), by time and
    chair. Donors: their own, newest first."""
    action = "bloodbank.donation_appointment.list"
    require_any(session, principal, (Perm.DONATE, Perm.BLOOD_STOCK), action)
    query = select(DonationAppointment)
    if has_perm(principal, Perm.BLOOD_STOCK):
        day = slot_starts(on_date or local_day(utcnow()))
        query = query.where(
            DonationAppointment.organisation_id == principal.organisation_id,
            DonationAppointment.starts_at >= day[0],
            DonationAppointment.starts_at <= day[-1],
        ).order_by(DonationAppointment.starts_at, DonationAppointment.chair)
    else:
        donor = own_donor(session, principal, action)
        query = query.where(DonationAppointment.donor_id == donor.id).order_by(
            DonationAppointment.starts_at.desc(), DonationAppointment.id
        )
    found = list(session.execute(query.limit(500)).scalars())
    audit.record(
        session, principal, action, resource_type="DonationAppointment", detail={"returned": len(found)}
    )
    return found


def send_reminders(session: Session, now: datetime) -> int:
    """Remind donors of appointments starting within the next 24 hours, once each (a conditional update
    claims each reminder, so concurrent workers never send one twice). Returns how many were sent."""
    due = (
        session.execute(
            select(DonationAppointment).where(
                DonationAppointment.status == "booked",
                DonationAppointment.reminder_sent_at.is_(None),
                DonationAppointment.starts_at > now,
                DonationAppointment.starts_at <= now + REMINDER_AHEAD,
            )
        )
        .scalars()
        .all()
    )
    sent = 0
    for appointment in due:
        claimed = session.execute(
            update(DonationAppointment)
            .where(DonationAppointment.id == appointment.id, DonationAppointment.reminder_sent_at.is_(None))
            .values(reminder_sent_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        _tell_donor(
            session,
            appointment.donor,
            "Reminder: you give blood tomorrow",
            f"{appointment.organisation.name}, {local_text(appointment.starts_at)}. Thank you!",
            email=True,
        )
        sent += 1
    return sent


def _tell_donor(session: Session, donor: Donor, title: str, body: str, *, email: bool = False) -> None:
    """An in-app notification to the donor's account (if any) and, for reminders, an email."""
    if donor.user_id is not None:
        notify.notify(session, donor.user_id, "bloodbank.donor", title, body, link="/donor")
    if email and donor.email:
        notify.queue_email(session, system_principal(), donor.email, title, f"{body}\n\nCareSync")


# --- recording a donation -----------------------------------------------------------------------------------


@dataclass
class RecordedDonation:
    """What recording a donation did: the donation row, the units made (completed), or the deferral
    (failed screening), and the screening's reasons."""

    donation: Donation
    units: list[BloodUnit]
    deferral: DonorDeferral | None
    reasons: list[str]


def _appointment_for(
    session: Session, principal: Principal, data: DonationIn, donor: Donor
) -> DonationAppointment | None:
    if data.appointment_id is None:
        return None
    appointment = session.get(DonationAppointment, data.appointment_id)
    if appointment is None or appointment.organisation_id != principal.organisation_id:
        raise _denied(
            session, principal, "bloodbank.donation.record", "DonationAppointment", data.appointment_id
        )
    if appointment.donor_id != donor.id:
        raise ValidationFailed("This appointment is another donor's.", extra={"field": "appointment_id"})
    if appointment.status != "booked":
        raise Conflict(f"This appointment is {appointment.status.replace('_', '-')}, no longer booked.")
    return appointment


def record_donation(
    session: Session, principal: Principal, data: DonationIn, *, now: datetime | None = None
) -> RecordedDonation:
    """Staff record a donation visit, all in the caller's transaction. The screening goes through the
    eligibility rules: when it fails, the donation is ``deferred`` with a temporary deferral until the
    next eligible date (at least until tomorrow) and no unit; otherwise it is ``completed`` with a new
    DIN, the inventory makes its quarantined units, and the donor's measured weight (and typed group)
    update their profile. The appointment, if any, becomes completed. A donor under a deferral is refused
    (409) before any screening."""
    action = "bloodbank.donation.record"
    require(session, principal, Perm.BLOOD_STOCK, action)
    assert principal.organisation_id is not None
    donor = get_donor(session, principal, data.donor_id, action)
    appointment = _appointment_for(session, principal, data, donor)
    donation_type = data.donation_type or (appointment.donation_type if appointment else None)
    if donation_type is None:
        raise ValidationFailed("Choose the type of donation.", extra={"field": "donation_type"})
    checked_type(donation_type)
    now = now or utcnow()
    today = local_day(now)
    if deferrals := active_deferrals(session, donor.id, today):
        verdict = with_deferrals(
            rules.Eligibility(eligible=True, reasons=[], next_eligible_date=None), deferrals
        )
        raise Conflict(
            f"This donor may not give today: {'; '.join(verdict.reasons)}", extra={"field": "donor_id"}
        )
    _check_group(donor, data)
    screening = data.model_dump(
        include={
            "weight_kg",
            "hemoglobin_g_dl",
            "temperature_c",
            "systolic_mmhg",
            "diastolic_mmhg",
            "pulse_bpm",
        }
    )
    verdict = donor_status(
        session, donor, donation_type, today, organisation_id=principal.organisation_id, screening=screening
    )
    donation = Donation(
        donor_id=donor.id,
        organisation_id=principal.organisation_id,
        appointment_id=appointment.id if appointment else None,
        donation_type=donation_type,
        collected_at=now,
        recorded_by=principal.user_id,
        notes=data.notes,
        **screening,
    )
    units: list[BloodUnit] = []
    deferral = None
    if verdict.eligible:
        donation.outcome, donation.volume_ml = "completed", data.volume_ml
        _insert_with_din(session, donation, principal.organisation_id, now.year)
        donor.weight_kg = data.weight_kg
        if donor.blood_group is None:
            donor.blood_group = data.blood_group
        session.flush()
        units = inventory.receive_donation(
            session, principal, donation, storage_location=data.storage_location
        )
    else:
        donation.outcome = "deferred"
        session.add(donation)
        session.flush()
        ends_on = max(verdict.next_eligible_date or today, today + timedelta(days=1))
        deferral = _defer(
            session,
            principal,
            donor,
            "temporary",
            SCREENING_PREFIX + "; ".join(verdict.reasons),
            today,
            ends_on,
        )
    if appointment is not None:
        _set_status(session, principal, appointment, "completed", "bloodbank.donation_appointment.complete")
    audit.record(
        session,
        principal,
        action,
        resource_type="Donation",
        resource_id=donation.id,
        detail={"donor": str(donor.id), "outcome": donation.outcome, "units": len(units)},
    )
    return RecordedDonation(donation=donation, units=units, deferral=deferral, reasons=list(verdict.reasons))


def _check_group(donor: Donor, data: DonationIn) -> None:
    if donor.blood_group is None and data.blood_group is None:
        raise ValidationFailed(
            "Type the donor's blood group first: it labels the units.", extra={"field": "blood_group"}
        )
    if donor.blood_group is not None and data.blood_group not in (None, donor.blood_group):
        raise ValidationFailed(
            f"The group typed ({data.blood_group}) differs from the donor's record ({donor.blood_group}): "
            "resolve the discrepancy before collecting.",
            extra={"field": "blood_group"},
        )


def _insert_with_din(session: Session, donation: Donation, organisation_id: uuid.UUID, year: int) -> None:
    """Give the donation the facility's next DIN and insert it; when a concurrent donation took that number
    (the unique index), take the following one."""
    for _attempt in range(DIN_ATTEMPTS):
        donation.din = din_codes.next_din(session, organisation_id, year)
        try:
            with session.begin_nested():
                session.add(donation)
            return
        except IntegrityError:
            continue
    raise Conflict("Could not allocate a donation number; try again.")
