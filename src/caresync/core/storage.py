"""Content-addressed, encrypted file storage.

A file is named by the SHA-256 of its content (so the same upload is stored once and any corruption is
detectable) and written AES-256-GCM encrypted under ``var/files/ab/cdef…``. Uploads are checked for size
and for their real type by sniffing the first bytes, never trusting the filename or the client's
Content-Type.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Integer, String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from caresync.config import get_settings
from caresync.core import crypto
from caresync.core.errors import NotFound, TooLarge, UnsupportedMedia, ValidationFailed
from caresync.db import Base, UTCDateTime, utcnow

# (media type, offset, magic bytes): checked in order, first match wins.
_SIGNATURES: tuple[tuple[str, int, bytes], ...] = (
    ("application/pdf", 0, b"%PDF-"),
    ("image/png", 0, b"\x89PNG\r\n\x1a\n"),
    ("image/jpeg", 0, b"\xff\xd8\xff"),
    ("application/dicom", 128, b"DICM"),
    ("audio/wav", 8, b"WAVE"),
    ("audio/ogg", 0, b"OggS"),
    ("audio/flac", 0, b"fLaC"),
    ("audio/mpeg", 0, b"ID3"),
    ("video/webm", 0, b"\x1a\x45\xdf\xa3"),
    ("image/tiff", 0, b"II*\x00"),
    ("image/tiff", 0, b"MM\x00*"),
    ("application/zip", 0, b"PK\x03\x04"),  # e.g. a trained model's weights (torch.save)
)


def sniff(data: bytes) -> str | None:
    """The media type recognised from the content's magic bytes, or ``None``."""
    for media_type, offset, magic in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if media_type == "audio/wav" and data[:4] != b"RIFF":
                continue
            return media_type
    if data[:4] in (b"\x00\x00\x00\x18", b"\x00\x00\x00\x1c", b"\x00\x00\x00\x20") and data[4:8] == b"ftyp":
        return "audio/mp4"
    return "text/plain" if _looks_like_text(data) else None


def _looks_like_text(data: bytes) -> bool:
    if not data or b"\x00" in data[:8192]:
        return False
    try:
        data[:8192].decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class StoredFile(Base):
    """What is known about a stored blob."""

    __tablename__ = "stored_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class StoredObject:
    """A handle on a stored file."""

    sha256: str
    size: int
    media_type: str


def _path(sha256: str) -> Path:
    return get_settings().ensure_var_dir() / "files" / sha256[:2] / sha256[2:]


def check_size(data: bytes, max_bytes: int | None = None) -> None:
    """422 for an empty upload, 413 for one over ``max_bytes`` (default: the configured upload limit); for
    callers that must check before they decode, as :func:`put` checks before it stores."""
    limit = max_bytes or get_settings().max_upload_bytes
    if not data:
        raise ValidationFailed("The file is empty.", extra={"field": "file"})
    if len(data) > limit:
        raise TooLarge(f"The file is {len(data):,} bytes; the limit is {limit:,} bytes.")


def put(
    session: Session, data: bytes, *, allowed_types: Iterable[str], max_bytes: int | None = None
) -> StoredObject:
    """Check and store ``data``; returns its address. Raises 413/415/422 for unacceptable uploads."""
    check_size(data, max_bytes)
    allowed = set(allowed_types)
    media_type = sniff(data)
    if media_type not in allowed:
        found = media_type or "an unrecognised format"
        raise UnsupportedMedia(f"The file's content is {found}; accepted: {', '.join(sorted(allowed))}.")
    sha = hashlib.sha256(data).hexdigest()
    path = _path(sha)
    if not _intact(path, sha):  # new content, or a damaged copy that this upload repairs
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = crypto.encrypt(data, aad=sha.encode())
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
        os.replace(tmp, path)  # atomic: readers never see half a file
    if session.get(StoredFile, sha) is None:
        # ON CONFLICT DO NOTHING: two transactions storing the same content at once both succeed
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        row = {"sha256": sha, "size": len(data), "media_type": media_type, "created_at": utcnow()}
        session.execute(insert(StoredFile).values(**row).on_conflict_do_nothing(index_elements=["sha256"]))
    return StoredObject(sha256=sha, size=len(data), media_type=media_type)


def _intact(path: Path, sha256: str) -> bool:
    """Whether a stored blob exists and still decrypts to content with its address."""
    if not path.exists():
        return False
    try:
        return hashlib.sha256(crypto.decrypt(path.read_bytes(), aad=sha256.encode())).hexdigest() == sha256
    except ValueError:
        return False


def get(sha256: str) -> bytes:
    """Read and decrypt a stored file, checking that its content still matches its address."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound("No such file.")
    path = _path(sha256)
    if not path.exists():
        raise NotFound("No such file.")
    data = crypto.decrypt(path.read_bytes(), aad=sha256.encode())
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"stored file {sha256} does not match its address")
    return data
