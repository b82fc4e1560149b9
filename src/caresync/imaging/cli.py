"""``caresync imaging train|models|serve|tasks|make-synthetic``: train a model from a MedMNIST ``.npz`` file
or an image folder and register it, list and serve versions, see the task catalog, and write synthetic
images to try it all. Errors a user can cause end with one line on stderr and exit status 1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from caresync.core.auth import Principal
    from caresync.imaging.data import LabelledImages
    from caresync.imaging.training import TrainingResult

imaging_app = typer.Typer(
    help="Imaging AI: train, list and serve models; the task catalog.", no_args_is_help=True
)
ACTOR = "caresync imaging CLI"

TaskOption = Annotated[str, typer.Option("--task", help="Task key (see `caresync imaging tasks`)")]


class _Failed(Exception):
    """A user error: printed as one line, exit status 1."""


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn the errors a user can cause (domain errors, missing files) into one line and exit 1."""
    from caresync.core.errors import DomainError

    try:
        yield
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    except (_Failed, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _session() -> Iterator[Session]:
    """One committed unit of work, with every table mapped (models refer to users, stored files…)."""
    import caresync.models  # noqa: F401
    from caresync.db import session_factory, transaction

    with transaction(session_factory()) as session:
        yield session


def _principal() -> Principal:
    from caresync.core.auth import system_principal

    return system_principal(ACTOR)


@imaging_app.command()
def train(
    task: TaskOption,
    arch: Annotated[str, typer.Option("--arch", help="basic_cnn, resnet50 or efficientnet")],
    data: Annotated[Path, typer.Option("--data", help="A MedMNIST .npz file or an ImageFolder directory")],
    size: Annotated[
        int | None,
        typer.Option(min=16, max=1024, help="Input size in pixels (default: 64 for basic_cnn, else 224)"),
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs to train")] = 30,
    patience: Annotated[int, typer.Option(min=1, help="Stop after this many epochs without gain")] = 5,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per batch")] = 32,
    learning_rate: Annotated[float, typer.Option(min=0.0, help="Adam learning rate")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Random seed (split, initialisation, order)")] = 0,
    pretrained: Annotated[bool, typer.Option(help="Start EfficientNet from ImageNet weights")] = True,
    serve: Annotated[bool, typer.Option(help="Serve the new version at once")] = False,
    demonstration: Annotated[
        bool, typer.Option("--demonstration", help='Label it "demonstration only" (synthetic data)')
    ] = False,
    intended_use: Annotated[str | None, typer.Option(help="The model card's intended use")] = None,
) -> None:
    """Train a model for TASK on DATA (split into train/validation/test), print its test metrics and
    register it as the task's next version (and serve it with --serve)."""
    from caresync.imaging import catalog, datasets, networks, training
    from caresync.imaging.registry import service

    with _user_errors():
        spec = catalog.get_task(task)
        if arch not in networks.ARCHITECTURES:
            raise _Failed(
                f"unknown architecture {arch!r}; choose one of: {', '.join(networks.ARCHITECTURES)}"
            )
        size = size or training.default_size(arch, datasets.native_size(data))  # never upscale small files
        splits = datasets.load(data, spec, size=size, seed=seed)
        typer.echo(
            f"{spec.title}: {len(splits.train)} training, {len(splits.val)} validation and "
            f"{len(splits.test)} test images from {data.name}"
        )
        config = training.TrainConfig(
            arch=arch,
            size=size,
            epochs=epochs,
            patience=patience,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            pretrained=pretrained,
        )
        result = training.train(splits, config, progress=_print_progress)
        for line in metrics_report(result):
            typer.echo(line)
        with _session() as session:
            model = service.register(
                session,
                result,
                task=spec.key,
                data_source=data.name,
                intended_use=intended_use,
                demonstration=demonstration,
                created_by=None,
                serve=serve,
                splits=splits,
            )
            typer.echo(
                f"registered {spec.key} version {model.version} ({model.id})"
                + ("; now serving" if serve else f"; serve it with `caresync imaging serve {model.id}`")
            )


def _print_progress(percent: int, message: str) -> None:
    typer.echo(f"[{percent:3d}%] {message}")


def metrics_report(result: TrainingResult) -> list[str]:
    """The test metrics of a training result as printable lines: accuracy against the baseline, macro
    AUC, sensitivity/specificity/AUC per label and the confusion matrix."""
    from caresync.imaging.registry import service

    metrics = result.metrics
    labels = list(result.label_names)
    lines = [
        f"test images: {metrics.get('n_test', '?')}, epochs run: {result.epochs_run}, {result.seconds:.1f} s",
        f"accuracy {_fmt(metrics.get('accuracy'))} (baseline {_fmt(service.baseline_of(metrics))}), "
        f"macro AUC {_fmt(metrics.get('macro_auc'))}, temperature {result.temperature:.2f}",
    ]
    width = max(len(label) for label in labels)
    lines.append(f"{'label':<{width}}  sensitivity  specificity    AUC")
    per_class = metrics.get("per_class", {})
    for label in labels:
        row = per_class.get(label, {})
        lines.append(
            f"{label:<{width}}  {_fmt(row.get('sensitivity')):>11}  {_fmt(row.get('specificity')):>11}  "
            f"{_fmt(row.get('auc')):>5}"
        )
    confusion = metrics.get("confusion")
    if confusion:
        lines.append("confusion matrix (rows: true label, columns: predicted)")
        lines.extend(
            f"{name:<{width}}  " + " ".join(f"{n:>5}" for n in row)
            for name, row in zip(labels, confusion, strict=False)
        )
    return lines


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


@imaging_app.command()
def models(task: Annotated[str | None, typer.Option("--task", help="Only this task")] = None) -> None:
    """List the trained versions: id, task, version, architecture, test accuracy, serving."""
    from caresync.imaging.registry import service

    with _user_errors(), _session() as session:
        found = service.list_models(session, _principal(), task=task)
        serving = {model.id for model in service.serving(session).values()}
        if not found:
            typer.echo("no imaging model trained yet; train one with `caresync imaging train`")
        for model in found:
            metrics = model.card.get("metrics", {})
            flags = ["SERVING"] if model.id in serving else []
            if model.demonstration:
                flags.append("demonstration only")
            typer.echo(
                f"{model.id}  {model.task:<24} v{model.version:<3} {model.architecture:<12} "
                f"accuracy {_fmt(metrics.get('accuracy'))} (baseline {_fmt(service.baseline_of(metrics))})  "
                + " ".join(flags)
            )


@imaging_app.command("serve")
def serve_version(model_id: Annotated[str, typer.Argument(help="The version's id (see `models`)")]) -> None:
    """Make a version serve its task (audited; running analyses keep their version)."""
    from caresync.imaging.registry import service

    with _user_errors():
        try:
            wanted = uuid.UUID(model_id)
        except ValueError:
            raise _Failed(f"{model_id!r} is not a model id (see `caresync imaging models`)") from None
        with _session() as session:
            row = service.serve(session, _principal(), wanted)
            typer.echo(f"{row.task} is now served by version {row.model.version} ({row.model_id})")


@imaging_app.command()
def tasks() -> None:
    """List the catalog's tasks: key, input, labels, conditions covered and serving version."""
    from caresync.imaging import catalog
    from caresync.imaging.registry import service

    with _user_errors(), _session() as session:
        for task, model in service.tasks(session, _principal()):
            served = (
                f"v{model.version}" + (" (demonstration)" if model.demonstration else "") if model else "-"
            )
            typer.echo(
                f"{task.key:<24} {'grey' if task.channels == 1 else 'colour':<6} "
                f"{','.join(task.modalities):<10} {len(task.labels):>2} labels "
                f"{len(catalog.conditions_of(task.key)):>2} conditions  serving {served}  {task.title}"
            )


# name to write -> the pydicom-data file: real DICOM images to try the upload with
SAMPLE_DICOM = {
    "chest-xray-cr.dcm": "RG1_UNCI.dcm",  # CR, MONOCHROME1, 1955x1841, uncompressed
    "chest-xray-cr-jpeg2000.dcm": "RG1_J2KR.dcm",  # the same kind of image, JPEG 2000 lossless
    "ct-slice.dcm": "CT_small.dcm",
    "mr-slice-jpeg-ls.dcm": "MR_small_jpeg_ls_lossless.dcm",
    "ultrasound-colour.dcm": "US1_J2KR.dcm",
}
SAMPLE_PHOTO = "skin-lesion-synthetic.png"


@imaging_app.command()
def samples(
    out: Annotated[Path, typer.Argument(help="The folder to write the images to")],
) -> None:
    """Write sample images to try the imaging upload with: real DICOM files that ship with pydicom-data (a
    CR chest X-ray, a CT and an MR slice, a colour ultrasound) and a generated dermatology photograph."""
    from pydicom.data import get_testdata_file

    from caresync.imaging import catalog, synthetic

    out.mkdir(parents=True, exist_ok=True)
    for name, shipped in SAMPLE_DICOM.items():
        (out / name).write_bytes(Path(str(get_testdata_file(shipped))).read_bytes())
    skin = catalog.get_task("dermatology")
    (out / SAMPLE_PHOTO).write_bytes(synthetic.example_png(skin, "melanoma", size=256))
    typer.echo(f"wrote {len(SAMPLE_DICOM) + 1} images to {out}: {', '.join([*SAMPLE_DICOM, SAMPLE_PHOTO])}")


@imaging_app.command("make-synthetic")
def make_synthetic(
    task: TaskOption,
    out: Annotated[Path, typer.Option("--out", help="The .npz file to write")],
    per_class: Annotated[int, typer.Option(min=1, help="Images per label")] = 100,
    size: Annotated[int, typer.Option(min=16, max=1024, help="Image side in pixels")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
) -> None:
    """Write generated images with synthetic lesions for TASK as a MedMNIST-format .npz (train/val/test
    images and labels), to try `caresync imaging train` with."""
    from caresync.imaging import catalog, synthetic

    with _user_errors():
        spec = catalog.get_task(task)
        generated = synthetic.generate(spec, per_class=per_class, size=size, seed=seed)
        counts = write_npz(out, generated.data, seed=seed)
        typer.echo(f"wrote {out}: {counts} (synthetic {spec.key} images, {size} px)")


def write_npz(path: Path, data: LabelledImages, *, seed: int) -> str:
    """Split ``data`` and write it as MedMNIST does: ``{split}_images`` uint8 and
    ``{split}_labels`` (``(N, 1)`` class indexes, or ``(N, L)`` flags when multi-label). Returns the
    split sizes as text."""
    import numpy as np

    from caresync.imaging import datasets

    splits = datasets.split(data, seed=seed)
    arrays: dict[str, Any] = {}
    for name in ("train", "val", "test"):
        part = getattr(splits, name)
        labels = part.labels if part.multilabel else part.labels.reshape(-1, 1)
        arrays[f"{name}_images"] = part.images.astype(np.uint8)
        arrays[f"{name}_labels"] = labels.astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    return ", ".join(f"{len(getattr(splits, name))} {name}" for name in ("train", "val", "test"))
