"""An OCRmyPDF plugin, one instance per job, that reports page progress, records Tesseract's confidence and
trims Tesseract's cost.

- **Progress**: OCRmyPDF drives a progress bar from the main thread as each page's OCR is grafted into the
  output (two half-steps per page); :class:`PageProgress` turns whole pages into ``progress(done, total)``.
- **Confidence**: OCRmyPDF's Tesseract engine writes an hOCR file per page, whose words carry ``x_wconf``
  (0-100). :class:`MeasuringTesseract` runs the stock engine, then reads that file: the cost is parsing a
  few kB of text, instead of a second Tesseract pass over the page image.
- **Skew, measured once**: with ``clean`` (for OCR only), OCRmyPDF deskews each page's raster twice, once
  for the page it shows and once for the image OCR reads, asking Tesseract for the angle each time (about
  0.7 s of CPU per A4 page); the engine measures it once per raster file.
- **One thread per Tesseract**: OCRmyPDF lets Tesseract use several OpenMP threads when a document has
  fewer pages than jobs. On the shared 2-core machine two threads were slower than one (3.7 s vs 2.0 s wall
  for an A4 page, load about 2.5) and collapsed under more load (45 s: OpenMP threads spin-waiting for a busy
  core), so every Tesseract process gets :data:`TESSERACT_THREADS`; OCRmyPDF runs pages in parallel.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ocrmypdf import hookimpl
from ocrmypdf.builtin_plugins.tesseract_ocr import TesseractOcrEngine

Progress = Callable[[int, int], None]
#: OpenMP threads per Tesseract process (``OMP_THREAD_LIMIT``).
TESSERACT_THREADS = 1
_WORD_CONFIDENCE = re.compile(rb"class=['\"]ocrx_word['\"][^>]*?x_wconf (\d+)")
_PAGE_PREFIX = re.compile(r"^(\d{6})_")


@dataclass(frozen=True)
class PageReading:
    """What Tesseract reported for one page: the mean word confidence (0-1) over ``words`` words."""

    confidence: float
    words: int


def read_hocr_confidence(hocr: bytes) -> PageReading:
    """The mean ``x_wconf`` of the words of an hOCR page (0.0 when Tesseract found no word)."""
    scores = [int(match) for match in _WORD_CONFIDENCE.findall(hocr)]
    return PageReading(confidence=sum(scores) / len(scores) / 100 if scores else 0.0, words=len(scores))


class PageProgress:
    """OCRmyPDF's progress bar protocol, forwarding completed pages of the OCR stage to a callback."""

    def __init__(self, callback: Progress | None, *, total: float | None = None, desc: str | None = None,
                 unit: str | None = None, **_: Any) -> None:  # fmt: skip
        self._callback = callback if unit == "page" and desc == "OCR" else None
        self._total = int(total or 0)
        self._done = 0.0
        self._reported = 0

    def __enter__(self) -> PageProgress:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def update(self, n: float = 1, *, completed: float | None = None) -> None:
        """Advance by ``n`` units (or to ``completed``); report each newly completed page."""
        self._done = completed if completed is not None else self._done + n
        pages = min(int(self._done + 1e-9), self._total)
        if self._callback is not None and pages > self._reported:
            self._reported = pages
            self._callback(pages, self._total)


class MeasuringTesseract(TesseractOcrEngine):
    """OCRmyPDF's Tesseract engine, reporting to its job: each page's word confidence, from the hOCR it
    produced, and each raster's skew angle, measured once."""

    def __init__(self, job: JobPlugin) -> None:
        self._job = job

    def get_deskew(self, input_file: Path, options: Any) -> float:  # type: ignore[override]
        """Tesseract's skew angle for ``input_file``, measured on the first call for that file."""
        return self._job.skew(Path(input_file), partial(TesseractOcrEngine.get_deskew, input_file, options))

    def generate_hocr(self, input_file: Path, output_hocr: Path, output_text: Path, options: Any) -> None:  # type: ignore[override]
        """Run Tesseract as OCRmyPDF would, then record the page's confidence."""
        TesseractOcrEngine.generate_hocr(input_file, output_hocr, output_text, options)
        prefix = _PAGE_PREFIX.match(Path(output_hocr).name)  # OCRmyPDF names page files 000001_...
        if prefix is not None:
            self._job.record(int(prefix.group(1)), read_hocr_confidence(Path(output_hocr).read_bytes()))


class JobPlugin:
    """The hooks for one OCR job; ``readings`` maps 1-based page numbers to what Tesseract reported."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()  # pages run on OCRmyPDF's worker threads
        self.readings: dict[int, PageReading] = {}
        self._skews: dict[tuple[str, int, int], float] = {}

    def record(self, page: int, reading: PageReading) -> None:
        """Keep Tesseract's reading of ``page``."""
        with self._lock:
            self.readings[page] = reading

    def skew(self, image: Path, measure: Callable[[], float]) -> float:
        """The skew angle of the raster ``image``: ``measure()`` the first time, then the same angle while
        the file is unchanged (each page's files belong to one worker thread at a time)."""
        stat = image.stat()
        key = (str(image), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            angle = self._skews.get(key)
        if angle is None:
            angle = measure()
            with self._lock:
                self._skews[key] = angle
        return angle

    @hookimpl
    def get_progressbar_class(self) -> Callable[..., PageProgress]:
        """OCRmyPDF's hook: the progress bar factory."""
        return partial(PageProgress, self._progress)

    @hookimpl
    def get_ocr_engine(self, options: Any) -> MeasuringTesseract:
        """OCRmyPDF's hook: the OCR engine."""
        return MeasuringTesseract(self)

    @hookimpl(trylast=True)
    def validate(self, pdfinfo: Any, options: Any) -> None:
        """OCRmyPDF's hook, after the Tesseract plugin's own: :data:`TESSERACT_THREADS` per Tesseract."""
        options.tesseract.omp_thread_limit = TESSERACT_THREADS
