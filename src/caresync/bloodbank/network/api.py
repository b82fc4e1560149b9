"""Placeholder: the network API router (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1/bloodbank", tags=["blood bank"])
