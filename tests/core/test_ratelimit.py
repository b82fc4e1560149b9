"""Rate limiting (``caresync.core.ratelimit``): 429 with ``Retry-After`` past each limit, per client address
and per account, windows that reset, probes and static files never limited, the off switch, the in-process
store's bounds, the limit strings, and the Redis backend shared by two app instances.

The rest of the suite runs with ``CARESYNC_RATE_LIMIT_ENABLED=0``; these tests build their own app with
limiting on, a fake clock and (optionally) their own counters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.middleware import Middleware
from starlette.types import Message

from caresync.core.ratelimit import (
    KEY_PREFIX,
    MemoryCounters,
    Rate,
    RateLimit,
    RateLimitConfigError,
    RedisCounters,
    client_address,
    email_from_body,
    parse_rate,
    peek_body,
    wait_text,
)
from tests.conftest import API, PASSWORD, run_coroutine
from tests.core.test_redis import _free_port, redis_url  # noqa: F401 (the session's redis-server fixture)

VENV_BIN = Path(sys.executable).parent
START = 86400.0 * 19_500 + 5  # 5 s into a day (and so into an hour and a minute): 55 s left in a minute
LOGIN = f"{API}/auth/login"
HOME = ("10.0.0.1", 40000)
AWAY = ("10.0.0.2", 40000)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Build = Callable[..., TestClient]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(settings_env: Any, clock: Clock) -> Iterator[Build]:
    """``limited(client=(host, port), counters=None, **settings)``: a client of a fresh app with rate
    limiting on, the fake clock, and the given ``rate_limit_*`` settings."""
    from caresync.app import create_app

    apps: dict[int, Any] = {}
    clients: list[TestClient] = []

    def build(
        client: tuple[str, int] = HOME, counters: Any = None, app_id: int = 0, **settings: Any
    ) -> TestClient:
        if app_id not in apps:
            settings_env(**{"rate_limit_enabled": "1", **settings})
            app = create_app()
            app.user_middleware = [
                Middleware(RateLimit, clock=clock, counters=counters) if m.cls is RateLimit else m
                for m in app.user_middleware
            ]
            apps[app_id] = app
        test_client = TestClient(apps[app_id], client=client)
        clients.append(test_client.__enter__())
        return test_client

    yield build
    for test_client in clients:
        test_client.__exit__(None, None, None)


def login_attempt(client: TestClient, email: str) -> Any:
    return client.post(LOGIN, json={"email": email, "password": "Wrong-Password-123"})


def assert_429(response: Any, retry_after: int, *phrases: str) -> dict[str, Any]:
    """A problem+json 429 with ``Retry-After``; returns the body."""
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == str(retry_after)
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == "https://caresync.dev/problems/too-many-attempts"
    assert body["title"] == "Too many attempts"
    assert body["status"] == 429
    assert body["retry_after"] == retry_after
    for phrase in phrases:
        assert phrase in body["detail"]
    return body


# --- limit strings ------------------------------------------------------------------------------------------


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/minute", Rate(10, 60)),
        ("1/second", Rate(1, 1)),
        ("5/hour", Rate(5, 3600)),
        ("100/day", Rate(100, 86400)),
        (" 7 / Minutes ", Rate(7, 60)),
        ("600/MINUTE", Rate(600, 60)),
    ],
    ids=["minute", "second", "hour", "day", "spaces-plural", "upper-case"],
)
def test_parse_rate(text: str, expected: Rate) -> None:
    assert parse_rate(text) == expected


@pytest.mark.no_db
@pytest.mark.parametrize(
    "text",
    ["", "10", "0/minute", "-1/minute", "10/fortnight", "ten/minute", "10/minute/x", "1.5/minute", "/minute"],
    ids=["empty", "no-unit", "zero", "negative", "unknown-unit", "words", "extra", "fraction", "no-number"],
)
def test_parse_rate_rejects_bad_values_naming_the_setting(text: str) -> None:
    with pytest.raises(RateLimitConfigError, match=r"CARESYNC_RATE_LIMIT_LOGIN = .* e\.g\. 10/minute"):
        parse_rate(text, "CARESYNC_RATE_LIMIT_LOGIN")


def test_a_bad_limit_fails_when_the_settings_load_with_the_setting_named(settings_env: Any) -> None:
    message = r"CARESYNC_RATE_LIMIT_OTP = '10/fortnight' is not a rate limit"
    with pytest.raises(ValidationError, match=message):
        settings_env(rate_limit_enabled="0", rate_limit_otp="10/fortnight")  # checked even when switched off


def test_the_server_refuses_to_start_with_a_bad_limit(var_dir: Path) -> None:
    env = {**os.environ, "CARESYNC_RATE_LIMIT_ENABLED": "1", "CARESYNC_RATE_LIMIT_API": "lots"}
    server = subprocess.run(  # noqa: S603 (our own venv's caresync command)
        [str(VENV_BIN / "caresync"), "serve", "--port", str(_free_port())],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    output = server.stderr.decode(errors="replace")
    assert server.returncode != 0, output
    assert "CARESYNC_RATE_LIMIT_API = 'lots' is not a rate limit" in output


# --- sign-in: per address, per account, windows -------------------------------------------------------------


def test_login_is_limited_per_address_across_accounts(limited: Build) -> None:
    client = limited(rate_limit_login="3/minute")
    for email in ("a@test.caresync.dev", "b@test.caresync.dev", "c@test.caresync.dev"):
        assert login_attempt(client, email).status_code == 401
    assert_429(login_attempt(client, "d@test.caresync.dev"), 55, "sign-in attempts from this address")
    other_address = limited(client=AWAY)
    assert login_attempt(other_address, "d@test.caresync.dev").status_code == 401


def test_login_is_limited_per_account_across_addresses(limited: Build) -> None:
    home = limited(rate_limit_login="3/minute")
    away = limited(client=AWAY)
    victim = "victim@test.caresync.dev"
    assert login_attempt(home, victim).status_code == 401
    assert login_attempt(home, victim).status_code == 401
    assert login_attempt(away, victim.upper()).status_code == 401  # the same account, however it is spelled
    body = assert_429(login_attempt(away, victim), 55, "sign-in attempts for this account")
    assert victim not in str(body)
    assert login_attempt(away, "someone-else@test.caresync.dev").status_code == 401  # the address is fine


def test_the_window_resets(limited: Build, clock: Clock) -> None:
    client = limited(rate_limit_login="2/minute")
    for _ in range(2):
        assert login_attempt(client, "x@test.caresync.dev").status_code == 401
    clock.now += 30
    assert_429(login_attempt(client, "x@test.caresync.dev"), 25)
    clock.now += 24.5  # still in the same minute: half a second left rounds up to 1
    assert_429(login_attempt(client, "x@test.caresync.dev"), 1)
    clock.now += 0.5  # the next minute
    assert login_attempt(client, "x@test.caresync.dev").status_code == 401


def test_a_limited_login_still_reads_its_body(limited: Build, make: Any) -> None:
    """The middleware reads the email without taking the body from the app: sign-in works."""
    patient = make.patient_user()
    client = limited(rate_limit_login="3/minute")
    response = client.post(LOGIN, json={"email": patient.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    me = client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"})
    assert me.json()["email"] == patient.email


def test_the_web_login_form_gets_a_readable_page(limited: Build, make: Any) -> None:
    patient = make.patient_user()
    client = limited(rate_limit_login="2/minute")
    form = {"email": patient.email, "password": PASSWORD}
    html = {"Accept": "text/html"}
    first = client.post("/login", data=form, headers=html, follow_redirects=False)
    assert first.status_code == 303, first.text  # signed in: the form body reached the page
    assert client.post("/login", data={**form, "password": "wrong-wrong-1"}, headers=html).status_code == 401
    refused = client.post("/login", data=form, headers=html, follow_redirects=False)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "55"
    assert refused.headers["content-type"].startswith("text/html")
    assert "Too many sign-in attempts" in refused.text
    assert "Try again in 55 seconds." in refused.text
    assert refused.headers["x-frame-options"] == "DENY"  # still inside the security-headers middleware


# --- registration, password reset, authentication codes -----------------------------------------------------

AUTH_ENDPOINTS = {
    "api-register": (f"{API}/auth/register", "json", "rate_limit_register", "registrations"),
    "web-register": ("/register", "form", "rate_limit_register", "registrations"),
    "api-reset": (
        f"{API}/auth/password/reset-request",
        "json",
        "rate_limit_password_reset",
        "password reset",
    ),
    "web-reset": ("/password/forgot", "form", "rate_limit_password_reset", "reset"),
}


@pytest.mark.parametrize("endpoint", list(AUTH_ENDPOINTS), ids=list(AUTH_ENDPOINTS))
def test_registration_and_reset_are_limited_per_address_and_account(limited: Build, endpoint: str) -> None:
    path, kind, setting, what = AUTH_ENDPOINTS[endpoint]
    home = limited(**{setting: "2/hour"})
    away = limited(client=AWAY)

    def post(client: TestClient, email: str) -> Any:
        body = {"email": email} if "reset" in endpoint else {"email": email, "full_name": "Ana Lima"}
        return client.post(path, json=body) if kind == "json" else client.post(path, data=body)

    assert post(home, "one@test.caresync.dev").status_code < 429
    assert post(home, "two@test.caresync.dev").status_code < 429
    assert_429(post(home, "three@test.caresync.dev"), 3595, what, "from this address")
    assert post(away, "one@test.caresync.dev").status_code < 429  # second try for this account
    assert_429(post(away, "one@test.caresync.dev"), 3595, what, "for this account")


OTP_ENDPOINTS = {
    "api-challenge": f"{API}/auth/mfa/challenge",
    "api-enrol-verify": f"{API}/auth/mfa/verify",
    "web-challenge": "/login/mfa",
    "web-enrol": "/account/mfa",
}


@pytest.mark.parametrize("path", list(OTP_ENDPOINTS.values()), ids=list(OTP_ENDPOINTS))
def test_authentication_codes_are_limited_per_address_and_session(limited: Build, path: str) -> None:
    home = limited(rate_limit_otp="2/minute")
    away = limited(client=AWAY)
    token_a, token_b = {"Authorization": "Bearer token-a"}, {"Authorization": "Bearer token-b"}
    assert home.post(path, json={"code": "123456"}, headers=token_a).status_code < 429
    assert home.post(path, json={"code": "123456"}, headers=token_b).status_code < 429
    assert_429(
        home.post(path, json={"code": "123456"}, headers=token_b), 55, "code attempts from this address"
    )
    assert away.post(path, json={"code": "123456"}, headers=token_a).status_code < 429
    assert_429(away.post(path, json={"code": "123456"}, headers=token_a), 55, "for this account")


def test_a_browser_session_cookie_is_the_account_for_codes(limited: Build) -> None:
    home = limited(rate_limit_otp="1/minute")
    away = limited(client=AWAY)
    home.cookies.set("caresync_session", "cookie-token")
    away.cookies.set("caresync_session", "cookie-token")
    assert home.post("/login/mfa", data={"code": "123456"}, follow_redirects=False).status_code < 429
    assert_429(away.post("/login/mfa", data={"code": "123456"}), 55, "for this account")


def test_a_real_mfa_sign_in_passes_under_the_limits(limited: Build, make: Any) -> None:
    from tests.conftest import login

    patient = make.patient_user(mfa=True)
    client = limited()
    headers = login(client, patient.email, PASSWORD)
    assert client.get(f"{API}/auth/me", headers=headers).json()["email"] == patient.email


# --- the general API limit and what is never limited --------------------------------------------------------


def test_the_api_is_limited_per_address(limited: Build) -> None:
    client = limited(rate_limit_api="5/minute")
    for _ in range(5):
        assert client.get(f"{API}/auth/me").status_code == 401
    assert_429(client.get(f"{API}/auth/me"), 55, "Too many requests from this address")
    assert_429(client.get(f"{API}/patients"), 55)
    assert limited(client=AWAY).get(f"{API}/auth/me").status_code == 401
    assert client.get("/login").status_code == 200  # pages are not under the API limit


def test_the_fhir_api_shares_the_api_limit_and_answers_an_operation_outcome(limited: Build) -> None:
    client = limited(rate_limit_api="3/minute")
    for _ in range(3):
        assert client.get("/fhir/R4/Patient").status_code == 401
    refused = client.get("/fhir/R4/Patient")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/fhir+json")
    assert refused.headers["retry-after"].isdigit()
    issue = refused.json()["issue"][0]
    assert issue["code"] == "throttled"
    assert "Too many requests from this address" in issue["diagnostics"]
    assert client.get(f"{API}/auth/me").status_code == 429  # one limit for both APIs


@pytest.mark.parametrize(
    "path",
    [f"{API}/health", "/healthz", "/readyz", "/metrics", "/static/favicon.svg"],
    ids=["api-health", "healthz", "readyz", "metrics", "static"],
)
def test_probes_and_static_files_are_never_limited(limited: Build, path: str) -> None:
    client = limited(rate_limit_api="2/minute")
    for _ in range(3):
        client.get(f"{API}/auth/me")
    assert client.get(f"{API}/auth/me").status_code == 429  # the address is over its limit …
    statuses = {client.get(path).status_code for _ in range(10)}
    assert 429 not in statuses  # … yet the probe answers every time
    assert statuses == {client.get(path).status_code}


def test_switched_off_nothing_is_limited(limited: Build) -> None:
    client = limited(rate_limit_enabled="0", rate_limit_api="1/minute", rate_limit_login="1/minute")
    statuses = {login_attempt(client, "x@test.caresync.dev").status_code for _ in range(5)}
    assert statuses == {401}


# --- the in-process store -----------------------------------------------------------------------------------


@pytest.mark.no_db
def test_memory_counters_sweep_expired_keys() -> None:
    counters = MemoryCounters(sweep_seconds=10)
    assert counters.increment_now([("a", 5), ("b", 50)], now=100) == [1, 1]
    assert counters.increment_now([("a", 5)], now=104) == [2]
    assert len(counters) == 2
    assert counters.increment_now([("c", 5)], now=106) == [1]  # "a" has expired but no sweep is due yet
    assert len(counters) == 3
    assert counters.increment_now([("a", 5)], now=110) == [1]  # a sweep: "a" (expired at 105) restarts
    assert len(counters) == 3  # "c" expired at 111, "b" at 150: both kept, "a" new
    counters.increment_now([("d", 5)], now=200)
    assert len(counters) == 1  # everything else had expired


@pytest.mark.no_db
def test_memory_counters_stay_bounded() -> None:
    counters = MemoryCounters(max_keys=100, sweep_seconds=3600)
    for i in range(1000):
        counters.increment_now([(f"k{i}", 10 + i)], now=0)
        assert len(counters) <= 100
    assert counters.increment_now([("k999", 1009)], now=0) == [2]  # the longest-lived counters survive


@pytest.mark.no_db
def test_memory_counters_are_thread_safe() -> None:
    counters = MemoryCounters()
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(500):
            counters.increment_now([("shared", 60)], now=0)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counters.increment_now([("shared", 60)], now=0) == [4001]


# --- helpers ------------------------------------------------------------------------------------------------


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("client", "expected"),
    [
        (("203.0.113.7", 1), "203.0.113.7"),
        (("2001:db8:1:2:3:4:5:6", 1), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:ffff::1", 1), "2001:db8:1:2::/64"),
        (("::ffff:203.0.113.7", 1), "203.0.113.7"),
        (("testclient", 1), "testclient"),
        (None, "unknown"),
    ],
    ids=["ipv4", "ipv6", "ipv6-same-64", "ipv4-mapped", "name", "none"],
)
def test_client_address(client: tuple[str, int] | None, expected: str) -> None:
    assert client_address({"type": "http", "client": client}) == expected


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b'{"email": " Ana@Example.org ", "password": "x"}', "application/json", "ana@example.org"),
        (b'{"email": "ana@example.org"}', "", "ana@example.org"),  # refused by the app, still counted
        (b"email=Ana%40Example.org&password=x", "application/x-www-form-urlencoded", "ana@example.org"),
        (b"email=x%40x.org&email=ana%40example.org", "application/x-www-form-urlencoded", "ana@example.org"),
        (
            b'--XyZ\r\nContent-Disposition: form-data; name="email"\r\n\r\nAna@Example.org\r\n--XyZ--\r\n',
            "multipart/form-data; boundary=XyZ",
            "ana@example.org",
        ),
        (b'["ana@example.org"]', "application/json", ""),
        (b'{"email": 42}', "application/json", ""),
        (b"{not json", "application/json", ""),
        (b"--broken", "multipart/form-data; boundary=XyZ", ""),
    ],
    ids=["json", "json-untyped", "form", "form-repeated-last-wins", "multipart", "json-list", "json-number",
         "bad-json", "bad-multipart"],
)  # fmt: skip
def test_email_from_body(body: bytes, content_type: str, expected: str) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/login",
        "headers": [(b"content-type", content_type.encode())],
    }
    assert run_coroutine(email_from_body(scope, body)) == expected


def test_the_account_is_counted_whatever_the_body_format(limited: Build) -> None:
    """Form, multipart, untyped JSON and repeated fields all count against the account the app would read."""
    home = limited(rate_limit_login="4/minute")
    away = limited(client=AWAY)
    victim = "victim@test.caresync.dev"
    as_form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert home.post("/login", data={"email": victim, "password": "x"}).status_code == 401
    assert home.post("/login", files={"email": (None, victim), "password": (None, "x")}).status_code == 401
    untyped = home.post(LOGIN, content=f'{{"email": "{victim}", "password": "Wrong-Password-1"}}')
    assert untyped.status_code == 422  # FastAPI refuses JSON without its content type; counted all the same
    repeated = away.post("/login", content=f"email=decoy%40x.org&email={victim}&password=x", headers=as_form)
    assert repeated.status_code == 401  # the page reads the last "email": so does the limiter
    assert_429(login_attempt(away, victim), 55, "for this account")


def test_an_oversized_sign_in_body_is_refused(limited: Build) -> None:
    """Padding the body past what is read must not dodge the per-account count."""
    client = limited()
    padded = '{"email": "victim@test.caresync.dev", "password": "Wrong-Password-1"' + " " * 20_000 + "}"
    response = client.post(LOGIN, content=padded, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["title"] == "Payload too large"
    assert "16 KiB" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: read until the limit, then refused
        yield b'{"email": "victim@test.caresync.dev", '
        yield b" " * 20_000
        yield b'"password": "Wrong-Password-1"}'

    assert (
        client.post(LOGIN, content=chunks(), headers={"Content-Type": "application/json"}).status_code == 413
    )
    assert login_attempt(client, "victim@test.caresync.dev").status_code == 401  # a normal body still passes


@pytest.mark.no_db
def test_peek_body_replays_every_message_then_carries_on() -> None:
    chunks: list[Message] = [
        {"type": "http.request", "body": b"a" * 10, "more_body": True},
        {"type": "http.request", "body": b"b" * 10, "more_body": True},
        {"type": "http.request", "body": b"c" * 10, "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def scenario(limit: int) -> tuple[bytes | None, list[Message]]:
        source = iter(chunks)

        async def receive() -> Message:
            return next(source)

        body, replay = await peek_body(receive, limit=limit)
        return body, [await replay() for _ in chunks]

    body, replayed = run_coroutine(scenario(limit=100))
    assert body == b"a" * 10 + b"b" * 10 + b"c" * 10
    assert replayed == chunks
    body, replayed = run_coroutine(scenario(limit=15))  # too large to read: nothing parsed, all passed on
    assert body is None
    assert replayed == chunks


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "1 second"),
        (55, "55 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (3595, "1 hour"),
        (7201, "3 hours"),
    ],
    ids=["one-second", "seconds", "a-minute", "minutes-round-up", "an-hour", "hours"],
)
def test_wait_text(seconds: int, text: str) -> None:
    assert wait_text(seconds) == text


# --- Redis --------------------------------------------------------------------------------------------------


def test_two_app_instances_share_one_limit_through_redis(limited: Build, redis_url: str) -> None:  # noqa: F811
    redis.Redis.from_url(redis_url).flushdb()
    first = limited(redis_url=redis_url, rate_limit_login="3/minute", app_id=1)
    second = limited(client=AWAY, app_id=2)  # another app (another web process), same settings
    assert first.app is not second.app
    victim = "shared@test.caresync.dev"
    assert login_attempt(first, victim).status_code == 401
    assert login_attempt(second, victim).status_code == 401
    assert login_attempt(first, victim).status_code == 401
    assert_429(login_attempt(second, victim), 55, "for this account")
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = [str(k) for k in store.keys("*")]
    assert len(keys) == 5  # the API and sign-in counters of each address, and the account's
    assert all(k.startswith(KEY_PREFIX) for k in keys)
    assert not [k for k in keys if "shared" in k or "10.0.0" in k or "@" in k]  # no email or address in keys
    assert {0 < int(store.ttl(k)) <= 56 for k in keys} == {True}  # they expire with their window


def test_redis_down_falls_back_to_counting_in_process() -> None:
    counters = RedisCounters(f"redis://127.0.0.1:{_free_port()}/0")  # nothing listens there
    counts = [run_coroutine(counters.increment([("k", 60)], now=0.0)) for _ in range(3)]
    assert counts == [[1], [2], [3]]


def test_redis_counters_count_atomically(redis_url: str) -> None:  # noqa: F811
    redis.Redis.from_url(redis_url).flushdb()
    counters = RedisCounters(redis_url)

    async def many() -> list[list[int]]:
        import asyncio

        return await asyncio.gather(*(counters.increment([("c", 60), ("d", 60)], now=0.0) for _ in range(50)))

    results = run_coroutine(many())
    assert sorted(r[0] for r in results) == list(range(1, 51))
    assert int(redis.Redis.from_url(redis_url).get("d") or 0) == 50
