"""Results that stay valid until new encounters arrive.

:func:`data_version` fingerprints the encounters an analysis covers (how many, and the newest recording);
an entry cached under that version is served until the fingerprint changes, so a new encounter refreshes
every dashboard at once and nothing is ever served stale. In-process and bounded (LRU): each web worker
keeps its own, which is correct because the version is read from the database on every use.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from caresync.analytics.models import Encounter

T = TypeVar("T")
MAX_ENTRIES = 256


def data_version(session: Session, organisation_ids: Collection[uuid.UUID] | None) -> str:
    """A fingerprint of these organisations' encounters (``None``: all): changes when one is added."""
    # Two queries on purpose: SQLite answers a lone max() from the index in microseconds, and only
    # scans when it is combined with count().
    # count(*) (not count(id)): SQLite then counts the smallest index instead of reading every row.
    count_query = select(func.count()).select_from(Encounter)
    newest_query = select(func.max(Encounter.created_at))
    if organisation_ids is not None:
        in_scope = Encounter.organisation_id.in_(list(organisation_ids))
        count_query, newest_query = count_query.where(in_scope), newest_query.where(in_scope)
    count = session.execute(count_query).scalar_one()
    newest = session.execute(newest_query).scalar_one()
    return f"{count}:{newest.isoformat() if newest else '-'}"


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
        """Forget everything (tests)."""
        with self._lock:
            self._entries.clear()


results = ResultCache()
