"""The imaging demo, called directly at a tiny size (``load_demo`` as a whole is too slow for a unit test):
the demonstration models are trained on generated images, registered with the "demonstration only" label
and served; the demo doctor's chest X-ray (the shipped CR) and skin photo are uploaded and analysed."""

from __future__ import annotations

import pytest
import torch
from sqlalchemy import select

from caresync.core.jobs import Job
from caresync.db import session_factory, transaction
from caresync.imaging import demo
from caresync.imaging.models import ImagingAnalysis, ImagingModel, ImagingStudy
from caresync.imaging.registry import service as registry
from tests.conftest import Cast

torch.set_num_threads(1)
TINY = {"size": 32, "per_class": {demo.CHEST: 4, demo.SKIN: 6}, "epochs": 1}


def test_demo_studies_are_uploaded_and_analysed(cast: Cast) -> None:
    doctor, patient = cast["doctor"], cast["patient"]
    with transaction(session_factory()) as s:
        loaded = demo.load(s, doctor=doctor.user, patients=[cast.other_patient, patient.patient], **TINY)  # type: ignore[arg-type, list-item]
    assert len(loaded.studies) == 2
    assert len(loaded.analyses) == 2
    with transaction(session_factory()) as s:
        models = [s.get(ImagingModel, i) for i in loaded.models]
        assert [(m.task, m.version, m.architecture, m.input_size) for m in models if m] == [
            (demo.CHEST, 1, "basic_cnn", 32),
            (demo.SKIN, 1, "basic_cnn", 32),
        ]
        for model in models:
            assert model is not None
            assert model.demonstration is True
            assert registry.serving_model(s, model.task).id == model.id  # type: ignore[union-attr]
            card = model.card
            assert card["label"] == registry.DEMONSTRATION_LABEL
            assert card["data"]["source"] == demo.DATA_SOURCE
            assert card["intended_use"] == demo.INTENDED_USE
            assert card["training"]["epochs_run"] == 1
            assert sum(card["data"]["splits"].values()) == (15 * 4 if model.task == demo.CHEST else 7 * 6)
            assert card["metrics"]["n_test"] == card["data"]["splits"]["test"]
        assert [(m.multilabel, m.in_channels) for m in models if m] == [(True, 1), (False, 3)]
    with transaction(session_factory()) as s:  # the queued job ran at commit (jobs are immediate in tests)
        first = s.get(ImagingAnalysis, loaded.analyses[0])
        assert first is not None
        assert first.status == "done"
        first.status, first.probabilities, first.completed_at = "queued", None, None  # as if no worker ran
        job = s.get(Job, first.job_id)
        assert job is not None
        job.status = "queued"
    assert demo.process(loaded) > 0
    with transaction(session_factory()) as s:
        assert s.get(Job, job.id).status == "succeeded"  # type: ignore[union-attr]
    with transaction(session_factory()) as s:
        studies = {st.id: st for st in s.scalars(select(ImagingStudy))}
        xray, photo = (studies[i] for i in loaded.studies)
        assert {xray.patient_id, photo.patient_id} == {
            patient.patient_id
        }  # the first patient in the doctor's care
        assert (xray.modality, xray.media_type, xray.channels) == ("CR", "application/dicom", 1)
        assert {xray.width, xray.height} == {1841, 1955}
        assert (photo.media_type, photo.channels) == ("image/png", 3)
        analyses = [s.get(ImagingAnalysis, i) for i in loaded.analyses]
        assert [a.task for a in analyses if a] == [demo.CHEST, demo.SKIN]
        for analysis in analyses:
            assert analysis is not None
            assert analysis.status == "done"
            assert analysis.heatmap_sha256
            model = s.get(ImagingModel, analysis.model_id)
            assert model is not None
            assert model.demonstration is True
            assert set(analysis.probabilities or {}) == set(model.labels)


def test_demo_without_a_patient_in_care_uploads_nothing(
    cast: Cast, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "train_models", lambda *_args, **_kwargs: [])  # trained in the test above
    with transaction(session_factory()) as s:
        loaded = demo.load(s, doctor=cast["doctor"].user, patients=[cast.other_patient])
    assert loaded == demo.ImagingDemo((), (), ())
    assert "cares for no patient" in caplog.text
    with transaction(session_factory()) as s:
        assert s.scalars(select(ImagingStudy)).all() == []
