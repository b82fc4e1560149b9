"""The schemathesis set-up the fuzz modules share: derandomized settings and schema loaders."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings for a fuzz run: derandomized (every run sends the same requests), no deadline,
    no example database, ``max_examples`` random cases per operation."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def load_schema(app: Any, path: str, *, coverage: bool = True) -> Any:
    """The OpenAPI schema served at ``path``, fuzzed in-process over ASGI.

    ``coverage=False`` leaves out the coverage phase's boundary cases (hundreds per operation): right for a
    run without a token, where every operation stops at the 401 whatever the parameters.
    """
    schema = schemathesis.openapi.from_asgi(path, app)
    # Requests normally take milliseconds, but a loaded CI machine stalls now and then for seconds (seen:
    # >10 s, schemathesis's default timeout); a timeout here would be a false alarm, not a finding.
    schema.config.update(request_timeout=120)
    schema.config.phases.coverage.enabled = coverage
    return schema
