"""Calendar buckets of UTC timestamp columns as SQL, the same on SQLite and PostgreSQL (for GROUP BY in
reports and analytics)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class utc_month(FunctionElement[str]):
    """``YYYY-MM`` of a UTC timestamp column."""

    type = String()
    inherit_cache = True


class utc_week(FunctionElement[str]):
    """``YYYY-MM-DD`` of the Monday of the ISO week (UTC) of a timestamp column."""

    type = String()
    inherit_cache = True


@compiles(utc_month)
def _utc_month_sqlite(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


@compiles(utc_month, "postgresql")
def _utc_month_postgresql(element: utc_month, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM')"


@compiles(utc_week)
def _utc_week_sqlite(element: utc_week, compiler: SQLCompiler, **kw: Any) -> str:
    # 'weekday 0' moves to the next Sunday (or stays on one); six days back is that week's Monday.
    return f"date({compiler.process(element.clauses, **kw)}, 'weekday 0', '-6 days')"


@compiles(utc_week, "postgresql")
def _utc_week_postgresql(element: utc_week, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(date_trunc('week', ({column}) AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
