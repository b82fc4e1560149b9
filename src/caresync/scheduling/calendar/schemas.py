"""Response models for calendar feeds."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CalendarFeedOut(BaseModel):
    """An active calendar feed. Its URL is shown only once, when it is created."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime


class CalendarFeedCreatedOut(CalendarFeedOut):
    """A new feed with its private subscription URLs: shown only now, so keep them like a password."""

    url: str = Field(description="The feed's address; paste it into a calendar app's 'subscribe' form")
    webcal_url: str = Field(description="The same address as webcal://, which opens the calendar app")
