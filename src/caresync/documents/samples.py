"""Synthetic scanned pages and spoken consultations, for the demo data and the document tests.

Pages: a letter is rendered with Pillow the way a 300-dpi office scanner sees paper (a grey, unevenly lit
sheet, slightly tilted, with sensor noise and dust speckles) and saved as an image-only PDF; a born-digital
PDF with a real text layer stands for a letter exported by a word processor.

Speech: each line of a dialogue is spoken by espeak-ng with one of two clearly different voices (the doctor
a low male voice, the patient a higher female one) and the lines are joined with pauses into one WAV file,
returned with its ground truth (who said what, and roughly when). espeak-ng is a Debian package:
:data:`ESPEAK` is None where it is missing.

Everything is deterministic for a given seed and text.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import textwrap
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import numpy as np
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# --- scanned pages ------------------------------------------------------------------------------------------

DPI = 300
A4_PX = (2480, 3508)  # A4 at 300 dpi
MARGIN_PX = 220
FONT_PX = 44  # about 10.5 pt at 300 dpi
LINE_PX = 66
WRAP = 76
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")
#: The creation date written into every generated PDF, so that the same pages give the same bytes.
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def page_lines(letter: str) -> list[str]:
    """The lines of a letter as they are printed on the page (each paragraph wrapped at :data:`WRAP`)."""
    lines: list[str] = []
    for paragraph in letter.split("\n"):
        lines.extend(textwrap.wrap(paragraph, WRAP) or [""])
    return lines


def _font_file(name: str) -> Path | None:
    return next((Path(folder) / name for folder in _FONT_DIRS if (Path(folder) / name).exists()), None)


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The serif face scans are printed in (DejaVu Serif; Pillow's own font where it is missing)."""
    path = _font_file("DejaVuSerif.ttf")
    return ImageFont.load_default(size=size) if path is None else ImageFont.truetype(str(path), size)


def letter_sheet(letter: str) -> tuple[int, int]:
    """An A4-wide sheet just tall enough for ``letter`` (in pixels): a cheaper page to OCR than a whole A4
    sheet (about half the time for half the height), for a short letter or a test that needs the text but
    not the paper around it."""
    return A4_PX[0], len(page_lines(letter)) * LINE_PX + 2 * MARGIN_PX


def render_page(
    letter: str,
    *,
    seed: int = 0,
    tilt: float = 2.0,
    noise: float = 10.0,
    speckles: float = 0.0015,
    blur: float = 0.6,
    font_px: int = FONT_PX,
    size: tuple[int, int] = A4_PX,
) -> Image.Image:
    """A greyscale 300-dpi scan of ``letter``: grey uneven paper, text tilted by ``tilt`` degrees, Gaussian
    sensor noise of standard deviation ``noise`` (grey levels), a ``speckles`` fraction of dust dots and a
    slight optical ``blur``; ``size`` is the sheet in pixels (A4 by default)."""
    rng = np.random.default_rng(seed)
    sheet = Image.new("L", size, 255)
    draw = ImageDraw.Draw(sheet)
    face = font(font_px)
    y = MARGIN_PX
    for line in page_lines(letter):
        draw.text((MARGIN_PX, y), line, fill=0, font=face)
        y += LINE_PX * font_px // FONT_PX
    sheet = sheet.rotate(tilt, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if blur:
        sheet = sheet.filter(ImageFilter.GaussianBlur(blur))
    ink = 1.0 - np.asarray(sheet, dtype=np.float32) / 255.0
    height, width = ink.shape
    shade = (
        np.linspace(0.0, 18.0, width, dtype=np.float32)[None, :]
        + np.linspace(0.0, 10.0, height, dtype=np.float32)[:, None]
    )
    paper = 228.0 - shade  # grey, unevenly lit sheet
    pixels = paper * (1.0 - ink) + 35.0 * ink
    pixels += rng.standard_normal(size=pixels.shape, dtype=np.float32) * np.float32(noise)
    dots = rng.random(size=pixels.shape, dtype=np.float32) < speckles
    pixels[dots] = rng.uniform(0.0, 90.0, size=int(dots.sum()))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def save_pdf(pages: Sequence[Image.Image], path: Path) -> Path:
    """An image-only PDF (no text layer) of ``pages`` at 300 dpi, dated :data:`CREATED`."""
    first, *rest = pages
    stamp = CREATED.timetuple()
    first.save(
        path, "PDF", resolution=DPI, save_all=True, append_images=rest, creationDate=stamp, modDate=stamp
    )
    return path


def digital_pdf(letters: Sequence[str], path: Path) -> Path:
    """A born-digital PDF (a real text layer on every page, in an embedded font, as a word processor
    exports) of ``letters``, one letter a page, dated :data:`CREATED`."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(CREATED)
    face = _font_file("DejaVuSans.ttf")
    if face is None:
        pdf.set_font("Helvetica", size=11)
    else:
        pdf.add_font("DejaVuSans", fname=str(face))
        pdf.set_font("DejaVuSans", size=10)
    for letter in letters:
        pdf.add_page()
        for line in page_lines(letter):
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


# --- spoken dialogues ---------------------------------------------------------------------------------------

ESPEAK = shutil.which("espeak-ng")
SAMPLE_RATE = 22_050  # espeak-ng's native rate

#: A dialogue: (role, text, pause before the next line in seconds); the role is "doctor" or "patient".
Lines = Sequence[tuple[str, str, float]]


@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: ``name`` (voice+variant), pitch 0-99 and speed in words per minute."""

    name: str
    pitch: int
    speed: int


VOICES = {"doctor": Voice("en-us+m3", pitch=30, speed=150), "patient": Voice("en+f3", pitch=75, speed=150)}


@dataclass(frozen=True)
class Turn:
    """One spoken line of the ground truth: who, what, and when (seconds from the start)."""

    speaker: str
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Dialogue:
    """A synthesised recording and its ground truth."""

    path: Path
    turns: tuple[Turn, ...]
    duration: float

    @property
    def text(self) -> str:
        """The whole reference text, in order."""
        return " ".join(turn.text for turn in self.turns)


def speak(line: str, voice: Voice) -> np.ndarray:
    """One line as 16-bit samples at :data:`SAMPLE_RATE`, leading and trailing silence trimmed; raises
    RuntimeError where espeak-ng is not installed."""
    if ESPEAK is None:
        raise RuntimeError("espeak-ng is not installed")
    command = [ESPEAK, "-v", voice.name, "-p", str(voice.pitch), "-s", str(voice.speed), "--stdout", line]
    raw = subprocess.run(command, capture_output=True, check=True).stdout  # noqa: S603 (our own arguments)
    with wave.open(io.BytesIO(raw)) as speech:
        if (speech.getframerate(), speech.getsampwidth()) != (SAMPLE_RATE, 2):
            raise RuntimeError("espeak-ng wrote audio in an unexpected format")
        samples = np.frombuffer(speech.readframes(speech.getnframes()), dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples) > 200)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples


def write_wav(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """Write mono 16-bit samples as a WAV file."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype(np.int16).tobytes())
    return path


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16)


def synthesise(
    directory: Path, lines: Lines, *, name: str = "consultation.wav", lead_in: float = 0.5
) -> Dialogue:
    """Speak ``lines`` with each role's voice (:data:`VOICES`) into the WAV file ``directory/name``."""
    pieces, turns, cursor = [_silence(lead_in)], [], lead_in
    for role, text, pause in lines:
        speech = speak(text, VOICES[role])
        turns.append(Turn(role, text, cursor, cursor + speech.size / SAMPLE_RATE))
        pieces += [speech, _silence(pause)]
        cursor = turns[-1].end + pause
    audio = np.concatenate(pieces)
    return Dialogue(write_wav(directory / name, audio), tuple(turns), audio.size / SAMPLE_RATE)
