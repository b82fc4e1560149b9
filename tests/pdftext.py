"""Reading PDFs back in tests: their text as poppler's ``pdftotext`` extracts it (poppler-utils)."""

from __future__ import annotations

import shutil
import subprocess

PDFTOTEXT = shutil.which("pdftotext")


def pdf_text(pdf: bytes, *, layout: bool = True) -> str:
    """The PDF's text on one line (phrases survive the layout's line breaks), as ``pdftotext`` reads it."""
    assert PDFTOTEXT, "pdftotext is missing: install poppler-utils"
    command = [PDFTOTEXT, *(["-layout"] if layout else []), "-", "-"]
    done = subprocess.run(command, input=pdf, capture_output=True, check=True)  # noqa: S603 (poppler's tool)
    return " ".join(done.stdout.decode().split())
