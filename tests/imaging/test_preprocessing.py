"""From a decoded image to a model and a person: the contract check against the catalog's tasks, the model
input tensor (squashed, antialiased, channels), the preview PNG, and the speed on the shipped chest X-ray."""

from __future__ import annotations

import time
from io import BytesIO

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from caresync.core.errors import ValidationFailed
from caresync.imaging.catalog import get_task
from caresync.imaging.images import ImageData, check_contract, decode, preview_png, to_model_input

pytestmark = pytest.mark.no_db


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def image(
    channels: int = 1,
    *,
    media_type: str = "application/dicom",
    modality: str | None = None,
    body_part: str | None = None,
    shape: tuple[int, int] = (48, 40),
) -> ImageData:
    """An image with the given header facts and a left-to-right ramp as pixels."""
    ramp = np.tile(np.linspace(0, 1, shape[1], dtype=np.float32), (shape[0], 1))
    pixels = ramp if channels == 1 else np.dstack([ramp, 1 - ramp, np.full_like(ramp, 0.3)])
    return ImageData(pixels, channels, media_type, modality=modality, body_part=body_part)


FITS = [
    # task, image that fits it
    ("chest_xray", image(modality="CR", body_part="CHEST")),
    ("chest_xray", image(modality="DX")),  # no body part stated: not held against it
    ("chest_xray", image(media_type="image/png")),  # PNG: no modality, so channels alone decide
    ("dermatology", image(3, media_type="image/jpeg")),
    ("dermatology", image(3, modality="XC", body_part="ARM")),  # the task accepts any body part
    ("msk_radiograph", image(modality="CR", body_part="WRIST")),
    ("brain_tumour_mri", image(modality="MR", body_part="HEAD")),
]


@pytest.mark.parametrize(("task", "fitting"), FITS)
def test_images_within_the_contract_pass(task: str, fitting: ImageData) -> None:
    check_contract(fitting, get_task(task))  # raises if refused


REFUSALS = [
    # task, image, the whole message
    (
        "dermatology",
        image(modality="CT", body_part="HEAD"),
        "This model (Pigmented skin lesions (dermatoscopy)) reads colour photographs (DICOM XC); "
        "this image is a greyscale CT slice (DICOM CT) of the head.",
    ),
    (
        "dermatology",
        image(media_type="image/png"),
        "This model (Pigmented skin lesions (dermatoscopy)) reads colour photographs (DICOM XC); "
        "this image is a greyscale PNG picture.",
    ),
    (
        "chest_xray",
        image(3, media_type="image/jpeg"),
        "This model (Chest X-ray findings (14 labels)) reads greyscale X-rays (DICOM CR, DX) of the chest; "
        "this image is a colour JPEG picture.",
    ),
    (
        "chest_xray",
        image(modality="CT", body_part="CHEST"),
        "This model (Chest X-ray findings (14 labels)) reads greyscale X-rays (DICOM CR, DX) of the chest; "
        "this image is a greyscale CT slice (DICOM CT) of the chest.",
    ),
    (
        "chest_xray",
        image(modality="CR", body_part="HAND"),
        "This model (Chest X-ray findings (14 labels)) reads greyscale X-rays (DICOM CR, DX) of the chest; "
        "this image is a greyscale X-ray (DICOM CR) of the hand.",
    ),
    (
        "retina_oct",
        image(3, modality="OP", body_part="EYE"),
        "This model (Retinal OCT) reads greyscale OCT scans (DICOM OPT) of the eye; "
        "this image is a colour fundus photograph (DICOM OP) of the eye.",
    ),
    (
        "brain_tumour_mri",
        image(modality="US"),
        "This model (Brain tumour on MRI) reads greyscale MRI slices (DICOM MR) of the brain, head or skull; "
        "this image is a greyscale ultrasound image (DICOM US).",
    ),
]


@pytest.mark.parametrize(("task", "refused", "message"), REFUSALS)
def test_images_outside_the_contract_are_refused_in_plain_words(
    task: str, refused: ImageData, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_contract(refused, get_task(task))
    assert caught.value.status == 422
    assert caught.value.detail == message


@pytest.mark.parametrize(
    ("channels_in", "channels_out", "shape"),
    [(1, 1, (1, 1, 32, 32)), (1, 3, (1, 3, 32, 32)), (3, 3, (1, 3, 32, 32))],
)
def test_model_input_shape_and_range(channels_in: int, channels_out: int, shape: tuple[int, ...]) -> None:
    tensor = to_model_input(image(channels_in), channels=channels_out, size=32)
    assert tuple(tensor.shape) == shape
    assert tensor.dtype == torch.float32
    assert float(tensor.min()) >= 0.0
    assert float(tensor.max()) <= 1.0
    if channels_in == 1 and channels_out == 3:  # greyscale repeated into three equal channels
        assert torch.equal(tensor[:, 0], tensor[:, 1])
        assert torch.equal(tensor[:, 0], tensor[:, 2])
    if channels_in == 3:  # the channels keep their own content, in RGB order
        assert float(tensor[0, 0, :, -1].mean()) > 0.9 > float(tensor[0, 1, :, -1].mean())


def test_colour_cannot_become_greyscale_model_input() -> None:
    with pytest.raises(
        ValidationFailed, match="A colour image cannot be given to a model that reads greyscale"
    ):
        to_model_input(image(3), channels=1, size=32)


@pytest.mark.parametrize(("channels", "size"), [(2, 32), (1, 0)])
def test_model_input_arguments_are_checked(channels: int, size: int) -> None:
    with pytest.raises(ValueError, match="channels must be 1 or 3 and size positive"):
        to_model_input(image(), channels=channels, size=size)


def test_model_input_is_squashed_not_cropped() -> None:
    """A wide image (left half black, right half white) fills the whole square: the boundary stays in the
    middle column, so a heatmap stretched back over the image lines up with it."""
    pixels = np.zeros((40, 160), np.float32)
    pixels[:, 80:] = 1
    tensor = to_model_input(ImageData(pixels, 1, "image/png"), channels=1, size=32)[0, 0]
    assert float(tensor[:, :15].max()) == pytest.approx(0.0, abs=1e-6)
    assert float(tensor[:, 17:].min()) == pytest.approx(1.0, abs=1e-6)
    assert 0.0 < float(tensor[:, 15:17].mean()) < 1.0  # the edge, in the middle


def test_model_input_is_antialiased() -> None:
    """A one-pixel checkerboard shrunk 8x averages to grey instead of aliasing to black or white."""
    board = (np.indices((256, 256)).sum(axis=0) % 2).astype(np.float32)
    tensor = to_model_input(ImageData(board, 1, "image/png"), channels=1, size=32)
    assert tensor.numpy() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize(
    ("shape", "max_side", "size", "mode"),
    [
        ((48, 40), 1024, (40, 48), "L"),  # small: kept as it is
        ((1000, 2000), 1024, (1024, 512), "L"),  # aspect ratio kept
        ((2000, 1000, 3), 500, (250, 500), "RGB"),
    ],
)
def test_preview_png(shape: tuple[int, ...], max_side: int, size: tuple[int, int], mode: str) -> None:
    ramp = np.tile(np.linspace(0, 1, shape[1], dtype=np.float32), (shape[0], 1))
    pixels = ramp if len(shape) == 2 else np.dstack([ramp, 1 - ramp, np.zeros_like(ramp)])
    preview = Image.open(
        BytesIO(preview_png(ImageData(pixels, len(shape) - 1 or 1, "image/png"), max_side=max_side))
    )
    assert preview.format == "PNG"
    assert (preview.size, preview.mode) == (size, mode)
    levels = np.asarray(preview)
    if shape == (48, 40):  # not resized: exactly the 8-bit levels of the pixels
        assert np.array_equal(levels, np.round(pixels * 255).astype(np.uint8))
    red = levels if levels.ndim == 2 else levels[..., 0]
    assert red.min() <= 2  # the full range, black to white
    assert red.max() >= 253


def test_chest_xray_decodes_previews_and_becomes_model_input_in_well_under_a_second() -> None:
    path = get_testdata_file("RG1_UNCI.dcm")
    assert path is not None
    with open(path, "rb") as handle:
        data = handle.read()
    started = time.perf_counter()
    decoded = decode(data)
    preview = preview_png(decoded)
    tensor = to_model_input(decoded, channels=1, size=224)
    seconds = time.perf_counter() - started
    print(f"RG1_UNCI 1955x1841 CR: decode + preview + model input in {seconds:.3f} s")
    assert Image.open(BytesIO(preview)).size == (964, 1024)
    assert tuple(tensor.shape) == (1, 1, 224, 224)
    assert seconds < 1.0  # about 0.25 s measured alone on this 2-core machine
