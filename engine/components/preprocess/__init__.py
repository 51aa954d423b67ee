"""The ``preprocess`` component: one party's local preprocessing, fitted on training rows.

Runs in both roles and sends **no message**: each party fits (or applies) its own
preprocessing on its own columns. The maths and the model format are in
:mod:`engine.ml.preprocessing` (missing-value filling, quantile clipping, standard or
min-max scaling, one-hot encoding with an ``__other__`` bucket).

* Without a ``model`` input: fit on ``data`` (the training rows), output the fitted
  ``model`` (an :mod:`engine.ml.model_io` document, component ``"preprocess"``) and
  the transformed ``data``.
* With a ``model`` input (scoring time, or the validation rows): apply that fit
  unchanged, whatever the parameters say, and output the same model.

Security statement: nothing crosses parties; each party's model stays with it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.components.split.align import as_frame
from engine.errors import InvalidInput
from engine.ml import model_io
from engine.ml import preprocessing as prep
from engine.registry import Component, Port

__all__ = ["PreprocessParams", "preprocess"]


class PreprocessParams(BaseModel):
    """Parameters of ``preprocess`` (per party: use role parameters for party-specific columns)."""

    model_config = ConfigDict(extra="forbid", title="Preprocessing")

    id_column: str = Field("id", min_length=1, title="ID column", description="Column holding the ids (kept as text).")
    label_column: str | None = Field(
        "y", title="Label column",
        description="Copied unchanged when present (the guest's label); never transformed.",
    )
    columns: list[str] | None = Field(
        None, title="Columns", description="Feature columns to preprocess (default: all but the id and label)."
    )
    exclude_columns: list[str] = Field(
        default_factory=list, title="Excluded columns",
        description="Columns left out of the output entirely.",
    )
    passthrough_columns: list[str] = Field(
        default_factory=list, title="Passthrough columns",
        description="Columns copied unchanged (like the label).",
    )
    categorical_columns: list[str] = Field(
        default_factory=list, title="Categorical columns",
        description="Columns to one-hot encode even if they look numeric (e.g. codes).",
    )
    numeric_columns: list[str] = Field(
        default_factory=list, title="Numeric columns",
        description="Columns that must be numeric (text that does not parse is then an error).",
    )
    numeric_fill: Literal["mean", "median", "most_frequent", "constant", "none"] = Field(
        "mean", title="Fill numeric gaps with",
        description="Training statistic (or constant) that replaces missing numbers; 'none' leaves them missing.",
    )
    numeric_fill_value: float | None = Field(
        None, title="Numeric fill constant", description="Used when numeric_fill is 'constant' (default 0)."
    )
    categorical_fill: Literal["most_frequent", "constant", "none"] = Field(
        "most_frequent", title="Fill categorical gaps with",
        description="'most_frequent' training category, a 'constant' category of its own, or 'none' "
                    "(all one-hot columns 0).",
    )
    categorical_fill_value: str | None = Field(
        None, title="Categorical fill constant", description="Category used when categorical_fill is 'constant' "
                                                            "(default 'missing')."
    )
    clip_lower_quantile: float | None = Field(
        None, ge=0.0, le=0.5, title="Clip below quantile",
        description="Clip numbers below this training quantile (e.g. 0.01); empty: no clipping.",
    )
    clip_upper_quantile: float | None = Field(
        None, ge=0.5, le=1.0, title="Clip above quantile",
        description="Clip numbers above this training quantile (e.g. 0.99); empty: no clipping.",
    )
    scaling: Literal["none", "standard", "minmax"] = Field(
        "none", title="Scaling",
        description="'standard': (x - mean) / std; 'minmax': (x - min) / (max - min); training statistics.",
    )
    max_categories: int | None = Field(
        20, ge=1, le=1000, title="Max categories",
        description="One-hot columns per categorical column (most frequent first); the rest go to __other__.",
    )
    other_bucket: bool = Field(
        True, title="'Other' bucket",
        description="Add a <column>=__other__ column for rare and unseen categories (else they are all zeros).",
    )
    degenerate_columns: Literal["error", "drop", "keep"] = Field(
        "error", title="Constant or all-missing columns",
        description="'error' refuses them naming the column; 'drop' leaves them out; 'keep' keeps them "
                    "(constant -> 0 after scaling, all-missing -> the fill constant or missing).",
    )

    @model_validator(mode="after")
    def _clip_pair(self) -> PreprocessParams:
        if (self.clip_lower_quantile is None) != (self.clip_upper_quantile is None):
            raise ValueError("set both clip_lower_quantile and clip_upper_quantile, or neither")
        return self


preprocess = Component(
    name="preprocess",
    version="1.0.0",
    description=(
        "Local preprocessing of each party's own columns: fill missing values, clip to quantiles, scale, "
        "one-hot encode categories. Fitted on training rows and stored with the model; applied unchanged at "
        "scoring time. No data crosses parties."
    ),
    roles=("guest", "host"),
    params=PreprocessParams,
    inputs=[
        Port("data", "table", "Rows to fit on (training) or to transform (with a model)."),
        Port("model", "model", "A fitted preprocess model to apply unchanged (scoring time).", optional=True),
    ],
    outputs=[
        Port("model", "model", "The fitted preprocessing (model_io document, component 'preprocess')."),
        Port("data", "table", "The transformed rows: id, label, then the features as numbers."),
        Port("metrics", "metrics", "rows, input and output columns, dropped columns.", optional=True),
    ],
)


def _fit_kwargs(params: PreprocessParams) -> dict[str, Any]:
    passthrough = list(params.passthrough_columns)
    if params.label_column:
        passthrough.insert(0, params.label_column)
    clip = None
    if params.clip_lower_quantile is not None and params.clip_upper_quantile is not None:
        clip = (params.clip_lower_quantile, params.clip_upper_quantile)
    return {
        "id_column": params.id_column, "passthrough": passthrough, "columns": params.columns,
        "exclude": params.exclude_columns, "categorical_columns": params.categorical_columns,
        "numeric_columns": params.numeric_columns, "numeric_fill": params.numeric_fill,
        "numeric_fill_value": params.numeric_fill_value, "categorical_fill": params.categorical_fill,
        "categorical_fill_value": params.categorical_fill_value, "clip_quantiles": clip,
        "scaling": params.scaling, "max_categories": params.max_categories, "other_bucket": params.other_bucket,
        "degenerate_columns": params.degenerate_columns,
    }


@preprocess.role("guest", "host")
def _run(ctx: Any, params: PreprocessParams, inputs: dict[str, Any]) -> dict[str, Any]:
    frame = as_frame(inputs["data"])
    given = inputs.get("model")
    if given is not None:
        if not isinstance(given, dict):
            raise InvalidInput("input 'model' must be a preprocess model document", input="model")
        document = model_io.loads(model_io.dumps(given), component=prep.COMPONENT, role=ctx.role)
    else:
        body = prep.fit(frame, **_fit_kwargs(params))
        document = model_io.build(
            component=prep.COMPONENT, component_version=preprocess.version, role=ctx.role,
            model_id=ctx.session_id, params=params.model_dump(mode="json"), body=body,
        )
    data = prep.apply_model(document, frame)
    body = document["body"]
    metrics = {
        "rows": len(frame),
        "fitted": given is None,
        "input_columns": [c["name"] for c in body["columns"]],
        "output_columns": list(body["output_columns"]),
        "dropped": list(body.get("dropped", [])),
    }
    return {"model": document, "data": data, "metrics": metrics}
