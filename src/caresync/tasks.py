"""Imports every module that declares jobs, so a worker knows all task names."""

from __future__ import annotations

import importlib

JOB_MODULES = ("caresync.core.notify", "caresync.core.audit")


def load_all() -> None:
    """Import the modules that register Huey tasks."""
    for name in JOB_MODULES:
        importlib.import_module(name)
