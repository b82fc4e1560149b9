"""The two risk models, how they are evaluated, their consensus and the pure inference function.

**Neural network**: scikit-learn ``MLPClassifier`` with hidden layers 128-64-32 (ReLU, Adam) after a
``StandardScaler``. scikit-learn has no dropout layer; the "dropout-like regularisation" is an L2 penalty on
the weights (``alpha`` = :data:`MLP_ALPHA`) plus early stopping (training stops when the score on a held-out
15 % of the training rows has not improved for 10 epochs), the two regularisers the library offers.

**Random forest**: 100 trees of depth at most 10, fixed ``random_state``. No ``class_weight``: re-weighting
the classes would push every probability up and spoil calibration (the Brier score) and the consensus
thresholds, which are read as probabilities; the rarity of adverse outcomes is handled by the thresholds.

**Evaluation**: a stratified 70/30 split; 5-fold stratified cross-validation on the 70 % (mean and standard
deviation per metric); then each model is fitted on the 70 % (the stored model) and scored on the 30 %:
accuracy, precision, recall and F1 (weighted over the two classes, threshold 0.5), ROC-AUC and the Brier
score (mean squared error of the probability; lower is better).

**Consensus** (:func:`consensus`): the mean of the two probabilities; when they disagree by
:data:`DISAGREEMENT` or more the higher one is taken instead (escalation: a patient one model finds at risk
is not averaged away). **Levels** (:data:`LEVEL_THRESHOLDS`): consensus probability below 0.10 low, below
0.25 moderate, below 0.50 high, otherwise critical.

**Drivers** (:func:`drivers`): for each feature, the forest's global importance times how far the patient's
value lies from the training mean in standard deviations (``importance * |z|``); the top
:data:`TOP_DRIVERS` with a positive score, each with its direction (above or below the average patient).

**Inference** (:func:`predict`) runs one row through both models with plain NumPy (the same arithmetic as
``predict_proba``, checked against it in the tests; the forest's trees walked all at once) in about 0.5 ms;
``predict_proba`` itself costs ~15 ms a row, mostly input validation and the forest's thread-pool set-up.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    f1_score,
    make_scorer,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, cross_validate, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from caresync.analytics.risk.features import FEATURE_LABELS
from caresync.analytics.rules import RiskLevel
from caresync.core.errors import ValidationFailed

SEED = 20240601
HIDDEN_LAYERS = (128, 64, 32)
MLP_ALPHA = 1e-3  # L2 penalty
TREES, MAX_DEPTH = 100, 10
TEST_SIZE = 0.3
CV_FOLDS = 5
MIN_PER_CLASS = 10  # adverse and non-adverse encounters needed to train (stratified 5-fold CV on the 70 %)
DISAGREEMENT = 0.30
# (upper bound exclusive, level): the first row whose bound exceeds the consensus probability.
LEVEL_THRESHOLDS: tuple[tuple[float, RiskLevel], ...] = (
    (0.10, RiskLevel.LOW),
    (0.25, RiskLevel.MODERATE),
    (0.50, RiskLevel.HIGH),
    (float("inf"), RiskLevel.CRITICAL),
)
TOP_DRIVERS = 5
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier")
_WEIGHTED = {"average": "weighted", "zero_division": 0}  # a class never predicted scores 0, quietly
_CV_SCORING = {
    "accuracy": "accuracy",
    "precision": make_scorer(precision_score, **_WEIGHTED),
    "recall": make_scorer(recall_score, **_WEIGHTED),
    "f1": make_scorer(f1_score, **_WEIGHTED),
    "roc_auc": "roc_auc",
    "brier": "neg_brier_score",
}
MODEL_NAMES = ("mlp", "forest")
Progress = Callable[[int, str], None]


@dataclass
class RiskModel:
    """The two fitted models and what inference needs besides them (pickled with joblib by the store)."""

    mlp: Pipeline
    forest: RandomForestClassifier
    feature_names: tuple[str, ...]
    means: np.ndarray  # training means and standard deviations (the MLP's scaler), for the drivers
    scales: np.ndarray
    importances: np.ndarray  # the forest's impurity importances, in feature order


@dataclass(frozen=True)
class Driver:
    """A feature that pushed this patient's risk: its value, how unusual it is and how much it matters."""

    feature: str
    label: str
    value: float
    z: float  # standard deviations from the training mean (sign: above or below)
    importance: float
    score: float

    @property
    def direction(self) -> str:
        """``above`` or ``below`` the average patient."""
        return "above" if self.z > 0 else "below"


@dataclass(frozen=True)
class RiskResult:
    """One patient's risk: the level, the consensus probability, each model's probability and the
    drivers."""

    level: RiskLevel
    consensus: float
    probabilities: Mapping[str, float]  # "mlp", "forest"
    escalated: bool  # the models disagreed by DISAGREEMENT or more: the higher probability was taken
    drivers: tuple[Driver, ...]


def build_mlp(seed: int = SEED) -> Pipeline:
    """The neural network (scaled inputs; L2 + early stopping as its dropout-like regularisation)."""
    network = MLPClassifier(
        hidden_layer_sizes=HIDDEN_LAYERS,
        alpha=MLP_ALPHA,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=10,
        max_iter=300,
        random_state=seed,
    )
    return Pipeline([("scale", StandardScaler()), ("mlp", network)])


def build_forest(seed: int = SEED) -> RandomForestClassifier:
    """The random forest (100 trees, depth at most 10)."""
    return RandomForestClassifier(n_estimators=TREES, max_depth=MAX_DEPTH, random_state=seed, n_jobs=1)


def check_trainable(labels: pd.Series) -> None:
    """Raise ValidationFailed unless both outcomes occur often enough to train and cross-validate."""
    adverse = int(labels.sum())
    others = len(labels) - adverse
    if min(adverse, others) < MIN_PER_CLASS:
        raise ValidationFailed(
            f"Training needs at least {MIN_PER_CLASS} encounters ending in admission or death and "
            f"{MIN_PER_CLASS} ending otherwise; found {adverse} and {others}. Record more encounters first."
        )


def cap_rows(
    features: pd.DataFrame, labels: pd.Series, limit: int, seed: int = SEED
) -> tuple[pd.DataFrame, pd.Series]:
    """At most ``limit`` rows, a stratified random sample when there are more (keeps training fast)."""
    if len(labels) <= limit:
        return features, labels
    kept, _, kept_labels, _ = train_test_split(
        features, labels, train_size=limit, stratify=labels, random_state=seed
    )
    return kept, kept_labels


def scores(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """The six metrics of probabilities against the true labels (classes at a 0.5 threshold)."""
    predicted = (probabilities >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, **_WEIGHTED)),
        "recall": float(recall_score(labels, predicted, **_WEIGHTED)),
        "f1": float(f1_score(labels, predicted, **_WEIGHTED)),
        "roc_auc": float(roc_auc_score(labels, probabilities)),
        "brier": float(brier_score_loss(labels, probabilities)),
    }


def train(
    features: pd.DataFrame,
    labels: pd.Series,
    *,
    seed: int = SEED,
    cv_folds: int = CV_FOLDS,
    progress: Progress | None = None,
) -> tuple[RiskModel, dict[str, Any]]:
    """Split, cross-validate, fit and score both models. Returns the fitted :class:`RiskModel` and its
    metrics: ``{"mlp"|"forest": {"test": {...}, "cv_mean": {...}, "cv_sd": {...}}, "rows": {...}}``."""
    check_trainable(labels)
    report = progress or (lambda _percent, _message: None)
    x = features.to_numpy(dtype=float)
    y = labels.to_numpy(dtype=int)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_SIZE, stratify=y, random_state=seed
    )
    folds = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    builders = {"mlp": build_mlp, "forest": build_forest}
    fitted: dict[str, Any] = {}
    metrics: dict[str, Any] = {
        "rows": {"train": len(y_train), "test": len(y_test), "adverse_rate": round(float(y.mean()), 4)}
    }
    # One BLAS thread: the matrices are small and thread hand-offs cost more than they save (a 2000-row
    # fit took 2 s with two threads on a busy two-core machine, 0.4 s with one).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for step, (name, build) in enumerate(builders.items()):
            report(10 + 40 * step, f"Cross-validating the {'neural network' if name == 'mlp' else 'forest'}")
            cv = cross_validate(build(seed), x_train, y_train, cv=folds, scoring=_CV_SCORING)
            runs = {metric: cv[f"test_{metric}"] * (-1 if metric == "brier" else 1) for metric in METRICS}
            report(30 + 40 * step, f"Fitting the {'neural network' if name == 'mlp' else 'forest'}")
            model = build(seed).fit(x_train, y_train)
            fitted[name] = model
            metrics[name] = {
                "test": scores(y_test, model.predict_proba(x_test)[:, 1]),
                "cv_mean": {metric: float(np.mean(values)) for metric, values in runs.items()},
                "cv_sd": {metric: float(np.std(values, ddof=1)) for metric, values in runs.items()},
            }
    scaler: StandardScaler = fitted["mlp"].named_steps["scale"]
    risk_model = RiskModel(
        mlp=fitted["mlp"],
        forest=fitted["forest"],
        feature_names=tuple(features.columns),
        means=np.asarray(scaler.mean_, dtype=float),
        scales=np.asarray(scaler.scale_, dtype=float),
        importances=np.asarray(fitted["forest"].feature_importances_, dtype=float),
    )
    report(95, "Models trained")
    return risk_model, metrics


def consensus(mlp: float, forest: float) -> tuple[float, bool]:
    """The consensus probability of the two models and whether it was escalated (see the module doc)."""
    if abs(mlp - forest) >= DISAGREEMENT:
        return max(mlp, forest), True
    return (mlp + forest) / 2, False


def level_for(probability: float) -> RiskLevel:
    """The risk level of a consensus probability (:data:`LEVEL_THRESHOLDS`)."""
    if not 0.0 <= probability <= 1.0:
        raise ValueError("a probability lies between 0 and 1")
    return next(level for bound, level in LEVEL_THRESHOLDS if probability < bound)


def drivers(model: RiskModel, row: np.ndarray, top: int = TOP_DRIVERS) -> tuple[Driver, ...]:
    """The features that most set this patient apart, weighted by the forest's importances."""
    z = (row - model.means) / np.where(model.scales > 0, model.scales, 1.0)
    weight = model.importances * np.abs(z)
    order = np.argsort(-weight, kind="stable")[:top]
    return tuple(
        Driver(
            feature=model.feature_names[i],
            label=FEATURE_LABELS.get(model.feature_names[i], model.feature_names[i]),
            value=float(row[i]),
            z=round(float(z[i]), 3),
            importance=round(float(model.importances[i]), 4),
            score=round(float(weight[i]), 4),
        )
        for i in order
        if weight[i] > 0
    )


def mlp_probability(pipeline: Pipeline, batch: np.ndarray) -> float:
    """The network's probability of an adverse outcome for one row: the forward pass ``predict_proba``
    runs (scaling, ReLU hidden layers, logistic output), without its input validation (~0.6 ms a call
    against ~0.05 ms for the arithmetic)."""
    scaler: StandardScaler = pipeline.named_steps["scale"]
    network: MLPClassifier = pipeline.named_steps["mlp"]
    if network.activation != "relu" or network.out_activation_ != "logistic":
        raise ValueError("expected a ReLU network with a logistic output")
    values = (np.asarray(batch, dtype=float) - scaler.mean_) / scaler.scale_
    last = len(network.coefs_) - 1
    for index, (weights, bias) in enumerate(zip(network.coefs_, network.intercepts_, strict=True)):
        values = values @ weights + bias
        if index < last:
            values = np.maximum(values, 0.0)
    positive = 1.0 / (1.0 + np.exp(-float(values[0, 0])))
    return positive if list(network.classes_).index(1) == 1 else 1.0 - positive


@dataclass(frozen=True)
class FlatForest:
    """A fitted forest's trees as one set of node arrays, to walk every tree at once with NumPy: node ``i``
    splits on ``features[i]`` at ``thresholds[i]`` (left when the value is at most the threshold, as
    scikit-learn does on float32 inputs) into ``left[i]`` and ``right[i]``; a leaf points to itself and
    holds ``positive[i]``, the share of adverse training rows. ``roots`` are the trees' first nodes."""

    roots: np.ndarray
    features: np.ndarray
    thresholds: np.ndarray
    left: np.ndarray
    right: np.ndarray
    positive: np.ndarray
    depth: int

    @classmethod
    def of(cls, forest: RandomForestClassifier) -> FlatForest:
        """The flat form of a fitted forest."""
        column = list(forest.classes_).index(1)
        roots, features, thresholds, left, right, positive = [], [], [], [], [], []
        start = 0
        for estimator in forest.estimators_:
            tree = estimator.tree_
            nodes = np.arange(tree.node_count)
            leaf = tree.children_left == -1
            roots.append(start)
            features.append(np.where(leaf, 0, tree.feature))
            thresholds.append(tree.threshold)
            left.append(start + np.where(leaf, nodes, tree.children_left))
            right.append(start + np.where(leaf, nodes, tree.children_right))
            counts = tree.value[:, 0, :]
            positive.append(counts[:, column] / counts.sum(axis=1))
            start += tree.node_count
        return cls(
            roots=np.array(roots),
            features=np.concatenate(features),
            thresholds=np.concatenate(thresholds),
            left=np.concatenate(left),
            right=np.concatenate(right),
            positive=np.concatenate(positive),
            depth=max(estimator.tree_.max_depth for estimator in forest.estimators_),
        )


_flat_forests: weakref.WeakKeyDictionary[RandomForestClassifier, FlatForest] = weakref.WeakKeyDictionary()


def forest_probability(forest: RandomForestClassifier, batch: np.ndarray) -> float:
    """The forest's probability of an adverse outcome for one row: the mean of the trees' leaf
    probabilities, exactly what ``predict_proba`` computes, with every tree walked at once over the
    :class:`FlatForest` (made once per forest): ~0.1 ms, where ``predict_proba`` spends ~13 ms a call
    setting up its thread pool and a loop over the trees ~1 ms."""
    flat = _flat_forests.get(forest)
    if flat is None:
        flat = _flat_forests[forest] = FlatForest.of(forest)
    row = np.ascontiguousarray(batch, dtype=np.float32)[0]
    node = flat.roots
    for _ in range(flat.depth):
        node = np.where(row[flat.features[node]] <= flat.thresholds[node], flat.left[node], flat.right[node])
    return float(flat.positive[node].mean())


def predict(model: RiskModel, features: Mapping[str, float] | Sequence[float]) -> RiskResult:
    """A patient's risk from their features (a mapping by name, or values in ``model.feature_names``
    order): pure and fast (a single row through both models)."""
    if isinstance(features, Mapping):
        row = np.array([float(features[name]) for name in model.feature_names])
    else:
        row = np.asarray(features, dtype=float)
    batch = row.reshape(1, -1)
    p_mlp = mlp_probability(model.mlp, batch)
    p_forest = forest_probability(model.forest, batch)
    probability, escalated = consensus(p_mlp, p_forest)
    return RiskResult(
        level=level_for(probability),
        consensus=probability,
        probabilities={"mlp": p_mlp, "forest": p_forest},
        escalated=escalated,
        drivers=drivers(model, row),
    )
