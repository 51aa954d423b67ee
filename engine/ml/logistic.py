"""Logistic regression with the Taylor-approximated loss: the plaintext reference of ``hetero_lr``.

The federated trainer (:mod:`engine.components.hetero_lr`) and the central
trainer here (:func:`fit`) run the *same* algorithm, and share the code that
decides everything except the arithmetic: the batch order, the learning-rate
schedule, the early-stopping rule and the fixed-point grid of the features.
Only where the maths happens differs (under Paillier encryption at two parties,
or in float64 on the joined table here), so the federated weights equal the
central ones to float rounding (tests: ~1e-12; the requirement is 1e-6).

The model
=========
``u = X w + b``, ``p = sigmoid(u)``, labels ``y`` in {0, 1} mapped to
``ỹ = 2y - 1`` in {-1, +1}. As in FATE's hetero LR, the logistic loss is
replaced by its second-order Taylor expansion at ``u = 0``::

    loss_i ~= log 2 - ỹ_i u_i / 2 + u_i**2 / 8

whose gradient is linear in ``u`` (that is what makes it computable on
additively encrypted values): the per-sample *fore gradient* is
``d_i = u_i / 4 - ỹ_i / 2`` and, for a batch ``B`` of ``b`` rows, ::

    grad_w = X_B^T d_B / b + l2 * w        grad_b = sum(d_B) / b   (intercept: no L2)

The implementations carry ``4 d = u - 2 ỹ`` (no multiplication by 1/4 under
encryption) and divide by ``4 b`` afterwards; :func:`gradient_step` is the one
update rule both use.

Training loop (shared by both trainers through :class:`Trainer`)
===============================================================
* Epoch ``t`` (0-based) uses the learning rate ``lr / (1 + decay t)`` or, with
  ``decay_sqrt``, ``lr / sqrt(1 + decay t)``.
* The row order of an epoch is ``rng.permutation(n)`` (``shuffle``) or
  ``0..n-1``, from ``numpy.random.default_rng(seed)``; batches are its
  ``ceil(n / batch_size)`` consecutive chunks of near-equal size (sizes differ
  by at most one row; ``batch_size`` 0: one batch of all rows). Every batch
  makes one update.
* Training loss of an epoch: the mean over all rows of ``loss_i``, each
  computed with the weights in force when its batch was processed (before
  that batch's update), without the L2 term.
* After the epoch's updates: validation metrics, if a validation set is given
  (``validation_loss`` = mean Taylor loss, ``validation_auc``/``_ks`` via
  :mod:`engine.evaluation`, ``validation_log_loss``), then early stopping.
* Early stopping (``early_stopping`` = ``train_loss``, ``validation_loss``,
  ``validation_auc`` or ``validation_ks``): an epoch *improves* when its value
  beats the best so far by more than ``tol`` (lower for losses, higher for AUC
  and KS); training stops after ``patience`` epochs in a row without
  improvement, or after ``max_epochs``. With ``restore_best`` and a
  validation criterion the model is the weights after the best epoch.

Fixed-point features (``feature_bits``)
=======================================
Under encryption, features multiply ciphertexts as integers, so each feature
column ``j`` is put on a binary grid once, from the training rows:
``e_j = feature_bits - exponent(max |X_j|)`` and ``X_j`` becomes
``round(X_j * 2**e_j) / 2**e_j`` (:func:`column_exponents`, :func:`quantize`).
With the default 32 bits the change is below ``2**-33`` of the column's
largest magnitude, invisible in the fitted model (weights move by ~1e-9), and
both trainers use the gridded features, so they stay exactly comparable;
scoring applies the training grid too. ``feature_bits=None`` here skips it.

Errors are :class:`~engine.errors.InvalidInput` subclasses naming the column
(never a value), from :mod:`engine.errors`: ``MissingColumn``, ``NotNumeric``
(text features, or labels other than 0/1), ``MissingValues``
(``AllMissingColumn`` for an all-missing column), ``ConstantColumn``,
``SingleClass``; :class:`NoFeatures` here; :class:`TrainingDiverged` when scores
leave the range the encrypted protocol can carry.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from engine import evaluation
from engine.errors import (
    AllMissingColumn,
    ConstantColumn,
    EngineError,
    InvalidInput,
    MissingValues,
    NotNumeric,
    SingleClass,
)
from engine.ml.columns import label_vector, require_columns

__all__ = [
    "CRITERIA",
    "DEFAULT_FEATURE_BITS",
    "LOG2",
    "VALUE_BITS",
    "EarlyStopping",
    "LogisticFit",
    "NoFeatures",
    "Settings",
    "Trainer",
    "TrainingDiverged",
    "batches",
    "binary_labels",
    "check_not_constant",
    "check_scores",
    "column_exponents",
    "dequantize",
    "feature_columns",
    "feature_matrix",
    "fit",
    "gradient_step",
    "grid",
    "learning_rate",
    "log_loss",
    "predict_logit",
    "predict_proba",
    "quantize",
    "sigmoid",
    "taylor_loss_sum",
    "validation_metrics",
]

LOG2 = math.log(2.0)
DEFAULT_FEATURE_BITS = 32
VALUE_BITS = 32
"""Partial scores must stay below ``2**VALUE_BITS`` in magnitude.

The encrypted protocol sizes its masks and overflow bounds from this public
constant (rather than from the data, which would leak magnitudes). A score
beyond it means training diverged; :func:`check_scores` raises
:class:`TrainingDiverged`.
"""

CRITERIA = {
    "none": None,
    "train_loss": "min",
    "validation_loss": "min",
    "validation_auc": "max",
    "validation_ks": "max",
}
"""Early-stopping criteria and whether lower (``min``) or higher (``max``) is better."""


# ------------------------------------------------------------------- errors


class NoFeatures(InvalidInput):
    """A party has no feature column to train on."""


class TrainingDiverged(EngineError):
    """Scores left the range the protocol can carry: lower the learning rate or scale the features."""


# ----------------------------------------------------------- table -> arrays


def feature_columns(
    frame: pd.DataFrame,
    *,
    id_column: str,
    exclude: Sequence[str] = (),
    requested: Sequence[str] | None = None,
    input: str = "data",
) -> list[str]:
    """The feature columns to use: ``requested`` (checked to exist) or every other column."""
    if requested is not None:
        require_columns(frame, requested, input=input, hint="it is named in feature_columns")
        for column in requested:
            if column == id_column or column in exclude:
                raise InvalidInput(
                    f"column {column!r} cannot be a feature (it is the id or label column)", input=input, column=column
                )
        if len(set(requested)) != len(requested):
            raise InvalidInput("feature_columns names a column twice", input=input)
        columns = list(requested)
    else:
        skip = {id_column, *exclude}
        columns = [str(c) for c in frame.columns if c not in skip]
    if not columns:
        raise NoFeatures(f"input {input!r} has no feature columns", input=input)
    return columns


def feature_matrix(frame: pd.DataFrame, columns: Sequence[str], *, input: str = "data") -> np.ndarray:
    """The named columns as a float64 ``(rows, columns)`` array, checked.

    Numeric and boolean columns are accepted; anything else, numbers kept as
    text included, raises :class:`~engine.errors.NotNumeric`, and missing or
    infinite values :class:`~engine.errors.MissingValues` (or
    :class:`~engine.errors.AllMissingColumn`). Preprocess first
    (engine.ml.preprocessing) to fill gaps and encode categories.
    """
    require_columns(frame, columns, input=input)
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for j, column in enumerate(columns):
        series = frame[column]
        kind = series.dtype.kind
        if kind == "O" and len(series) and series.map(lambda v: isinstance(v, (bool, int, float, np.number))).all():
            series = series.astype(np.float64)
            kind = "f"
        if kind not in "biuf":
            raise NotNumeric(column, input=input,
                             hint="encode it first (preprocess) or leave it out of feature_columns")
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = int((~np.isfinite(values)).sum())
        if bad == len(values) and bad:
            raise AllMissingColumn(column, input=input, hint="fill or drop it first (preprocess)")
        if bad:
            raise MissingValues(column, bad, input=input, hint="fill or drop it first (preprocess)")
        out[:, j] = values
    return out


def check_not_constant(X: np.ndarray, columns: Sequence[str], *, input: str = "data") -> None:
    """Refuse a column with a single value (:class:`~engine.errors.ConstantColumn`): it duplicates the intercept."""
    if X.shape[0] == 0:
        raise InvalidInput(f"input {input!r} has no rows", input=input)
    same = np.all(X == X[0:1, :], axis=0)
    if same.any():
        column = columns[int(np.argmax(same))]
        raise ConstantColumn(
            column,
            input=input,
            hint="it has one value on every training row, so it carries no information "
            "(drop it, e.g. with feature selection)",
        )


def binary_labels(frame: pd.DataFrame, column: str, *, input: str = "data") -> np.ndarray:
    """The label column as an int8 array of 0/1; both classes must occur."""
    # An empty table is left to the row-count check, whose message says what is wrong.
    return label_vector(frame, column, input=input, allow_single_class=len(frame) == 0).astype(np.int8)


# ------------------------------------------------------------ fixed point


def column_exponents(X: np.ndarray, bits: int) -> np.ndarray:
    """Per column ``e_j`` with ``max |X_j| * 2**e_j`` in ``[2**(bits-1), 2**bits)`` (0 for a zero column)."""
    if not 1 <= bits <= 52:
        raise ValueError("feature bits must be between 1 and 52")
    peaks = np.max(np.abs(X), axis=0) if X.shape[0] else np.zeros(X.shape[1])
    exponents = np.zeros(X.shape[1], dtype=np.int64)
    for j, peak in enumerate(peaks.tolist()):
        if peak > 0:
            exponents[j] = bits - math.frexp(peak)[1]
    return exponents


def quantize(X: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """``round(X * 2**e)`` per column, as int64 (round half to even)."""
    scaled = np.rint(np.ldexp(np.asarray(X, dtype=np.float64), np.asarray(exponents, dtype=np.int64)))
    if scaled.size and np.max(np.abs(scaled)) >= 2.0**62:
        raise TrainingDiverged("a feature value is far outside the range seen in training (over 2^62 grid steps)")
    return scaled.astype(np.int64)


def dequantize(M: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """``M * 2**-e`` per column, as float64 (exact while ``|M| < 2**53``)."""
    return np.ldexp(M.astype(np.float64), -np.asarray(exponents, dtype=np.int64))


def grid(X: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """``X`` rounded to the fixed-point grid of ``exponents``."""
    return dequantize(quantize(X, exponents), exponents)


# ---------------------------------------------------------- loss and maths


def sigmoid(u: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-u))`` without overflow for large ``|u|``."""
    u = np.asarray(u, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -u))


def signed(y: np.ndarray) -> np.ndarray:
    """Labels 0/1 as -1.0/+1.0."""
    return 2.0 * np.asarray(y, dtype=np.float64) - 1.0


def taylor_loss_sum(u: np.ndarray, y: np.ndarray) -> float:
    """``sum_i log 2 - ỹ_i u_i / 2 + u_i**2 / 8`` (the Taylor loss, summed)."""
    u = np.asarray(u, dtype=np.float64)
    return float(np.sum(LOG2 - 0.5 * signed(y) * u + 0.125 * u * u))


def log_loss(u: np.ndarray, y: np.ndarray) -> float:
    """Mean exact logistic loss ``log(1 + exp(-ỹ u))`` from the scores ``u``."""
    return float(np.mean(np.logaddexp(0.0, -signed(y) * np.asarray(u, dtype=np.float64))))


def check_scores(u: np.ndarray, what: str = "a partial score") -> None:
    """Raise :class:`TrainingDiverged` if any ``|u| >= 2**VALUE_BITS`` (or is not finite)."""
    u = np.asarray(u, dtype=np.float64)
    if u.size and not (np.isfinite(u).all() and np.max(np.abs(u)) < 2.0**VALUE_BITS):
        raise TrainingDiverged(
            f"{what} reached 2^{VALUE_BITS} or is not finite: training diverged "
            "(lower learning_rate or scale the features)"
        )


def learning_rate(base: float, decay: float, decay_sqrt: bool, epoch: int) -> float:
    """The learning rate of epoch ``epoch`` (0-based)."""
    denominator = 1.0 + decay * epoch
    return base / (math.sqrt(denominator) if decay_sqrt else denominator)


def gradient_step(weights: np.ndarray, sums: np.ndarray, rows: int, rate: float, l2: float,
                  penalized: np.ndarray | None = None) -> np.ndarray:
    """One update: ``w - rate * (sums / (4 rows) + l2 * w)``.

    ``sums`` is ``X_B^T (u - 2ỹ)`` (four times the summed fore gradients).
    ``penalized`` (bool per weight, default all) says which weights get L2;
    the intercept does not.
    """
    penalty = l2 * weights if penalized is None else np.where(penalized, l2 * weights, 0.0)
    return weights - rate * (sums / (4.0 * rows) + penalty)


def batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``ceil(n / batch_size)`` consecutive chunks of ``order`` of near-equal size.

    Sizes differ by at most one row (the first ``n % k`` chunks are one
    longer), so no batch is a short remainder: a batch of few rows would let
    a party solve its gradient for per-row values. ``batch_size`` 0 or at
    least ``n``: one batch of all rows.
    """
    n = len(order)
    if batch_size <= 0 or batch_size >= n:
        return [order]
    return np.array_split(order, -(-n // batch_size))


def validation_metrics(u: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``validation_loss`` (Taylor), ``validation_log_loss``, ``validation_auc``, ``validation_ks``."""
    ks, _ = evaluation.ks_statistic(y, u)
    return {
        "validation_loss": taylor_loss_sum(u, y) / len(u),
        "validation_log_loss": log_loss(u, y),
        "validation_auc": evaluation.roc_auc_score(y, u),
        "validation_ks": ks,
    }


# ----------------------------------------------------- the shared training loop


@dataclass(frozen=True)
class Settings:
    """The training parameters that define the algorithm (names as in the component)."""

    learning_rate: float = 0.15
    decay: float = 0.0
    decay_sqrt: bool = False
    l2: float = 0.0
    batch_size: int = 0
    max_epochs: int = 30
    shuffle: bool = True
    seed: int | None = None
    fit_intercept: bool = True
    early_stopping: str = "none"
    patience: int = 3
    tol: float = 1e-4
    restore_best: bool = True
    feature_bits: int | None = DEFAULT_FEATURE_BITS

    def __post_init__(self) -> None:
        if self.early_stopping not in CRITERIA:
            raise ValueError(f"early_stopping must be one of {', '.join(CRITERIA)}")

    @classmethod
    def from_params(cls, params: Any, **overrides: Any) -> Settings:
        """The settings among a params object's (or dict's) fields."""
        source = params if isinstance(params, dict) else params.model_dump()
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in source.items() if k in names}
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def uses_validation(self) -> bool:
        return self.early_stopping.startswith("validation_")

    @property
    def restores_best(self) -> bool:
        return self.restore_best and self.uses_validation


@dataclass
class EarlyStopping:
    """Best-so-far bookkeeping for one criterion (state is JSON-ready)."""

    criterion: str = "none"
    patience: int = 3
    tol: float = 1e-4
    best_value: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0

    def update(self, value: float | None, epoch: int) -> tuple[bool, bool]:
        """Record epoch ``epoch``'s value; return ``(improved, stop)``."""
        direction = CRITERIA[self.criterion]
        if direction is None or value is None:
            return False, False
        if self.best_value is None:
            improved = True
        elif direction == "min":
            improved = value < self.best_value - self.tol
        else:
            improved = value > self.best_value + self.tol
        if improved:
            self.best_value, self.best_epoch, self.bad_epochs = float(value), epoch, 0
        else:
            self.bad_epochs += 1
        return improved, self.bad_epochs >= self.patience

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Trainer:
    """Everything about a training run except the weights and the arithmetic.

    Used identically by :func:`fit` and by the federated guest (the host only
    follows the guest's orders), so both see the same row orders, learning
    rates and stopping decisions. Its :meth:`state` is JSON-ready and
    :meth:`from_state` restores it exactly (the checkpoint).
    """

    settings: Settings
    rows: int
    seed: int
    epoch: int = 0
    done: bool = False
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    stopper: EarlyStopping = field(default_factory=EarlyStopping)
    rng: np.random.Generator | None = None

    @classmethod
    def start(cls, settings: Settings, rows: int) -> Trainer:
        seed = settings.seed if settings.seed is not None else secrets.randbits(63)
        trainer = cls(settings=settings, rows=rows, seed=int(seed),
                      stopper=EarlyStopping(settings.early_stopping, settings.patience, settings.tol))
        trainer.rng = np.random.default_rng(trainer.seed)
        trainer.done = settings.max_epochs <= 0
        return trainer

    def learning_rate(self) -> float:
        s = self.settings
        return learning_rate(s.learning_rate, s.decay, s.decay_sqrt, self.epoch)

    def epoch_batches(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """This epoch's row order and its batches (advances the random generator)."""
        assert self.rng is not None
        order = self.rng.permutation(self.rows) if self.settings.shuffle else np.arange(self.rows)
        order = order.astype(np.int64)
        return order, batches(order, self.settings.batch_size)

    def end_epoch(self, record: dict[str, Any]) -> tuple[bool, bool]:
        """Close the epoch with its metrics; returns ``(improved, stop)``.

        ``record`` holds ``train_loss`` and, with validation, the
        :func:`validation_metrics` keys.
        """
        criterion = self.settings.early_stopping
        value = record.get(criterion) if criterion != "none" else None
        if criterion != "none" and value is None:
            raise EngineError(f"early stopping on {criterion!r} needs that metric every epoch")
        improved, stop = self.stopper.update(value, self.epoch)
        entry = {"epoch": self.epoch, "learning_rate": self.learning_rate(), **record, "improved": improved}
        self.history.append(entry)
        self.epoch += 1
        if stop:
            self.stopped_early = True
        self.done = stop or self.epoch >= self.settings.max_epochs
        return improved, self.done

    def state(self) -> dict[str, Any]:
        assert self.rng is not None
        return {
            "settings": self.settings.to_dict(),
            "rows": self.rows,
            "seed": self.seed,
            "epoch": self.epoch,
            "next_learning_rate": self.learning_rate(),  # informative: derived from settings and epoch
            "done": self.done,
            "stopped_early": self.stopped_early,
            "history": [dict(h) for h in self.history],
            "early_stopping": self.stopper.to_dict(),
            "rng": _rng_state(self.rng),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any], settings: Settings) -> Trainer:
        """Restore a :meth:`state`; ``settings`` may raise ``max_epochs``, nothing else may change."""
        saved = Settings(**state["settings"])
        for name in ("learning_rate", "decay", "decay_sqrt", "l2", "batch_size", "shuffle", "fit_intercept",
                     "early_stopping", "patience", "tol", "restore_best", "feature_bits"):
            if getattr(saved, name) != getattr(settings, name):
                raise InvalidInput(
                    f"the checkpoint was made with {name}={getattr(saved, name)!r}, this run has "
                    f"{getattr(settings, name)!r}: resume with the same parameters",
                    input="resume",
                )
        trainer = cls(
            settings=settings,
            rows=int(state["rows"]),
            seed=int(state["seed"]),
            epoch=int(state["epoch"]),
            stopped_early=bool(state["stopped_early"]),
            history=[dict(h) for h in state["history"]],
            stopper=EarlyStopping(**state["early_stopping"]),
        )
        trainer.rng = _rng_from_state(state["rng"])
        trainer.done = trainer.stopped_early or trainer.epoch >= settings.max_epochs
        return trainer


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise EngineError("only PCG64 generator states can be saved")
    return {
        "bit_generator": "PCG64",
        "state": int(state["state"]["state"]),
        "inc": int(state["state"]["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _rng_from_state(saved: dict[str, Any]) -> np.random.Generator:
    if saved.get("bit_generator") != "PCG64":
        raise InvalidInput("the checkpoint's random generator is not PCG64", input="resume")
    bit_generator = np.random.PCG64()
    bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
        "has_uint32": int(saved["has_uint32"]),
        "uinteger": int(saved["uinteger"]),
    }
    return np.random.Generator(bit_generator)


# ------------------------------------------------------------- central fit


@dataclass
class LogisticFit:
    """A centrally trained model: weights per column of ``X``, intercept, and the run's record."""

    weights: np.ndarray
    intercept: float
    exponents: np.ndarray | None
    seed: int
    epochs: int
    stopped_early: bool
    best_epoch: int | None
    history: list[dict[str, Any]]


def fit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> LogisticFit:
    """Train centrally, in plaintext, exactly as ``hetero_lr`` trains federated.

    ``X`` is the joined feature matrix (guest columns then host columns, any
    order works: the grid is per column), ``y`` the 0/1 labels. Settings as
    keyword arguments (see :class:`Settings`) or a ``settings`` object; give
    ``seed`` to reproduce a federated run (its seed is in the guest's model
    and metrics).
    """
    if settings is None:
        settings = Settings(**kwargs)
    elif kwargs:
        settings = Settings(**{**settings.to_dict(), **kwargs})
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or len(y) != X.shape[0]:
        raise InvalidInput("X must be (rows, features) with one label per row")
    if len(np.unique(y)) < 2:
        raise SingleClass("y", hint="logistic regression needs both 0 and 1")
    exponents = None
    if settings.feature_bits is not None:
        exponents = column_exponents(X, settings.feature_bits)
        X = grid(X, exponents)
    if settings.uses_validation and X_val is None:
        raise InvalidInput(f"early_stopping={settings.early_stopping!r} needs a validation set", input="validate")
    if X_val is not None:
        X_val = np.asarray(X_val, dtype=np.float64)
        if exponents is not None:
            X_val = grid(X_val, exponents)
    ysigned = signed(y)
    m = X.shape[1]
    # The intercept is the last weight, on a column of ones, without L2.
    w = np.zeros(m + 1)
    penalized = np.r_[np.ones(m, dtype=bool), False]
    best = w.copy()
    trainer = Trainer.start(settings, X.shape[0])
    while not trainer.done:
        rate = trainer.learning_rate()
        _, chunks = trainer.epoch_batches()
        loss = 0.0
        for rows in chunks:
            Xb = X[rows]
            u = Xb @ w[:m] + w[m]
            check_scores(u, "a score")
            loss += taylor_loss_sum(u, y[rows])
            d4 = u - 2.0 * ysigned[rows]
            sums = np.r_[Xb.T @ d4, d4.sum() if settings.fit_intercept else 0.0]
            w = gradient_step(w, sums, len(rows), rate, settings.l2, penalized)
        record: dict[str, Any] = {"train_loss": loss / X.shape[0]}
        if X_val is not None:
            record.update(validation_metrics(X_val @ w[:m] + w[m], y_val))
        improved, _ = trainer.end_epoch(record)
        if improved:
            best = w.copy()
    if settings.restores_best and trainer.stopper.best_epoch is not None:
        w = best
    return LogisticFit(
        weights=w[:m],
        intercept=float(w[m]),
        exponents=exponents,
        seed=trainer.seed,
        epochs=trainer.epoch,
        stopped_early=trainer.stopped_early,
        best_epoch=trainer.stopper.best_epoch,
        history=trainer.history,
    )


def predict_logit(model: LogisticFit, X: np.ndarray) -> np.ndarray:
    """Scores ``u = X w + b`` with the training grid applied to ``X``."""
    X = np.asarray(X, dtype=np.float64)
    if model.exponents is not None:
        X = grid(X, model.exponents)
    return X @ model.weights + model.intercept


def predict_proba(model: LogisticFit, X: np.ndarray) -> np.ndarray:
    """Probabilities of class 1."""
    return sigmoid(predict_logit(model, X))
