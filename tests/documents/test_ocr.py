"""The OCR engine on generated scans: accuracy, searchable output, skipping digital text, per-page progress
and confidence, and the errors a user can cause.

OCR is slow (seconds per page), so it runs few times: two module-scoped documents (three OCRed pages) and
one tiny image. The first runs the platform's settings (deskew, rotate, clean); the multi-page TIFF skips
the unpaper clean step, by far the costliest (about 7 s of CPU per A4 page), to keep the suite small.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageDraw

from caresync.core.errors import ValidationFailed
from caresync.documents.ocr import OcrResult, OcrSettings, ocr_document
from tests.documents import scans

pytestmark = pytest.mark.no_db


@dataclass(frozen=True)
class Run:
    """An OCR run kept for the module: its input, result and progress calls."""

    source: Path
    result: OcrResult
    progress: list[tuple[int, int]]
    stderr_kept: bool


def _run(source: Path, content_type: str, settings: OcrSettings | None = None) -> Run:
    calls: list[tuple[int, int]] = []
    stderr = sys.stderr
    result = ocr_document(
        source,
        content_type,
        source.with_name(f"{source.stem}-ocr.pdf"),
        progress=lambda done, total: calls.append((done, total)),
        settings=settings,
    )
    return Run(source, result, calls, stderr_kept=sys.stderr is stderr)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ocr")


@pytest.fixture(scope="module")
def mixed(folder: Path) -> Run:
    """A PDF with a tilted noisy scan (page 1) and a born-digital page (page 2), platform settings."""
    scan = scans.save_pdf([scans.render_page(scans.LETTERS[0], seed=1, tilt=2.5)], folder / "scan.pdf")
    digital = scans.digital_pdf([scans.LETTERS[2]], folder / "digital.pdf")
    return _run(scans.combine_pdfs([scan, digital], folder / "mixed.pdf"), "application/pdf")


@pytest.fixture(scope="module")
def tiff(folder: Path) -> Run:
    """A two-page TIFF: a letter tilted the other way, then a page of heavy noise."""
    pages = [scans.render_page(scans.LETTERS[3], seed=2, tilt=-1.5), scans.noise_page(seed=3)]
    return _run(scans.save_tiff(pages, folder / "pages.tiff"), "image/tiff", OcrSettings(clean=False))


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
    text = pdftotext(result.output)
    for words in ("shortness of breath", "atrial fibrillation", "RGH-448120", "pneumonia"):
        assert words in " ".join(text.split())
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


def test_process_stderr_is_left_alone(mixed: Run) -> None:
    """OCRmyPDF's final check (pikepdf) swaps ``sys.stderr`` for a StringIO; the engine puts it back."""
    assert mixed.stderr_kept


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
        ocr_document(_tiny_png(folder / "tiny.png"), "image/png", output, progress=cancel,
                     settings=OcrSettings(clean=False, deskew=False, rotate_pages=False))  # fmt: skip
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
