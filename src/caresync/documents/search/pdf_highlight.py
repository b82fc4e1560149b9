"""Search hits highlighted in a PDF itself: the query's terms are found in each page's text layer (the
invisible one OCRmyPDF lays over a scan at the words' positions, or a born-digital PDF's own) with PDFium,
and written as PDF Highlight annotations into a copy of the file with pikepdf.

The terms are those the viewer highlights in the document's text (:func:`.snippets.highlight_spans`: the
query's lexicon concepts in any of their surface forms, and its other words), so the PDF and the text beside
it mark the same words. A term broken over two lines gets one box per line. Each annotation carries its own
appearance (a marker yellow multiplied over the page) so every viewer draws it alike.

Nothing is cached: the copy is built in memory for each request, and the stored (signed) file is never
changed. A PDF that cannot be read gets no highlights (:func:`highlight_pdf` returns it as it was).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import pikepdf
import pypdfium2
import pypdfium2.raw as pdfium_c

from caresync.documents.search.snippets import highlight_spans

log = logging.getLogger(__name__)

COLOUR = (1.0, 0.87, 0.2)  # marker yellow, multiplied over the page so the words stay legible
AUTHOR = "CareSync search"
MAX_HIGHLIGHTS = 500  # per document: a query matching more marks the first ones only
_PAD = 0.1  # fraction of a box's height added above and below (text boxes hug the glyphs)
Box = tuple[float, float, float, float]  # left, bottom, right, top in PDF user space


@dataclass(frozen=True)
class Highlight:
    """One marked occurrence: its page (0-based), the text as it reads there, and a box per line."""

    page: int
    term: str
    boxes: tuple[Box, ...]

    @property
    def rect(self) -> Box:
        """The smallest box around all of the occurrence's boxes."""
        lefts, bottoms, rights, tops = zip(*self.boxes, strict=True)
        return min(lefts), min(bottoms), max(rights), max(tops)


@dataclass(frozen=True)
class HighlightedPdf:
    """The PDF to show (a highlighted copy, or the file itself when nothing was marked) and what it marks."""

    data: bytes
    highlights: tuple[Highlight, ...]

    @property
    def first_page(self) -> int | None:
        """The 1-based number of the first page with a highlight (for ``#page=N``)."""
        return self.highlights[0].page + 1 if self.highlights else None


class UnreadablePdf(Exception):
    """The PDF cannot be parsed (damaged, encrypted, not a PDF)."""


def _page_highlights(
    textpage: pypdfium2.PdfTextPage, page: int, concepts: Collection[str], words: Collection[str]
) -> Iterable[Highlight]:
    text = textpage.get_text_range()  # its indices are PDFium's "text indices", mapped to chars below
    for start, end in highlight_spans(text, concepts, words):
        first = pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, start)
        last = pdfium_c.FPDFText_GetCharIndexFromTextIndex(textpage, end - 1)
        if first < 0 or last < first:
            continue
        count = textpage.count_rects(first, last - first + 1)
        boxes = tuple(_padded(textpage.get_rect(i)) for i in range(count))
        boxes = tuple(b for b in boxes if b[2] > b[0] and b[3] > b[1])
        if boxes:
            yield Highlight(page, " ".join(text[start:end].split()), boxes)


def _padded(box: Box) -> Box:
    left, bottom, right, top = box
    pad = (top - bottom) * _PAD
    return left, bottom - pad, right, top + pad


def find_highlights(data: bytes, concepts: Collection[str], words: Collection[str]) -> list[Highlight]:
    """Every occurrence of the ``concepts`` (any surface form) and ``words`` in the PDF's text layer, page
    by page, at most ``MAX_HIGHLIGHTS``. Raises :class:`UnreadablePdf`."""
    if not concepts and not words:
        return []
    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise UnreadablePdf(str(exc)) from exc
    found: list[Highlight] = []
    try:
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            try:
                found += _page_highlights(textpage, index, concepts, words)
            finally:
                textpage.close()
                page.close()
            if len(found) >= MAX_HIGHLIGHTS:
                break
    except pypdfium2.PdfiumError as exc:
        raise UnreadablePdf(str(exc)) from exc
    finally:
        document.close()
    return found[:MAX_HIGHLIGHTS]


def _quad_points(boxes: Iterable[Box]) -> list[float]:
    """Per box: top-left, top-right, bottom-left, bottom-right (the order viewers follow)."""
    return [
        v for left, bottom, right, top in boxes for v in (left, top, right, top, left, bottom, right, bottom)
    ]


def _appearance(pdf: pikepdf.Pdf, highlight: Highlight) -> pikepdf.Stream:
    """The annotation's normal appearance: its boxes filled in ``COLOUR``, blended by multiplication."""
    left, bottom, right, top = highlight.rect
    fill = " ".join(f"{c:g}" for c in COLOUR)
    boxes = " ".join(
        f"{x0 - left:.2f} {y0 - bottom:.2f} {x1 - x0:.2f} {y1 - y0:.2f} re"
        for x0, y0, x1, y1 in highlight.boxes
    )
    stream = pikepdf.Stream(pdf, f"q /Marker gs {fill} rg {boxes} f Q".encode())
    stream.Type = pikepdf.Name.XObject
    stream.Subtype = pikepdf.Name.Form
    stream.BBox = pikepdf.Array([0, 0, right - left, top - bottom])
    stream.Matrix = pikepdf.Array([1, 0, 0, 1, left, bottom])
    marker = pikepdf.Dictionary(Type=pikepdf.Name.ExtGState, BM=pikepdf.Name.Multiply)
    stream.Resources = pikepdf.Dictionary(ExtGState=pikepdf.Dictionary(Marker=marker))
    return stream


def _annotation(pdf: pikepdf.Pdf, page: pikepdf.Page, highlight: Highlight) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(
        Type=pikepdf.Name.Annot,
        Subtype=pikepdf.Name.Highlight,
        Rect=pikepdf.Array(highlight.rect),
        QuadPoints=pikepdf.Array(_quad_points(highlight.boxes)),
        C=pikepdf.Array(COLOUR),
        Contents=pikepdf.String(highlight.term),
        T=pikepdf.String(AUTHOR),
        F=4,  # print
        P=page.obj,
        AP=pikepdf.Dictionary(N=_appearance(pdf, highlight)),
    )


def annotate(data: bytes, highlights: Collection[Highlight]) -> bytes:
    """A copy of the PDF ``data`` with a Highlight annotation per highlight (after the page's own
    annotations). Raises :class:`UnreadablePdf`."""
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            for highlight in highlights:
                page = pdf.pages[highlight.page]
                annotation = pdf.make_indirect(_annotation(pdf, page, highlight))
                if pikepdf.Name.Annots not in page.obj:
                    page.obj.Annots = pdf.make_indirect(pikepdf.Array())
                page.obj.Annots.append(annotation)
            out = io.BytesIO()
            pdf.save(out)
            return out.getvalue()
    except pikepdf.PdfError as exc:
        raise UnreadablePdf(str(exc)) from exc


def highlight_pdf(
    data: bytes, concepts: Collection[str], words: Collection[str], *, source: str = "a PDF"
) -> HighlightedPdf:
    """``data`` with the ``concepts``' and ``words``' occurrences highlighted. A PDF that cannot be read is
    returned unchanged, without highlights, and a warning naming ``source`` (never its content) is logged;
    so is one without a match, without the cost of a copy."""
    try:
        highlights = find_highlights(data, concepts, words)
        return HighlightedPdf(annotate(data, highlights) if highlights else data, tuple(highlights))
    except UnreadablePdf as exc:
        log.warning("Search highlights left out of %s: the PDF cannot be read (%s)", source, exc)
        return HighlightedPdf(data, ())
