"""The evaluation component: reports on scored tables, at the label holder, through run_local and the runner."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk

from engine.__main__ import main
from engine.errors import InvalidInput, InvalidParameters, NotNumeric, SingleClass
from engine.federation import run_local


def scored(n=400, seed=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1).round(2)  # rounded: many tied scores
    return pd.DataFrame({"id": [f"{i:05d}" for i in range(n)], "probability": p, "prediction": (p >= 0.5) * 1, "y": y})


def test_a_binary_report_matches_scikit_learn_and_has_chart_ready_curves():
    frame = scored()
    report = run_local("evaluation", {"max_curve_points": 50}, {"guest": {"data": frame}})["guest"]["metrics"]["data"]
    assert report["task"] == "binary" and report["n"] == 400
    assert report["auc"] == pytest.approx(sk.roc_auc_score(frame.y, frame.probability), abs=1e-12)
    fpr, tpr, _ = sk.roc_curve(frame.y, frame.probability)
    assert report["ks"] == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    assert report["average_precision"] == pytest.approx(sk.average_precision_score(frame.y, frame.probability))
    assert len(report["roc"]["fpr"]) <= 50 and report["roc"]["fpr"][0] == 0 and report["roc"]["tpr"][-1] == 1
    assert len(report["lift"]) == 10
    confusion = report["confusion"]
    tn, fp, fn, tp = sk.confusion_matrix(frame.y, frame.probability >= 0.5).ravel()
    assert (confusion["tn"], confusion["fp"], confusion["fn"], confusion["tp"]) == (tn, fp, fn, tp)
    json.dumps(report, allow_nan=False)


def test_two_tables_are_reported_side_by_side_under_their_input_names():
    out = run_local("evaluation", {}, {"guest": {"data": scored(seed=1), "compare": scored(seed=2)}})
    reports = out["guest"]["metrics"]
    assert set(reports) == {"data", "compare"} and reports["data"]["auc"] != reports["compare"]["auc"]


def test_a_regression_report_matches_scikit_learn():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=300)
    frame = pd.DataFrame({"id": range(300), "y": truth, "value": truth + rng.normal(scale=0.3, size=300)})
    report = run_local("evaluation", {"task": "regression", "score_column": "value"},
                       {"guest": {"data": frame}})["guest"]["metrics"]["data"]
    assert report["mse"] == pytest.approx(sk.mean_squared_error(frame.y, frame.value), abs=1e-12)
    assert report["mae"] == pytest.approx(sk.mean_absolute_error(frame.y, frame.value), abs=1e-12)
    assert report["r2"] == pytest.approx(sk.r2_score(frame.y, frame.value), abs=1e-12)


@pytest.mark.parametrize(
    "change, params, error, words",
    [
        (lambda f: f.drop(columns="y"), {}, InvalidInput, "no column 'y'"),
        (lambda f: f.assign(y=1), {}, SingleClass, "single class"),
        (lambda f: f.assign(y=f.y.replace(0, 2)), {}, NotNumeric, "0/1 labels"),
        (lambda f: f.assign(probability=f.probability * 10), {}, InvalidInput, "outside [0, 1]"),
        (lambda f: f.assign(probability=f.probability.where(f.index != 5)), {}, InvalidInput, "missing scores"),
        (lambda f: f.assign(probability="high"), {}, NotNumeric, "must hold numbers"),
    ],
)
def test_bad_tables_are_refused_with_a_message_naming_the_column(change, params, error, words):
    with pytest.raises(error) as caught:
        run_local("evaluation", params, {"guest": {"data": change(scored())}})
    assert words in str(caught.value)


def test_unknown_parameters_are_refused_by_name():
    with pytest.raises(InvalidParameters) as caught:
        run_local("evaluation", {"treshold": 0.4}, {"guest": {"data": scored()}})
    assert caught.value.param == "treshold"


def test_the_runner_evaluates_a_predictions_file_and_a_comparison(tmp_path):
    scored(seed=5).to_csv(tmp_path / "valid.csv", index=False)
    scored(seed=6).to_csv(tmp_path / "train.csv", index=False)
    code = main(["run", "evaluation", "--data", f"guest={tmp_path / 'valid.csv'}",
                 f"guest.compare={tmp_path / 'train.csv'}", "--params", '{"threshold": 0.4}', "--out", str(tmp_path / "out")])
    assert code == 0
    reports = json.loads((tmp_path / "out" / "guest" / "metrics.json").read_text())
    assert reports["data"]["confusion"]["threshold"] == 0.4 and "auc" in reports["compare"]
