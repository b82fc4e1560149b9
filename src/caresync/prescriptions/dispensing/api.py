"""Placeholder: the helper building this module replaces it."""

from fastapi import APIRouter

router = APIRouter(tags=["stub"])
