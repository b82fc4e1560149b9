"""Blood bank vocabularies and rules (no I/O): blood groups, components, unit statuses and the transitions
between them, donation types, request urgencies and statuses.

The clinical rules (ABO/Rh compatibility, shelf life, donor eligibility, rule profiles per country) live
here too, each table with the published source it follows cited beside it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from caresync.identity.rules import BLOOD_GROUPS

__all__ = ["BLOOD_GROUPS"]


class Component(StrEnum):
    """Blood components CareSync stocks (the names the public functions take)."""

    WHOLE_BLOOD = "whole_blood"
    RED_CELLS = "red_cells"
    PLATELETS = "platelets"
    PLASMA = "plasma"
    CRYO = "cryo"


COMPONENTS = tuple(c.value for c in Component)


class UnitStatus(StrEnum):
    """Where a unit is in its life, from collection to transfusion or disposal."""

    QUARANTINED = "quarantined"  # collected, testing not yet released
    AVAILABLE = "available"
    RESERVED = "reserved"  # held for a request (or a transfer to another hospital)
    CROSSMATCHED = "crossmatched"  # tested against the patient's sample
    ISSUED = "issued"  # left the blood bank for the ward
    TRANSFUSED = "transfused"
    EXPIRED = "expired"
    DISCARDED = "discarded"


UNIT_STATUSES = tuple(s.value for s in UnitStatus)
# The state machine: from -> the statuses it may move to. Issued units come back to ``available`` only
# when returned within the allowed time (checked by the service), otherwise they are discarded.
UNIT_TRANSITIONS: dict[UnitStatus, frozenset[UnitStatus]] = {
    UnitStatus.QUARANTINED: frozenset({UnitStatus.AVAILABLE, UnitStatus.DISCARDED, UnitStatus.EXPIRED}),
    UnitStatus.AVAILABLE: frozenset(
        {UnitStatus.RESERVED, UnitStatus.ISSUED, UnitStatus.EXPIRED, UnitStatus.DISCARDED}
    ),
    UnitStatus.RESERVED: frozenset(
        {
            UnitStatus.AVAILABLE,
            UnitStatus.CROSSMATCHED,
            UnitStatus.ISSUED,
            UnitStatus.EXPIRED,
            UnitStatus.DISCARDED,
        }
    ),
    UnitStatus.CROSSMATCHED: frozenset(
        {UnitStatus.AVAILABLE, UnitStatus.ISSUED, UnitStatus.EXPIRED, UnitStatus.DISCARDED}
    ),
    UnitStatus.ISSUED: frozenset({UnitStatus.TRANSFUSED, UnitStatus.AVAILABLE, UnitStatus.DISCARDED}),
    UnitStatus.TRANSFUSED: frozenset(),
    UnitStatus.EXPIRED: frozenset({UnitStatus.DISCARDED}),
    UnitStatus.DISCARDED: frozenset(),
}
# Units that are on the shelf (count as stock, can still expire).
IN_STOCK = frozenset({UnitStatus.AVAILABLE, UnitStatus.RESERVED, UnitStatus.CROSSMATCHED})


def can_transition(current: str, target: str) -> bool:
    """Whether a unit may move from status ``current`` to ``target``."""
    return UnitStatus(target) in UNIT_TRANSITIONS[UnitStatus(current)]


class DonationType(StrEnum):
    """Kinds of donation (each has its own minimum interval and yearly maximum)."""

    WHOLE_BLOOD = "whole_blood"
    DOUBLE_RED_CELLS = "double_red_cells"
    PLATELETS = "platelets"
    PLASMA = "plasma"


DONATION_TYPES = tuple(d.value for d in DonationType)
DONATION_OUTCOMES = ("completed", "deferred", "incomplete")
DONOR_SEXES = ("F", "M")
DEFERRAL_KINDS = ("temporary", "permanent")
APPOINTMENT_STATUSES = ("booked", "completed", "cancelled", "no_show")


class Urgency(StrEnum):
    """How fast a blood request must be met."""

    ROUTINE = "routine"
    URGENT = "urgent"
    EMERGENCY = "emergency"


URGENCIES = tuple(u.value for u in Urgency)
REQUEST_STATUSES = ("open", "allocated", "issued", "completed", "cancelled")
OFFER_STATUSES = ("pending", "accepted", "declined", "expired")
TRANSFER_STATUSES = ("requested", "dispatched", "received", "cancelled")
ALERT_KINDS = ("low_stock", "expiring", "unmet_request")
CALLOUT_STATUSES = ("active", "closed")
CALLOUT_RESPONSES = ("pending", "accepted", "declined")
RULE_PROFILES = ("US", "UK", "WHO")


# --------------------------------------------------------------------------------------------------------
# ABO/Rh compatibility
# --------------------------------------------------------------------------------------------------------
# Red cells and whole blood carry the donor's ABO/D antigens; plasma carries the donor's anti-A/anti-B.
# Sources: AABB Technical Manual (21st ed., ch. 17 "Hemotherapy decisions", ABO compatibility table);
# AABB Standards for Blood Banks and Transfusion Services 5.15 (ABO-group-specific or -compatible
# components; whole blood ABO-identical); British Society for Haematology (BSH) "Guideline on the
# administration of blood components" and NHSBT "Blood group compatibility" tables (group O plasma,
# cryoprecipitate and platelets only for group O recipients; RhD-negative platelets for RhD-negative
# recipients, to avoid anti-D from the red cells the platelets carry).
#
# The rule per component (recipient R, donor D):
#   red_cells   D's ABO antigens ⊆ R's ABO antigens, and R RhD-negative -> D RhD-negative
#   whole_blood D's ABO group = R's ABO group (it carries both cells and plasma), same RhD rule
#   plasma      R's ABO antigens ⊆ D's ABO antigens (no antibody against R's cells); RhD not considered
#   cryo        as plasma (BSH: group O cryoprecipitate only for group O recipients); RhD not considered
#   platelets   as plasma for ABO (avoid passive anti-A/B haemolysis) and the red-cell RhD rule.
#               Giving out-of-group platelets in a shortage is a clinician's decision, not this rule's.
_ABO_ANTIGENS: dict[str, frozenset[str]] = {
    "O": frozenset(),
    "A": frozenset({"A"}),
    "B": frozenset({"B"}),
    "AB": frozenset({"A", "B"}),
}


def _split_group(group: str) -> tuple[str, bool]:
    """("A", True) for "A+": the ABO group and whether the RhD antigen is present."""
    if group not in BLOOD_GROUPS:
        raise ValueError(f"Unknown blood group {group!r}: expected one of {', '.join(BLOOD_GROUPS)}.")
    return group[:-1], group[-1] == "+"


def is_compatible(component: str, donor_group: str, recipient_group: str) -> bool:
    """Whether a unit of ``component`` from a ``donor_group`` donor may be given to a ``recipient_group``
    patient (groups "O-" ... "AB+", components as in :class:`Component`). Raises ValueError for an unknown
    group or component."""
    kind = Component(component)
    donor_abo, donor_d = _split_group(donor_group)
    recipient_abo, recipient_d = _split_group(recipient_group)
    donor_antigens, recipient_antigens = _ABO_ANTIGENS[donor_abo], _ABO_ANTIGENS[recipient_abo]
    rhd_ok = recipient_d or not donor_d
    if kind is Component.RED_CELLS:
        return donor_antigens <= recipient_antigens and rhd_ok
    if kind is Component.WHOLE_BLOOD:
        return donor_abo == recipient_abo and rhd_ok
    plasma_ok = recipient_antigens <= donor_antigens
    if kind is Component.PLATELETS:
        return plasma_ok and rhd_ok
    return plasma_ok  # plasma, cryo


def compatible_donor_groups(component: str, recipient_group: str) -> tuple[str, ...]:
    """The donor groups a ``recipient_group`` patient may receive ``component`` from, best first.

    Order: the exact group; then (for cellular components) RhD-positive units before RhD-negative ones for
    an RhD-positive patient, to keep RhD-negative stock for the patients who need it; then the same ABO
    group before another; group O (universal red cells) after A and B, and O- last of all unless the
    patient is O-; for plasma, cryo and platelets group AB (universal plasma, always short) comes last."""
    kind = Component(component)
    recipient_abo, recipient_d = _split_group(recipient_group)
    red_like = kind in (Component.RED_CELLS, Component.WHOLE_BLOOD)
    plasma_like = kind in (Component.PLASMA, Component.CRYO, Component.PLATELETS)
    carries_cells = kind is not Component.PLASMA and kind is not Component.CRYO

    def rank(donor: str) -> tuple[bool, ...]:
        donor_abo, donor_d = _split_group(donor)
        return (
            donor != recipient_group,
            carries_cells and recipient_d and not donor_d,
            donor_abo != recipient_abo,
            red_like and donor_abo == "O",
            plasma_like and donor_abo == "AB",
            donor == "O-",
        )

    compatible = [g for g in BLOOD_GROUPS if is_compatible(kind, g, recipient_group)]
    return tuple(sorted(compatible, key=lambda g: (rank(g), BLOOD_GROUPS.index(g))))


# --------------------------------------------------------------------------------------------------------
# Shelf life and storage
# --------------------------------------------------------------------------------------------------------
# Source: 21 CFR 610.53(b), "Whole Blood and Blood Components Storage Temperatures and Dating Periods";
# AABB Standards 5.1.8 (reference standard 5.1.8A, thawed and pooled components); FDA guidance "Bacterial
# Risk Control Strategies for Blood Collection Establishments and Transfusion Services to Enhance the
# Safety and Availability of Platelets for Transfusion" (2020: 7-day platelets with large-volume delayed
# sampling / secondary testing or pathogen reduction).
_ANTICOAGULANT_DAYS = {"ACD": 21, "CPD": 21, "CP2D": 21, "CPDA-1": 35}
_ADDITIVE_SOLUTIONS = frozenset({"AS-1", "AS-3", "AS-5", "AS-7"})  # 42 days
_IRRADIATED_DAYS = 28  # from irradiation, or the original dating, whichever is shorter
_OPEN_SYSTEM = timedelta(hours=24)  # red cells washed / deglycerolised: 24 h after entering the bag
_DEGLYCEROLISED_CLOSED = timedelta(days=14)
_FROZEN_RED_CELLS = timedelta(days=3652)  # 10 years at -65 °C or colder
_PLATELETS = timedelta(days=5)
_PLATELETS_TESTED = timedelta(days=7)  # bacterial testing (LVDS / secondary culture) or pathogen reduced
_PLATELETS_OPEN_POOL = timedelta(hours=4)
_FROZEN_PLASMA = timedelta(days=365)  # FFP / PF24 / cryo at -18 °C or colder: 1 year
_THAWED_FFP = timedelta(hours=24)  # 1-6 °C
_THAWED_PLASMA = timedelta(days=5)  # "Thawed Plasma", relabelled from FFP/PF24 (AABB 5.1.8A)
_THAWED_CRYO = timedelta(hours=6)  # single or pooled in a closed system, 20-24 °C
_THAWED_CRYO_OPEN_POOL = timedelta(hours=4)

# Storage temperatures (°C), 21 CFR 610.53(b) column B and 21 CFR 640.4/640.24/640.34/640.54. Frozen
# components have only an upper limit ("-18 °C or colder"); -80 °C stands for an ordinary freezer floor.
_STORAGE: dict[Component, tuple[float, float]] = {
    Component.WHOLE_BLOOD: (1.0, 6.0),
    Component.RED_CELLS: (1.0, 6.0),
    Component.PLATELETS: (20.0, 24.0),
    Component.PLASMA: (-80.0, -18.0),
    Component.CRYO: (-80.0, -18.0),
}


def _red_cell_life(details: dict[str, Any], *, whole_blood: bool) -> timedelta:
    if details.get("frozen"):
        return _FROZEN_RED_CELLS
    if details.get("open_system"):
        return _OPEN_SYSTEM
    if details.get("deglycerolised"):
        return _DEGLYCEROLISED_CLOSED
    additive = details.get("additive")
    anticoagulant = details.get("anticoagulant")
    if additive is not None and not whole_blood:
        if additive not in _ADDITIVE_SOLUTIONS:
            raise ValueError(f"Unknown additive solution {additive!r}.")
        days = 42
    elif anticoagulant is not None:
        if anticoagulant not in _ANTICOAGULANT_DAYS:
            raise ValueError(f"Unknown anticoagulant {anticoagulant!r}.")
        days = _ANTICOAGULANT_DAYS[anticoagulant]
    else:
        days = 35 if whole_blood else 42  # defaults: whole blood in CPDA-1, red cells in an additive
    life = timedelta(days=days)
    if details.get("irradiated"):
        irradiated_day = int(details.get("irradiated_on_day", 0))  # days after collection
        life = min(life, timedelta(days=irradiated_day + _IRRADIATED_DAYS))
    return life


def shelf_life(component: str, **details: Any) -> timedelta:
    """How long a unit of ``component`` keeps from collection (or, for thawed / opened / pooled products,
    from that step), per 21 CFR 610.53 and AABB Standards.

    Details: red cells / whole blood ``additive`` ("AS-1", "AS-3", "AS-5", "AS-7": 42 d), ``anticoagulant``
    ("CPD", "CP2D", "ACD": 21 d; "CPDA-1": 35 d), ``irradiated`` (28 d from irradiation, day given by
    ``irradiated_on_day`` after collection, 0 by default, or the original dating if shorter),
    ``open_system`` (24 h), ``deglycerolised`` (closed system, 14 d), ``frozen`` (10 years); platelets
    ``bacterial_testing`` or ``pathogen_reduced`` (7 d instead of 5), ``pooled_open`` (4 h); plasma
    ``thawed`` (24 h) or ``thawed_plasma`` (5 d); cryo ``thawed`` (6 h; 4 h with ``pooled_open``).
    With no details: red cells in an additive solution (42 d), whole blood in CPDA-1 (35 d), platelets
    without extended-dating testing (5 d), plasma and cryo frozen (1 year)."""
    kind = Component(component)
    if kind in (Component.RED_CELLS, Component.WHOLE_BLOOD):
        return _red_cell_life(details, whole_blood=kind is Component.WHOLE_BLOOD)
    if kind is Component.PLATELETS:
        if details.get("pooled_open"):
            return _PLATELETS_OPEN_POOL
        extended = details.get("bacterial_testing") or details.get("pathogen_reduced")
        return _PLATELETS_TESTED if extended else _PLATELETS
    if kind is Component.PLASMA:
        if details.get("thawed_plasma"):
            return _THAWED_PLASMA
        return _THAWED_FFP if details.get("thawed") else _FROZEN_PLASMA
    if details.get("thawed"):
        return _THAWED_CRYO_OPEN_POOL if details.get("pooled_open") else _THAWED_CRYO
    return _FROZEN_PLASMA


def storage_range(component: str) -> tuple[float, float]:
    """The (lowest, highest) storage temperature in °C for ``component`` (21 CFR 610.53(b))."""
    return _STORAGE[Component(component)]


# --------------------------------------------------------------------------------------------------------
# What a donation makes
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitSpec:
    """One unit a completed donation makes: its component, ISBT 128 style product code, the details that
    decide its shelf life, and its usual volume."""

    component: str
    product_code: str
    details: dict[str, Any]
    volume_ml: int


# Product codes follow the ISBT 128 Product Description Code layout (ICCBBA ST-001: "E" + 4 digits for the
# product, 1 character for the type of donation ("V" volunteer allogeneic), 2 for the division: "00" an
# undivided product, "A0"/"B0" the first/second of a double collection). The E-numbers are ILLUSTRATIVE,
# not looked up in the ICCBBA product database. Volumes are typical (AABB Technical Manual, ch. 6).
_YIELDS: dict[DonationType, tuple[UnitSpec, ...]] = {
    DonationType.WHOLE_BLOOD: (
        UnitSpec(Component.RED_CELLS.value, "E0336V00", {"additive": "AS-1"}, 350),
        UnitSpec(Component.PLASMA.value, "E2555V00", {"product": "FFP"}, 250),
    ),
    DonationType.DOUBLE_RED_CELLS: (
        UnitSpec(Component.RED_CELLS.value, "E0409VA0", {"additive": "AS-3", "collection": "apheresis"}, 300),
        UnitSpec(Component.RED_CELLS.value, "E0409VB0", {"additive": "AS-3", "collection": "apheresis"}, 300),
    ),
    DonationType.PLATELETS: (
        UnitSpec(Component.PLATELETS.value, "E3083V00", {"collection": "apheresis"}, 250),
        UnitSpec(Component.PLASMA.value, "E2693V00", {"product": "FFP", "collection": "apheresis"}, 250),
    ),
    DonationType.PLASMA: (
        UnitSpec(Component.PLASMA.value, "E2693V00", {"product": "FFP", "collection": "apheresis"}, 500),
    ),
}


def unit_yield(donation_type: str) -> tuple[UnitSpec, ...]:
    """The units a completed donation of ``donation_type`` makes (whole blood: red cells in AS-1 and fresh
    frozen plasma; double red cells: two red-cell units; apheresis platelets: one platelet unit and
    concurrent plasma; apheresis plasma: one plasma unit)."""
    # Fresh detail dicts each call, so a caller storing or changing them cannot alter the table.
    return tuple(replace(spec, details=dict(spec.details)) for spec in _YIELDS[DonationType(donation_type)])


# --------------------------------------------------------------------------------------------------------
# Donor eligibility: rule profiles per country
# --------------------------------------------------------------------------------------------------------
WB, DRC, PLT, PLA = (
    DonationType.WHOLE_BLOOD.value,
    DonationType.DOUBLE_RED_CELLS.value,
    DonationType.PLATELETS.value,
    DonationType.PLASMA.value,
)
_RED_CELL_LOSS = (WB, DRC)
_APHERESIS = (PLT, PLA)


@dataclass(frozen=True)
class DoubleRedMinimum:
    """What a donor of one sex needs for a double red cell (two-unit apheresis) donation."""

    min_age: int
    min_height_cm: float
    min_weight_kg: float
    min_hemoglobin_g_dl: float


@dataclass(frozen=True)
class RuleProfile:
    """One country's (or WHO's) donor selection figures. ``intervals_days`` maps (previous donation type,
    next donation type) to the minimum days between them, ``female_intervals_days`` overrides it for
    women; ``yearly_max`` is the most donations of a type in a rolling 12 months (365 days), None for no
    cap beyond the intervals. Ages are in whole years; ``max_age_first_donation`` applies to donors with no
    donation on record, ``max_age`` to everyone (None: no upper limit)."""

    name: str
    title: str
    source: str
    min_age: int
    min_age_with_consent: int | None
    max_age_first_donation: int | None
    max_age: int | None
    min_weight_kg: float
    min_hemoglobin_g_dl: Mapping[str, float]
    max_temperature_c: float
    systolic_mmhg: tuple[int, int]
    diastolic_mmhg: tuple[int, int]
    pulse_bpm: tuple[int, int]
    intervals_days: Mapping[tuple[str, str], int]
    female_intervals_days: Mapping[tuple[str, str], int]
    yearly_max: Mapping[str, int | None]
    female_yearly_max: Mapping[str, int | None]
    double_red: Mapping[str, DoubleRedMinimum]

    def interval(self, previous: str, following: str, sex: str) -> int:
        """Minimum days from a ``previous`` donation to a ``following`` one for a donor of ``sex``."""
        key = (DonationType(previous).value, DonationType(following).value)
        if sex == "F" and key in self.female_intervals_days:
            return self.female_intervals_days[key]
        return self.intervals_days[key]

    def yearly_maximum(self, donation_type: str, sex: str) -> int | None:
        """The most ``donation_type`` donations allowed in a rolling 12 months, None for no cap."""
        kind = DonationType(donation_type).value
        if sex == "F" and kind in self.female_yearly_max:
            return self.female_yearly_max[kind]
        return self.yearly_max[kind]


def _pairs(red_to_red: int, red_to_apheresis: int, apheresis_to_any: int) -> dict[tuple[str, str], int]:
    """An interval table where every (previous, next) pair of a class has the same figure."""
    table = {(p, n): red_to_red for p in _RED_CELL_LOSS for n in _RED_CELL_LOSS}
    table |= {(p, n): red_to_apheresis for p in _RED_CELL_LOSS for n in _APHERESIS}
    table |= {(p, n): apheresis_to_any for p in _APHERESIS for n in DONATION_TYPES}
    return table


# US: FDA 21 CFR 630.10 (age per state law; weight >= 110 lb / 50 kg; temperature <= 37.5 °C (99.5 °F);
# blood pressure systolic 90-180, diastolic 50-100 mmHg; pulse 50-100 bpm; Hb >= 12.5 g/dL women,
# >= 13.0 g/dL men), 21 CFR 630.15 (whole blood every 8 weeks, two red-cell units by apheresis every
# 16 weeks) and the American Red Cross eligibility requirements (redcrossblood.org "How often can I
# donate" / "Eligibility requirements"): 17 years, or 16 with parental consent where state law allows;
# intervals below per (previous, next) type; at most 6 whole blood, 3 Power Red (double red cells),
# 24 platelet and 13 plasma (AB Elite) donations a year; Power Red men >= 17 y, 5'1" (155 cm), 130 lb
# (59 kg), women >= 19 y, 5'5" (165 cm), 150 lb (68 kg); FDA guidance "Recommendations for Collecting Red
# Blood Cells by Automated Apheresis Methods" (2001): haematocrit >= 40 % (Hb >= 13.3 g/dL) for both sexes.
_US_INTERVALS = {
    (WB, WB): 56, (WB, DRC): 56, (WB, PLT): 7, (WB, PLA): 28,
    (DRC, WB): 112, (DRC, DRC): 112, (DRC, PLT): 7, (DRC, PLA): 28,
    (PLT, WB): 7, (PLT, DRC): 7, (PLT, PLT): 7, (PLT, PLA): 28,
    (PLA, WB): 28, (PLA, DRC): 28, (PLA, PLT): 28, (PLA, PLA): 28,
}  # fmt: skip
_US_DOUBLE_RED = {
    "M": DoubleRedMinimum(min_age=17, min_height_cm=155.0, min_weight_kg=59.0, min_hemoglobin_g_dl=13.3),
    "F": DoubleRedMinimum(min_age=19, min_height_cm=165.0, min_weight_kg=68.0, min_hemoglobin_g_dl=13.3),
}

US = RuleProfile(
    name="US",
    title="United States (FDA 21 CFR 630, American Red Cross)",
    source="21 CFR 630.10 and 630.15; American Red Cross eligibility requirements and donation intervals",
    min_age=17,
    min_age_with_consent=16,
    max_age_first_donation=None,
    max_age=None,
    min_weight_kg=50.0,
    min_hemoglobin_g_dl=MappingProxyType({"F": 12.5, "M": 13.0}),
    max_temperature_c=37.5,
    systolic_mmhg=(90, 180),
    diastolic_mmhg=(50, 100),
    pulse_bpm=(50, 100),
    intervals_days=MappingProxyType(_US_INTERVALS),
    female_intervals_days=MappingProxyType({}),
    yearly_max=MappingProxyType({WB: 6, DRC: 3, PLT: 24, PLA: 13}),
    female_yearly_max=MappingProxyType({}),
    double_red=MappingProxyType(_US_DOUBLE_RED),
)

# UK: JPAC "Guidelines for the Blood Transfusion Services in the UK" / Whole Blood and Component Donor
# Selection Guidelines and the JPAC Handbook of Transfusion Medicine §3.1 (transfusionguidelines.org):
# minimum age 17 (no consent route); first-time donors up to their 66th birthday (65 inclusive), no upper
# limit for regular donors (annual review after 66); weight >= 50 kg (7 st 12 lb); Hb >= 125 g/L women,
# >= 135 g/L men; whole blood every 12 weeks for men, 16 weeks for women (NHSBT), no more than 3 a year
# from women; double red cells: Hb >= 140 g/L, every 26 weeks (so at most 2 a year); platelets or plasma
# by apheresis at least 2 weeks apart, at most 24 procedures in 12 months. JPAC gives no figure from a
# red-cell donation to an apheresis one: CareSync applies the 12-week red-cell recovery interval
# (conservative). Vital-sign limits and double-red height/weight are not fixed by JPAC: the US figures
# apply.
_UK_INTERVALS = _pairs(red_to_red=84, red_to_apheresis=84, apheresis_to_any=14) | {
    (DRC, WB): 182,
    (DRC, DRC): 182,
}
UK = RuleProfile(
    name="UK",
    title="United Kingdom (JPAC / NHSBT)",
    source="JPAC Donor Selection Guidelines; Handbook of Transfusion Medicine §3.1; NHSBT donation intervals",
    min_age=17,
    min_age_with_consent=None,
    max_age_first_donation=65,
    max_age=None,
    min_weight_kg=50.0,
    min_hemoglobin_g_dl=MappingProxyType({"F": 12.5, "M": 13.5}),
    max_temperature_c=37.5,
    systolic_mmhg=(90, 180),
    diastolic_mmhg=(50, 100),
    pulse_bpm=(50, 100),
    intervals_days=MappingProxyType(_UK_INTERVALS),
    female_intervals_days=MappingProxyType({(WB, WB): 112, (WB, DRC): 112}),
    yearly_max=MappingProxyType({WB: None, DRC: 2, PLT: 24, PLA: 24}),
    female_yearly_max=MappingProxyType({WB: 3}),
    double_red=MappingProxyType(
        {sex: replace(need, min_hemoglobin_g_dl=14.0) for sex, need in _US_DOUBLE_RED.items()}
    ),
)

# WHO: "Blood donor selection: guidelines on assessing donor suitability for blood donation" (WHO 2012),
# §4.1 age 18-65 (16-17 with consent where national law allows; donors over 65 at the physician's
# discretion, which CareSync leaves to the physician: no upper limit for returning donors), §4.4 weight
# >= 50 kg for a 450 mL donation, §4.5 pulse 50-100, temperature <= 37.5 °C, §4.6 Hb >= 12.0 g/dL women,
# >= 13.0 g/dL men, whole blood every 12 weeks for men and 16 weeks for women (at most 4 and 3 a year),
# §4.10 apheresis: at least 48 hours between procedures, at most 24 a year, no cytapheresis within
# 12 weeks of a whole blood donation. WHO does not address double red cells: the US 16-week interval,
# 3-a-year cap and minimums apply; the 24-a-year cap is applied to plasmapheresis too (conservative).
_WHO_INTERVALS = _pairs(red_to_red=84, red_to_apheresis=84, apheresis_to_any=2) | {
    (DRC, WB): 112,
    (DRC, DRC): 112,
}
WHO = RuleProfile(
    name="WHO",
    title="World Health Organization (2012 donor selection guidelines)",
    source="WHO 2012, Blood donor selection: guidelines on assessing donor suitability, §4",
    min_age=18,
    min_age_with_consent=16,
    max_age_first_donation=65,
    max_age=None,
    min_weight_kg=50.0,
    min_hemoglobin_g_dl=MappingProxyType({"F": 12.0, "M": 13.0}),
    max_temperature_c=37.5,
    systolic_mmhg=(90, 180),
    diastolic_mmhg=(50, 100),
    pulse_bpm=(50, 100),
    intervals_days=MappingProxyType(_WHO_INTERVALS),
    female_intervals_days=MappingProxyType({(WB, WB): 112, (WB, DRC): 112}),
    yearly_max=MappingProxyType({WB: 4, DRC: 3, PLT: 24, PLA: 24}),
    female_yearly_max=MappingProxyType({WB: 3}),
    double_red=MappingProxyType(_US_DOUBLE_RED),
)

PROFILES: Mapping[str, RuleProfile] = MappingProxyType({p.name: p for p in (US, UK, WHO)})


def profile(name: str) -> RuleProfile:
    """The rule profile called ``name`` ("US", "UK" or "WHO"); ValueError for another name."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"Unknown rule profile {name!r}: expected one of {', '.join(PROFILES)}.") from None


_profile = profile  # donor_eligibility's ``profile`` argument hides the function


# --------------------------------------------------------------------------------------------------------
# Donor eligibility
# --------------------------------------------------------------------------------------------------------
_ROLLING_YEAR = timedelta(days=365)
_TYPE_NAMES = {WB: "whole blood", DRC: "double red cell", PLT: "platelet", PLA: "plasma"}
_SEX_NAMES = {"F": "women", "M": "men"}


@dataclass(frozen=True)
class Eligibility:
    """Whether a donor may give on a day, why not (sentences a donor can read), and the first day the
    date-bound rules (age, intervals, yearly maximums) allow it again.

    ``next_eligible_date`` is None when the donor is eligible, when only a same-day measurement failed
    (haemoglobin, weight, temperature, blood pressure, pulse: they are measured again at the next visit, so
    no date can be promised), or when no date will ever do (above the maximum age)."""

    eligible: bool
    reasons: list[str]
    next_eligible_date: date | None


def _age_on(birth_date: date, on_date: date) -> int:
    """Whole years of age on ``on_date`` (the birthday itself counts)."""
    return (
        on_date.year - birth_date.year - ((on_date.month, on_date.day) < (birth_date.month, birth_date.day))
    )


def _birthday(birth_date: date, years: int) -> date:
    """The day a person born on ``birth_date`` turns ``years`` (29 February counts from 1 March)."""
    try:
        return birth_date.replace(year=birth_date.year + years)
    except ValueError:
        return date(birth_date.year + years, 3, 1)


def _as_date(day: date) -> date:
    """A donation's day (a collection datetime counts as its date)."""
    return day.date() if isinstance(day, datetime) else day


def _number(value: float) -> str:
    return f"{value:g}"


def _days_ago(elapsed: timedelta) -> str:
    return {0: "today", 1: "1 day ago"}.get(elapsed.days, f"{elapsed.days} days ago")


class _Check:
    """Collects reasons and the latest date a date-bound rule allows (None: none can be promised)."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.not_before: date | None = None
        self.never = False

    def fail(self, reason: str, *, until: date | None = None, never: bool = False) -> None:
        self.reasons.append(reason)
        self.never = self.never or never
        if until is not None:
            self.not_before = until if self.not_before is None else max(self.not_before, until)


def _check_age(check: _Check, rules: RuleProfile, donor: Mapping[str, Any], kind: str, on: date) -> None:
    birth_date: date = donor["birth_date"]
    age = _age_on(birth_date, on)
    consent = bool(donor.get("parental_consent"))
    double_red = rules.double_red.get(donor["sex"]) if kind == DRC else None
    kind_minimum = double_red.min_age if double_red else 0
    without_consent = max(rules.min_age, kind_minimum)
    with_consent = without_consent
    if rules.min_age_with_consent is not None:
        with_consent = max(rules.min_age_with_consent, kind_minimum)
    minimum = with_consent if consent else without_consent
    if age < minimum:
        consent_note = ""
        if not consent and with_consent < without_consent:
            consent_note = f" ({with_consent} with a parent's or guardian's consent)"
        check.fail(
            f"Age {age} is below the minimum of {minimum} for a {_TYPE_NAMES[kind]} donation{consent_note}.",
            until=_birthday(birth_date, minimum),
        )
    first_time = not donor.get("donations")
    if first_time and rules.max_age_first_donation is not None and age > rules.max_age_first_donation:
        check.fail(
            f"Age {age} is above the maximum of {rules.max_age_first_donation} for a first donation.",
            never=True,
        )
    if rules.max_age is not None and age > rules.max_age:
        check.fail(f"Age {age} is above the maximum of {rules.max_age}.", never=True)


def _too_low(check: _Check, label: str, value: float | None, minimum: float, unit: str, rule: str) -> None:
    if value is not None and value < minimum:
        check.fail(f"{label} {_number(value)} {unit} is below the {_number(minimum)} {unit} minimum{rule}.")


def _check_measurements(check: _Check, rules: RuleProfile, donor: Mapping[str, Any], kind: str) -> None:
    sex = donor["sex"]
    double_red = rules.double_red.get(sex) if kind == DRC else None
    for_double_red = f" for {_SEX_NAMES[sex]} giving double red cells"
    min_weight, weight_rule = rules.min_weight_kg, ""
    if double_red and double_red.min_weight_kg > min_weight:
        min_weight, weight_rule = double_red.min_weight_kg, for_double_red
    _too_low(check, "Weight", donor.get("weight_kg"), min_weight, "kg", weight_rule)
    min_hb, hb_rule = rules.min_hemoglobin_g_dl[sex], f" for {_SEX_NAMES[sex]}"
    if double_red and double_red.min_hemoglobin_g_dl > min_hb:
        min_hb, hb_rule = double_red.min_hemoglobin_g_dl, for_double_red
    _too_low(check, "Haemoglobin", donor.get("hemoglobin_g_dl"), min_hb, "g/dL", hb_rule)
    if double_red:
        _too_low(check, "Height", donor.get("height_cm"), double_red.min_height_cm, "cm", for_double_red)
    temperature, highest = donor.get("temperature_c"), rules.max_temperature_c
    if temperature is not None and temperature > highest:
        check.fail(f"Temperature {_number(temperature)} °C is above the {_number(highest)} °C maximum.")
    for key, label, unit, (low, high) in (
        ("systolic_mmhg", "Systolic blood pressure", "mmHg", rules.systolic_mmhg),
        ("diastolic_mmhg", "Diastolic blood pressure", "mmHg", rules.diastolic_mmhg),
        ("pulse_bpm", "Pulse", "bpm", rules.pulse_bpm),
    ):
        value = donor.get(key)
        if value is not None and not low <= value <= high:
            check.fail(f"{label} {_number(value)} {unit} is outside the {low} to {high} {unit} range.")


def _check_history(check: _Check, rules: RuleProfile, donor: Mapping[str, Any], kind: str, on: date) -> None:
    sex = donor["sex"]
    given_on = ((_as_date(day), DonationType(given).value) for day, given in donor.get("donations") or ())
    past = sorted((day, given) for day, given in given_on if day <= on)
    waits = [(day + timedelta(days=rules.interval(given, kind, sex)), day, given) for day, given in past]
    blocking = [wait for wait in waits if wait[0] > on]
    if blocking:
        until, day, given = max(blocking)
        needed = (until - day).days
        check.fail(
            f"The {_TYPE_NAMES[given]} donation on {day.isoformat()} was {_days_ago(on - day)}: "
            f"{needed} days are needed before a {_TYPE_NAMES[kind]} donation.",
            until=until,
        )
    maximum = rules.yearly_maximum(kind, sex)
    same_kind = [day for day, given in past if given == kind and on - day < _ROLLING_YEAR]
    if maximum is not None and len(same_kind) >= maximum:
        until = same_kind[len(same_kind) - maximum] + _ROLLING_YEAR
        check.fail(
            f"{len(same_kind)} {_TYPE_NAMES[kind]} donations in the last 12 months: "
            f"the maximum is {maximum}.",
            until=until,
        )


def donor_eligibility(
    donor: Mapping[str, Any], donation_type: str, on_date: date, profile: str = "US"
) -> Eligibility:
    """Whether ``donor`` may give a ``donation_type`` donation on ``on_date`` under a rule ``profile``.

    ``donor``: ``birth_date`` (date), ``sex`` ("F"/"M"), ``weight_kg``, ``hemoglobin_g_dl``,
    ``parental_consent`` (bool), ``donations`` (iterable of ``(date, donation_type)``: completed donations;
    those after ``on_date`` are ignored); optional ``temperature_c``, ``systolic_mmhg``, ``diastolic_mmhg``,
    ``pulse_bpm`` and ``height_cm`` (double red cells). A measurement that is missing or None is not
    judged (it is taken at the visit). Checks age (with parental consent where the profile allows it),
    weight, haemoglobin by sex, temperature, blood pressure, pulse, the minimum interval from every earlier
    donation to this type, the yearly maximum of this type and the double red cell minimums by sex. See
    :class:`Eligibility` for ``next_eligible_date``. ValueError for an unknown profile or donation type."""
    rules = _profile(profile)
    kind = DonationType(donation_type).value
    if donor.get("sex") not in DONOR_SEXES:
        raise ValueError(f"Donor sex must be one of {', '.join(DONOR_SEXES)}.")
    check = _Check()
    _check_age(check, rules, donor, kind, on_date)
    _check_measurements(check, rules, donor, kind)
    _check_history(check, rules, donor, kind, on_date)
    if not check.reasons:
        return Eligibility(eligible=True, reasons=[], next_eligible_date=None)
    next_date = None if check.never else check.not_before
    return Eligibility(eligible=False, reasons=check.reasons, next_eligible_date=next_date)
