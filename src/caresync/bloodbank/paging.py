"""Links between the pages of a blood bank list that keep its filters."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode


def page_links(
    path: str, query: Mapping[str, str], next_cursor: str | None, cursor: str | None
) -> dict[str, str]:
    """``next_url`` (when there is a next page) and ``first_url`` (when not on the first page) of the list
    at ``path`` ("" for the current one), keeping ``query``'s filters; empty strings hide the links."""
    return {
        "next_url": f"{path}?{urlencode({**query, 'cursor': next_cursor})}" if next_cursor else "",
        "first_url": f"{path}?{urlencode(query)}" if cursor else "",
    }
