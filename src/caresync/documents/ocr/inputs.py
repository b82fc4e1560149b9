"""Checking an upload before OCR, turning images into a PDF, and reading a PDF's text layer.

Every problem a user can cause (wrong or unknown type, empty, damaged, encrypted, too many pages, an image
too large to decode) raises :class:`~caresync.core.errors.ValidationFailed` with a message a person can act
on, before any OCR work starts.
"""

from __future__ import annotations

from pathlib import Path

import img2pdf
import pikepdf
import pypdfium2
from PIL import Image

from caresync.core.errors import ValidationFailed

#: Accepted declared content types and the kind each must turn out to be.
CONTENT_TYPES = {
    "application/pdf": "pdf",
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/tiff": "tiff",
}
_LABELS = {"pdf": "PDF", "jpeg": "JPEG image", "png": "PNG image", "tiff": "TIFF image"}
_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
ENCRYPTED = "The PDF is encrypted: remove its password or restrictions and upload it again."
_IMG2PDF_REFUSALS = (
    img2pdf.UnsupportedColorspaceError,
    img2pdf.JpegColorspaceError,
    img2pdf.ImageOpenError,
    img2pdf.NegativeDimensionError,
    img2pdf.ExifOrientationError,
    img2pdf.PdfTooLargeError,
    ValueError,  # e.g. more than 8 bits per sample
)
#: Resolution assumed for an image that does not record one (phone photos, some scanner apps).
FALLBACK_DPI = 300


def sniff(source: Path, content_type: str) -> str:
    """The kind of ``source`` ("pdf", "jpeg", "png" or "tiff"), from its bytes; it must match the declared
    ``content_type``."""
    declared = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    if declared is None:
        raise ValidationFailed(
            f"Files of type {content_type!r} cannot be OCRed: upload a PDF or a JPEG, PNG or TIFF image."
        )
    with source.open("rb") as handle:
        head = handle.read(1024)
    if not head:
        raise ValidationFailed("The file is empty.")
    # The PDF header may follow a little junk (PDF 1.7, annex H); images must start with their signature.
    actual = (
        "pdf" if b"%PDF-" in head else next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)
    )
    if actual is None:
        raise ValidationFailed("The file's content is not a PDF, JPEG, PNG or TIFF image.")
    if actual != declared:
        raise ValidationFailed(f"The file was sent as {content_type} but its content is a {_LABELS[actual]}.")
    return actual


def _check_page_count(pages: int, max_pages: int) -> None:
    if pages == 0:
        raise ValidationFailed("The document has no pages.")
    if pages > max_pages:
        raise ValidationFailed(
            f"The document has {pages} pages; at most {max_pages} can be OCRed at once: split it into parts."
        )


def check_pdf(source: Path, max_pages: int) -> int:
    """The page count of a PDF that can be OCRed: readable, not encrypted, 1 to ``max_pages`` pages."""
    try:
        with pikepdf.open(source) as pdf:
            if pdf.is_encrypted:
                raise ValidationFailed(ENCRYPTED)
            pages = len(pdf.pages)
    except pikepdf.PasswordError:
        raise ValidationFailed(
            "The PDF is password-protected: remove its password and upload it again."
        ) from None
    except pikepdf.PdfError:
        raise ValidationFailed("The PDF is damaged and cannot be read.") from None
    _check_page_count(pages, max_pages)
    return pages


def image_to_pdf(source: Path, target: Path, max_pages: int) -> int:
    """Write the image ``source`` (every frame of a multi-page TIFF) to the PDF ``target`` without
    re-encoding where possible (img2pdf); return the page count."""
    try:
        with Image.open(source) as image:
            pages = getattr(image, "n_frames", 1)
            _check_page_count(pages, max_pages)
            for index in range(pages):  # decode every frame now: a damaged one fails here, not mid-OCR
                image.seek(index)
                image.load()
            has_dpi = bool(image.info.get("dpi"))
    except Image.DecompressionBombError:
        raise ValidationFailed("The image has too many pixels to be OCRed.") from None
    except (OSError, SyntaxError, ValueError):
        raise ValidationFailed("The image is damaged and cannot be read.") from None
    layout = img2pdf.default_layout_fun if has_dpi else img2pdf.get_fixed_dpi_layout_fun((FALLBACK_DPI,) * 2)
    try:
        target.write_bytes(img2pdf.convert(str(source), layout_fun=layout))
    except _IMG2PDF_REFUSALS:
        raise ValidationFailed(
            "The image's colour format cannot be put into a PDF: save it as an 8-bit RGB or greyscale JPEG, "
            "PNG or TIFF."
        ) from None
    return pages


def page_texts(pdf_path: Path) -> list[str]:
    """The text layer of every page of a PDF (empty for a page without text)."""
    document = pypdfium2.PdfDocument(str(pdf_path))
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_bounded().replace("\r\n", "\n").replace("\r", "\n"))
            textpage.close()
            page.close()
        return texts
    finally:
        document.close()
