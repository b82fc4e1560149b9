"""Search hits highlighted in the PDF itself: a generated PDF with words at known positions gets Highlight
annotations covering exactly those words on the right pages (read back with pikepdf, and drawn by PDFium),
synonyms and line breaks included; no hit or a damaged file leaves the PDF as it was."""

from __future__ import annotations

import io
import logging
from typing import Any

import pikepdf
import pypdfium2
import pytest
from fpdf import FPDF

from caresync.documents.search.pdf_highlight import COLOUR, find_highlights, highlight_pdf
from caresync.documents.search.query import plan_query

pytestmark = pytest.mark.no_db

SIZE = 12  # points
LEFT, PAGE_HEIGHT = 72.0, 841.89  # A4 in points
Box = tuple[float, float, float, float]


class Letter:
    """A two-page PDF in Helvetica whose words' boxes (PDF user space) are known."""

    def __init__(self) -> None:
        self.pdf = FPDF(unit="pt", format="A4")
        self.pdf.set_font("Helvetica", size=SIZE)
        self.words: dict[str, list[tuple[int, Box]]] = {}

    def line(self, baseline_from_top: float, text: str) -> None:
        """Write ``text`` at the left margin and remember every word's box (baseline to cap height)."""
        self.pdf.text(LEFT, baseline_from_top, text)
        x, baseline = LEFT, PAGE_HEIGHT - baseline_from_top
        for word in text.split(" "):
            width = self.pdf.get_string_width(word)
            box = (x, baseline, x + width, baseline + 0.7 * SIZE)
            self.words.setdefault(word.strip(".,"), []).append((self.pdf.page_no() - 1, box))
            x += width + self.pdf.get_string_width(" ")

    def bytes(self) -> bytes:
        return bytes(self.pdf.output())


@pytest.fixture(scope="module")
def letter() -> Letter:
    doc = Letter()
    doc.pdf.add_page()
    doc.line(100, "Routine review of the blood pressure, no new symptoms.")
    doc.line(120, "She has been a little short of")
    doc.line(136, "breath on the stairs.")
    doc.pdf.add_page()
    doc.line(100, "Referral letter from the practice nurse.")
    doc.line(300, "Today she describes chest pain on exertion.")
    doc.pdf.link(LEFT, 400, 100, 20, "https://example.org/")  # an annotation of the page's own
    return doc


def terms(query: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    plan = plan_query(query)
    return plan.concepts, plan.words


def page_annotations(data: bytes) -> list[list[Any]]:
    """Each page's annotations, as written (read while the file is open)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [
            [pikepdf.Dictionary(dict(a.items())) for a in page.obj.get("/Annots", [])] for page in pdf.pages
        ]


def covers(rect: list[float], box: Box, slack: float = 1.0) -> bool:
    """``rect`` covers ``box`` and is no more than a line's height bigger."""
    left, bottom, right, top = (float(v) for v in rect)
    inside = left <= box[0] + slack and bottom <= box[1] + slack and right >= box[2] - slack and top >= box[3]
    tight = abs(left - box[0]) < 3 and abs(right - box[2]) < 3 and top - bottom < 2 * SIZE
    return inside and tight


def test_the_hit_is_highlighted_on_its_page_over_its_word(letter: Letter) -> None:
    source = letter.bytes()
    out = highlight_pdf(source, *terms("chest pain"))
    assert out.first_page == 2
    assert [(h.page, h.term) for h in out.highlights] == [(1, "chest pain")]
    first, second = page_annotations(out.data)
    assert first == []
    link, highlight = second  # the page's own link is kept, the highlight comes after it
    assert link.Subtype == "/Link"
    assert highlight.Subtype == "/Highlight"
    assert str(highlight.Contents) == "chest pain"
    assert [float(c) for c in highlight.C] == list(COLOUR)
    (_, chest), (_, pain) = letter.words["chest"][0], letter.words["pain"][0]
    word = (chest[0], chest[1], pain[2], pain[3])
    assert covers(list(highlight.Rect), word)
    quad = [float(v) for v in highlight.QuadPoints]
    assert len(quad) == 8
    assert covers([quad[4], quad[5], quad[2], quad[3]], word)  # bottom-left, top-right
    # PDFium reads exactly the hit under the annotation, and draws it in the marker colour
    document = pypdfium2.PdfDocument(out.data)
    page = document[1]
    assert page.get_textpage().get_text_bounded(*(float(v) for v in highlight.Rect)).strip() == "chest pain"
    image = page.render(scale=1, draw_annots=True).to_pil().convert("RGB")
    x, y = round((chest[2] + pain[0]) / 2), round(PAGE_HEIGHT - word[1]) - 3  # the space between the words
    red, green, blue = image.getpixel((x, y))
    assert (red > 200, green > 170, blue < 120) == (True, True, True)  # marker yellow
    plain = pypdfium2.PdfDocument(source)[1].render(scale=1).to_pil().convert("RGB")
    assert plain.getpixel((x, y))[2] > 200  # the stored file's page there is not yellow
    document.close()


def test_synonyms_and_words_broken_over_lines_are_highlighted(letter: Letter) -> None:
    found = find_highlights(letter.bytes(), *terms("dyspnoea, stairs"))
    assert [(h.page, h.term) for h in found] == [(0, "short of breath"), (0, "stairs")]
    broken = found[0]
    assert len(broken.boxes) == 2  # one box per line
    (_, short), (_, breath) = letter.words["short"][0], letter.words["breath"][0]
    assert covers(list(broken.boxes[0]), (short[0], short[1], letter.words["of"][-1][1][2], short[3]))
    assert covers(list(broken.boxes[1]), breath)
    out = highlight_pdf(letter.bytes(), *terms("dyspnoea"))
    (annotation,) = page_annotations(out.data)[0]
    assert len(annotation.QuadPoints) == 16


def test_no_hit_leaves_the_pdf_as_it_was(letter: Letter) -> None:
    source = letter.bytes()
    for query in ("haemoptysis", "xylophone"):
        out = highlight_pdf(source, *terms(query))
        assert out.data == source
        assert out.highlights == ()
        assert out.first_page is None
    assert highlight_pdf(source, (), ()).data == source


@pytest.mark.parametrize("data", [b"%PDF-1.7\nnot really a PDF\n", b"", b"GIF89a"])
def test_a_damaged_pdf_is_shown_as_it_is_with_a_warning(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="caresync.documents.search.pdf_highlight"):
        out = highlight_pdf(data, *terms("chest pain"), source="record 42")
    assert out.data == data
    assert out.highlights == ()
    assert "record 42" in caplog.text
    assert "cannot be read" in caplog.text
