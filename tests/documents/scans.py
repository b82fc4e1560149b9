"""Synthetic scanned pages for the document tests and benchmarks.

Clinical letters with a known ground truth are rendered with Pillow the way a 300-dpi office scanner sees
paper: a grey, unevenly lit sheet, slightly tilted, with sensor noise and dust speckles. The pages can be
saved as an image-only PDF, as (multi-page) TIFF, PNG or JPEG, and a born-digital PDF with a real text layer
is available for the "already searchable" case. :func:`cer` measures the character error rate of OCR text
against the ground truth. Everything is deterministic for a given seed; nothing is stored in the repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

from caresync.documents.samples import (  # the renderer the demo uses too (re-exported for the tests)
    A4_PX,
    DPI,
    page_lines,
)
from caresync.documents.samples import digital_pdf as digital_pdf
from caresync.documents.samples import font as font
from caresync.documents.samples import letter_sheet as letter_sheet
from caresync.documents.samples import render_page as render_page
from caresync.documents.samples import save_pdf as save_pdf

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


def ground_truth(letter: str) -> str:
    """The text a perfect OCR would read from a rendered letter (its printed lines, blank lines dropped)."""
    return "\n".join(line for line in page_lines(letter) if line)


def noise_page(seed: int = 0) -> Image.Image:
    """A slip faxed once too often: a paragraph of blurred text under noise and heavy speckle, which
    Tesseract reads with a low confidence and many errors (quick to OCR: a third of an A4 page)."""
    return render_page(NOISY_TEXT, seed=seed, tilt=2.5, noise=25.0, speckles=0.03, blur=1.5, font_px=36,
                       size=(A4_PX[0], 1000))  # fmt: skip


def save_tiff(pages: Sequence[Image.Image], path: Path) -> Path:
    """A (multi-page) losslessly compressed TIFF of ``pages`` at 300 dpi."""
    first, *rest = pages
    first.save(path, "TIFF", dpi=(DPI, DPI), compression="tiff_deflate", save_all=True, append_images=rest)
    return path


def save_image(page: Image.Image, path: Path, image_format: str) -> Path:
    """``page`` as a single PNG or JPEG image at 300 dpi."""
    page.save(path, image_format, dpi=(DPI, DPI))
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
