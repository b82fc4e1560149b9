"""PLACEHOLDER (being written this session)."""

from fastapi import APIRouter

router = APIRouter()
