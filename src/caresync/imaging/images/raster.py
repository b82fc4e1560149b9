"""PNG and JPEG decoding with Pillow: EXIF orientation applied, 16-bit greyscale kept at full precision,
transparency dropped, palette and CMYK pictures converted to RGB."""

from __future__ import annotations

import warnings
from io import BytesIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from caresync.core.errors import ValidationFailed
from caresync.imaging.images.image import MAX_PIXELS, ImageData, check_size, finish

_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
_ORIENTATION_TAG = 0x0112
_ORIENTATIONS = {  # EXIF orientation -> what turns the stored picture upright
    2: "mirrored left to right",
    3: "rotated 180°",
    4: "flipped upside down",
    5: "mirrored and rotated 90° anticlockwise",
    6: "rotated 90° clockwise",
    7: "mirrored and rotated 90° clockwise",
    8: "rotated 90° anticlockwise",
}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")  # Pillow's modes for a 16-bit greyscale PNG


def decode_raster(data: bytes, media_type: str) -> ImageData:
    """Decode a PNG or JPEG picture; ValidationFailed (422) if it is damaged or of an unusable size."""
    kind = _FORMATS[media_type]
    try:
        with warnings.catch_warnings():  # the size is checked below, against our own, lower limit
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(BytesIO(data), formats=[kind])
            check_size(*image.size)
            if not _complete(data, kind):
                raise ValidationFailed(f"The {kind} file is truncated: it ends before the image does.")
            image.load()
    except Image.DecompressionBombError:  # Pillow's own limit, above ours, hit while reading the header
        raise ValidationFailed(
            f"The image declares too many pixels to decode safely; the limit is {MAX_PIXELS // 1_000_000} "
            "megapixels."
        ) from None
    except UnidentifiedImageError:
        raise ValidationFailed(
            f"The {kind} file is truncated or damaged: its header cannot be read."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValidationFailed(f"The {kind} file is truncated or damaged ({exc}).") from None
    steps: list[str] = []
    orientation = image.getexif().get(_ORIENTATION_TAG)
    if orientation in _ORIENTATIONS:
        image = ImageOps.exif_transpose(image)
        steps.append(f"EXIF orientation {orientation}: {_ORIENTATIONS[orientation]} to stand upright")
    return finish(_pixels(image, steps), steps, media_type)


def _complete(data: bytes, kind: str) -> bool:
    """Whether the file holds the whole image: a PNG's closing IEND chunk, or an end-of-image marker after a
    JPEG's last scan (entropy-coded data never holds one). Pillow's own check is off in any process that has
    imported WeasyPrint, which sets the process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES``."""
    if kind == "PNG":
        return b"IEND" in data[-4096:]
    return data.rfind(b"\xff\xd9") > data.rfind(b"\xff\xda")


def _pixels(image: Image.Image, steps: list[str]) -> np.ndarray:
    """The picture as float32 in [0, 1]: (H, W) greyscale or (H, W, 3) RGB."""
    if image.mode in _SIXTEEN_BIT:
        steps.append("16-bit greyscale scaled to 0 to 1 (divided by 65,535)")
        return np.multiply(np.asarray(image), np.float32(1 / 65535), dtype=np.float32)
    if image.mode in ("P", "PA"):
        steps.append("Palette colours expanded to RGB")
        image = image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        steps.append("Transparency (alpha channel) dropped")
        image = image.convert("L" if image.mode in ("LA", "La") else "RGB")
    elif image.mode not in ("L", "RGB"):
        if image.mode != "1":
            steps.append(f"Converted from {image.mode} to RGB")
        image = image.convert("L" if image.mode == "1" else "RGB")
    return np.multiply(np.asarray(image), np.float32(1 / 255), dtype=np.float32)
