"""From a decoded image to what a model and a person see: the contract check against a task, the model's
input tensor, and the preview PNG."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from caresync.core.errors import ValidationFailed
from caresync.imaging.catalog import Task
from caresync.imaging.images.image import ImageData

# What each DICOM modality's images are called, in the singular.
_MODALITY_NOUNS = {
    "CR": "X-ray",
    "DX": "X-ray",
    "IO": "dental X-ray",
    "PX": "panoramic dental X-ray",
    "MG": "mammogram",
    "CT": "CT slice",
    "MR": "MRI slice",
    "PT": "PET slice",
    "NM": "nuclear medicine image",
    "US": "ultrasound image",
    "XA": "angiogram",
    "RF": "fluoroscopy image",
    "ES": "endoscopy image",
    "XC": "photograph",
    "OP": "fundus photograph",
    "OPT": "OCT scan",
    "SM": "microscopy slide image",
    "GM": "microscopy image",
}
_PICTURE_NOUNS = {"image/png": "PNG picture", "image/jpeg": "JPEG picture"}


def check_contract(image: ImageData, task: Task) -> None:
    """Refuse an image the task's model was not built to read (ValidationFailed, 422, in plain words).

    The modality is checked only when the image declares one (DICOM; PNG and JPEG do not), the body part
    only when both the image and the task name one, and the channels (greyscale or colour) always.
    """
    wrong_modality = bool(image.modality and task.modalities and image.modality not in task.modalities)
    wrong_part = bool(image.body_part and task.body_parts and image.body_part not in task.body_parts)
    if image.channels != task.channels or wrong_modality or wrong_part:
        raise ValidationFailed(
            f"This model ({task.title}) reads {_expected(task)}; this image is {_described(image)}."
        )


def _expected(task: Task) -> str:
    nouns = list(dict.fromkeys(f"{_noun(code)}s" for code in task.modalities)) or ["images"]
    codes = f" (DICOM {', '.join(task.modalities)})" if task.modalities else ""
    parts = f" of the {_either([part.lower() for part in task.body_parts])}" if task.body_parts else ""
    return f"{_colour(task.channels)} {_either(nouns)}{codes}{parts}"


def _either(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else words[0]


def _described(image: ImageData) -> str:
    if image.modality:
        noun = f"{_noun(image.modality)} (DICOM {image.modality})"
    else:
        noun = _PICTURE_NOUNS.get(image.media_type, "image")
    part = f" of the {image.body_part.lower()}" if image.body_part else ""
    return f"a {_colour(image.channels)} {noun}{part}"


def _noun(modality: str) -> str:
    return _MODALITY_NOUNS.get(modality, f"{modality} image")


def _colour(channels: int) -> str:
    return "colour" if channels == 3 else "greyscale"


def to_model_input(image: ImageData, *, channels: int, size: int) -> torch.Tensor:
    """The image as a float32 tensor ``(1, channels, size, size)`` in [0, 1].

    Squashed to a square (the aspect ratio is not kept, so a heatmap stretched back over the image lines
    up), with antialiasing. A greyscale image is repeated into three channels if ``channels`` is 3; a
    colour image cannot be made greyscale here (check the contract first).
    """
    if channels not in (1, 3) or size < 1:
        raise ValueError(f"channels must be 1 or 3 and size positive, not {channels} and {size}")
    if image.channels == 3 and channels == 1:
        raise ValidationFailed("A colour image cannot be given to a model that reads greyscale images.")
    tensor = _resize(image.pixels, size, size)
    if tensor.shape[1] != channels:
        tensor = tensor.repeat(1, channels, 1, 1)
    return tensor


def preview_png(image: ImageData, *, max_side: int = 1024) -> bytes:
    """The windowed image as an 8-bit PNG (greyscale or RGB), aspect ratio kept, no side over ``max_side``."""
    scale = min(1.0, max_side / max(image.width, image.height))
    height, width = max(1, round(image.height * scale)), max(1, round(image.width * scale))
    tensor = _resize(image.pixels, height, width) if scale < 1 else _as_tensor(image.pixels)
    levels = tensor[0].mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(levels[:, :, 0] if levels.shape[2] == 1 else levels)
    buffer = BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _as_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, 3) pixels as a (1, C, H, W) tensor sharing their memory."""
    tensor = torch.from_numpy(pixels)
    return tensor[None, None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)[None]


def _resize(pixels: np.ndarray, height: int, width: int) -> torch.Tensor:
    """Antialiased bilinear resize to ``(1, C, height, width)``, kept within [0, 1]."""
    tensor = F.interpolate(
        _as_tensor(pixels), size=(height, width), mode="bilinear", antialias=True, align_corners=False
    )
    return tensor.clamp_(0, 1)
