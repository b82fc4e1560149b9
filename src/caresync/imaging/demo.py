"""Imaging AI demo data: "demonstration only" models trained on generated images, and two analysed studies.

No labelled medical images or weights ship offline, so the demo trains small basic CNNs (64 px, a few
epochs) on :mod:`caresync.imaging.synthetic` images (procedural backgrounds with a visible, localised
lesion per label) for the chest X-ray task and the dermatology task, registers them labelled
"demonstration only — not for clinical use" and serves them. Then the demo doctor uploads, for the first
patient in their care, the chest X-ray CR that ships with pydicom-data (``RG1_UNCI.dcm``, MONOCHROME1,
1955x1841) and a generated dermatoscopy photo, and asks for their analyses.

Two steps like the documents demo: :func:`load` trains, registers, uploads and requests the analyses
inside the demo's transaction; :func:`process`, once that commits, runs each analysis's job body
(:func:`caresync.imaging.studies.service.run_analysis`) directly, so the results exist when
``caresync demo`` returns whether or not a worker runs. (With ``CARESYNC_JOBS_IMMEDIATE`` the queued job
has already run at commit; :func:`process` skips analyses that are done. Without it the request also sits
in the job queue, and a worker started later analyses the study once more, to the same result.)

Measured on the 2-core development machine while shared (load average 4): :func:`load` + :func:`process`
take 23 s (22 s of CPU): training 6-7 s per model, the two analyses 4 s. The dermatology model reaches
about 0.68 test accuracy (chance 0.14, macro AUC 0.99); the 14-label chest model stays weak (macro AUC
about 0.6) in so few epochs, which its card shows.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from caresync.core.rbac import cared_for_patient_ids
from caresync.db import session_factory, transaction
from caresync.identity.models import Patient, User
from caresync.identity.service import acting_user
from caresync.imaging import catalog
from caresync.imaging.models import ImagingAnalysis, ImagingModel

log = logging.getLogger(__name__)

CHEST, SKIN = "chest_xray", "dermatology"
SIZE = 64
PER_CLASS = {CHEST: 10, SKIN: 24}  # images per label: 150 and 168 (chest: 10 more with no finding)
EPOCHS = 4
BATCH_SIZE, LEARNING_RATE = 16, 2e-3  # more, bolder steps than the defaults: a few epochs must do
DATA_SOURCE = "synthetic demo images (procedural, with generated lesions)"
INTENDED_USE = (
    "Demonstration of the imaging workflow (upload, analysis, heatmap, feedback) with generated images. "
    "Not for clinical use: it has never seen a real patient's image."
)
CHEST_XRAY_FILE = "RG1_UNCI.dcm"  # pydicom-data: a CR chest X-ray, MONOCHROME1, 1955x1841
SKIN_LABEL = "melanoma"


@dataclass(frozen=True)
class ImagingDemo:
    """What :func:`load` stored and :func:`process` completes."""

    models: tuple[uuid.UUID, ...]
    studies: tuple[uuid.UUID, ...]
    analyses: tuple[uuid.UUID, ...]


NOTHING = ImagingDemo((), (), ())  # a demo loaded without imaging


def train_models(
    session: Session,
    *,
    tasks: Sequence[str] = (CHEST, SKIN),
    size: int = SIZE,
    per_class: dict[str, int] | None = None,
    epochs: int = EPOCHS,
    seed: int = 0,
) -> list[ImagingModel]:
    """Train a basic CNN per task on generated images, register each as a demonstration version and serve
    it; returns the registered versions."""
    from caresync.imaging import datasets, synthetic, training
    from caresync.imaging.registry import service as registry

    counts = PER_CLASS | (per_class or {})
    registered = []
    for key in tasks:
        task = catalog.get_task(key)
        generated = synthetic.generate(task, per_class=counts.get(key, 20), size=size, seed=seed)
        splits = datasets.split(generated.data, seed=seed)
        config = training.TrainConfig(
            arch="basic_cnn",
            size=size,
            epochs=epochs,
            patience=epochs,
            batch_size=BATCH_SIZE,
            learning_rate=LEARNING_RATE,
            seed=seed,
            pretrained=False,
        )
        result = training.train(splits, config)
        registered.append(
            registry.register(
                session,
                result,
                task=key,
                data_source=DATA_SOURCE,
                intended_use=INTENDED_USE,
                demonstration=True,
                created_by=None,
                serve=True,
                splits=splits,
            )
        )
        log.info("Demo imaging model %s v%s trained in %.1f s", key, registered[-1].version, result.seconds)
    return registered


def load(
    session: Session,
    *,
    doctor: User,
    patients: Sequence[Patient],
    seed: int = 0,
    size: int = SIZE,
    per_class: dict[str, int] | None = None,
    epochs: int = EPOCHS,
) -> ImagingDemo:
    """Train and serve the demonstration models, then upload, as the demo ``doctor``, the chest X-ray and
    a generated skin-lesion photo of the first of ``patients`` in their care and request both analyses
    (call after the care relationships are flushed; :func:`process` the result once committed). ``size``,
    ``per_class`` and ``epochs`` are :func:`train_models`'."""
    from pydicom.data import get_testdata_file

    from caresync.imaging import synthetic
    from caresync.imaging.studies import service as studies

    trained = train_models(session, size=size, per_class=per_class, epochs=epochs, seed=seed)
    models = tuple(model.id for model in trained)
    principal = acting_user(session, doctor.id)
    in_care = set(session.scalars(cared_for_patient_ids(principal)))
    patient = next((p for p in patients if p.id in in_care), None)
    if patient is None:
        log.warning("The imaging demo studies are left out: the demo doctor cares for no patient.")
        return ImagingDemo(models, (), ())
    xray = Path(str(get_testdata_file(CHEST_XRAY_FILE))).read_bytes()
    photo = synthetic.example_png(catalog.get_task(SKIN), SKIN_LABEL, size=256, seed=seed)
    uploads = (
        (xray, "chest-xray.dcm", "Chest X-ray, PA (pydicom sample CR)", CHEST),
        (photo, "skin-lesion.png", "Dermatoscopy of a pigmented lesion, left forearm (generated)", SKIN),
    )
    studies_, analyses = [], []
    for data, filename, description, task in uploads:
        study = studies.upload(
            session, principal, patient_id=patient.id, data=data, filename=filename, description=description
        )
        studies_.append(study.id)
        analyses.append(studies.analyse(session, principal, study.id, task=task).id)
    return ImagingDemo(models, tuple(studies_), tuple(analyses))


def process(loaded: ImagingDemo) -> float:
    """Run the analyses :func:`load` requested (committed) that are not done yet here and now, through
    their job's body (:func:`~caresync.imaging.studies.service.run_analysis`, wrapped so the job row
    shows the outcome too), and return the seconds taken. An analysis that fails is marked failed and
    logged (the job wrapper does not raise); the rest of the demo stands."""
    if not loaded.analyses:
        return 0.0  # without importing PyTorch (seconds), as a demo without imaging would
    from caresync.imaging.studies.jobs import analysis_job

    started = time.perf_counter()
    for analysis_id in loaded.analyses:
        with transaction(session_factory()) as session:
            analysis = session.get(ImagingAnalysis, analysis_id)
            if analysis is None or analysis.status == "done" or analysis.job_id is None:
                continue
            job_id = str(analysis.job_id)
        analysis_job.call_local(job_id, {"analysis_id": str(analysis_id)})
        with transaction(session_factory()) as session:
            outcome = session.get(ImagingAnalysis, analysis_id)
            if outcome is not None and outcome.status != "done":
                log.warning("Demo imaging analysis %s failed: %s", analysis_id, outcome.error)
    return time.perf_counter() - started
