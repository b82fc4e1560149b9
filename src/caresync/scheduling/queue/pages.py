"""Clinic queue pages: the nurse console and the waiting-room board."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
