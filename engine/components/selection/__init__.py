"""The ``feature_selection`` component: keep the informative, well-filled, non-redundant columns.

IV rules (threshold, top-k) are decided by the guest for every feature of both
parties from the ``hetero_binning`` model; missing-rate, variance and correlation
rules are applied by each party to its own columns. The message table and what each
party learns are in :mod:`engine.components.selection.protocol`; the rules in
:mod:`engine.ml.selection`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from engine.components.selection import protocol
from engine.registry import Component, Port

__all__ = ["SelectionParams", "feature_selection"]


class SelectionParams(BaseModel):
    """Parameters of ``feature_selection``. An unset rule is not applied."""

    model_config = ConfigDict(extra="forbid", title="Feature selection")

    id_column: str = Field("id", min_length=1, title="ID column", description="Column holding the ids (always kept).")
    label_column: str = Field("y", min_length=1, title="Label column",
                              description="The guest's label (always kept). Ignored by the host.")
    columns: list[str] | None = Field(
        None, title="Columns", description="Columns the rules may drop (default: all but the id and label).")
    exclude_columns: list[str] = Field(default_factory=list, title="Protected columns",
                                       description="Columns never dropped.")
    iv_threshold: float | None = Field(
        None, ge=0.0, title="Minimum IV",
        description="Guest's rule for every feature of both parties: keep features whose IV is at least this "
                    "(0.02 is a common floor). Needs the binning input.")
    iv_top_k: int | None = Field(
        None, ge=1, le=100_000, title="Top k by IV",
        description="Guest's rule: keep the k features with the highest IV, counting both parties' features.")
    max_missing_rate: float | None = Field(
        None, ge=0.0, le=1.0, title="Maximum missing rate",
        description="Each party drops its columns with a larger share of missing values.")
    min_variance: float | None = Field(
        None, ge=0.0, title="Minimum variance",
        description="Each party drops its numeric columns whose variance is at most this (0 drops constants).")
    max_correlation: float | None = Field(
        None, gt=0.0, le=1.0, title="Maximum correlation",
        description="Each party drops one of each pair of its numeric columns with |Pearson r| above this, "
                    "keeping the one with the higher IV (else the earlier column).")


feature_selection = Component(
    name="feature_selection",
    version="1.0.0",
    description=(
        "Select features by IV (threshold or top k, decided by the guest for both parties), missing rate, "
        "variance and correlation (each party on its own columns). The host is told only which of its "
        "features the guest keeps by IV."
    ),
    roles=("guest", "host"),
    params=SelectionParams,
    inputs=[
        Port("data", "table", "The party's rows (raw, preprocessed or WOE-transformed)."),
        Port("binning", "model", "This party's hetero_binning model, for the IV rules.", optional=True),
    ],
    outputs=[
        Port("data", "table", "The rows with only the id, the label and the kept columns."),
        Port("model", "model", "The selection (kept columns and why the others were dropped)."),
        Port("metrics", "metrics", "Per column: missing rate, variance, IV; the dropped columns with reasons."),
    ],
)

feature_selection.role("guest")(protocol.guest)
feature_selection.role("host")(protocol.host)
