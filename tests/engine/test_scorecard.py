"""Scorecard points from logistic-regression probabilities (engine.ml.scorecard and the scorecard component)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.components.hetero_lr import scorecard
from engine.errors import InvalidInput, InvalidParameters
from engine.federation import run_local
from engine.ml import scorecard as sc


def test_the_base_odds_score_the_base_score_and_doubling_the_odds_adds_pdo_points():
    scale = sc.scaling(600, 50, 20)
    # Label 1 is "bad": odds good:bad = (1 - p) / p.
    base, doubled, halved = sc.points([1 / 51, 1 / 101, 1 / 26], scale)
    assert base == pytest.approx(600, abs=1e-9)
    assert doubled == pytest.approx(620, abs=1e-9) and halved == pytest.approx(580, abs=1e-9)
    assert scale.factor == pytest.approx(20 / math.log(2)) and scale.offset == pytest.approx(600 - scale.factor * math.log(50))


def test_points_from_the_logit_equal_points_from_the_probability_and_invert():
    scale = sc.scaling(500, 20, 40)
    u = np.linspace(-6, 6, 25)
    p = np.exp(-np.logaddexp(0, -u))
    assert np.allclose(sc.points(p, scale), sc.points_from_logit(u, scale), atol=1e-9)
    assert np.allclose(sc.probability_from_points(sc.points(p, scale), scale), p, atol=1e-12)
    # Riskier rows get fewer points.
    assert np.all(np.diff(sc.points(p, scale)) < 0)


def test_when_label_1_is_good_higher_probabilities_get_more_points():
    scale = sc.scaling(600, 50, 20, positive="good")
    assert sc.points([50 / 51], scale)[0] == pytest.approx(600, abs=1e-9)
    assert np.all(np.diff(sc.points([0.2, 0.5, 0.9], scale)) > 0)


def test_certain_probabilities_get_finite_points_and_bounds_and_rounding_apply():
    scale = sc.scaling(600, 50, 20)
    extreme = sc.points([0.0, 1.0], scale)
    assert np.all(np.isfinite(extreme)) and extreme[0] > extreme[1]
    clipped = sc.points([0.0, 0.5, 1.0], scale, min_points=300, max_points=850, decimals=0)
    assert clipped.tolist() == [850.0, round(float(scale.offset)), 300.0]


@pytest.mark.parametrize("kwargs, param", [({"base_odds": 0}, "base_odds"), ({"pdo": -1}, "pdo"),
                                           ({"positive": "ugly"}, "positive")])
def test_bad_scalings_name_the_parameter(kwargs, param):
    with pytest.raises(InvalidParameters) as info:
        sc.scaling(**{"base_score": 600, "base_odds": 50, "pdo": 20, **kwargs})
    assert info.value.param == param


def test_probabilities_outside_0_1_are_refused():
    with pytest.raises(InvalidInput, match=r"\[0, 1\]"):
        sc.points([0.5, 1.2], sc.scaling())


def test_the_scorecard_component_adds_a_points_column_at_the_guest():
    data = pd.DataFrame({"id": ["007", "008", "009"], "probability": [1 / 51, 0.5, 0.9], "y": [0, 1, 1]})
    out = run_local(scorecard, {"base_score": 600, "base_odds": 50, "pdo": 20, "decimals": 2}, {"guest": {"data": data}})
    table = out["guest"]["data"]
    assert table["id"].tolist() == ["007", "008", "009"] and list(table.columns) == ["id", "probability", "y", "points"]
    assert table["points"].iloc[0] == 600.0 and table["points"].is_monotonic_decreasing
    metrics = out["guest"]["metrics"]
    assert metrics["rows"] == 3 and metrics["max_points"] == 600.0 and metrics["pdo"] == 20
    assert [r["name"] for r in scorecard.describe()["roles"]] == ["guest"]


def test_the_scorecard_component_names_a_missing_or_bad_probability_column():
    data = pd.DataFrame({"id": ["1"], "score": [0.5]})
    with pytest.raises(InvalidInput, match="'probability'"):
        run_local(scorecard, {}, {"guest": {"data": data}})
    with pytest.raises(InvalidInput, match=r"outside \[0, 1\]"):
        run_local(scorecard, {"probability_column": "score"}, {"guest": {"data": data.assign(score=[3.0])}})
    with pytest.raises(InvalidParameters, match="min_points"):
        scorecard.validate_params({"min_points": 900, "max_points": 300})
