"""Keyset pagination with opaque cursors over real tables."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from caresync.core import audit
from caresync.core.audit import AuditEntry
from caresync.core.auth import system_principal
from caresync.core.errors import ValidationFailed
from caresync.core.pagination import MAX_LIMIT, _decode, _encode, paginate, parse_sort
from caresync.identity.models import Patient
from caresync.identity.patients import PATIENT_SORTS

FAMILIES = [
    "Costa",
    "Almeida",
    "Costa",
    "Zhang",
    "Costa",
    "Patel",
    "Rossi",
    "Almeida",
    "Costa",
    "Okafor",
    "Khan",
]


@pytest.fixture
def patients(make: Any) -> list[Patient]:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i, family in enumerate(FAMILIES):
        made.append(
            make.patient(family_name=family, birth_date=date(1960, 1, 1) + timedelta(days=97 * (i % 5)))
        )
    # distinct creation times, including ties
    from sqlalchemy import update

    from caresync.db import session_factory, transaction

    with transaction(session_factory()) as s:
        for i, p in enumerate(made):
            s.execute(
                update(Patient).where(Patient.id == p.id).values(created_at=base + timedelta(hours=i // 2))
            )
    return made


def _walk(s: Any, key: str, descending: bool, limit: int) -> tuple[list[Patient], int]:
    items: list[Patient] = []
    cursor = None
    pages = 0
    while True:
        page = paginate(
            s,
            select(Patient),
            sort_column=PATIENT_SORTS[key],
            id_column=Patient.id,
            descending=descending,
            limit=limit,
            cursor=cursor,
        )
        items += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return items, pages
        assert page.items
        assert len(page.items) == limit


@pytest.mark.parametrize("key", ["family_name", "birth_date", "created_at"])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("limit", [1, 3, 4, 11, 50])
def test_walk_visits_every_row_once_in_order(
    tx: Any, patients: list[Patient], key: str, descending: bool, limit: int
) -> None:
    with tx() as s:
        items, pages = _walk(s, key, descending, limit)
        expected = list(
            s.execute(
                select(Patient).order_by(
                    *(
                        (PATIENT_SORTS[key].desc(), Patient.id.desc())
                        if descending
                        else (PATIENT_SORTS[key].asc(), Patient.id.asc())
                    )
                )
            ).scalars()
        )
    assert [p.id for p in items] == [p.id for p in expected]
    assert len({p.id for p in items}) == len(FAMILIES)
    assert pages == -(-len(FAMILIES) // limit)
    values = [getattr(p, key) for p in items]
    assert values == sorted(values, reverse=descending)


def test_rows_added_behind_the_cursor_do_not_shift_the_next_page(
    tx: Any, make: Any, patients: list[Patient]
) -> None:
    with tx() as s:
        first = paginate(
            s,
            select(Patient),
            sort_column=Patient.family_name,
            id_column=Patient.id,
            descending=False,
            limit=4,
            cursor=None,
        )
    make.patient(family_name="Aaronson")  # sorts before everything already seen
    with tx() as s:
        rest = paginate(
            s,
            select(Patient),
            sort_column=Patient.family_name,
            id_column=Patient.id,
            descending=False,
            limit=50,
            cursor=first.next_cursor,
        )
        everything = paginate(
            s,
            select(Patient),
            sort_column=Patient.family_name,
            id_column=Patient.id,
            descending=False,
            limit=50,
            cursor=None,
        )
    seen = [p.id for p in first.items + rest.items]
    assert len(seen) == len(FAMILIES)
    assert len(set(seen)) == len(FAMILIES)
    assert everything.items[0].family_name == "Aaronson"


def test_integer_keys_descending(tx: Any) -> None:
    with tx() as s:
        for i in range(7):
            audit.record(s, system_principal(), "test.page", detail={"i": i})
    with tx() as s:
        seqs: list[int] = []
        cursor = None
        while True:
            page = paginate(
                s,
                select(AuditEntry),
                sort_column=AuditEntry.seq,
                id_column=AuditEntry.seq,
                descending=True,
                limit=3,
                cursor=cursor,
            )
            seqs += [e.seq for e in page.items]
            cursor = page.next_cursor
            if not cursor:
                break
    assert seqs == [7, 6, 5, 4, 3, 2, 1]


def test_empty_result_has_no_cursor(tx: Any) -> None:
    with tx() as s:
        page = paginate(
            s,
            select(Patient),
            sort_column=Patient.family_name,
            id_column=Patient.id,
            descending=False,
            limit=10,
            cursor=None,
        )
    assert page.items == []
    assert page.next_cursor is None


@pytest.mark.no_db
def test_cursor_round_trip_and_opacity() -> None:
    values = [datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), uuid.UUID(int=42)]
    cursor = _encode(values)
    assert "=" not in cursor
    assert "/" not in cursor
    assert "+" not in cursor
    assert _decode(cursor) == ["2026-03-04T05:06:07+00:00", str(uuid.UUID(int=42))]
    assert _decode(_encode([date(2000, 2, 29), 7])) == ["2000-02-29", 7]


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!",
        "not base64 at all",
        _b64({"a": 1}),
        _b64([1]),
        _b64([1, 2, 3]),
        _b64("string"),
        _b64(["Costa", "not-a-uuid"]),
        _b64([None, "7d0f3f5e-58f4-4e8e-9a53-0c8f2b1f4a11"]) + "x",
    ],
)
def test_bad_cursor_is_422(tx: Any, cursor: str) -> None:
    with tx() as s, pytest.raises(ValidationFailed) as caught:
        paginate(
            s,
            select(Patient),
            sort_column=Patient.family_name,
            id_column=Patient.id,
            descending=False,
            limit=10,
            cursor=cursor,
        )
    assert caught.value.status == 422
    assert "cursor" in caught.value.detail


@pytest.mark.parametrize("bad_value", ["yesterday", 12, [1]])
def test_cursor_with_a_value_of_the_wrong_type_is_422(tx: Any, bad_value: Any) -> None:
    with tx() as s, pytest.raises(ValidationFailed):
        paginate(
            s,
            select(Patient),
            sort_column=Patient.birth_date,
            id_column=Patient.id,
            descending=False,
            limit=10,
            cursor=_b64([bad_value, str(uuid.uuid4())]),
        )


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1])
def test_limit_bounds(tx: Any, limit: int) -> None:
    with tx() as s, pytest.raises(ValidationFailed, match="limit"):
        paginate(
            s,
            select(Patient),
            sort_column=Patient.family_name,
            id_column=Patient.id,
            descending=False,
            limit=limit,
            cursor=None,
        )


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (None, ("family_name", False)),
        ("birth_date", ("birth_date", False)),
        ("-created_at", ("created_at", True)),
        ("", ("family_name", False)),
    ],
)
@pytest.mark.no_db
def test_parse_sort(sort: str | None, expected: tuple[str, bool]) -> None:
    assert parse_sort(sort, PATIENT_SORTS, "family_name") == expected


@pytest.mark.parametrize("sort", ["health_id", "-password_hash", "--family_name ", "family_name;drop"])
@pytest.mark.no_db
def test_parse_sort_refuses_unknown_keys(sort: str) -> None:
    with pytest.raises(ValidationFailed, match="Cannot sort by"):
        parse_sort(sort, PATIENT_SORTS, "family_name")
