"""The imaging model registry (service level): registering versions with their model cards, who may read
and switch them, the label contract when serving, the predictor cache, and switching under load.

Models here are untrained basic CNNs at 32 px whose head is set by hand, so each version's answer is
known in advance ("constant" models): a prediction tells which version made it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from sqlalchemy import select
from torch import nn

from caresync.core import storage
from caresync.core.audit import AuditEntry
from caresync.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from caresync.db import session_factory, transaction
from caresync.imaging import catalog, metrics, networks
from caresync.imaging.data import LabelledImages, Splits
from caresync.imaging.models import ImagingModel, ImagingServing
from caresync.imaging.registry import service
from caresync.imaging.training import TrainConfig, TrainingResult
from tests.conftest import Cast
from tests.imaging.conftest import principal_of

torch.set_num_threads(1)
SIZE = 32
TASK = "pneumonia"  # grey, two exclusive labels: normal, pneumonia


def constant_result(
    task_key: str = TASK,
    *,
    favour: int = 0,
    labels: tuple[str, ...] | None = None,
    channels: int | None = None,
    epochs_run: int = 3,
    arch: str = "basic_cnn",
) -> TrainingResult:
    """A training result whose network answers label ``favour`` for any image (its head's weights are
    scaled down and its bias set), with real test metrics computed from made-up scores."""
    task = catalog.get_task(task_key)
    names = labels or task.labels
    in_channels = channels or task.channels
    torch.manual_seed(favour)
    model = networks.build(arch, in_channels=in_channels, num_classes=len(names), pretrained=False)
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        head.weight.mul_(1e-3)
        head.bias.fill_(-4.0)
        head.bias[favour] = 4.0
    model.eval()
    rng = np.random.default_rng(favour)
    truth = rng.integers(0, len(names), 40)
    scores = rng.dirichlet(np.ones(len(names)), 40)
    scores[np.arange(40), truth] += 0.5
    scores /= scores.sum(axis=1, keepdims=True)
    if task.multilabel:
        flags = rng.integers(0, 2, (40, len(names)))
        measured = metrics.multilabel_metrics(flags, rng.random((40, len(names))), names)
    else:
        measured = metrics.multiclass_metrics(truth, scores, names)
    measured["calibration"] = {"temperature": 1.3, "ece_before": 0.12, "ece_after": 0.05}
    return TrainingResult(
        model=model,
        arch=arch,
        in_channels=in_channels,
        input_size=SIZE,
        label_names=tuple(names),
        multilabel=task.multilabel,
        temperature=1.3,
        metrics=measured,
        history=[{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "val_accuracy": 0.6, "seconds": 0.1}],
        epochs_run=epochs_run,
        seconds=1.25,
        fingerprint="ab" * 32,
        config=TrainConfig(arch=arch, size=SIZE, epochs=5, patience=2, pretrained=False, seed=3),
    )


def tiny_splits(task_key: str = TASK) -> Splits:
    """Splits of 6/2/3 blank images, for the sizes on the card."""
    task = catalog.get_task(task_key)

    def part(n: int) -> LabelledImages:
        return LabelledImages(np.zeros((n, 8, 8), np.uint8), np.zeros(n, int), task.labels)

    return Splits(part(6), part(2), part(3), fingerprint="cd" * 32)


def register(result: TrainingResult, *, task: str = TASK, serve: bool = False, **kwargs: Any) -> ImagingModel:
    """Register ``result`` in its own transaction (a demonstration model unless told otherwise)."""
    options: dict[str, Any] = {
        "data_source": "constant test model",
        "intended_use": None,
        "demonstration": True,
        "created_by": None,
    } | kwargs
    with transaction(session_factory()) as s:
        model = service.register(s, result, task=task, serve=serve, **options)
        s.flush()
        s.expunge(model)
        return model


def audit_entries(action: str) -> list[AuditEntry]:
    with transaction(session_factory()) as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


@pytest.fixture(scope="module")
def normal_result() -> TrainingResult:
    return constant_result(favour=0)


@pytest.fixture(scope="module")
def pneumonia_result() -> TrainingResult:
    return constant_result(favour=1)


# --- registering --------------------------------------------------------------------------------------------


def test_register_numbers_versions_per_task_and_writes_the_model_card(
    normal_result: TrainingResult, pneumonia_result: TrainingResult
) -> None:
    first = register(normal_result, splits=tiny_splits(), intended_use="Sorting the reading list.")
    second = register(pneumonia_result, demonstration=False, data_source="pneumoniamnist.npz")
    other = register(constant_result("dermatology"), task="dermatology")
    assert (first.version, second.version, other.version) == (1, 2, 1)

    card = first.card
    assert card["task"] == TASK
    assert card["title"] == catalog.get_task(TASK).title
    assert card["labels"] == ["normal", "pneumonia"]
    assert card["multilabel"] is False
    assert card["architecture"] == "basic_cnn"
    assert card["pretrained"] is None
    assert card["input"] == {"size": SIZE, "channels": 1, "modalities": ["CR", "DX"], "body_parts": ["CHEST"]}
    assert card["data"]["source"] == "constant test model"
    assert card["data"]["fingerprint"] == "ab" * 32
    assert card["data"]["splits"] == {"train": 6, "val": 2, "test": 3}
    assert card["training"]["epochs_run"] == 3
    assert card["training"]["max_epochs"] == 5
    assert card["training"]["early_stopped"] is True
    assert card["training"]["seed"] == 3
    assert card["training"]["class_weighting"] == service.CLASS_WEIGHTING[False]
    assert card["metrics"]["accuracy"] == normal_result.metrics["accuracy"]
    assert card["metrics"]["per_class"]["pneumonia"]["sensitivity"] is not None
    assert len(card["metrics"]["confusion"]) == 2
    assert card["calibration"] == {"temperature": 1.3, "ece_before": 0.12, "ece_after": 0.05}
    assert card["intended_use"] == "Sorting the reading list."
    assert card["demonstration"] is True
    assert card["label"] == service.DEMONSTRATION_LABEL
    assert card["limitations"][0].startswith("Trained on generated (synthetic) images")
    assert card["version"] == 1
    assert card["trained_at"]

    assert second.card["label"] is None
    assert second.card["demonstration"] is False
    assert second.card["data"]["splits"]["test"] == second.card["metrics"]["n_test"]  # without splits given
    assert "first-pass aid" in second.card["intended_use"]  # the default intended use
    assert not any("synthetic" in note for note in second.card["limitations"])

    logged = audit_entries("imaging.model.register")
    assert [e.resource_id for e in logged] == [str(first.id), str(second.id), str(other.id)]
    assert '"version": 2' in logged[1].detail


def test_stored_weights_reload_to_the_same_network(normal_result: TrainingResult) -> None:
    model = register(normal_result)
    with transaction(session_factory()) as s:
        stored = s.get(storage.StoredFile, model.weights_sha256)
        assert stored is not None
        assert stored.media_type == "application/zip"
    loaded = networks.load_weights(
        "basic_cnn", in_channels=1, num_classes=2, data=storage.get(model.weights_sha256)
    )
    x = torch.rand(2, 1, SIZE, SIZE)
    with torch.no_grad():
        assert torch.allclose(loaded(x), normal_result.model(x))


def test_concurrent_registrations_get_different_versions(normal_result: TrainingResult) -> None:
    start = threading.Barrier(3)
    versions: list[int] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            start.wait()
            versions.append(register(normal_result).version)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(versions) == [1, 2, 3]


def test_a_lost_version_race_takes_the_next_number(
    normal_result: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registration that read the latest version just before another one committed its next number
    retries with the one after (the unique constraint settles it)."""
    register(normal_result)
    real_execute = service.Session.execute
    stale = {"left": 1}

    def execute(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_execute(self, statement, *args, **kwargs)
        if stale["left"] and "max(imaging_models.version)" in str(statement):
            stale["left"] -= 1
            return real_execute(self, select(ImagingModel.version).where(ImagingModel.version == 0))  # None
        return result

    monkeypatch.setattr(service.Session, "execute", execute)
    again = register(normal_result)
    assert again.version == 2
    assert stale["left"] == 0


# --- reading ------------------------------------------------------------------------------------------------


def test_staff_who_use_results_read_versions_and_cards(cast: Cast, normal_result: TrainingResult) -> None:
    first = register(normal_result)
    register(constant_result("dermatology"), task="dermatology")
    for role in ("admin", "doctor", "nurse"):
        with transaction(session_factory()) as s:
            everyone = service.list_models(s, principal_of(cast[role]))
            pneumonia = service.list_models(s, principal_of(cast[role]), task=TASK)
            card = service.get_model(s, principal_of(cast[role]), first.id)
            assert [m.task for m in everyone] == ["dermatology", TASK]
            assert [m.id for m in pneumonia] == [first.id]
            assert card.card["labels"] == ["normal", "pneumonia"]
    assert len(audit_entries("imaging.model.read")) == 3


def test_other_roles_may_not_read_the_registry(cast: Cast, normal_result: TrainingResult) -> None:
    model = register(normal_result)
    for role in ("patient", "donor", "pharmacist", "bloodbank_staff"):
        with transaction(session_factory()) as s, pytest.raises(Forbidden):
            service.list_models(s, principal_of(cast[role]))
        with transaction(session_factory()) as s, pytest.raises(Forbidden):
            service.get_model(s, principal_of(cast[role]), model.id)
        denied = audit_entries("imaging.model.read")[-1]
        assert (denied.outcome, denied.actor_id) == ("denied", cast[role].id)


def test_unknown_task_and_missing_model_are_clear_errors(cast: Cast) -> None:
    with transaction(session_factory()) as s:
        with pytest.raises(ValidationFailed, match=r"Unknown imaging task 'xray'.*Known tasks: .*pneumonia"):
            service.list_models(s, principal_of(cast["doctor"]), task="xray")
        with pytest.raises(NotFound, match="No such imaging model"):
            service.get_model(s, principal_of(cast["doctor"]), uuid.uuid4())


# --- serving ------------------------------------------------------------------------------------------------


def test_admin_switches_the_serving_version_audited(
    cast: Cast, normal_result: TrainingResult, pneumonia_result: TrainingResult
) -> None:
    first = register(normal_result, serve=True)
    second = register(pneumonia_result)
    admin = principal_of(cast["admin"])
    with transaction(session_factory()) as s:
        assert service.serving_model(s, TASK).id == first.id  # type: ignore[union-attr]
        row = service.serve(s, admin, second.id)
        assert (row.task, row.model_id, row.changed_by) == (TASK, second.id, cast["admin"].id)
        assert service.serving_model(s, TASK).id == second.id  # type: ignore[union-attr]
    with transaction(session_factory()) as s:
        assert s.scalars(select(ImagingServing)).one().model_id == second.id  # one row per task
        assert service.serving_model(s, "dermatology") is None
    switches = audit_entries("imaging.model.serve")
    assert [e.actor_role for e in switches] == ["system", "admin"]
    assert '"from_version": null' in switches[0].detail
    assert '"to_version": 1' in switches[0].detail
    assert '"from_version": 1' in switches[1].detail
    assert '"to_version": 2' in switches[1].detail
    assert switches[1].actor_id == cast["admin"].id


def test_only_admins_switch(cast: Cast, normal_result: TrainingResult) -> None:
    model = register(normal_result)
    for role in ("doctor", "nurse", "patient"):
        with transaction(session_factory()) as s, pytest.raises(Forbidden, match="Only administrators"):
            service.serve(s, principal_of(cast[role]), model.id)
    with transaction(session_factory()) as s:
        assert service.serving_model(s, TASK) is None
    assert [e.outcome for e in audit_entries("imaging.model.serve")] == ["denied"] * 3


@pytest.mark.parametrize(
    ("task", "result", "message"),
    [
        (
            TASK,
            lambda: constant_result(labels=("pneumonia", "normal")),
            "predicts pneumonia, normal.*expects normal",
        ),
        (TASK, lambda: constant_result(labels=("normal", "pneumonia", "covid")), "expects normal, pneumonia"),
        (TASK, lambda: constant_result(channels=3), "takes 3-channel images.*needs 1-channel"),
        ("chest_xray", lambda: constant_result(labels=catalog.get_task("chest_xray").labels), "multi-label"),
    ],
)
def test_a_model_that_breaks_the_task_contract_cannot_serve(
    cast: Cast, task: str, result: Callable[[], TrainingResult], message: str
) -> None:
    model = register(result(), task=task)
    with transaction(session_factory()) as s, pytest.raises(Conflict, match=message):
        service.serve(s, principal_of(cast["admin"]), model.id)
    with transaction(session_factory()) as s:
        assert service.serving_model(s, task) is None
    with pytest.raises(Conflict):  # nor by registering it with serve=True: nothing is left behind
        register(result(), task=task, serve=True)
    with transaction(session_factory()) as s:
        assert len(s.scalars(select(ImagingModel)).all()) == 1


def test_serving_a_missing_model_is_404(cast: Cast) -> None:
    with transaction(session_factory()) as s, pytest.raises(NotFound):
        service.serve(s, principal_of(cast["admin"]), uuid.uuid4())


# --- predictors ---------------------------------------------------------------------------------------------


def test_predictor_is_loaded_once_per_version_even_by_threads_at_once(
    normal_result: TrainingResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = register(normal_result)
    loads: list[uuid.UUID] = []
    real_load = service._load

    def counting_load(row: ImagingModel) -> Any:
        loads.append(row.id)
        time.sleep(0.05)  # long enough for every thread to be waiting on the same version
        return real_load(row)

    monkeypatch.setattr(service, "_load", counting_load)
    start = threading.Barrier(4)
    found: list[Any] = []

    def ask() -> None:
        start.wait()
        found.append(service.predictor(model))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == [model.id]
    assert len(found) == 4
    assert all(p is found[0] for p in found)
    assert service.predictor(model) is found[0]


def test_predictor_cache_keeps_the_most_recently_used_versions(normal_result: TrainingResult) -> None:
    models = [register(normal_result) for _ in range(service.CACHE_SIZE + 1)]
    first = service.predictor(models[0])
    for model in models[1:]:
        service.predictor(model)
    assert service.predictor(models[-1]) is service.predictor(models[-1])
    assert service.predictor(models[0]) is not first  # evicted, then loaded again
    probabilities = service.predictor(models[0]).predict(torch.rand(1, 1, SIZE, SIZE)).probabilities
    assert list(probabilities) == ["normal", "pneumonia"]
    assert probabilities["normal"] > 0.9


def test_registry_switching_under_load(
    cast: Cast, normal_result: TrainingResult, pneumonia_result: TrainingResult
) -> None:
    """Threads keep analysing with whatever serves the task while an admin switches versions: no errors,
    each prediction comes from the version its work started with, new work follows each switch."""
    says_normal = register(normal_result, serve=True)
    says_pneumonia = register(pneumonia_result)
    admin = principal_of(cast["admin"])
    x = torch.rand(1, 1, SIZE, SIZE)
    stop = threading.Event()
    done: list[tuple[float, uuid.UUID, str]] = []  # (started, model id, most likely label)
    errors: list[BaseException] = []

    def analyst() -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                with transaction(session_factory()) as s:
                    model = service.serving_model(s, TASK)
                    assert model is not None
                    model_id, predictor = model.id, service.predictor(model)
                done.append((started, model_id, predictor.predict(x).target))  # the most likely label
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=analyst) for _ in range(3)]
    for worker in workers:
        worker.start()
    switched_at = []
    for target in (says_pneumonia, says_normal, says_pneumonia, says_normal, says_pneumonia):
        time.sleep(0.15)
        with transaction(session_factory()) as s:
            service.serve(s, admin, target.id)
        switched_at.append(time.monotonic())
    time.sleep(0.15)
    stop.set()
    for worker in workers:
        worker.join()

    assert not errors, errors
    expected = {says_normal.id: "normal", says_pneumonia.id: "pneumonia"}
    wrong = [(model_id, finding) for _, model_id, finding in done if finding != expected[model_id]]
    assert not wrong, (wrong[:5], len(done), expected)
    assert {model_id for _, model_id, _ in done} == set(expected)
    after = [model_id for started, model_id, _ in done if started > switched_at[-1]]
    assert after
    assert set(after) == {says_pneumonia.id}
    assert len(audit_entries("imaging.model.serve")) == 6
