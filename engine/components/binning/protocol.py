"""Hetero binning with WOE/IV: one function per role.

Notation: ``y`` the guest's 0/1 labels (1 = event) for the ``n`` aligned rows,
``[[.]]`` Paillier encryption under the **guest's** key (``key_bits``, 2048 by
default), ``m`` the host's binned features, ``k_j`` the value bins of host feature
``j`` (its missing-value bin is ``k_j``, so it has ``k_j + 1`` bins), ``B = max k_j + 1``.

Message table (``G`` = guest, ``H`` = host; the labels go in chunks of at most
16,384 ciphertexts, messages ``labels.<i>/chunk``)
==============================================================================

=====  =====  ===============  ==============================================================
step   dir    message          content
=====  =====  ===============  ==============================================================
1      G->H   ``hello``        protocol id, ``n``, 32-byte nonce, ``host_learns``, the guest's
                               Paillier public key ``N``, ``label_bound`` = 1
2      H->G   ``hello``        protocol id, ``n``, salted digest of the host's ids in row
                               order (alignment check, see :mod:`engine.components.split.align`),
                               ``host_learns``
3      G->H   ``labels``       ``[[y_i]]`` for every row, in row order (fresh randomness each)
4      H->G   ``histogram``    per host feature: an opaque id (``h0``, ``h1``... or its name if
                               the host sets ``share_feature_names``), ``k_j``, the row count of
                               every bin (plaintext), and the per-bin event sums
                               ``[[sum_{i in bin} y_i]]``, computed with
                               ``EncryptedArray.bucket_sum`` for all features at once, packed
                               many per ciphertext (``slot_bits`` = bits of ``n``) by Horner's
                               rule on ciphertexts and re-randomised (``r^N``, so the guest
                               cannot tell how they were computed)
5      G->H   ``result``       only if ``host_learns`` is not ``nothing``: the IV of every host
                               feature, and with ``woe`` the WOE of every bin
=====  =====  ===============  ==============================================================

Bins are sent in the host's bin order (bin ``b`` of a numeric feature holds smaller
values than bin ``b + 1``; the last one is the missing bin), never with their cut
points or categories.

What each party learns
======================
* **Guest**: its own features' tables in plaintext; for each host feature, the
  number of bins, how many rows fall in each bin (hence how many are missing),
  and the number of events in each bin -- exactly the inputs of WOE and IV.
  It learns neither the host's cut points or categories nor which rows fall in
  which host bin, nor the host's column names unless ``share_feature_names``.
  From the bin sizes of an equal-frequency binning it can tell roughly how many
  distinct values a feature has (ties merge bins).
* **Host**: ``n``, the guest's public key and ``n`` ciphertexts it cannot decrypt
  (semantic security of Paillier: nothing about ``y``). Then, per
  ``host_learns``: nothing; the IV of each of its features (one number each); or
  also the WOE of each of its bins, from which, knowing the bin sizes, it can
  work out each bin's event count (WOE is a per-bin summary of the labels). It
  never learns the guest's features, IVs or row-level labels.
* Both: whether their tables are aligned (same ids, same order); the guest stops
  otherwise before sending any label.

Security model: semi-honest parties. A malicious host could return other sums (e.g.
a single row's label as a "bin"); the guest checks that every decrypted sum lies
between 0 and the bin's reported size, which bounds but does not prevent this.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from engine.components.split.align import (
    as_frame,
    check_aligned,
    id_column_texts,
    new_nonce,
    rows_digest,
)
from engine.crypto.paillier import EncryptedArray, PublicKey, concatenate, generate_keypair
from engine.errors import InvalidInput, InvalidParameters, ProtocolError
from engine.federation.context import Context
from engine.ml import binning as B
from engine.ml import model_io
from engine.ml.columns import label_vector, require_columns
from engine.wire import BigIntArray

__all__ = ["CHUNK", "PROTOCOL", "guest", "host", "pack_sums", "unpack_sums"]

PROTOCOL = "fedweb-hetero-binning-paillier-v1"
COMPONENT = "hetero_binning"
VERSION = "1.0.0"
CHUNK = 1 << 14
"""Ciphertexts per label message: 8 MiB with 2048-bit keys."""


# ------------------------------------------------------------ shared helpers


def _feature_columns(frame: pd.DataFrame, params: Any, reserved: set[str]) -> list[str]:
    if params.columns is not None:
        require_columns(frame, params.columns)
        chosen = [c for c in params.columns if c not in reserved]
    else:
        chosen = [c for c in frame.columns if c not in reserved]
    excluded = set(params.exclude_columns)
    return [str(c) for c in chosen if c not in excluded]


def _fit(frame: pd.DataFrame, columns: list[str], params: Any):
    return B.fit_table(frame, columns, method=params.method, n_bins=params.n_bins,
                       categorical_columns=params.categorical_columns, max_categories=params.max_categories,
                       degenerate_columns=params.degenerate_columns)


def pack_sums(sums: EncryptedArray, slot_bits: int) -> tuple[EncryptedArray, int]:
    """Pack non-negative encrypted integers (each below ``2**slot_bits``) many per ciphertext.

    Horner's rule on ciphertexts: ``acc = acc * 2**slot_bits + next`` (one
    ``slot_bits``-bit exponentiation and one multiplication per value), so the
    first value of each group ends up in the highest slot. Returns the packed
    array and the slots per ciphertext. The array's overflow bound guarantees no
    slot carries into the next.
    """
    public = sums.public_key
    flat = sums.ravel()
    slots = max(1, (public.max_int.bit_length() - 1) // slot_bits)
    groups = max(1, math.ceil(flat.size / slots))
    pad = groups * slots - flat.size
    if pad:
        flat = concatenate([flat, public.encrypt_zeros(pad, frac_bits=sums.frac_bits)])
    grid = flat.reshape(groups, slots)
    acc = grid[:, 0]
    shift = 1 << slot_bits
    for k in range(1, slots):
        acc = acc * shift + grid[:, k]
    return acc, slots


def unpack_sums(packed: Any, slot_bits: int, slots: int, count: int) -> np.ndarray:
    """Inverse of :func:`pack_sums` on the decrypted integers: the first ``count`` values."""
    mask = (1 << slot_bits) - 1
    out = []
    for word in packed:
        word = int(word)
        if word < 0 or word.bit_length() > slot_bits * slots:
            raise ProtocolError("hetero_binning: a packed histogram value is out of range")
        out.extend((word >> ((slots - 1 - k) * slot_bits)) & mask for k in range(slots))
    if len(out) < count:
        raise ProtocolError("hetero_binning: the packed histogram holds too few values")
    return np.array(out[:count], dtype=np.int64)


def _document(ctx: Context, params: Any, body: dict[str, Any]) -> dict[str, Any]:
    return model_io.build(component=COMPONENT, component_version=VERSION, role=ctx.role, model_id=ctx.session_id,
                          params=params.model_dump(mode="json"), body=body)


def _own_feature_entry(feature: dict[str, Any], party: str) -> dict[str, Any]:
    rows = B.bin_table(feature["spec"], feature["counts"], feature["events"], feature["woe"], feature["iv_bins"])
    return {"name": feature["name"], "party": party, "own": True, "spec": feature["spec"], "bins": rows,
            "woe": [float(w) for w in feature["woe"]], "iv": float(feature["iv"])}


# ----------------------------------------------------------------------- guest


def guest(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    frame = as_frame(inputs["data"])
    ids = id_column_texts(frame, params.id_column)
    y = label_vector(frame, params.label_column)
    n = len(y)
    total_events = int(y.sum())
    total_non_events = n - total_events
    columns = _feature_columns(frame, params, {params.id_column, params.label_column})
    own, own_index, dropped = _fit(frame, columns, params)

    public, private = generate_keypair(params.key_bits, insecure_allow_small_keys=params.insecure_allow_small_keys)
    peer = ctx.peer
    nonce = new_nonce()
    peer.send("hello", {"protocol": PROTOCOL, "rows": n, "nonce": nonce, "host_learns": params.host_learns,
                        "public_key": public.to_bytes(), "label_bound": 1})
    # Encrypting the first chunk of labels does not need the host's answer: it overlaps
    # with the host fitting its bins. Nothing is sent before the rows are known to align.
    n_chunks = max(1, math.ceil(n / CHUNK))
    first = public.encrypt_int(y[:CHUNK])
    reply = peer.recv("hello")
    if not isinstance(reply, dict) or reply.get("protocol") != PROTOCOL:
        raise ProtocolError(f"hetero_binning: the host does not run {PROTOCOL}")
    if reply.get("host_learns") != params.host_learns:
        raise ProtocolError(
            f"hetero_binning: the parties disagree on host_learns (guest {params.host_learns!r}, "
            f"host {reply.get('host_learns')!r}); both must set the same")
    check_aligned(ids, nonce, reply.get("digest"), reply.get("rows"), "hetero_binning")

    # The labels, encrypted chunk by chunk so the first ones travel while the rest are encrypted.
    for i, chunk_ctx in ctx.range("labels", n_chunks):
        ctx.report(fraction=0.5 * i / n_chunks, stage=f"encrypting labels: {round(100 * i / n_chunks)}%")
        encrypted = first if i == 0 else public.encrypt_int(y[i * CHUNK:(i + 1) * CHUNK])
        chunk_ctx.peer.send("chunk", BigIntArray(encrypted.ciphertexts))
    del first

    own_tables = B.feature_tables(own, own_index, y, params.smoothing)

    histogram = peer.recv("histogram")
    host_features = _read_histogram(histogram, n)
    m = len(host_features["ids"])
    width = host_features["counts"].shape[1] if m else 0
    events = np.zeros((m, width), dtype=np.int64)
    if m:
        slot_bits, slots = host_features["slot_bits"], host_features["slots"]
        if len(histogram["packed"]) != math.ceil(m * width / slots) or slot_bits * slots >= public.max_int.bit_length():
            raise ProtocolError("hetero_binning: the packed histogram does not match its layout")
        # The tightest bound that holds every packed group: a tampered value falls outside it.
        packed = EncryptedArray.from_ciphertexts(
            public, histogram["packed"].to_mpz(), frac_bits=0, bound=(1 << (slot_bits * slots)) - 1)
        flat = unpack_sums(private.decrypt_int(packed).tolist(), host_features["slot_bits"],
                           host_features["slots"], m * width)
        events = flat.reshape(m, width)
    counts = host_features["counts"]
    if np.any(events < 0) or np.any(events > counts):
        raise ProtocolError("hetero_binning: the host's event sums do not fit its bin sizes")

    host_entries = []
    host_results_iv, host_results_woe = [], []
    for j in range(m):
        k = host_features["n_value_bins"][j]
        c, e = counts[j, : k + 1], events[j, : k + 1]
        woe, iv_bins, iv = B.woe_iv(e, c, total_events, total_non_events, params.smoothing)
        labels = [f"bin {b}" for b in range(k)] + [B.MISSING]
        spec = {"type": "opaque", "n_value_bins": k}
        host_entries.append({
            "name": host_features["ids"][j], "display_name": host_features["names"][j], "party": "host",
            "party_id": peer.party_id, "own": False, "n_value_bins": k,
            "bins": B.bin_table(spec, c, e, woe, iv_bins, labels), "woe": [float(w) for w in woe], "iv": iv,
        })
        host_results_iv.append(iv)
        host_results_woe.append([float(w) for w in woe])

    if params.host_learns != "nothing":
        result: dict[str, Any] = {"iv": [float(v) for v in host_results_iv]}
        if params.host_learns == "woe":
            result["woe"] = host_results_woe
        peer.send("result", result)

    features = [_own_feature_entry(f, "guest") for f in own_tables] + host_entries
    body = {
        "id_column": params.id_column, "label_column": params.label_column, "method": params.method,
        "n_bins": params.n_bins, "smoothing": params.smoothing, "host_learns": params.host_learns,
        "rows": n, "events": total_events, "non_events": total_non_events,
        "features": features, "dropped": dropped,
    }
    document = _document(ctx, params, body)
    ranking = sorted(features, key=lambda f: (-f["iv"], f["party"], f["name"]))
    metrics = {
        "rows": n, "events": total_events, "non_events": total_non_events,
        "iv": {f["name"]: f["iv"] for f in features if f["party"] == "guest"},
        "host_iv": {f["name"]: f["iv"] for f in features if f["party"] == "host"},
        "features": [{"party": f["party"], "feature": f["name"], "display_name": f.get("display_name"),
                      "iv": f["iv"], "bins": len(f["bins"])} for f in ranking],
        "dropped": dropped,
    }
    outputs: dict[str, Any] = {"model": document, "metrics": metrics}
    if params.transform:
        outputs["data"] = B.apply_model(document, frame)
    return outputs


def _read_histogram(message: Any, n: int) -> dict[str, Any]:
    """Check the shape of the host's histogram message; return its parts."""
    bad = ProtocolError("hetero_binning: malformed histogram from the host")
    if not isinstance(message, dict):
        raise bad
    ids, names, k = message.get("features"), message.get("names"), message.get("n_value_bins")
    counts, slot_bits, slots = message.get("counts"), message.get("slot_bits"), message.get("slots")
    if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids) and isinstance(k, list)
            and len(k) == len(ids) and all(isinstance(v, int) and 1 <= v <= 1024 for v in k)):
        raise bad
    if names is None:
        names = [None] * len(ids)
    if not (isinstance(names, list) and len(names) == len(ids)):
        raise bad
    if ids:
        width = max(k) + 1
        if not (isinstance(counts, np.ndarray) and counts.dtype == np.int64 and counts.shape == (len(ids), width)):
            raise bad
        if not (isinstance(slot_bits, int) and isinstance(slots, int) and 1 <= slot_bits <= 64 and slots >= 1):
            raise bad
        if not isinstance(message.get("packed"), BigIntArray):
            raise bad
        for j, kj in enumerate(k):
            if counts[j].min() < 0 or counts[j, kj + 1:].any() or int(counts[j].sum()) != n:
                raise ProtocolError("hetero_binning: the host's bin sizes do not add up to the row count")
    else:
        counts = np.zeros((0, 0), dtype=np.int64)
    return {"ids": ids, "names": names, "n_value_bins": k, "counts": counts, "slot_bits": slot_bits,
            "slots": slots}


# ------------------------------------------------------------------------ host


def host(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    if params.transform and params.host_learns != "woe":
        raise InvalidParameters(
            "transform on the host needs host_learns='woe' (the host cannot WOE-transform bins whose WOE it "
            "is not told); set transform to false for the host or host_learns to 'woe'",
            param="transform", component=COMPONENT)
    frame = as_frame(inputs["data"])
    ids = id_column_texts(frame, params.id_column)
    n = len(frame)
    columns = _feature_columns(frame, params, {params.id_column})
    if not columns:
        raise InvalidInput("hetero_binning: the host has no feature column to bin", input="data")
    # Bins first: a degenerate column stops the job before the guest encrypts anything.
    features, index, dropped = _fit(frame, columns, params)
    if not features:
        raise InvalidInput("hetero_binning: every host feature column was dropped as degenerate", input="data")
    peer = ctx.peer
    hello = peer.recv("hello")
    if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL or not isinstance(hello.get("nonce"), bytes):
        raise ProtocolError(f"hetero_binning: the guest does not run {PROTOCOL}")
    peer.send("hello", {"protocol": PROTOCOL, "rows": n, "digest": rows_digest(ids, hello["nonce"]),
                        "host_learns": params.host_learns})
    if hello.get("host_learns") != params.host_learns:
        raise ProtocolError(
            f"hetero_binning: the parties disagree on host_learns (guest {hello.get('host_learns')!r}, "
            f"host {params.host_learns!r}); both must set the same")
    if hello.get("rows") != n:
        raise ProtocolError(f"hetero_binning: the guest has {hello.get('rows')} rows and the host {n}")
    key_bytes = hello.get("public_key")
    if not isinstance(key_bytes, bytes):
        raise ProtocolError("hetero_binning: the guest sent no public key")
    public = PublicKey.from_bytes(key_bytes, insecure_allow_small_keys=params.insecure_allow_small_keys)
    if public.bits < params.key_bits and not params.insecure_allow_small_keys:
        raise ProtocolError(f"hetero_binning: the guest's key has {public.bits} bits, fewer than key_bits")
    if hello.get("label_bound") != 1:
        raise ProtocolError("hetero_binning: labels must be 0/1")

    m = len(features)
    k = [f["spec"]["n_value_bins"] for f in features]
    width = max(k) + 1
    counts = np.zeros((m, width), dtype=np.int64)
    for j in range(m):
        counts[j, : k[j] + 1] = B.bin_counts(index[:, j], k[j] + 1)

    n_chunks = max(1, math.ceil(n / CHUNK))
    ciphertexts: list[Any] = []
    for i, chunk_ctx in ctx.range("labels", n_chunks):
        chunk = chunk_ctx.peer.recv("chunk")
        expected = min(CHUNK, n - i * CHUNK) if n else 0
        if not isinstance(chunk, BigIntArray) or len(chunk) != expected or len(chunk.shape) != 1:
            raise ProtocolError("hetero_binning: a label chunk has the wrong size")
        ciphertexts.extend(chunk.to_mpz())
    labels = EncryptedArray.from_ciphertexts(public, ciphertexts, frac_bits=0, bound=1)
    sums = labels.bucket_sum(index, width)  # (m, width): [[events]] per bin, all features at once
    slot_bits = max(1, n.bit_length())
    packed, slots = pack_sums(sums, slot_bits)
    packed = packed.rerandomize()  # the guest holds the key: hide how the sums were computed
    opaque = [f"h{j}" for j in range(m)]
    peer.send("histogram", {
        "features": opaque, "names": [f["name"] for f in features] if params.share_feature_names else None,
        "n_value_bins": k, "counts": counts, "packed": BigIntArray(packed.ciphertexts),
        "slot_bits": slot_bits, "slots": slots,
    })

    iv = woe = None
    if params.host_learns != "nothing":
        result = peer.recv("result")
        if not isinstance(result, dict) or not isinstance(result.get("iv"), list) or len(result["iv"]) != m:
            raise ProtocolError("hetero_binning: malformed result from the guest")
        iv = [float(v) for v in result["iv"]]
        if params.host_learns == "woe":
            woe = result.get("woe")
            if not (isinstance(woe, list) and len(woe) == m
                    and all(isinstance(w, list) and len(w) == k[j] + 1 for j, w in enumerate(woe))):
                raise ProtocolError("hetero_binning: malformed WOE from the guest")
            woe = [[float(v) for v in w] for w in woe]

    entries = []
    for j, feature in enumerate(features):
        rows = B.bin_table(feature["spec"], counts[j], None, None if woe is None else woe[j], None)
        entry: dict[str, Any] = {"name": feature["name"], "id": opaque[j], "party": "host", "own": True,
                                 "spec": feature["spec"], "bins": rows}
        if iv is not None:
            entry["iv"] = iv[j]
        if woe is not None:
            entry["woe"] = woe[j]
        entries.append(entry)
    body = {
        "id_column": params.id_column, "label_column": None, "method": params.method, "n_bins": params.n_bins,
        "smoothing": params.smoothing, "host_learns": params.host_learns, "rows": n,
        "features": entries, "dropped": dropped,
    }
    document = _document(ctx, params, body)
    metrics = {
        "rows": n, "host_learns": params.host_learns,
        "features": [{"feature": e["name"], "id": e["id"], "bins": len(e["bins"]), "iv": e.get("iv")}
                     for e in entries],
        "dropped": dropped,
    }
    if iv is not None:
        metrics["iv"] = {e["name"]: e["iv"] for e in entries}
    outputs: dict[str, Any] = {"model": document, "metrics": metrics}
    if params.transform:
        outputs["data"] = B.apply_model(document, frame)
    return outputs
