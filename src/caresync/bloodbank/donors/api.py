"""Donors API, under ``/api/v1/bloodbank``.

Staff (blood bank): register, search and read donors of their organisation, change them, defer and lift
deferrals, book donation appointments for them, mark no-shows and record donations (``/donors``,
``/donations``). Donors: complete and change their own profile (``/me/donor``), see the places and free
times to give blood and book, list and cancel their appointments (``/donation-sites``, ``/donation-slots``,
``/donation-appointments``).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, status

from caresync.bloodbank.donors import service
from caresync.bloodbank.donors.schemas import (
    AppointmentIn,
    AppointmentOut,
    BloodGroup,
    DeferralIn,
    DeferralOut,
    DonationIn,
    DonationOut,
    DonationTypeName,
    DonorDetailOut,
    DonorIn,
    DonorOut,
    DonorPage,
    DonorRow,
    DonorUpdate,
    EligibilityOut,
    RecordedDonationOut,
    SelfDonorIn,
    SiteOut,
    SlotsOut,
    UnitOut,
)
from caresync.web.deps import CurrentUser, Db

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank: donors"])


def detail_out(detail: service.DonorDetail) -> DonorDetailOut:
    """The response body of a donor's detail."""
    return DonorDetailOut(
        donor=DonorOut.model_validate(detail.donor),
        available_now=detail.available_now,
        eligibility=[
            EligibilityOut(
                donation_type=kind,
                eligible=e.eligible,
                reasons=list(e.reasons),
                next_eligible_date=e.next_eligible_date,
            )
            for kind, e in detail.eligibility.items()
        ],
        deferrals=[DeferralOut.model_validate(d) for d in detail.deferrals],
        donations=[DonationOut.model_validate(d) for d in detail.donations],
        appointments=[AppointmentOut.model_validate(a) for a in detail.appointments],
    )


# --- staff --------------------------------------------------------------------------------------------------


@router.post("/donors", status_code=status.HTTP_201_CREATED, response_model=DonorOut)
def register_donor(body: DonorIn, principal: CurrentUser, db: Db) -> DonorOut:
    """Staff: register a donor at their blood bank; a unique donor number is generated."""
    out = DonorOut.model_validate(service.register_donor(db, principal, body))
    db.commit()
    return out


@router.get("/donors", response_model=DonorPage)
def list_donors(
    principal: CurrentUser,
    db: Db,
    q: Annotated[str, Query(max_length=100, description="name or donor number")] = "",
    blood_group: BloodGroup | None = None,
    eligible_now: Annotated[bool | None, Query(description="may give whole blood today")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DonorPage:
    """Staff: their blood bank's donors by family name. With ``eligible_now`` a page may hold fewer than
    ``limit`` donors: follow ``next_cursor`` until it is null."""
    page = service.list_donors(
        db,
        principal,
        search=q,
        blood_group=blood_group,
        eligible_now=eligible_now,
        limit=limit,
        cursor=cursor,
    )
    out = DonorPage(
        items=[
            DonorRow.model_validate(
                {
                    **DonorOut.model_validate(r.donor).model_dump(),
                    "eligible_now": r.eligible_now,
                    "available_now": r.available_now,
                }
            )
            for r in page.items
        ],
        next_cursor=page.next_cursor,
    )
    db.commit()
    return out


@router.get("/donors/{donor_id}", response_model=DonorDetailOut)
def get_donor(donor_id: uuid.UUID, principal: CurrentUser, db: Db) -> DonorDetailOut:
    """Staff: a donor with eligibility per donation type (reasons, next date), deferrals and history."""
    out = detail_out(service.donor_detail(db, principal, donor_id))
    db.commit()
    return out


@router.patch("/donors/{donor_id}", response_model=DonorOut)
def update_donor(donor_id: uuid.UUID, body: DonorUpdate, principal: CurrentUser, db: Db) -> DonorOut:
    """Staff: change a donor (only the fields sent), e.g. the typed group or their availability."""
    out = DonorOut.model_validate(service.update_donor(db, principal, donor_id, body))
    db.commit()
    return out


@router.post("/donors/{donor_id}/deferrals", status_code=status.HTTP_201_CREATED, response_model=DeferralOut)
def add_deferral(donor_id: uuid.UUID, body: DeferralIn, principal: CurrentUser, db: Db) -> DeferralOut:
    """Staff: defer a donor from today, temporarily (until ``ends_on``) or permanently, with the reason."""
    out = DeferralOut.model_validate(service.add_deferral(db, principal, donor_id, body))
    db.commit()
    return out


@router.post("/donors/{donor_id}/deferrals/{deferral_id}/lift", response_model=DeferralOut)
def lift_deferral(donor_id: uuid.UUID, deferral_id: uuid.UUID, principal: CurrentUser, db: Db) -> DeferralOut:
    """Staff: lift a deferral (it stays in the history)."""
    out = DeferralOut.model_validate(service.lift_deferral(db, principal, donor_id, deferral_id))
    db.commit()
    return out


@router.post("/donations", status_code=status.HTTP_201_CREATED, response_model=RecordedDonationOut)
def record_donation(body: DonationIn, principal: CurrentUser, db: Db) -> RecordedDonationOut:
    """Staff: record a donation visit. A screening that fails the rules gives outcome ``deferred`` and a
    temporary deferral (no units); otherwise ``completed``, a new DIN and quarantined units."""
    done = service.record_donation(db, principal, body)
    out = RecordedDonationOut(
        donation=DonationOut.model_validate(done.donation),
        units=[UnitOut.model_validate(u) for u in done.units],
        deferral=DeferralOut.model_validate(done.deferral) if done.deferral else None,
        reasons=done.reasons,
    )
    db.commit()
    return out


@router.post("/donation-appointments/{appointment_id}/no-show", response_model=AppointmentOut)
def no_show(appointment_id: uuid.UUID, principal: CurrentUser, db: Db) -> AppointmentOut:
    """Staff: the donor did not come."""
    out = AppointmentOut.model_validate(service.mark_no_show(db, principal, appointment_id))
    db.commit()
    return out


# --- donors and staff ---------------------------------------------------------------------------------------


@router.post("/me/donor", status_code=status.HTTP_201_CREATED, response_model=DonorOut)
def register_self(body: SelfDonorIn, principal: CurrentUser, db: Db) -> DonorOut:
    """Donors: complete your donor profile (once)."""
    out = DonorOut.model_validate(service.register_self(db, principal, body))
    db.commit()
    return out


@router.get("/me/donor", response_model=DonorDetailOut)
def my_donor(principal: CurrentUser, db: Db) -> DonorDetailOut:
    """Donors: your profile, eligibility per donation type with the next eligible date, and history (404
    with reason ``no_profile`` until you complete it)."""
    out = detail_out(service.donor_detail(db, principal, None))
    db.commit()
    return out


@router.patch("/me/donor", response_model=DonorOut)
def update_me(body: DonorUpdate, principal: CurrentUser, db: Db) -> DonorOut:
    """Donors: change your contact, weight or availability."""
    out = DonorOut.model_validate(service.update_donor(db, principal, None, body))
    db.commit()
    return out


@router.get("/donation-sites", response_model=list[SiteOut])
def donation_sites(principal: CurrentUser, db: Db) -> list[SiteOut]:
    """The blood banks and hospitals where donors can give blood."""
    out = [SiteOut.model_validate(s) for s in service.donation_sites(db, principal)]
    db.commit()
    return out


@router.get("/donation-slots", response_model=SlotsOut)
def donation_slots(
    organisation_id: uuid.UUID,
    principal: CurrentUser,
    db: Db,
    date: date,
    donation_type: DonationTypeName = "whole_blood",
) -> SlotsOut:
    """The free donation times at a blood bank on a day (its local day), each with a free chair."""
    slots = service.free_slots(db, principal, organisation_id, date, donation_type)
    out = SlotsOut(
        organisation_id=organisation_id,
        date=date,
        donation_type=donation_type,
        chairs=service.chairs(db, organisation_id),
        slots=slots,
    )
    db.commit()
    return out


@router.post("/donation-appointments", status_code=status.HTTP_201_CREATED, response_model=AppointmentOut)
def book(body: AppointmentIn, principal: CurrentUser, db: Db) -> AppointmentOut:
    """Book a donation (donors for themselves, staff for a donor at their blood bank): 422 with the
    reasons and ``next_eligible_date`` when the donor may not give that day, 409 when the time is full or
    the donor already has a booked appointment."""
    appointment = service.book_appointment(
        db, principal, body.donor_id, body.organisation_id, body.starts_at, body.donation_type
    )
    out = AppointmentOut.model_validate(appointment)
    db.commit()
    return out


@router.get("/donation-appointments", response_model=list[AppointmentOut])
def appointments(principal: CurrentUser, db: Db, on: date | None = None) -> list[AppointmentOut]:
    """Staff: their blood bank's appointments on a day (``on``, today by default). Donors: their own."""
    out = [AppointmentOut.model_validate(a) for a in service.list_appointments(db, principal, on)]
    db.commit()
    return out


@router.post("/donation-appointments/{appointment_id}/cancel", response_model=AppointmentOut)
def cancel(appointment_id: uuid.UUID, principal: CurrentUser, db: Db) -> AppointmentOut:
    """Cancel a booked appointment (donors until it starts; staff of the blood bank at any time)."""
    out = AppointmentOut.model_validate(service.cancel_appointment(db, principal, appointment_id))
    db.commit()
    return out
