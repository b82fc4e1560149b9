"""Recovery drill: threads keep committing patients, audit entries and stored files while a backup is
taken, and keep going afterwards; the backup is restored into a fresh installation. Every row committed
before the backup started is there, nothing is half-written (each patient has exactly its one audit entry
and the other way round), ``caresync audit verify`` passes, and every stored file decrypts and matches its
address. Runs on the suite's database: SQLite, and PostgreSQL when the suite runs there."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from caresync.cli import app as cli_app
from caresync.config import Settings
from caresync.core import audit, storage
from caresync.core.audit import AuditEntry
from caresync.core.auth import system_principal
from caresync.core.storage import StoredFile
from caresync.db import session_factory, transaction
from caresync.identity.models import Patient
from caresync.identity.patients import new_patient
from caresync.operations.backup import archive
from tests.operations.test_backup import backups, fresh_target  # noqa: F401 - fixtures

WRITERS = 3
ACTION = "drill.write"


@dataclass
class Ward:
    """Writers committing in a loop; ``committed`` holds (patient id, monotonic time the commit returned)."""

    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    committed: list[tuple[uuid.UUID, float]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def write(self, writer: int) -> None:
        actor = system_principal(f"drill writer {writer}")
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                with transaction(session_factory()) as s:
                    patient = new_patient(
                        given_name="Drill",
                        family_name=f"W{writer}N{n}",
                        birth_date=date(1970, 1, 1),
                        sex="other",
                    )
                    s.add(patient)
                    s.flush()
                    if n % 4 == 0:
                        note = f"drill note {writer}/{n} {uuid.uuid4()}\n".encode()
                        storage.put(s, note, allowed_types={"text/plain"})
                    audit.record(
                        s,
                        actor,
                        ACTION,
                        patient_id=patient.id,
                        resource_type="Patient",
                        resource_id=patient.id,
                    )
                    patient_id = patient.id
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)
                return
            with self.lock:
                self.committed.append((patient_id, time.monotonic()))

    def count(self) -> int:
        with self.lock:
            return len(self.committed)

    def wait_for(self, total: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < total and not self.errors:
            assert time.monotonic() < deadline, f"writers made only {self.count()} commits"
            time.sleep(0.01)


def test_backup_under_write_load_restores_to_a_consistent_state(
    backups: Path,  # noqa: F811
    fresh_target: Callable[[], Settings],  # noqa: F811
) -> None:
    ward = Ward()
    threads = [threading.Thread(target=ward.write, args=(i,), daemon=True) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    try:
        ward.wait_for(40)
        started = time.monotonic()
        before = {pid for pid, at in ward.committed if at < started}
        path = archive.create()
        after_backup = ward.count()
        ward.wait_for(after_backup + 40)  # and the ward keeps writing
    finally:
        ward.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not ward.errors, ward.errors
    everything = {pid for pid, _ in ward.committed}

    target = fresh_target()
    result = archive.restore(path)

    assert result.audit.ok, result.audit.problem
    with transaction(session_factory()) as s:
        restored = set(s.execute(select(Patient.id)).scalars())
        audited = list(s.execute(select(AuditEntry.patient_id).where(AuditEntry.action == ACTION)).scalars())
        blobs = list(s.execute(select(StoredFile.sha256)).scalars())
    assert before <= restored, f"{len(before - restored)} patients committed before the backup are missing"
    assert restored <= everything
    assert len(restored) < len(everything)  # later writes are not in it: a point-in-time copy
    assert sorted(audited, key=str) == sorted(restored, key=str)  # one entry per patient, none half-written
    assert blobs, "the drill stored files"
    for sha in blobs:
        assert storage.get(sha)  # decrypts, and storage.get checks the content against its address
    assert (target.var_dir / "files").is_dir()
    verified = CliRunner().invoke(cli_app, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert f"{result.audit.entries} entries verified" in verified.output
