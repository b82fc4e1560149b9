"""OCR of an uploaded scan into a searchable PDF/A, with per-page text, confidence and review flags.

:func:`ocr_document` is what a job calls. PDFs and JPEG/PNG/TIFF images (multi-page TIFF too) are accepted;
images are first wrapped losslessly into a PDF (img2pdf). OCRmyPDF then auto-rotates and deskews each page
(the straightened scan replaces a tilted one), cleans the image Tesseract sees (unpaper; the page keeps the
scan as it was), and lays the recognised text over the page as an invisible, searchable layer. Pages that
already have a text layer are not OCRed again (``mode=skip``), and a PDF whose every page has text is not
handed to OCRmyPDF at all: it is copied unchanged and its text read.

PDF/A: OCRmyPDF's *internal* backend (pikepdf) writes PDF/A-2b and validates it, because the Debian
Ghostscript here (10.0.0) has regressions that corrupt PDFs with existing text (OCRmyPDF refuses ``skip``
mode with it). A result the validator cannot approve (e.g. a mixed PDF whose digital pages use fonts that
are not embedded) is kept as a regular PDF, and ``OcrResult.pdfa`` says which one was written.

Confidence is Tesseract's mean word confidence on the page (0-1), read from the hOCR OCRmyPDF already
produces (see :mod:`.plugin`); a page below ``review_threshold`` (default :data:`REVIEW_THRESHOLD`), or an
OCRed page on which Tesseract found no word at all, has ``needs_review`` set.

Cost. With OCRmyPDF's defaults for deskew, rotate and clean a page took about 23 s of CPU (18.6-25.9 s
measured, A4 letters of ``tests/documents/scans.py``) and 15-70 s wall on the shared 2-core machine. A
profile of one page (CPU seconds) showed where: unpaper's noise filter 7-8; the rotation check (a 300-dpi
preview rendered, 0.4, and Tesseract's orientation detection, 2.4-2.6); rasterising 1.0-1.2; deskew, done
twice because the image OCR reads is cleaned and the page shown is not (Tesseract's angle 0.7-0.8 and a
Pillow rotation saved as PNG 1.3-1.4, each time); unpaper's other work and its PNG 0.9-1.5; Tesseract's
OCR 1.5-2.2; grafting, PDF/A and the final check 0.3-0.6. And Tesseract with 2 OpenMP threads (what
OCRmyPDF picks for a document with fewer pages than jobs) spun for 45 s instead of 2 s on a busy machine.
The platform keeps every feature and now runs with :data:`UNPAPER_ARGS` (no noise filter), one thread per
Tesseract and each page's skew measured once (:mod:`.plugin`): about 11 s of CPU per page (10.6-13.5 on
the busy machine), the same text (CER 0-0.4 % on the letters, confidence 0.94-0.96), and 5.8-7.7 s wall
per page, two pages at a time, with the machine's load at 2-2.7 (``bench/documents_ocr.py``, 4 pages; the
``ocrmypdf`` command with the same options: 9.4-9.8 s). No quiet machine was available: on 2 idle cores
a page should take about half its CPU time, 5.5 s. Left as OCRmyPDF has them: ``optimize=1``
(0.1-0.2 s for a quarter smaller files), ``fast_web_view`` (linearising results over 1 MB for the viewer:
cheap), ``tesseract_timeout`` (180 s; a page that exceeds it is flagged for review). Not taken: the
orientation check on a 150-dpi preview (0.7 s less, but its confidence drops towards OCRmyPDF's threshold,
and at 100 dpi it fails) and faster PNG compression of intermediate images (0.1 s a save).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ocrmypdf
import pikepdf
from ocrmypdf import exceptions as ocr_errors
from ocrmypdf.api import get_plugin_manager

from caresync.core.errors import ValidationFailed
from caresync.documents.ocr import inputs
from caresync.documents.ocr.plugin import JobPlugin, PageReading

#: A page whose mean Tesseract word confidence is below this is flagged for a person to check. Measured on
#: generated 300-dpi scans: clean, slightly noisy letters score 0.93-0.96 (CER under 1 %); a blurred,
#: speckled slip read with a CER of 40-65 % scores 0.65-0.70.
REVIEW_THRESHOLD = 0.8
#: Documents longer than this are refused (a job OCRs a page in about 6 s on 2 cores, two at a time).
MAX_PAGES = 200
#: OCRmyPDF worker threads: at most 2, the cores of a worker machine.
JOBS = min(2, os.cpu_count() or 1)
#: unpaper's arguments for ``clean``: OCRmyPDF's defaults without the noise filter, which cost about 8 s of
#: CPU per A4 page (of the ~23 s a page took) and changed nothing Tesseract read on the generated scans (CER
#: and confidence identical on a tilted letter and on a page with 1 % of its pixels speckled). Cleaning still
#: wipes what lies outside the page's content (``mask-scan``) and isolated clusters (``blurfilter``).
UNPAPER_ARGS = (
    "--layout none --mask-scan-size 100 --no-border-align --no-mask-center --no-grayfilter --no-blackfilter "
    "--no-deskew --no-noisefilter"
)


@dataclass(frozen=True)
class OcrSettings:
    """How pages are prepared and recognised (the defaults are what the platform uses)."""

    language: str = "eng"
    deskew: bool = True
    rotate_pages: bool = True
    clean: bool = True
    max_pages: int = MAX_PAGES
    review_threshold: float = REVIEW_THRESHOLD


@dataclass(frozen=True)
class OcrPage:
    """One page of the result. ``confidence`` is None for a page whose existing text layer was kept."""

    number: int
    text: str
    ocred: bool
    confidence: float | None
    needs_review: bool


@dataclass(frozen=True)
class OcrResult:
    """The searchable PDF written to ``output`` and what was read from each page."""

    output: Path
    pages: tuple[OcrPage, ...]
    ocr_skipped: bool
    pdfa: bool
    seconds: float

    @property
    def text(self) -> str:
        """The whole document's text, pages separated by a form feed."""
        return "\f".join(page.text for page in self.pages)

    @property
    def needs_review(self) -> bool:
        """Whether any page is flagged for review."""
        return any(page.needs_review for page in self.pages)


def ocr_document(
    source: Path,
    content_type: str,
    output: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    settings: OcrSettings | None = None,
) -> OcrResult:
    """OCR ``source`` (declared as ``content_type``) into a searchable PDF/A at ``output``.

    ``progress(done, total)`` is called once per completed page. Raises ValidationFailed for inputs a user
    can fix; on any error no file is left at ``output``.
    """
    settings = settings or OcrSettings()
    started = time.perf_counter()
    kind = inputs.sniff(source, content_type)
    with tempfile.TemporaryDirectory(prefix="caresync-ocr-") as folder:
        pdf = source
        if kind == "pdf":
            inputs.check_pdf(source, settings.max_pages)
        else:
            pdf = Path(folder) / "images.pdf"
            inputs.image_to_pdf(source, pdf, settings.max_pages)
        existing = inputs.page_texts(pdf)
        skipped = all(text.strip() for text in existing)
        with _written_atomically(output) as partial:
            if skipped:  # born digital or already OCRed: kept byte for byte
                shutil.copyfile(pdf, partial)
                if progress is not None:
                    progress(len(existing), len(existing))
                readings: dict[int, PageReading] = {}
            else:
                readings = _run_ocrmypdf(pdf, partial, settings, progress)
            texts = existing if skipped else inputs.page_texts(partial)
            pdfa = _is_pdfa(partial)
    pages = tuple(
        _page(number, text, had_text.strip() != "", readings.get(number), settings.review_threshold)
        for number, (text, had_text) in enumerate(zip(texts, existing, strict=True), start=1)
    )
    return OcrResult(
        output, pages, ocr_skipped=skipped, pdfa=pdfa, seconds=round(time.perf_counter() - started, 3)
    )


def _page(number: int, text: str, had_text: bool, reading: PageReading | None, threshold: float) -> OcrPage:
    if had_text:
        return OcrPage(number, text.strip(), ocred=False, confidence=None, needs_review=False)
    # A page OCRmyPDF gave up on (Tesseract timeout) has no reading: it needs a person as much as a bad one.
    confidence = reading.confidence if reading is not None and reading.words else 0.0
    return OcrPage(number, text.strip(), ocred=True, confidence=round(confidence, 4),
                   needs_review=confidence < threshold)  # fmt: skip


def _is_pdfa(path: Path) -> bool:
    with pikepdf.open(path) as pdf:
        return bool(pdf.open_metadata().pdfa_status)


@contextmanager
def _written_atomically(output: Path) -> Iterator[Path]:
    """A scratch path beside ``output`` that replaces it on success and is removed on any failure."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        yield partial
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)


# One OCRmyPDF run at a time in this process (the worker runs jobs on 2 threads), so that _stderr_kept sees
# the stream as it was. It costs no parallelism: OCRmyPDF 17 installs a job's own plugin manager under an
# exclusive lock that waits for every running job, so two jobs with their own plugins never overlapped.
_OCRMYPDF = threading.Lock()


@contextmanager
def _stderr_kept() -> Iterator[None]:
    """Put ``sys.stderr`` back after OCRmyPDF: its final check calls pikepdf 10.18's ``check_linearization``
    with a StringIO, which leaves ``sys.stderr`` pointing at that StringIO (every later log line is lost).
    Only safe under ``_OCRMYPDF``: a second run starting meanwhile would take that StringIO for the stream."""
    stream = sys.stderr
    try:
        yield
    finally:
        if sys.stderr is not stream and isinstance(sys.stderr, io.StringIO):
            sys.stderr = stream


# OCRmyPDF errors caused by the input, and what the user is told.
_INPUT_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (ocr_errors.EncryptedPdfError, inputs.ENCRYPTED),
    (ocr_errors.DigitalSignatureError, "The PDF is digitally signed; OCR would invalidate the signature."),
    (ocr_errors.DpiError, "The image's resolution is too low to be OCRed; scan it at 300 dpi."),
    (ocr_errors.UnsupportedImageFormatError, "The image format is not supported for OCR."),
    (ocr_errors.InputFileError, "The document is damaged or uses features that cannot be OCRed."),
)  # fmt: skip


def _run_ocrmypdf(
    pdf: Path,
    target: Path,
    settings: OcrSettings,
    progress: Callable[[int, int], None] | None,
) -> dict[int, PageReading]:
    """Run OCRmyPDF on ``pdf`` into ``target``; the Tesseract reading of each page it OCRed."""
    plugin = JobPlugin(progress)
    manager = get_plugin_manager([])
    manager.pluggy_manager.register(plugin)
    try:
        with _OCRMYPDF, _stderr_kept():
            code = ocrmypdf.ocr(
                pdf,
                target,
                language=[settings.language],
                mode="skip",  # pages that already have text keep it (Ghostscript, unsafe here, is never used)
                deskew=settings.deskew,
                rotate_pages=settings.rotate_pages,
                clean=settings.clean,
                unpaper_args=UNPAPER_ARGS if settings.clean else None,
                output_type="auto",  # PDF/A when the result validates, else a regular PDF (reported)
                pdfa_backend="internal",
                jobs=JOBS,
                use_threads=True,  # the plugin's readings are shared in memory
                progress_bar=True,  # updates go to the plugin's callback, never to a console
                plugin_manager=manager,
            )
    except tuple(error for error, _ in _INPUT_ERRORS) as error:
        message = next(text for kind, text in _INPUT_ERRORS if isinstance(error, kind))
        raise ValidationFailed(message) from None
    if code != ocr_errors.ExitCode.ok:
        raise RuntimeError(f"OCRmyPDF failed with exit code {code}")
    return dict(plugin.readings)
