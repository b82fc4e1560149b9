"""PNG and JPEG decoding: modes (16-bit, palette, alpha, CMYK, black and white), colour pictures that are
really greyscale, EXIF orientation, and damaged, tiny, huge or foreign files with the message each gets."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from caresync.core.errors import DomainError, UnsupportedMedia, ValidationFailed
from caresync.imaging.images import decode

pytestmark = pytest.mark.no_db

GRADIENT = (np.arange(40 * 64).reshape(40, 64) % 251).astype(np.uint8)  # 40 rows x 64 columns, no symmetry


def encode(image: Image.Image, kind: str = "PNG", **options: Any) -> bytes:
    """``image`` saved as ``kind``."""
    buffer = BytesIO()
    image.save(buffer, format=kind, **options)
    return buffer.getvalue()


def colour(rows: int = 40, columns: int = 64) -> np.ndarray:
    """An RGB picture whose channels differ (red ramp, green ramp the other way, constant blue)."""
    picture = np.zeros((rows, columns, 3), np.uint8)
    picture[..., 0] = np.linspace(0, 255, columns, dtype=np.uint8)
    picture[..., 1] = np.linspace(255, 0, columns, dtype=np.uint8)
    picture[..., 2] = 90
    return picture


def levels(pixels: np.ndarray) -> np.ndarray:
    """Decoded [0, 1] pixels back to 8-bit levels."""
    return np.asarray((pixels * 255).round(), dtype=np.uint8)


PICTURES = [
    # name, bytes, media type, channels, the steps reported
    ("grey PNG", encode(Image.fromarray(GRADIENT)), "image/png", 1, ()),
    ("colour PNG", encode(Image.fromarray(colour())), "image/png", 3, ()),
    (
        "grey PNG stored as RGB",
        encode(Image.fromarray(GRADIENT).convert("RGB")),
        "image/png",
        1,
        ("Colour channels identical: treated as greyscale",),
    ),
    ("colour JPEG", encode(Image.fromarray(colour()), "JPEG", quality=95), "image/jpeg", 3, ()),
    (
        "grey JPEG stored as RGB",
        encode(Image.fromarray(GRADIENT).convert("RGB"), "JPEG"),
        "image/jpeg",
        1,
        ("Colour channels identical: treated as greyscale",),
    ),
    ("grey JPEG", encode(Image.fromarray(GRADIENT), "JPEG"), "image/jpeg", 1, ()),
    (
        "RGBA PNG",
        encode(Image.fromarray(colour()).convert("RGBA")),
        "image/png",
        3,
        ("Transparency (alpha channel) dropped",),
    ),
    (
        "grey + alpha PNG",
        encode(Image.fromarray(GRADIENT).convert("LA")),
        "image/png",
        1,
        ("Transparency (alpha channel) dropped",),
    ),
    (
        "palette PNG",
        encode(Image.fromarray(colour()).convert("P")),
        "image/png",
        3,
        ("Palette colours expanded to RGB",),
    ),
    (
        "CMYK JPEG",
        encode(Image.fromarray(colour()).convert("CMYK"), "JPEG", quality=95),
        "image/jpeg",
        3,
        ("Converted from CMYK to RGB",),
    ),
    ("black and white PNG", encode(Image.fromarray(GRADIENT > 120)), "image/png", 1, ()),
]


@pytest.mark.parametrize(
    ("name", "data", "media_type", "channels", "steps"), PICTURES, ids=[case[0] for case in PICTURES]
)
def test_pictures_decode(
    name: str, data: bytes, media_type: str, channels: int, steps: tuple[str, ...]
) -> None:
    image = decode(data)
    assert image.media_type == media_type
    assert image.channels == channels
    assert image.pixels.shape == ((40, 64) if channels == 1 else (40, 64, 3))
    assert image.pixels.dtype == np.float32
    assert 0.0 <= float(image.pixels.min()) <= float(image.pixels.max()) <= 1.0
    assert image.steps == steps
    assert (image.modality, image.body_part, image.study_uid, image.pixel_spacing) == (None, None, None, None)


def test_lossless_pixels_are_exact() -> None:
    assert np.array_equal(levels(decode(encode(Image.fromarray(GRADIENT))).pixels), GRADIENT)
    assert np.array_equal(levels(decode(encode(Image.fromarray(colour()))).pixels), colour())
    rgba = np.dstack([colour(), np.full((40, 64), 7, np.uint8)])  # nearly transparent: colour kept as stored
    assert np.array_equal(levels(decode(encode(Image.fromarray(rgba))).pixels), colour())


def test_cmyk_jpeg_keeps_its_colours() -> None:
    image = decode(encode(Image.fromarray(colour()).convert("CMYK"), "JPEG", quality=95))
    assert np.abs(levels(image.pixels).astype(int) - colour()).mean() < 4


def test_sixteen_bit_png_keeps_its_precision() -> None:
    """A 16-bit greyscale PNG is scaled by 65535, not clipped to 8 bits (values above 255 stay distinct)."""
    values = np.linspace(0, 65535, 40 * 64).reshape(40, 64).astype(np.uint16)
    image = decode(encode(Image.fromarray(values)))
    assert image.channels == 1
    assert image.pixels == pytest.approx(values / 65535, abs=1e-6)
    assert len(np.unique(image.pixels)) == 40 * 64  # more levels than 8 bits could hold
    assert image.steps == ("16-bit greyscale scaled to 0 to 1 (divided by 65,535)",)


@pytest.mark.parametrize(
    ("orientation", "upright", "words"),
    [
        (1, lambda a: a, None),
        (2, lambda a: a[:, ::-1], "mirrored left to right"),
        (3, lambda a: a[::-1, ::-1], "rotated 180°"),
        (4, lambda a: a[::-1], "flipped upside down"),
        (5, lambda a: a.T, "mirrored and rotated 90° anticlockwise"),
        (6, lambda a: np.rot90(a, -1), "rotated 90° clockwise"),
        (7, lambda a: a[::-1, ::-1].T, "mirrored and rotated 90° clockwise"),
        (8, lambda a: np.rot90(a, 1), "rotated 90° anticlockwise"),
    ],
)
@pytest.mark.parametrize("kind", ["PNG", "JPEG"])
def test_exif_orientation_is_applied(orientation: int, upright: Any, words: str | None, kind: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    image = decode(
        encode(Image.fromarray(GRADIENT), kind, exif=exif, **({"quality": 100} if kind == "JPEG" else {}))
    )
    expected = upright(GRADIENT)
    assert image.pixels.shape == expected.shape
    error = np.abs(levels(image.pixels).astype(int) - expected).mean()
    assert error < (0.01 if kind == "PNG" else 3), error
    assert image.steps == ((f"EXIF orientation {orientation}: {words} to stand upright",) if words else ())


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` 8-bit grey pixels, with almost no image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(100)))
        + chunk(b"IEND", b"")
    )


PNG = encode(Image.fromarray(colour(100, 100)))
JPEG = encode(Image.fromarray(colour(100, 100)), "JPEG")

BAD = [
    ("empty", b"", ValidationFailed, "The file is empty."),
    (
        "PDF",
        b"%PDF-1.7\n...",
        UnsupportedMedia,
        "not a DICOM, PNG or JPEG image (its content is application/pdf)",
    ),
    ("text", b"patient notes", UnsupportedMedia, "its content is text/plain"),
    (
        "GIF",
        encode(Image.fromarray(GRADIENT), "GIF"),
        UnsupportedMedia,
        "its content is of no recognised format",
    ),
    ("TIFF", encode(Image.fromarray(GRADIENT), "TIFF"), UnsupportedMedia, "its content is image/tiff"),
    ("PNG cut in half", PNG[: len(PNG) // 2], ValidationFailed, "The PNG file is truncated"),
    (
        "PNG header only",
        PNG[:40],
        ValidationFailed,
        "The PNG file is truncated",
    ),
    ("JPEG cut in half", JPEG[: len(JPEG) // 2], ValidationFailed, "The JPEG file is truncated"),
    (
        "tiny PNG",
        encode(Image.fromarray(GRADIENT[:20])),
        ValidationFailed,
        "64 x 20 pixels; at least 32 x 32",
    ),
    ("tiny JPEG", encode(Image.fromarray(colour(31, 500)), "JPEG"), ValidationFailed, "500 x 31 pixels"),
    (
        "110 MP PNG",
        png_header(11000, 10000),
        ValidationFailed,
        "11000 x 10000 pixels (110 megapixels); the limit",
    ),
    (
        "400 MP PNG",
        png_header(20000, 20000),
        ValidationFailed,
        "too many pixels to decode safely; the limit is 100",
    ),
]


@pytest.mark.parametrize("data", [PNG[: len(PNG) // 2], PNG[:40], JPEG[: len(JPEG) // 2]])
def test_truncated_pictures_are_refused_even_where_pillow_would_pad_them(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as WeasyPrint sets it for its process
    with pytest.raises(ValidationFailed, match="file is truncated"):
        decode(data)


@pytest.mark.parametrize(("what", "data", "error", "words"), BAD, ids=[case[0] for case in BAD])
def test_bad_pictures_get_a_clear_4xx(what: str, data: bytes, error: type[DomainError], words: str) -> None:
    with pytest.raises(error) as caught:
        decode(data)
    assert 400 <= caught.value.status < 500
    assert words in caught.value.detail, caught.value.detail


@pytest.mark.parametrize(("shift", "channels"), [(0, 1), (1, 1), (2, 1), (3, 3), (40, 3)])
def test_nearly_equal_channels_count_as_greyscale(shift: int, channels: int) -> None:
    """Channels within 2 levels of each other (JPEG rounding) are greyscale; more is colour."""
    grey = GRADIENT.astype(np.int16)
    rgb = np.dstack([grey, grey, np.clip(grey + shift, 0, 255)]).astype(np.uint8)
    image = decode(encode(Image.fromarray(rgb)))
    assert image.channels == channels
    if channels == 1:
        assert image.pixels == pytest.approx(rgb.mean(axis=2) / 255, abs=1e-6)
