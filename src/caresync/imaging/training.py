"""Training a task's classifier on train/val/test splits: early stopping, class weighting, light
augmentation, temperature calibration and test-split metrics.

:func:`train` is deterministic for a seed (given the same number of torch threads, which the caller sets).
It fits on the training split with AdamW (cosine learning-rate decay), class weights (inverse
frequency; ``pos_weight`` for multi-label) and light augmentation (small shifts; left-right flips unless
a label names a side), stops when the validation loss has not improved for ``patience`` epochs (or
``max_minutes`` ran out) and keeps the best epoch's weights, fits one temperature on the validation split,
then measures on the test split (see :mod:`caresync.imaging.metrics`). Images are kept as ``uint8`` at
their own size and resized to ``config.size`` a batch at a time, so a large MedMNIST file does not fill
the memory.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from caresync.core.errors import ValidationFailed
from caresync.imaging import metrics as measures
from caresync.imaging.data import LabelledImages, Splits
from caresync.imaging.networks import build, has_pretrained_weights, probabilities

Progress = Callable[[int, str], None]

# Input size used when none is given: a basic CNN is built for small images; the deep networks were
# designed (and EfficientNet pretrained) at 224 px. A dataset with smaller images keeps its own size.
DEFAULT_SIZES = {"basic_cnn": 64, "resnet50": 224, "efficientnet": 224}
_MAX_SHIFT = 1 / 16  # augmentation: random shifts up to this fraction of the side
_EVAL_BATCH = 64
TEMPERATURE_RANGE = (0.25, 10.0)  # at most 4x sharper or 10x softer than the raw logits
_TRAIN_SHARE = 90  # percent of the progress bar the epochs take; calibration and metrics the rest


@dataclass
class TrainConfig:
    """How to train: architecture, input size (pixels, square), epochs and early-stopping patience, etc.

    ``flip`` turns random left-right flips on or off; ``None`` (the default) flips unless a label names a
    side ("left"/"right"), where a mirror image would change the right answer. ``max_minutes`` stops
    training after the epoch that runs past it, keeping the best weights so far.
    """

    arch: str
    size: int = 224
    epochs: int = 30
    patience: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    pretrained: bool = True
    max_minutes: float | None = None
    flip: bool | None = None


@dataclass
class TrainingResult:
    """A trained model (eval mode, best epoch's weights) and everything its model card needs.

    ``history`` has one row per epoch: ``epoch``, ``train_loss``, ``val_loss`` (the weighted training
    loss on the validation split, which early stopping watches), ``val_accuracy`` and ``seconds``.
    ``metrics`` are measured on the test split (see :mod:`caresync.imaging.metrics`) and include
    ``calibration``: the temperature and the ECE before/after it on the test and validation splits.
    ``config`` is the configuration actually used (``pretrained`` is False where no weights exist,
    ``flip`` is resolved).
    """

    model: nn.Module
    arch: str
    in_channels: int
    input_size: int
    label_names: tuple[str, ...]
    multilabel: bool
    temperature: float
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    epochs_run: int
    seconds: float
    fingerprint: str
    config: TrainConfig


def default_size(arch: str, native: int | None = None) -> int:
    """The input size to train ``arch`` at: its default, or the images' own size if that is smaller."""
    size = DEFAULT_SIZES.get(arch, 224)
    return min(size, native) if native else size


def _as_tensors(data: LabelledImages) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, C, H, W) and labels (long (N,) or float (N, L))."""
    images = torch.from_numpy(np.ascontiguousarray(data.images))
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    labels = torch.from_numpy(np.asarray(data.labels))
    return images, labels.float() if data.multilabel else labels.long()


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """A uint8 batch as float in [0, 1] at ``size`` x ``size`` (squashed, like inference does)."""
    x = images.float().div_(255)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def _augmented(x: torch.Tensor, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random small shifts (edge pixels repeated) and, if ``flip``, random left-right flips."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = 1.0
    if flip:
        theta[:, 0, 0] = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta[:, 1, 1] = 1.0
    theta[:, :, 2] = (torch.rand(n, 2, generator=generator) * 2 - 1) * (2 * _MAX_SHIFT)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _criterion(labels: torch.Tensor, multilabel: bool, classes: int) -> nn.Module:
    """Loss with inverse-frequency class weights (multi-class) or negatives/positives ``pos_weight``."""
    if multilabel:
        positives = labels.sum(dim=0)
        negatives = labels.shape[0] - positives
        both = (positives > 0) & (negatives > 0)  # a label always or never present keeps weight 1
        pos_weight = torch.where(both, negatives / positives.clamp(min=1), torch.ones_like(positives))
        return nn.BCEWithLogitsLoss(pos_weight=pos_weight.clamp(max=100.0))
    counts = torch.bincount(labels, minlength=classes).float()
    weight = torch.where(
        counts > 0, labels.shape[0] / (classes * counts.clamp(min=1)), torch.ones_like(counts)
    )
    return nn.CrossEntropyLoss(weight=weight)


def _logits(model: nn.Module, images: torch.Tensor, size: int) -> torch.Tensor:
    """The model's logits for all images, in eval mode, without gradients."""
    model.eval()
    with torch.no_grad():
        parts = [
            model(_resized(images[i : i + _EVAL_BATCH], size)) for i in range(0, len(images), _EVAL_BATCH)
        ]
    return torch.cat(parts)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, multilabel: bool) -> float:
    """The temperature T > 0 minimising the validation negative log-likelihood of ``logits / T``.

    One T for all classes (labels), fitted by LBFGS on log T and kept within :data:`TEMPERATURE_RANGE`
    (a small or perfectly separated validation split would otherwise drive T towards 0, making every
    answer look certain); T stays 1 if the fit is no better.
    """
    logits = logits.detach()

    def nll(log_t: torch.Tensor) -> torch.Tensor:
        scaled = logits / log_t.exp()
        if multilabel:
            return F.binary_cross_entropy_with_logits(scaled, labels)
        return F.cross_entropy(scaled, labels)

    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = nll(log_t)
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        fitted = log_t.clamp(math.log(TEMPERATURE_RANGE[0]), math.log(TEMPERATURE_RANGE[1]))
        if not torch.isfinite(fitted).all() or nll(fitted) > nll(torch.zeros(1)):
            return 1.0
    return round(float(fitted.exp()), 4)


def _check(splits: Splits, config: TrainConfig) -> None:
    parts = {"training": splits.train, "validation": splits.val, "test": splits.test}
    for name, part in parts.items():
        if len(part) == 0:
            raise ValidationFailed(f"The {name} split is empty; the dataset is too small to split.")
        if part.label_names != splits.train.label_names or part.channels != splits.train.channels:
            raise ValidationFailed(f"The {name} split's labels or channels differ from the training split's.")
    if not 16 <= config.size <= 1024:
        raise ValidationFailed(f"The input size must be between 16 and 1024 pixels, not {config.size}.")
    if config.epochs < 1 or config.patience < 1 or config.batch_size < 2:
        raise ValidationFailed("Training needs at least 1 epoch, a patience of at least 1 and batches of 2+.")


def _resolved(config: TrainConfig, names: tuple[str, ...]) -> TrainConfig:
    sided = any(word in name.lower() for name in names for word in ("left", "right"))
    flip = not sided if config.flip is None else config.flip
    return replace(config, pretrained=config.pretrained and has_pretrained_weights(config.arch), flip=flip)


def _epoch(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    criterion: nn.Module,
    optimiser: torch.optim.Optimizer,
    config: TrainConfig,
    generator: torch.Generator,
) -> float:
    """One pass over the shuffled training data; the mean training loss."""
    images, labels = data
    model.train()
    order = torch.randperm(len(images), generator=generator)
    total, seen = 0.0, 0
    for start in range(0, len(order), config.batch_size):
        batch = order[start : start + config.batch_size]
        if len(batch) < 2:  # batch norm cannot learn from a single image
            continue
        x = _augmented(_resized(images[batch], config.size), bool(config.flip), generator)
        optimiser.zero_grad()
        loss = criterion(model(x), labels[batch])
        loss.backward()
        optimiser.step()
        total += loss.item() * len(batch)
        seen += len(batch)
    return total / max(seen, 1)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor, multilabel: bool) -> float:
    """Share of right answers (multi-label: of right flags at probability 0.5)."""
    if multilabel:
        return float(((logits > 0) == labels.bool()).float().mean())
    return float((logits.argmax(dim=1) == labels).float().mean())


def train(splits: Splits, config: TrainConfig, *, progress: Progress | None = None) -> TrainingResult:
    """Train ``config.arch`` on ``splits`` and measure it on the test split.

    ``progress(percent, message)`` is called after each epoch and at the end. Raises ValidationFailed
    for an unusable configuration or empty splits.
    """
    _check(splits, config)
    names, multilabel = splits.train.label_names, splits.train.multilabel
    config = _resolved(config, names)
    report = progress or (lambda percent, message: None)
    started = time.monotonic()
    deadline = started + config.max_minutes * 60 if config.max_minutes else math.inf
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    in_channels = splits.train.channels
    model = build(config.arch, in_channels=in_channels, num_classes=len(names), pretrained=config.pretrained)
    train_data, val_data, test_data = (_as_tensors(part) for part in (splits.train, splits.val, splits.test))
    criterion = _criterion(train_data[1], multilabel, len(names))
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs)

    history: list[dict[str, float]] = []
    best_loss, best_state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.monotonic()
        train_loss = _epoch(model, train_data, criterion, optimiser, config, generator)
        schedule.step()
        val_logits = _logits(model, val_data[0], config.size)
        val_loss = float(criterion(val_logits, val_data[1]))
        history.append(
            {
                "epoch": epoch,
                "train_loss": round(train_loss, 5),
                "val_loss": round(val_loss, 5),
                "val_accuracy": round(_accuracy(val_logits, val_data[1], multilabel), 4),
                "seconds": round(time.monotonic() - epoch_started, 2),
            }
        )
        if val_loss < best_loss - 1e-4:
            best_loss, best_state, stale = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
        report(
            _TRAIN_SHARE * epoch // config.epochs,
            f"Epoch {epoch} of {config.epochs}: validation loss {val_loss:.3f}",
        )
        if stale >= config.patience or time.monotonic() > deadline:
            break
    model.load_state_dict(best_state)
    model.eval()

    report(_TRAIN_SHARE + 2, "Calibrating on the validation split")
    val_logits = _logits(model, val_data[0], config.size)
    temperature = fit_temperature(val_logits, val_data[1], multilabel=multilabel)
    report(_TRAIN_SHARE + 5, "Measuring on the test split")
    test_logits = _logits(model, test_data[0], config.size)
    metrics = _measure(test_logits, splits.test, multilabel, temperature)
    metrics["calibration"]["val_ece_before"] = _ece(val_logits, splits.val, multilabel, 1.0)
    metrics["calibration"]["val_ece_after"] = _ece(val_logits, splits.val, multilabel, temperature)
    report(100, "Training finished")
    return TrainingResult(
        model=model,
        arch=config.arch,
        in_channels=in_channels,
        input_size=config.size,
        label_names=names,
        multilabel=multilabel,
        temperature=temperature,
        metrics=metrics,
        history=history,
        epochs_run=len(history),
        seconds=round(time.monotonic() - started, 2),
        fingerprint=splits.fingerprint,
        config=config,
    )


def _ece(logits: torch.Tensor, data: LabelledImages, multilabel: bool, temperature: float) -> float | None:
    p = probabilities(logits, multilabel=multilabel, temperature=temperature).numpy()
    return measures.expected_calibration_error(np.asarray(data.labels), p, multilabel=multilabel)


def _measure(
    logits: torch.Tensor, test: LabelledImages, multilabel: bool, temperature: float
) -> dict[str, Any]:
    """Test-split metrics of the calibrated probabilities, with the calibration's effect."""
    p = probabilities(logits, multilabel=multilabel, temperature=temperature).numpy()
    labels = np.asarray(test.labels)
    if multilabel:
        result = measures.multilabel_metrics(labels, p, test.label_names)
    else:
        result = measures.multiclass_metrics(labels, p, test.label_names)
    result["calibration"] = {
        "temperature": temperature,
        "ece_before": _ece(logits, test, multilabel, 1.0),
        "ece_after": _ece(logits, test, multilabel, temperature),
    }
    return result
