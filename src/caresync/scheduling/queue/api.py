"""Clinic queue endpoints under ``/api/v1/scheduling/queue``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/scheduling/queue", tags=["queue"])
