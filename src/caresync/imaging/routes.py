"""The imaging AI API and page routers (imported here so ``caresync.app`` names one module)."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every router of the imaging domain."""
    from caresync.imaging.registry import api as registry_api
    from caresync.imaging.registry import pages as registry_pages
    from caresync.imaging.studies import api as studies_api
    from caresync.imaging.studies import pages as studies_pages

    return [module.router for module in (registry_api, studies_api, registry_pages, studies_pages)]
