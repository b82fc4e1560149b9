"""DICOM decoding: any transfer syntax pydicom (with pylibjpeg and Pillow) decodes here, then the Modality
LUT or rescale, the VOI LUT or window, MONOCHROME1 inversion and colour conversion, as a viewer would."""

from __future__ import annotations

import dataclasses
from io import BytesIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    as_pixel_options,
    get_decoder,
)
from pydicom.uid import UID

from caresync.core.errors import UnsupportedMedia, ValidationFailed
from caresync.imaging.images.image import ImageData, check_size, finish

MEDIA_TYPE = "application/dicom"
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DETECTOR_SPACING = ("CR", "DX")  # projection radiography: ImagerPixelSpacing when PixelSpacing is absent
_PERCENTILES = (0.5, 99.5)
_PERCENTILE_SAMPLES = 1_000_000  # pixels sampled (evenly) to find the contrast-stretch percentiles
_DAMAGED = "The DICOM file is truncated or damaged"


def decode_dicom(data: bytes) -> ImageData:
    """Decode a DICOM Part-10 file into a displayable, analysable image.

    Multi-frame files (volumes, cine loops) give their middle frame. Raises ValidationFailed (422) for
    damaged files, files without an image and images of an unusable size, and UnsupportedMedia (415) for
    pixel data no decoder here can read.
    """
    ds = _read(data)
    frames = int(ds.get("NumberOfFrames") or 1)
    steps = []
    if frames > 1:
        steps.append(
            f"{frames} frames (a volume or a cine loop): the middle one, frame {frames // 2 + 1}, is used"
        )
    arr, photometric = _decode_pixels(ds, frames // 2 if frames > 1 else None)
    try:
        if photometric.startswith("MONOCHROME"):
            pixels = _grey(arr, ds, photometric, steps)
        else:
            pixels = _colour(arr, ds, photometric, steps)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:  # e.g. a broken LUT
        raise ValidationFailed(f"{_DAMAGED}: {_first_line(exc)}") from None
    modality = (_text(ds, "Modality") or "").upper() or None
    return dataclasses.replace(
        finish(pixels, steps, MEDIA_TYPE),
        modality=modality,
        body_part=(_text(ds, "BodyPartExamined") or "").upper() or None,
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        pixel_spacing=_spacing(ds, modality),
    )


def _read(data: bytes) -> Dataset:
    """Parse the file and check, before any pixel is decoded, that it holds an image of a usable size."""
    try:
        ds = pydicom.dcmread(BytesIO(data), force=False)
    except InvalidDicomError as exc:
        raise ValidationFailed(f"{_DAMAGED}: {exc}") from None
    except Exception:  # pydicom raises many kinds of errors on a damaged header
        raise ValidationFailed(f"{_DAMAGED}: its header cannot be read.") from None
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        sop_class = UID(str(ds.get("SOPClassUID", ""))).name
        if "TransferSyntaxUID" not in ds.file_meta or "Rows" in ds or not sop_class or "Image" in sop_class:
            raise ValidationFailed(f"{_DAMAGED}: it ends before its pixel data.")
        raise ValidationFailed(
            f"This DICOM file holds no image: it is a {sop_class}. Upload an image such as an X-ray, "
            "a CT or MR slice, or an ultrasound frame."
        )
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError):
        raise ValidationFailed(f"{_DAMAGED}: it does not state its image size (Rows, Columns).") from None
    check_size(columns, rows)
    return ds


def _decode_pixels(ds: Dataset, index: int | None) -> tuple[np.ndarray, str]:
    """One frame's stored values (colour already RGB if the codec converts it) and their photometric
    interpretation."""
    syntax = ds.file_meta.TransferSyntaxUID
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise UnsupportedMedia(
            f"The pixel data uses the transfer syntax {syntax.name} ({syntax}), which is not supported here. "
            "Export the image uncompressed (Explicit VR Little Endian) and upload it again."
        ) from None
    try:
        arr, changes = decoder.as_array(ds, index=index, validate=True, **as_pixel_options(ds))
    except Exception as exc:  # decoders raise many kinds of errors; all mean this file cannot be read here
        if syntax.is_compressed:
            raise UnsupportedMedia(
                f"The pixel data is compressed as {syntax.name} ({syntax}) with {ds.get('BitsStored')} bits "
                "per sample, which no decoder here supports (or the compressed data is damaged). Export "
                "the image uncompressed or as lossless JPEG 2000 and upload it again."
            ) from None
        raise ValidationFailed(f"{_DAMAGED}: {_first_line(exc)}") from None
    photometric = str(changes.get("photometric_interpretation") or ds.get("PhotometricInterpretation", ""))
    return arr, photometric


def _grey(arr: np.ndarray, ds: Dataset, photometric: str, steps: list[str]) -> np.ndarray:
    """Stored values -> modality values (e.g. HU) -> VOI (window) -> [0, 1], inverted for MONOCHROME1."""
    values = _modality_values(arr, ds, steps)
    values = _voi(values, ds, steps)
    if photometric == "MONOCHROME1":
        np.subtract(1.0, values, out=values)
        steps.append("Inverted (MONOCHROME1: low values are white)")
    return values


def _modality_values(arr: np.ndarray, ds: Dataset, steps: list[str]) -> np.ndarray:
    if "ModalityLUTSequence" in ds:
        explanation = ds.ModalityLUTSequence[0].get("LUTExplanation")
        steps.append("Modality LUT applied" + (f" ({explanation})" if explanation else ""))
        return np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    values = arr.astype(np.float32)
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        slope, intercept = float(ds.get("RescaleSlope") or 1), float(ds.get("RescaleIntercept") or 0)
        unit = ds.get("RescaleType") or ("HU" if ds.get("Modality") == "CT" else None)
        steps.append(f"Rescale slope {slope:g}, intercept {intercept:g}" + (f" (to {unit})" if unit else ""))
        if slope != 1:
            values *= slope
        if intercept:
            values += intercept
    return values


def _voi(values: np.ndarray, ds: Dataset, steps: list[str]) -> np.ndarray:
    """Map modality values to [0, 1]: the file's VOI LUT, else its first window, else a percentile stretch."""
    if "VOILUTSequence" in ds:
        lut = ds.VOILUTSequence[0]
        explanation = lut.get("LUTExplanation")
        steps.append("VOI LUT from the file applied" + (f" ({explanation})" if explanation else ""))
        mapped = apply_voi_lut(values.astype(np.int64), ds, prefer_lut=True)
        return np.clip(mapped.astype(np.float32) / (2 ** int(lut.LUTDescriptor[2]) - 1), 0, 1)
    centres, widths = _values(ds, "WindowCenter"), _values(ds, "WindowWidth")
    if centres and widths and widths[0] >= 1:
        centre, width = centres[0], widths[0]
        function = str(ds.get("VOILUTFunction") or "LINEAR").upper()
        others = f" (the first of {len(centres)} windows in the file)" if len(centres) > 1 else ""
        shape = "" if function == "LINEAR" else f", {function.lower().replace('_', ' ')}"
        steps.append(f"Window centre {centre:g}, width {width:g}{shape}{others}")
        return _window(values, centre, width, function)
    sample = values.reshape(-1)[:: max(1, values.size // _PERCENTILE_SAMPLES)]
    low, high = (float(v) for v in np.percentile(sample, _PERCENTILES))
    steps.append(
        f"No window in the file: contrast stretched between the {_PERCENTILES[0]:g}th and "
        f"{_PERCENTILES[1]:g}th percentiles ({low:.5g} to {high:.5g})"
    )
    return _window(values, (low + high) / 2, max(high - low, 1e-6), "LINEAR_EXACT")


def _window(values: np.ndarray, centre: float, width: float, function: str) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 windowing into [0, 1], in place on float32 values."""
    if function == "SIGMOID":
        np.multiply(values - centre, -4.0 / width, out=values)
        np.exp(values, out=values)
        values += 1
        return np.reciprocal(values, out=values)
    if function == "LINEAR_EXACT":
        values -= centre - width / 2
        values /= width
    else:  # LINEAR
        values -= centre - 0.5
        values /= max(width - 1, 1)
        values += 0.5
    return np.clip(values, 0, 1, out=values)


def _colour(arr: np.ndarray, ds: Dataset, photometric: str, steps: list[str]) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
        steps.append("Palette colours applied (PALETTE COLOR)")
        return np.multiply(rgb, np.float32(1 / (2**bits - 1)), dtype=np.float32)
    if photometric != "RGB":  # the decoders turn YBR_FULL(_422), YBR_ICT and YBR_RCT into RGB
        raise UnsupportedMedia(f"The image's colour space, {photometric}, is not supported here.")
    original = str(ds.get("PhotometricInterpretation", ""))
    if original != "RGB":
        steps.append(f"Colour converted from {original} to RGB")
    scale = np.float32(1 / (2 ** int(ds.get("BitsStored") or 8) - 1))
    return np.multiply(arr, scale, dtype=np.float32)


def _values(ds: Dataset, keyword: str) -> list[float]:
    """A numeric element as a list of floats (a DICOM value may be single or multi-valued)."""
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    items = value if isinstance(value, MultiValue) else [value]
    return [float(item) for item in items]


def _spacing(ds: Dataset, modality: str | None) -> tuple[float, float] | None:
    """Pixel spacing in mm (row, column): PixelSpacing, or ImagerPixelSpacing for CR/DX; zero is unknown."""
    keywords = ["PixelSpacing"] + (["ImagerPixelSpacing"] if modality in _DETECTOR_SPACING else [])
    for keyword in keywords:
        spacing = _values(ds, keyword)
        if len(spacing) == 2 and min(spacing) > 0:
            return spacing[0], spacing[1]
    return None


def _text(ds: Dataset, keyword: str) -> str | None:
    value = str(ds.get(keyword) or "").strip()
    return value or None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
