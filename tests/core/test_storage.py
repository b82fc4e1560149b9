"""Content-addressed, encrypted file storage with size limits and type sniffing."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from caresync.core import storage
from caresync.core.errors import NotFound, TooLarge, UnsupportedMedia, ValidationFailed
from caresync.core.storage import StoredFile

PDF_ONLY = {"application/pdf"}
IMAGES = {"image/png", "image/jpeg"}


def tiny_png() -> bytes:
    """A real 1x1 PNG (signature, IHDR, IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def tiny_pdf(text: str = "Discharge letter for patient 42") -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n% "
        + text.encode()
        + b"\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def _blob_path(var_dir: Path, sha: str) -> Path:
    return var_dir / "files" / sha[:2] / sha[2:]


def test_put_get_round_trip_and_encryption_at_rest(tx: Any, var_dir: Path) -> None:
    data = tiny_pdf("Confidential: Maria Okafor, HIV negative")
    with tx() as s:
        stored = storage.put(s, data, allowed_types=PDF_ONLY)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert (stored.size, stored.media_type) == (len(data), "application/pdf")
    assert storage.get(stored.sha256) == data
    on_disk = _blob_path(var_dir, stored.sha256).read_bytes()
    assert b"Maria Okafor" not in on_disk
    assert b"%PDF" not in on_disk
    assert len(on_disk) == len(data) + 12 + 16  # nonce + ciphertext + GCM tag
    with tx() as s:
        row = s.get(StoredFile, stored.sha256)
        assert row is not None
        assert (row.size, row.media_type) == (len(data), "application/pdf")


def test_same_content_is_stored_once(tx: Any, var_dir: Path) -> None:
    data = tiny_png()
    with tx() as s:
        first = storage.put(s, data, allowed_types=IMAGES)
    with tx() as s:
        second = storage.put(s, data, allowed_types=IMAGES)
        rows = s.execute(select(func.count()).select_from(StoredFile)).scalar_one()
    assert first == second
    assert rows == 1
    files = [p for p in (var_dir / "files").rglob("*") if p.is_file() and p.name == first.sha256[2:]]
    assert len(files) == 1
    assert [p.name for p in files[0].parent.iterdir()] == [first.sha256[2:]]  # no temp files left over


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (tiny_pdf(), "application/pdf"),
        (tiny_png(), "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00", "application/dicom"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"RIFX\x24\x00\x00\x00WAVEfmt ", None),  # WAVE without RIFF is not a WAV
        (b"OggS\x00\x02", "audio/ogg"),
        (b"fLaC\x00\x00", "audio/flac"),
        (b"ID3\x04\x00", "audio/mpeg"),
        (b"\x1a\x45\xdf\xa3\x01", "video/webm"),
        (b"II*\x00\x08\x00", "image/tiff"),
        (b"MM\x00*\x00\x08", "image/tiff"),
        (b"\x00\x00\x00\x20ftypM4A ", "audio/mp4"),
        ("Blood pressure 120/80, Señora Pérez".encode(), "text/plain"),
        (b"\x00\x01\x02binary", None),
        (b"\xff\xfe\xfa invalid utf-8", None),
    ],
)
@pytest.mark.no_db
def test_sniff(data: bytes, media_type: str | None) -> None:
    assert storage.sniff(data) == media_type


def test_png_renamed_pdf_is_detected_as_png_and_refused(tx: Any) -> None:
    """The name and claimed type are never trusted: only the content's magic bytes count."""
    renamed = tiny_png()  # what a browser would upload as "scan.pdf" with Content-Type application/pdf
    assert storage.sniff(renamed) == "image/png"
    with tx() as s, pytest.raises(UnsupportedMedia) as caught:
        storage.put(s, renamed, allowed_types=PDF_ONLY)
    assert caught.value.status == 415
    assert "image/png" in caught.value.detail
    assert "application/pdf" in caught.value.detail
    with tx() as s:
        assert s.execute(select(func.count()).select_from(StoredFile)).scalar_one() == 0


def test_unrecognised_content_is_415(tx: Any) -> None:
    with tx() as s, pytest.raises(UnsupportedMedia) as caught:
        storage.put(s, b"\x00\x01\x02\x03", allowed_types=PDF_ONLY)
    assert caught.value.status == 415
    assert "unrecognised" in caught.value.detail


def test_too_large_is_413(tx: Any, settings_env: Any) -> None:
    data = tiny_pdf() + b"%" + b"x" * 2048
    with tx() as s, pytest.raises(TooLarge) as caught:
        storage.put(s, data, allowed_types=PDF_ONLY, max_bytes=1024)
    assert caught.value.status == 413
    assert "1,024" in caught.value.detail
    settings_env(max_upload_bytes=1500)  # the configured limit applies when none is given
    with tx() as s, pytest.raises(TooLarge):
        storage.put(s, data, allowed_types=PDF_ONLY)
    with tx() as s:  # exactly at the limit is fine
        exact = tiny_pdf()
        assert storage.put(s, exact, allowed_types=PDF_ONLY, max_bytes=len(exact)).size == len(exact)


def test_empty_is_422(tx: Any) -> None:
    with tx() as s, pytest.raises(ValidationFailed) as caught:
        storage.put(s, b"", allowed_types=PDF_ONLY)
    assert caught.value.status == 422
    assert "empty" in caught.value.detail


def test_tampered_file_on_disk_is_detected(tx: Any, var_dir: Path) -> None:
    with tx() as s:
        stored = storage.put(s, tiny_pdf(), allowed_types=PDF_ONLY)
    path = _blob_path(var_dir, stored.sha256)
    blob = bytearray(path.read_bytes())
    blob[20] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="integrity"):
        storage.get(stored.sha256)
    with tx() as s:  # uploading the same content again repairs the damaged copy
        storage.put(s, tiny_pdf(), allowed_types=PDF_ONLY)
    assert storage.get(stored.sha256) == tiny_pdf()


def test_file_swapped_under_another_address_is_detected(tx: Any, var_dir: Path) -> None:
    """A valid encrypted blob copied over another address fails: the address is bound as AAD."""
    with tx() as s:
        a = storage.put(s, tiny_pdf("first"), allowed_types=PDF_ONLY)
        b = storage.put(s, tiny_pdf("second"), allowed_types=PDF_ONLY)
    _blob_path(var_dir, b.sha256).write_bytes(_blob_path(var_dir, a.sha256).read_bytes())
    with pytest.raises(ValueError, match="integrity"):
        storage.get(b.sha256)


@pytest.mark.no_db
@pytest.mark.parametrize("address", ["", "../../etc/passwd", "ab" * 32 + "0", "G" * 64, "0" * 64])
def test_unknown_or_malformed_address_is_not_found(address: str) -> None:
    with pytest.raises(NotFound):
        storage.get(address)
