"""The imaging analysis job (see :func:`caresync.imaging.studies.service.run_analysis`)."""

from __future__ import annotations

import uuid
from typing import Any

from caresync.core.jobs import JobContext, huey, job_task
from caresync.imaging.studies import service

ANALYSIS_JOB = "imaging.analysis"


@huey.on_startup()
def warm_up() -> None:
    """Import what an analysis needs (PyTorch, MONAI's Grad-CAM: seconds) when a worker starts, so that the
    first analysis does not wait for it. ``caresync serve`` calls it too when it runs jobs itself."""
    import monai.visualize  # noqa: F401

    from caresync.imaging import inference  # noqa: F401


@job_task(ANALYSIS_JOB)
def analysis_job(ctx: JobContext, analysis_id: str) -> dict[str, Any]:
    """Job: analyse one study with the model version it was pinned to; progress names each step."""
    return service.run_analysis(uuid.UUID(analysis_id), ctx.progress)
