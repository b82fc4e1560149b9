"""The backup archive: create one, verify it without restoring, and restore it into an empty target.

Format (version 1), one file ``caresync-backup-<YYYYMMDDTHHMMSSZ>.csbak`` (a ``-<n>`` suffix if two are made
in the same second):

* **Header** (40 bytes): ``CSBAK01\\n``, a 16-byte random salt, and a 16-byte key id (HMAC-SHA256 of the
  storage key, truncated) that tells "made with another key" apart from "damaged".
* **Frames**, each ``flag (1 byte: 0 = more follow, 1 = final) | length (4 bytes, big-endian) |
  AES-256-GCM ciphertext and tag`` of up to 1 MiB of plaintext. The key is HKDF-SHA256 of
  ``CARESYNC_STORAGE_KEY`` with the salt, so **restoring needs the same ``CARESYNC_STORAGE_KEY``** (keep
  it, and ``CARESYNC_SECRET_KEY``, safe and apart from the backups: the archive is useless without it).
  The nonce is the frame's index and the header and flag are authenticated, so a flipped bit, reordered or
  missing frames, a truncated file or data after the final frame are all detected and named.
* The plaintext is a **gzip-compressed tar** with, in this order: the database dump, every stored file,
  then ``manifest.json``. The dump is ``database.sqlite3`` (SQLite's online backup API, one consistent
  snapshot even under concurrent writes) or ``database.pgdump`` (``pg_dump --format=custom``, one
  consistent snapshot). Stored files are copied as they are (already encrypted at rest, named
  ``files/ab/cdef...`` after the SHA-256 of their content) *after* the dump: a file is written before the
  row that refers to it commits, so every file the dump refers to is in the archive. The manifest holds
  the format version, creation time, CareSync version, Alembic schema revision, database kind and the
  SHA-256 and size of every other member.

:func:`create` writes an archive, :func:`verify` decrypts and checks one, :func:`restore` verifies, refuses a
non-empty target unless forced, restores the database and then the files, and verifies the audit chain.
"""

from __future__ import annotations

import base64
import glob
import gzip
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import create_engine, func, inspect, select, table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session

import caresync
from caresync.config import Settings, get_settings
from caresync.core.audit import ChainReport, verify_chain
from caresync.db import engine_for, make_engine

FORMAT_VERSION = 1
MAGIC = b"CSBAK01\n"
SALT_BYTES = KEY_ID_BYTES = 16
HEADER_BYTES = len(MAGIC) + SALT_BYTES + KEY_ID_BYTES
CHUNK_BYTES = 1024 * 1024
SUFFIX = ".csbak"
NAME_PREFIX = "caresync-backup-"
NAME_PATTERN = re.compile(r"^caresync-backup-(\d{8}T\d{6}Z)(?:-\d+)?\.csbak$")
MANIFEST = "manifest.json"
DB_MEMBERS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
BLOB_PATTERN = re.compile(r"^files/([0-9a-f]{2})/([0-9a-f]{62})$")
COPY_BYTES = 1024 * 1024

Progress = Callable[[int, str], None]


class BackupError(Exception):
    """A backup could not be made, read or restored; the message says why in words a person can act on."""


class ArchiveDamaged(BackupError):
    """The archive failed verification (``problems`` names what is wrong)."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path.name} failed verification: " + "; ".join(problems))
        self.problems = problems


class RestoreRefused(BackupError):
    """The target is not empty (``found`` says what is there) and the restore was not forced."""

    def __init__(self, found: list[str]) -> None:
        super().__init__(
            "The target is not empty (" + "; ".join(found) + "). Restoring replaces everything in it: "
            "use --force if that is what you want."
        )
        self.found = found


@dataclass
class Report:
    """The outcome of :func:`verify`."""

    path: Path
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    members: int = 0

    @property
    def ok(self) -> bool:
        """True when the archive decrypted completely and every checksum matched its manifest."""
        return not self.problems and self.manifest is not None


@dataclass(frozen=True)
class RestoreReport:
    """The outcome of :func:`restore`."""

    manifest: dict[str, Any]
    files_restored: int
    files_removed: int
    audit: ChainReport


# --- keys and the encrypted frame stream -------------------------------------------------------------------


def _storage_key(settings: Settings) -> bytes:
    key = base64.b64decode(settings.secret("storage_key"))
    if len(key) != 32:
        raise BackupError("CARESYNC_STORAGE_KEY must be 32 bytes, base64 encoded")
    return key


def _key_id(storage_key: bytes) -> bytes:
    return hmac.new(storage_key, b"caresync-backup key id", hashlib.sha256).digest()[:KEY_ID_BYTES]


def _archive_key(storage_key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"caresync-backup v1")
    return AESGCM(hkdf.derive(storage_key))


def _nonce(index: int) -> bytes:
    return index.to_bytes(12, "big")


class _EncryptingWriter(io.RawIOBase):
    """Buffers plaintext and writes it to ``out`` as authenticated frames; :meth:`close` writes the final
    frame."""

    def __init__(self, out: BinaryIO, storage_key: bytes) -> None:
        super().__init__()
        salt = secrets.token_bytes(SALT_BYTES)
        self._header = MAGIC + salt + _key_id(storage_key)
        self._aead = _archive_key(storage_key, salt)
        self._out = out
        self._buffer = bytearray()
        self._index = 0
        out.write(self._header)

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK_BYTES:
            self._frame(bytes(self._buffer[:CHUNK_BYTES]), final=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def _frame(self, plaintext: bytes, *, final: bool) -> None:
        flag = b"\x01" if final else b"\x00"
        sealed = self._aead.encrypt(_nonce(self._index), plaintext, self._header + flag)
        self._out.write(flag + len(sealed).to_bytes(4, "big") + sealed)
        self._index += 1

    def close(self) -> None:
        if not self.closed:
            self._frame(bytes(self._buffer), final=True)
            self._buffer.clear()
        super().close()


class _DecryptingReader(io.RawIOBase):
    """Reads an archive's frames back as plaintext, raising :class:`BackupError` naming the first damage."""

    def __init__(self, source: BinaryIO, storage_key: bytes) -> None:
        super().__init__()
        header = source.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES or not header.startswith(MAGIC):
            raise BackupError("not a CareSync backup archive (unknown header)")
        if not hmac.compare_digest(header[-KEY_ID_BYTES:], _key_id(storage_key)):
            raise BackupError(
                "the archive was made with a different CARESYNC_STORAGE_KEY: set the key of the "
                "installation that made it"
            )
        self._header = header
        self._aead = _archive_key(storage_key, header[len(MAGIC) : len(MAGIC) + SALT_BYTES])
        self._source = source
        self._pending = b""
        self._index = 0
        self._offset = HEADER_BYTES
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._done:
            self._pending = self._next_frame()
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _next_frame(self) -> bytes:
        start = self._offset
        head = self._source.read(5)
        if len(head) < 5 or head[0] not in (0, 1):
            if not head:
                raise BackupError(f"the archive is truncated: it ends at byte {start} before its final part")
            raise BackupError(f"the archive is damaged at byte {start} (frame {self._index} header)")
        length = int.from_bytes(head[1:], "big")
        if length > CHUNK_BYTES + 16:
            raise BackupError(f"the archive is damaged at byte {start} (frame {self._index} length)")
        sealed = self._source.read(length)
        if len(sealed) < length:
            raise BackupError(f"the archive is truncated: frame {self._index} at byte {start} is incomplete")
        try:
            plaintext = self._aead.decrypt(_nonce(self._index), sealed, self._header + head[:1])
        except InvalidTag:
            raise BackupError(
                f"the archive is damaged: frame {self._index} (bytes {start}-{start + 5 + length}) failed "
                "its integrity check"
            ) from None
        self._index += 1
        self._offset += 5 + length
        if head[0] == 1:
            self._done = True
            if self._source.read(1):
                raise BackupError(f"the archive has unexpected data after its end (byte {self._offset})")
        return plaintext


def _open_tar(handle: BinaryIO, storage_key: bytes) -> tarfile.TarFile:
    plain = io.BufferedReader(_DecryptingReader(handle, storage_key), buffer_size=CHUNK_BYTES)
    gz = gzip.GzipFile(fileobj=plain, mode="rb")
    return tarfile.open(fileobj=gz, mode="r|")


# --- creating ----------------------------------------------------------------------------------------------


def backup_dir(settings: Settings) -> Path:
    """Where archives are written: ``CARESYNC_BACKUP_DIR``, else ``var_dir/backups``."""
    return settings.backup_dir or settings.var_dir / "backups"


def archive_name(created: datetime, n: int = 0) -> str:
    """The file name of an archive made at ``created`` (``n`` > 0 for a second one in the same second)."""
    stamp = created.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{NAME_PREFIX}{stamp}{f'-{n}' if n else ''}{SUFFIX}"


def created_at(path: Path) -> datetime | None:
    """The creation time carried by an archive's name (``None`` if the name is not an archive's)."""
    match = NAME_PATTERN.match(path.name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


class _HashingReader:
    """A file wrapper that hashes what is read through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.sha256 = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.sha256.update(data)
        return data


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        info = tarfile.TarInfo(name)
        info.size = os.fstat(handle.fileno()).st_size
        info.mode = 0o600
        reader = _HashingReader(handle)
        tar.addfile(info, reader)  # tarfile only calls read()
    return {"name": name, "sha256": reader.sha256.hexdigest(), "size": info.size}


def _stored_blobs(settings: Settings) -> Iterator[tuple[str, Path]]:
    root = settings.var_dir / "files"
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if not folder.is_dir():
            continue
        for blob in sorted(folder.iterdir()):
            name = f"files/{folder.name}/{blob.name}"
            if BLOB_PATTERN.match(name) and blob.is_file():
                yield name, blob


def database_kind(settings: Settings) -> str:
    """``sqlite`` or ``postgresql``."""
    return "sqlite" if settings.is_sqlite else "postgresql"


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.resolved_database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _dump_sqlite(settings: Settings, out: Path) -> None:
    path = _sqlite_path(settings)
    if not path.is_file():
        raise BackupError(f"there is no database at {path}")
    source = sqlite3.connect(str(path), timeout=60)
    target = sqlite3.connect(str(out))
    try:
        source.backup(target)  # all pages in one step: one read snapshot, writers carry on (WAL)
    finally:
        target.close()
        source.close()


def pg_tool(name: str) -> str:
    """The newest installed PostgreSQL client program ``name`` (Debian keeps them per major version under
    ``/usr/lib/postgresql/<major>/bin``; a newer ``pg_dump`` reads older servers), else the one on PATH."""

    def major(path: str) -> int:
        part = Path(path).parent.parent.name
        return int(part) if part.isdigit() else 0

    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=major, reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} was not found: install the PostgreSQL client (Debian: postgresql-client)")
    return found


def _libpq(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and an environment carrying it (never on a command line)."""
    url: URL = make_url(settings.resolved_database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise BackupError(f"{what} failed (exit {result.returncode}): {tail}")


def _dump_postgres(settings: Settings, out: Path) -> None:
    uri, env = _libpq(settings)
    # --compress=0: the archive is compressed as a whole; one consistent snapshot is pg_dump's default.
    args = [pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password", f"--file={out}", uri]
    _run(args, env, "pg_dump")


def _schema_revision(settings: Settings) -> str | None:
    """The Alembic revision of the database (``None`` for a schema not made by migrations)."""
    engine = create_engine(settings.resolved_database_url)  # a plain reader: takes no writer lock
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    finally:
        engine.dispose()
    return str(row[0]) if row else None


def _reserve_name(folder: Path, created: datetime) -> Path:
    for n in range(1000):
        path = folder / archive_name(created, n)
        if not path.exists() and not path.with_name(path.name + ".partial").exists():
            return path
    raise BackupError(f"too many backups made in the same second in {folder}")


def _write_archive(
    raw: BinaryIO,
    key: bytes,
    dump: Path,
    blobs: list[tuple[str, Path]],
    header: dict[str, Any],
    report: Progress,
) -> None:
    """The dump, the files, then the manifest: tar, gzip, encrypted frames."""
    writer = _EncryptingWriter(raw, key)
    gz = gzip.GzipFile(fileobj=writer, mode="wb", compresslevel=6, mtime=0)
    with gz, tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        report(30, "Archiving the database")
        members = [_add_file(tar, dump.name, dump)]
        for i, (name, blob) in enumerate(blobs):
            try:
                members.append(_add_file(tar, name, blob))
            except FileNotFoundError:  # removed since it was listed: no row of the dump can need it
                continue
            if i % 200 == 0:
                report(30 + 65 * i // max(1, len(blobs)), f"Archiving files ({i}/{len(blobs)})")
        manifest = {**header, "files": len(members) - 1, "members": members}
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    writer.close()


def create(settings: Settings | None = None, *, progress: Progress | None = None) -> Path:
    """Write a new archive of the configured database and every stored file; returns its path.

    The archive is written as ``<name>.partial`` and renamed when complete, so a crash never leaves
    something that looks like a backup."""
    settings = settings or get_settings()
    report = progress or (lambda _percent, _message: None)
    key = _storage_key(settings)
    folder = backup_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC).replace(microsecond=0)
    final = _reserve_name(folder, created)
    partial = final.with_name(final.name + ".partial")
    kind = database_kind(settings)
    try:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".dump-") as tmp:
            report(5, "Taking a snapshot of the database")
            dump = Path(tmp) / DB_MEMBERS[kind]
            (_dump_sqlite if kind == "sqlite" else _dump_postgres)(settings, dump)
            header = {
                "format": "caresync-backup",
                "format_version": FORMAT_VERSION,
                "created_at": created.isoformat(),
                "caresync_version": caresync.__version__,
                "schema_revision": _schema_revision(settings),
                "database": kind,
            }
            with partial.open("wb") as raw:
                _write_archive(raw, key, dump, list(_stored_blobs(settings)), header, report)
                raw.flush()
                os.fsync(raw.fileno())
        os.replace(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    report(100, "Backup written")
    return final


# --- verifying ---------------------------------------------------------------------------------------------


def _check_blob(name: str, data: bytes, aead: AESGCM) -> str | None:
    """Whether a stored file still decrypts to content with its address (the storage layout's own check)."""
    match = BLOB_PATTERN.match(name)
    assert match is not None
    sha = match.group(1) + match.group(2)
    try:
        content = aead.decrypt(data[:12], data[12:], sha.encode())
    except (InvalidTag, ValueError):
        return f"{name} does not decrypt with this storage key"
    if hashlib.sha256(content).hexdigest() != sha:
        return f"{name} does not match its address"
    return None


def _member_problem(member: tarfile.TarInfo, allowed_db: set[str]) -> str | None:
    if not member.isfile():
        return f"unexpected entry {member.name!r} (not a regular file)"
    if member.name != MANIFEST and member.name not in allowed_db and not BLOB_PATTERN.match(member.name):
        return f"unexpected entry {member.name!r}"
    return None


def _read_member(stream: IO[bytes], write: Callable[[bytes], object] | None) -> tuple[str, int, bytes | None]:
    """Hash a member while passing it to ``write``; without ``write`` its content is returned whole (stored
    files: at most the upload limit)."""
    sha, size, kept = hashlib.sha256(), 0, bytearray()
    while chunk := stream.read(COPY_BYTES):
        sha.update(chunk)
        size += len(chunk)
        if write is not None:
            write(chunk)
        else:
            kept += chunk
    return sha.hexdigest(), size, bytes(kept) if write is None else None


def _compare(report: Report, seen: dict[str, tuple[str, int]]) -> None:
    manifest = report.manifest
    if manifest is None:
        report.problems.append("manifest.json is missing")
        return
    if manifest.get("format") != "caresync-backup" or manifest.get("format_version") != FORMAT_VERSION:
        report.problems.append(f"unsupported archive format {manifest.get('format_version')!r}")
        return
    listed = {m["name"]: m for m in manifest.get("members", [])}
    db_member = DB_MEMBERS.get(str(manifest.get("database")))
    if db_member is None or db_member not in listed:
        report.problems.append("the manifest names no database dump")
    for name, entry in listed.items():
        if name not in seen:
            report.problems.append(f"{name} is missing")
        elif seen[name] != (entry["sha256"], entry["size"]):
            report.problems.append(f"{name} does not match its checksum in the manifest")
    report.problems.extend(f"{name} is not in the manifest" for name in seen if name not in listed)


def _walk(
    path: Path, settings: Settings, on_member: Callable[[tarfile.TarInfo, IO[bytes]], tuple[str, int] | None]
) -> Report:
    """Decrypt and read the whole archive, checking every member; ``on_member`` may take a member's
    content (returning its hash and size) instead of the default check."""
    report = Report(path=path)
    key = _storage_key(settings)
    blob_aead = AESGCM(key)
    seen: dict[str, tuple[str, int]] = {}
    try:
        with path.open("rb") as handle, _open_tar(handle, key) as tar:
            for member in tar:
                report.members += 1
                problem = _member_problem(member, set(DB_MEMBERS.values()))
                stream = tar.extractfile(member)
                if problem or stream is None:
                    report.problems.append(problem or f"unreadable entry {member.name!r}")
                    continue
                if member.name == MANIFEST:
                    try:
                        report.manifest = json.loads(stream.read())
                    except ValueError:
                        report.problems.append("manifest.json is not valid JSON")
                    continue
                taken = on_member(member, stream)
                if taken is None:
                    is_blob = member.name.startswith("files/")
                    sha, size, data = _read_member(stream, None if is_blob else _discard)
                    if data is not None and (blob := _check_blob(member.name, data, blob_aead)):
                        report.problems.append(blob)
                    taken = (sha, size)
                seen[member.name] = taken
    except BackupError as exc:
        report.problems.append(str(exc))
        return report
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        report.problems.append(f"the archive's content is unreadable ({type(exc).__name__}: {exc})")
        return report
    _compare(report, seen)
    return report


def _discard(_chunk: bytes) -> None:
    """Verification reads the database dump only to hash it."""


def verify(path: Path, settings: Settings | None = None) -> Report:
    """Decrypt the whole archive and check the manifest and every member's SHA-256 and size (and that
    every stored file still decrypts to its address), without restoring anything."""
    settings = settings or get_settings()
    if not path.is_file():
        return Report(path=path, problems=[f"{path} does not exist"])
    return _walk(path, settings, lambda _member, _stream: None)


# --- restoring ---------------------------------------------------------------------------------------------


def target_contents(settings: Settings | None = None) -> list[str]:
    """What the configured target already holds (empty list: nothing, restoring there is safe): tables
    with rows (the seeded audit-chain head does not count) and stored files."""
    settings = settings or get_settings()
    found: list[str] = []
    if not settings.is_sqlite or _sqlite_path(settings).exists():
        engine = create_engine(settings.resolved_database_url)
        try:
            with engine.connect() as conn:
                for name in sorted(inspect(conn).get_table_names()):
                    if name == "alembic_version":
                        continue
                    query = select(func.count()).select_from(table(name))
                    if name == "audit_head":
                        query = query.where(text("seq > 0"))
                    if conn.execute(query).scalar_one():
                        found.append(name)
                conn.rollback()
        finally:
            engine.dispose()
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        found = [f"tables with rows: {shown}"]
    files = sum(1 for _ in _stored_blobs(settings))
    if files:
        found.append(f"{files} stored files")
    return found


def _restore_sqlite(settings: Settings, dump: Path) -> None:
    target = _sqlite_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    engine_for(settings.resolved_database_url).dispose()
    staged = target.with_name(target.name + ".restoring")
    shutil.copyfile(dump, staged)
    # A write-ahead log left next to the old file would be replayed onto the new one: remove it first.
    for suffix in ("-wal", "-shm", "-journal"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(staged, target)


def _restore_postgres(settings: Settings, dump: Path, *, clear: bool) -> None:
    engine_for(settings.resolved_database_url).dispose()
    if clear:
        admin = create_engine(settings.resolved_database_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        finally:
            admin.dispose()
    uri, env = _libpq(settings)
    args = [
        pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-acl", "--exit-on-error",
        "--single-transaction", "--no-password", f"--dbname={uri}", str(dump),
    ]  # fmt: skip
    _run(args, env, "pg_restore")


def _verify_audit(settings: Settings) -> ChainReport:
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            return verify_chain(session)
    finally:
        engine.dispose()


def restore(path: Path, force: bool = False, settings: Settings | None = None) -> RestoreReport:
    """Restore an archive into the configured database and var dir, then verify the audit chain.

    The archive is verified completely first (nothing is touched if it is damaged). A target holding any
    row or stored file is refused (:class:`RestoreRefused`) unless ``force``: then everything in it is
    replaced (on PostgreSQL the ``public`` schema is dropped and recreated; stored files that are not in
    the archive are deleted). The web and job processes must be stopped while restoring."""
    settings = settings or get_settings()
    checked = verify(path, settings)
    if not checked.ok or checked.manifest is None:
        raise ArchiveDamaged(path, checked.problems)
    manifest = checked.manifest
    kind = database_kind(settings)
    if manifest["database"] != kind:
        raise BackupError(
            f"the archive holds a {manifest['database']} database but the configured one is {kind}; "
            "restore it into the same kind of database"
        )
    found = target_contents(settings)
    if found and not force:
        raise RestoreRefused(found)
    settings.ensure_var_dir()
    staging = Path(tempfile.mkdtemp(dir=settings.var_dir, prefix=".restore-"))
    try:
        _stage(path, settings, staging)
        dump = staging / DB_MEMBERS[kind]
        if kind == "sqlite":
            _restore_sqlite(settings, dump)
        else:
            _restore_postgres(settings, dump, clear=bool(found))
        restored, removed = _place_files(settings, staging / "files", manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RestoreReport(manifest, restored, removed, _verify_audit(settings))


def _stage(path: Path, settings: Settings, staging: Path) -> None:
    """Unpack the archive into ``staging``, checking every member again against the manifest."""

    def take(member: tarfile.TarInfo, stream: IO[bytes]) -> tuple[str, int]:
        out = staging / member.name  # names were checked against fixed patterns: no path traversal
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as sink:
            sha, size, _ = _read_member(stream, sink.write)
        return sha, size

    report = _walk(path, settings, take)
    if not report.ok:  # changed since it was verified a moment ago
        raise ArchiveDamaged(path, report.problems)


def _place_files(settings: Settings, staged: Path, manifest: dict[str, Any]) -> tuple[int, int]:
    (settings.var_dir / "files").mkdir(parents=True, exist_ok=True)
    names = {m["name"] for m in manifest["members"] if BLOB_PATTERN.match(m["name"])}
    for name in sorted(names):
        target = settings.var_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged / name[len("files/") :], target)
    removed = 0
    for name, blob in list(_stored_blobs(settings)):
        if name not in names:
            blob.unlink()
            removed += 1
    return len(names), removed
