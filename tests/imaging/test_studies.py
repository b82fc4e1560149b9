"""Imaging studies through the service: upload (DICOM header facts, PNG, bad files leave nothing), choosing
and checking the task, the analysis job (real untrained networks at 32 px, jobs run at once), failures, the
doctors' feedback and the worklist's order and visibility."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from caresync.core import storage
from caresync.core.audit import AuditEntry
from caresync.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from caresync.core.jobs import Job
from caresync.db import session_factory, transaction, utcnow
from caresync.imaging.models import ImagingAnalysis, ImagingFeedback, ImagingModel, ImagingStudy
from caresync.imaging.studies import service
from tests.conftest import Cast, Factory
from tests.imaging.conftest import dicom_bytes, png_bytes, principal_of, upload_study

Tx = Callable[[], Any]


def _analyse(person: Any, study_id: uuid.UUID, task: str | None = None) -> ImagingAnalysis:
    """Ask for an analysis as ``person``; the job runs when the transaction commits (jobs run at once)."""
    with transaction(session_factory()) as session:
        analysis_id = service.analyse(session, principal_of(person), study_id, task=task).id
    with transaction(session_factory()) as session:
        analysis = session.get(ImagingAnalysis, analysis_id)
        assert analysis is not None
        analysis.study, analysis.model, analysis.feedback  # noqa: B018 (load before the session closes)
        return analysis


def _count(table: Any) -> int:
    with transaction(session_factory()) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def _stored_files(var_dir: Path) -> int:
    return (
        sum(1 for path in (var_dir / "files").rglob("*") if path.is_file())
        if (var_dir / "files").exists()
        else 0
    )


def test_a_dicom_upload_keeps_its_header_facts_and_a_preview(cast: Cast, tx: Tx) -> None:
    study_id = upload_study(
        cast["doctor"], cast["patient"].patient_id, dicom_bytes(size=(64, 48)), "chest.dcm"
    )
    with tx() as s:
        study = s.get(ImagingStudy, study_id)
        assert study is not None
        assert (study.media_type, study.modality, study.body_part) == ("application/dicom", "CR", "CHEST")
        assert (study.width, study.height, study.channels) == (64, 48, 1)
        assert study.pixel_spacing == [0.5, 0.4]
        assert study.study_uid
        assert study.series_uid
        assert study.study_uid != study.series_uid
        assert study.filename == "chest.dcm"
        assert study.uploaded_by == cast["doctor"].id
        assert study.organisation_id == cast.org.id
        preview = Image.open(io.BytesIO(storage.get(study.preview_sha256)))
        assert (preview.format, preview.size) == ("PNG", (64, 48))
        entry = s.execute(select(AuditEntry).where(AuditEntry.action == "imaging.study.upload")).scalar_one()
        assert (entry.patient_id, entry.resource_id) == (cast["patient"].patient_id, str(study_id))
        assert [t.key for t in service.tasks_of(study)] == ["chest_xray", "pneumonia"]


@pytest.mark.parametrize(("rgb", "channels"), [(False, 1), (True, 3)])
def test_a_png_upload_has_no_header_facts(cast: Cast, tx: Tx, rgb: bool, channels: int) -> None:
    study_id = upload_study(cast["nurse"], cast["patient"].patient_id, png_bytes(rgb=rgb), "photo.png")
    with tx() as s:
        study = s.get(ImagingStudy, study_id)
        assert study is not None
        assert (study.media_type, study.modality, study.body_part, study.study_uid) == (
            "image/png",
            None,
            None,
            None,
        )
        assert (study.width, study.height, study.channels) == (80, 60, channels)


def _truncated_dicom() -> bytes:
    return dicom_bytes()[:400]


BAD_FILES: list[tuple[str, Callable[[], bytes], int, str]] = [
    ("empty", lambda: b"", 422, "empty"),
    ("text", lambda: b"just some text, not an image\n" * 10, 415, ""),
    ("pdf", lambda: b"%PDF-1.4\n% not an image\n%%EOF\n", 415, ""),
    ("truncated DICOM", _truncated_dicom, 422, ""),
    ("tiny PNG", lambda: png_bytes(size=(8, 8)), 422, "8 x 8"),
]


@pytest.mark.parametrize(("name", "content", "status", "words"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_refused_and_leaves_nothing(
    cast: Cast, tx: Tx, var_dir: Path, name: str, content: Callable[[], bytes], status: int, words: str
) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    files, rows = _stored_files(var_dir), _count(storage.StoredFile)  # the doctor's licence is a stored file
    with pytest.raises(DomainError) as refused:
        upload_study(doctor, patient.patient_id, content(), name)
    assert refused.value.status == status, refused.value.detail
    assert words in refused.value.detail
    assert (_count(ImagingStudy), _count(storage.StoredFile), _stored_files(var_dir)) == (0, rows, files)


def test_too_large_a_file_is_refused_before_decoding(cast: Cast, settings_env: Any) -> None:
    settings_env(max_upload_bytes=2048)
    with pytest.raises(DomainError) as refused:
        upload_study(cast["doctor"], cast["patient"].patient_id, dicom_bytes())
    assert refused.value.status == 413
    assert "limit is 2,048 bytes" in refused.value.detail


def test_an_appointment_must_be_the_patients(cast: Cast, tx: Tx) -> None:
    with pytest.raises(ValidationFailed, match="not one of this patient's"), tx() as s:
        service.upload(
            s,
            principal_of(cast["doctor"]),
            patient_id=cast["patient"].patient_id,
            data=dicom_bytes(),
            filename="x.dcm",
            appointment_id=uuid.uuid4(),
        )


def test_only_clinicians_caring_for_the_patient_upload(cast: Cast) -> None:
    with pytest.raises(Forbidden):
        upload_study(cast["admin"], cast["patient"].patient_id, dicom_bytes())
    with pytest.raises(NotFound):
        upload_study(cast["doctor"], cast.other_patient.id, dicom_bytes())


def test_the_task_is_chosen_and_checked_at_submission(
    cast: Cast, chest_study: uuid.UUID, serve_model: Any
) -> None:
    doctor = cast["doctor"]
    with pytest.raises(ValidationFailed, match="Several analyses fit this study; choose one of: chest_xray"):
        _analyse(doctor, chest_study)
    with pytest.raises(ValidationFailed) as wrong:
        _analyse(doctor, chest_study, task="dermatology")
    assert "CR" in wrong.value.detail or "colour" in wrong.value.detail
    with pytest.raises(ValidationFailed, match="Unknown imaging task 'bones'"):
        _analyse(doctor, chest_study, task="bones")
    with pytest.raises(Conflict, match="No model serves pneumonia"):
        _analyse(doctor, chest_study, task="pneumonia")
    nuclear = upload_study(
        doctor, cast["patient"].patient_id, dicom_bytes(modality="NM", body_part="WHOLEBODY")
    )
    with pytest.raises(
        ValidationFailed, match=r"No analysis accepts this study \(a greyscale image, modality NM"
    ):
        _analyse(doctor, nuclear)
    serve_model("pneumonia")  # of the two tasks a chest X-ray fits, only this one has a model
    assert _analyse(doctor, chest_study).task == "pneumonia"
    serve_model("chest_xray")
    with pytest.raises(ValidationFailed, match="Several analyses fit this study"):
        _analyse(doctor, chest_study)


def test_an_analysis_runs_and_keeps_its_result(
    cast: Cast, chest_study: uuid.UUID, serve_model: Any, tx: Tx
) -> None:
    model = serve_model("pneumonia")
    analysis = _analyse(cast["nurse"], chest_study, task="pneumonia")
    assert analysis.status == "done", analysis.error
    assert analysis.model_id == model.id
    assert analysis.model.version == 1
    assert list(analysis.probabilities or {}) == ["normal", "pneumonia"]
    assert sum((analysis.probabilities or {}).values()) == pytest.approx(1.0, abs=1e-3)  # 4 decimals each
    top = max(analysis.probabilities, key=analysis.probabilities.get)
    assert analysis.findings[0] == ("No finding" if top == "normal" else top)
    steps = analysis.preprocessing or []
    assert any("MONOCHROME1" in step or "nvert" in step for step in steps), steps
    assert steps[-1] == "Resized from 64 x 48 to 32 x 32 (aspect not kept)"
    assert analysis.seconds is not None
    assert 0 < analysis.seconds < 30
    assert analysis.started_at
    assert analysis.completed_at
    assert analysis.completed_at >= analysis.started_at
    heat = Image.open(io.BytesIO(storage.get(analysis.heatmap_sha256 or "")))
    assert (heat.format, heat.mode, heat.size) == ("PNG", "RGBA", (64, 48))
    with tx() as s:
        job = s.get(Job, analysis.job_id)
        assert job is not None
        assert (job.status, job.progress, job.kind) == (
            "succeeded",
            100,
            "imaging.analysis",
        )
        actions = set(s.execute(select(AuditEntry.action)).scalars())
        assert {"imaging.analysis.request", "imaging.analysis.complete"} <= actions
    steps_seen: list[tuple[int, str]] = []
    again = service.run_analysis(analysis.id, lambda percent, message: steps_seen.append((percent, message)))
    assert again["already_done"]  # a job delivered twice leaves the result alone
    assert steps_seen == []
    waiting = _queued(chest_study, model.id, cast["nurse"].id, "queued", 1)
    service.run_analysis(waiting, lambda percent, message: steps_seen.append((percent, message)))
    assert steps_seen == [
        (5, "Reading the image"),
        (20, "Loading basic_cnn v1"),
        (40, "Running basic_cnn v1 and computing the heatmap"),
        (85, "Drawing the heatmap"),
    ]


def test_a_multilabel_task_gives_each_label_its_own_probability(
    cast: Cast, chest_study: uuid.UUID, serve_model: Any
) -> None:
    serve_model("chest_xray")
    analysis = _analyse(cast["doctor"], chest_study, task="chest_xray")
    probabilities = analysis.probabilities or {}
    assert analysis.status == "done"
    assert len(probabilities) == 14
    assert all(0.0 <= p <= 1.0 for p in probabilities.values())


def test_a_colour_photo_is_analysed_by_the_only_task_it_fits(cast: Cast, serve_model: Any) -> None:
    photo = dicom_bytes(modality="XC", body_part=None, rgb=True, spacing=None)
    study_id = upload_study(cast["doctor"], cast["patient"].patient_id, photo, "mole.dcm")
    serve_model("dermatology")
    analysis = _analyse(cast["doctor"], study_id)
    assert (analysis.task, analysis.status) == ("dermatology", "done")


def test_a_failing_job_marks_the_analysis_failed_with_a_message(
    cast: Cast, chest_study: uuid.UUID, serve_model: Any, tx: Tx, var_dir: Path
) -> None:
    serve_model("pneumonia")
    with tx() as s:
        study = s.get(ImagingStudy, chest_study)
        assert study is not None
        (
            var_dir / "files" / study.file_sha256[:2] / study.file_sha256[2:]
        ).unlink()  # the stored image is lost
    analysis = _analyse(cast["doctor"], chest_study, task="pneumonia")
    assert (analysis.status, analysis.error) == ("failed", "No such file.")
    assert analysis.probabilities is None
    assert analysis.heatmap_sha256 is None
    assert analysis.completed_at
    with tx() as s:
        job = s.get(Job, analysis.job_id)
        assert job is not None
        assert (job.status, job.message) == ("failed", "No such file.")
    with pytest.raises(Conflict, match="No such file"), tx() as s:
        service.heatmap(s, principal_of(cast["doctor"]), analysis.id)


def test_feedback_rules(cast: Cast, chest_study: uuid.UUID, serve_model: Any, tx: Tx, var_dir: Path) -> None:
    serve_model("pneumonia")
    done = _analyse(cast["doctor"], chest_study, task="pneumonia")
    doctor, nurse = principal_of(cast["doctor"]), principal_of(cast["nurse"])

    def give(principal: Any, analysis_id: uuid.UUID, verdict: str, labels: list[str]) -> ImagingFeedback:
        with tx() as s:
            return service.give_feedback(
                s, principal, analysis_id, verdict=verdict, labels=labels, note=" ok "
            )

    with pytest.raises(Forbidden):
        give(nurse, done.id, "confirmed", [])
    with pytest.raises(ValidationFailed, match="'fracture' is not a label of Pneumonia"):
        give(doctor, done.id, "corrected", ["fracture"])
    with pytest.raises(ValidationFailed, match="one label per image"):
        give(doctor, done.id, "corrected", ["normal", "pneumonia"])
    with pytest.raises(ValidationFailed, match="Unknown verdict"):
        give(doctor, done.id, "maybe", [])
    first = give(doctor, done.id, "confirmed", ["ignored"])
    held = [finding for finding in done.findings or [] if finding != "No finding"]
    assert (first.verdict, first.labels, first.note) == ("confirmed", held, "ok")
    give(doctor, done.id, "corrected", [])
    with tx() as s:
        (row,) = s.execute(select(ImagingFeedback)).scalars().all()
        assert (row.verdict, row.labels) == ("corrected", [])
        entries = s.execute(
            select(AuditEntry.detail)
            .where(AuditEntry.action == "imaging.analysis.review", AuditEntry.detail.contains('"after"'))
            .order_by(AuditEntry.seq)
        )
        first_change, second_change = (json.loads(detail) for detail in entries.scalars())
        assert first_change == {"before": None, "after": {"verdict": "confirmed", "labels": held}}
        assert second_change == {
            "before": first_change["after"],
            "after": {"verdict": "corrected", "labels": []},
        }
        study = s.get(ImagingStudy, chest_study)
        assert study is not None
        (var_dir / "files" / study.file_sha256[:2] / study.file_sha256[2:]).unlink()
    failed = _analyse(cast["doctor"], chest_study, task="pneumonia")
    with pytest.raises(Conflict, match="Only a finished analysis"):
        give(doctor, failed.id, "confirmed", [])


def test_admins_export_the_feedback_without_patient_identifiers(
    cast: Cast, chest_study: uuid.UUID, serve_model: Any, tx: Tx
) -> None:
    serve_model("pneumonia")
    done = _analyse(cast["doctor"], chest_study, task="pneumonia")
    with tx() as s:
        service.give_feedback(
            s, principal_of(cast["doctor"]), done.id, verdict="corrected", labels=["pneumonia"], note=None
        )
    with tx() as s:
        (row,) = service.export_feedback(s, principal_of(cast["admin"]), "pneumonia")
        assert row["labels"] == ["pneumonia"]
        assert row["verdict"] == "corrected"
        assert row["file_sha256"] == done.study.file_sha256
        assert "patient_id" not in row
    with pytest.raises(Forbidden), tx() as s:
        service.export_feedback(s, principal_of(cast["doctor"]), "pneumonia")


def _queued(study_id: uuid.UUID, model_id: uuid.UUID, by: uuid.UUID, status: str, minutes: int) -> uuid.UUID:
    """An analysis row in ``status``, submitted ``minutes`` ago (finished ones a minute later)."""
    now = utcnow()
    submitted = now - timedelta(minutes=minutes)
    done = status in ("done", "failed")
    with transaction(session_factory()) as s:
        analysis = ImagingAnalysis(
            study_id=study_id,
            task="pneumonia",
            model_id=model_id,
            status=status,
            submitted_by=by,
            submitted_at=submitted,
            completed_at=submitted + timedelta(minutes=1) if done else None,
        )
        if status == "done":  # left unset otherwise: a None would be stored as JSON null
            analysis.probabilities = {"normal": 0.5, "pneumonia": 0.5}
        s.add(analysis)
        s.flush()
        return analysis.id


def test_the_worklist_puts_the_queue_first_then_recent_results(
    cast: Cast, make: Factory, chest_study: uuid.UUID, serve_model: Any, tx: Tx
) -> None:
    model: ImagingModel = serve_model("pneumonia")
    doctor = cast["doctor"]
    rows = {
        name: _queued(chest_study, model.id, doctor.id, status, minutes)
        for name, status, minutes in [
            ("old done", "done", 50),
            ("queued later", "queued", 10),
            ("running first", "running", 30),
            ("recent failed", "failed", 5),
            ("queued last", "queued", 2),
        ]
    }
    other_doctor = make.staff("doctor")
    make.care(other_doctor, cast.other_patient)
    hidden = upload_study(other_doctor, cast.other_patient.id, dicom_bytes(seed=3))
    _queued(hidden, model.id, other_doctor.id, "queued", 40)
    order = ["running first", "queued later", "queued last", "recent failed", "old done"]
    with tx() as s:
        page = service.worklist(s, principal_of(doctor))
        assert [a.id for a in page.items] == [rows[name] for name in order]
        assert (page.total, page.next_cursor) == (5, None)
        first = service.worklist(s, principal_of(doctor), per_page=2)
        second = service.worklist(s, principal_of(doctor), per_page=2, page=2)
        assert [a.id for a in first.items + second.items] == [rows[name] for name in order[:4]]
        assert (first.next_cursor, second.next_cursor) == ("2", "3")
        queued = service.worklist(s, principal_of(doctor), status="queued")
        assert [a.id for a in queued.items] == [rows["queued later"], rows["queued last"]]
        assert [a.id for a in service.worklist(s, principal_of(other_doctor)).items] != []
        with pytest.raises(ValidationFailed, match="Unknown status 'lost'"):
            service.worklist(s, principal_of(doctor), status="lost")
    with pytest.raises(Forbidden), tx() as s:
        service.worklist(s, principal_of(cast["pharmacist"]))
