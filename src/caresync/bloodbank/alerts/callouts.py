"""Donor call-outs: an appeal to donors of compatible groups for an urgent need, sent in waves.

A wave picks donors of the called groups who are available, not already contacted by this call-out and not
alerted by any call-out within the policy's cool-down (filtered in SQL), nearest to the blood bank first
(donors without coordinates last), then checks each one's eligibility in that order until the wave is
full. Every contacted donor gets an in-app (live) notification and an email, and replies from their portal:
accepting books a donation appointment at the blood bank. The periodic job sends another wave while too few
donors accepted and the last wave is older than :data:`WAVE_INTERVAL`; a call-out closes once enough
donors accepted, or when staff close it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from caresync.bloodbank.access import blood_bank_staff, staff_organisation
from caresync.bloodbank.alerts.service import component_label, get_alert
from caresync.bloodbank.donors import appointments
from caresync.bloodbank.donors import service as donors
from caresync.bloodbank.models import (
    BloodRequest,
    CalloutContact,
    DonationAppointment,
    Donor,
    DonorCallout,
)
from caresync.bloodbank.policy.service import get_policy
from caresync.bloodbank.rules import (
    BLOOD_GROUPS,
    DONATION_TYPES,
    Component,
    DonationType,
    compatible_donor_groups,
)
from caresync.config import get_settings
from caresync.core import audit
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, NotFound, ValidationFailed
from caresync.core.notify import notify, queue_email
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm, require
from caresync.core.text import clean_line
from caresync.identity.models import Organisation
from caresync.scheduling.rules import distance_km_if_known

WAVE_INTERVAL = timedelta(minutes=30)  # the job sends the next wave once the last one is this old
DONOR_PAGE = "/donor/callouts"
SENDER = "Blood bank call-outs"
CALLOUT_STATES = ("active", "closed", "all")
# What a donor gives for each component that runs short (red cells and cryo come from whole blood).
DONATION_FOR_COMPONENT = {
    Component.RED_CELLS: DonationType.WHOLE_BLOOD,
    Component.WHOLE_BLOOD: DonationType.WHOLE_BLOOD,
    Component.CRYO: DonationType.WHOLE_BLOOD,
    Component.PLATELETS: DonationType.PLATELETS,
    Component.PLASMA: DonationType.PLASMA,
}


@dataclass(frozen=True)
class Need:
    """What a call-out is for: the groups to call, the donation to ask for, why, and what caused it."""

    blood_groups: tuple[str, ...]
    donation_type: str
    reason: str
    alert_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Progress:
    """A call-out with its counts: donors contacted, accepted and declined so far."""

    callout: DonorCallout
    contacted: int
    accepted: int
    declined: int


@dataclass(frozen=True)
class ContactRow:
    """A contacted donor as staff see it (no more than they need to follow up)."""

    contact: CalloutContact
    donor_number: str
    donor_name: str
    blood_group: str | None
    appointment_at: datetime | None


@dataclass(frozen=True)
class MyCall:
    """A call sent to the signed-in donor."""

    callout: DonorCallout
    contact: CalloutContact
    organisation: Organisation
    appointment_at: datetime | None


# --- creating -----------------------------------------------------------------------------------------------


def _groups_for(component: str, group: str) -> tuple[str, ...]:
    """The donor groups whose donations suit a recipient of ``group`` (red cells for red-cell needs)."""
    if group not in BLOOD_GROUPS:
        raise ValidationFailed(f"Unknown blood group {group!r}.", extra={"field": "needed_group"})
    base = Component.RED_CELLS if component in (Component.WHOLE_BLOOD, Component.CRYO) else component
    return compatible_donor_groups(str(base), group)


def _from_alert(session: Session, organisation_id: uuid.UUID, alert_id: uuid.UUID) -> Need:
    alert = get_alert(session, organisation_id, alert_id)
    if alert is None:
        raise NotFound("No such alert.")
    if alert.kind == "unmet_request":
        need = _from_request(session, organisation_id, uuid.UUID(alert.subject))
        return Need(need.blood_groups, need.donation_type, need.reason, alert.id, need.request_id)
    if alert.kind != "low_stock":
        raise ValidationFailed(
            "Call donors for a shortage: expiring units need issuing, not more donors.",
            extra={"field": "alert_id"},
        )
    group, component = alert.subject.split(":")
    return Need(
        blood_groups=_groups_for(component, group),
        donation_type=DONATION_FOR_COMPONENT[Component(component)].value,
        reason=f"Our stock of {group} {component_label(component)} is running low.",
        alert_id=alert.id,
    )


def _from_request(session: Session, organisation_id: uuid.UUID, request_id: uuid.UUID) -> Need:
    request = session.get(BloodRequest, request_id)
    if request is None or request.organisation_id != organisation_id:
        raise NotFound("No such blood request.")
    group = request.patient_group or "O-"  # unknown group: only O- suits everyone
    return Need(
        blood_groups=_groups_for(request.component, group),
        donation_type=DONATION_FOR_COMPONENT[Component(request.component)].value,
        reason=f"A patient urgently needs {component_label(request.component)} ({group}).",
        request_id=request.id,
    )


def _need(
    session: Session,
    organisation_id: uuid.UUID,
    *,
    needed_group: str | None,
    blood_groups: list[str] | None,
    alert_id: uuid.UUID | None,
    request_id: uuid.UUID | None,
) -> Need:
    if alert_id is not None:
        return _from_alert(session, organisation_id, alert_id)
    if request_id is not None:
        return _from_request(session, organisation_id, request_id)
    if blood_groups:
        unknown = sorted(set(blood_groups) - set(BLOOD_GROUPS))
        if unknown:
            raise ValidationFailed(
                f"Unknown blood groups: {', '.join(unknown)}.", extra={"field": "blood_groups"}
            )
        ordered = tuple(g for g in BLOOD_GROUPS if g in blood_groups)
        return Need(ordered, DonationType.WHOLE_BLOOD.value, f"We urgently need {', '.join(ordered)} donors.")
    if needed_group:
        groups = _groups_for(Component.RED_CELLS, needed_group)
        return Need(
            groups, DonationType.WHOLE_BLOOD.value, f"We urgently need blood for {needed_group} patients."
        )
    raise ValidationFailed(
        "Say which blood is needed: a group, the donor groups to call, an alert or a request.",
        extra={"field": "needed_group"},
    )


def create_callout(
    session: Session,
    principal: Principal,
    *,
    donors_needed: int,
    now: datetime,
    needed_group: str | None = None,
    blood_groups: list[str] | None = None,
    alert_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
    donation_type: str | None = None,
    reason: str = "",
    send_first_wave: bool = True,
) -> DonorCallout:
    """Staff: call donors for their organisation. The groups called come from (first given wins) an
    alert, a request, an explicit list of donor groups, or the recipient group needed (the donor groups
    whose red cells suit it). The first wave goes out at once unless ``send_first_wave`` is false.
    One active call-out per alert or request (409 for a second)."""
    organisation_id = staff_organisation(session, principal, "bloodbank.callout.create")
    if not 1 <= donors_needed <= 500:
        raise ValidationFailed("Ask for between 1 and 500 donors.", extra={"field": "donors_needed"})
    if donation_type is not None and donation_type not in DONATION_TYPES:
        raise ValidationFailed(f"Unknown donation type {donation_type!r}.", extra={"field": "donation_type"})
    need = _need(
        session,
        organisation_id,
        needed_group=needed_group,
        blood_groups=blood_groups,
        alert_id=alert_id,
        request_id=request_id,
    )
    _refuse_duplicate(session, need)
    text = clean_line(reason) or need.reason
    if len(text) > 300:
        raise ValidationFailed("Keep the reason under 300 characters.", extra={"field": "reason"})
    callout = DonorCallout(
        organisation_id=organisation_id,
        blood_groups=list(need.blood_groups),
        donation_type=donation_type or need.donation_type,
        donors_needed=donors_needed,
        reason=text,
        request_id=need.request_id,
        alert_id=need.alert_id,
        created_by=principal.user_id,
        created_at=now,
    )
    session.add(callout)
    session.flush()
    audit.record(
        session,
        principal,
        "bloodbank.callout.create",
        resource_type="donor_callout",
        resource_id=callout.id,
        detail={"groups": callout.blood_groups, "donors_needed": donors_needed},
    )
    if send_first_wave:
        send_wave(session, principal, callout.id, now)
    return callout


def _refuse_duplicate(session: Session, need: Need) -> None:
    clauses = []
    if need.alert_id is not None:
        clauses.append(DonorCallout.alert_id == need.alert_id)
    if need.request_id is not None:
        clauses.append(DonorCallout.request_id == need.request_id)
    if not clauses:
        return
    existing = session.scalar(select(DonorCallout.id).where(DonorCallout.status == "active", or_(*clauses)))
    if existing is not None:
        raise Conflict("Donors are already being called for this; follow that call-out instead.")


# --- waves --------------------------------------------------------------------------------------------------


def _load(session: Session, principal: Principal, callout_id: uuid.UUID, action: str) -> DonorCallout:
    """The call-out, if the principal is the system or staff of its organisation (404 otherwise)."""
    if principal.is_system:
        callout = session.get(DonorCallout, callout_id)
    else:
        organisation_id = staff_organisation(session, principal, action)
        callout = session.get(DonorCallout, callout_id)
        if callout is not None and callout.organisation_id != organisation_id:
            audit.record_and_commit(
                session,
                principal,
                action,
                outcome="denied",
                resource_type="donor_callout",
                resource_id=callout_id,
            )
            callout = None
    if callout is None:
        raise NotFound("No such call-out.")
    return callout


def _candidates(
    session: Session, callout: DonorCallout, now: datetime, today: date, cooldown: timedelta
) -> list[Donor]:
    """Donors a wave may call, by SQL alone: of the called groups, reachable, willing now, not cooling
    down, not yet contacted by this call-out."""
    contacted = select(CalloutContact.donor_id).where(CalloutContact.callout_id == callout.id)
    return list(
        session.scalars(
            select(Donor).where(
                Donor.blood_group.in_(callout.blood_groups),
                or_(Donor.user_id.is_not(None), Donor.email != ""),
                Donor.available.is_(True),
                or_(Donor.unavailable_until.is_(None), Donor.unavailable_until <= today),
                or_(Donor.last_called_at.is_(None), Donor.last_called_at <= now - cooldown),
                Donor.id.not_in(contacted),
            )
        )
    )


def nearest_first(
    donors: list[Donor], latitude: float | None, longitude: float | None
) -> list[tuple[Donor, float | None]]:
    """Donors with their distance to the place, nearest first; without coordinates (either side) last,
    ties by donor number."""

    measured = [
        (donor, distance_km_if_known(latitude, longitude, donor.latitude, donor.longitude))
        for donor in donors
    ]
    return sorted(measured, key=lambda d: (d[1] is None, d[1] or 0.0, d[0].donor_number))


def send_wave(session: Session, principal: Principal, callout_id: uuid.UUID, now: datetime) -> int:
    """Contact the next wave of donors for an active call-out; returns how many were contacted (0 when no
    suitable donor is left). Two waves of one call-out cannot run at once (409 for the second)."""
    callout = _load(session, principal, callout_id, "bloodbank.callout.wave")
    if callout.status != "active":
        raise Conflict("This call-out is closed.")
    policy = get_policy(session, callout.organisation_id)
    organisation = session.get(Organisation, callout.organisation_id)
    assert organisation is not None  # a foreign key
    cooldown = timedelta(days=policy.callout_cooldown_days)
    today = appointments.local_day(now)
    picked: list[tuple[Donor, float | None]] = []
    for donor, km in nearest_first(
        _candidates(session, callout, now, today, cooldown), organisation.latitude, organisation.longitude
    ):
        if len(picked) >= policy.callout_wave_size:
            break
        if donors.is_available(donor, today) and _eligible(session, donor, callout, today):
            picked.append((donor, km))
    if not picked:
        return 0
    wave = callout.waves_sent + 1
    claimed = session.execute(
        update(DonorCallout)
        .where(
            DonorCallout.id == callout.id,
            DonorCallout.waves_sent == callout.waves_sent,
            DonorCallout.status == "active",
        )
        .values(waves_sent=wave)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("Another wave of this call-out was just sent; reload to see it.")
    session.refresh(callout)
    contacted = 0
    for donor, km in picked:
        if _claim_donor(session, donor, now, cooldown):
            session.add(
                CalloutContact(
                    callout_id=callout.id, donor_id=donor.id, wave=wave, distance_km=km, notified_at=now
                )
            )
            _tell_donor(session, donor, callout, organisation)
            contacted += 1
    session.flush()
    audit.record(
        session,
        principal,
        "bloodbank.callout.wave",
        resource_type="donor_callout",
        resource_id=callout.id,
        detail={"wave": wave, "contacted": contacted},
    )
    return contacted


def _eligible(session: Session, donor: Donor, callout: DonorCallout, on_date: date) -> bool:
    """Whether the donor may give what the call-out asks for, by the calling blood bank's rules."""
    verdict = donors.donor_status(
        session, donor, callout.donation_type, on_date, organisation_id=callout.organisation_id
    )
    return verdict.eligible


def _claim_donor(session: Session, donor: Donor, now: datetime, cooldown: timedelta) -> bool:
    """Mark the donor called now, unless another call-out called them meanwhile (compare-and-set)."""
    claimed = session.execute(
        update(Donor)
        .where(
            Donor.id == donor.id, or_(Donor.last_called_at.is_(None), Donor.last_called_at <= now - cooldown)
        )
        .values(last_called_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _tell_donor(session: Session, donor: Donor, callout: DonorCallout, organisation: Organisation) -> None:
    groups = "/".join(callout.blood_groups)
    title = f"Urgent: {groups} donors needed at {organisation.name}"
    body = f"{callout.reason} Reply to book a time to donate ({callout.donation_type.replace('_', ' ')})."
    if donor.user_id is not None:
        notify(session, donor.user_id, "bloodbank.callout", title, body, DONOR_PAGE)
    email = donor.email or (donor.account.email if donor.account else "")
    if email:
        link = f"{get_settings().base_url.rstrip('/')}{DONOR_PAGE}"
        where = organisation.phone or organisation.name
        text = f"Hello {donor.given_name},\n\n{body}\n\nReply and book: {link}\n(or call {where})\n"
        queue_email(session, system_principal(SENDER), email, title, text)


def _last_wave_at(session: Session, callout: DonorCallout) -> datetime:
    last = session.scalar(
        select(func.max(CalloutContact.notified_at)).where(CalloutContact.callout_id == callout.id)
    )
    if last is None:
        return callout.created_at
    return last if last.tzinfo else last.replace(tzinfo=callout.created_at.tzinfo)


def accepted_count(session: Session, callout_id: uuid.UUID) -> int:
    """How many donors accepted the call-out."""
    query = select(func.count()).where(
        CalloutContact.callout_id == callout_id, CalloutContact.response == "accepted"
    )
    return int(session.scalar(query) or 0)


def advance(session: Session, now: datetime) -> dict[str, int]:
    """The periodic job: close every active call-out that has enough acceptances, and send the next wave
    of those that still need donors once their last wave is :data:`WAVE_INTERVAL` old."""
    system = system_principal(SENDER)
    totals = {"closed": 0, "waves": 0, "contacted": 0}
    active = session.scalars(
        select(DonorCallout).where(DonorCallout.status == "active").order_by(DonorCallout.created_at)
    ).all()
    for callout in active:
        if accepted_count(session, callout.id) >= callout.donors_needed:
            _close(session, system, callout, now, "enough donors accepted")
            totals["closed"] += 1
        elif now - _last_wave_at(session, callout) >= WAVE_INTERVAL:
            contacted = send_wave(session, system, callout.id, now)
            totals["waves"] += 1 if contacted else 0
            totals["contacted"] += contacted
    return totals


# --- closing ------------------------------------------------------------------------------------------------


def close_callout(
    session: Session, principal: Principal, callout_id: uuid.UUID, now: datetime
) -> DonorCallout:
    """Staff: stop calling donors (replies already given stand; pending ones can no longer accept)."""
    callout = _load(session, principal, callout_id, "bloodbank.callout.close")
    if callout.status != "active":
        raise Conflict("This call-out is already closed.")
    _close(session, principal, callout, now, "closed by staff")
    return callout


def _close(session: Session, actor: Principal, callout: DonorCallout, now: datetime, why: str) -> None:
    callout.status, callout.closed_at = "closed", now
    session.flush()
    audit.record(
        session,
        actor,
        "bloodbank.callout.close",
        resource_type="donor_callout",
        resource_id=callout.id,
        detail={"why": why},
    )


# --- reading (staff) ----------------------------------------------------------------------------------------


def progress_of(session: Session, callouts: list[DonorCallout]) -> list[Progress]:
    """The call-outs with their contacted / accepted / declined counts (one grouped query)."""
    ids = [c.id for c in callouts]
    counts: dict[tuple[uuid.UUID, str], int] = {}
    if ids:
        rows = session.execute(
            select(CalloutContact.callout_id, CalloutContact.response, func.count())
            .where(CalloutContact.callout_id.in_(ids))
            .group_by(CalloutContact.callout_id, CalloutContact.response)
        ).all()
        counts = {(row[0], row[1]): int(row[2]) for row in rows}
    result = []
    for c in callouts:
        accepted, declined = counts.get((c.id, "accepted"), 0), counts.get((c.id, "declined"), 0)
        result.append(Progress(c, accepted + declined + counts.get((c.id, "pending"), 0), accepted, declined))
    return result


def list_callouts(
    session: Session,
    principal: Principal,
    *,
    state: str = "all",
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Progress], str | None]:
    """Staff: their organisation's call-outs with progress, newest first; and the next page's cursor."""
    organisation_id = staff_organisation(session, principal, "bloodbank.callout.list")
    if state not in CALLOUT_STATES:
        raise ValidationFailed(f"state must be one of {', '.join(CALLOUT_STATES)}.", extra={"field": "state"})
    query = select(DonorCallout).where(DonorCallout.organisation_id == organisation_id)
    if state != "all":
        query = query.where(DonorCallout.status == state)
    page: Page[DonorCallout] = paginate(
        session,
        query,
        sort_column=DonorCallout.created_at,
        id_column=DonorCallout.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )
    return progress_of(session, page.items), page.next_cursor


def progress(session: Session, principal: Principal, callout_id: uuid.UUID) -> Progress:
    """Staff: a call-out of their organisation with its counts (no donor data)."""
    return progress_of(session, [_load(session, principal, callout_id, "bloodbank.callout.read")])[0]


def callout_detail(
    session: Session, principal: Principal, callout_id: uuid.UUID
) -> tuple[Progress, list[ContactRow]]:
    """Staff: a call-out, its progress and every contacted donor with their reply (audited: donor data)."""
    callout = _load(session, principal, callout_id, "bloodbank.callout.read")
    rows = session.execute(
        select(CalloutContact, Donor, DonationAppointment.starts_at)
        .join(Donor, Donor.id == CalloutContact.donor_id)
        .outerjoin(DonationAppointment, DonationAppointment.id == CalloutContact.appointment_id)
        .where(CalloutContact.callout_id == callout.id)
        .order_by(
            CalloutContact.wave,
            CalloutContact.distance_km.is_(None),
            CalloutContact.distance_km,
            Donor.donor_number,
        )
    ).all()
    contacts = [
        ContactRow(
            contact, donor.donor_number, f"{donor.given_name} {donor.family_name}", donor.blood_group, at
        )
        for contact, donor, at in rows
    ]
    audit.record(
        session, principal, "bloodbank.callout.read", resource_type="donor_callout", resource_id=callout.id
    )
    return progress_of(session, [callout])[0], contacts


# --- the donor's side ---------------------------------------------------------------------------------------


def _me(session: Session, principal: Principal, action: str) -> Donor | None:
    require(session, principal, Perm.DONATE, action)
    assert principal.user_id is not None  # donors are people with accounts
    return donors.donor_for_user(session, principal.user_id)


def my_calls(session: Session, principal: Principal) -> list[MyCall]:
    """Donors: the active call-outs that contacted them, newest first, with their reply so far."""
    donor = _me(session, principal, "bloodbank.callout.mine")
    if donor is None:
        return []
    rows = session.execute(
        select(DonorCallout, CalloutContact, Organisation, DonationAppointment.starts_at)
        .join(CalloutContact, CalloutContact.callout_id == DonorCallout.id)
        .join(Organisation, Organisation.id == DonorCallout.organisation_id)
        .outerjoin(DonationAppointment, DonationAppointment.id == CalloutContact.appointment_id)
        .where(CalloutContact.donor_id == donor.id, DonorCallout.status == "active")
        .order_by(CalloutContact.notified_at.desc(), DonorCallout.id)
    ).all()
    return [MyCall(callout, contact, organisation, at) for callout, contact, organisation, at in rows]


def reply(
    session: Session,
    principal: Principal,
    callout_id: uuid.UUID,
    *,
    accept: bool,
    starts_at: datetime | None,
    now: datetime,
) -> CalloutContact:
    """Donors: answer a call. Accepting books a donation appointment at the blood bank at ``starts_at``
    (a free slot; refused with the reason when the donor is not eligible that day or the slot is full);
    declining is final unless they accept later. The call-out closes once enough donors accepted."""
    donor = _me(session, principal, "bloodbank.callout.reply")
    contact = None
    if donor is not None:
        contact = session.scalar(
            select(CalloutContact).where(
                CalloutContact.callout_id == callout_id, CalloutContact.donor_id == donor.id
            )
        )
    callout = session.get(DonorCallout, callout_id) if contact is not None else None
    if donor is None or contact is None or callout is None:
        audit.record_and_commit(
            session,
            principal,
            "bloodbank.callout.reply",
            outcome="denied",
            resource_type="donor_callout",
            resource_id=callout_id,
        )
        raise NotFound("No such call for donors.")
    if callout.status != "active":
        raise Conflict("This call has closed: enough donors answered. Thank you!")
    if contact.response == "accepted":
        raise Conflict("You already accepted this call; see your appointment on your donor page.")
    if accept:
        if starts_at is None:
            raise ValidationFailed("Choose a time to come.", extra={"field": "starts_at"})
        if starts_at.tzinfo is None:
            raise ValidationFailed("Give the time with its time zone.", extra={"field": "starts_at"})
        if starts_at <= now:
            raise ValidationFailed("Choose a time in the future.", extra={"field": "starts_at"})
        appointment = donors.book_appointment(
            session,
            principal,
            donor.id,
            callout.organisation_id,
            starts_at,
            callout.donation_type,
            callout_id=callout.id,
            now=now,
        )
        contact.appointment_id = appointment.id
    elif contact.response == "declined":
        raise Conflict("You already declined this call.")
    contact.response, contact.responded_at = ("accepted" if accept else "declined"), now
    session.flush()
    audit.record(
        session,
        principal,
        "bloodbank.callout.reply",
        resource_type="donor_callout",
        resource_id=callout.id,
        detail={"response": contact.response},
    )
    if accept:
        _accepted(session, callout, now)
    return contact


def _accepted(session: Session, callout: DonorCallout, now: datetime) -> None:
    """Tell the blood bank's staff a donor is coming; close the call-out once enough are."""
    accepted = accepted_count(session, callout.id)
    title = f"A donor accepted your call ({accepted} of {callout.donors_needed})"
    for user_id, _email in blood_bank_staff(session, callout.organisation_id):
        notify(
            session,
            user_id,
            "bloodbank.callout.accepted",
            title,
            callout.reason,
            f"/bloodbank/callouts/{callout.id}",
        )
    if accepted >= callout.donors_needed:
        _close(session, system_principal(SENDER), callout, now, "enough donors accepted")
