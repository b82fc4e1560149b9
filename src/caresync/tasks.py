"""Imports every module that declares jobs, so a worker knows all task names."""

from __future__ import annotations

import importlib

JOB_MODULES = (
    "caresync.core.notify",
    "caresync.core.audit",
    "caresync.scheduling.jobs",
    "caresync.scheduling.queue.jobs",
    "caresync.prescriptions.adherence.jobs",
    "caresync.operations.backup.jobs",
    "caresync.identity.credentials.jobs",
    "caresync.bloodbank.inventory.jobs",
    "caresync.bloodbank.donors.jobs",
    "caresync.bloodbank.alerts.jobs",
    "caresync.bloodbank.network.jobs",
    "caresync.analytics.forecasting.jobs",
    "caresync.analytics.risk.jobs",
    "caresync.analytics.reports.jobs",
    "caresync.documents.scans.jobs",
    "caresync.documents.consultations.jobs",
    "caresync.documents.search.jobs",
    "caresync.imaging.studies.jobs",
)


def load_all() -> None:
    """Import the modules that register Huey tasks, and every table (a job's rows reference tables of
    other modules, which SQLAlchemy must know to resolve foreign keys)."""
    importlib.import_module("caresync.models")
    for name in JOB_MODULES:
        importlib.import_module(name)
