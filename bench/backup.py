"""Backup benchmark: backup, verify and restore times and the archive size for the demo dataset scaled x10.

Run as its own process: ``python bench/backup.py [--patients 6000]``.

It builds a fresh SQLite deployment in a temp directory (``caresync migrate`` + ``caresync demo --patients
6000``, ten times the default demo), then times, as an operator runs them (wall time of each CLI command,
Python start-up included):

1. ``caresync backup create``;
2. ``caresync backup verify ARCHIVE`` (decrypts everything and checks every checksum);
3. ``caresync backup restore ARCHIVE --yes`` into a second, empty var dir with the same
   ``CARESYNC_STORAGE_KEY`` (restores the database and files, then verifies the audit chain).

The issue sets no target, so ``target`` is null and the figures are reported as they are. Prints one JSON
object on stdout; progress on stderr. The temp directory is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import api_load
from api_load import Server, log


def timed(server: Server, env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run ``caresync <args>`` with ``env``; returns its wall time and output (fails loudly)."""
    t0 = time.perf_counter()
    result = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
        [sys.executable, "-m", "caresync.cli", *args], cwd=server.root, env=env,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    if result.returncode != 0:
        raise RuntimeError(
            f"`caresync {' '.join(args)}` failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return seconds, result.stdout


def folder_figures(var_dir: Path) -> dict[str, Any]:
    """Size of the database and number and size of the stored files."""
    files = [p for p in (var_dir / "files").rglob("*") if p.is_file()]
    return {
        "database_bytes": (var_dir / "caresync.db").stat().st_size,
        "stored_files": len(files),
        "stored_files_bytes": sum(p.stat().st_size for p in files),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=6000, help="demo patients (default 6000: x10)")
    parser.add_argument("--setup-timeout", type=int, default=3600, help="seconds allowed for the demo data")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    api_load.SETUP_TIMEOUT_S = args.setup_timeout
    server = Server(port=0, workers=1, patients=args.patients)
    try:
        t0 = time.perf_counter()
        server.setup()
        setup_s = time.perf_counter() - t0
        source = folder_figures(server.var_dir)
        log(f"deployment ready in {setup_s:.0f}s: {source}")

        create_s, out = timed(server, server.env, "backup", "create")
        archive = Path(out.splitlines()[0])
        size = archive.stat().st_size
        log(f"created {archive.name} ({archive.stat().st_size:,} bytes) in {create_s:.1f}s")
        verify_s, _ = timed(server, server.env, "backup", "verify", str(archive))
        log(f"verified in {verify_s:.1f}s")

        target = server.root / "restored"
        key = (server.var_dir / "storage_key").read_text().strip()
        env = {**server.env, "CARESYNC_VAR_DIR": str(target), "CARESYNC_STORAGE_KEY": key}
        restore_s, out = timed(server, env, "backup", "restore", str(archive), "--yes")
        audit_line = next(line for line in out.splitlines() if line.startswith("audit chain"))
        log(f"restored in {restore_s:.1f}s: {audit_line}")
        restored = folder_figures(target)
    except Exception as exc:
        log(f"FAILED: {type(exc).__name__}: {exc}")
        return 1
    finally:
        shutil.rmtree(server.root, ignore_errors=True)
    result = {
        "benchmark": "backup",
        "patients": args.patients,
        "setup_s": round(setup_s, 1),
        "source": source,
        "archive_bytes": size,
        "create_s": round(create_s, 2),
        "verify_s": round(verify_s, 2),
        "restore_s": round(restore_s, 2),
        "restored": restored,
        "files_identical": (restored["stored_files"], restored["stored_files_bytes"])
        == (source["stored_files"], source["stored_files_bytes"]),
        "audit_after_restore": audit_line,
        "unit": "seconds (wall time of each CLI command)",
        "target": None,
        "met": None,
        "cores": os.cpu_count(),
        "database": "sqlite",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
