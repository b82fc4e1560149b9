"""The menu lights exactly one entry: the longest one that is the page or a parent of it."""

from __future__ import annotations

import pytest

from caresync.web.templating import active_navigation

NAV = [
    ("Dashboard", "/", "i"),
    ("My donations", "/donor", "i"),
    ("Calls for donors", "/donor/callouts", "i"),
    ("Health articles", "/articles", "i"),
]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "/"),
        ("/donor", "/donor"),
        ("/donor/book", "/donor"),
        ("/donor/callouts", "/donor/callouts"),
        ("/donor/callouts/5/reply", "/donor/callouts"),
        ("/articles/how-to-sleep", "/articles"),
        ("/articlesx", None),  # a sibling path that merely shares a prefix
        ("/notifications", None),
    ],
)
def test_the_longest_matching_entry_is_active(path: str, expected: str | None) -> None:
    assert active_navigation(NAV, path) == expected
