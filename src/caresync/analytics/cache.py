"""Results that stay valid until new encounters arrive.

:func:`data_version` fingerprints the encounters an analysis covers (how many, and the newest recording);
an entry cached under that version is served until the fingerprint changes, so a new encounter refreshes
every dashboard at once (a late commit of an older recording shows within :data:`COUNT_RECHECK_SECONDS`,
see :func:`data_state`). In-process and bounded (LRU): each web worker keeps its own, which is correct
because the version is read from the database on every use.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.analytics.models import Encounter

T = TypeVar("T")
MAX_ENTRIES = 256
COUNT_RECHECK_SECONDS = 5.0
_counted: dict[
    tuple[uuid.UUID, ...] | None, tuple[datetime | None, int, float]
] = {}  # newest, count, read at
_counted_lock = threading.Lock()


@dataclass(frozen=True)
class DataState:
    """How many encounters a scope has and when the newest was recorded (None: no encounter)."""

    count: int
    newest: datetime | None

    @property
    def version(self) -> str:
        """The fingerprint :func:`data_version` returns."""
        return f"{self.count}:{self.newest.isoformat() if self.newest else '-'}"


def data_state(session: Session, organisation_ids: Collection[uuid.UUID] | None) -> DataState:
    """The count and newest recording of these organisations' encounters (``None``: all).

    One indexed lookup (the newest ``created_at``) on most calls: the count (an index range scan, the
    larger part of a cached answer's time for a big organisation) is read again only when the newest
    recording changed or :data:`COUNT_RECHECK_SECONDS` after it was last read. Encounters are only ever
    added, so a new one changes the newest recording; the count catches what it cannot (a transaction
    that commits a recording older than the newest one, a deletion) within those seconds."""
    newest_query = select(func.max(Encounter.created_at))
    count_query = select(func.count()).select_from(Encounter)  # count(*): SQLite counts the smallest index
    if organisation_ids is not None:
        in_scope = Encounter.organisation_id.in_(list(organisation_ids))
        count_query, newest_query = count_query.where(in_scope), newest_query.where(in_scope)
    newest = session.execute(newest_query).scalar_one()
    key = tuple(sorted(organisation_ids)) if organisation_ids is not None else None
    now = time.monotonic()
    with _counted_lock:
        known = _counted.get(key)
    if known is not None and known[0] == newest and now - known[2] < COUNT_RECHECK_SECONDS:
        return DataState(count=known[1], newest=newest)
    count = session.execute(count_query).scalar_one()
    with _counted_lock:
        if len(_counted) >= MAX_ENTRIES:
            _counted.clear()
        _counted[key] = (newest, count, now)
    return DataState(count=count, newest=newest)


def data_version(session: Session, organisation_ids: Collection[uuid.UUID] | None) -> str:
    """A fingerprint of these organisations' encounters (``None``: all): changes when one is added."""
    return data_state(session, organisation_ids).version


class ResultCache:
    """A small thread-safe LRU of computed results keyed by (key, data version)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple[Hashable, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def get_or_compute(self, key: Hashable, version: str, compute: Callable[[], T]) -> T:
        """The cached result for ``(key, version)``, computing and storing it on a miss."""
        with self._lock:
            if (key, version) in self._entries:
                self._entries.move_to_end((key, version))
                return self._entries[(key, version)]
        value = compute()
        with self._lock:
            self._entries[(key, version)] = value
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything (tests), and the counts :func:`data_state` remembers."""
        with self._lock:
            self._entries.clear()
        with _counted_lock:
            _counted.clear()


results = ResultCache()
