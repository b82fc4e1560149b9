"""The network's availability: every hospital and blood bank, how far it is from the caller's organisation
and how many available units it holds by group and component. Stock figures only: no patient data.

Also the pieces the offers and transfers share: the acting staff member's organisation, the donor groups a
request may receive, the names of organisations and who to notify there."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from caresync.bloodbank import rules
from caresync.bloodbank.access import blood_bank_staff, staff_organisation
from caresync.bloodbank.inventory.service import available_counts
from caresync.bloodbank.models import BloodRequest, BloodTransfer, RequestOffer
from caresync.core import notify
from caresync.core.auth import Principal
from caresync.core.errors import ValidationFailed
from caresync.core.pagination import Page, paginate
from caresync.core.rbac import Perm
from caresync.identity.models import Organisation
from caresync.identity.rules import OrganisationKind
from caresync.scheduling.rules import distance_km_if_known

# The organisations that hold blood and take part in the network.
NETWORK_KINDS = (OrganisationKind.HOSPITAL.value, OrganisationKind.BLOOD_BANK.value)


@dataclass
class Site:
    """One organisation of the network and its available stock (``stock[(group, component)]`` = units)."""

    organisation_id: uuid.UUID
    name: str
    kind: str
    city: str
    latitude: float | None
    longitude: float | None
    distance_km: float | None  # from the caller's organisation; None when either has no coordinates
    is_own: bool
    stock: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """All the available units shown for this organisation."""
        return sum(self.stock.values())


def distance_between(origin: Organisation | None, other: Organisation) -> float | None:
    """Great-circle distance in km (rounded to 0.1), or None when a position is unknown."""
    if origin is None:
        return None
    km = distance_km_if_known(origin.latitude, origin.longitude, other.latitude, other.longitude)
    return None if km is None else round(km, 1)


def newest_first(
    session: Session,
    query: Select[Any],
    model: type[RequestOffer] | type[BloodTransfer],
    *,
    status: str | None,
    statuses: tuple[str, ...],
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """One page of ``query``'s offers or transfers, newest first, optionally only those in ``status``
    (422 for a status not in ``statuses``)."""
    if status is not None:
        if status not in statuses:
            noun = "offer" if model is RequestOffer else "transfer"
            raise ValidationFailed(f"Unknown {noun} status {status!r}.", extra={"field": "status"})
        query = query.where(model.status == status)
    return paginate(
        session,
        query,
        sort_column=model.created_at,
        id_column=model.id,
        descending=True,
        limit=limit,
        cursor=cursor,
    )


def network_organisations(session: Session) -> list[Organisation]:
    """Every hospital and blood bank, by name."""
    query = select(Organisation).where(Organisation.kind.in_(NETWORK_KINDS)).order_by(Organisation.name)
    return list(session.scalars(query))


def organisation_names(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Names of the given organisations (one query)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Organisation.id, Organisation.name).where(Organisation.id.in_(wanted)))
    return {row.id: row.name for row in rows}


def donor_groups_for(request: BloodRequest) -> tuple[str, ...]:
    """The donor groups that may supply ``request``, best first. When the patient's group is not yet known
    only the groups every recipient may receive qualify (group O red cells, group AB plasma)."""
    if request.patient_group is not None:
        return rules.compatible_donor_groups(request.component, request.patient_group)
    every = [set(rules.compatible_donor_groups(request.component, g)) for g in rules.BLOOD_GROUPS]
    universal = reduce(set.intersection, every)
    return tuple(g for g in rules.compatible_donor_groups(request.component, "O-") if g in universal)


def notify_blood_bank(
    session: Session, organisation_id: uuid.UUID, kind: str, title: str, body: str = "", link: str = ""
) -> int:
    """Tell every active blood bank staff member of an organisation (in-app, live); returns how many."""
    staff = blood_bank_staff(session, organisation_id)
    for user_id, _email in staff:
        notify.notify(session, user_id, kind, title, body, link)
    return len(staff)


def network_stock(
    session: Session,
    principal: Principal,
    *,
    blood_group: str | None = None,
    component: str | None = None,
    now: datetime | None = None,
) -> list[Site]:
    """Every hospital and blood bank with its available, unexpired units by group x component (optionally
    one group and/or component), nearest to the caller's organisation first (those without coordinates
    last, by name); ``now`` decides what has expired. Three queries whatever the size of the network."""
    own = staff_organisation(session, principal, "bloodbank.network.read", Perm.BLOOD_NETWORK)
    if blood_group is not None and blood_group not in rules.BLOOD_GROUPS:
        raise ValidationFailed(f"Unknown blood group {blood_group!r}.", extra={"field": "blood_group"})
    if component is not None and component not in rules.COMPONENTS:
        raise ValidationFailed(f"Unknown component {component!r}.", extra={"field": "component"})
    organisations = network_organisations(session)
    origin = session.get(Organisation, own)
    sites = {
        org.id: Site(
            organisation_id=org.id,
            name=org.name,
            kind=org.kind,
            city=org.city,
            latitude=org.latitude,
            longitude=org.longitude,
            distance_km=0.0 if org.id == own else distance_between(origin, org),
            is_own=org.id == own,
        )
        for org in organisations
    }
    for (org_id, group, kind), count in available_counts(session, now=now).items():
        site = sites.get(org_id)
        if site is None or count <= 0:
            continue
        if blood_group not in (None, group) or component not in (None, kind):
            continue
        site.stock[(group, kind)] = count
    return sorted(sites.values(), key=nearest_first)


def nearest_first(site: Site) -> tuple[bool, float, str]:
    """Sort key: by distance, unknown distances last, then by name."""
    return (site.distance_km is None, site.distance_km or 0.0, site.name)
