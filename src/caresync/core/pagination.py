"""Keyset pagination with opaque cursors, shared by every list endpoint.

A cursor encodes the sort value and id of the last row seen, so pages stay stable while rows are added
and the database walks an index instead of skipping ``OFFSET`` rows.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from caresync.core.errors import ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 200
DEFAULT_LIMIT = 50


@dataclass
class Page(Generic[T]):
    """One page of results and the cursor for the next (``None`` on the last page); ``total`` counts every
    match (all pages) when the caller asked for it."""

    items: list[T]
    next_cursor: str | None
    total: int | None = None


def _encode(values: list[Any]) -> str:
    raw = json.dumps([_jsonable(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decode(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValidationFailed("The cursor is not valid; start again without it.") from exc
    if not isinstance(values, list) or len(values) != 2:
        raise ValidationFailed("The cursor is not valid; start again without it.")
    return values


def _coerce(column: InstrumentedAttribute[Any], value: Any) -> Any:
    if value is None:
        return None
    python_type = column.type.python_type
    try:
        if python_type is datetime:
            return datetime.fromisoformat(value)
        if python_type is date:
            return date.fromisoformat(value)
        if python_type is uuid.UUID:
            return uuid.UUID(value)
        return python_type(value)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("The cursor is not valid; start again without it.") from exc


def parse_sort(
    sort: str | None, allowed: dict[str, InstrumentedAttribute[Any]], default: str
) -> tuple[str, bool]:
    """Split ``-name`` into (``name``, descending) and check the key is allowed."""
    key = sort or default
    descending = key.startswith("-")
    name = key.lstrip("-")
    if name not in allowed:
        raise ValidationFailed(f"Cannot sort by '{name}'. Allowed: {', '.join(sorted(allowed))}.")
    return name, descending


def paginate(
    session: Session,
    query: Select[Any],
    *,
    sort_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    descending: bool,
    limit: int,
    cursor: str | None,
    count_total: bool = False,
) -> Page[Any]:
    """Run ``query`` one page at a time, ordered by ``sort_column`` then ``id_column``.

    The sort column must be NOT NULL so that keyset comparisons are total. With ``count_total`` the page
    also carries the number of rows on every page (one more query).
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}.")
    total = None
    if count_total:
        total = session.execute(
            select(func.count()).select_from(query.order_by(None).subquery())
        ).scalar_one()
    if cursor:
        last_value, last_id = _decode(cursor)
        last_value = _coerce(sort_column, last_value)
        last_id = _coerce(id_column, last_id)
        if descending:
            query = query.where(
                or_(sort_column < last_value, and_(sort_column == last_value, id_column < last_id))
            )
        else:
            query = query.where(
                or_(sort_column > last_value, and_(sort_column == last_value, id_column > last_id))
            )
    order = (sort_column.desc(), id_column.desc()) if descending else (sort_column.asc(), id_column.asc())
    rows: Sequence[Any] = session.execute(query.order_by(*order).limit(limit + 1)).scalars().all()
    items = list(rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = _encode([getattr(last, sort_column.key), getattr(last, id_column.key)])
    return Page(items=items, next_cursor=next_cursor, total=total)
