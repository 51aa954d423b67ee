"""Hetero SecureBoost (Paillier or Okamoto-Uchiyama): gradient-boosted trees on vertically split data.

Two components: ``hetero_secureboost`` trains, ``hetero_secureboost_predict``
scores new rows. The guest holds the 0/1 labels and some features, the host
other features for the same rows (aligned by ``psi``: same ids, same order;
both check it with a salted digest of their id lists). The algorithm is the
one of :mod:`engine.ml.tree` -- binning, fixed-point gradients, XGBoost gain,
level-wise growth, tie rules -- and the federated trees are *identical* to
the trees :func:`engine.ml.tree.train` grows on the joined table (tested).
Encodings and packing: :mod:`engine.components.secureboost.protocol`.
Full description: ``docs/secureboost.md``.

Training: message table
=======================

``G`` = guest, ``H`` = host; ``[[x]]`` = encryption under the guest's key
with the scheme ``he_scheme`` names (Paillier or Okamoto-Uchiyama, 2048-bit
by default); ``t`` = tree, ``d`` = depth. Bit masks are
``numpy.packbits`` of booleans over the rows named.

=====  =====  =============================  ==================================================
where  dir    message                        content
=====  =====  =============================  ==================================================
setup  G->H   ``hello``                      protocol id, 32-byte nonce, model id, row counts
                                             (train, validate), scheme name and exported
                                             public key, layout ``(F, S)``, ``n_trees``,
                                             ``max_depth``, number of consistency rows
setup  H->G   ``hello``                      protocol id, nonce, row counts, scheme name
setup  both   ``ids``                        SHA-256 of the salted id lists (train, validate):
                                             equal iff the rows are aligned
t      G->H   ``gradients``                  ``[[Gq_i * 2**S + Hq_i]]`` for the tree's rows (one
                                             ciphertext per row), and the mask of those rows
                                             when ``subsample < 1``
t/d    G->H   ``plan``                       ids of the nodes to examine at this depth (empty:
                                             the tree is complete)
t/d    H->G   ``histograms``                 per planned node, fresh random 63-bit candidate
                                             ids; the node's cumulative sums
                                             ``[[sum over rows with bin <= b of P_i]]`` for each
                                             kept (feature, bin), shuffled, packed ``k`` per
                                             ciphertext, re-randomised (full-length)
t/d    G->H   ``decisions``                  per node split: its child ids and either the
                                             guest's split as a row mask over the node's rows,
                                             or the host candidate id(s) with the best gain
t/d    H->G   ``partitions``                 per host split: the opaque split id chosen and
                                             its row mask over the node's rows
t      H->G   ``routes``                     (when some rows were not sampled, or with a
                                             validation set) per host split of tree ``t``: mask
                                             over those rows / over the validation rows
t      G->H   ``next``                       ``{"stop": bool}`` (early stopping)
final  G->H   ``final``                      number of trees the model keeps
=====  =====  =============================  ==================================================

Prediction (``hetero_secureboost_predict``): ``hello`` and ``ids`` both ways as
above (the model ids must match), then H->G ``routes``: for every host split
of the model, the mask of the scored rows that go left. The guest routes
every row through every tree and outputs the scores; the host outputs
nothing but counts.

What each party learns
======================

**The guest learns**, beyond its own data and the model: for every node it
examines, the sums ``(G_L, H_L)`` of its gradients over the left side of each
host candidate split (shuffled, under random ids that change at every node:
it cannot tell which host feature or threshold a sum belongs to, nor link
candidates across nodes, though monotone runs of ``H_L`` may hint at which
candidates share a feature), and their number; for every host split used,
*how it partitions the node's rows*, and at prediction time how each host
split partitions the scored rows -- the partition of the samples that
SecureBoost is known to reveal. It never receives a host feature name, a
value, a bin edge or a threshold, in training or prediction.

**The host learns**: the public key, row counts, the rows sampled for each
tree, the set of rows in every node (the guest's splits reach it as row
partitions), which of its candidates were chosen (and when several of its
candidates tied exactly), the tree shapes and the number of trees kept. It
never sees a label, a gradient or hessian in plaintext (only semantically
secure ciphertexts under the guest's key), a leaf value, a gain, a guest
feature or threshold.

Both learn the other's row count and whether the rows are aligned (the id
digest), and when a party fails, the other gets its error message (which
never contains data values). Semi-honest model: each party follows the
protocol; a malicious guest could, e.g., encrypt crafted values to probe the
host's bins.

Model halves (``engine.ml.model_io`` format, component
``hetero_secureboost``): the guest's has the trees (node ids, owner, its own
features with bin edges and thresholds, opaque host split ids, leaf values),
the base margin and its bin edges; the host's maps each opaque split id to
its feature, bin and threshold. Each half stores a consistency sample (seed
003) that prediction recomputes when those rows are scored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from engine.components.secureboost import guest, host
from engine.components.secureboost.common import COMPONENT, PREDICT_COMPONENT, VERSION
from engine.crypto.he import scheme
from engine.registry import Component, Port

__all__ = ["SecureBoostParams", "SecureBoostPredictParams", "hetero_secureboost", "hetero_secureboost_predict"]


class SecureBoostParams(BaseModel):
    """Parameters of ``hetero_secureboost``."""

    model_config = ConfigDict(extra="forbid", title="Hetero SecureBoost parameters")

    id_column: str = Field("id", min_length=1, title="ID column",
                           description="Column holding the row ids (text), aligned between parties by psi.")
    label_column: str = Field("y", min_length=1, title="Label column",
                              description="Guest: the 0/1 label column (both classes must occur).")
    feature_columns: list[str] | None = Field(
        None, title="Feature columns",
        description="This party's feature columns (set per party). Default: every column except the id "
                    "and, at the guest, the label. Features must be numbers; encode categories first.")
    n_trees: int = Field(10, ge=1, le=1000, title="Trees", description="Maximum number of trees.")
    max_depth: int = Field(3, ge=1, le=12, title="Maximum depth",
                           description="Levels of splits per tree (a depth-3 tree has up to 8 leaves).")
    learning_rate: float = Field(0.3, gt=0, le=1, title="Learning rate",
                                 description="Shrinkage of every leaf value (eta).")
    min_child_weight: float = Field(1.0, ge=0, le=1e6, title="Minimum child weight",
                                    description="Smallest hessian sum a child may have.")
    l2: float = Field(1.0, ge=0, le=1e6, title="L2 regularisation (lambda)",
                      description="L2 penalty on leaf values.")
    min_split_gain: float = Field(0.0, ge=0, le=1e6, title="Minimum split gain (gamma)",
                                  description="A node is split only if the best gain exceeds this.")
    subsample: float = Field(1.0, gt=0, le=1, title="Row subsampling",
                             description="Fraction of the rows each tree is grown on (drawn by the guest, "
                                         "without replacement; the host learns which rows).")
    seed: int = Field(0, ge=0, le=2**31 - 1, title="Seed", description="Seed of the row subsampling.")
    max_bins: int = Field(32, ge=2, le=256, title="Maximum bins",
                          description="Quantile bins per feature (each party bins its own features; "
                                      "missing values get a bin of their own and go right).")
    early_stopping_rounds: int = Field(
        0, ge=0, le=1000, title="Early stopping rounds",
        description="With a validation set: stop when the metric has not improved for this many trees "
                    "and keep the best number of trees (0: off).")
    early_stopping_metric: Literal["logloss", "auc"] = Field(
        "logloss", title="Early stopping metric", description="Validation metric watched by early stopping.")
    degenerate_columns: Literal["skip", "error"] = Field(
        "skip", title="Constant or empty columns",
        description="A feature that is constant or missing everywhere cannot be split on: 'skip' leaves it "
                    "out (listed in the metrics), 'error' refuses the input.")
    precision_bits: int = Field(
        20, ge=8, le=32, title="Gradient precision (bits)",
        description="Gradients and hessians are encrypted as integers with this many fractional bits.")
    consistency_rows: int = Field(
        50, ge=0, le=1000, title="Consistency sample rows",
        description="Training rows whose predictions are stored in each model half and recomputed when "
                    "the model is used on them (import check).")
    insecure_allow_small_keys: bool = Field(
        False, title="Allow small test keys",
        description="Tests only: accept keys below 2048 bits.")
    he_scheme: Literal["paillier", "ou"] = Field(
        "ou", title="Encryption scheme",
        description="How the guest encrypts the gradients the host sums. Both schemes grow the same trees, reveal "
                    "the same to each party and, at 2048 bits, have the same 112-bit security (as hard as "
                    "factoring a 2048-bit RSA modulus). Okamoto–Uchiyama computes on numbers half as long, so "
                    "trees train nearly twice as fast and each ciphertext takes half the bytes; Paillier is the "
                    "longer-established scheme. Both parties must choose the same.")
    key_bits: int = Field(2048, ge=512, le=8192, multiple_of=2, title="Key size (bits)",
                          description="Size of the guest's modulus n (Paillier's n, or Okamoto–Uchiyama's n = p²q); "
                                      "at least 2048.")
    checkpoint_dir: str | None = Field(
        None, title="Checkpoint directory",
        description="Local directory (set per party, by the operator) where the training state after each tree "
                    "is written as <dir>/<role>/tree-NNNNN.json and latest.json.")

    @field_validator("key_bits")
    @classmethod
    def _secure_key(cls, value: int, info: ValidationInfo) -> int:
        minimum = scheme(info.data.get("he_scheme") or "ou").MIN_SECURE_KEY_BITS
        if value < minimum and not info.data.get("insecure_allow_small_keys"):
            raise ValueError(f"must be at least {minimum} (smaller keys only with "
                             "insecure_allow_small_keys, for tests)")
        return value


class SecureBoostPredictParams(BaseModel):
    """Parameters of ``hetero_secureboost_predict``."""

    model_config = ConfigDict(extra="forbid", title="Hetero SecureBoost prediction parameters")

    id_column: str = Field("id", min_length=1, title="ID column",
                           description="Column holding the row ids (text), aligned between parties by psi.")
    threshold: float = Field(0.5, ge=0, le=1, title="Decision threshold",
                             description="The predicted class is 1 when the score is at least this.")
    label_column: str | None = Field(
        None, title="Label column",
        description="Guest: if this column is present, the output metrics evaluate the scores against it.")
    check_consistency: bool = Field(
        True, title="Check consistency",
        description="Recompute the predictions stored in the model for its sample rows, when they are "
                    "among the rows scored, and fail if any differs (import check).")


hetero_secureboost = Component(
    name=COMPONENT,
    version=VERSION,
    description=(
        "Gradient-boosted decision trees on vertically split data (SecureBoost, with Paillier or "
        "Okamoto–Uchiyama encryption): the guest holds the labels, the host only sees encrypted gradients; "
        "the trees equal those of central training on the joined table."
    ),
    roles=("guest", "host"),
    params=SecureBoostParams,
    inputs=[
        Port("data", "table", "Training rows (id, features; the guest also the label), aligned by psi."),
        Port("validate", "table", "Validation rows, aligned between the parties, for metrics and early "
             "stopping.", optional=True),
        Port("transform", "model", "A fitted preprocessing model applied to the rows first (and stored with "
             "the model so that scoring applies it too).", optional=True),
        Port("resume", "model", "This party's checkpoint (after some tree) to continue training from; the other "
             "party must resume from the same tree.", optional=True),
    ],
    outputs=[
        Port("model", "model", "This party's half of the model."),
        Port("metrics", "metrics", "Guest: loss and validation metrics per tree, feature importance, work "
             "counts. Host: split counts per feature, work counts."),
    ],
)
hetero_secureboost.role("guest")(guest.train)
hetero_secureboost.role("host")(host.train)


hetero_secureboost_predict = Component(
    name=PREDICT_COMPONENT,
    version=VERSION,
    description="Score rows with a hetero SecureBoost model; each party uses its own half.",
    roles=("guest", "host"),
    params=SecureBoostPredictParams,
    inputs=[
        Port("model", "model", "This party's half of a hetero_secureboost model."),
        Port("data", "table", "Rows to score (id and this party's features), aligned by psi."),
        Port("transform", "model", "A preprocessing model to apply when the model does not carry one.",
             optional=True),
    ],
    outputs=[
        Port("predictions", "table", "Guest: id, probability (of label 1), prediction (0/1), and the label "
                                    "when present.", roles=("guest",)),
        Port("metrics", "metrics", "Rows scored, consistency check; guest: evaluation when labels are given."),
    ],
)
hetero_secureboost_predict.role("guest")(guest.predict)
hetero_secureboost_predict.role("host")(host.predict)
