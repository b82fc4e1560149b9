"""HTTP API of this area (being written)."""

from fastapi import APIRouter

router = APIRouter(tags=["analytics"])
