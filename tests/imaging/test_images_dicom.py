"""DICOM decoding: the files pydicom-data ships (CR chest X-ray, CT, MR, ultrasound, compressed transfer
syntaxes), small DICOMs built here for the edge cases (MONOCHROME1, windows, VOI LUT, multi-frame), and
every kind of bad file with the message it gets."""

from __future__ import annotations

from functools import cache
from io import BytesIO
from typing import Any

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    MPEG2MPML,
    BasicTextSRStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

from caresync.core.errors import DomainError, UnsupportedMedia, ValidationFailed
from caresync.imaging.images import ImageData, decode

pytestmark = pytest.mark.no_db


@cache
def shipped(name: str) -> bytes:
    """The bytes of a pydicom-data test file (read once per run)."""
    path = get_testdata_file(name)
    assert path is not None, f"pydicom-data lacks {name}"
    with open(path, "rb") as handle:
        return handle.read()


@cache
def decoded(name: str) -> ImageData:
    """A shipped file decoded (once per run: the big CR files take a moment)."""
    return decode(shipped(name))


def build(
    pixels: np.ndarray | None,
    *,
    photometric: str = "MONOCHROME2",
    sop_class: str = CTImageStorage,
    syntax: str = ExplicitVRLittleEndian,
    **elements: Any,
) -> bytes:
    """A small DICOM Part-10 file: 16-bit unsigned greyscale ``pixels`` (2-D, or 3-D for multi-frame) and
    any further elements by keyword."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", "1.2.3.4.5"
    ds.Modality = "CT"
    if pixels is not None:
        ds.Rows, ds.Columns = pixels.shape[-2:]
        if pixels.ndim == 3:
            ds.NumberOfFrames = pixels.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ramp(rows: int = 40, columns: int = 50, top: int = 1000) -> np.ndarray:
    """Stored values rising from 0 (top-left) to ``top`` (bottom-right)."""
    return np.linspace(0, top, rows * columns).reshape(rows, columns).round()


# --- the shipped files ------------------------------------------------------------------------------------

SHIPPED = [
    # name, shape, channels, modality, body part, a step that must be there (or None)
    ("RG1_UNCI.dcm", (1955, 1841), 1, "CR", "CHEST", "Inverted (MONOCHROME1"),
    ("CT_small.dcm", (128, 128), 1, "CT", None, "Rescale slope 1, intercept -1024 (to HU)"),
    ("MR_small.dcm", (64, 64), 1, "MR", None, "Window centre 600, width 1600"),
    ("MR_small_RLE.dcm", (64, 64), 1, "MR", None, "Window centre 600, width 1600"),
    ("MR_small_jpeg_ls_lossless.dcm", (64, 64), 1, "MR", None, "Window centre 600, width 1600"),
    ("JPEG2000.dcm", (1024, 256), 1, "NM", "WHOLE BODY", "No window in the file"),
    ("JPEG-LL.dcm", (1024, 256), 1, "NM", "WHOLE BODY", "No window in the file"),  # JPEG lossless, process 14
    ("US1_J2KR.dcm", (480, 640, 3), 3, "US", None, "Colour converted from YBR_RCT to RGB"),
    ("SC_rgb_jpeg_dcmtk.dcm", (100, 100, 3), 3, "OT", None, "Colour converted from YBR_FULL to RGB"),
    (
        "emri_small.dcm",
        (64, 64),
        1,
        "MR",
        "HEAD",
        "10 frames (a volume or a cine loop): the middle one, frame 6",
    ),
    ("OBXXXX1A.dcm", (600, 800, 3), 3, "US", None, "Palette colours applied (PALETTE COLOR)"),
]


@pytest.mark.parametrize(("name", "shape", "channels", "modality", "body_part", "step"), SHIPPED)
def test_shipped_files_decode(
    name: str, shape: tuple[int, ...], channels: int, modality: str, body_part: str | None, step: str
) -> None:
    image = decoded(name)
    assert image.pixels.shape == shape
    assert image.pixels.dtype == np.float32
    assert (image.width, image.height) == (shape[1], shape[0])
    assert image.channels == channels
    assert image.media_type == "application/dicom"
    assert (image.modality, image.body_part) == (modality, body_part)
    assert 0.0 <= float(image.pixels.min()) < float(image.pixels.max()) <= 1.0
    assert any(s.startswith(step) for s in image.steps), image.steps


def test_header_facts_are_read() -> None:
    ct = decoded("CT_small.dcm")
    header = pydicom.dcmread(BytesIO(shipped("CT_small.dcm")))
    assert ct.study_uid == header.StudyInstanceUID
    assert ct.series_uid == header.SeriesInstanceUID
    assert ct.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert decoded("RG1_UNCI.dcm").pixel_spacing is None  # the file says 0 x 0 mm: unknown, not zero


@pytest.mark.parametrize(
    ("modality", "elements", "spacing"),
    [
        ("CR", {"ImagerPixelSpacing": [0.2, 0.25]}, (0.2, 0.25)),
        ("DX", {"ImagerPixelSpacing": [0.15, 0.15], "PixelSpacing": [0.1, 0.1]}, (0.1, 0.1)),
        ("CT", {"ImagerPixelSpacing": [0.2, 0.2]}, None),  # detector spacing means nothing for CT
        ("MR", {"PixelSpacing": [0.5, 0.6]}, (0.5, 0.6)),
    ],
)
def test_pixel_spacing(modality: str, elements: dict[str, Any], spacing: tuple[float, float] | None) -> None:
    image = decode(build(ramp(), Modality=modality, **elements))
    assert image.pixel_spacing == (pytest.approx(spacing) if spacing else None)


def test_monochrome1_chest_xray_shows_lungs_dark_and_mediastinum_bright() -> None:
    pixels = decoded("RG1_UNCI.dcm").pixels
    rows, columns = pixels.shape

    def region(r0: float, r1: float, c0: float, c1: float) -> float:
        return float(pixels[int(r0 * rows) : int(r1 * rows), int(c0 * columns) : int(c1 * columns)].mean())

    lungs = (region(0.2, 0.45, 0.15, 0.35) + region(0.2, 0.45, 0.65, 0.85)) / 2
    mediastinum = region(0.2, 0.45, 0.45, 0.55)
    assert mediastinum - lungs > 0.15, (lungs, mediastinum)


@pytest.mark.parametrize(
    ("photometric", "at_min", "at_max"), [("MONOCHROME1", 1.0, 0.0), ("MONOCHROME2", 0.0, 1.0)]
)
def test_monochrome1_is_inverted(photometric: str, at_min: float, at_max: float) -> None:
    image = decode(build(ramp(), photometric=photometric))
    assert image.pixels[0, 0] == pytest.approx(at_min)  # the raw minimum
    assert image.pixels[-1, -1] == pytest.approx(at_max)  # the raw maximum
    assert any("Inverted" in step for step in image.steps) == (photometric == "MONOCHROME1")


def test_lossless_compressions_decode_to_the_uncompressed_pixels() -> None:
    assert np.array_equal(decoded("RG1_J2KR.dcm").pixels, decoded("RG1_UNCR.dcm").pixels)
    assert np.array_equal(decoded("US1_J2KR.dcm").pixels, decoded("US1_UNCR.dcm").pixels)
    for name in ("MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        assert np.array_equal(decoded(name).pixels, decoded("MR_small.dcm").pixels)


def test_ybr_jpeg_comes_out_rgb() -> None:
    """The YBR_FULL JPEG holds the same picture as the uncompressed RGB file, up to JPEG's loss."""
    rgb, jpeg = decoded("SC_rgb.dcm").pixels, decoded("SC_rgb_jpeg_dcmtk.dcm").pixels
    assert np.abs(rgb - jpeg).max() <= 8 / 255
    assert float((rgb.max(axis=2) - rgb.min(axis=2)).max()) == 1.0  # really colour: pure colour bars


# --- modality LUT, windows, VOI LUT ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "elements", "expected", "step"),
    [
        # HU = stored - 1024; window 40/400 (LINEAR): 40 HU -> 0.5 + 0.5/399
        (
            1064,
            {"RescaleSlope": 1, "RescaleIntercept": -1024, "WindowCenter": 40, "WindowWidth": 400},
            0.5 + 0.5 / 399,
            "Rescale slope 1, intercept -1024 (to HU)",
        ),
        (
            1064,
            {"RescaleSlope": 1, "RescaleIntercept": -1024, "WindowCenter": 40, "WindowWidth": 400},
            0.5 + 0.5 / 399,
            "Window centre 40, width 400",
        ),
        (
            824,
            {"RescaleSlope": 1, "RescaleIntercept": -1024, "WindowCenter": 40, "WindowWidth": 400},
            0.0,
            "Window centre 40, width 400",
        ),  # -200 HU: below the window
        (
            1500,
            {"RescaleSlope": 1, "RescaleIntercept": -1024, "WindowCenter": 40, "WindowWidth": 400},
            1.0,
            "Window centre 40, width 400",
        ),  # bone: above the window
        # slope 2: 150 -> 300; LINEAR_EXACT window 200/400 -> (300 - 0) / 400
        (
            150,
            {
                "RescaleSlope": 2,
                "RescaleIntercept": 0,
                "WindowCenter": 200,
                "WindowWidth": 400,
                "VOILUTFunction": "LINEAR_EXACT",
            },
            0.75,
            "Window centre 200, width 400, linear exact",
        ),
        (
            200,
            {"WindowCenter": 200, "WindowWidth": 100, "VOILUTFunction": "SIGMOID"},
            0.5,
            "Window centre 200, width 100, sigmoid",
        ),
        (
            250,
            {"WindowCenter": 200, "WindowWidth": 100, "VOILUTFunction": "SIGMOID"},
            1 / (1 + np.exp(-2)),
            "Window centre 200, width 100, sigmoid",
        ),
        # several windows: the first one is used and the step says so
        (
            300,
            {"WindowCenter": [300, 40], "WindowWidth": [200, 400]},
            0.5 + 0.5 / 199,
            "Window centre 300, width 200 (the first of 2 windows in the file)",
        ),
    ],
)
def test_rescale_and_window(stored: int, elements: dict[str, Any], expected: float, step: str) -> None:
    pixels = np.full((40, 40), stored)
    pixels[0, 0] = 0  # not a constant image
    image = decode(build(pixels, **elements))
    assert image.pixels[20, 20] == pytest.approx(expected, abs=1e-5)
    assert step in image.steps


def test_ct_values_are_in_hounsfield_units_before_windowing() -> None:
    """CT_small has no window: the stretch runs over HU values (air near -1000 is below 0 stored)."""
    step = next(s for s in decoded("CT_small.dcm").steps if s.startswith("No window"))
    low = float(step.split("(")[1].split(" to ")[0])
    assert -1024 <= low < -500


def test_voi_lut_sequence_is_applied() -> None:
    lut = Dataset()
    lut.LUTDescriptor = [256, 0, 8]  # 256 entries, first maps stored value 0, 8-bit output
    lut.LUTExplanation = "Reversed"
    lut.LUTData = list(range(255, -1, -1))
    lut["LUTData"].VR = "US"
    pixels = np.tile(np.arange(0, 256, 4), (40, 1))  # 40 x 64, values 0..252 along each row
    image = decode(build(pixels, VOILUTSequence=[lut], WindowCenter=100, WindowWidth=10))
    assert image.pixels[0, 0] == pytest.approx(1.0)
    assert image.pixels[0, 10] == pytest.approx((255 - 40) / 255)
    assert image.steps == ("VOI LUT from the file applied (Reversed)",)  # the LUT wins over the window


def test_no_window_stretches_to_percentiles() -> None:
    pixels = ramp(50, 50, 10000)
    image = decode(build(pixels))
    assert image.pixels.min() == 0.0
    assert image.pixels.max() == 1.0
    low, high = np.percentile(pixels, [0.5, 99.5])
    assert image.pixels[25, 25] == pytest.approx((pixels[25, 25] - low) / (high - low))
    assert image.steps[0].startswith("No window in the file: contrast stretched between the 0.5th and 99.5th")


def test_multi_frame_uses_the_middle_frame() -> None:
    frames = np.stack([np.full((40, 40), 100 * k) for k in range(5)])
    frames[:, 0, 0] = 1000
    image = decode(build(frames, WindowCenter=500, WindowWidth=1001))
    assert image.pixels.shape == (40, 40)
    assert image.pixels[20, 20] == pytest.approx((200 - 499.5) / 1000 + 0.5)  # frame 3 holds 200
    assert image.steps[0] == "5 frames (a volume or a cine loop): the middle one, frame 3, is used"


# --- bad files ---------------------------------------------------------------------------------------------


def _sr() -> bytes:
    return build(None, sop_class=BasicTextSRStorage, Modality="SR")


def _huge_header() -> bytes:
    """Declares 20000 x 20000 pixels but carries a few bytes: refused on the header alone."""
    data = bytearray(build(ramp(40, 40)))
    ds = pydicom.dcmread(BytesIO(bytes(data)))
    ds.Rows = ds.Columns = 20000
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _mpeg2() -> bytes:
    data = build(
        None,
        syntax=MPEG2MPML,
        Rows=64,
        Columns=64,
        SamplesPerPixel=1,
        PhotometricInterpretation="MONOCHROME2",
        BitsAllocated=8,
        BitsStored=8,
        HighBit=7,
        PixelRepresentation=0,
        PixelData=encapsulate([b"\x00" * 64]),
    )
    return data


BAD = [
    # what, bytes, error class, words the message must contain
    ("a structured report", _sr, ValidationFailed, "holds no image: it is a Basic Text SR Storage"),
    ("header cut short", lambda: shipped("CT_small.dcm")[:300], ValidationFailed, "truncated or damaged"),
    (
        "cut before the pixels",
        lambda: shipped("CT_small.dcm")[:3000],
        ValidationFailed,
        "truncated or damaged: it ends before its pixel data",
    ),
    (
        "pixel data cut short",
        lambda: shipped("CT_small.dcm")[:20000],
        ValidationFailed,
        "truncated or damaged: The number of bytes of pixel data is less than expected",
    ),
    (
        "12-bit lossy JPEG",
        lambda: shipped("JPEG-lossy.dcm"),
        UnsupportedMedia,
        "compressed as JPEG Extended (Process 2 and 4) (1.2.840.10008.1.2.4.51) with 12 bits per sample",
    ),
    ("MPEG-2 video", _mpeg2, UnsupportedMedia, "transfer syntax MPEG2 Main Profile / Main Level"),
    ("too small", lambda: build(ramp(16, 40)), ValidationFailed, "40 x 16 pixels; at least 32 x 32"),
    (
        "declared 400 MP",
        _huge_header,
        ValidationFailed,
        "20000 x 20000 pixels (400 megapixels); the limit is 100",
    ),
    (
        "palette without its colours",
        lambda: build(ramp(), photometric="PALETTE COLOR"),
        ValidationFailed,
        "The DICOM file is truncated or damaged: ",
    ),
    (
        "YBR_PARTIAL_420 colour",
        lambda: build(ramp(), photometric="YBR_PARTIAL_420"),
        UnsupportedMedia,
        "The image's colour space, YBR_PARTIAL_420, is not supported here.",
    ),
    (
        "no Part-10 preamble",
        lambda: shipped("rtstruct.dcm"),
        UnsupportedMedia,
        "128-byte preamble and the letters 'DICM'",
    ),
]


@pytest.mark.parametrize(("what", "make", "error", "words"), BAD, ids=[case[0] for case in BAD])
def test_bad_dicom_files_get_a_clear_4xx(what: str, make: Any, error: type[DomainError], words: str) -> None:
    with pytest.raises(error) as caught:
        decode(make())
    assert 400 <= caught.value.status < 500
    assert words in caught.value.detail, caught.value.detail
