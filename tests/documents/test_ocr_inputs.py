"""The OCR engine's fast parts, without running OCR: image-to-PDF conversion, the plugin (progress,
confidence, skew measured once, Tesseract's threads), and the CER helper the OCR tests rely on."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pikepdf
import pytest
from PIL import Image

from caresync.documents.ocr import inputs
from caresync.documents.ocr.plugin import TESSERACT_THREADS, JobPlugin, PageProgress, read_hocr_confidence
from tests.documents import scans

pytestmark = pytest.mark.no_db


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return scans.render_page(scans.NOISY_TEXT, seed=5, font_px=30, size=(1240, 600))


def test_jpeg_is_embedded_unchanged(tmp_path: Path, page: Image.Image) -> None:
    source = scans.save_image(page, tmp_path / "page.jpg", "JPEG")
    assert inputs.sniff(source, "image/jpeg") == "jpeg"
    assert inputs.image_to_pdf(source, tmp_path / "page.pdf", max_pages=5) == 1
    with pikepdf.open(tmp_path / "page.pdf") as pdf:
        (image,) = pdf.pages[0].get_images().values()
        assert image.Filter == pikepdf.Name.DCTDecode
        assert image.read_raw_bytes() == source.read_bytes()


def test_multipage_tiff_keeps_every_frame_and_its_size(tmp_path: Path, page: Image.Image) -> None:
    source = scans.save_tiff([page, page.rotate(90, expand=True), page], tmp_path / "pages.tiff")
    assert inputs.image_to_pdf(source, tmp_path / "pages.pdf", max_pages=5) == 3
    with pikepdf.open(tmp_path / "pages.pdf") as pdf:
        sizes = [tuple(round(float(v)) for v in p.mediabox[2:]) for p in pdf.pages]
    assert sizes == [(298, 144), (144, 298), (298, 144)]  # 1240 x 600 px at 300 dpi, in points


def test_image_without_resolution_is_taken_as_300_dpi(tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    Image.new("RGB", (600, 300), "white").save(source)  # no dpi recorded
    inputs.image_to_pdf(source, tmp_path / "photo.pdf", max_pages=1)
    with pikepdf.open(tmp_path / "photo.pdf") as pdf:
        assert [round(float(v)) for v in pdf.pages[0].mediabox[2:]] == [144, 72]


def test_transparent_png_is_converted(tmp_path: Path) -> None:
    source = tmp_path / "screenshot.png"
    Image.new("RGBA", (300, 300), (0, 0, 0, 0)).save(source, dpi=(300, 300))
    assert inputs.image_to_pdf(source, tmp_path / "screenshot.pdf", max_pages=1) == 1
    with pikepdf.open(tmp_path / "screenshot.pdf") as pdf:
        assert len(pdf.pages) == 1


def test_tiff_over_the_page_limit_is_refused(tmp_path: Path, page: Image.Image) -> None:
    source = scans.save_tiff([page, page], tmp_path / "two.tiff")
    with pytest.raises(inputs.ValidationFailed, match="2 pages; at most 1"):
        inputs.image_to_pdf(source, tmp_path / "two.pdf", max_pages=1)


def test_image_with_more_than_8_bits_per_sample_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "deep.tiff"
    Image.new("I;16", (50, 50)).save(source, dpi=(300, 300))
    with pytest.raises(inputs.ValidationFailed, match="8-bit RGB or greyscale"):
        inputs.image_to_pdf(source, tmp_path / "deep.pdf", max_pages=1)


def test_declared_type_parameters_and_case_are_ignored(tmp_path: Path) -> None:
    source = scans.digital_pdf(scans.LETTERS[:1], tmp_path / "letter.pdf")
    assert inputs.sniff(source, "Application/PDF; charset=binary") == "pdf"


HOCR = b"""<div class='ocr_page' id='page_1' title='image "x.png"; bbox 0 0 100 100; ppageno 0'>
<span class='ocr_line' id='line_1_1' title="bbox 1 1 9 9; baseline 0 0; x_size 10">
<span class='ocrx_word' id='word_1_1' title='bbox 1 1 5 9; x_wconf 96'>Chest</span>
<span class='ocrx_word' id='word_1_2' title='bbox 6 1 9 9; x_wconf 90'>pain</span>
<span class='ocrx_word' id='word_1_3' title='bbox 6 1 9 9; x_wconf 39'>~</span></span></div>"""


def test_confidence_is_the_mean_word_confidence() -> None:
    reading = read_hocr_confidence(HOCR)
    assert reading.words == 3
    assert reading.confidence == pytest.approx(0.75)
    assert read_hocr_confidence(b"<div class='ocr_page'></div>").confidence == 0.0


def test_progress_reports_whole_pages_of_the_ocr_stage_only() -> None:
    calls: list[tuple[int, int]] = []
    with PageProgress(lambda d, t: calls.append((d, t)), total=3, desc="OCR",
                      unit="page") as bar:  # fmt: skip
        for _ in range(6):
            bar.update(0.5)
    other = PageProgress(lambda d, t: calls.append((-d, t)), total=3, desc="Scanning contents", unit="page")
    other.update(3)
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_skew_is_measured_once_per_unchanged_raster(tmp_path: Path) -> None:
    """OCRmyPDF deskews a page's raster twice when it cleans the image OCR reads: Tesseract measures once."""
    job = JobPlugin(None)
    raster = tmp_path / "000001_rasterize.png"
    raster.write_bytes(b"page one")
    measured: list[Path] = []

    def measure() -> float:
        measured.append(raster)
        return -2.5

    assert [job.skew(raster, measure) for _ in range(2)] == [-2.5, -2.5]
    assert len(measured) == 1
    raster.write_bytes(b"a new raster at the same path")
    job.skew(raster, measure)
    assert len(measured) == 2


def test_tesseract_gets_one_thread_whatever_ocrmypdf_chose() -> None:
    options = SimpleNamespace(tesseract=SimpleNamespace(omp_thread_limit=2))  # 2 jobs, a one-page document
    JobPlugin(None).validate(pdfinfo=[], options=options)
    assert options.tesseract.omp_thread_limit == TESSERACT_THREADS == 1


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [("kitten", "sitting", 3 / 6), ("flaw", "lawn", 2 / 4), ("chest  pain\n", "chest pain", 0.0),
     ("abc", "", 1.0), ("", "", 0.0), ("ab", "abxyz", 3 / 2)],
)  # fmt: skip
def test_cer_is_levenshtein_over_reference_length(reference: str, hypothesis: str, expected: float) -> None:
    assert scans.cer(reference, hypothesis) == pytest.approx(expected)
