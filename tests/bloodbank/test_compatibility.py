"""ABO/RhD compatibility: every donor x recipient pair for every component, written out by hand (AABB
Technical Manual ABO compatibility table; BSH/NHSBT component selection), and the preference order."""

from __future__ import annotations

import pytest

from caresync.bloodbank.rules import compatible_donor_groups, is_compatible

DONORS = ("O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+")

# One row per recipient; one character per donor in the order of DONORS: "x" compatible, "." not.
EXPECTED: dict[str, dict[str, str]] = {
    # Donor cells must carry no ABO antigen the recipient lacks; RhD-negative recipients get RhD-negative.
    "red_cells": {
        "O-": "x.......",
        "O+": "xx......",
        "A-": "x.x.....",
        "A+": "xxxx....",
        "B-": "x...x...",
        "B+": "xx..xx..",
        "AB-": "x.x.x.x.",
        "AB+": "xxxxxxxx",
    },
    # Whole blood carries cells and plasma: ABO-identical, RhD as for red cells.
    "whole_blood": {
        "O-": "x.......",
        "O+": "xx......",
        "A-": "..x.....",
        "A+": "..xx....",
        "B-": "....x...",
        "B+": "....xx..",
        "AB-": "......x.",
        "AB+": "......xx",
    },
    # Donor plasma must carry no antibody against the recipient's cells; RhD irrelevant. AB is universal.
    "plasma": {
        "O-": "xxxxxxxx",
        "O+": "xxxxxxxx",
        "A-": "..xx..xx",
        "A+": "..xx..xx",
        "B-": "....xxxx",
        "B+": "....xxxx",
        "AB-": "......xx",
        "AB+": "......xx",
    },
    # Cryoprecipitate follows plasma (group O cryo only for group O recipients).
    "cryo": {
        "O-": "xxxxxxxx",
        "O+": "xxxxxxxx",
        "A-": "..xx..xx",
        "A+": "..xx..xx",
        "B-": "....xxxx",
        "B+": "....xxxx",
        "AB-": "......xx",
        "AB+": "......xx",
    },
    # Platelets: plasma-compatible ABO and RhD-negative for RhD-negative recipients.
    "platelets": {
        "O-": "x.x.x.x.",
        "O+": "xxxxxxxx",
        "A-": "..x...x.",
        "A+": "..xx..xx",
        "B-": "....x.x.",
        "B+": "....xxxx",
        "AB-": "......x.",
        "AB+": "......xx",
    },
}

PAIRS = [
    pytest.param(component, donor, recipient, row[i] == "x", id=f"{component}-{donor}-to-{recipient}")
    for component, table in EXPECTED.items()
    for recipient, row in table.items()
    for i, donor in enumerate(DONORS)
]


def test_the_tables_cover_64_pairs_per_component() -> None:
    assert len(PAIRS) == 5 * 64


@pytest.mark.parametrize(("component", "donor", "recipient", "expected"), PAIRS)
def test_is_compatible(component: str, donor: str, recipient: str, expected: bool) -> None:
    assert is_compatible(component, donor, recipient) is expected


@pytest.mark.parametrize("component", list(EXPECTED))
@pytest.mark.parametrize("recipient", DONORS)
def test_compatible_donor_groups_lists_exactly_the_compatible_groups(component: str, recipient: str) -> None:
    expected = {donor for i, donor in enumerate(DONORS) if EXPECTED[component][recipient][i] == "x"}
    groups = compatible_donor_groups(component, recipient)
    assert set(groups) == expected
    assert len(groups) == len(expected)
    assert groups[0] == recipient  # every group may receive its own


@pytest.mark.parametrize(
    ("component", "recipient", "order"),
    [
        pytest.param("red_cells", "O-", ("O-",), id="rbc-O-neg-only-O-neg"),
        pytest.param("red_cells", "O+", ("O+", "O-"), id="rbc-O-pos"),
        pytest.param("red_cells", "A-", ("A-", "O-"), id="rbc-A-neg"),
        pytest.param("red_cells", "A+", ("A+", "O+", "A-", "O-"), id="rbc-A-pos-keeps-rh-neg-for-later"),
        pytest.param("red_cells", "B+", ("B+", "O+", "B-", "O-"), id="rbc-B-pos"),
        pytest.param("red_cells", "AB-", ("AB-", "A-", "B-", "O-"), id="rbc-AB-neg"),
        pytest.param(
            "red_cells", "AB+", ("AB+", "A+", "B+", "O+", "AB-", "A-", "B-", "O-"), id="rbc-AB-pos-O-neg-last"
        ),
        pytest.param("whole_blood", "A+", ("A+", "A-"), id="wb-A-pos"),
        pytest.param("plasma", "O+", ("O+", "O-", "A-", "A+", "B-", "B+", "AB-", "AB+"), id="ffp-O-AB-last"),
        pytest.param("plasma", "A-", ("A-", "A+", "AB-", "AB+"), id="ffp-A-neg"),
        pytest.param("cryo", "B+", ("B+", "B-", "AB-", "AB+"), id="cryo-B-pos"),
        pytest.param("platelets", "A+", ("A+", "AB+", "A-", "AB-"), id="plt-A-pos"),
        pytest.param("platelets", "O-", ("O-", "A-", "B-", "AB-"), id="plt-O-neg-AB-last"),
    ],
)
def test_preference_order(component: str, recipient: str, order: tuple[str, ...]) -> None:
    assert compatible_donor_groups(component, recipient) == order


@pytest.mark.parametrize("recipient", [g for g in DONORS if g != "O-"])
def test_o_negative_red_cells_come_last_for_everyone_but_o_negative(recipient: str) -> None:
    assert compatible_donor_groups("red_cells", recipient)[-1] == "O-"


@pytest.mark.parametrize("component", ["plasma", "cryo"])
@pytest.mark.parametrize("recipient", ["O-", "O+", "A-", "A+", "B-", "B+"])
def test_ab_plasma_comes_last(component: str, recipient: str) -> None:
    assert set(compatible_donor_groups(component, recipient)[-2:]) == {"AB-", "AB+"}


@pytest.mark.parametrize(
    ("component", "donor", "recipient", "message"),
    [
        pytest.param("red_cells", "O", "A+", "Unknown blood group 'O'", id="no-rh"),
        pytest.param("red_cells", "O-", "C+", "Unknown blood group 'C\\+'", id="unknown-recipient"),
        pytest.param("granulocytes", "O-", "A+", "not a valid Component", id="unknown-component"),
    ],
)
def test_unknown_values_are_refused(component: str, donor: str, recipient: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        is_compatible(component, donor, recipient)
