"""The document AI API and page routers (imported here so ``caresync.app`` names one module)."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every router of the documents domain."""
    from caresync.documents.consultations import api as consultations_api
    from caresync.documents.consultations import pages as consultations_pages
    from caresync.documents.scans import api as scans_api
    from caresync.documents.scans import pages as scans_pages
    from caresync.documents.search import api as search_api
    from caresync.documents.search import pages as search_pages

    apis = (scans_api, consultations_api, search_api)
    pages = (scans_pages, consultations_pages, search_pages)
    return [module.router for module in (*apis, *pages)]
