"""The network pages: the stock table and map, the transfers console's empty states, and the whole flow
clicked through as staff would: offer a request, the nearest blood bank declines, the next accepts,
dispatches, and the requester receives the units; refusals are shown on the page."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from caresync.bloodbank.models import BloodTransfer, BloodUnit
from caresync.bloodbank.network.pages import MAP_HEIGHT, MAP_MARGIN, MAP_WIDTH, map_points
from caresync.bloodbank.network.service import Site
from caresync.db import session_factory, transaction
from tests.bloodbank.test_offers import Network, build_network
from tests.conftest import Cast, Factory, Person, web_login


@pytest.fixture
def network(cast: Cast, make: Factory) -> Network:
    return build_network(cast, make)


class Browser:
    """A signed-in browser of one person (its own cookies and CSRF token)."""

    def __init__(self, app: Any, person: Person) -> None:
        self.client = TestClient(app)
        self.csrf = web_login(self.client, person)

    def get(self, url: str) -> Any:
        return self.client.get(url, headers={"Accept": "text/html"})

    def post(self, url: str, **data: str) -> Any:
        return self.client.post(
            url,
            data={**data, "csrf_token": self.csrf},
            headers={"Accept": "text/html"},
            follow_redirects=False,
        )


@pytest.fixture
def browsers(app: Any) -> Iterator[dict[str, Browser]]:
    opened: dict[str, Browser] = {}
    yield opened
    for browser in opened.values():
        browser.client.close()


def browser(app: Any, browsers: dict[str, Browser], network: Network, key: str) -> Browser:
    if key not in browsers:
        browsers[key] = Browser(app, network.staff[key] if key in network.staff else network.cast[key])
    return browsers[key]


def tagged(html: str, name: str) -> list[str]:
    """The opening tags carrying ``data-testid="name"``."""
    return re.findall(rf'<[^>]*data-testid="{name}"[^>]*>', html)


def _site(name: str, lat: float | None, lon: float | None, units: int, *, own: bool = False) -> Site:
    return Site(uuid.uuid4(), name, "hospital", "", lat, lon, None, own, {("O-", "red_cells"): units})


@pytest.mark.no_db
def test_map_places_west_left_north_up_centred_and_sized_by_stock() -> None:
    sites = [_site("A", 41.0, -9.5, 1, own=True), _site("B", 38.0, -8.0, 9), _site("C", None, None, 50)]
    points = {p.site.name: p for p in map_points(sites)}
    assert set(points) == {"A", "B"}  # no coordinates, not on the map
    a, b = points["A"], points["B"]
    assert (a.x < b.x, a.y < b.y, a.radius < b.radius) == (True, True, True)
    assert (a.y, b.y) == (MAP_MARGIN, MAP_HEIGHT - MAP_MARGIN)  # the taller side fills the height
    assert (a.x + b.x) / 2 == pytest.approx(MAP_WIDTH / 2)  # and the other is centred
    assert [p.site.name for p in map_points(sites)][-1] == "A"  # the caller's drawn on top
    assert map_points([]) == []


@pytest.mark.no_db
def test_map_names_do_not_overlap() -> None:
    crowded = [
        _site("big", 38.70, -9.10, 9),
        _site("beside", 38.7001, -9.1001, 8),
        _site("far", 41.0, -8.6, 2),
    ]
    labelled = {p.site.name: p.labelled for p in map_points(crowded)}
    assert labelled == {"big": True, "beside": False, "far": True}


def test_network_page_shows_table_and_map(app: Any, browsers: dict[str, Browser], network: Network) -> None:
    page = browser(app, browsers, network, "doctor").get("/bloodbank/network?sort=stock")
    assert page.status_code == 200, page.text
    rows = tagged(page.text, "site-row")
    assert len(rows) == 6
    assert f'data-org="{network.far.id}"' in rows[0]  # 5 units: the most
    assert len(tagged(page.text, "map-point")) == 5  # "nowhere" has no coordinates
    assert network.nowhere.name in page.text.split('data-testid="unplaced"')[1]
    assert "274.3 km" in page.text
    filtered = browser(app, browsers, network, "doctor").get("/bloodbank/network?component=plasma")
    assert len(tagged(filtered.text, "cell")) == 1
    assert 'data-group="A-" data-component="plasma"' in filtered.text


def test_transfers_console_empty_states(app: Any, make: Factory) -> None:
    lonely = make.staff("bloodbank_staff", make.org(kind="blood_bank"))
    page = Browser(app, lonely).get("/bloodbank/transfers")
    assert page.status_code == 200, page.text
    for text in ("No offers waiting", "Nothing on offer", "No transfers yet"):
        assert text in page.text


def test_offer_decline_accept_dispatch_receive_through_the_pages(
    app: Any, browsers: dict[str, Browser], network: Network
) -> None:
    request = network.request()
    home = browser(app, browsers, network, "home")
    offered = home.post(f"/bloodbank/requests/{request.id}/offer")
    assert offered.status_code == 303, offered.text
    console = home.get(offered.headers["location"])
    assert 'data-testid="notice"' in console.text
    states = re.findall(r'data-testid="outgoing-offer" data-offer="[^"]+" data-state="(\w+)"', console.text)
    assert sorted(states) == ["offered", "queued", "queued", "queued"]

    again = home.post(f"/bloodbank/requests/{request.id}/offer")
    assert again.status_code == 409
    assert "already on offer" in tagged(again.text, "action-error")[0] + again.text

    first = browser(app, browsers, network, "near_big")
    offers = re.findall(
        r'data-testid="incoming-offer" data-offer="([^"]+)"', first.get("/bloodbank/transfers").text
    )
    assert len(offers) == 1
    assert network.cast["patient"].full_name not in first.get("/bloodbank/transfers").text
    declined = first.post(f"/bloodbank/offers/{offers[0]}/decline", note="Stock promised elsewhere")
    assert declined.status_code == 303

    second = browser(app, browsers, network, "near_small")
    offers = re.findall(
        r'data-testid="incoming-offer" data-offer="([^"]+)"', second.get("/bloodbank/transfers").text
    )
    accepted = second.post(f"/bloodbank/offers/{offers[0]}/accept")
    assert accepted.status_code == 303, accepted.text
    detail_url = accepted.headers["location"]
    detail = second.get(detail_url)
    assert tagged(detail.text, "dispatch")
    assert len(tagged(detail.text, "unit-row")) == 1  # near_small holds one compatible unit

    blank = second.post(f"{detail_url}/dispatch", courier="")
    assert blank.status_code == 422
    assert "Name the courier" in blank.text
    assert second.post(f"{detail_url}/dispatch", courier="Moto 3").status_code == 303

    receiving = home.get(detail_url)
    assert tagged(receiving.text, "receive")
    assert home.post(f"{detail_url}/receive").status_code == 303
    assert "received" in tagged(home.get(detail_url).text, "status")[0] + home.get(detail_url).text
    with transaction(session_factory()) as s:
        transfer = s.scalars(select(BloodTransfer)).one()
        assert transfer.status == "received"
        unit = s.scalars(select(BloodUnit).where(BloodUnit.request_id == request.id)).one()
        assert (unit.organisation_id, unit.status) == (network.home.id, "reserved")


def test_transfer_form_validates_then_creates(
    app: Any, browsers: dict[str, Browser], network: Network
) -> None:
    home = browser(app, browsers, network, "home")
    missing = home.post("/bloodbank/transfers", direction="receive", organisation_id="", blood_group="A-",
                        component="red_cells", units="2")  # fmt: skip
    assert missing.status_code == 422
    assert "Choose a hospital or blood bank." in missing.text
    created = home.post("/bloodbank/transfers", direction="receive", organisation_id=str(network.far.id),
                        blood_group="A-", component="red_cells", units="2", note="Weekend")  # fmt: skip
    assert created.status_code == 303, created.text
    detail = home.get(created.headers["location"])
    assert "No units chosen yet" in detail.text
    assert tagged(detail.text, "cancel")
    cancelled = home.post(f"{created.headers['location']}/cancel", reason="Not needed")
    assert cancelled.status_code == 303
    assert 'data-testid="status">cancelled' in home.get(created.headers["location"]).text
