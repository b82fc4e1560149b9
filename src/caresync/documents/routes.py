"""The document AI API and page routers (imported here so ``caresync.app`` names one module)."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every router of the documents domain."""
    from caresync.documents.consultations import api as consultations_api
    from caresync.documents.consultations import pages as consultations_pages
    from caresync.documents.scans import api as scans_api
    from caresync.documents.scans import pages as scans_pages

    return [scans_api.router, consultations_api.router, scans_pages.router, consultations_pages.router]
