"""Shared fixtures for the API-level test suite.

The environment is set up *before* ``caresync`` is imported: jobs run in-process at once, argon2 uses cheap
parameters, and runtime files go to a fresh temporary ``CARESYNC_VAR_DIR`` per test session (per xdist
worker).

Database: ``CARESYNC_TEST_DATABASE_URL`` (a PostgreSQL URL such as
``postgresql+psycopg://caresync:caresync@127.0.0.1:5432/caresync_test``) if set, else a SQLite file in the
temporary directory. Under pytest-xdist each worker gets its own PostgreSQL database (``<name>_gw0`` …,
created on demand). The schema is created once per session with ``Base.metadata.create_all``; before each
test every table is emptied and the audit chain head re-seeded, so each test starts from a clean database.

Main fixtures:

* ``app`` (session) and ``client`` (a fresh ``TestClient`` per test).
* ``db``: a Session. On SQLite every transaction starts with ``BEGIN IMMEDIATE``, which holds the write
  lock: end your transaction (``db.commit()`` / ``db.rollback()``) before calling the API.
* ``tx``: ``with tx() as s:`` - a short committed unit of work (the safer choice).
* ``make``: factories for organisations, staff of each role (MFA on, with a known TOTP secret), patients
  with or without an account, donors and care relationships.
* ``login(client, email, password, otp=None) -> headers``: signs in over the API and completes MFA
  (computing the TOTP code from the secret stored in the database), returning
  ``{"Authorization": "Bearer ..."}`` for a session whose stage is ``full``.
  ``sign_in(person)`` does the same for a factory-made :class:`Person`. :func:`next_otp` gives a code the
  server will accept now (never a replayed time step; a fresh recovery code once both steps are spent).
* ``cast``: one signed-in-able person of every role in one hospital; the doctor and nurse care for the
  patient; ``cast.other_patient`` has no carer.
* ``settings_env(**values)``: override ``CARESYNC_*`` settings for one test.
* ``outbox``: the directory where emails land as ``.eml`` files.
* ``@pytest.mark.no_db``: a pure test that does not need the tables emptied first.

Helpers import directly: ``from tests.conftest import API, PASSWORD, bearer, login, next_otp``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

_VAR_DIR = Path(tempfile.mkdtemp(prefix="caresync-test-"))
atexit.register(shutil.rmtree, _VAR_DIR, ignore_errors=True)
os.environ["CARESYNC_JOBS_IMMEDIATE"] = "1"
os.environ["CARESYNC_ARGON2_FAST"] = "1"
os.environ["CARESYNC_RATE_LIMIT_ENABLED"] = "0"  # tests sign in again and again; test_ratelimit turns it on
os.environ["CARESYNC_VAR_DIR"] = str(_VAR_DIR)
os.environ.pop("CARESYNC_REDIS_URL", None)
os.environ.pop("CARESYNC_SMTP_HOST", None)


def _worker_database_url(base_url: str) -> str:
    """Under xdist, give each worker its own PostgreSQL database (created if missing)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker:
        return base_url
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"{url.database}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not found:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


_TEST_DB_URL = os.environ.get("CARESYNC_TEST_DATABASE_URL", "").strip()
if _TEST_DB_URL:
    os.environ["CARESYNC_DATABASE_URL"] = _worker_database_url(_TEST_DB_URL)
else:
    os.environ["CARESYNC_DATABASE_URL"] = f"sqlite:///{_VAR_DIR / 'test.db'}"

import pyotp  # noqa: E402
import pytest  # noqa: E402

with warnings.catch_warnings():  # starlette nags about httpx vs httpx2 at import; nothing to act on here
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient
from sqlalchemy import insert, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import caresync.models  # noqa: E402
from caresync import config  # noqa: E402
from caresync.core import crypto  # noqa: E402
from caresync.core.audit import GENESIS_HASH, AuditHead  # noqa: E402
from caresync.db import engine_for, session_factory, transaction, utcnow  # noqa: E402
from caresync.identity import patients as patient_service  # noqa: E402
from caresync.identity.credentials import service as credentials  # noqa: E402
from caresync.identity.credentials.models import KIND_BY_ROLE  # noqa: E402
from caresync.identity.models import CareRelationship, Organisation, Patient, RecoveryCode, User  # noqa: E402
from caresync.identity.rules import Role  # noqa: E402
from caresync.identity.service import create_user  # noqa: E402
from caresync.web.deps import LEFT_OPEN_WARNING  # noqa: E402

PASSWORD = "Tidal-Harbour-Lantern-42"
API = "/api/v1"
STAFF = ("admin", "doctor", "nurse", "bloodbank_staff", "pharmacist")
ROLES = (*STAFF, "patient", "donor")
T = TypeVar("T")
LICENCE_PDF = b"%PDF-1.4\n% a practitioner licence\n%%EOF\n"


def is_postgres() -> bool:
    """Whether the suite runs against PostgreSQL."""
    return not config.get_settings().is_sqlite


# --- database set-up and cleaning ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    """Create the schema once for the session; yields the database URL."""
    config.get_settings.cache_clear()
    settings = config.get_settings()
    settings.ensure_var_dir()
    url = settings.resolved_database_url
    engine = engine_for(url)
    metadata = caresync.models.metadata
    if not settings.is_sqlite:
        metadata.drop_all(engine)
    metadata.create_all(engine)  # the audit_head row is seeded by an after_create event
    yield url
    engine.dispose()


def empty_database() -> None:
    """Remove every row from every table and re-seed the audit chain head."""
    engine = engine_for(config.get_settings().resolved_database_url)
    tables = caresync.models.metadata.sorted_tables
    with engine.begin() as conn:
        # DELETE, not TRUNCATE, on PostgreSQL too: on tables this small it is several times faster (TRUNCATE
        # swaps every table's files), and no table uses a sequence that would need resetting.
        for table in reversed(tables):
            conn.execute(table.delete())
        conn.execute(insert(AuditHead.__table__).values(id=1, seq=0, hash=GENESIS_HASH))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_db: a pure test; skip emptying the database before it")


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest, database: str) -> None:
    """Every test starts with empty tables, an empty outbox and default settings (``no_db`` tests skip
    the emptying)."""
    config.get_settings.cache_clear()
    if request.node.get_closest_marker("no_db"):
        return
    empty_database()
    outbox = _VAR_DIR / "outbox"
    if outbox.exists():
        for item in outbox.iterdir():
            item.unlink()


@pytest.fixture(autouse=True)
def _no_transaction_left_open(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails a test during which a request handler returned with its database transaction still open (on
    SQLite that holds the write lock for the rest of the request; see ``web.deps.get_db``)."""
    yield
    left_open = [r.getMessage() for r in caplog.records if r.msg == LEFT_OPEN_WARNING]
    assert not left_open, left_open


@pytest.fixture
def settings_env() -> Iterator[Callable[..., config.Settings]]:
    """Override settings for one test: ``settings_env(lockout_threshold=3)`` sets ``CARESYNC_*``
    variables, clears the settings cache and returns the new settings; all is restored afterwards."""
    saved: dict[str, str | None] = {}

    def apply(**values: Any) -> config.Settings:
        for key, value in values.items():
            name = f"CARESYNC_{key.upper()}"
            saved.setdefault(name, os.environ.get(name))
            os.environ[name] = str(value)
        config.get_settings.cache_clear()
        return config.get_settings()

    yield apply
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    config.get_settings.cache_clear()


@pytest.fixture
def var_dir() -> Path:
    """This session's ``CARESYNC_VAR_DIR``."""
    return _VAR_DIR


@pytest.fixture
def outbox() -> Path:
    """Where emails land (as ``.eml`` files) when no SMTP server is configured."""
    return config.get_settings().ensure_var_dir() / "outbox"


# --- app and sessions -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def app(database: str) -> Any:
    """The CareSync application (built once per session)."""
    from caresync.app import create_app

    return create_app()


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """A fresh HTTP client (own cookies) per test."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def db() -> Iterator[Session]:
    """A database session. On SQLite, end its transaction before calling the API (see module doc)."""
    session = session_factory()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture
def tx() -> Callable[[], AbstractContextManager[Session]]:
    """``with tx() as s: ...`` runs one committed unit of work."""
    return lambda: transaction(session_factory())


# --- people -------------------------------------------------------------------------------------------------


@dataclass
class Person:
    """A user the tests can sign in as."""

    user: User
    email: str
    password: str
    role: str
    totp_secret: str | None = None
    patient: Patient | None = None
    organisation: Organisation | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        """The user's id."""
        return self.user.id

    @property
    def full_name(self) -> str:
        """The user's display name."""
        return self.user.full_name

    @property
    def patient_id(self) -> uuid.UUID:
        """The linked patient profile's id (patients only)."""
        assert self.patient is not None, f"{self.email} has no patient profile"
        return self.patient.id


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Factory:
    """Creates committed rows for tests. Every method runs in its own transaction."""

    def __init__(self) -> None:
        self._default_org: Organisation | None = None

    def org(self, name: str | None = None, kind: str = "hospital", **fields: Any) -> Organisation:
        """An organisation (hospital by default)."""
        with transaction(session_factory()) as s:
            org = Organisation(name=name or _unique("Org"), kind=kind, city="Lisbon", country="PT", **fields)
            s.add(org)
            s.flush()
        return org

    def default_org(self) -> Organisation:
        """The hospital staff join unless told otherwise (one per test)."""
        if self._default_org is None:
            self._default_org = self.org(_unique("General Hospital"))
        return self._default_org

    def staff(
        self,
        role: str,
        org: Organisation | None = None,
        *,
        mfa: bool = True,
        email: str | None = None,
        password: str = PASSWORD,
        full_name: str | None = None,
        verified: bool = True,
    ) -> Person:
        """A staff member of ``org`` (the default hospital if omitted). With ``mfa`` (the default), MFA
        is on with a random known TOTP secret (``person.totp_secret``). Doctors, nurses and pharmacists
        hold an approved licence unless ``verified`` is false (then they may not act on patients)."""
        assert role in STAFF, role
        org = org or self.default_org()
        secret = pyotp.random_base32() if mfa else None
        with transaction(session_factory()) as s:
            user = create_user(
                s,
                email=email or f"{_unique(role.replace('_', ''))}@test.caresync.dev",
                password=password,
                full_name=full_name or f"{role.replace('_', ' ').title()} {secrets.token_hex(3)}",
                role=Role(role),
                organisation_id=org.id,
            )
            if secret:
                user.mfa_secret_encrypted = crypto.encrypt_text(secret, aad=str(user.id))
                user.mfa_enabled = True
            s.flush()
            if verified and role in KIND_BY_ROLE:
                credentials.record_verified(
                    s,
                    user,
                    registration_number=f"LIC-{secrets.token_hex(4)}",
                    issuing_body="Test licensing board",
                    document=LICENCE_PDF,
                    issued_on=date.today() - timedelta(days=365),
                    expires_on=date.today() + timedelta(days=365),
                )
        return Person(
            user=user, email=user.email, password=password, role=role, totp_secret=secret, organisation=org
        )

    def patient(self, **fields: Any) -> Patient:
        """A patient profile without an account (``caresync.identity.patients.new_patient``)."""
        values = _patient_defaults(fields)
        with transaction(session_factory()) as s:
            patient = patient_service.new_patient(**values)
            s.add(patient)
            s.flush()
        return patient

    def patient_user(
        self, *, email: str | None = None, password: str = PASSWORD, mfa: bool = False, **fields: Any
    ) -> Person:
        """A patient with a portal account and profile (``register_own_profile``)."""
        values = _patient_defaults(fields)
        secret = pyotp.random_base32() if mfa else None
        with transaction(session_factory()) as s:
            patient = patient_service.register_own_profile(s, values)
            user = create_user(
                s,
                email=email or f"{_unique('patient')}@test.caresync.dev",
                password=password,
                full_name=f"{patient.given_name} {patient.family_name}",
                role=Role.PATIENT,
            )
            patient.user_id = user.id
            patient.email = user.email
            if secret:
                user.mfa_secret_encrypted = crypto.encrypt_text(secret, aad=str(user.id))
                user.mfa_enabled = True
            s.flush()
        return Person(
            user=user,
            email=user.email,
            password=password,
            role="patient",
            totp_secret=secret,
            patient=patient,
        )

    def donor(self, *, email: str | None = None, password: str = PASSWORD) -> Person:
        """A blood donor account."""
        with transaction(session_factory()) as s:
            user = create_user(
                s,
                email=email or f"{_unique('donor')}@test.caresync.dev",
                password=password,
                full_name=f"Donor {secrets.token_hex(3)}",
                role=Role.DONOR,
            )
        return Person(user=user, email=user.email, password=password, role="donor")

    def user(self, role: str, **kwargs: Any) -> Person:
        """Someone of any role."""
        if role == "patient":
            return self.patient_user(**kwargs)
        if role == "donor":
            return self.donor(**kwargs)
        return self.staff(role, **kwargs)

    def care(self, clinician: Person, patient: Patient | Person, reason: str = "test") -> CareRelationship:
        """An active care relationship between a doctor/nurse and a patient."""
        patient_id = patient.patient_id if isinstance(patient, Person) else patient.id
        assert clinician.user.organisation_id is not None
        with transaction(session_factory()) as s:
            link = CareRelationship(
                patient_id=patient_id,
                practitioner_id=clinician.id,
                organisation_id=clinician.user.organisation_id,
                reason=reason,
                created_at=utcnow(),
            )
            s.add(link)
        return link


def _patient_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "given_name": "Test",
        "family_name": _unique("Patient").replace("-", ""),
        "birth_date": date(1980, 5, 17),
        "sex": "female",
    }
    values.update(fields)
    return values


@pytest.fixture
def make() -> Factory:
    """Row factories (see :class:`Factory`)."""
    return Factory()


# --- signing in ---------------------------------------------------------------------------------------------


def next_otp(email: str) -> str:
    """A second-factor code the server will accept now for ``email``.

    Uses the TOTP secret stored (encrypted) in the database and the user's last used time step, so that
    codes are never replayed. If both acceptable steps (now and now+1) are already spent, a single-use
    recovery code is added to the account and returned instead."""
    with transaction(session_factory()) as s:
        user = s.execute(select(User).where(User.email == email.lower())).scalar_one()
        assert user.mfa_enabled, f"{email} has no MFA"
        assert user.mfa_secret_encrypted
        totp = pyotp.TOTP(crypto.decrypt_text(user.mfa_secret_encrypted, aad=str(user.id)))
        current = totp.timecode(utcnow())
        for step in (current, current + 1):
            if user.mfa_last_counter is None or step > user.mfa_last_counter:
                return totp.generate_otp(step)
        code = f"{secrets.token_hex(4)}-{secrets.token_hex(4)}"
        s.add(RecoveryCode(user_id=user.id, code_digest=crypto.token_digest(code)))
        return code


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh event loop in its own thread. ``asyncio.run`` in the test's
    thread fails when an earlier test on the same xdist worker left a loop running there (the session-wide
    Playwright browser of the e2e suite does)."""
    with ThreadPoolExecutor(max_workers=1) as runner:
        return runner.submit(asyncio.run, coroutine).result()


def bearer(token: str) -> dict[str, str]:
    """Authorization headers for a token."""
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, email: str, password: str, otp: str | None = None) -> dict[str, str]:
    """Sign in over the API; completes MFA if the account has it. Returns bearer headers of a session
    whose stage is ``full``."""
    body: dict[str, Any] = {"email": email, "password": password}
    if otp:
        body["otp"] = otp
    response = client.post(f"{API}/auth/login", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    headers = bearer(data["access_token"])
    if data["stage"] == "mfa":
        challenge = client.post(f"{API}/auth/mfa/challenge", json={"code": next_otp(email)}, headers=headers)
        assert challenge.status_code == 200, challenge.text
    elif data["stage"] != "full":
        raise AssertionError(f"{email} must enrol MFA first (stage {data['stage']!r})")
    return headers


def web_login(client: TestClient, person: Person) -> str:
    """Sign the client's cookie jar in through the login pages (password, then MFA if the account has
    it). Returns the session's CSRF token, for forms (``csrf_token``) and HTMX (``X-CSRF-Token``)."""
    response = client.post(
        "/login", data={"email": person.email, "password": person.password}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    if response.headers["location"].startswith("/login/mfa"):
        page = client.get("/login/mfa")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        done = client.post(
            "/login/mfa", data={"code": next_otp(person.email), "csrf_token": token}, follow_redirects=False
        )
        assert done.status_code == 303, done.text
    page = client.get("/")
    return page.text.split('"X-CSRF-Token": "')[1].split('"')[0]


@pytest.fixture(name="login")
def login_fixture() -> Callable[..., dict[str, str]]:
    """:func:`login` as a fixture: ``login(client, email, password, otp=None) -> headers``."""
    return login


@pytest.fixture
def sign_in(client: TestClient) -> Callable[[Person], dict[str, str]]:
    """``sign_in(person)``: bearer headers of a fully signed-in session for a factory-made person."""
    return lambda person: login(client, person.email, person.password)


class Cast:
    """One person of every role in one hospital, plus a second patient nobody in it cares for.

    People are created when a test first asks for them (most tests need two or three of the seven), each in
    its own transaction: ask for them before opening one of your own (on SQLite it would hold the write lock)
    and before anything whose audit sequence or recipients you count; :meth:`everyone` makes them all. The
    doctor and the nurse arrive caring for the patient."""

    def __init__(self, make: Factory) -> None:
        self._make = make
        self._people: dict[str, Person] = {}
        self._other_patient: Patient | None = None
        self.org = make.default_org()  # the hospital everyone on the staff works in

    @property
    def other_patient(self) -> Patient:
        """A patient without an account whom nobody in the cast cares for."""
        if self._other_patient is None:
            self._other_patient = self._make.patient(given_name="Quintessa", family_name="Zwartkopf")
        return self._other_patient

    def __getitem__(self, role: str) -> Person:
        if role not in self._people:
            assert role in ROLES, role
            person = self._make.user(role)
            if role in ("doctor", "nurse"):
                self._make.care(person, self["patient"])
            self._people[role] = person
        return self._people[role]

    def everyone(self) -> dict[str, Person]:
        """Every role's person, made now if not yet (for tests about the whole hospital)."""
        return {role: self[role] for role in ROLES}


@pytest.fixture
def cast(make: Factory) -> Cast:
    """Everyone: admin, doctor, nurse, bloodbank_staff, pharmacist, patient, donor (``cast[role]``), made on
    first use. The doctor and nurse care for the patient; ``other_patient`` has no carer."""
    return Cast(make)
