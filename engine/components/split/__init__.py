"""The ``split`` component: a train/validation split both parties agree on, drawn by the guest.

The protocol, its message table and what each party learns are in
:mod:`engine.components.split.protocol`; :mod:`engine.components.split.align` holds
the row-alignment check the vertical components share.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.components.split import protocol
from engine.registry import Component, Port

__all__ = ["SplitParams", "split"]


class SplitParams(BaseModel):
    """Parameters of the ``split`` component (the guest's decide; the host uses only ``id_column``)."""

    model_config = ConfigDict(extra="forbid", title="Train/validation split")

    id_column: str = Field("id", min_length=1, title="ID column", description="Column holding the ids (text).")
    label_column: str = Field(
        "y", min_length=1, title="Label column",
        description="The guest's 0/1 label column, used to stratify. Ignored by the host.",
    )
    method: Literal["stratified", "random"] = Field(
        "stratified", title="Method",
        description="'stratified' keeps each class's share in both sets (needs the label); "
                    "'random' draws rows uniformly.",
    )
    validation_fraction: float = Field(
        0.2, gt=0.0, lt=1.0, title="Validation fraction",
        description="Share of the rows put in the validation set (rounded per class when stratified).",
    )
    seed: int = Field(42, ge=0, le=2**63 - 1, title="Random seed",
                      description="The same seed and table always give the same split.")


split = Component(
    name="split",
    version="1.0.0",
    description=(
        "Split the aligned rows into training and validation sets. The guest draws the split "
        "(random or stratified by its label, seeded); the host receives only which rows are for validation."
    ),
    roles=("guest", "host"),
    params=SplitParams,
    inputs=[Port("data", "table", "Aligned rows (output of psi), with the id column.")],
    outputs=[
        Port("train", "table", "The training rows, in their original order."),
        Port("validate", "table", "The validation rows, in their original order."),
        Port("metrics", "metrics", "rows, train_rows, validate_rows (and the guest's event rates)."),
    ],
)

split.role("guest")(protocol.guest)
split.role("host")(protocol.host)
