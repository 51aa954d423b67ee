"""The ``evaluation`` component: how good are a model's scores, at the label holder.

Input: a table of scored rows with the true label beside each score, such as
the ``predictions`` output of ``hetero_lr_predict`` or
``hetero_secureboost_predict`` run on labelled rows. Output: one JSON-ready
report (:mod:`engine.evaluation`):

* ``binary`` task: AUC, KS and its threshold, average precision, the
  confusion matrix at a threshold, ROC and precision-recall curves
  downsampled for charts, and the lift/gain table by score decile;
* ``regression`` task: MSE, RMSE, MAE, R² and explained variance.

Several tables can be compared in one run (``data`` and optional
``compare``, e.g. training and validation predictions): each gets its own
report under its port name, so a chart can overlay them.

Security statement: runs at the guest only and sends no message. The labels
and scores are the guest's own (the host's partial scores were already
combined into the probabilities by the prediction component).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engine import evaluation
from engine.components.split.align import as_frame
from engine.errors import InvalidInput
from engine.ml.columns import label_vector, numeric_column, require_columns, require_probabilities
from engine.registry import Component, Port

__all__ = ["EvaluationParams", "evaluate_table", "evaluation_component"]

TABLE_INPUTS = ("data", "compare")


class EvaluationParams(BaseModel):
    """Parameters of ``evaluation``."""

    model_config = ConfigDict(extra="forbid", title="Evaluation")

    task: Literal["binary", "regression"] = Field(
        "binary", title="Task", description="binary: 0/1 labels and a probability; regression: numbers and a prediction.")
    label_column: str = Field("y", min_length=1, title="Label column", description="Column holding the true values.")
    score_column: str = Field(
        "probability", min_length=1, title="Score column",
        description="Column holding the model's score (binary: probability of label 1) or predicted value.")
    threshold: float = Field(0.5, ge=0.0, le=1.0, title="Threshold",
                             description="Binary: rows scoring at least this are predicted 1 (confusion matrix).")
    n_bins: int = Field(10, ge=2, le=100, title="Lift bins",
                        description="Binary: number of equal-size score groups in the lift and gain table.")
    max_curve_points: int = Field(200, ge=10, le=5000, title="Curve points",
                                  description="Binary: the ROC and precision-recall curves are thinned to this many "
                                              "points for charts (the AUC is computed on every point).")


def evaluate_table(frame: Any, params: EvaluationParams, *, input: str = "data") -> dict[str, Any]:
    """The report of one scored table (pure: no federation)."""
    frame = as_frame(frame)
    require_columns(frame, [params.label_column, params.score_column], input=input)
    scores = numeric_column(frame, params.score_column, input=input)
    if np.isnan(scores).any():
        raise InvalidInput(f"column {params.score_column!r} of input {input!r} has missing scores: "
                           "score every row before evaluating", input=input, column=params.score_column)
    if params.task == "regression":
        truth = numeric_column(frame, params.label_column, input=input)
        if np.isnan(truth).any():
            raise InvalidInput(f"column {params.label_column!r} of input {input!r} has missing values",
                               input=input, column=params.label_column)
        if truth.size == 0:
            raise InvalidInput(f"input {input!r} has no rows to evaluate", input=input)
        return {"task": "regression", **evaluation.regression_report(truth, scores)}
    labels = label_vector(frame, params.label_column, input=input)
    require_probabilities(scores, params.score_column, input=input, hint="a binary evaluation needs probabilities")
    report = evaluation.binary_report(labels, scores, threshold=params.threshold, n_bins=params.n_bins,
                                      max_curve_points=params.max_curve_points)
    return {"task": "binary", **report}


evaluation_component = Component(
    name="evaluation",
    version="1.0.0",
    description=(
        "Measure a model's scores against the true labels: AUC, KS, ROC and precision-recall curves, lift and gain, "
        "confusion matrix (binary), or MSE, MAE and R² (regression). Runs at the label holder only."
    ),
    roles=("guest",),
    params=EvaluationParams,
    inputs=[
        Port("data", "table", "Scored rows with the true label (e.g. a prediction component's output)."),
        Port("compare", "table", "Another scored table reported beside the first (e.g. training rows; optional).",
             optional=True),
    ],
    outputs=[Port("metrics", "metrics", "One report per input table, keyed by the input's name.")],
)


@evaluation_component.role("guest")
def _guest(ctx, params: EvaluationParams, inputs: dict[str, Any]) -> dict[str, Any]:
    reports = {name: evaluate_table(inputs[name], params, input=name)
               for name in TABLE_INPUTS if inputs.get(name) is not None}
    return {"metrics": reports}
