"""Every blood bank router, in the order the app includes them."""

from __future__ import annotations

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    """The blood bank's API and page routers (imported here so ``caresync.app`` names one module)."""
    from caresync.bloodbank.alerts import api as alerts_api
    from caresync.bloodbank.alerts import pages as alerts_pages
    from caresync.bloodbank.donors import api as donors_api
    from caresync.bloodbank.donors import pages as donors_pages
    from caresync.bloodbank.inventory import api as inventory_api
    from caresync.bloodbank.inventory import pages as inventory_pages
    from caresync.bloodbank.network import api as network_api
    from caresync.bloodbank.network import pages as network_pages
    from caresync.bloodbank.policy import api as policy_api
    from caresync.bloodbank.policy import pages as policy_pages
    from caresync.bloodbank.reports import api as reports_api
    from caresync.bloodbank.reports import pages as reports_pages
    from caresync.bloodbank.requests import api as requests_api
    from caresync.bloodbank.requests import pages as requests_pages

    apis = (policy_api, inventory_api, donors_api, requests_api, network_api, alerts_api, reports_api)
    pages = (policy_pages, inventory_pages, donors_pages, requests_pages, network_pages, alerts_pages)
    return [module.router for module in (*apis, *pages, reports_pages)]
