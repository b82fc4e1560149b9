"""Backups as a running system sees them: the list in the backup folder with each archive's last verification
(kept in a small sidecar JSON next to it), verifying and recording the result, retention, and the
scheduled backup (create, verify, prune)."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from caresync.config import Settings, get_settings
from caresync.core import audit
from caresync.core.auth import Principal, system_principal
from caresync.core.errors import Conflict, NotFound
from caresync.db import session_factory, transaction
from caresync.operations.backup import archive
from caresync.operations.backup.archive import Progress, Report

log = logging.getLogger(__name__)
SIDECAR_SUFFIX = ".verify.json"
SCHEDULED_MIN_GAP = timedelta(hours=1)  # several workers may each fire the daily task: one backup is enough


@dataclass(frozen=True)
class Verification:
    """The last verification of an archive."""

    verified_at: datetime
    ok: bool
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BackupInfo:
    """One archive in the backup folder."""

    name: str
    path: Path
    size: int
    created_at: datetime
    verification: Verification | None

    @property
    def status(self) -> str:
        """``verified``, ``failed`` or ``unverified``."""
        if self.verification is None:
            return "unverified"
        return "verified" if self.verification.ok else "failed"


def human_size(size: int) -> str:
    """``2.7 MB`` for 2,817,375 bytes."""
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TB"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _read_sidecar(path: Path) -> Verification | None:
    try:
        data = json.loads(_sidecar(path).read_text())
        return Verification(
            verified_at=datetime.fromisoformat(data["verified_at"]),
            ok=bool(data["ok"]),
            problems=[str(p) for p in data.get("problems", [])],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def list_backups(settings: Settings | None = None) -> list[BackupInfo]:
    """The archives in the backup folder, newest first."""
    folder = archive.backup_dir(settings or get_settings())
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        created = archive.created_at(path)
        if created is None or not path.is_file():
            continue
        found.append(BackupInfo(path.name, path, path.stat().st_size, created, _read_sidecar(path)))
    return sorted(found, key=lambda b: (b.created_at, b.name), reverse=True)


def find(name: str, settings: Settings | None = None) -> BackupInfo:
    """The archive called ``name`` in the backup folder (404 for anything else, e.g. a path)."""
    for info in list_backups(settings):
        if info.name == name:
            return info
    raise NotFound("No such backup.")


def verify_and_record(path: Path, settings: Settings | None = None) -> Report:
    """Verify an archive and, if it is in the backup folder, keep the outcome in its sidecar file."""
    settings = settings or get_settings()
    report = archive.verify(path, settings)
    record = {"verified_at": datetime.now(UTC).isoformat(), "ok": report.ok, "problems": report.problems}
    if path.is_file() and path.resolve().parent == archive.backup_dir(settings).resolve():
        tmp = _sidecar(path).with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, _sidecar(path))
    log.info("backup %s verified: %s", path.name, "ok" if report.ok else "; ".join(report.problems))
    return report


def choose_kept(backups: Sequence[tuple[str, datetime]], keep_daily: int, keep_weekly: int) -> set[str]:
    """Which backups retention keeps: the newest of each of the last ``keep_daily`` days that have a backup,
    the newest of each of the last ``keep_weekly`` ISO weeks that have one, and always the newest of all.
    Days and weeks are UTC; days without a backup do not use up the allowance, so a pause in backups never
    deletes the last good ones."""
    newest_first = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    kept: set[str] = {newest_first[0][0]} if newest_first else set()
    for period, allowance in ((_day, keep_daily), (_iso_week, keep_weekly)):
        seen: set[tuple[int, int]] = set()
        for name, created in newest_first:
            key = period(created)
            if key in seen:
                continue
            if len(seen) >= allowance:
                break
            seen.add(key)
            kept.add(name)
    return kept


def _day(moment: datetime) -> tuple[int, int]:
    utc = moment.astimezone(UTC)
    return utc.year, utc.timetuple().tm_yday


def _iso_week(moment: datetime) -> tuple[int, int]:
    iso = moment.astimezone(UTC).isocalendar()
    return iso.year, iso.week


def prune(keep_daily: int, keep_weekly: int, settings: Settings | None = None) -> list[str]:
    """Delete the archives retention does not keep (with their sidecars); returns their names."""
    backups = list_backups(settings)
    kept = choose_kept([(b.name, b.created_at) for b in backups], keep_daily, keep_weekly)
    deleted = []
    for info in backups:
        if info.name not in kept:
            info.path.unlink(missing_ok=True)
            _sidecar(info.path).unlink(missing_ok=True)
            deleted.append(info.name)
    if deleted:
        log.info("retention deleted %d backups: %s", len(deleted), ", ".join(deleted))
    return deleted


@contextmanager
def exclusive(settings: Settings) -> Iterator[bool]:
    """Hold the backup folder's lock, if nobody else does (yields whether it was taken)."""
    folder = archive.backup_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def audit_event(actor: Principal, action: str, name: str = "", **detail: Any) -> None:
    """Record a backup operation in the audit log, in its own transaction (a backup copies every
    patient's data: who made, checked or restored one is worth knowing)."""
    with transaction(session_factory()) as session:
        audit.record(session, actor, action, resource_type="Backup", resource_id=name, detail=detail)


def create_backup(
    actor: Principal | None, settings: Settings | None = None, *, progress: Progress | None = None
) -> Path:
    """Make a backup now, refused while another one is being made. Audited first as made by ``actor`` (so
    the archive holds its own entry); ``None`` when the caller has audited the request itself."""
    settings = settings or get_settings()
    with exclusive(settings) as mine:
        if not mine:
            raise Conflict("Another backup is being made right now; try again when it has finished.")
        if actor is not None:
            audit_event(actor, "backup.create")
        return archive.create(settings, progress=progress)


def scheduled_backup(settings: Settings | None = None) -> dict[str, Any]:
    """The daily job: back up, verify the new archive, then apply retention. Skipped when a backup was made
    within the last hour (several workers may each fire the task) or another one is in progress."""
    settings = settings or get_settings()
    newest = next(iter(list_backups(settings)), None)
    if newest is not None and datetime.now(UTC) - newest.created_at < SCHEDULED_MIN_GAP:
        log.info("scheduled backup skipped: %s was made less than an hour ago", newest.name)
        return {"skipped": f"{newest.name} is recent"}
    with exclusive(settings) as mine:
        if not mine:
            log.info("scheduled backup skipped: another backup is in progress")
            return {"skipped": "another backup is in progress"}
        started = datetime.now(UTC)
        audit_event(system_principal("scheduled backup"), "backup.create")
        path = archive.create(settings)
    seconds = (datetime.now(UTC) - started).total_seconds()
    log.info("scheduled backup %s written (%d bytes, %.1f s)", path.name, path.stat().st_size, seconds)
    report = verify_and_record(path, settings)
    if not report.ok:
        log.error("scheduled backup %s FAILED verification: %s", path.name, "; ".join(report.problems))
    deleted = prune(settings.backup_keep_daily, settings.backup_keep_weekly, settings) if report.ok else []
    return {
        "backup": path.name,
        "size": path.stat().st_size,
        "seconds": round(seconds, 1),
        "verified": report.ok,
        "problems": report.problems,
        "pruned": deleted,
    }
