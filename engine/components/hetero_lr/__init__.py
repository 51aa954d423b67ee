"""Hetero (vertical) logistic regression: ``hetero_lr``, ``hetero_lr_predict`` and ``scorecard``.

Declarations and parameters live here; the two-key protocol (Paillier or
Okamoto-Uchiyama keys, as ``he_scheme`` says), its message table and what each
party learns are in :mod:`engine.components.hetero_lr.protocol`; the algorithm itself (the
Taylor-approximated loss, batches, learning rate, early stopping) and its
central plaintext twin are in :mod:`engine.ml.logistic`; the model file
format in :mod:`engine.components.hetero_lr.model`. Guide:
``docs/hetero-lr.md``.

* ``hetero_lr`` (guest + host): trains. Each party outputs its half of the
  model, metrics, and the training state of the last epoch (``checkpoint``;
  with ``checkpoint_dir`` also a file per epoch). Give a checkpoint back as
  the ``resume`` input to continue a run exactly where it stopped.
* ``hetero_lr_predict`` (guest + host): scores aligned rows with both
  halves; the guest outputs the probabilities. Optional ``transform`` input:
  a preprocessing model document applied to the rows first. The guest learns
  the host's partial scores of the scored rows (as FATE; implied by the
  probabilities, see the protocol module).
* ``scorecard`` (guest only): probabilities to points (base score, base
  odds, points to double the odds), :mod:`engine.ml.scorecard`.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from engine.components.hetero_lr import guest, host
from engine.errors import InvalidInput
from engine.ml import logistic
from engine.ml import scorecard as scorecard_math
from engine.ml.columns import require_columns, require_probabilities
from engine.registry import Component, Port

__all__ = ["HeteroLRParams", "HeteroLRPredictParams", "ScorecardParams", "hetero_lr", "hetero_lr_predict",
           "scorecard"]



def _id_field() -> Any:
    return Field("id", min_length=1, title="ID column",
                 description="Column holding the row ids (text), the same at both parties.")


class HeteroLRParams(BaseModel):
    """Parameters of ``hetero_lr``. Both parties must give the same training settings."""

    model_config = ConfigDict(extra="forbid", title="Hetero logistic regression parameters")

    id_column: str = _id_field()
    label_column: str = Field("y", min_length=1, title="Label column",
                              description="Guest: the column holding the 0/1 label (1 = the event, e.g. default).")
    feature_columns: list[str] | None = Field(
        None, title="Feature columns",
        description="This party's feature columns (set per party). Default: every column except the id and label. "
                    "Features must be numeric without gaps: preprocess first.")
    learning_rate: float = Field(0.15, gt=0, le=100, title="Learning rate",
                                 description="Step size of the first epoch.")
    decay: float = Field(0.0, ge=0, le=1000, title="Learning-rate decay",
                         description="Epoch t uses learning_rate / (1 + decay * t) (or its square root, see below).")
    decay_sqrt: bool = Field(False, title="Square-root decay",
                             description="Use learning_rate / sqrt(1 + decay * t) instead.")
    l2: float = Field(0.0, ge=0, le=1000, title="L2 penalty",
                      description="Strength of the L2 penalty on the weights (not on the intercept).")
    batch_size: int = Field(10_000, ge=0, le=100_000_000, title="Batch size",
                            description="Rows per mini-batch (0: all rows in one batch). The rows are split into "
                                        "ceil(rows / batch_size) batches of near-equal size.")
    max_epochs: int = Field(30, ge=1, le=10_000, title="Maximum epochs",
                            description="Passes over the training rows, at most.")
    shuffle: bool = Field(True, title="Shuffle", description="Draw a new random row order every epoch.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, title="Random seed",
                             description="Seed of the row orders (guest). Empty: random, recorded in the model.")
    fit_intercept: bool = Field(True, title="Intercept", description="Fit an intercept (held by the guest).")
    validation_reveal: Literal["scores", "loss_only"] = Field(
        "scores", title="Validation privacy",
        description="'scores': each epoch the host sends its partial scores on the validation rows, so the guest "
                    "gets AUC, KS and losses (and learns those scores); 'loss_only': the validation loss is computed "
                    "under encryption and the guest learns only that number (early stopping on validation_loss).")
    early_stopping: Literal["none", "train_loss", "validation_loss", "validation_auc", "validation_ks"] = Field(
        "none", title="Early stopping",
        description="Stop when this metric has not improved by more than 'tol' for 'patience' epochs. The "
                    "validation metrics need the 'validate' input.")
    patience: int = Field(3, ge=1, le=1000, title="Patience", description="Epochs without improvement before stopping.")
    tol: float = Field(1e-4, ge=0, le=1, title="Tolerance", description="Smallest change that counts as an improvement.")
    restore_best: bool = Field(True, title="Keep the best epoch",
                               description="With a validation criterion, output the weights of the best epoch.")
    feature_bits: int = Field(logistic.DEFAULT_FEATURE_BITS, ge=8, le=48, title="Feature precision (bits)",
                              description="Significant bits kept of each feature, relative to its largest training "
                                          "value, for the encrypted products (32: changes below 2^-33).")
    insecure_allow_small_keys: bool = Field(False, title="Allow small keys (tests only)",
                                            description="Permit keys below 2048 bits. Never in production.")
    he_scheme: Literal["paillier", "ou"] = Field(
        "ou", title="Encryption scheme",
        description="The additively homomorphic scheme of both parties' keys. Both schemes train the same model, "
                    "reveal the same to each party and, at 2048 bits, have the same 112-bit security (as hard as "
                    "factoring a 2048-bit RSA modulus). Okamoto–Uchiyama computes on numbers half as long, so its "
                    "encryption and arithmetic are faster and each ciphertext takes half the bytes; Paillier is "
                    "the longer-established scheme. Both parties must choose the same.")
    key_bits: int = Field(2048, ge=512, le=8192, multiple_of=2, title="Key size (bits)",
                          description="Size of each party's own modulus n (Paillier's n, or Okamoto–Uchiyama's "
                                      "n = p²q); at least 2048.")
    checkpoint_dir: str | None = Field(
        None, title="Checkpoint directory",
        description="Local directory (set per party, by the operator) where each epoch's training state is written "
                    "as <dir>/<role>/epoch-NNNNN.json and latest.json.")
    sample_rows: int = Field(10, ge=0, le=1000, title="Consistency sample rows",
                             description="Training rows whose partial scores are stored in the model, to check after "
                                         "import that the model scores them identically.")

    @field_validator("early_stopping")
    @classmethod
    def _stopping_needs_scores(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("validation_reveal") == "loss_only" and value in ("validation_auc", "validation_ks"):
            raise ValueError(f"{value!r} needs validation_reveal='scores' (with 'loss_only' only the loss is known)")
        return value

    @field_validator("key_bits")
    @classmethod
    def _key_size(cls, value: int, info: ValidationInfo) -> int:
        # 2048 is the secure minimum of both schemes (MIN_SECURE_KEY_BITS of paillier and ou).
        if value < 2048 and not info.data.get("insecure_allow_small_keys"):
            raise ValueError("keys below 2048 bits need insecure_allow_small_keys (tests only)")
        return value


class HeteroLRPredictParams(BaseModel):
    """Parameters of ``hetero_lr_predict``."""

    model_config = ConfigDict(extra="forbid", title="Hetero logistic regression prediction parameters")

    id_column: str = _id_field()
    threshold: float = Field(0.5, ge=0, le=1, title="Decision threshold",
                             description="The 'prediction' column is 1 where the probability is at least this.")
    evaluate: bool = Field(True, title="Evaluate",
                           description="If the guest's rows carry the label column, add AUC, KS and log loss to "
                                       "the metrics and the label to the output.")


class ScorecardParams(BaseModel):
    """Parameters of ``scorecard``."""

    model_config = ConfigDict(extra="forbid", title="Scorecard parameters")

    id_column: str = _id_field()
    probability_column: str = Field("probability", min_length=1, title="Probability column",
                                    description="Column with the model's probability of label 1.")
    base_score: float = Field(600.0, ge=-1e6, le=1e6, title="Base score", description="Points at the base odds.")
    base_odds: float = Field(50.0, gt=0, le=1e9, title="Base odds",
                             description="Odds (good to bad, or as set by 'positive') that score the base score.")
    pdo: float = Field(20.0, gt=0, le=1e6, title="Points to double the odds",
                       description="Points added each time the odds double.")
    positive: Literal["bad", "good"] = Field(
        "bad", title="Label 1 means",
        description="'bad': label 1 is the bad outcome (default), odds = (1-p)/p; 'good': odds = p/(1-p). "
                    "Either way more points mean a better row.")
    min_points: float | None = Field(None, title="Minimum points", description="Clip points below this.")
    max_points: float | None = Field(None, title="Maximum points", description="Clip points above this.")
    decimals: int | None = Field(None, ge=0, le=10, title="Decimals", description="Round points to this many decimals.")
    output_column: str = Field("points", min_length=1, title="Output column", description="Name of the points column.")

    @model_validator(mode="after")
    def _bounds(self) -> ScorecardParams:
        if self.min_points is not None and self.max_points is not None and self.min_points > self.max_points:
            raise ValueError("min_points is above max_points")
        return self


hetero_lr = Component(
    name="hetero_lr",
    version="1.0.0",
    description=(
        "Vertical logistic regression between a label holder (guest) and a feature provider (host), each with its "
        "own Paillier or Okamoto–Uchiyama key and no third party: mini-batch gradient descent on the Taylor-approximated loss, "
        "learning-rate decay, L2, early stopping, a checkpoint every epoch. Neither party sees the other's "
        "features, labels, weights or per-row partial scores on training rows."
    ),
    roles=("guest", "host"),
    params=HeteroLRParams,
    inputs=[
        Port("data", "table", "Training rows aligned with the other party (output of psi): id, features "
                              "(and the label at the guest)."),
        Port("validate", "table", "Validation rows aligned with the other party, same columns (optional; both "
                                  "parties give it or neither).", optional=True),
        Port("resume", "model", "This party's checkpoint to continue training from (optional).", optional=True),
    ],
    outputs=[
        Port("model", "model", "This party's half of the model (weights of its own features)."),
        Port("metrics", "metrics", "Guest: loss and validation AUC/KS per epoch. Host: its own run record."),
        Port("checkpoint", "model", "The full training state after the last epoch (input 'resume' continues it).",
             optional=True),
    ],
)
hetero_lr.role("guest")(guest.train)
hetero_lr.role("host")(host.train)


hetero_lr_predict = Component(
    name="hetero_lr_predict",
    version="1.0.0",
    description=(
        "Score aligned rows with a hetero_lr model: each party computes its partial score with its own half, the "
        "host sends its partial scores to the guest, which outputs the probabilities."
    ),
    roles=("guest", "host"),
    params=HeteroLRPredictParams,
    inputs=[
        Port("model", "model", "This party's half of the hetero_lr model."),
        Port("data", "table", "Rows to score, aligned with the other party (raw if 'transform' is given)."),
        Port("transform", "model", "A preprocessing model to apply to the rows first (optional).", optional=True),
    ],
    outputs=[
        Port("predictions", "table", "id, probability (of label 1), prediction (0/1), and the label when present.",
             roles=("guest",)),
        Port("metrics", "metrics", "Rows scored, the model consistency check, and AUC/KS when labels are present."),
    ],
)
hetero_lr_predict.role("guest")(guest.predict)
hetero_lr_predict.role("host")(host.predict)


scorecard = Component(
    name="scorecard",
    version="1.0.0",
    description=(
        "Turn logistic-regression probabilities into scorecard points: a base score at base odds and a fixed number "
        "of points to double the odds. Runs at the guest only."
    ),
    roles=("guest",),
    params=ScorecardParams,
    inputs=[Port("data", "table", "Rows with an id and a probability column (e.g. hetero_lr_predict's output).")],
    outputs=[
        Port("data", "table", "The input rows with a points column added."),
        Port("metrics", "metrics", "The scaling (offset, factor) and the points' range and mean."),
    ],
)


@scorecard.role("guest")
def _scorecard(ctx, params: ScorecardParams, inputs):
    frame = inputs["data"]
    frame = frame if isinstance(frame, pd.DataFrame) else frame.to_pandas()
    require_columns(frame, [params.id_column, params.probability_column], input="data")
    if params.output_column in frame.columns:
        raise InvalidInput(f"input 'data' already has a column {params.output_column!r}: choose another output_column",
                           input="data", column=params.output_column)
    probabilities = logistic.feature_matrix(frame, [params.probability_column], input="data")[:, 0]
    require_probabilities(probabilities, params.probability_column, input="data")
    scale = scorecard_math.scaling(params.base_score, params.base_odds, params.pdo, params.positive)
    values = scorecard_math.points(probabilities, scale, min_points=params.min_points, max_points=params.max_points,
                                   decimals=params.decimals)
    out = frame.copy()
    out[params.output_column] = values
    metrics = {**scale.to_dict(), "rows": int(values.size)}
    if values.size:
        metrics.update({"min_points": float(values.min()), "max_points": float(values.max()),
                        "mean_points": float(values.mean())})
    return {"data": out, "metrics": metrics}
