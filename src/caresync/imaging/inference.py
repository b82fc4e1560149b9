"""Running a trained model on one image: calibrated probabilities, findings and a Grad-CAM heatmap.

A :class:`Predictor` is made once per loaded model version and shared by the worker's threads. The
heatmap comes from MONAI's ``GradCAM`` on the network's last convolutional stage
(:func:`networks.gradcam_layer`) for the most likely label, and the probabilities from the logits of that
same forward pass (a separate ``inference_mode`` pass would add a third of the time for the same
numbers). Grad-CAM keeps the activations and gradients of its last call in the hooked model, so one lock
makes each whole prediction atomic; the model's weights are frozen (Grad-CAM needs gradients with respect
to the image only), which also saves the weight-gradient work.
"""

from __future__ import annotations

import functools
import io
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from caresync.core.errors import ValidationFailed
from caresync.imaging.networks import gradcam_layer, probabilities

NO_FINDING = "No finding"
SECONDARY_THRESHOLD = 0.2  # multi-class: other labels at least this likely are listed too
POSITIVE_THRESHOLD = 0.5  # multi-label: a label at least this likely is a finding

# Grad-CAM's backward hook sees the gradient of the target layer's output, which is all it uses; the input
# deliberately requires none (see ``Predictor``), and PyTorch says so each time.
warnings.filterwarnings(
    "ignore", "Full backward hook is firing when gradients are computed with respect to module outputs"
)


@dataclass(frozen=True)
class Prediction:
    """What a model says about one image.

    ``probabilities`` are calibrated, label -> p in label order; ``findings`` most likely first;
    ``heatmap`` float32 ``(size, size)`` in [0, 1], explaining ``target``; ``seconds`` the time taken.
    """

    probabilities: dict[str, float]
    findings: list[str]
    target: str
    heatmap: np.ndarray
    seconds: float


def findings_of(probs: dict[str, float], *, multilabel: bool, normal_label: str | None = None) -> list[str]:
    """The findings to report, most likely first.

    Multi-class: the top label (or "No finding" when it is the normal label and more likely than not),
    then any other non-normal label at least 0.2 likely; if the normal label leads without a majority, the
    others at 0.2 or more (else "No finding"). Multi-label: the non-normal labels at 0.5 or more, or
    "No finding".
    """
    ranked = sorted(probs, key=lambda label: -probs[label])
    abnormal = [label for label in ranked if label != normal_label]
    if multilabel:
        return [label for label in abnormal if probs[label] >= POSITIVE_THRESHOLD] or [NO_FINDING]
    top = ranked[0]
    others = [label for label in abnormal if label != top and probs[label] >= SECONDARY_THRESHOLD]
    if top != normal_label:
        return [top, *others]
    if probs[top] > 0.5:
        return [NO_FINDING, *others]
    return others or [NO_FINDING]


def _normalise(cam: torch.Tensor) -> torch.Tensor:
    """Each map scaled to [0, 1] (min to 0, max to 1); a flat map becomes all zeros."""
    flat = cam.flatten(1)
    low = flat.min(dim=1).values.view(-1, 1, 1, 1)
    span = (flat.max(dim=1).values.view(-1, 1, 1, 1) - low).clamp(min=1e-12)
    scaled = (cam - low) / span
    return torch.where(span > 1e-12, scaled, torch.zeros_like(scaled))


class Predictor:
    """Predictions of one loaded model version; :meth:`predict` is safe to call from several threads.

    The model is put in eval mode with its parameters frozen (``requires_grad=False``), but for the last one
    of the Grad-CAM layer.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        arch: str,
        label_names: tuple[str, ...] | list[str],
        multilabel: bool,
        temperature: float,
        input_size: int,
        in_channels: int,
        normal_label: str | None = None,
    ) -> None:
        from monai.visualize import GradCAM

        self.model = model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        # Grad-CAM needs the gradient at the target layer's output only. Its last parameter requiring one
        # puts that output in the autograd graph, while every layer before it runs without building one
        # (the backward pass stops there: half of ResNet50's time at 224 px).
        target_layer = self.model.get_submodule(gradcam_layer(arch))
        list(target_layer.parameters())[-1].requires_grad_(True)
        self.arch = arch
        self.label_names = tuple(label_names)
        self.multilabel = multilabel
        self.temperature = temperature
        self.input_size = input_size
        self.in_channels = in_channels
        self.normal_label = normal_label
        self._cam = GradCAM(
            nn_module=self.model, target_layers=gradcam_layer(arch), postprocessing=_normalise
        )
        self._logits: list[torch.Tensor] = []  # the model's last output, kept by a forward hook
        self.model.register_forward_hook(self._keep_logits)
        self._lock = threading.Lock()

    def _keep_logits(self, module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        self._logits[:] = [output]

    def _check(self, x: torch.Tensor) -> None:
        expected = (1, self.in_channels, self.input_size, self.input_size)
        if tuple(x.shape) != expected:
            raise ValidationFailed(
                f"This model takes one image of shape {expected} (batch, channels, height, width), "
                f"not {tuple(x.shape)}."
            )

    def predict(self, x: torch.Tensor) -> Prediction:
        """Probabilities, findings and the Grad-CAM heatmap of the most likely label for ``x``.

        ``x`` is ``(1, in_channels, input_size, input_size)`` in [0, 1] (see ``images.to_model_input``).
        """
        self._check(x)
        started = time.perf_counter()
        with self._lock:
            # One forward pass (with gradients) gives both the logits and Grad-CAM's activations; the
            # class Grad-CAM explains is the top logit's, which is also the most probable label.
            cam = self._cam(x.detach())
            logits = self._logits.pop().detach()
        probs = probabilities(logits, multilabel=self.multilabel, temperature=self.temperature)[0]
        top = int(probs.argmax())
        values = {label: round(float(p), 4) for label, p in zip(self.label_names, probs, strict=True)}
        heatmap = cam[0, 0].detach().numpy().astype(np.float32)
        return Prediction(
            probabilities=values,
            findings=findings_of(values, multilabel=self.multilabel, normal_label=self.normal_label),
            target=self.label_names[top],
            heatmap=heatmap,
            seconds=round(time.perf_counter() - started, 4),
        )


def heatmap_png(heatmap: np.ndarray, *, width: int, height: int) -> bytes:
    """The heatmap as an RGBA PNG of ``width`` x ``height``: the "jet" colour map, with opacity rising with
    the heat so that cold areas stay transparent over the image."""
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0)
    resized = Image.fromarray(heat).resize((width, height), Image.Resampling.BILINEAR)
    levels = (np.clip(np.asarray(resized), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(_jet_rgba()[levels]).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


@functools.cache
def _jet_rgba() -> np.ndarray:
    """The "jet" colour map as a (256, 4) ``uint8`` lookup table, with alpha equal to the level."""
    from matplotlib import colormaps

    table = colormaps["jet"](np.linspace(0.0, 1.0, 256))
    table[:, 3] = np.linspace(0.0, 1.0, 256)
    return (table * 255 + 0.5).astype(np.uint8)
