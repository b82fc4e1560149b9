"""OCR benchmark: seconds per page through CareSync's OCR engine vs the ``ocrmypdf`` command on the same file.

Run as its own process: ``python bench/document_ai/ocr.py [--pages 5] [--rounds 2]``.

It renders ``--pages`` tilted, noisy 300-dpi letters (``tests/documents/scans.py``) into one image-only PDF,
then, ``--rounds`` times (alternating which goes first, so drifting load on a shared machine hits both):

- **engine**: ``caresync.documents.ocr.ocr_document`` in this process, as a job calls it (platform settings:
  deskew, rotate, clean, PDF/A, 2 jobs), with a progress callback;
- **command**: ``ocrmypdf --skip-text --deskew --rotate-pages --clean --unpaper-args "<the engine's
  UNPAPER_ARGS>" --output-type auto --pdfa-backend internal --jobs 2 -l eng`` on the same file with
  ``OMP_THREAD_LIMIT`` set to the engine's Tesseract threads, in a new process (so it also pays the
  interpreter start, reported apart as ``command_startup_s``: ``ocrmypdf --version``). The engine's one
  other saving, measuring each page's skew once instead of twice, has no command-line option.

Figures: wall seconds per page (median of the rounds) and their ratio (target <= 1.2), CPU seconds per page
(this process and its children: less sensitive to other work on the machine), and the engine's CER and
confidence per page. Prints one JSON object on stdout; progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.documents import scans  # noqa: E402

from caresync.documents.ocr import OcrResult, ocr_document  # noqa: E402
from caresync.documents.ocr.engine import UNPAPER_ARGS  # noqa: E402
from caresync.documents.ocr.plugin import TESSERACT_THREADS  # noqa: E402

TARGET = {"engine_vs_command_ratio": 1.2}
OCRMYPDF = Path(sys.executable).with_name("ocrmypdf")
COMMAND_OPTIONS = ["--skip-text", "--deskew", "--rotate-pages", "--clean", "--unpaper-args", UNPAPER_ARGS,
                   "--output-type", "auto", "--pdfa-backend", "internal", "--jobs", "2", "-l", "eng",
                   "--quiet"]  # fmt: skip
COMMAND_ENV = {**os.environ, "OMP_THREAD_LIMIT": str(TESSERACT_THREADS)}


def log(message: str) -> None:
    """Progress to stderr (stdout carries only the JSON result)."""
    print(f"[documents_ocr] {message}", file=sys.stderr, flush=True)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (Tesseract, unpaper, the ocrmypdf command)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``action``."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    action()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def run(command: list[str]) -> None:
    """Run one of our own commands (this venv's ocrmypdf) to completion."""
    subprocess.run(command, check=True, capture_output=True, env=COMMAND_ENV)  # noqa: S603


def summary(samples: list[tuple[float, float]], pages: int) -> dict[str, Any]:
    """Median wall and CPU seconds per page over the rounds, and each round's wall seconds."""
    return {
        "wall_s_per_page": round(statistics.median(wall for wall, _ in samples) / pages, 2),
        "cpu_s_per_page": round(statistics.median(cpu for _, cpu in samples) / pages, 2),
        "wall_s_runs": [round(wall, 2) for wall, _ in samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    letters = [scans.LETTERS[index % len(scans.LETTERS)] for index in range(args.pages)]
    load_at_start = os.getloadavg()
    runs: dict[str, list[tuple[float, float]]] = {"engine": [], "command": []}
    results: list[OcrResult] = []
    progress: list[tuple[int, int]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ocr-") as scratch:
        folder = Path(scratch)
        pages = [scans.render_page(text, seed=i, tilt=1.0 + (i % 5) * 0.5) for i, text in enumerate(letters)]
        source = scans.save_pdf(pages, folder / "scan.pdf")
        log(f"rendered {args.pages} pages")
        startup, _ = timed(lambda: run([str(OCRMYPDF), "--version"]))

        def engine() -> None:
            progress.clear()
            output = folder / "engine.pdf"
            results.append(
                ocr_document(source, "application/pdf", output, progress=lambda *p: progress.append(p))
            )

        def command() -> None:
            run([str(OCRMYPDF), *COMMAND_OPTIONS, str(source), str(folder / "command.pdf")])

        for round_ in range(args.rounds):
            order = [("engine", engine), ("command", command)]
            for name, action in order if round_ % 2 == 0 else order[::-1]:
                wall, cpu = timed(action)
                runs[name].append((wall, cpu))
                log(f"round {round_ + 1} {name}: {wall:.1f} s wall, {cpu:.1f} s CPU")
    engine_s, command_s = summary(runs["engine"], args.pages), summary(runs["command"], args.pages)
    ratio = float(engine_s["wall_s_per_page"]) / float(command_s["wall_s_per_page"])
    cpu_ratio = float(engine_s["cpu_s_per_page"]) / float(command_s["cpu_s_per_page"])
    result = results[-1]
    output = {
        "pages": args.pages,
        "rounds": args.rounds,
        "engine": engine_s,
        "command": command_s,
        "engine_vs_command_ratio": round(ratio, 3),
        "engine_vs_command_cpu_ratio": round(cpu_ratio, 3),
        "command_startup_s": round(startup, 2),
        "engine_progress_calls": progress,
        "engine_pdfa": result.pdfa,
        "engine_cer_per_page": [
            round(scans.cer(scans.ground_truth(text), page.text), 4)
            for text, page in zip(letters, result.pages, strict=True)
        ],
        "engine_confidence_per_page": [page.confidence for page in result.pages],
        "target": TARGET,
        "met": ratio <= TARGET["engine_vs_command_ratio"],
        "cores": os.cpu_count(),
        "load_average_at_start": load_at_start,  # other work on the machine inflates every wall figure
        "load_average_at_end": os.getloadavg(),
    }
    print(json.dumps(output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
