"""The blood supply analytics API and page: the permission matrix (blood bank staff and administrators read
the blood bank endpoints and page, donors their own ``/me`` and page; everyone else 403 with a denied audit
entry; signed-out callers 401 or a redirect to sign in), CSV and JSON exports, administrators choosing an
organisation, and a donor seeing only their own donations and the level of need of their group."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from caresync.analytics.blood import api as blood_api
from caresync.analytics.blood import pages as blood_pages
from caresync.identity.models import Organisation
from tests.bloodbank.conftest import make_donor, make_unit
from tests.conftest import Cast, Factory
from tests.permission_matrix import Case, Expect, assert_covered, check_api, check_pages, only, pages

API = "/api/v1/analytics/blood"
READERS = ("bloodbank_staff", "admin")


@dataclass
class World:
    """The cast's blood bank (the default hospital) with a unit, and the donor's profile."""

    org: Organisation


def readers(code: int) -> Expect:
    """``code`` for blood bank staff and administrators, 403 for other roles, 401 signed out."""
    return only(code, *READERS)


def _period(_: World) -> dict[str, str]:
    return {"start": "2026-01-01", "end": "2026-03-31"}


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", f"{API}/summary"): Case(readers(200)),
    ("GET", f"{API}/series"): Case(readers(200), query=_period),
    ("GET", f"{API}/forecast"): Case(readers(200)),
    ("GET", f"{API}/shortages"): Case(readers(200)),
    ("GET", f"{API}/donations"): Case(readers(200), query=_period),
    ("GET", f"{API}/me"): Case(only(200, "donor")),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/analytics/blood"): Case(pages(only(200, *READERS, "donor"))),
    ("GET", "/analytics/blood/sections/{section}"): Case(
        pages(readers(200)), path=lambda _: {"section": "supply"}
    ),
}


def _world(cast: Cast) -> World:
    make_unit(cast.org, "O-")
    make_donor(
        user_id=cast["donor"].id, organisation=cast.org, donations=((date(2025, 6, 2), "whole_blood"),)
    )
    return World(cast.org)


def test_matrices_cover_every_route() -> None:
    assert_covered((blood_api.router, API_CASES), (blood_pages.router, PAGE_CASES))


def test_blood_api_permission_matrix(client: TestClient, cast: Cast) -> None:
    check_api(client, cast, _world(cast), API_CASES)


def test_blood_page_permission_matrix(app: Any, cast: Cast) -> None:
    sections = {
        ("GET", f"/analytics/blood/sections/{name}"): Case(pages(readers(200)))
        for name in blood_pages.SECTIONS
    }
    check_pages(app, cast, _world(cast), {**PAGE_CASES, **sections})


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_every_table_exports_as_csv_and_json(client: TestClient, cast: Cast, sign_in: Any) -> None:
    _world(cast)
    headers = sign_in(cast["bloodbank_staff"])
    shortages = _csv(client.get(f"{API}/shortages", params={"format": "csv"}, headers=headers))
    assert shortages[0][:3] == ["blood_group", "available", "expiring_7_days"]
    assert [row[0] for row in shortages[1:]] == ["O-", "O+", "A-", "A+", "B-", "B+", "AB-", "AB+"]
    assert shortages[1][1] == "1"
    stock = _csv(client.get(f"{API}/summary", params={"format": "csv"}, headers=headers))
    assert stock == [
        ["blood_group", "component", "available", "reserved", "quarantined"],
        ["O-", "red_cells", "1", "0", "0"],
    ]
    for path, table, first in (
        ("series", "usage", "week"),
        ("series", "donations", "week"),
        ("forecast", "forecast", "blood_group"),
        ("forecast", "metrics", "blood_group"),
        ("donations", "groups", "month"),
        ("donations", "donors", "month"),
    ):
        rows = _csv(client.get(f"{API}/{path}", params={"format": "csv", "table": table}, headers=headers))
        assert rows[0][0] == first, (path, table)
    answer = client.get(f"{API}/forecast", params={"format": "json"}, headers=headers)
    assert (
        answer.headers["content-disposition"]
        == 'attachment; filename="caresync-blood-forecast-forecast.json"'
    )
    assert [g["method"] for g in answer.json()["groups"]] == ["none"] * 8


def test_administrators_choose_the_blood_bank(
    client: TestClient, cast: Cast, make: Factory, sign_in: Any
) -> None:
    other = make.org()
    make_unit(other, "B+")
    make_unit(other, "B+")
    admin = sign_in(cast["admin"])
    body = client.get(f"{API}/summary", params={"organisation_id": str(other.id)}, headers=admin).json()
    assert body["organisation_id"] == str(other.id)
    assert body["stock"][0]["available"] == 2
    staff = client.get(
        f"{API}/summary", params={"organisation_id": str(other.id)}, headers=sign_in(cast["bloodbank_staff"])
    )
    assert staff.status_code == 403


def test_a_donor_sees_only_their_own_donations_and_the_need_for_their_group(
    client: TestClient, cast: Cast, make: Factory, sign_in: Any
) -> None:
    centre, elsewhere = make.org(), make.org()
    make_donor(
        user_id=cast["donor"].id,
        blood_group="O-",
        organisation=centre,
        donations=(
            (date(2024, 5, 2), "whole_blood"),
            (date(2025, 1, 10), "whole_blood"),
            (date(2025, 6, 3), "whole_blood"),
        ),
    )
    make_donor(blood_group="O-", organisation=elsewhere, donations=((date(2025, 2, 2), "whole_blood"),))
    body = client.get(f"{API}/me", headers=sign_in(cast["donor"])).json()
    assert body["total_donations"] == 3
    assert body["last_donation"] == "2025-06-03"
    assert body["years"] == [{"year": 2024, "donations": 1}, {"year": 2025, "donations": 2}]
    assert body["needs"] == [
        {"organisation_id": str(centre.id), "organisation_name": centre.name, "level": "ok"}
    ]
    assert body["eligible_today"] is True
    assert body["next_eligible_date"] is None
    page = client.get("/analytics/blood", headers=sign_in(cast["donor"]) | {"Accept": "text/html"})
    assert page.status_code == 200
    assert centre.name in page.text
    assert elsewhere.name not in page.text
