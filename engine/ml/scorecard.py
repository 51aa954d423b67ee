"""Scorecards: turning a logistic model's probabilities into points.

The usual credit-scoring scaling. ``p`` is the model's probability of the
positive class (label 1), which for a credit model is the *bad* outcome
(default); the odds are good to bad, ``odds = (1 - p) / p``. Then ::

    factor = pdo / ln 2
    offset = base_score - factor * ln(base_odds)
    points = offset + factor * ln(odds) = offset - factor * logit(p)

so a row whose odds equal ``base_odds`` scores ``base_score``, and every
doubling of the odds adds ``pdo`` points ("points to double the odds").
Higher points mean lower risk. With ``positive="good"`` (label 1 is the good
outcome) the odds are ``p / (1 - p)`` instead, and higher points still mean
a better row.

For a logistic regression ``logit(p) = u`` is the model's score, so points
are linear in the features: ``points = offset - factor * (b + sum w_j x_j)``;
:func:`points_from_logit` works from ``u`` directly, without the loss of
precision of going through ``p`` near 0 or 1. From probabilities,
:func:`points` clips ``p`` to ``[eps, 1 - eps]`` (default ``1e-15``) so
that a probability of exactly 0 or 1 (float rounding of a very large score)
still gets finite points; ``min_points``/``max_points`` clip the result,
``decimals`` rounds it (half to even).

Example: base score 600 at odds 50:1, 20 points to double the odds: a row
with ``p = 1/51`` scores 600, ``p = 1/101`` scores ~620, ``p = 1/26`` ~580.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import InvalidInput, InvalidParameters

__all__ = ["Scaling", "points", "points_from_logit", "probability_from_points", "scaling"]


@dataclass(frozen=True)
class Scaling:
    """``points = offset + sign * factor * ln(p / (1 - p))`` with sign -1 for ``positive="bad"``."""

    base_score: float
    base_odds: float
    pdo: float
    positive: str
    offset: float
    factor: float

    @property
    def sign(self) -> float:
        return -1.0 if self.positive == "bad" else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo,
                "positive": self.positive, "offset": self.offset, "factor": self.factor}


def scaling(base_score: float = 600.0, base_odds: float = 50.0, pdo: float = 20.0, positive: str = "bad") -> Scaling:
    """The offset and factor for a base score at base odds and points to double the odds."""
    if not (math.isfinite(base_odds) and base_odds > 0):
        raise InvalidParameters("base_odds must be a positive number", param="base_odds")
    if not (math.isfinite(pdo) and pdo > 0):
        raise InvalidParameters("pdo (points to double the odds) must be positive", param="pdo")
    if not math.isfinite(base_score):
        raise InvalidParameters("base_score must be a finite number", param="base_score")
    if positive not in ("bad", "good"):
        raise InvalidParameters("positive must be 'bad' or 'good'", param="positive")
    factor = pdo / math.log(2.0)
    offset = base_score - factor * math.log(base_odds)
    return Scaling(float(base_score), float(base_odds), float(pdo), positive, offset, factor)


def _finish(values: np.ndarray, min_points: float | None, max_points: float | None,
            decimals: int | None) -> np.ndarray:
    if min_points is not None and max_points is not None and min_points > max_points:
        raise InvalidParameters("min_points is above max_points", param="min_points")
    if min_points is not None or max_points is not None:
        values = np.clip(values, min_points, max_points)
    if decimals is not None:
        values = np.round(values, decimals)
    return values


def points_from_logit(u: Any, scale: Scaling, *, min_points: float | None = None, max_points: float | None = None,
                      decimals: int | None = None) -> np.ndarray:
    """Points from the model's scores ``u = logit(p)``."""
    u = np.asarray(u, dtype=np.float64)
    if not np.isfinite(u).all():
        raise InvalidInput("scores must be finite numbers")
    return _finish(scale.offset + scale.sign * scale.factor * u, min_points, max_points, decimals)


def points(p: Any, scale: Scaling, *, eps: float = 1e-15, min_points: float | None = None,
           max_points: float | None = None, decimals: int | None = None) -> np.ndarray:
    """Points from probabilities of the positive class (clipped to ``[eps, 1 - eps]``)."""
    p = np.asarray(p, dtype=np.float64)
    if p.size and not (np.isfinite(p).all() and p.min() >= 0.0 and p.max() <= 1.0):
        raise InvalidInput("probabilities must lie in [0, 1]")
    if not 0 < eps < 0.5:
        raise InvalidParameters("eps must lie in (0, 0.5)", param="eps")
    p = np.clip(p, eps, 1.0 - eps)
    logit = np.log(p) - np.log1p(-p)
    return points_from_logit(logit, scale, min_points=min_points, max_points=max_points, decimals=decimals)


def probability_from_points(values: Any, scale: Scaling) -> np.ndarray:
    """The probability of the positive class that scores ``values`` (inverse of :func:`points`)."""
    logit = (np.asarray(values, dtype=np.float64) - scale.offset) / (scale.sign * scale.factor)
    return np.exp(-np.logaddexp(0.0, -logit))
