"""Synthetic scanned pages for the document tests and benchmarks.

Clinical letters with a known ground truth are rendered with Pillow the way a 300-dpi office scanner sees
paper: a grey, unevenly lit sheet, slightly tilted, with sensor noise and dust speckles. The pages can be
saved as an image-only PDF, as (multi-page) TIFF, PNG or JPEG, and a born-digital PDF with a real text layer
is available for the "already searchable" case. :func:`cer` measures the character error rate of OCR text
against the ground truth. Everything is deterministic for a given seed; nothing is stored in the repository.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from contextlib import ExitStack
from functools import cache
from pathlib import Path

import numpy as np
import pikepdf
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

DPI = 300
A4_PX = (2480, 3508)  # A4 at 300 dpi
MARGIN_PX = 220
FONT_PX = 44  # about 10.5 pt at 300 dpi
LINE_PX = 66
WRAP = 76
_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")

# Ground truth: one letter per page, each paragraph wrapped to lines at WRAP characters.
LETTERS: tuple[str, ...] = (
    """Riverside General Hospital, Department of Cardiology
14 March 2026

Dear Dr Patel,

Re: Margaret Ellison, born 02/07/1951, hospital number RGH-448120

Thank you for referring this 74-year-old woman, who attended the clinic today with a three-month history \
of exertional chest pain and shortness of breath at night. She sleeps on three pillows and describes \
swelling of both ankles by the evening. She denies palpitations and syncope.

On examination her pulse was 88 beats per minute and irregular, blood pressure 146/92 mmHg, oxygen \
saturation 95 percent on air. There were fine bibasal crackles and pitting oedema to the mid shin.

The electrocardiogram showed atrial fibrillation with a controlled ventricular rate. Echocardiography \
showed a left ventricular ejection fraction of 38 percent with moderate mitral regurgitation.

Impression: heart failure with reduced ejection fraction and new atrial fibrillation.""",
    """Plan

1. Start bisoprolol 2.5 mg once daily and ramipril 2.5 mg once daily.
2. Furosemide 40 mg each morning, with a daily weight record at home.
3. Apixaban 5 mg twice daily for stroke prevention, after the renal function result.
4. Blood tests in one week: sodium, potassium, creatinine and full blood count.

I have explained the diagnosis to Mrs Ellison and her daughter, and given them written advice about \
fluid intake and the warning signs of worsening breathlessness. She should call the heart failure \
nurses on 0161 555 0199 if her weight rises by more than two kilograms in three days.

We will review her in the clinic in six weeks with a repeat echocardiogram.

Yours sincerely,

Dr Samuel Okafor, Consultant Cardiologist""",
    """Discharge summary, Ward 7 (General Medicine)

Patient: Thomas Reid, born 19/11/1962, hospital number RGH-552907
Admitted 3 February 2026, discharged 9 February 2026

Presenting complaint: fever, productive cough and pleuritic chest pain for four days.
Diagnosis: community acquired pneumonia of the right lower lobe, CURB-65 score 2.

He was treated with intravenous amoxicillin and oral clarithromycin, then oral amoxicillin 500 mg three \
times daily to complete seven days. His C-reactive protein fell from 212 to 38 mg/L. He has no known \
drug allergies.

Follow-up: chest radiograph in six weeks to confirm resolution. Please stop smoking support referral.""",
    """Outpatient letter, Diabetes and Endocrinology

Re: Aisha Rahman, born 25/04/1988, hospital number RGH-610034

Ms Rahman has type 1 diabetes diagnosed at the age of twelve. Her latest HbA1c is 71 mmol/mol, up from \
64 six months ago. She reports two episodes of hypoglycaemia each week, mostly after evening exercise, \
and she has lost awareness of the early symptoms on one occasion.

Her injection sites show lipohypertrophy of the abdomen. Foot examination was normal and retinal \
screening last year showed background retinopathy only.

We have reduced her evening insulin glargine from 18 to 16 units, and she will start a continuous \
glucose monitor. She will see the diabetes specialist nurse in four weeks.""",
    """Clinic note, Respiratory Medicine

Re: George Wilson, born 08/12/1957, hospital number RGH-377215

Mr Wilson has chronic obstructive pulmonary disease and attended for review after two exacerbations \
this winter. He walks 200 metres before stopping for breath and coughs up white sputum most mornings. \
He stopped smoking in 2019 after a 40 pack-year history.

Spirometry today: FEV1 1.42 litres, 52 percent of predicted, FEV1/FVC ratio 0.58.

We have changed his inhalers to a single triple inhaler, two puffs once daily, and referred him to \
pulmonary rehabilitation. He has a rescue pack of prednisolone 30 mg for five days and doxycycline.""",
)


#: The paragraph on :func:`noise_page`.
NOISY_TEXT = LETTERS[0].split("\n\n")[3]


def page_lines(letter: str) -> list[str]:
    """The ground-truth lines of a letter as they are printed on the page (wrapped at :data:`WRAP`)."""
    lines: list[str] = []
    for paragraph in letter.split("\n"):
        lines.extend(textwrap.wrap(paragraph, WRAP) or [""])
    return lines


def ground_truth(letter: str) -> str:
    """The text a perfect OCR would read from a rendered letter (its printed lines, blank lines dropped)."""
    return "\n".join(line for line in page_lines(letter) if line)


def _font_file(name: str) -> Path | None:
    return next((Path(folder) / name for folder in _FONT_DIRS if (Path(folder) / name).exists()), None)


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The serif face scans are printed in (DejaVu Serif; Pillow's own font where it is missing)."""
    path = _font_file("DejaVuSerif.ttf")
    return ImageFont.load_default(size=size) if path is None else ImageFont.truetype(str(path), size)


def letter_sheet(letter: str) -> tuple[int, int]:
    """An A4-wide sheet just tall enough for ``letter`` (in pixels): a cheaper page to OCR than a whole A4
    sheet, for tests that need the text but not the paper around it."""
    return A4_PX[0], len(page_lines(letter)) * LINE_PX + 2 * MARGIN_PX


def render_page(
    letter: str,
    *,
    seed: int = 0,
    tilt: float = 2.0,
    noise: float = 10.0,
    speckles: float = 0.0015,
    blur: float = 0.6,
    font_px: int = FONT_PX,
    size: tuple[int, int] = A4_PX,
) -> Image.Image:
    """A greyscale 300-dpi scan of ``letter``: grey uneven paper, text tilted by ``tilt`` degrees, Gaussian
    sensor noise of standard deviation ``noise`` (grey levels), a ``speckles`` fraction of dust dots and a
    slight optical ``blur``; ``size`` is the sheet in pixels (A4 by default)."""
    rng = np.random.default_rng(seed)
    sheet = Image.new("L", size, 255)
    draw = ImageDraw.Draw(sheet)
    face = font(font_px)
    y = MARGIN_PX
    for line in page_lines(letter):
        draw.text((MARGIN_PX, y), line, fill=0, font=face)
        y += LINE_PX * font_px // FONT_PX
    sheet = sheet.rotate(tilt, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if blur:
        sheet = sheet.filter(ImageFilter.GaussianBlur(blur))
    ink = 1.0 - np.asarray(sheet, dtype=np.float32) / 255.0
    height, width = ink.shape
    shade = (
        np.linspace(0.0, 18.0, width, dtype=np.float32)[None, :]
        + np.linspace(0.0, 10.0, height, dtype=np.float32)[:, None]
    )
    paper = 228.0 - shade  # grey, unevenly lit sheet
    pixels = paper * (1.0 - ink) + 35.0 * ink
    pixels += rng.standard_normal(size=pixels.shape, dtype=np.float32) * np.float32(noise)
    dots = rng.random(size=pixels.shape, dtype=np.float32) < speckles
    pixels[dots] = rng.uniform(0.0, 90.0, size=int(dots.sum()))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def noise_page(seed: int = 0) -> Image.Image:
    """A slip faxed once too often: a paragraph of blurred text under noise and heavy speckle, which
    Tesseract reads with a low confidence and many errors (quick to OCR: a third of an A4 page)."""
    return render_page(NOISY_TEXT, seed=seed, tilt=2.5, noise=25.0, speckles=0.03, blur=1.5, font_px=36,
                       size=(A4_PX[0], 1000))  # fmt: skip


def save_pdf(pages: Sequence[Image.Image], path: Path) -> Path:
    """An image-only PDF (no text layer) of ``pages`` at 300 dpi."""
    first, *rest = pages
    first.save(path, "PDF", resolution=DPI, save_all=True, append_images=rest)
    return path


def save_tiff(pages: Sequence[Image.Image], path: Path) -> Path:
    """A (multi-page) losslessly compressed TIFF of ``pages`` at 300 dpi."""
    first, *rest = pages
    first.save(path, "TIFF", dpi=(DPI, DPI), compression="tiff_deflate", save_all=True, append_images=rest)
    return path


def save_image(page: Image.Image, path: Path, image_format: str) -> Path:
    """``page`` as a single PNG or JPEG image at 300 dpi."""
    page.save(path, image_format, dpi=(DPI, DPI))
    return path


def digital_pdf(letters: Sequence[str], path: Path) -> Path:
    """A born-digital PDF (a real text layer on every page, in an embedded font, as a word processor
    exports) of ``letters``."""
    pdf = FPDF(format="A4")
    font = _font_file("DejaVuSans.ttf")
    if font is None:
        pdf.set_font("Helvetica", size=11)
    else:
        pdf.add_font("DejaVuSans", fname=str(font))
        pdf.set_font("DejaVuSans", size=10)
    for letter in letters:
        pdf.add_page()
        for line in page_lines(letter):
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def combine_pdfs(parts: Sequence[Path], path: Path) -> Path:
    """One PDF with the pages of ``parts`` in order (e.g. a scanned page followed by a digital one)."""
    with ExitStack() as stack:
        combined = stack.enter_context(pikepdf.new())
        for part in parts:
            combined.pages.extend(stack.enter_context(pikepdf.open(part)).pages)
        combined.save(path)
    return path


def normalise(text: str) -> str:
    """Text compared as a reader sees it: whitespace runs collapsed to one space, ends trimmed."""
    return " ".join(text.split())


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: the Levenshtein distance between the normalised texts divided by the length
    of the normalised reference (0 = identical)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return float(bool(hyp))
    # One DP row per reference character; within a row, insertions are a running minimum (vectorised).
    hyp_codes = np.frombuffer(hyp.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(hyp) + 1)
    row = steps.copy()
    for char in ref:
        substitution = row[:-1] + (hyp_codes != ord(char))
        best = np.minimum(row[1:] + 1, substitution)
        candidates = np.concatenate(([row[0] + 1], best))
        row = np.minimum.accumulate(candidates - steps) + steps
    return float(row[-1]) / len(ref)
