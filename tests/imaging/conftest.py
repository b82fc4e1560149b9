"""Shared fixtures of the imaging tests: generated images (DICOM with the header facts a study keeps, PNG),
served models (UNTRAINED basic CNNs at 32 px, registered through the registry), and the cast's principals.

* :func:`dicom_bytes` / :func:`png_bytes`: small generated images (no binary files in the repository).
* ``serve_model(task, arch="basic_cnn", size=32)``: registers an untrained model of ``task`` as a
  demonstration version and serves it; returns the :class:`ImagingModel`.
* ``chest_study(cast)``: a chest CR (DICOM, MONOCHROME1) of the cast's patient, uploaded by the doctor.
* :func:`principal_of`: the :class:`Principal` of a factory-made person (for service calls).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pytest
import torch
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from caresync.core.auth import Principal
from caresync.db import session_factory, transaction
from caresync.imaging import catalog
from caresync.imaging.models import ImagingModel, ImagingStudy
from caresync.imaging.training import TrainConfig, TrainingResult
from tests.conftest import Cast, Person

CR_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")  # Computed Radiography Image Storage
SC_STORAGE = UID("1.2.840.10008.5.1.4.1.1.7")  # Secondary Capture Image Storage

torch.set_num_threads(1)


def principal_of(person: Person) -> Principal:
    """The principal a service call acts as for ``person``."""
    patient_id = person.patient.id if person.patient is not None else None
    return Principal(
        person.id,
        person.role,
        person.full_name,
        organisation_id=person.user.organisation_id,
        patient_id=patient_id,
    )


def _pattern(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth gradient with a bright disc (values in [0, 1]), different for each seed."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width
    disc = ((rows - cy) ** 2 + (cols - cx) ** 2) < (min(height, width) / 5) ** 2
    return np.clip(0.2 + 0.5 * cols / width + 0.3 * disc, 0, 1)


def dicom_bytes(
    *,
    modality: str = "CR",
    body_part: str | None = "CHEST",
    size: tuple[int, int] = (64, 48),
    photometric: str = "MONOCHROME1",
    rgb: bool = False,
    spacing: tuple[float, float] | None = (0.5, 0.4),
    seed: int = 0,
) -> bytes:
    """A small DICOM file (explicit VR little endian, uncompressed): 12-bit grey or 8-bit RGB, with the
    header facts a study keeps (modality, body part, study/series UIDs, pixel spacing)."""
    width, height = size
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SC_STORAGE if rgb else CR_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID = "Anonymous^Test", "TEST-0001"
    ds.Modality = modality
    if body_part:
        ds.BodyPartExamined = body_part
    if spacing:
        ds.PixelSpacing = list(spacing)
    ds.Rows, ds.Columns = height, width
    pattern = _pattern(height, width, seed)
    if rgb:
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        colour = np.stack([pattern, pattern * 0.6, 1 - pattern], axis=-1)
        ds.PixelData = (colour * 255).astype(np.uint8).tobytes()
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = (pattern * 4095).astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def png_bytes(*, size: tuple[int, int] = (80, 60), rgb: bool = False, seed: int = 0) -> bytes:
    """A small PNG: greyscale, or colour whose channels differ (so it counts as colour)."""
    width, height = size
    pattern = _pattern(height, width, seed)
    pixels = np.stack([pattern, pattern * 0.5, 1 - pattern], axis=-1) if rgb else pattern
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@lru_cache(maxsize=32)
def _untrained(task_key: str, arch: str, size: int) -> TrainingResult:
    """An untrained network's training result for ``task_key`` (built once per test session)."""
    from caresync.imaging import networks

    task = catalog.get_task(task_key)
    torch.manual_seed(0)
    model = networks.build(arch, in_channels=task.channels, num_classes=len(task.labels), pretrained=False)
    model.eval()
    return TrainingResult(
        model=model,
        arch=arch,
        in_channels=task.channels,
        input_size=size,
        label_names=task.labels,
        multilabel=task.multilabel,
        temperature=1.0,
        metrics={"accuracy": 0.5, "macro_auc": 0.5, "per_class": {}, "confusion": [], "n_test": 0},
        history=[],
        epochs_run=0,
        seconds=0.0,
        fingerprint="0" * 64,
        config=TrainConfig(arch=arch, size=size, epochs=0, pretrained=False),
    )


def register_model(
    task_key: str, *, arch: str = "basic_cnn", size: int = 32, serve: bool = True
) -> ImagingModel:
    """Register an untrained demonstration model of ``task_key`` (and serve it unless told not to)."""
    from caresync.imaging.registry import service as registry

    with transaction(session_factory()) as session:
        return registry.register(
            session,
            _untrained(task_key, arch, size),
            task=task_key,
            data_source="untrained (tests)",
            intended_use=None,
            demonstration=True,
            created_by=None,
            serve=serve,
        )


@pytest.fixture
def serve_model() -> Callable[..., ImagingModel]:
    """``serve_model(task, arch="basic_cnn", size=32, serve=True)``: an untrained demonstration model of the
    task, registered and serving."""
    return register_model


def upload_study(
    person: Person, patient_id: uuid.UUID, data: bytes, filename: str = "image.dcm"
) -> uuid.UUID:
    """Upload ``data`` for the patient as ``person`` (through the service, committed); the study's id."""
    from caresync.imaging.studies import service

    with transaction(session_factory()) as session:
        study: ImagingStudy = service.upload(
            session, principal_of(person), patient_id=patient_id, data=data, filename=filename
        )
        return study.id


@pytest.fixture
def chest_study(cast: Cast) -> uuid.UUID:
    """A chest CR (DICOM, MONOCHROME1, 64x48) of the cast's patient, uploaded by the cast's doctor."""
    return upload_study(cast["doctor"], cast["patient"].patient_id, dicom_bytes(), "chest.dcm")
