"""Documents for the demo records, with the standard library only: a small text PDF writer (A4, the
standard Helvetica fonts, exact cross-reference offsets) and PNG images of ECG strips."""

from __future__ import annotations

import functools
import math
import random
import struct
import zlib
from collections.abc import Sequence
from datetime import datetime

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4, in points
MARGIN = 56
BODY_SIZE, HEADING_SIZE, TITLE_SIZE, FOOTER_SIZE = 10.0, 11.5, 15.0, 8.0
LEADING = 14.0
TABLE_COLUMNS = (0, 175, 245, 335, 450)  # x offsets of a table row's cells
# Helvetica advance widths (1/1000 em) of the printable ASCII characters, from Adobe's standard metrics.
_HELVETICA = (
    (278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278)
    + (556,) * 10
    + (278, 278, 584, 584, 584, 556, 1015)
    + (667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833)
    + (722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611)
    + (278, 278, 278, 469, 556, 333)
    + (556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833)
    + (556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500)
    + (334, 260, 334, 584)
)

Line = str | tuple[str, ...]


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """The width in points of ``text`` set in Helvetica (bold approximated) at ``size``."""
    units = sum(_HELVETICA[ord(c) - 32] if 32 <= ord(c) < 127 else 556 for c in text)
    return units * size / 1000 * (1.08 if bold else 1.0)


def wrap(text: str, size: float, width: float) -> list[str]:
    """``text`` broken into lines no wider than ``width`` points (a longer single word stays whole)."""
    space = text_width(" ", size)
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    for word in text.split():
        needed = text_width(word, size)
        if current and used + space + needed > width:
            lines.append(" ".join(current))
            current, used = [], 0.0
        used += (space if current else 0.0) + needed
        current.append(word)
    return [*lines, " ".join(current)] if current else lines or [""]


def _pdf_text(value: str) -> bytes:
    """A PDF string literal in WinAnsiEncoding (characters outside it become '?')."""
    raw = value.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _pdf_info_text(value: str) -> bytes:
    """A PDF text string for the document information (UTF-16 with a byte-order mark)."""
    return b"<" + ("\ufeff" + value).encode("utf-16-be").hex().upper().encode() + b">"


def _show(x: float, y: float, size: float, text: str, *, bold: bool = False) -> bytes:
    font = b"/F2" if bold else b"/F1"
    return b"BT %s %.1f Tf %.2f %.2f Td %s Tj ET\n" % (font, size, x, y, _pdf_text(text))


def text_pdf(
    title: str,
    lines: Sequence[Line],
    *,
    subtitle: str = "",
    footer: str = "",
    created: datetime | None = None,
) -> bytes:
    """A text PDF (A4, the standard Helvetica fonts, as many pages as the lines need): ``title`` in bold,
    an optional grey ``subtitle`` and a rule, then ``lines``. A line starting with ``"# "`` is a bold
    heading, an empty line a small gap, a tuple a table row whose cells sit at :data:`TABLE_COLUMNS`, any
    other string a paragraph wrapped to the page. Each page has ``footer`` and "Page i of n" at the bottom.
    The cross-reference table holds every object's exact byte offset, so any PDF reader opens it."""
    usable = PAGE_WIDTH - 2 * MARGIN
    top, bottom = PAGE_HEIGHT - MARGIN, MARGIN + 28
    pages: list[list[bytes]] = [[]]
    y = top - TITLE_SIZE
    pages[0].append(b"0.11 0.25 0.45 rg\n" + _show(MARGIN, y, TITLE_SIZE, title, bold=True) + b"0 g\n")
    if subtitle:
        y -= LEADING + 2
        pages[0].append(b"0.35 g\n" + _show(MARGIN, y, BODY_SIZE - 1, subtitle) + b"0 g\n")
    y -= 10
    pages[0].append(b"0.6 G 0.8 w %d %.2f m %d %.2f l S 0 G\n" % (MARGIN, y, PAGE_WIDTH - MARGIN, y))
    y -= LEADING + 4

    def room(height: float) -> None:
        nonlocal y
        if y - height < bottom:
            pages.append([])
            y = top - BODY_SIZE

    for line in lines:
        if isinstance(line, tuple):
            room(0)
            for x, cell in zip(TABLE_COLUMNS, line, strict=False):
                pages[-1].append(_show(MARGIN + x, y, BODY_SIZE, cell))
            y -= LEADING
        elif line.startswith("# "):
            room(2 * LEADING + 6)  # a heading never ends a page
            y -= 6
            pages[-1].append(_show(MARGIN, y, HEADING_SIZE, line[2:], bold=True))
            y -= LEADING + 2
        elif not line:
            y -= LEADING / 2
        else:
            for part in wrap(line, BODY_SIZE, usable):
                room(0)
                pages[-1].append(_show(MARGIN, y, BODY_SIZE, part))
                y -= LEADING
    count = len(pages)
    streams = [
        b"".join(ops)
        + b"0.4 g\n"
        + _show(MARGIN, MARGIN - 20, FOOTER_SIZE, f"{footer}   Page {n} of {count}".strip())
        + b"0 g\n"
        for n, ops in enumerate(pages, 1)
    ]
    stamp = (created or datetime(2026, 1, 1)).strftime("D:%Y%m%d%H%M%SZ")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (6 + 2 * i) for i in range(count)), count),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title %s /Producer (CareSync) /CreationDate (%s) >>" % (_pdf_info_text(title), stamp.encode()),
    ]
    for i, stream in enumerate(streams):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R "
            b"/F2 4 0 R >> >> /Contents %d 0 R >>" % (PAGE_WIDTH, PAGE_HEIGHT, 7 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n" % (len(objects) + 1, xref)
    return bytes(out + b"%%EOF\n")


def png(
    width: int, height: int, palette: Sequence[tuple[int, int, int]], rows: Sequence[bytes | bytearray]
) -> bytes:
    """An 8-bit indexed-colour PNG of ``rows`` (one palette index per pixel)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(row) for row in rows)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
        + chunk(b"PLTE", bytes(c for rgb in palette for c in rgb))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


# ECG waves relative to the R peak: (millivolts, centre in seconds, width in seconds).
_QRST = ((-0.12, -0.035, 0.009), (1.15, 0.0, 0.011), (-0.28, 0.03, 0.011), (0.32, 0.27, 0.045))
_P_WAVE = (0.14, -0.16, 0.024)


@functools.lru_cache(maxsize=4)
def ecg_strip(rhythm: str = "sinus", heart_rate: int = 72) -> bytes:
    """A 6-second lead II rhythm strip on ECG paper (25 mm/s, 10 mm/mV, 5 px per mm) as a PNG, with a 1 mV
    calibration pulse: ``sinus`` rhythm at ``heart_rate``, or ``af`` (atrial fibrillation: irregular
    intervals, no P waves, a fibrillating baseline)."""
    mm = 5
    width, height, baseline = 150 * mm, 40 * mm, 24 * mm
    rng = random.Random(f"{rhythm}:{heart_rate}")
    major = bytearray(2 for _ in range(width))
    minor = bytearray(2 if x % (5 * mm) == 0 else 1 for x in range(width))
    paper = bytearray(2 if x % (5 * mm) == 0 else 1 if x % mm == 0 else 0 for x in range(width))
    rows = [bytearray(major if y % (5 * mm) == 0 else minor if y % mm == 0 else paper) for y in range(height)]
    seconds_per_px = 1 / (25 * mm)
    beats, t = [], 0.55
    while t < 6.5:
        beats.append(t)
        interval = 60 / heart_rate
        t += interval * (rng.uniform(0.65, 1.35) if rhythm == "af" else rng.uniform(0.98, 1.02))
    waves = _QRST if rhythm == "af" else (_P_WAVE, *_QRST)
    trace = []
    for x in range(width):
        t = x * seconds_per_px
        if x < 45:  # the calibration pulse: 1 mV for 0.2 s
            volts = 1.0 if 10 <= x < 35 else 0.0
        else:
            volts = sum(
                amplitude * math.exp(-(((t - beat - centre) / spread) ** 2) / 2)
                for beat in beats
                if abs(t - beat) < 0.6
                for amplitude, centre, spread in waves
            )
            if rhythm == "af":
                volts += 0.05 * math.sin(2 * math.pi * 6.3 * t) + rng.uniform(-0.02, 0.02)
        trace.append(min(height - 2, max(1, round(baseline - volts * 10 * mm))))
    for x in range(1, width - 1):
        low, high = sorted((trace[x - 1], trace[x]))
        for y in range(low, high + 2):
            rows[y][x] = rows[y][x + 1] = 3
    palette = ((255, 248, 248), (247, 207, 207), (232, 148, 148), (25, 25, 45))
    return png(width, height, palette, rows)
