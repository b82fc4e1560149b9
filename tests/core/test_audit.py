"""The hash-chained audit log: every kind of tampering is caught by ``caresync audit verify``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update
from typer.testing import CliRunner

from caresync.cli import app as cli_app
from caresync.core import audit
from caresync.core.audit import AuditEntry, AuditHead, entry_hash, verify_chain
from caresync.core.auth import Principal, system_principal
from caresync.db import session_factory, transaction
from tests.conftest import API

ENTRIES = 6


def _verify_cli() -> Any:
    return CliRunner().invoke(cli_app, ["audit", "verify"])


@pytest.fixture
def chain(tx: Any) -> list[int]:
    """Six entries by different actors, one per transaction."""
    actor = Principal(user_id=uuid.uuid4(), role="doctor", full_name="Dr. Chain", client_ip="10.0.0.7")
    for i in range(ENTRIES):
        with tx() as s:
            who = actor if i % 2 else system_principal()
            audit.record(
                s,
                who,
                f"test.step{i}",
                patient_id=uuid.uuid4() if i == 2 else None,
                resource_type="Thing",
                resource_id=str(i),
                detail={"i": i, "note": "ünïcode"},
            )
    with tx() as s:
        return list(s.execute(select(AuditEntry.seq).order_by(AuditEntry.seq)).scalars())


def _expect_broken(kind: str, seq: int) -> str:
    result = _verify_cli()
    assert result.exit_code == 1, result.output
    assert f"audit chain BROKEN at entry {seq} ({kind})" in result.output
    with session_factory()() as s:
        problem = verify_chain(s).problem
    assert problem is not None
    assert (problem.kind, problem.seq) == (kind, seq)
    return result.output


def test_untampered_chain_passes(chain: list[int]) -> None:
    assert chain == list(range(1, ENTRIES + 1))
    result = _verify_cli()
    assert result.exit_code == 0, result.output
    assert f"audit chain OK: {ENTRIES} entries verified" in result.output


def test_empty_chain_passes() -> None:
    result = _verify_cli()
    assert result.exit_code == 0
    assert "0 entries verified" in result.output


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "test.innocent"),
        ("outcome", "denied"),
        ("flagged", True),
        ("actor_name", "Someone Else"),
        ("detail", '{"i": 3}'),
        ("client_ip", "192.168.0.1"),
        ("resource_id", "999"),
    ],
)
def test_altered_entry_is_named(chain: list[int], tx: Any, column: str, value: Any) -> None:
    with tx() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values({column: value}))
    output = _expect_broken("altered", 3)
    assert "entry 3 was altered" in output


def test_altered_entry_with_recomputed_hash_breaks_the_next_link(chain: list[int], tx: Any) -> None:
    """A forger who also recomputes the entry's own hash still breaks the following entry's link."""
    with tx() as s:
        entry = s.get(AuditEntry, 3)
        assert entry is not None
        entry.actor_name = "Someone Else"
        entry.hash = entry_hash(entry)
    _expect_broken("deleted", 4)


def test_deleted_entry_is_named(chain: list[int], tx: Any) -> None:
    with tx() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    output = _expect_broken("deleted", 4)
    assert "the entry before 4 was deleted" in output


def test_deleted_first_entry_is_named(chain: list[int], tx: Any) -> None:
    with tx() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == 1))
    _expect_broken("deleted", 2)


def test_inserted_entry_is_named(chain: list[int], tx: Any) -> None:
    """A well-formed forged entry slipped in after entry 2, later entries renumbered, its hash valid."""
    with tx() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq >= 3).values(seq=AuditEntry.seq + 1000))
        s.execute(update(AuditEntry).where(AuditEntry.seq >= 1000).values(seq=AuditEntry.seq - 999))
        before = s.get(AuditEntry, 2)
        after = s.get(AuditEntry, 4)
        assert before is not None
        assert after is not None
        forged = AuditEntry(
            seq=3,
            at=before.at,
            actor_id=None,
            actor_role="system",
            actor_name="CareSync system",
            organisation_id=None,
            action="test.forged",
            outcome="success",
            patient_id=None,
            resource_type="",
            resource_id="",
            client_ip="",
            flagged=False,
            detail="{}",
            prev_hash=before.hash,
        )
        forged.hash = entry_hash(forged)
        s.add(forged)
        s.flush()
        head = s.get(AuditHead, 1)
        assert head is not None
        head.seq += 1  # even a consistent head does not hide it
    output = _expect_broken("inserted", 3)
    assert "entry 3 was inserted" in output


def test_reordered_entries_are_named(chain: list[int], tx: Any) -> None:
    with tx() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(seq=-3))
        s.execute(update(AuditEntry).where(AuditEntry.seq == 4).values(seq=3))
        s.execute(update(AuditEntry).where(AuditEntry.seq == -3).values(seq=4))
    output = _expect_broken("reordered", 3)
    assert "entry 3 is out of order" in output


def test_truncated_tail_is_caught_by_the_head(chain: list[int], tx: Any) -> None:
    with tx() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
    output = _expect_broken("deleted", 5)
    assert "entries after 4 were deleted" in output


def test_truncated_tail_with_a_rewound_head_to_the_wrong_hash(chain: list[int], tx: Any) -> None:
    with tx() as s:
        s.execute(delete(AuditEntry).where(AuditEntry.seq == ENTRIES))
        s.execute(update(AuditHead).values(seq=ENTRIES - 1))  # right count, stale hash
    _expect_broken("deleted", ENTRIES)


def test_everything_deleted_is_caught(chain: list[int], tx: Any) -> None:
    with tx() as s:
        s.execute(delete(AuditEntry))
    _expect_broken("deleted", 1)


def test_entry_appended_outside_the_log_is_caught(chain: list[int], tx: Any) -> None:
    with tx() as s:
        last = s.get(AuditEntry, ENTRIES)
        assert last is not None
        extra = AuditEntry(
            seq=ENTRIES + 1,
            at=last.at,
            actor_id=None,
            actor_role="system",
            actor_name="x",
            organisation_id=None,
            action="test.sneaky",
            outcome="success",
            patient_id=None,
            resource_type="",
            resource_id="",
            client_ip="",
            flagged=False,
            detail="{}",
            prev_hash=last.hash,
        )
        extra.hash = entry_hash(extra)
        s.add(extra)
    _expect_broken("inserted", ENTRIES + 1)


def test_missing_head_row_is_caught(chain: list[int], tx: Any) -> None:
    with tx() as s:
        s.execute(delete(AuditHead))
    _expect_broken("deleted", 0)


def test_concurrent_appends_keep_one_valid_chain(tx: Any) -> None:
    threads, per_thread = 8, 3
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with transaction(session_factory()) as s:
                    audit.record(
                        s, system_principal(f"worker {n}"), "test.concurrent", detail={"n": n, "i": i}
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=300)
    assert not errors, errors
    with tx() as s:
        report = verify_chain(s)
        seqs = list(s.execute(select(AuditEntry.seq).order_by(AuditEntry.seq)).scalars())
        head = s.get(AuditHead, 1)
        per_worker = dict(
            s.execute(select(AuditEntry.actor_name, func.count()).group_by(AuditEntry.actor_name)).all()
        )
    assert report.ok
    assert report.entries == threads * per_thread
    assert seqs == list(range(1, threads * per_thread + 1))
    assert head is not None
    assert head.seq == threads * per_thread
    assert per_worker == {f"worker {n}": per_thread for n in range(threads)}


def test_a_failed_request_leaves_no_audit_entry(tx: Any) -> None:
    """An entry is part of the transaction it audits: if that rolls back, so does the entry."""

    class Boom(Exception):
        pass

    def failing_use_case() -> None:
        with transaction(session_factory()) as s:
            audit.record(s, system_principal(), "test.rolled_back")
            raise Boom

    with pytest.raises(Boom):
        failing_use_case()
    with tx() as s:
        assert s.execute(select(func.count()).select_from(AuditEntry)).scalar_one() == 0
        head = s.get(AuditHead, 1)
        assert head is not None
        assert head.seq == 0


def test_verify_job_endpoint(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    admin, doctor = make.staff("admin"), make.staff("doctor")
    admin_headers, doctor_headers = sign_in(admin), sign_in(doctor)
    started = client.post(f"{API}/admin/audit/verify", headers=admin_headers)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    assert started.json()["kind"] == "audit.verify"

    job = client.get(f"{API}/jobs/{job_id}", headers=admin_headers)
    assert job.status_code == 200
    data = job.json()
    assert (data["status"], data["progress"], data["message"]) == ("succeeded", 100, "Done")
    assert data["result"]["ok"] is True
    assert data["result"]["problem"] is None
    assert data["result"]["entries"] >= 2  # at least the two sign-ins
    assert data["finished_at"] is not None
    assert [j["id"] for j in client.get(f"{API}/jobs", headers=admin_headers).json()] == [job_id]

    assert client.get(f"{API}/jobs/{job_id}", headers=doctor_headers).status_code == 404
    assert client.get(f"{API}/jobs", headers=doctor_headers).json() == []
    assert client.get(f"{API}/jobs/{job_id}").status_code == 401
    assert client.post(f"{API}/admin/audit/verify", headers=doctor_headers).status_code == 403


def test_verify_job_reports_tampering(client: TestClient, make: Any, sign_in: Any, tx: Any) -> None:
    admin = make.staff("admin")
    headers = sign_in(admin)
    with tx() as s:
        s.execute(update(AuditEntry).where(AuditEntry.seq == 1).values(action="auth.nothing"))
    job_id = client.post(f"{API}/admin/audit/verify", headers=headers).json()["id"]
    result = client.get(f"{API}/jobs/{job_id}", headers=headers).json()
    assert result["status"] == "succeeded"
    assert result["result"]["ok"] is False
    assert result["result"]["problem"] == {"seq": 1, "kind": "altered", "message": "entry 1 was altered"}


_APPEND_SCRIPT = """
import sys
from caresync.core import audit
from caresync.core.auth import system_principal
from caresync.db import session_factory, transaction
import caresync.models
for i in range(int(sys.argv[2])):
    with transaction(session_factory()) as s:
        audit.record(s, system_principal(sys.argv[1]), "test.processes", detail={"i": i})
"""


def test_appends_from_several_processes_keep_one_valid_chain(tx: Any) -> None:
    """Web workers and the job worker are separate processes writing to one database (on SQLite they
    queue on a file lock); the chain stays whole and gapless."""
    processes, per_process = 3, 20
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    pool = [
        subprocess.Popen(  # noqa: S603 (this interpreter, our own script)
            [sys.executable, "-c", _APPEND_SCRIPT, f"process {n}", str(per_process)],
            env=env,
            stderr=subprocess.PIPE,
        )
        for n in range(processes)
    ]
    failures = [p.communicate(timeout=300)[1].decode()[-2000:] for p in pool if p.wait(timeout=300) != 0]
    assert not failures, failures
    with tx() as s:
        report = verify_chain(s)
        seqs = list(s.execute(select(AuditEntry.seq).order_by(AuditEntry.seq)).scalars())
        per_process_count = dict(
            s.execute(select(AuditEntry.actor_name, func.count()).group_by(AuditEntry.actor_name)).all()
        )
    assert report.ok
    assert seqs == list(range(1, processes * per_process + 1))
    assert per_process_count == {f"process {n}": per_process for n in range(processes)}
