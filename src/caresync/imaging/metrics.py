"""Test-set metrics for a trained classifier, as plain JSON-ready numbers (they go into the model card).

Multi-class: accuracy, per-class sensitivity / specificity / one-vs-rest ROC-AUC, macro AUC, the confusion
matrix (rows: true label, columns: predicted) and the majority-class baseline, so "well above chance" is
visible. Multi-label: per-label accuracy at 0.5 (mean), subset accuracy, the same per-label figures and
baseline. A class whose ROC-AUC cannot be computed (absent from the test split, or the only one present)
is left out of the macro AUC and named in ``auc_skipped``. Also the expected calibration error (ECE).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score


def _ratio(numerator: float, denominator: float) -> float | None:
    return round(float(numerator) / float(denominator), 4) if denominator else None


def _binary(truth: np.ndarray, predicted: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    """Sensitivity, specificity, ROC-AUC and support of one class (``truth``/``predicted`` boolean)."""
    tp = int(np.sum(truth & predicted))
    tn = int(np.sum(~truth & ~predicted))
    positives, negatives = int(truth.sum()), int((~truth).sum())
    auc = None
    if positives and negatives:
        auc = round(float(roc_auc_score(truth.astype(int), score)), 4)
    return {
        "sensitivity": _ratio(tp, positives),
        "specificity": _ratio(tn, negatives),
        "auc": auc,
        "support": positives,
    }


def _summarise_auc(per_class: dict[str, dict[str, Any]]) -> dict[str, Any]:
    aucs = [figures["auc"] for figures in per_class.values() if figures["auc"] is not None]
    skipped = [label for label, figures in per_class.items() if figures["auc"] is None]
    return {
        "macro_auc": round(float(np.mean(aucs)), 4) if aucs else None,
        "auc_skipped": skipped,
        "auc_note": (
            f"ROC-AUC not computed for {', '.join(skipped)}: the test split lacks positives or negatives."
            if skipped
            else None
        ),
    }


def multiclass_metrics(
    labels: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...]
) -> dict[str, Any]:
    """Metrics of a multi-class classifier: ``labels`` (N,) class indexes, ``probabilities`` (N, K)."""
    count = len(names)
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, dtype=int)
    confusion = np.zeros((count, count), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {
        name: _binary(labels == index, predicted == index, probabilities[:, index])
        for index, name in enumerate(names)
    }
    support = np.bincount(labels, minlength=count)
    majority = int(support.argmax()) if len(labels) else 0
    return {
        "accuracy": _ratio(int(np.trace(confusion)), len(labels)),
        "per_class": per_class,
        **_summarise_auc(per_class),
        "confusion": confusion.tolist(),
        "n_test": len(labels),
        "baseline": {
            "chance_accuracy": round(1.0 / count, 4),
            "majority_label": names[majority],
            "majority_accuracy": _ratio(int(support[majority]), len(labels)),
        },
    }


def multilabel_metrics(
    labels: np.ndarray, probabilities: np.ndarray, names: tuple[str, ...]
) -> dict[str, Any]:
    """Metrics of a multi-label classifier: ``labels`` (N, L) 0/1 flags, ``probabilities`` (N, L)."""
    truth = labels.astype(bool)
    predicted = probabilities >= 0.5
    per_class = {
        name: _binary(truth[:, index], predicted[:, index], probabilities[:, index])
        for index, name in enumerate(names)
    }
    n = len(labels)
    majority = truth.mean(axis=0) >= 0.5 if n else np.zeros(len(names), dtype=bool)
    return {
        "accuracy": _ratio(float(np.sum(truth == predicted)), truth.size),
        "subset_accuracy": _ratio(int(np.all(truth == predicted, axis=1).sum()), n),
        "per_class": per_class,
        **_summarise_auc(per_class),
        "confusion": None,  # a matrix needs exclusive classes; see per_class sensitivity/specificity
        "n_test": n,
        "baseline": {
            "chance_accuracy": 0.5,
            "majority_accuracy": _ratio(float(np.sum(truth == majority)), truth.size),
            "majority_subset_accuracy": _ratio(int(np.all(truth == majority, axis=1).sum()), n),
        },
    }


def expected_calibration_error(
    labels: np.ndarray, probabilities: np.ndarray, *, multilabel: bool, bins: int = 15
) -> float | None:
    """ECE: the mean gap between confidence and accuracy over equal-width confidence bins.

    Multi-class uses the top class's probability and whether it was right; multi-label treats every
    (image, label) probability as a binary forecast of that flag.
    """
    if multilabel:
        confidence = probabilities.ravel()
        correct = labels.astype(float).ravel()
    else:
        confidence = probabilities.max(axis=1)
        correct = (probabilities.argmax(axis=1) == labels).astype(float)
    if not confidence.size:
        return None
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for index in range(bins):
        members = which == index
        if members.any():
            error += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return round(float(error), 4)
