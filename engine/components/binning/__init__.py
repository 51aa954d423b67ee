"""The ``hetero_binning`` component: bins, WOE and IV for both parties' features.

The guest's features are binned and scored in plaintext. The host's are binned by
the host (its cut points never leave it) and scored by the guest from per-bin
sums of the guest's encrypted labels. The protocol, its message table and what
each party learns are in :mod:`engine.components.binning.protocol`; the maths
(cut points, smoothing, WOE, IV) in :mod:`engine.ml.binning`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.components.binning import protocol
from engine.crypto.paillier import MIN_SECURE_KEY_BITS
from engine.registry import Component, Port

__all__ = ["BinningParams", "hetero_binning"]


class BinningParams(BaseModel):
    """Parameters of ``hetero_binning``. Per-party settings (columns) go in role parameters."""

    model_config = ConfigDict(extra="forbid", title="Hetero feature binning (WOE/IV)")

    id_column: str = Field("id", min_length=1, title="ID column", description="Column holding the ids (text).")
    label_column: str = Field("y", min_length=1, title="Label column",
                              description="The guest's 0/1 label (1 = event). Ignored by the host.")
    columns: list[str] | None = Field(
        None, title="Columns", description="Feature columns to bin (default: all but the id and label).")
    exclude_columns: list[str] = Field(default_factory=list, title="Excluded columns",
                                       description="Columns not to bin.")
    categorical_columns: list[str] = Field(
        default_factory=list, title="Categorical columns",
        description="Columns binned by category even if they look numeric (text columns always are).")
    method: Literal["quantile", "equal_width"] = Field(
        "quantile", title="Binning method",
        description="'quantile': equal-frequency bins; 'equal_width': bins of equal width between the "
                    "observed minimum and maximum.")
    n_bins: int = Field(10, ge=2, le=128, title="Bins per feature",
                        description="Value bins per numeric feature (fewer when values tie); missing values "
                                    "always get one more bin of their own.")
    max_categories: int = Field(32, ge=1, le=256, title="Max categories",
                                description="Categories with their own bin (most frequent first); the rest "
                                            "share an __other__ bin.")
    smoothing: float = Field(0.5, gt=0.0, le=10.0, title="Smoothing",
                             description="Added to the event and non-event counts of a bin that has none of "
                                         "one of them, so its WOE stays finite.")
    degenerate_columns: Literal["error", "drop", "keep"] = Field(
        "error", title="Constant or all-missing columns",
        description="'error' refuses them naming the column; 'drop' leaves them out; 'keep' bins them (IV 0).")
    host_learns: Literal["nothing", "iv", "woe"] = Field(
        "iv", title="Host learns",
        description="What the guest sends back about the host's own features: 'nothing', their 'iv', or "
                    "'woe' (IV plus WOE per bin, from which the host can work out each bin's event count). "
                    "Both parties must set the same.")
    transform: bool = Field(
        False, title="Output WOE data",
        description="Also output the rows with every binned feature replaced by its bin's WOE. The host can "
                    "only do so with host_learns='woe'.")
    share_feature_names: bool = Field(
        False, title="Share feature names (host)",
        description="The host's choice: send its column names to the guest; otherwise the guest sees its "
                    "features as h0, h1, ...")
    key_bits: int = Field(MIN_SECURE_KEY_BITS, ge=512, le=8192, multiple_of=256, title="Paillier key size",
                          description="Bits of the guest's Paillier modulus (at least 2048 outside tests).")
    insecure_allow_small_keys: bool = Field(
        False, title="Allow small keys (tests only)", description="Accept keys below 2048 bits. Never in production.")

    @model_validator(mode="after")
    def _key_size(self) -> BinningParams:
        if self.key_bits < MIN_SECURE_KEY_BITS and not self.insecure_allow_small_keys:
            raise ValueError(f"key_bits below {MIN_SECURE_KEY_BITS} needs insecure_allow_small_keys (tests only)")
        return self


hetero_binning = Component(
    name="hetero_binning",
    version="1.0.0",
    description=(
        "Equal-frequency or equal-width bins of every feature of both parties, with WOE and IV. The guest's "
        "features in plaintext; the host's from encrypted labels (Paillier): the host sums the encrypted labels "
        "per bin, the guest decrypts the per-bin event counts. The host's cut points never leave the host."
    ),
    roles=("guest", "host"),
    params=BinningParams,
    inputs=[Port("data", "table", "Aligned rows (output of psi or split); the guest's include the label.")],
    outputs=[
        Port("model", "model",
             "Binning tables: per feature its bins with counts, event counts, WOE and IV. The host's half holds "
             "its cut points (and what the guest released); the guest's holds the host's features by opaque bin."),
        Port("metrics", "metrics", "IV per feature (the host's only if released to it)."),
        Port("data", "table", "With transform: id, label, and every binned feature as its WOE.", optional=True),
    ],
)

hetero_binning.role("guest")(protocol.guest)
hetero_binning.role("host")(protocol.host)
