"""The ``statistics`` component: each party describes its own columns.

Runs in both roles and sends **no message**: counts, missing rates, moments,
quantiles and distinct values per column, the most frequent categories of text
columns, and the correlation matrix of the numeric columns, all computed by
:mod:`engine.ml.stats` on the party's own table and returned as its ``metrics``.

Security statement: nothing crosses parties. Each party's metrics describe its
own data and stay with it (the guest's include its label's class counts).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engine.components.split.align import as_frame
from engine.ml import stats
from engine.ml.columns import numeric_values, require_columns
from engine.ml.preprocessing import infer_numeric
from engine.registry import Component, Port

__all__ = ["StatisticsParams", "describe_table", "statistics"]


class StatisticsParams(BaseModel):
    """Parameters of ``statistics`` (per party: use role parameters for party-specific columns)."""

    model_config = ConfigDict(extra="forbid", title="Statistics")

    id_column: str = Field("id", min_length=1, title="ID column", description="Column holding the ids (not described).")
    label_column: str | None = Field(
        "y", title="Label column",
        description="Described apart (class counts) when present, not as a feature.")
    columns: list[str] | None = Field(None, title="Columns",
                                      description="Columns to describe (default: all but the id and label).")
    exclude_columns: list[str] = Field(default_factory=list, title="Excluded columns",
                                       description="Columns not to describe.")
    categorical_columns: list[str] = Field(
        default_factory=list, title="Categorical columns",
        description="Columns described as categories even if they look numeric.")
    quantiles: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=lambda: list(stats.DEFAULT_QUANTILES), max_length=101, title="Quantiles",
        description="Quantiles of each numeric column, each between 0 and 1.")
    correlation: Literal["pearson", "spearman", "none"] = Field(
        "pearson", title="Correlation", description="Correlation matrix of the numeric columns (pairwise complete).")
    max_correlation_columns: int = Field(
        200, ge=2, le=2000, title="Max correlated columns",
        description="Skip the correlation matrix above this many numeric columns (its size grows as the square).")
    top_categories: int = Field(10, ge=0, le=1000, title="Top categories",
                                description="Most frequent categories listed per text column.")



statistics = Component(
    name="statistics",
    version="1.0.0",
    description=(
        "Describe each party's own columns: counts, missing rates, moments, quantiles, distinct values, top "
        "categories and correlations. Computed locally; nothing crosses parties."
    ),
    roles=("guest", "host"),
    params=StatisticsParams,
    inputs=[Port("data", "table", "The party's rows.")],
    outputs=[Port("metrics", "metrics", "rows, columns (one summary each), label (guest), correlation.")],
)


def describe_table(frame: Any, params: StatisticsParams) -> dict[str, Any]:
    """The metrics of one table (pure: no federation)."""
    frame = as_frame(frame)
    reserved = {params.id_column}
    label = params.label_column if params.label_column in frame.columns else None
    if label is not None:
        reserved.add(label)
    if params.columns is not None:
        require_columns(frame, params.columns)
        chosen = [c for c in params.columns if c not in reserved]
    else:
        chosen = [c for c in frame.columns if c not in reserved]
    excluded = set(params.exclude_columns)
    chosen = [c for c in chosen if c not in excluded]
    require_columns(frame, params.categorical_columns)
    forced = set(params.categorical_columns)
    columns: dict[str, Any] = {}
    numeric: list[str] = []
    for name in chosen:
        categorical = True if name in forced else not infer_numeric(frame[name])
        summary = stats.column_summary(frame[name], params.quantiles, params.top_categories, categorical)
        columns[str(name)] = summary
        if not categorical:
            numeric.append(name)
    metrics: dict[str, Any] = {"rows": len(frame), "columns": columns}
    if label is not None:
        values = numeric_values(frame[label])
        observed = values[~np.isnan(values)]
        classes, counts = np.unique(observed, return_counts=True)
        metrics["label"] = {
            "column": label, "missing": int(np.isnan(values).sum()),
            "classes": {(str(int(c)) if float(c).is_integer() else repr(float(c))): int(k)
                        for c, k in zip(classes, counts)},
            "event_rate": stats.json_float(observed.mean()) if observed.size else None,
        }
    if params.correlation != "none":
        if len(numeric) > params.max_correlation_columns:
            metrics["correlation"] = {"method": params.correlation, "skipped":
                                      f"{len(numeric)} numeric columns, more than max_correlation_columns"}
        else:
            matrix = np.column_stack([numeric_values(frame[c]) for c in numeric]) if numeric else np.zeros((0, 0))
            corr = stats.correlation_matrix(matrix, params.correlation) if numeric else np.zeros((0, 0))
            metrics["correlation"] = {
                "method": params.correlation, "columns": [str(c) for c in numeric],
                "matrix": [[stats.json_float(v) for v in row] for row in corr],
            }
    return metrics


@statistics.role("guest", "host")
def _run(ctx: Any, params: StatisticsParams, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"metrics": describe_table(inputs["data"], params)}
