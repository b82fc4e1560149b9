"""The OCR engine on generated scans: accuracy, searchable output, skipping digital text, per-page progress
and confidence, two jobs at once, and the errors a user can cause.

OCR costs seconds per page, so the module runs it three times, on pages no bigger than the assertions need
(A4-wide sheets just tall enough for their letter): ``mixed`` with the platform's settings (deskew, rotate,
clean) and ``tiff`` deskewed only run as two jobs on two threads at once, as the worker runs them; a tiny
image's job is cancelled. Every other test reads their results or never reaches OCR.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageDraw

from caresync.core.errors import ValidationFailed
from caresync.documents.ocr import OcrResult, OcrSettings, ocr_document
from tests.documents import scans

pytestmark = pytest.mark.no_db

#: OCR without preprocessing, for tests about something else than the page images.
PLAIN = OcrSettings(deskew=False, rotate_pages=False, clean=False)
DESKEW_ONLY = OcrSettings(rotate_pages=False, clean=False)


@dataclass(frozen=True)
class Run:
    """An OCR run kept for the module: its input, result and progress calls."""

    source: Path
    result: OcrResult
    progress: list[tuple[int, int]]


def _run(source: Path, content_type: str, settings: OcrSettings | None = None) -> Run:
    calls: list[tuple[int, int]] = []
    result = ocr_document(
        source,
        content_type,
        source.with_name(f"{source.stem}-ocr.pdf"),
        progress=lambda done, total: calls.append((done, total)),
        settings=settings,
    )
    return Run(source, result, calls)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ocr")


@dataclass(frozen=True)
class Jobs:
    """The two module runs, made on two threads at once, and whether ``sys.stderr`` survived them."""

    mixed: Run
    tiff: Run
    stderr_kept: bool


@pytest.fixture(scope="module")
def jobs(folder: Path) -> Jobs:
    """``mixed``: a PDF with a tilted noisy scan (page 1) and a born-digital page (page 2), platform
    settings. ``tiff``: a two-page TIFF, a letter tilted the other way and a slip of heavy noise, deskewed
    only (a tilted page's text layer would be out of reading order for pdftotext)."""
    letter = scans.LETTERS[0]
    page = scans.render_page(letter, seed=1, tilt=2.5, size=scans.letter_sheet(letter))
    scan = scans.save_pdf([page], folder / "scan.pdf")
    digital = scans.digital_pdf([scans.LETTERS[2]], folder / "digital.pdf")
    mixed = scans.combine_pdfs([scan, digital], folder / "mixed.pdf")
    letter = scans.LETTERS[3]
    pages = [
        scans.render_page(letter, seed=2, tilt=-1.5, size=scans.letter_sheet(letter)),
        scans.noise_page(3),
    ]
    tiff = scans.save_tiff(pages, folder / "pages.tiff")
    stderr = sys.stderr
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.submit(_run, mixed, "application/pdf"), pool.submit(_run, tiff, "image/tiff", DESKEW_ONLY)
        mixed_run, tiff_run = (run.result() for run in runs)
    return Jobs(mixed_run, tiff_run, stderr_kept=sys.stderr is stderr)


@pytest.fixture(scope="module")
def mixed(jobs: Jobs) -> Run:
    return jobs.mixed


@pytest.fixture(scope="module")
def tiff(jobs: Jobs) -> Run:
    return jobs.tiff


def pdftotext(path: Path) -> str:
    done = subprocess.run(["/usr/bin/pdftotext", str(path), "-"], check=True, capture_output=True, text=True)  # noqa: S603
    return done.stdout


def test_scanned_page_is_read_accurately(mixed: Run) -> None:
    page = mixed.result.pages[0]
    assert page.ocred
    assert scans.cer(scans.ground_truth(scans.LETTERS[0]), page.text) < 0.02
    assert page.confidence is not None
    assert page.confidence > 0.85
    assert not page.needs_review


def test_output_is_a_searchable_pdfa_beside_the_original(mixed: Run) -> None:
    result = mixed.result
    assert result.pdfa
    assert not result.ocr_skipped
    assert result.output.exists()
    assert mixed.source.exists()
    # The words, in order; a speck read as a lone dash between two of them does not stop a search.
    words = " ".join(word for word in pdftotext(result.output).split() if any(c.isalnum() for c in word))
    for phrase in ("shortness of breath", "atrial fibrillation", "RGH-448120", "pneumonia"):
        assert phrase in words
    with pikepdf.open(result.output) as pdf:
        assert len(pdf.pages) == 2
        assert pdf.open_metadata().pdfa_status == "2B"
    assert not list(result.output.parent.glob(".*.partial"))


def test_digital_page_of_a_mixed_pdf_is_taken_over_not_ocred(mixed: Run) -> None:
    page = mixed.result.pages[1]
    assert not page.ocred
    assert page.confidence is None
    assert not page.needs_review
    assert scans.cer(scans.ground_truth(scans.LETTERS[2]), page.text) == 0


def test_progress_is_reported_per_page(mixed: Run, tiff: Run) -> None:
    assert mixed.progress == [(1, 2), (2, 2)]
    assert tiff.progress == [(1, 2), (2, 2)]


def test_process_stderr_is_left_alone_by_two_jobs_at_once(jobs: Jobs) -> None:
    """OCRmyPDF's final check (pikepdf) swaps ``sys.stderr`` for a StringIO; the engine puts it back, also
    when two jobs run in one process."""
    assert jobs.stderr_kept


def test_multipage_tiff_becomes_a_multipage_pdf_in_order(tiff: Run) -> None:
    result = tiff.result
    assert [page.number for page in result.pages] == [1, 2]
    with pikepdf.open(result.output) as pdf:
        assert len(pdf.pages) == 2
    first = result.pages[0]
    assert scans.cer(scans.ground_truth(scans.LETTERS[3]), first.text) < 0.02
    assert scans.cer(scans.ground_truth(scans.LETTERS[3]), pdftotext(result.output).split("\f")[0]) < 0.05
    assert not first.needs_review


def test_low_confidence_page_is_flagged(tiff: Run) -> None:
    noisy = tiff.result.pages[1]
    assert noisy.ocred
    assert noisy.confidence is not None
    assert noisy.confidence < OcrSettings().review_threshold
    assert noisy.needs_review
    assert tiff.result.needs_review
    assert scans.cer(scans.NOISY_TEXT, noisy.text) > 0.2


def test_searchable_pdf_is_not_ocred_again(folder: Path) -> None:
    source = scans.digital_pdf(scans.LETTERS[1:3], folder / "letters.pdf")
    run = _run(source, "application/pdf")
    result = run.result
    assert result.ocr_skipped
    assert result.seconds < 2
    assert result.output.read_bytes() == source.read_bytes()
    assert [page.ocred for page in result.pages] == [False, False]
    assert "bisoprolol 2.5 mg" in result.pages[0].text
    assert "community acquired pneumonia" in result.pages[1].text
    assert run.progress == [(2, 2)]


def _tiny_png(path: Path) -> Path:
    image = Image.new("L", (900, 160), 255)
    ImageDraw.Draw(image).text((40, 50), "Chest pain at night", fill=0, font=scans.font(48))
    image.save(path, dpi=(300, 300))
    return path


def test_failure_during_ocr_leaves_no_output(folder: Path) -> None:
    """A job cancelled from its progress callback (or failing in any way) leaves nothing at ``output``."""
    output = folder / "cancelled.pdf"

    def cancel(done: int, total: int) -> None:
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        ocr_document(_tiny_png(folder / "tiny.png"), "image/png", output, progress=cancel, settings=PLAIN)
    assert not output.exists()
    assert not list(folder.glob(".cancelled*"))


def _encrypted(folder: Path, user: str) -> Path:
    source = scans.digital_pdf(scans.LETTERS[:1], folder / "plain.pdf")
    target = folder / f"encrypted-{user or 'owner'}.pdf"
    with pikepdf.open(source) as pdf:
        pdf.save(target, encryption=pikepdf.Encryption(owner="owner-secret", user=user))
    return target


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def _png(folder: Path) -> Path:
    return _tiny_png(folder / "real.png")


@pytest.mark.parametrize(
    ("make", "content_type", "message"),
    [
        (lambda f: _write(f, "empty.pdf", b""), "application/pdf", "empty"),
        (lambda f: _write(f, "corrupt.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8), "application/pdf",
         "damaged"),
        (lambda f: _encrypted(f, "reader-secret"), "application/pdf", "password"),
        (lambda f: _encrypted(f, ""), "application/pdf", "encrypted"),
        (_png, "application/pdf", "PNG image"),
        (lambda f: _write(f, "notes.txt", b"chest pain"), "text/plain", "cannot be OCRed"),
        (lambda f: _write(f, "notes.pdf", b"chest pain, not a PDF"), "application/pdf", "not a PDF"),
        (lambda f: _write(f, "bad.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), "image/png", "damaged"),
        (lambda f: scans.digital_pdf(scans.LETTERS[:3], f / "three.pdf"), "application/pdf", "3 pages"),
    ],
    ids=["empty", "corrupt", "password", "owner-encrypted", "png-as-pdf", "unsupported", "text-as-pdf",
         "damaged-png", "too-many-pages"],
)  # fmt: skip
def test_bad_inputs_are_refused_clearly(
    tmp_path: Path, make: Callable[[Path], Path], content_type: str, message: str
) -> None:
    source = make(tmp_path)
    output = tmp_path / "out.pdf"
    with pytest.raises(ValidationFailed, match=message) as raised:
        ocr_document(source, content_type, output, settings=OcrSettings(max_pages=2))
    assert raised.value.status == 422
    assert "Traceback" not in raised.value.detail
    assert not output.exists()
    assert not list(tmp_path.glob(".*.partial"))
