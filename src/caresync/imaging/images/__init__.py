"""Image decoding and preprocessing for imaging AI: DICOM (every transfer syntax decodable here), PNG and
JPEG in; a windowed float image with its header facts and the preprocessing steps out, then checked
against a task's contract, turned into a model input tensor or a preview PNG."""

from __future__ import annotations

from caresync.core.errors import UnsupportedMedia, ValidationFailed
from caresync.core.storage import sniff
from caresync.imaging.images.dicom import decode_dicom
from caresync.imaging.images.image import ImageData
from caresync.imaging.images.preprocessing import check_contract, preview_png, to_model_input
from caresync.imaging.images.raster import decode_raster

__all__ = ["MEDIA_TYPES", "ImageData", "check_contract", "decode", "preview_png", "to_model_input"]

MEDIA_TYPES = ("application/dicom", "image/png", "image/jpeg")


def decode(data: bytes) -> ImageData:
    """Decode an uploaded DICOM, PNG or JPEG file, recognised by its content (never its name).

    Raises UnsupportedMedia (415) for anything else and ValidationFailed (422) for an empty, damaged or
    unusable image, each with a message saying what is wrong.
    """
    if not data:
        raise ValidationFailed("The file is empty.")
    media_type = sniff(data)
    if media_type == "application/dicom":
        return decode_dicom(data)
    if media_type in ("image/png", "image/jpeg"):
        return decode_raster(data, media_type)
    found = f"its content is {media_type}" if media_type else "its content is of no recognised format"
    raise UnsupportedMedia(
        f"The file is not a DICOM, PNG or JPEG image ({found}). A DICOM file must be in the standard "
        "Part-10 format, which starts with a 128-byte preamble and the letters 'DICM'."
    )
