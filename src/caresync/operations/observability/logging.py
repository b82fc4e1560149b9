"""Structured logs: one JSON object per line, with no request bodies, query strings or patient data.

``CARESYNC_LOG_FORMAT=text`` (the default) keeps uvicorn's usual lines; ``json`` switches every logger of
the web and worker processes to :class:`JsonFormatter`. Each line carries the time (UTC), level, logger and
message, the request id of the request being served (also sent back as the ``X-Request-ID`` header), and
for errors the exception's type and the frames it passed through, but never the exception's message
(database errors quote the values they refused). Access lines, and any message quoting the request's path,
name the route template (``/api/v1/patients/{patient_id}``), not the raw path with its ids; query strings
are dropped everywhere.
"""

from __future__ import annotations

import copy
import json
import logging
import logging.config
import re
import traceback
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from caresync.config import Settings


@dataclass
class RequestContext:
    """The request being served, for the log lines emitted meanwhile (set by ``RequestMetrics``): its id,
    its raw path, and once routed the route template that replaces the path in messages."""

    request_id: str
    path: str = ""
    route: str | None = None

    def redact(self, message: str) -> str:
        """``message`` with this request's raw path (which may hold ids) replaced by its route template."""
        if self.route and len(self.path) > 1:
            return message.replace(self.path, self.route)
        return message


current_request: ContextVar[RequestContext | None] = ContextVar("caresync_request", default=None)

# ``?name=value…`` right after a non-space character: a URL's query string, wherever it appears in a message.
_QUERY_STRING = re.compile(r"(?<=\S)\?[^\s\"'?]*=[^\s\"']*")
_ACCESS_LOGGER = "uvicorn.access"
_ACCESS_ARGS = 5  # uvicorn: client address, method, path with query, HTTP version, status
STACK_FRAMES = 20  # the innermost frames of an exception's traceback that a line keeps


def strip_query_strings(text: str) -> str:
    """``text`` with every URL query string (``?a=b&c=d``) removed."""
    return _QUERY_STRING.sub("", text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON: ``time``, ``level``, ``logger``, ``message``, and when known
    ``request_id``; access lines add ``method``, ``route``, ``status`` and ``client``; errors add
    ``exc_type`` and ``stack`` (the innermost ``file:line in function`` frames, without the exception's
    message)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON object on one line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        context = current_request.get()
        if context is not None:
            entry["request_id"] = context.request_id
        args = record.args
        if record.name == _ACCESS_LOGGER and isinstance(args, tuple) and len(args) == _ACCESS_ARGS:
            entry.update(_access_fields(args, context))
        else:
            message = strip_query_strings(record.getMessage().rstrip())
            entry["message"] = context.redact(message) if context is not None else message
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _exc, tb = record.exc_info
            entry["exc_type"] = _qualified_name(exc_type)
            frames = traceback.extract_tb(tb)[-STACK_FRAMES:]
            entry["stack"] = [f"{f.filename}:{f.lineno} in {f.name}" for f in frames]
        return json.dumps(entry, ensure_ascii=False, default=str)


def _access_fields(args: tuple[Any, ...], context: RequestContext | None) -> dict[str, Any]:
    client, method, path, _http_version, status = args
    route = context.route if context and context.route else str(path).split("?", 1)[0]
    return {
        "message": f"{method} {route} {status}",
        "method": method,
        "route": route,
        "status": status,
        "client": client,
    }


def _qualified_name(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary for ``settings.log_format``: uvicorn's own for ``text``,
    JSON lines on stderr for every logger for ``json``. Pass it to ``uvicorn.run(log_config=...)``, which
    applies it in each web process (``--workers`` starts fresh processes that do not inherit it)."""
    if settings.log_format != "json":
        from uvicorn.config import LOGGING_CONFIG

        return copy.deepcopy(LOGGING_CONFIG)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["json"], "level": "INFO"},
        "loggers": {
            # uvicorn's loggers hand their records to the root handler instead of their own.
            name: {"handlers": [], "level": "INFO", "propagate": True}
            for name in ("uvicorn", "uvicorn.error", _ACCESS_LOGGER)
        },
    }


def configure_logging(settings: Settings) -> None:
    """Apply ``settings.log_format`` to this process (the worker; the web server gets
    :func:`logging_config` through uvicorn). ``text`` leaves logging as it is."""
    if settings.log_format == "json":
        logging.config.dictConfig(logging_config(settings))
