"""Backups: create -> verify -> restore into a fresh empty target on the suite's own database (SQLite, or
PostgreSQL when the suite runs there), damaged archives detected and refused, the empty-target rule and
--force, retention, the CLI and the admin page.

The ``fresh_target`` fixture (also used by the recovery drill) switches the settings to a new, empty
installation of the same kind: a new var dir and, on PostgreSQL, a new database; the storage key stays the
same (restoring needs it)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

import caresync.models
from caresync.cli import app as cli_app
from caresync.config import Settings, get_settings
from caresync.core import audit, storage
from caresync.core.audit import AuditEntry
from caresync.core.auth import system_principal
from caresync.core.errors import NotFound
from caresync.db import engine_for
from caresync.operations.backup import archive, service
from caresync.operations.backup.service import choose_kept
from tests.conftest import web_login

runner = CliRunner()


# --- helpers shared with the recovery drill ----------------------------------------------------------------


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every CareSync table, in a stable order."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
                for t in caresync.models.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def stored_files(settings: Settings) -> dict[str, bytes]:
    """The raw (encrypted) stored blobs of an installation, by relative name."""
    root = settings.var_dir / "files"
    return {str(p.relative_to(settings.var_dir)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def backups() -> Iterator[Path]:
    """The backup folder, empty at the start and removed afterwards."""
    folder = archive.backup_dir(get_settings())
    shutil.rmtree(folder, ignore_errors=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fresh_target(settings_env: Callable[..., Settings], tmp_path: Path) -> Iterator[Callable[[], Settings]]:
    """``fresh_target()`` points the settings at a new, empty installation of the same database kind (same
    storage key) and returns them; a PostgreSQL database made for it is dropped afterwards."""
    made: list[str] = []

    def switch() -> Settings:
        source = get_settings()
        key = source.secret("storage_key")
        var_dir = tmp_path / f"target-{len(made)}"
        if source.is_sqlite:
            url = f"sqlite:///{var_dir / 'caresync.db'}"
        else:
            base = make_url(source.resolved_database_url)
            url = base.set(database=f"{base.database}_r{uuid.uuid4().hex[:8]}").render_as_string(False)
            admin = create_engine(source.resolved_database_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{make_url(url).database}"'))
            admin.dispose()
        made.append(url)
        return settings_env(var_dir=var_dir, database_url=url, storage_key=key)

    yield switch
    for url in made:
        engine_for(url).dispose()
        if url.startswith("postgresql"):
            admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()


def seed(make: Any, tx: Any) -> list[str]:
    """Some people, audit entries and two stored files; returns the files' addresses."""
    make.care(make.staff("doctor"), make.patient_user())
    with tx() as s:
        first = storage.put(s, b"Lab result: potassium 4.1 mmol/L\n", allowed_types={"text/plain"})
        second = storage.put(s, b"%PDF-1.4\n% discharge summary\n", allowed_types={"application/pdf"})
        audit.record(s, system_principal("test"), "test.seed", detail={"files": 2})
    return [first.sha256, second.sha256]


def damaged_copy(path: Path, how: str) -> Path:
    """A copy of the archive with one byte flipped in the middle, or cut short."""
    data = bytearray(path.read_bytes())
    if how == "flipped":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 200]
    copy = path.with_name(f"caresync-backup-20200101T000000Z-{1 if how == 'flipped' else 2}.csbak")
    copy.write_bytes(bytes(data))
    return copy


# --- round trip --------------------------------------------------------------------------------------------


def test_round_trip_into_a_fresh_target(
    make: Any, tx: Any, backups: Path, fresh_target: Callable[[], Settings]
) -> None:
    addresses = seed(make, tx)
    source = get_settings()
    path = archive.create()
    assert path.parent == backups
    assert archive.NAME_PATTERN.match(path.name)
    report = archive.verify(path)
    assert report.ok, report.problems
    assert report.manifest is not None
    assert report.manifest["database"] == ("sqlite" if source.is_sqlite else "postgresql")
    assert report.manifest["format_version"] == archive.FORMAT_VERSION
    listed = {m["name"] for m in report.manifest["members"]}
    assert {f"files/{a[:2]}/{a[2:]}" for a in addresses} <= listed
    rows, files = snapshot(source.resolved_database_url), stored_files(source)

    target = fresh_target()
    assert archive.target_contents() == []
    result = archive.restore(path)

    assert result.audit.ok
    assert result.audit.entries == len(rows["audit_entries"]) > 0
    assert snapshot(target.resolved_database_url) == rows
    assert stored_files(target) == files
    assert storage.get(addresses[0]) == b"Lab result: potassium 4.1 mmol/L\n"  # decrypts in the new place
    assert result.files_restored == len(files)


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_damaged_archive_is_detected_and_refused(
    how: str, make: Any, tx: Any, backups: Path, fresh_target: Callable[[], Settings]
) -> None:
    seed(make, tx)
    bad = damaged_copy(archive.create(), how)

    report = archive.verify(bad)
    assert not report.ok
    assert any(("damaged" if how == "flipped" else "truncated") in p for p in report.problems), (
        report.problems
    )

    fresh_target()
    with pytest.raises(archive.ArchiveDamaged):
        archive.restore(bad)
    assert archive.target_contents() == []  # nothing was touched


def test_an_archive_made_with_another_key_is_named_as_such(
    make: Any, tx: Any, backups: Path, settings_env: Callable[..., Settings]
) -> None:
    seed(make, tx)
    path = archive.create()
    settings_env(storage_key="A" * 43 + "=")
    report = archive.verify(path)
    assert not report.ok
    assert "different CARESYNC_STORAGE_KEY" in report.problems[0]


def test_restore_refuses_a_target_with_data_unless_forced(
    make: Any, tx: Any, backups: Path, fresh_target: Callable[[], Settings]
) -> None:
    seed(make, tx)
    path = archive.create()
    expected = snapshot(get_settings().resolved_database_url)
    target = fresh_target()
    archive.restore(path)
    make.patient(given_name="Afterwards")
    with tx() as s:
        extra = storage.put(s, b"a file made after the backup\n", allowed_types={"text/plain"})

    with pytest.raises(archive.RestoreRefused) as refused:
        archive.restore(path)
    assert "patients" in str(refused.value)
    assert "stored files" in str(refused.value)

    result = archive.restore(path, force=True)
    assert result.audit.ok
    assert result.files_removed == 1
    assert snapshot(target.resolved_database_url) == expected
    with pytest.raises(NotFound):
        storage.get(extra.sha256)


# --- retention ---------------------------------------------------------------------------------------------


def _at(day: int, hour: int = 2) -> datetime:
    """A time in November 2026 (the 2nd is a Monday; ISO week 45 is the 2nd to the 8th)."""
    return datetime(2026, 11, day, hour, tzinfo=UTC)


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("times", "daily", "weekly", "kept"),
    [
        pytest.param([], 7, 4, set(), id="nothing"),
        pytest.param([_at(20)], 1, 0, {_at(20)}, id="the-newest-always"),
        pytest.param([_at(20, 2), _at(20, 14), _at(19)], 1, 0, {_at(20, 14)}, id="newest-of-the-day"),
        pytest.param([_at(d) for d in range(1, 21)], 3, 0, {_at(20), _at(19), _at(18)}, id="last-3-days"),
        pytest.param(
            [_at(d) for d in range(1, 21)],
            2,
            3,
            {_at(20), _at(19), _at(15), _at(8)},
            id="days-and-iso-weeks",
        ),
        pytest.param([_at(1), _at(2), _at(20)], 2, 0, {_at(20), _at(2)}, id="gaps-do-not-use-up-days"),
        pytest.param([_at(9), _at(8)], 1, 2, {_at(9), _at(8)}, id="sunday-ends-its-week"),
        pytest.param([_at(10), _at(9)], 1, 1, {_at(10)}, id="same-week"),
    ],
)
def test_retention_keeps_the_newest_per_day_and_week(
    times: list[datetime], daily: int, weekly: int, kept: set[datetime]
) -> None:
    names = [(t.isoformat(), t) for t in times]
    assert choose_kept(names, daily, weekly) == {t.isoformat() for t in kept}


def test_prune_deletes_what_retention_does_not_keep(backups: Path) -> None:
    backups.mkdir(parents=True)
    now = datetime.now(UTC).replace(microsecond=0)
    for days in range(10):
        path = backups / archive.archive_name(now - timedelta(days=days))
        path.write_bytes(b"x")
        path.with_name(path.name + service.SIDECAR_SUFFIX).write_text('{"verified_at": "x"}')
    deleted = service.prune(3, 0)
    assert len(deleted) == 7
    left = sorted(p.name for p in backups.iterdir() if not p.name.startswith("."))
    kept = [archive.archive_name(now - timedelta(days=d)) for d in range(3)]
    assert left == sorted([*kept, *(name + service.SIDECAR_SUFFIX for name in kept)])


@pytest.mark.no_db
def test_the_daily_backup_runs_at_the_configured_hour() -> None:
    from caresync.operations.backup.jobs import scheduled_backup

    hour = get_settings().backup_hour_utc
    task = scheduled_backup.task_class()
    runs = [h for h in range(24) if task.validate_datetime(datetime(2026, 11, 26, h, 0))]
    assert runs == [hour]
    assert not task.validate_datetime(datetime(2026, 11, 26, hour, 1))


def test_scheduled_backup_makes_verifies_and_prunes(
    make: Any, tx: Any, backups: Path, settings_env: Callable[..., Settings]
) -> None:
    seed(make, tx)
    backups.mkdir(parents=True)
    old = backups / archive.archive_name(datetime.now(UTC) - timedelta(days=30))
    old.write_bytes(b"an old archive")
    settings_env(backup_keep_daily=1, backup_keep_weekly=0)

    summary = service.scheduled_backup()

    assert summary["verified"] is True
    assert summary["pruned"] == [old.name]
    [info] = service.list_backups()
    assert info.name == summary["backup"]
    assert info.status == "verified"
    assert service.scheduled_backup() == {"skipped": f"{info.name} is recent"}
    with tx() as s:
        assert s.execute(select(AuditEntry).where(AuditEntry.action == "backup.create")).scalar_one()


# --- CLI ----------------------------------------------------------------------------------------------------


def test_cli_create_verify_list_and_exit_codes(make: Any, tx: Any, backups: Path) -> None:
    seed(make, tx)
    made = runner.invoke(cli_app, ["backup", "create"])
    assert made.exit_code == 0, made.output
    path = Path(made.output.splitlines()[0])
    assert path.is_file()
    assert " s" in made.output.splitlines()[1]

    good = runner.invoke(cli_app, ["backup", "verify", str(path)])
    assert good.exit_code == 0
    assert "OK" in good.output
    bad = runner.invoke(cli_app, ["backup", "verify", str(damaged_copy(path, "flipped"))])
    assert bad.exit_code == 1
    assert "failed its integrity check" in bad.output

    listed = runner.invoke(cli_app, ["backup", "list"])
    assert listed.exit_code == 0
    assert f"{path.name}" in listed.output
    assert "verified" in listed.output
    assert "failed" in listed.output  # the damaged copy, verified just now
    assert "failed its integrity check" in listed.output

    refused = runner.invoke(cli_app, ["backup", "restore", str(path), "--yes"])
    assert refused.exit_code == 1
    assert "not empty" in refused.output
    declined = runner.invoke(cli_app, ["backup", "restore", str(path)], input="n\n")
    assert declined.exit_code == 1
    assert "Aborted" in declined.output

    pruned = runner.invoke(cli_app, ["backup", "prune", "--keep-daily", "1", "--keep-weekly", "0"])
    assert pruned.exit_code == 0
    assert "deleted caresync-backup-20200101T000000Z-1.csbak" in pruned.output
    assert path.is_file()


def test_cli_restore_into_a_fresh_target(
    make: Any, tx: Any, backups: Path, fresh_target: Callable[[], Settings]
) -> None:
    seed(make, tx)
    path = archive.create()
    fresh_target()
    restored = runner.invoke(cli_app, ["backup", "restore", str(path), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert "audit chain OK" in restored.output
    with tx() as s:  # the restore itself is audited in the restored installation
        assert s.execute(select(AuditEntry).where(AuditEntry.action == "backup.restore")).scalar_one()


# --- the admin page ----------------------------------------------------------------------------------------


def test_admin_backs_up_and_verifies_from_the_page(
    client: TestClient, make: Any, tx: Any, backups: Path
) -> None:
    admin = make.staff("admin")
    csrf = web_login(client, admin)
    empty = client.get("/admin/backups")
    assert empty.status_code == 200
    assert 'data-testid="backups-empty"' in empty.text

    started = client.post("/admin/backups", data={"csrf_token": csrf}, follow_redirects=False)
    assert started.status_code == 303
    assert "/admin/backups?job=" in started.headers["location"]
    page = client.get(started.headers["location"])
    assert 'data-testid="backup-job"' in page.text
    assert 'data-status="succeeded"' in page.text
    [info] = service.list_backups()
    assert f'data-name="{info.name}" data-status="verified"' in page.text

    damaged = info.path.read_bytes()
    info.path.write_bytes(damaged[: len(damaged) // 2])
    checked = client.post(f"/admin/backups/{info.name}/verify", data={"csrf_token": csrf})
    assert checked.status_code == 200
    assert 'data-status="failed"' in checked.text
    assert "truncated" in checked.text

    missing = client.post("/admin/backups/nothing.csbak/verify", data={"csrf_token": csrf})
    assert missing.status_code == 404
    no_csrf = client.post("/admin/backups", data={}, follow_redirects=False)
    assert no_csrf.status_code == 403
    with tx() as s:
        actions = set(s.execute(select(AuditEntry.action).where(AuditEntry.actor_id == admin.id)).scalars())
    assert {"backup.list", "backup.create", "backup.verify"} <= actions


@pytest.mark.parametrize("role", ["doctor", "nurse", "pharmacist", "patient"], ids=lambda r: r)
def test_only_admins_see_backups(role: str, client: TestClient, make: Any, tx: Any, backups: Path) -> None:
    person = make.user(role)
    csrf = web_login(client, person)
    assert client.get("/admin/backups").status_code == 403
    assert client.post("/admin/backups", data={"csrf_token": csrf}).status_code == 403
    assert not backups.exists() or not service.list_backups()
    with tx() as s:
        denied = s.execute(
            select(AuditEntry).where(AuditEntry.actor_id == person.id, AuditEntry.action == "backup.list")
        ).scalar_one()
    assert denied.outcome == "denied"


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/admin/backups", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
