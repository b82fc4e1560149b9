"""Rate limiting: the ``RateLimit`` ASGI middleware and the counters behind it.

What is limited (each limit a ``CARESYNC_RATE_LIMIT_*`` setting, written ``N/second|minute|hour|day``):

* every request under ``/api/`` and ``/fhir/``, per client address (``rate_limit_api``);
* sign-in, registration, password-reset requests (API and web forms), per client address *and* per account,
  the account being the ``email`` of the JSON or form body, read as the app reads it and replayed to it
  (``rate_limit_login``, ``rate_limit_register``, ``rate_limit_password_reset``); such a body larger than
  16 KiB is refused (413), since it could not be read to count its account;
* authentication-code (TOTP / recovery code) checks, API and web, per client address *and* per account, the
  account being the sign-in session the code is for (its bearer token or session cookie; each new session
  needs a sign-in, itself limited per account, and the account lockout also counts wrong codes)
  (``rate_limit_otp``).

The health, readiness and metrics probes and static files are never limited.

Algorithm: **fixed windows** aligned on the clock (a ``10/minute`` window is 12:00:00-12:00:59, the next
starts at 12:01:00). Each (limit, address or account, window) has a counter, incremented by every request
it applies to; a request that takes any of its counters past the limit is answered 429 with ``Retry-After``
set to the seconds left in the window. A fixed window lets a client spend its allowance at the end of one
window and again at the start of the next (at most twice the limit in a short burst); that is the price of
one counter per key instead of one entry per request.

Backends: Redis when ``CARESYNC_REDIS_URL`` is set (``INCR`` + ``EXPIRE`` in one ``MULTI``/``EXEC``
transaction, so every web process shares the counters; should Redis fail, the process falls back to its own
counters and logs a warning rather than refusing everybody), else an in-process store (thread-safe, expired
counters swept out, a hard cap on its size). Keys never hold personal data: the address and the email or
session token are HMACs under the server's secret key.

Responses: ``application/problem+json`` (the app's :class:`~caresync.core.errors.TooManyAttempts` body, with
``retry_after``); browser form posts (not under ``/api/``, accepting HTML) get the app's error page instead.
Both carry ``Retry-After``.

Limit strings are checked when the settings load (``config.Settings``): a bad one stops the server, the
worker and the CLI at start, naming the variable, rather than surfacing on the first request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caresync.config import Settings, get_settings
from caresync.core import crypto
from caresync.core.errors import DomainError, TooLarge, TooManyAttempts

log = logging.getLogger(__name__)

UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
RATE_PATTERN = re.compile(r"\s*(\d+)\s*/\s*(second|minute|hour|day)s?\s*", re.IGNORECASE)
KEY_PREFIX = "caresync:ratelimit:"
API_PREFIXES = ("/api/", "/fhir/")  # the general per-address limit (``rate_limit_api``) covers both APIs
NEVER_LIMITED = frozenset({"/api/v1/health", "/healthz", "/readyz", "/metrics"})
STATIC_PREFIX = "/static/"
MAX_PEEK_BYTES = 16 * 1024  # sign-in and registration bodies are far smaller; larger ones are refused (413)
SESSION_COOKIE = "caresync_session"  # the browser session cookie (``web.deps.SESSION_COOKIE``)
PROBLEM_JSON = "application/problem+json"


class RateLimitConfigError(ValueError):
    """A ``CARESYNC_RATE_LIMIT_*`` setting is not a valid limit."""


@dataclass(frozen=True)
class Rate:
    """At most ``limit`` requests per ``period`` seconds."""

    limit: int
    period: int


def parse_rate(text: str, setting: str = "rate limit") -> Rate:
    """Parse ``"N/second|minute|hour|day"`` (case and spaces ignored, plural accepted) into a :class:`Rate`.

    Raises :class:`RateLimitConfigError` naming ``setting`` for anything else, or for ``N`` < 1."""
    match = RATE_PATTERN.fullmatch(text)
    if not match or int(match.group(1)) < 1:
        raise RateLimitConfigError(
            f"{setting} = {text!r} is not a rate limit: write N/second, N/minute, N/hour or N/day "
            "with N at least 1, e.g. 10/minute"
        )
    return Rate(limit=int(match.group(1)), period=UNIT_SECONDS[match.group(2).lower()])


# --- counters -----------------------------------------------------------------------------------------------


class Counters(Protocol):
    """Where the window counters live."""

    async def increment(self, keys: list[tuple[str, float]], now: float) -> list[int]:
        """Add one to each ``(key, seconds the key must live)``; return the new counts, in order."""
        ...


class MemoryCounters:
    """Counters in this process: thread-safe, expired ones swept out at most every ``sweep_seconds`` (and
    whenever the store is full), and never more than ``max_keys`` (past that, the counters closest to their
    end are dropped first: they would reset soonest anyway)."""

    def __init__(self, max_keys: int = 50_000, sweep_seconds: float = 60.0) -> None:
        self.max_keys = max_keys
        self.sweep_seconds = sweep_seconds
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def __len__(self) -> int:
        return len(self._counts)

    async def increment(self, keys: list[tuple[str, float]], now: float) -> list[int]:
        """Add one to each key (see :class:`Counters`)."""
        return self.increment_now(keys, now)

    def increment_now(self, keys: list[tuple[str, float]], now: float) -> list[int]:
        """The synchronous increment (callable from any thread)."""
        counts = []
        with self._lock:
            if now >= self._next_sweep or len(self._counts) + len(keys) > self.max_keys:
                self._sweep(now)
            for key, ttl in keys:
                count, expires = self._counts.get(key, (0, 0.0))
                if expires <= now:
                    count, expires = 0, now + ttl
                self._counts[key] = (count + 1, expires)
                counts.append(count + 1)
        return counts

    def _sweep(self, now: float) -> None:
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        excess = len(self._counts) - self.max_keys * 9 // 10  # leave room, so that sweeps stay rare
        if excess > 0:
            for key in sorted(self._counts, key=lambda k: self._counts[k][1])[:excess]:
                del self._counts[key]
        self._next_sweep = now + self.sweep_seconds


class RedisCounters:
    """Counters in Redis, shared by every web process: ``INCR`` and ``EXPIRE`` for all of a request's keys
    in one ``MULTI``/``EXEC`` round trip. If Redis fails, this process counts on its own until it is back."""

    def __init__(self, url: str, fallback: MemoryCounters | None = None) -> None:
        self.url = url
        self.fallback = fallback or MemoryCounters()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._warned_at = -math.inf

    def _client(self) -> Any:
        """One client per event loop (an asyncio connection belongs to the loop that opened it)."""
        import redis.asyncio as aioredis

        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = aioredis.Redis.from_url(
                self.url, socket_timeout=1.0, socket_connect_timeout=1.0
            )
        return self._clients[loop]

    async def increment(self, keys: list[tuple[str, float]], now: float) -> list[int]:
        """Add one to each key (see :class:`Counters`)."""
        import redis

        try:
            async with self._client().pipeline(transaction=True) as pipe:
                for key, ttl in keys:
                    pipe.incr(key)
                    pipe.expire(key, math.ceil(ttl) + 1)
                replies = await pipe.execute()
        except (redis.RedisError, OSError):
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("Redis is unreachable: rate limits are counted per web process", exc_info=True)
            return self.fallback.increment_now(keys, now)
        return [int(count) for count in replies[::2]]


# --- what is limited ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A limit on some routes: per address, plus per account (``email`` from the body, or the ``session``
    credential the request carries) when ``account`` is set."""

    name: str
    setting: str
    routes: frozenset[tuple[str, str]]
    account: Literal["email", "session"] | None
    what: str  # completes "Too many … from this address …"


API_RULE = Rule("api", "rate_limit_api", frozenset(), None, "requests")
AUTH_RULES = (
    Rule(
        "login",
        "rate_limit_login",
        frozenset({("POST", "/api/v1/auth/login"), ("POST", "/login")}),
        "email",
        "sign-in attempts",
    ),
    Rule(
        "register",
        "rate_limit_register",
        frozenset({("POST", "/api/v1/auth/register"), ("POST", "/register")}),
        "email",
        "registrations",
    ),
    Rule(
        "password_reset",
        "rate_limit_password_reset",
        frozenset({("POST", "/api/v1/auth/password/reset-request"), ("POST", "/password/forgot")}),
        "email",
        "password reset requests",
    ),
    Rule(
        "otp",
        "rate_limit_otp",
        frozenset(
            {
                ("POST", "/api/v1/auth/mfa/challenge"),
                ("POST", "/api/v1/auth/mfa/verify"),
                ("POST", "/login/mfa"),
                ("POST", "/account/mfa"),
            }
        ),
        "session",
        "authentication code attempts",
    ),
)


@dataclass(frozen=True)
class Check:
    """One counter a request increments: the rule, its rate, and whose counter (``address``/``account``)."""

    rule: Rule
    rate: Rate
    subject: Literal["address", "account"]
    identity: str  # an HMAC, never the address or email itself


def load_rates(settings: Settings) -> dict[str, Rate]:
    """Every rule's :class:`Rate` from the settings; raises :class:`RateLimitConfigError` on a bad one."""
    return {
        rule.name: parse_rate(getattr(settings, rule.setting), f"CARESYNC_{rule.setting.upper()}")
        for rule in (API_RULE, *AUTH_RULES)
    }


def client_address(scope: Scope) -> str:
    """The caller's address (uvicorn has applied trusted proxy headers). IPv6 callers are counted by their
    /64 network, which a single site normally holds whole."""
    client = scope.get("client")
    host = str(client[0]) if client else "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _session_credential(scope: Scope) -> str:
    headers = Headers(scope=scope)
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return Request(scope).cookies.get(SESSION_COOKIE, "")


async def email_from_body(scope: Scope, body: bytes) -> str:
    """The ``email`` the app will read from this body, normalised; empty if there is none. Forms (URL-encoded
    or multipart) are parsed by Starlette's own parser, as the pages do (the last of repeated fields wins);
    anything else is tried as JSON (a body the app then refuses for its content type still counts)."""
    content_type = Headers(scope=scope).get("content-type", "")
    value: Any = None
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):

        async def once() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(scope, once).form()
        except Exception:  # a malformed form: the app refuses it too
            return ""
        value = form.get("email")
        await form.close()
    else:
        try:
            data = json.loads(body)
        except ValueError:
            return ""
        value = data.get("email") if isinstance(data, dict) else None
    return value.strip().lower() if isinstance(value, str) else ""


async def peek_body(receive: Receive, limit: int = MAX_PEEK_BYTES) -> tuple[bytes | None, Receive]:
    """Read the request body without taking it from the app: returns the body (``None`` if it is larger
    than ``limit`` or the client went away) and a ``receive`` that replays what was read, then carries on
    with the original."""
    messages: list[Message] = []
    body = b""
    complete = False
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if len(body) > limit:
            break
        if not message.get("more_body", False):
            complete = True
            break
    pending = deque(messages)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return (body if complete else None), replay


def wait_text(seconds: int) -> str:
    """``42 seconds``, ``1 minute``, ``15 minutes``, ``2 hours``: how long to wait, rounded up."""
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    amount, unit = math.ceil(seconds / 60), "minute"
    if amount >= 60:
        amount, unit = math.ceil(seconds / 3600), "hour"
    return f"{amount} {unit}{'s' if amount > 1 else ''}"


# --- the middleware -----------------------------------------------------------------------------------------


class RateLimit:
    """ASGI middleware enforcing the limits above (see the module docstring).

    ``clock`` gives the time in seconds (tests inject one); ``counters`` overrides the backend chosen from
    the settings (Redis when ``redis_url`` is set, else in-process)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        clock: Callable[[], float] = time.time,
        counters: Counters | None = None,
    ) -> None:
        self.app = app
        self.clock = clock
        settings = get_settings()
        self.enabled = settings.rate_limit_enabled
        self.rates = load_rates(settings)  # valid: the settings checked them
        self.routes = {route: rule for rule in AUTH_RULES for route in rule.routes}
        self.counters: Counters = counters or (
            RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
        )
        self._secret = settings.secret("secret_key") if self.enabled else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"].rstrip("/") or "/"
        if path in NEVER_LIMITED or path.startswith(STATIC_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            checks, receive = await self._checks(scope, receive, path)
        except TooLarge as exc:
            await self._refuse(scope, exc)(scope, receive, send)
            return
        if checks:
            broken = await self._over_limit(checks)
            if broken is not None:
                check, seconds = broken
                subject = "from this address" if check.subject == "address" else "for this account"
                detail = f"Too many {check.rule.what} {subject}. Try again in {wait_text(seconds)}."
                error = TooManyAttempts(detail, extra={"retry_after": seconds})
                await self._refuse(scope, error, {"Retry-After": str(seconds)})(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _checks(self, scope: Scope, receive: Receive, path: str) -> tuple[list[Check], Receive]:
        """The counters this request increments (and a ``receive`` replaying the body if it was read)."""
        checks: list[Check] = []
        address = self._identity("address", client_address(scope))
        if path.startswith(API_PREFIXES):
            checks.append(Check(API_RULE, self.rates[API_RULE.name], "address", address))
        rule = self.routes.get((scope["method"], path))
        if rule is None:
            return checks, receive
        rate = self.rates[rule.name]
        checks.append(Check(rule, rate, "address", address))
        account = ""
        if rule.account == "session":
            account = _session_credential(scope)
        elif rule.account == "email":
            declared = Headers(scope=scope).get("content-length", "")
            body = None
            if not (declared.isdigit() and int(declared) > MAX_PEEK_BYTES):
                body, receive = await peek_body(receive)
            if body is None:  # unread, the account would go uncounted: refuse instead
                raise TooLarge(
                    f"The request is larger than {MAX_PEEK_BYTES // 1024} KiB, far more than any sign-in, "
                    "registration or password reset needs."
                )
            account = await email_from_body(scope, body)
        if account:
            checks.append(Check(rule, rate, "account", self._identity(rule.account or "", account)))
        return checks, receive

    def _identity(self, kind: str, value: str) -> str:
        return crypto.hmac_hex(self._secret, f"ratelimit:{kind}:{value}")[:32]

    async def _over_limit(self, checks: list[Check]) -> tuple[Check, int] | None:
        """Count this request; the check it failed and the seconds until that window ends, if any."""
        now = self.clock()
        keys = []
        for check in checks:
            window = int(now // check.rate.period)
            ttl = (window + 1) * check.rate.period - now
            keys.append((f"{KEY_PREFIX}{check.rule.name}:{check.subject}:{check.identity}:{window}", ttl))
        counts = await self.counters.increment(keys, now)
        broken = [
            (check, ttl) for check, (_, ttl), count in zip(checks, keys, counts, strict=True)
            if count > check.rate.limit
        ]  # fmt: skip
        if not broken:
            return None
        check, ttl = max(broken, key=lambda item: item[1])
        return check, max(1, math.ceil(ttl))

    def _refuse(self, scope: Scope, error: DomainError, headers: dict[str, str] | None = None) -> Response:
        """The error answer: the app's error page for browser form posts, an OperationOutcome on the FHIR
        API, else problem+json."""
        request = Request(scope)
        if request.url.path.startswith("/fhir/"):
            from caresync.fhir.api import fhir_response  # imported late: core loads first
            from caresync.fhir.outcome import for_error

            return fhir_response(for_error(error), error.status, headers)
        if not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", ""):
            from caresync.web.pagekit import (
                error_page,
            )  # the app's error page; imported late: core loads first

            page = error_page(request, error.status, error.title, error.detail)
            page.headers.update(headers or {})
            return page
        body = error.problem(instance=request.url.path)
        return JSONResponse(body, status_code=error.status, media_type=PROBLEM_JSON, headers=headers)
