"""The decoded image every decoder returns, and the checks and clean-up they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from caresync.core.errors import ValidationFailed

MIN_SIDE = 32  # pixels: anything smaller carries too little detail for any model here
MAX_PIXELS = (
    100_000_000  # declared width x height above this is refused before decoding (decompression bombs)
)
GREY_TOLERANCE = 2.5 / 255  # channels within 2 levels of 255 of each other (JPEG rounding): greyscale


@dataclass(frozen=True)
class ImageData:
    """A decoded image ready for display and analysis.

    ``pixels`` is float32 in [0, 1], ``(H, W)`` greyscale or ``(H, W, 3)`` RGB, already windowed (and
    inverted if the DICOM was MONOCHROME1). ``steps`` lists, in plain words and in order, every
    preprocessing step applied.
    """

    pixels: np.ndarray
    channels: int
    media_type: str
    modality: str | None = None
    body_part: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    pixel_spacing: tuple[float, float] | None = None  # mm (row, column)
    steps: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        """Columns."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Rows."""
        return int(self.pixels.shape[0])


def check_size(width: int, height: int) -> None:
    """Refuse declared sizes too small to analyse or so large that decoding could exhaust memory."""
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ValidationFailed(
            f"The image is {width} x {height} pixels; at least {MIN_SIDE} x {MIN_SIDE} is needed."
        )
    if width * height > MAX_PIXELS:
        raise ValidationFailed(
            f"The image declares {width} x {height} pixels ({width * height / 1e6:.0f} megapixels); "
            f"the limit is {MAX_PIXELS // 1_000_000} megapixels."
        )


def finish(pixels: np.ndarray, steps: list[str], media_type: str) -> ImageData:
    """Wrap float32 ``pixels`` in [0, 1] as an :class:`ImageData` (header facts left empty, for the caller
    to fill in); an RGB image whose three channels are equal (within JPEG rounding) becomes greyscale."""
    if pixels.ndim == 3 and _is_grey(pixels):
        pixels = pixels.mean(axis=2, dtype=np.float32)
        steps.append("Colour channels identical: treated as greyscale")
    return ImageData(
        pixels=np.ascontiguousarray(pixels, dtype=np.float32),
        channels=1 if pixels.ndim == 2 else 3,
        media_type=media_type,
        steps=tuple(steps),
    )


def _is_grey(pixels: np.ndarray) -> bool:
    """Whether an RGB image's channels are equal everywhere (within :data:`GREY_TOLERANCE`)."""
    views = (pixels[::8, ::8], pixels)  # a sample first: most colour pictures show it at once
    return all(float(np.ptp(view, axis=2).max()) <= GREY_TOLERANCE for view in views)
