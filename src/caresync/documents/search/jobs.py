"""The indexing job of an uploaded record (see :func:`.service.index_pending`)."""

from __future__ import annotations

import uuid
from typing import Any

from caresync.core.jobs import JobContext, job_task
from caresync.db import session_factory, transaction
from caresync.documents.search import service

INDEX_JOB = "document.index"


@job_task(INDEX_JOB)
def index_job(ctx: JobContext, record_id: str) -> dict[str, Any]:
    """Job: index one record's text for search (embedding its passages takes tens of ms each)."""
    ctx.progress(1, "Indexing the document")
    with transaction(session_factory()) as session:
        indexed = service.index_pending(session, uuid.UUID(record_id))
    return {"record_id": record_id, "indexed": indexed}
