"""Row factories shared by every blood bank test (plain functions: import them).

They insert committed rows directly (no rules checked, no audit entry, no notification) so a test can set
up any state: units of any group, component, status and expiry; donors with any history; open requests.
To exercise the rules themselves, call the services instead.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from caresync.bloodbank.models import BloodRequest, BloodUnit, Donation, Donor, UnitEvent
from caresync.db import session_factory, transaction, utcnow
from caresync.identity.models import Organisation, Patient

_SERIAL = itertools.count(1)


def din() -> str:
    """A fresh ISBT 128 style donation identification number (facility W9999, year, serial)."""
    return f"W9999{utcnow().year % 100:02d}{uuid.uuid4().int % 10**6:06d}"


def make_unit(
    organisation: Organisation | uuid.UUID,
    blood_group: str = "O+",
    component: str = "red_cells",
    *,
    status: str = "available",
    expires_in: timedelta = timedelta(days=20),
    **overrides: Any,
) -> BloodUnit:
    """Insert (and commit) one unit held by ``organisation``, with a ``created`` history event."""
    org_id = organisation if isinstance(organisation, uuid.UUID) else organisation.id
    now = utcnow()
    values: dict[str, Any] = {
        "din": din(),
        "product_code": f"E{next(_SERIAL) % 10000:04d}",
        "details": {},
        "volume_ml": 280 if component in ("red_cells", "whole_blood") else 250,
        "collected_at": now - timedelta(days=2),
        "storage_location": "Fridge 1",
        **overrides,
    }
    values.setdefault("expires_at", now + expires_in)
    with transaction(session_factory()) as s:
        unit = BloodUnit(
            organisation_id=org_id, blood_group=blood_group, component=component, status=status, **values
        )
        s.add(unit)
        s.flush()
        s.add(UnitEvent(unit_id=unit.id, from_status=None, to_status=status, organisation_id=org_id))
    return unit


def make_donor(
    *,
    birth_date: date = date(1990, 5, 17),
    sex: str = "F",
    blood_group: str | None = "O-",
    donations: tuple[tuple[date, str], ...] = (),
    organisation: Organisation | None = None,
    **overrides: Any,
) -> Donor:
    """Insert (and commit) a donor (no account unless ``user_id`` is given) with completed past
    ``donations`` as ``(date, donation_type)`` (given at ``organisation``, which they then need)."""
    assert organisation is not None or not donations, "past donations need the organisation they were at"
    values: dict[str, Any] = {
        "donor_number": f"D{uuid.uuid4().int % 10**9:09d}",
        "given_name": "Dora",
        "family_name": f"Donor{uuid.uuid4().hex[:6]}",
        "weight_kg": 68.0,
        "city": "Lisbon",
        "latitude": 38.72,
        "longitude": -9.14,
        **overrides,
    }
    with transaction(session_factory()) as s:
        donor = Donor(
            birth_date=birth_date,
            sex=sex,
            blood_group=blood_group,
            organisation_id=organisation.id if organisation else None,
            **values,
        )
        s.add(donor)
        s.flush()
        for day, kind in donations:
            assert organisation is not None
            s.add(
                Donation(
                    donor_id=donor.id,
                    organisation_id=organisation.id,
                    donation_type=kind,
                    outcome="completed",
                    din=din(),
                    collected_at=datetime.combine(day, time(10), tzinfo=UTC),
                    volume_ml=470,
                )
            )
    return donor


def make_request(
    organisation: Organisation | uuid.UUID,
    patient: Patient | uuid.UUID,
    requested_by: uuid.UUID,
    *,
    component: str = "red_cells",
    patient_group: str | None = "A+",
    units_requested: int = 2,
    urgency: str = "routine",
    needed_in: timedelta = timedelta(hours=6),
    **overrides: Any,
) -> BloodRequest:
    """Insert (and commit) an open blood request."""
    org_id = organisation if isinstance(organisation, uuid.UUID) else organisation.id
    patient_id = patient if isinstance(patient, uuid.UUID) else patient.id
    with transaction(session_factory()) as s:
        request = BloodRequest(
            organisation_id=org_id,
            patient_id=patient_id,
            requested_by=requested_by,
            component=component,
            patient_group=patient_group,
            units_requested=units_requested,
            urgency=urgency,
            needed_by=utcnow() + needed_in,
            **overrides,
        )
        s.add(request)
        s.flush()
        s.refresh(request)
    return request
