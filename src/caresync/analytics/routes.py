"""The analytics API and page routers (imported here so ``caresync.app`` names one module)."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """Every router of the analytics domain."""
    from caresync.analytics.blood import api as blood_api
    from caresync.analytics.blood import pages as blood_pages
    from caresync.analytics.dashboards import pages as dashboard_pages
    from caresync.analytics.encounters import api as encounters_api
    from caresync.analytics.encounters import pages as encounters_pages
    from caresync.analytics.forecasting import api as forecasting_api
    from caresync.analytics.reports import api as reports_api
    from caresync.analytics.reports import pages as reports_pages
    from caresync.analytics.risk import api as risk_api
    from caresync.analytics.risk import pages as risk_pages
    from caresync.analytics.statistics import api as statistics_api

    apis = (encounters_api, statistics_api, forecasting_api, risk_api, reports_api, blood_api)
    pages = (encounters_pages, risk_pages, dashboard_pages, reports_pages, blood_pages)
    return [module.router for module in (*apis, *pages)]
