"""Application-wide behaviour: what the access log may show."""

from __future__ import annotations

import logging

from caresync.app import RedactSecretPaths


def test_access_log_lines_do_not_carry_feed_tokens() -> None:
    line = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/calendar/s3cr3t-t0ken.ics", "1.1", 200),
        None,
    )
    assert RedactSecretPaths().filter(line)
    assert "s3cr3t" not in line.getMessage()
    assert "/calendar/…" in line.getMessage()
    other = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/doctors", "1.1", 200),
        None,
    )
    RedactSecretPaths().filter(other)
    assert "/doctors" in other.getMessage()
