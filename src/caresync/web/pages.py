"""HTML pages (placeholder while the shell is built)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


def error_page(request: Request, status: int, title: str, detail: str, **_extra: object) -> HTMLResponse:
    """An error as HTML."""
    return HTMLResponse(f"<h1>{title}</h1><p>{detail}</p>", status_code=status)
