"""The risk model without HTTP: features computed by hand and without leakage, the consensus and level
table, metrics above chance on generated data, the model card, the store's active switch, and inference
time. Generated data: ages, sexes, chronic conditions, low SpO2 and earlier adverse outcomes raise the
chance that an encounter ends in admission or death (a logistic model), so a model that learns anything
from the history beats chance."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from caresync.analytics.data import FRAME_COLUMNS, ages_at
from caresync.analytics.risk import service, store
from caresync.analytics.risk.features import (
    CONDITION_GROUPS,
    FEATURE_LABELS,
    FEATURE_NAMES,
    REFERENCE_COLUMNS,
    ROW_COLUMNS,
    VITAL_DEFAULTS,
    age_at,
    encounter_table,
    features_at,
    patient_features,
    patient_history,
    training_set,
)
from caresync.analytics.risk.model import (
    RiskModel,
    cap_rows,
    consensus,
    forest_probability,
    level_for,
    predict,
    scores,
    train,
)
from caresync.analytics.rules import CONDITIONS, RiskLevel
from caresync.core.errors import ValidationFailed

pytestmark = pytest.mark.no_db
CHRONIC = ("I50.9", "J44.9", "I25.1", "E11.9")
ACUTE = ("J11", "J06.9", "M54.5", "R51", "A09", "N39.0", "F41.1")
START = pd.Timestamp("2023-01-01", tz="UTC")
YEAR = 365 * 86400


def generated_frame(patients: int = 400, seed: int = 7, organisation_id: str = "org-1") -> pd.DataFrame:
    """A frame (``FRAME_COLUMNS``) of 2-8 encounters per patient over three years, where adverse outcomes
    follow a logistic model of age, a chronic condition (diagnosed at ~60 % of visits, with SpO2 4 points
    lower) and earlier adverse outcomes."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for p in range(patients):
        age0, sex = int(rng.integers(1, 95)), str(rng.choice(["female", "male"]))
        chronic = bool(rng.random() < 0.15 + 0.5 * (age0 > 60))
        prior = 0
        for k, secs in enumerate(np.sort(rng.integers(0, 3 * YEAR, int(rng.integers(2, 9))))):
            codes = [str(rng.choice(CHRONIC if chronic and rng.random() < 0.6 else ACUTE))]
            if rng.random() < 0.3:
                codes = list(dict.fromkeys([*codes, str(rng.choice(ACUTE))]))
            logit = -3.2 + 0.035 * (age0 - 50) + 1.4 * chronic + 0.7 * prior
            adverse = bool(rng.random() < 1 / (1 + np.exp(-logit)))
            prior += adverse
            outcome = str(
                rng.choice(["admitted", "died"] if adverse else ["discharged", "follow-up", "referred"])
            )
            taken = rng.random() < 0.8
            vitals = {
                "systolic_mmhg": float(rng.normal(130, 15)) if taken else np.nan,
                "heart_rate_bpm": float(rng.normal(78, 10)) if taken else np.nan,
                "temperature_c": float(rng.normal(36.9, 0.4)) if taken else np.nan,
                "spo2_pct": float(np.clip(rng.normal(97 - 4 * chronic, 1.5), 50, 100)) if taken else np.nan,
            }
            for i, code in enumerate(codes):
                rows.append(
                    {
                        "encounter_id": f"e{p}-{k}",
                        "patient_id": f"p{p}",
                        "organisation_id": organisation_id,
                        "department": "general-practice",
                        "started_at": START + pd.Timedelta(seconds=int(secs)),
                        "outcome": outcome,
                        "sex": sex,
                        "age": age0 + int(secs // YEAR),
                        "code": code,
                        "principal": i == 0,
                        **vitals,
                    }
                )
    return pd.DataFrame(rows)[list(FRAME_COLUMNS)]


def small_frame(rows: list[tuple[str, str, str, str, dict[str, float]]]) -> pd.DataFrame:
    """A frame from ``(encounter, patient, "YYYY-MM-DD", outcome, vitals)`` rows, with codes in
    :data:`CODES_OF`."""
    records = []
    for encounter, patient, day, outcome, vitals in rows:
        for i, code in enumerate(CODES_OF[encounter]):
            records.append(
                {
                    "encounter_id": encounter,
                    "patient_id": patient,
                    "organisation_id": "org-1",
                    "department": "general-practice",
                    "started_at": pd.Timestamp(day, tz="UTC"),
                    "outcome": outcome,
                    "sex": "female",
                    "age": 70,
                    "code": code,
                    "principal": i == 0,
                    **{v: vitals.get(v, np.nan) for v in VITAL_DEFAULTS},
                }
            )
    return pd.DataFrame(records)[list(FRAME_COLUMNS)]


CODES_OF = {
    "a1": ("I50.9", "E11.9"),  # 2021-06-01: cardiovascular + diabetes, admitted
    "a2": ("J11",),  # 2023-01-10: respiratory infection, discharged
    "a3": ("I50.9", "I10"),  # 2023-11-01: two cardiovascular diagnoses, died (the predicted encounter)
    "a4": ("J44.9",),  # 2024-01-01: after a3
    "b1": ("I21.9",),  # another patient, before a3
}
HISTORY = [
    ("a1", "pa", "2021-06-01", "admitted", {"spo2_pct": 91.0, "heart_rate_bpm": 101.0}),
    ("a2", "pa", "2023-01-10", "discharged", {"heart_rate_bpm": 88.0, "temperature_c": 38.2}),
    ("a3", "pa", "2023-11-01", "died", {"spo2_pct": 80.0, "systolic_mmhg": 85.0}),
    ("a4", "pa", "2024-01-01", "admitted", {"spo2_pct": 70.0}),
    ("b1", "pb", "2023-05-01", "died", {"spo2_pct": 60.0}),
]


def test_every_condition_is_in_exactly_one_group() -> None:
    grouped = [code for codes in CONDITION_GROUPS.values() for code in codes]
    assert sorted(grouped) == sorted(c.code for c in CONDITIONS)


def test_every_feature_has_a_label() -> None:
    assert set(FEATURE_LABELS) == set(FEATURE_NAMES)
    assert len(set(FEATURE_LABELS.values())) == len(FEATURE_NAMES)


def test_features_before_an_encounter_by_hand() -> None:
    features, labels = training_set(small_frame(HISTORY))
    table = encounter_table(small_frame(HISTORY))
    row = features.loc[table.index[table["encounter_id"] == "a3"][0]]
    assert labels[table.index[table["encounter_id"] == "a3"][0]] == 1
    # Last 12 months before 2023-11-01: a2 only. Ever: a1 and a2.
    assert row["respiratory_infection_12m"] == 1
    assert row["respiratory_infection_ever"] == 1
    assert row["cardiovascular_12m"] == 0
    assert row["cardiovascular_ever"] == 1
    assert row["diabetes_12m"] == 0
    assert row["diabetes_ever"] == 1
    assert row["visits_12m"] == 1
    assert row["prior_adverse"] == 1
    # Last vitals: SpO2 from a1 (a2 had none), heart rate and temperature from a2, systolic never taken.
    assert row["spo2_pct"] == 91.0
    assert row["spo2_pct_missing"] == 0
    assert row["heart_rate_bpm"] == 88.0
    assert row["temperature_c"] == 38.2
    assert row["systolic_mmhg"] == VITAL_DEFAULTS["systolic_mmhg"]
    assert row["systolic_mmhg_missing"] == 1
    assert row["age"] == 70
    assert row["sex_female"] == 1
    assert row["sex_male"] == 0
    first = features.loc[table.index[table["encounter_id"] == "a1"][0]]
    assert first[[f"{g}_ever" for g in CONDITION_GROUPS]].sum() == 0
    assert first["prior_adverse"] == 0
    assert all(first[v] == d and first[f"{v}_missing"] == 1 for v, d in VITAL_DEFAULTS.items())
    assert list(features.columns) == list(FEATURE_NAMES)


def test_features_have_no_leakage() -> None:
    """The features of encounter a3 ignore a3 itself, everything after it and other patients, whatever
    they hold; an encounter at the very same second does not count either."""
    table = encounter_table(small_frame(HISTORY))
    refs = pd.DataFrame(
        {"patient_id": ["pa"], "at": [pd.Timestamp("2023-11-01", tz="UTC")], "age": [70], "sex": ["female"]}
    )
    baseline = features_at(table, refs)
    changed = [
        ("a1", "pa", "2021-06-01", "admitted", {"spo2_pct": 91.0, "heart_rate_bpm": 101.0}),
        ("a2", "pa", "2023-01-10", "discharged", {"heart_rate_bpm": 88.0, "temperature_c": 38.2}),
        ("a3", "pa", "2023-11-01", "discharged", {"spo2_pct": 99.0, "systolic_mmhg": 200.0}),
        ("a4", "pa", "2023-11-02", "died", {"spo2_pct": 50.0, "systolic_mmhg": 50.0}),
        ("b1", "pb", "2023-10-31", "died", {"spo2_pct": 55.0, "systolic_mmhg": 60.0}),
    ]
    after = features_at(encounter_table(small_frame(changed)), refs)
    pd.testing.assert_frame_equal(baseline, after)
    without_future = features_at(encounter_table(small_frame(HISTORY[:2])), refs)
    pd.testing.assert_frame_equal(baseline, without_future)


def rows_of(frame: pd.DataFrame, patient_id: str) -> list[tuple[Any, ...]]:
    """A patient's encounter rows (``ROW_COLUMNS``) from a frame, as the database would give them."""
    return list(frame.loc[frame["patient_id"] == patient_id, list(ROW_COLUMNS)].itertuples(index=False))


def named(features: np.ndarray) -> dict[str, float]:
    """A feature vector by feature name."""
    return dict(zip(FEATURE_NAMES, features.tolist(), strict=True))


def test_patient_features_now_count_the_whole_history() -> None:
    now = pd.Timestamp("2024-06-01", tz="UTC").to_pydatetime()
    frame = small_frame(HISTORY)
    features = named(patient_features(patient_history(rows_of(frame, "pa")), now, 71, "female"))
    assert features["prior_adverse"] == 3
    assert features["visits_12m"] == 2
    assert features["spo2_pct"] == 70.0
    assert features["chronic_lung_12m"] == 1
    assert features["cardiovascular_ever"] == 3  # I50.9 of a1, I50.9 and I10 of a3; nothing of pb
    empty = named(patient_features(patient_history([]), now, 40, "male"))
    assert empty["sex_male"] == 1
    assert empty["visits_12m"] == 0
    assert empty["spo2_pct_missing"] == 1


def test_single_patient_features_equal_the_batch_features() -> None:
    """The per-request path (rows, no pandas) and the batch path (a frame) give the very same features,
    for every encounter of several patients (the moment of the encounter, one second later) and now."""
    frame = generated_frame(patients=25, seed=3)
    encounters = encounter_table(frame)
    refs = encounters.rename(columns={"started_at": "at"})[list(REFERENCE_COLUMNS)]
    later = refs.assign(at=refs["at"] + pd.Timedelta(seconds=1))
    now = refs.drop_duplicates("patient_id").assign(at=pd.Timestamp("2030-01-01", tz="UTC"))
    every = pd.concat([refs, later, now], ignore_index=True)
    batch = features_at(encounters, every)
    shuffled = frame.sample(frac=1.0, random_state=1)  # the database gives rows in any order
    histories = {
        patient: patient_history(rows_of(shuffled, patient)) for patient in frame["patient_id"].unique()
    }
    for index, ref in every.iterrows():
        single = patient_features(
            histories[ref["patient_id"]], ref["at"].to_pydatetime(), ref["age"], ref["sex"]
        )
        np.testing.assert_array_equal(single, batch.loc[index].to_numpy(), err_msg=str(ref.to_dict()))
    assert batch["visits_12m"].max() > 2  # not all empty
    assert batch["spo2_pct_missing"].min() == 0


@pytest.mark.parametrize(
    ("born", "moment"),
    [
        (date(1980, 5, 17), "2024-05-16T23:59:59+00:00"),
        (date(1980, 5, 17), "2024-05-17T00:00:00+00:00"),
        (date(1980, 5, 17), "2024-05-17T01:30:00+02:00"),  # still the 16th in UTC
        (date(2000, 2, 29), "2023-02-28T12:00:00+00:00"),
        (date(2000, 2, 29), "2023-03-01T00:00:00+00:00"),
        (date(2000, 2, 29), "2024-02-29T00:00:00+00:00"),
    ],
)
def test_age_at_matches_the_frames_ages(born: date, moment: str) -> None:
    at = datetime.fromisoformat(moment)
    expected = ages_at(pd.Series([born]), pd.Series([pd.Timestamp(at).tz_convert("UTC")]))[0]
    assert age_at(born, at) == expected


@pytest.mark.parametrize(
    ("mlp", "forest", "expected", "escalated", "level"),
    [
        (0.00, 0.00, 0.00, False, RiskLevel.LOW),
        (0.05, 0.14, 0.095, False, RiskLevel.LOW),
        (0.10, 0.10, 0.10, False, RiskLevel.MODERATE),  # bounds belong to the level above
        (0.20, 0.29, 0.245, False, RiskLevel.MODERATE),
        (0.25, 0.25, 0.25, False, RiskLevel.HIGH),
        (0.40, 0.59, 0.495, False, RiskLevel.HIGH),
        (0.50, 0.50, 0.50, False, RiskLevel.CRITICAL),
        (1.00, 1.00, 1.00, False, RiskLevel.CRITICAL),
        (0.05, 0.34, 0.195, False, RiskLevel.MODERATE),  # disagreement 0.29: averaged
        (0.05, 0.35, 0.35, True, RiskLevel.HIGH),  # disagreement 0.30: the higher one
        (0.60, 0.05, 0.60, True, RiskLevel.CRITICAL),
        (0.02, 0.45, 0.45, True, RiskLevel.HIGH),
    ],
)
def test_consensus_and_level_table(
    mlp: float, forest: float, expected: float, escalated: bool, level: RiskLevel
) -> None:
    probability, was_escalated = consensus(mlp, forest)
    assert probability == pytest.approx(expected)
    assert was_escalated is escalated
    assert level_for(probability) is level


@pytest.mark.parametrize("bad", [-0.01, 1.01])
def test_a_level_needs_a_probability(bad: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        level_for(bad)


def test_scores_match_hand_computed_values() -> None:
    labels = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    probabilities = np.array([0.1, 0.6, 0.2, 0.8, 0.4, 0.3, 0.9, 0.05])
    got = scores(labels, probabilities)
    assert got["accuracy"] == pytest.approx(6 / 8)  # predicted 0,1,0,1,0,0,1,0
    assert got["brier"] == pytest.approx(float(np.mean((probabilities - labels) ** 2)))
    assert got["roc_auc"] == pytest.approx(14 / 15)  # 14 of the 15 (adverse, other) pairs ordered right
    # Weighted recall = accuracy; weighted precision: class 0 4/5 (share 5/8), class 1 2/3 (share 3/8).
    assert got["recall"] == pytest.approx(6 / 8)
    assert got["precision"] == pytest.approx(5 / 8 * 4 / 5 + 3 / 8 * 2 / 3)


def test_training_needs_both_outcomes() -> None:
    features, labels = training_set(generated_frame(patients=30))
    labels = labels * 0
    labels.iloc[:5] = 1
    with pytest.raises(ValidationFailed, match="at least 10"):
        train(features, labels)


@pytest.fixture(scope="module")
def trained() -> Iterator[tuple[dict[str, Any], RiskModel, pd.DataFrame]]:
    """One model trained and stored (in this session's var dir, removed afterwards) on generated synthetic
    data."""
    frame = generated_frame()
    card = service.train_and_store(frame, organisation_id=None, synthetic=True)
    yield card, store.load(card["version"]), frame
    shutil.rmtree(store.models_root() / card["version"], ignore_errors=True)


def test_metrics_beat_chance_and_the_base_rate(
    trained: tuple[dict[str, Any], RiskModel, pd.DataFrame],
) -> None:
    card, _model, frame = trained
    _, labels = training_set(frame)
    base_rate = float(labels.mean())
    for name in ("mlp", "forest"):
        metrics = card["metrics"][name]
        assert metrics["test"]["roc_auc"] > 0.6, (name, metrics)
        assert metrics["cv_mean"]["roc_auc"] > 0.6, (name, metrics)
        assert metrics["test"]["brier"] < base_rate * (1 - base_rate), (
            "worse than always saying the base rate"
        )
        assert set(metrics) == {"test", "cv_mean", "cv_sd"}
        assert all(metrics["cv_sd"][m] >= 0 for m in metrics["cv_sd"])
    split = card["metrics"]["split"]
    assert split["test"] / (split["train"] + split["test"]) == pytest.approx(0.3, abs=0.01)


def test_stored_models_reproduce_their_test_metrics(
    trained: tuple[dict[str, Any], RiskModel, pd.DataFrame],
) -> None:
    """The stored models are the ones the card's test metrics describe: re-scoring the same 30 % gives the
    same ROC-AUC and Brier score."""
    from sklearn.model_selection import train_test_split

    card, model, frame = trained
    features, labels = training_set(frame)
    _, x_test, _, y_test = train_test_split(
        features.to_numpy(float), labels.to_numpy(int), test_size=0.3, stratify=labels, random_state=20240601
    )
    forest = np.array([forest_probability(model.forest, row.reshape(1, -1)) for row in x_test])
    assert roc_auc_score(y_test, forest) == pytest.approx(card["metrics"]["forest"]["test"]["roc_auc"])
    assert brier_score_loss(y_test, forest) == pytest.approx(card["metrics"]["forest"]["test"]["brier"])
    mlp = model.mlp.predict_proba(x_test)[:, 1]
    assert roc_auc_score(y_test, mlp) == pytest.approx(card["metrics"]["mlp"]["test"]["roc_auc"])


def test_model_card(trained: tuple[dict[str, Any], RiskModel, pd.DataFrame]) -> None:
    card, model, frame = trained
    assert store.is_version(card["version"])
    assert card["synthetic"] is True
    assert card["label"] == "demonstration only - not for clinical use"
    assert "never replaces clinical judgement" in card["intended_use"]
    assert card["features"] == list(FEATURE_NAMES) == list(model.feature_names)
    features, labels = training_set(frame)
    assert card["data"]["fingerprint"] == service.fingerprint(features, labels)
    assert re.fullmatch(r"[0-9a-f]{64}", card["data"]["fingerprint"])
    assert card["data"]["encounters"] == frame["encounter_id"].nunique() == len(labels)
    assert card["models"]["mlp"]["hidden_layers"] == [128, 64, 32]
    assert card["models"]["forest"] == {"trees": 100, "max_depth": 10, "class_weight": None}
    assert [lvl["level"] for lvl in card["consensus"]["levels"]] == ["low", "moderate", "high", "critical"]
    stored = json.loads((store.models_root() / card["version"] / "card.json").read_text())
    assert stored == json.loads(json.dumps(card, default=str))
    assert len(model.forest.estimators_) == 100
    assert model.forest.max_depth == 10


def test_fingerprint_changes_with_the_data() -> None:
    features, labels = training_set(generated_frame(patients=40))
    original = service.fingerprint(features, labels)
    assert service.fingerprint(features.copy(), labels.copy()) == original
    labels.iloc[0] = 1 - labels.iloc[0]
    assert service.fingerprint(features, labels) != original


def test_cap_rows_keeps_the_adverse_share() -> None:
    features, labels = training_set(generated_frame(patients=200))
    kept, kept_labels = cap_rows(features, labels, 300)
    assert len(kept) == len(kept_labels) == 300
    assert kept_labels.mean() == pytest.approx(labels.mean(), abs=0.01)
    assert cap_rows(features, labels, 10_000)[0] is features


def test_prediction_is_consistent_and_fast(trained: tuple[dict[str, Any], RiskModel, pd.DataFrame]) -> None:
    _, model, frame = trained
    features, _ = training_set(frame)
    rows = features.to_numpy(float)[:200]
    forest = model.forest.predict_proba(rows)[:, 1]
    walked = [forest_probability(model.forest, row.reshape(1, -1)) for row in rows]  # all trees at once
    np.testing.assert_allclose(walked, forest, rtol=0, atol=1e-12)
    for i in range(0, 200, 20):
        result = predict(model, features.iloc[i].to_dict())
        assert result.probabilities["forest"] == pytest.approx(forest[i])
        assert result.probabilities["mlp"] == pytest.approx(model.mlp.predict_proba(rows[i : i + 1])[0, 1])
        assert result.level is level_for(result.consensus)
    timings = []
    for i in range(200):
        started = time.perf_counter()
        predict(model, features.iloc[i].to_dict())
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.005, f"median {statistics.median(timings) * 1000:.2f} ms"


def test_drivers_name_what_sets_the_patient_apart(
    trained: tuple[dict[str, Any], RiskModel, pd.DataFrame],
) -> None:
    _, model, _ = trained
    typical = dict(zip(model.feature_names, model.means, strict=True))
    assert predict(model, typical).drivers == ()  # the average patient: nothing stands out
    old = typical | {"age": 94.0, "prior_adverse": 4.0}
    drivers = predict(model, old).drivers
    assert {d.feature for d in drivers} >= {"age", "prior_adverse"}
    assert all(d.direction == "above" and d.score > 0 for d in drivers)
    assert [d.score for d in drivers] == sorted((d.score for d in drivers), reverse=True)


def test_store_switches_the_active_version_without_restart(
    trained: tuple[dict[str, Any], RiskModel, pd.DataFrame], tmp_path: Path
) -> None:
    card, model, _ = trained
    first = store.save(model, card | {"version": "20260101-000000-aaaaaa"}, tmp_path)
    second = store.save(model, card | {"version": "20260102-000000-bbbbbb"}, tmp_path)
    assert [c["version"] for c in store.cards(tmp_path)] == [second, first]
    assert store.active_version(None, tmp_path) is None
    store.set_active(first, store.DEFAULT_SCOPE, tmp_path)
    org = "11111111-1111-1111-1111-111111111111"
    assert store.active_version(None, tmp_path) == first
    store.set_active(second, org, tmp_path)
    assert store.active_version(uuid.UUID(org), tmp_path) == second
    assert store.active_version(uuid.uuid4(), tmp_path) == first  # no choice of its own: the default
    # Another process switches the default: the next read sees it (no restart, no cache to clear).
    (tmp_path / "active").write_text(json.dumps({"default": second, org: first}))
    assert store.active_version(None, tmp_path) == second
    assert store.active_version(uuid.UUID(org), tmp_path) == first
    assert isinstance(store.load(second, tmp_path), RiskModel)
    with pytest.raises(ValueError, match="no model version"):
        store.set_active("20990101-000000-cccccc", store.DEFAULT_SCOPE, tmp_path)
    for bad in ("../active", "20260101-000000-aaaaaa/../x", ""):
        assert store.card(bad, tmp_path) is None
        with pytest.raises(KeyError):
            store.load(bad, tmp_path)
