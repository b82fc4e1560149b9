"""Forecast accuracy on a test window: MAE, MSE, RMSE, MAPE and MASE, interval coverage, and the plain
sentence saying which of two models is better.

- MAPE is the mean of ``|actual - predicted| / actual`` in percent over the periods whose actual is not zero
  (a zero actual makes the ratio undefined); ``None`` when every actual is zero.
- MASE divides the test MAE by the in-sample MAE of the seasonal-naive forecast on the training window
  (``mean |y[t] - y[t - m]|``, Hyndman & Koehler 2006); below 1 means better than that naive forecast did
  in-sample. ``None`` when the training window is one season or shorter, or the scale is zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Values = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class Accuracy:
    """Errors of one model's forecast on the test window."""

    mae: float
    mse: float
    rmse: float
    mape: float | None
    mase: float | None


def _arrays(actual: Values, predicted: Values) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)
    if a.shape != p.shape or a.size == 0:
        raise ValueError("actual and predicted must be non-empty and of the same length")
    return a, p


def mape(actual: Values, predicted: Values) -> float | None:
    """Mean absolute percentage error over the non-zero actuals (``None`` if all are zero)."""
    a, p = _arrays(actual, predicted)
    nonzero = a != 0
    if not nonzero.any():
        return None
    return float(np.mean(np.abs((a[nonzero] - p[nonzero]) / a[nonzero])) * 100)


def seasonal_naive_scale(train: Values, period: int) -> float | None:
    """The in-sample MAE of the seasonal-naive forecast, ``mean |y[t] - y[t - period]|`` (MASE's scale)."""
    y = np.asarray(train, dtype=float)
    if y.size <= period:
        return None
    scale = float(np.mean(np.abs(y[period:] - y[:-period])))
    return scale if scale > 0 else None


def accuracy(actual: Values, predicted: Values, *, scale: float | None) -> Accuracy:
    """MAE, MSE, RMSE, MAPE and MASE (``scale``: :func:`seasonal_naive_scale` of the training window)."""
    a, p = _arrays(actual, predicted)
    errors = a - p
    mae = float(np.mean(np.abs(errors)))
    mse = float(np.mean(errors**2))
    return Accuracy(
        mae=mae,
        mse=mse,
        rmse=float(np.sqrt(mse)),
        mape=mape(a, p),
        mase=mae / scale if scale else None,
    )


def coverage(actual: Values, lower: Values, upper: Values) -> float:
    """The share of actual values inside ``[lower, upper]`` (how honest a prediction interval was)."""
    a = np.asarray(actual, dtype=float)
    inside = (a >= np.asarray(lower, dtype=float)) & (a <= np.asarray(upper, dtype=float))
    return float(np.mean(inside))


def compare(model: Accuracy, baseline: Accuracy, *, model_name: str, baseline_name: str) -> tuple[str, str]:
    """Which is better and the sentence saying so, on MASE (on MAE when MASE is undefined): returns
    ``(winner name or "tie", sentence)``, e.g. ``"SARIMA beats seasonal naive on MASE 0.71 vs 1.00"``."""
    measure, ours, theirs = "MASE", model.mase, baseline.mase
    if ours is None or theirs is None:
        measure, ours, theirs = "MAE", model.mae, baseline.mae
    if round(ours, 2) == round(theirs, 2):
        return "tie", f"{model_name} and {baseline_name} tie on {measure} {ours:.2f} vs {theirs:.2f}"
    if ours < theirs:
        return model_name, f"{model_name} beats {baseline_name} on {measure} {ours:.2f} vs {theirs:.2f}"
    return baseline_name, f"{baseline_name} beats {model_name} on {measure} {theirs:.2f} vs {ours:.2f}"
