"""The dispensing permission matrix: every route of the dispensing API and page routers x every role ->
the expected status.

The world is the ``cast`` (one person of every role; the doctor and nurse care for the cast's patient)
with a prescription of the cast's patient, and a prescription of ``cast.other_patient`` (cared for by
nobody in the hospital) written by a doctor of another hospital. A prescription's code, image and
printout are for whoever may read it (the patient and the care team; 404 for everyone else, exactly as for
a missing id); verifying and dispensing are for pharmacists (403 for every other role). No response may
contain the other patient's name or Health ID, and every refusal (403/404) leaves a ``denied`` audit entry
by the caller. Pages answer signed-out visitors with a redirect to the sign-in page.

Routes that change state get a fresh prescription per call, so every role meets the same situation.
``test_matrices_cover_every_route`` fails when a route of the two routers is missing from the tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from caresync.db import session_factory, transaction
from caresync.prescriptions.dispensing import api as dispensing_api
from caresync.prescriptions.dispensing import pages as dispensing_pages
from caresync.prescriptions.dispensing import qr
from caresync.prescriptions.models import Prescription
from tests.conftest import Cast
from tests.permission_matrix import (
    Case,
    Expect,
    assert_covered,
    check_api,
    check_pages,
    identities,
    only,
    pages,
)
from tests.prescriptions.conftest import make_prescription

READERS = ("patient", "doctor", "nurse")


def readers(code: int) -> Expect:
    """``code`` for the patient and their care team, 404 for other roles, 401 anonymously."""
    return only(code, *READERS, others=404)


def pharmacists(code: int) -> Expect:
    """``code`` for the pharmacist, 403 for other roles, 401 anonymously."""
    return only(code, "pharmacist")


@dataclass
class World:
    """The prescriptions the requests refer to."""

    cast: Cast
    other_rx: Prescription  # of the patient nobody in the hospital cares for

    def fresh(self) -> Prescription:
        """A new active prescription of the cast's patient (3 fills)."""
        return make_prescription(self.cast["doctor"], self.cast["patient"], refills=2)

    def code(self) -> str:
        """A valid code of a fresh prescription."""
        with transaction(session_factory()) as s:
            found = s.get(Prescription, self.fresh().id)
            assert found is not None
            return qr.encode(s, found)

    def other(self) -> dict[str, str]:
        """Path parameters naming the other patient's prescription."""
        return {"prescription_id": str(self.other_rx.id)}


def _rx(world: World) -> dict[str, str]:
    return {"prescription_id": str(world.fresh().id)}


def _png(world: World) -> dict[str, Any]:
    return {"image": ("qr.png", qr.render_png(world.code()), "image/png")}


API_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/api/v1/prescriptions/{prescription_id}/qr"): Case(readers(200), _rx, foreign=World.other),
    ("GET", "/api/v1/prescriptions/{prescription_id}/qr.png"): Case(readers(200), _rx, foreign=World.other),
    ("GET", "/api/v1/prescriptions/{prescription_id}/print.pdf"): Case(
        readers(200), _rx, foreign=World.other
    ),
    ("POST", "/api/v1/pharmacy/verify"): Case(pharmacists(200), json=lambda w: {"code": w.code()}),
    ("POST", "/api/v1/pharmacy/verify-image"): Case(pharmacists(200), files=_png),
    ("POST", "/api/v1/pharmacy/dispenses"): Case(
        pharmacists(201), json=lambda w: {"code": w.code(), "quantity": 21, "lot": "LOT-1"}
    ),
    ("GET", "/api/v1/pharmacy/dispenses"): Case(pharmacists(200)),
}
PAGE_CASES: dict[tuple[str, str], Case[World]] = {
    ("GET", "/pharmacy"): Case(pages(pharmacists(200))),
    ("POST", "/pharmacy/verify"): Case(pages(pharmacists(200)), data=lambda w: {"code": w.code()}),
    ("POST", "/pharmacy/dispense"): Case(
        pages(pharmacists(303)), data=lambda w: {"code": w.code(), "quantity": "21", "lot": "LOT-2"}
    ),
    ("GET", "/prescriptions/{prescription_id}/qr.png"): Case(pages(readers(200)), _rx, foreign=World.other),
    ("GET", "/prescriptions/{prescription_id}/print.pdf"): Case(
        pages(readers(200)), _rx, foreign=World.other
    ),
}


def test_matrices_cover_every_route() -> None:
    assert_covered((dispensing_api.router, API_CASES), (dispensing_pages.router, PAGE_CASES))


@pytest.fixture
def world(cast: Cast, make: Any) -> World:
    """The cast, and a prescription of the other patient by a doctor of another hospital."""
    stranger = make.staff("doctor", make.org())
    make.care(stranger, cast.other_patient)
    return World(cast=cast, other_rx=make_prescription(stranger, cast.other_patient))


def test_dispensing_api_permission_matrix(client: TestClient, world: World) -> None:
    check_api(client, world.cast, world, API_CASES, secrets=identities(world.cast.other_patient))


def test_dispensing_page_permission_matrix(app: Any, world: World) -> None:
    check_pages(app, world.cast, world, PAGE_CASES, secrets=identities(world.cast.other_patient))
