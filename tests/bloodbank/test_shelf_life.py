"""Shelf life (21 CFR 610.53(b), AABB Standards 5.1.8A, FDA 2020 platelet bacterial-risk guidance), storage
temperatures and what each donation type makes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from caresync.bloodbank.rules import shelf_life, storage_range, unit_yield

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("component", "details", "expected"),
    [
        pytest.param("red_cells", {}, 42 * DAY, id="rbc-default-additive"),
        pytest.param("red_cells", {"additive": "AS-1"}, 42 * DAY, id="rbc-AS-1"),
        pytest.param("red_cells", {"additive": "AS-3"}, 42 * DAY, id="rbc-AS-3"),
        pytest.param("red_cells", {"additive": "AS-5"}, 42 * DAY, id="rbc-AS-5"),
        pytest.param("red_cells", {"additive": "AS-7"}, 42 * DAY, id="rbc-AS-7"),
        pytest.param("red_cells", {"anticoagulant": "CPDA-1"}, 35 * DAY, id="rbc-CPDA-1"),
        pytest.param("red_cells", {"anticoagulant": "CPD"}, 21 * DAY, id="rbc-CPD"),
        pytest.param("red_cells", {"anticoagulant": "CP2D"}, 21 * DAY, id="rbc-CP2D"),
        pytest.param("red_cells", {"anticoagulant": "ACD"}, 21 * DAY, id="rbc-ACD"),
        pytest.param("red_cells", {"irradiated": True}, 28 * DAY, id="rbc-irradiated-day-0"),
        pytest.param(
            "red_cells", {"irradiated": True, "irradiated_on_day": 10}, 38 * DAY, id="rbc-irradiated-day-10"
        ),
        pytest.param(
            "red_cells",
            {"irradiated": True, "irradiated_on_day": 20},
            42 * DAY,
            id="rbc-irradiated-late-keeps-original-dating",
        ),
        pytest.param(
            "red_cells",
            {"anticoagulant": "CPD", "irradiated": True, "irradiated_on_day": 5},
            21 * DAY,
            id="rbc-CPD-irradiated-original-shorter",
        ),
        pytest.param("red_cells", {"open_system": True}, 24 * HOUR, id="rbc-washed-open-system"),
        pytest.param("red_cells", {"deglycerolised": True}, 14 * DAY, id="rbc-deglycerolised-closed"),
        pytest.param("red_cells", {"frozen": True}, 3652 * DAY, id="rbc-frozen-10-years"),
        pytest.param("whole_blood", {}, 35 * DAY, id="wb-default-CPDA-1"),
        pytest.param("whole_blood", {"anticoagulant": "CPDA-1"}, 35 * DAY, id="wb-CPDA-1"),
        pytest.param("whole_blood", {"anticoagulant": "CPD"}, 21 * DAY, id="wb-CPD"),
        pytest.param("whole_blood", {"anticoagulant": "ACD"}, 21 * DAY, id="wb-ACD"),
        pytest.param("whole_blood", {"irradiated": True}, 28 * DAY, id="wb-irradiated"),
        pytest.param("platelets", {}, 5 * DAY, id="plt-default-5-days"),
        pytest.param("platelets", {"bacterial_testing": True}, 7 * DAY, id="plt-bacterial-testing-7-days"),
        pytest.param("platelets", {"pathogen_reduced": True}, 7 * DAY, id="plt-pathogen-reduced-7-days"),
        pytest.param("platelets", {"pooled_open": True}, 4 * HOUR, id="plt-pooled-open-4-hours"),
        pytest.param("plasma", {}, 365 * DAY, id="ffp-frozen-1-year"),
        pytest.param("plasma", {"thawed": True}, 24 * HOUR, id="ffp-thawed-24-hours"),
        pytest.param("plasma", {"thawed_plasma": True}, 5 * DAY, id="thawed-plasma-5-days"),
        pytest.param("cryo", {}, 365 * DAY, id="cryo-frozen-1-year"),
        pytest.param("cryo", {"thawed": True}, 6 * HOUR, id="cryo-thawed-6-hours"),
        pytest.param("cryo", {"thawed": True, "pooled_open": True}, 4 * HOUR, id="cryo-pooled-open-4-hours"),
    ],
)
def test_shelf_life(component: str, details: dict[str, Any], expected: timedelta) -> None:
    assert shelf_life(component, **details) == expected


@pytest.mark.parametrize(
    ("component", "details", "message"),
    [
        pytest.param("red_cells", {"additive": "SAGM-X"}, "Unknown additive", id="unknown-additive"),
        pytest.param("whole_blood", {"anticoagulant": "heparin"}, "Unknown anticoag", id="heparin"),
        pytest.param("granulocytes", {}, "not a valid Component", id="unknown-component"),
    ],
)
def test_unknown_details_are_refused(component: str, details: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shelf_life(component, **details)


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        pytest.param("red_cells", (1.0, 6.0), id="rbc"),
        pytest.param("whole_blood", (1.0, 6.0), id="wb"),
        pytest.param("platelets", (20.0, 24.0), id="plt"),
        pytest.param("plasma", (-80.0, -18.0), id="ffp"),
        pytest.param("cryo", (-80.0, -18.0), id="cryo"),
    ],
)
def test_storage_range(component: str, expected: tuple[float, float]) -> None:
    assert storage_range(component) == expected


@pytest.mark.parametrize(
    ("donation_type", "components", "shelf_lives"),
    [
        pytest.param("whole_blood", ["red_cells", "plasma"], [42 * DAY, 365 * DAY], id="wb-rbc-and-ffp"),
        pytest.param("double_red_cells", ["red_cells", "red_cells"], [42 * DAY, 42 * DAY], id="two-rbc"),
        pytest.param("platelets", ["platelets", "plasma"], [5 * DAY, 365 * DAY], id="plt-and-plasma"),
        pytest.param("plasma", ["plasma"], [365 * DAY], id="plasma"),
    ],
)
def test_unit_yield(donation_type: str, components: list[str], shelf_lives: list[timedelta]) -> None:
    specs = unit_yield(donation_type)
    assert [spec.component for spec in specs] == components
    assert [shelf_life(spec.component, **spec.details) for spec in specs] == shelf_lives
    codes = [spec.product_code for spec in specs]
    assert len(set(codes)) == len(codes)  # one unit per (DIN, product code)
    assert all(len(code) == 8 and code.startswith("E") for code in codes)
    assert all(spec.volume_ml > 0 for spec in specs)


def test_unit_yield_details_are_fresh_copies() -> None:
    unit_yield("whole_blood")[0].details["additive"] = "changed"
    assert unit_yield("whole_blood")[0].details == {"additive": "AS-1"}
