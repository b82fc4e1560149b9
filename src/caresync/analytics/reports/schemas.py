"""Request shapes of the reports API (the answer is a job: :class:`caresync.web.api.JobOut`)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReportIn(BaseModel):
    """Which report to make. Everything is optional: your role's report of your organisation over the last
    52 weeks."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["admin", "doctor", "nurse"] | None = Field(
        default=None,
        description="the report; default: your role's (admins: admin or nurse; doctors and "
        "nurses: doctor or nurse)",
    )
    organisation_id: uuid.UUID | None = Field(default=None, description="one organisation of your scope")
    start: date | None = Field(default=None, description="first day (UTC); default: 364 days before `end`")
    end: date | None = Field(default=None, description="last day (UTC), included; default: today")
