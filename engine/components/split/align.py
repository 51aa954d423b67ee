"""Helpers the vertical components share: tables in, and checking that rows line up.

After PSI both parties hold their rows for the shared ids in the same order, and the
vertical components (split, hetero_binning, feature_selection) pair row ``i`` of the
guest with row ``i`` of the host. Feeding one of them a table that is not the PSI
output (re-sorted, filtered on one side only) would silently pair the wrong people,
so they first compare a salted digest of the id column::

    digest = SHA-256(domain | nonce | for each id: uvarint(len) | UTF-8 bytes)

The guest picks a fresh 32-byte ``nonce``; the host answers with its digest; the
guest compares it with its own and stops with :class:`RowsNotAligned` when they
differ. The host learns nothing (it never receives the guest's digest); the guest
learns one bit ("aligned or not") plus a salted hash of the host's id list, which
it cannot invert and could only confirm by guessing the entire ordered list.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pandas as pd

from engine.errors import InvalidInput, ProtocolError

__all__ = ["RowsNotAligned", "as_frame", "check_aligned", "id_column_texts", "new_nonce", "rows_digest"]

_DOMAIN = b"fedweb-aligned-rows-v1\x00"


class RowsNotAligned(ProtocolError):
    """The two parties' tables do not hold the same ids in the same order."""


def as_frame(value: Any, input: str = "data") -> pd.DataFrame:
    """A pandas DataFrame (pyarrow tables are converted), with a clean RangeIndex."""
    if isinstance(value, pd.DataFrame):
        return value.reset_index(drop=True)
    try:
        import pyarrow as pa

        if isinstance(value, pa.Table):
            return value.to_pandas().reset_index(drop=True)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        pass
    raise InvalidInput(f"input {input!r} must be a table", input=input)


def id_column_texts(frame: pd.DataFrame, id_column: str, input: str = "data") -> list[str]:
    if id_column not in frame.columns:
        shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:20])
        raise InvalidInput(f"input {input!r} has no id column {id_column!r} (columns: {shown})", input=input,
                           column=id_column)
    column = frame[id_column]
    if column.isna().any():
        raise InvalidInput(f"the id column {id_column!r} has missing ids", input=input, column=id_column)
    return [str(v) for v in column.tolist()]


def new_nonce() -> bytes:
    return os.urandom(32)


def rows_digest(ids: list[str], nonce: bytes) -> bytes:
    h = hashlib.sha256(_DOMAIN)
    h.update(nonce)
    for text in ids:
        data = text.encode("utf-8", "surrogatepass")
        n = len(data)
        prefix = bytearray()
        while True:
            low, n = n & 0x7F, n >> 7
            prefix.append(low | (0x80 if n else 0))
            if not n:
                break
        h.update(bytes(prefix))
        h.update(data)
    return h.digest()


def check_aligned(own_ids: list[str], nonce: bytes, peer_digest: Any, peer_rows: Any, component: str) -> None:
    """Guest side: raise :class:`RowsNotAligned` unless the host's digest matches ours."""
    if not isinstance(peer_rows, int) or peer_rows != len(own_ids):
        raise RowsNotAligned(
            f"{component}: the host has {peer_rows} rows and the guest {len(own_ids)}; both tables must be "
            "the aligned output of psi"
        )
    if not isinstance(peer_digest, bytes) or peer_digest != rows_digest(own_ids, nonce):
        raise RowsNotAligned(
            f"{component}: the two tables do not hold the same ids in the same order; feed both parties "
            "the aligned output of psi"
        )
