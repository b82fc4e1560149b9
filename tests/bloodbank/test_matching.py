"""Matching (pure): which units a request is offered, in which order, and which groups an emergency
release gives a patient of unknown group."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from caresync.bloodbank.requests.matching import UnitIndex, emergency_groups, propose

pytestmark = pytest.mark.no_db
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Unit:
    """A unit on the shelf, as matching sees it."""

    blood_group: str
    expires_in_days: float = 10
    component: str = "red_cells"
    status: str = "available"
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def expires_at(self) -> datetime:
        return NOW + timedelta(days=self.expires_in_days)


@dataclass
class Need:
    """A request, as matching sees it."""

    patient_group: str | None
    component: str = "red_cells"


def offered(stock: list[Unit], need: Need, limit: int = 10) -> list[tuple[str, float]]:
    """(group, days to expiry) of the units offered, in order."""
    return [(u.blood_group, u.expires_in_days) for u in propose(stock, need, limit=limit, now=NOW)]


def test_exact_group_first_then_compatible_groups_o_negative_last() -> None:
    stock = [Unit("O-", 1), Unit("O+", 2), Unit("A-", 3), Unit("A+", 4), Unit("AB+", 1), Unit("B+", 1)]
    assert offered(stock, Need("A+")) == [("A+", 4), ("O+", 2), ("A-", 3), ("O-", 1)]


def test_first_expiry_first_out_within_a_group() -> None:
    stock = [Unit("B+", 9), Unit("B+", 2), Unit("B+", 5), Unit("O+", 1)]
    assert offered(stock, Need("B+"), limit=3) == [("B+", 2), ("B+", 5), ("B+", 9)]


def test_o_negative_is_offered_only_when_nothing_else_suits() -> None:
    stock = [Unit("O-", 1), Unit("O-", 2), Unit("O+", 20)]
    assert offered(stock, Need("AB+"), limit=1) == [("O+", 20)]
    assert offered(stock, Need("AB+"), limit=3) == [("O+", 20), ("O-", 1), ("O-", 2)]


def test_an_o_negative_patient_gets_only_o_negative_red_cells() -> None:
    stock = [Unit("O+", 1), Unit("A-", 1), Unit("O-", 7), Unit("O-", 3)]
    assert offered(stock, Need("O-")) == [("O-", 3), ("O-", 7)]


@pytest.mark.parametrize(
    ("component", "patient", "expected"),
    [
        pytest.param("red_cells", "AB-", ["AB-", "A-", "B-", "O-"], id="red-cells-AB-neg"),
        pytest.param("red_cells", "B-", ["B-", "O-"], id="red-cells-B-neg"),
        pytest.param("whole_blood", "A+", ["A+", "A-"], id="whole-blood-ABO-identical"),
        pytest.param("plasma", "O+", ["O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-"], id="plasma-O-any"),
        pytest.param("plasma", "A-", ["A-", "A+", "AB+", "AB-"], id="plasma-A-needs-A-or-AB"),
        pytest.param("plasma", "AB+", ["AB+", "AB-"], id="plasma-AB-only-AB"),
        pytest.param("cryo", "B+", ["B+", "B-", "AB+", "AB-"], id="cryo-as-plasma"),
        pytest.param("platelets", "A-", ["A-", "AB-"], id="platelets-RhD-negative"),
        pytest.param(
            "platelets", "O+", ["O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-"], id="platelets-O+"
        ),
    ],
)
def test_every_component_offers_only_compatible_groups(
    component: str, patient: str, expected: list[str]
) -> None:
    groups = ("O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+")
    stock = [Unit(g, 5, component=component) for g in groups] + [Unit("A+", 5, component="other")]
    got = [g for g, _days in offered(stock, Need(patient, component))]
    assert sorted(got) == sorted(expected)
    assert got[0] == patient  # exact group first
    if "O-" in got and patient != "O-" and component == "red_cells":
        assert got[-1] == "O-"


def test_unknown_group_is_not_matched() -> None:
    assert offered([Unit("O-"), Unit("AB+", component="plasma")], Need(None)) == []


@pytest.mark.parametrize(
    "unit",
    [
        pytest.param(Unit("A+", -0.01), id="expired"),
        pytest.param(Unit("A+", 0), id="expires-now"),
        pytest.param(Unit("A+", status="reserved"), id="reserved"),
        pytest.param(Unit("A+", status="quarantined"), id="quarantined"),
        pytest.param(Unit("A+", status="issued"), id="issued"),
        pytest.param(Unit("A+", component="platelets"), id="other-component"),
    ],
)
def test_units_that_cannot_be_given_are_never_offered(unit: Unit) -> None:
    good = Unit("A+", 3)
    assert propose([unit, good], Need("A+"), limit=5, now=NOW) == [good]


def test_limit_and_excluded_units() -> None:
    stock = [Unit("A+", d) for d in (1, 2, 3, 4)]
    index = UnitIndex.of(stock)
    assert index.propose(Need("A+"), limit=2, now=NOW) == stock[:2]
    assert index.propose(Need("A+"), limit=2, now=NOW, exclude=frozenset({stock[0].id})) == stock[1:3]
    assert index.propose(Need("A+"), limit=0, now=NOW) == []


@pytest.mark.parametrize(
    ("component", "sex", "age", "expected"),
    [
        pytest.param("red_cells", "female", 30, ("O-",), id="woman-of-childbearing-age"),
        pytest.param("red_cells", "female", 49, ("O-",), id="woman-49"),
        pytest.param("red_cells", "female", 50, ("O+", "O-"), id="woman-50"),
        pytest.param("red_cells", "male", 40, ("O+", "O-"), id="man"),
        pytest.param("red_cells", "male", 15, ("O-",), id="boy-under-16"),
        pytest.param("red_cells", "male", 16, ("O+", "O-"), id="male-16"),
        pytest.param("red_cells", "unknown", 70, ("O-",), id="sex-unknown"),
        pytest.param("red_cells", "other", 60, ("O-",), id="sex-other"),
        pytest.param("plasma", "female", 30, ("AB+", "AB-"), id="plasma-AB"),
        pytest.param("platelets", "male", 40, (), id="platelets-not-released"),
        pytest.param("cryo", "male", 40, (), id="cryo-not-released"),
        pytest.param("whole_blood", "male", 40, (), id="whole-blood-not-released"),
    ],
)
def test_emergency_release_groups(component: str, sex: str, age: int, expected: tuple[str, ...]) -> None:
    assert emergency_groups(component, sex, age) == expected


def test_a_thousand_requests_against_a_hundred_thousand_units_is_fast() -> None:
    rng = random.Random(6)
    groups = ("O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+")
    components = ("red_cells", "plasma", "platelets", "cryo", "whole_blood")
    stock = [Unit(rng.choice(groups), rng.uniform(-3, 40), rng.choice(components)) for _ in range(100_000)]
    needs = [Need(rng.choice(groups), rng.choice(components)) for _ in range(1000)]
    started = time.process_time()  # CPU time: other processes on a shared machine do not count
    index = UnitIndex.of(stock)
    offers = [index.propose(n, limit=rng.randint(1, 6), now=NOW) for n in needs]
    elapsed = time.process_time() - started
    assert all(offers), "every request should find units in so large a stock"
    assert all(u.expires_at > NOW for units in offers for u in units)
    # The target is 1 s (bench/bloodbank.py measures it: about 0.3 s here); scanning the stock for each
    # request takes more than ten times as long, so this looser bound still catches it.
    assert elapsed < 3, f"{elapsed:.2f} s"
