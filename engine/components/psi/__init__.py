"""The ``psi`` component: private set intersection of two parties' ids.

Declaration and parameters live here; the protocol (with its message table
and what each side learns) is in :mod:`engine.components.psi.protocol`.

Duplicated ids within one party's table: the protocol always runs on the
distinct ids. ``duplicate_ids`` then decides what happens to the rows:

* ``"first"`` (default) -- keep the first row of each id; outputs stay one
  row per id and aligned row for row, as vertical federated learning needs
  (it joins row i of the guest with row i of the host). The metrics count the
  rows set aside (``duplicate_rows``) and say so in ``warnings``.
* ``"error"`` -- refuse the input, for pipelines where a repeated id means
  the data is wrong.
* ``"all"`` -- keep every row of each matched id, grouped by id in the
  shared order. Row counts per id may then differ between parties, so the
  outputs are aligned by id, not row for row.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.components.psi import protocol, rr22
from engine.registry import Component, Port

__all__ = ["PsiParams", "psi"]


class PsiParams(BaseModel):
    """Parameters of the ``psi`` component."""

    model_config = ConfigDict(extra="forbid", title="PSI parameters")

    id_column: str = Field(
        "id",
        min_length=1,
        title="ID column",
        description=(
            "Column holding the ids to intersect. Ids are compared exactly as text: "
            "'0012345' and '12345' differ, so are 'a ' and 'a'."
        ),
    )
    reveal: Literal["both", "guest", "cardinality"] = Field(
        "both",
        title="Reveal to",
        description=(
            "Who learns the intersection: 'both' parties (each gets its aligned rows), "
            "the 'guest' only (the host gets no rows and learns only the size), or "
            "'cardinality' (nobody gets rows; both learn the size)."
        ),
    )
    min_overlap: int = Field(
        0,
        ge=0,
        le=10**12,
        title="Minimum overlap",
        description=(
            "Refuse to reveal anything when fewer ids than this are shared. Each party "
            "may set its own; the larger applies. The job then fails with a policy error "
            "and neither rows nor the size are released."
        ),
    )
    arithmetic: Literal["x25519", "ristretto255"] = Field(
        "x25519",
        title="Group arithmetic",
        description=(
            "How the ristretto255 group is computed in (the hash is RFC 9380 hash_to_ristretto255 "
            "either way): 'x25519' multiplies through libsodium's X25519 ladder on the group's "
            "Montgomery x-coordinates, about 1.4x faster end to end; 'ristretto255' multiplies with "
            "crypto_scalarmult_ristretto255 and also validates every element the peer sends (with "
            "'x25519', invalid elements are harmless rather than refused). Both parties must use "
            "the same."
        ),
    )
    protocol: Literal["ecdh", "rr22"] = Field(
        "ecdh",
        title="Protocol",
        description=(
            "'ecdh' (default): elliptic-curve Diffie-Hellman on ristretto255, every reveal mode and "
            "minimum overlap on both sides. 'rr22': the OT-based RR22 protocol (SecretFlow's library), "
            "many times faster on large tables; the guest sees the intersection at once, so it offers "
            "'both' and 'guest' only and the host cannot require a minimum overlap. Both parties must "
            "use the same."
        ),
    )
    duplicate_ids: Literal["first", "error", "all"] = Field(
        "first",
        title="Duplicate ids",
        description=(
            "What to do when an id appears on several rows of one party's table: "
            "'first' keeps the first row of each id (and reports how many rows were set aside), "
            "'error' refuses the input, 'all' keeps every row (outputs are then aligned by id, "
            "not row for row)."
        ),
    )


    @model_validator(mode="after")
    def _rr22_reveals_rows(self):
        if self.protocol == "rr22" and self.reveal == "cardinality":
            raise ValueError("the RR22 protocol shows the guest the intersection itself: "
                             "for the size only, use protocol 'ecdh'")
        return self


def _guest(ctx, params, inputs):
    return (rr22.guest if params.protocol == "rr22" else protocol.guest)(ctx, params, inputs)


def _host(ctx, params, inputs):
    return (rr22.host if params.protocol == "rr22" else protocol.host)(ctx, params, inputs)


psi = Component(
    name="psi",
    version="1.0.0",
    description=(
        "Private set intersection (ECDH on ristretto255, or the OT-based RR22): find the ids two parties share "
        "without revealing the others, and output each party's rows for the shared ids "
        "in the same order on both sides."
    ),
    roles=("guest", "host"),
    params=PsiParams,
    inputs=[
        Port("data", "table", "Rows to align; must contain the id column (text)."),
    ],
    outputs=[
        Port(
            "data",
            "table",
            "This party's rows whose id is in the intersection, in the order shared by both "
            "parties (empty when this party is not told the intersection).",
        ),
        Port(
            "metrics",
            "metrics",
            "input_rows, unique_ids, duplicate_rows, peer_unique_ids, intersection_size, "
            "output_rows, rows_revealed, reveal, arithmetic (ECDH), protocol, warnings (plain-language notes, "
            "e.g. rows set aside because their id repeats).",
        ),
    ],
)

psi.role("guest")(_guest)
psi.role("host")(_host)
