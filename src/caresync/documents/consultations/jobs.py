"""The transcription job of a recorded consultation (see :func:`.service.run_transcription`)."""

from __future__ import annotations

import uuid
from typing import Any

from caresync.core.jobs import JobContext, job_task
from caresync.documents.consultations import service

TRANSCRIBE_JOB = "document.consultation.transcribe"


@job_task(TRANSCRIBE_JOB)
def transcribe_job(ctx: JobContext, consultation_id: str) -> dict[str, Any]:
    """Job: transcribe one consultation and draft its note; progress follows the recording."""
    ctx.progress(1, "Loading the speech model")
    return service.run_transcription(
        uuid.UUID(consultation_id), lambda done, message: ctx.progress(int(2 + 95 * done), message)
    )
