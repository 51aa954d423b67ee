"""SecureBoost, host side (feature provider): encrypted histograms, its own splits.

The host never holds a key that opens anything it receives: gradients arrive
encrypted under the guest's key. It bins its own features, builds encrypted
histograms for the nodes the guest asks about (smaller child by bucket sums,
larger child as parent minus sibling), sends packed, re-randomised cumulative
sums under fresh random candidate ids, and applies its own threshold when the
guest picks one of its candidates. Its thresholds and feature names stay here:
they go into the host's half of the model, keyed by the opaque split id.

Messages and what each party learns: see the package docstring
(:mod:`engine.components.secureboost`).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import numpy as np

from engine.components.secureboost import protocol as P
from engine.components.secureboost.common import (
    COMPONENT,
    VERSION,
    apply_transform,
    as_frame,
    check_host_body,
    check_same_resume,
    default_features,
    host_routing,
    ids_sha256,
    params_record,
    read_checkpoint,
    read_ids,
    resume_point,
    write_checkpoint,
)
from engine.crypto.he import EncryptedArray, HEPublicKey, bucket_sum, concatenate
from engine.errors import InvalidInput
from engine.federation.context import Context
from engine.ml import model_io
from engine.ml import tree as T
from engine.wire import BigIntArray


def _bucket_counts(codes: np.ndarray, n_buckets: int) -> np.ndarray:
    m = codes.shape[1]
    flat = (codes.astype(np.int64) + np.arange(m, dtype=np.int64) * n_buckets).ravel()
    return np.bincount(flat, minlength=m * n_buckets).reshape(m, n_buckets)


class _TreeState:
    """What the host tracks while one tree grows: node rows, histograms, pending candidates."""

    def __init__(self, encrypted: EncryptedArray, rows: np.ndarray, n_rows: int):
        self.encrypted = encrypted
        self.slot = np.full(n_rows, -1, dtype=np.int64)
        self.slot[rows] = np.arange(len(rows))
        self.rows: dict[int, np.ndarray] = {0: rows}
        self.family: dict[int, tuple[int, int]] = {}  # child -> (parent, sibling)
        self.hist: dict[int, EncryptedArray] = {}
        self.pending: dict[int, dict[int, tuple[int, int]]] = {}  # node -> candidate id -> (feature, bin)
        self.frontier: set[int] = {0}


def _histogram(state: _TreeState, node: int, binned: T.BinnedColumns, work: dict[str, Any]) -> EncryptedArray:
    rows = state.rows[node]
    work["histogram_row_features"] += len(rows) * len(binned.features)
    subset = state.encrypted if node == 0 else state.encrypted[state.slot[rows]]
    return bucket_sum(subset, binned.codes[rows], binned.n_buckets)


def _level_histograms(state: _TreeState, plan: list[int], binned: T.BinnedColumns, work: dict[str, Any]) -> None:
    """Histograms of every planned node; the larger of two siblings as parent minus the smaller."""
    if not binned.features:  # nothing to offer: every node gets an empty candidate list
        state.hist = {}
        return
    tick = time.perf_counter()
    fresh: dict[int, EncryptedArray] = {}
    for node in plan:
        if node in fresh:
            continue
        if node == 0:
            fresh[0] = _histogram(state, 0, binned, work)
            continue
        parent, sibling = state.family[node]
        # Bucket-sum only the smaller child: at most half the parent's rows per level.
        small, large = sorted((node, sibling), key=lambda c: (len(state.rows[c]), c))
        fresh[small] = _histogram(state, small, binned, work)
        if large in plan:
            fresh[large] = state.hist[parent] - fresh[small]
    state.hist = {node: fresh[node] for node in plan}
    work["seconds"]["histograms"] += time.perf_counter() - tick


def _candidates(state: _TreeState, node: int, binned: T.BinnedColumns) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Flat indices into the node's (feature, bucket) grid of the candidates worth sending.

    A candidate "bin <= t" is dropped when bin ``t`` is empty in this node (it
    would partition the node exactly like ``t - 1``, or leave the left side
    empty) or when every row of the node is at or below it (empty right side).
    The central learner's tie rule (lowest bin first) picks the same split
    either way: dropped candidates tie with a kept lower one or have gain 0.
    """
    rows = state.rows[node]
    if not binned.features:
        return np.empty(0, dtype=np.int64), []
    counts = _bucket_counts(binned.codes[rows], binned.n_buckets)
    n_bins = binned.n_bins
    width = binned.n_buckets
    t = np.arange(width)[None, :]
    cumulative = np.cumsum(counts, axis=1)
    keep = (t < n_bins[:, None]) & (counts > 0) & (cumulative < len(rows))
    features, bins = np.nonzero(keep)
    return features * width + bins, list(zip(features.tolist(), bins.tolist()))


def _send_histograms(lctx: Context, state: _TreeState, plan: list[int], binned: T.BinnedColumns,
                     layout: P.Layout, public_key: HEPublicKey, work: dict[str, Any], taken: set[int]) -> None:
    """Pack and send the kept candidates of every planned node; ``taken``: ids used so far in training."""
    entries, pieces = [], []
    for node in plan:
        flat, pairs = _candidates(state, node, binned)
        order = P.secure_permutation(len(pairs))
        ids = P.new_opaque_ids(len(pairs), taken)
        # Shuffled, under fresh random ids: the guest cannot tell which feature or bin a sum is for.
        state.pending[node] = {int(i): pairs[k] for i, k in zip(ids.tolist(), order.tolist())}
        entries.append({"node": node, "ids": ids})
        if len(pairs):
            cumulative = state.hist[node].cumsum(axis=-1).ravel()
            pieces.append(cumulative[flat[order]])
    width = layout.pair_width(max(len(state.rows[node]) for node in plan))
    slots = P.slots_per_ciphertext(public_key, width)
    ciphertexts: list[Any] = []
    if pieces:
        values = concatenate(pieces) if len(pieces) > 1 else pieces[0]
        entry_bound = max(len(state.rows[node]) for node in plan) * layout.sample_bound
        tick = time.perf_counter()
        packed = P.pack(values, entry_bound, width, slots)
        work["seconds"]["packing"] += time.perf_counter() - tick
        tick = time.perf_counter()
        # The guest knows the key's factorisation: fresh full-length randomness (Paillier's
        # r**n, OU's H**r) hides which ciphertexts were multiplied together (i.e. which rows fell in which bin).
        ciphertexts = packed.rerandomize().ciphertexts
        work["seconds"]["rerandomize"] += time.perf_counter() - tick
        work["candidates_sent"] += values.size
        work["ciphertexts_sent"] += len(ciphertexts)
    lctx.peer.send("histograms", {"nodes": entries, "width": width, "slots": slots,
                                  "ciphertexts": BigIntArray(ciphertexts)})


def _apply_decisions(lctx: Context, state: _TreeState, plan: list[int], binned: T.BinnedColumns,
                     tree_index: int, splits: dict[str, dict[str, Any]], this_tree: list[str]) -> None:
    message = lctx.peer.recv("decisions")
    P.expect(isinstance(message, dict) and isinstance(message.get("splits"), list), "decisions: malformed")
    planned = set(plan)
    replies = []
    next_id = max(state.rows) + 1
    frontier: set[int] = set()
    for decision in message["splits"]:
        P.expect(isinstance(decision, dict), "decisions: malformed entry")
        node = decision.get("node")
        P.expect(node in planned, "decisions: a node that was not planned")
        planned.discard(node)
        children = decision.get("children")
        P.expect(children == [next_id, next_id + 1], "decisions: unexpected child ids")
        next_id += 2
        rows = state.rows[node]
        if decision.get("owner") == "guest":
            left = P.unpack_mask(decision.get("left"), len(rows), "decisions")
            P.expect(bool(left.any() and not left.all()), "decisions: a split must send rows both ways")
        else:
            P.expect(decision.get("owner") == "host", "decisions: unknown owner")
            offered = state.pending[node]
            tied = P.int_list(decision.get("candidates"), "decisions candidates")
            P.expect(bool(tied) and all(c in offered for c in tied), "decisions: unknown candidate id")
            # Exactly equal gains: the lowest (feature, bin) wins, as in the central learner.
            chosen = min(tied, key=lambda c: offered[c])
            j, b = offered[chosen]
            split_id = P.split_id_text(chosen)
            left = binned.codes[rows, j] <= b
            name = binned.features[j]
            splits[split_id] = {"feature": name, "bin": int(b),
                                "threshold": T.threshold_of(binned.edges[j], b), "tree": tree_index}
            this_tree.append(split_id)
            replies.append({"node": node, "split_id": split_id, "left": P.pack_mask(left)})
        left_id, right_id = children
        state.rows[left_id], state.rows[right_id] = rows[left], rows[~left]
        state.family[left_id] = (node, right_id)
        state.family[right_id] = (node, left_id)
        frontier.update(children)
    state.frontier = frontier
    state.pending = {}
    lctx.peer.send("partitions", {"splits": replies})


def train(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    transform = inputs.get("transform")
    frame = apply_transform(transform, as_frame(inputs["data"], "data"), "data")
    ids = read_ids(frame, params.id_column, "data")
    n = len(ids)
    features = default_features(frame, params, role="host")
    binned = T.bin_columns(T.feature_matrix(frame, features), features, params.max_bins,
                           degenerate=params.degenerate_columns)
    valid = None
    if inputs.get("validate") is not None:
        vframe = apply_transform(transform, as_frame(inputs["validate"], "validate"), "validate")
        valid = (read_ids(vframe, params.id_column, "validate"),
                 binned.codes_for(T.feature_matrix(vframe, binned.features, input="validate")))

    resume = read_checkpoint(inputs.get("resume"), "host", ids, params)
    start = resume_point(resume, params.n_trees)
    setup = ctx.sub("setup")
    nonce = os.urandom(32)
    setup.peer.send("hello", {"protocol": P.PROTOCOL, "nonce": nonce, "rows": n, "resume_tree": start,
                              "validate_rows": None if valid is None else len(valid[0]),
                              "he_scheme": params.he_scheme})
    hello = setup.peer.recv("hello")
    P.expect(isinstance(hello, dict) and hello.get("protocol") == P.PROTOCOL,
             "the guest does not run the same SecureBoost protocol")
    if hello.get("rows") != n:
        raise InvalidInput(f"the host has {n} training rows but the guest has {hello.get('rows')}: "
                           "align both tables with psi first", input="data")
    if hello.get("validate_rows") != (None if valid is None else len(valid[0])):
        raise InvalidInput("the guest and the host must both give the 'validate' input, with the same rows",
                           input="validate")
    check_same_resume(start, hello.get("resume_tree"))
    if resume and hello.get("model_id") != resume["model_id"]:
        raise InvalidInput("the guest resumes another training than this checkpoint's", input="resume")
    for name in ("n_trees", "max_depth"):
        P.expect(hello.get(name) == getattr(params, name),
                 f"the parties disagree on {name} ({hello.get(name)} at the guest, {getattr(params, name)} here)")
    public_key = P.read_public_key(hello, params.he_scheme, min_bits=params.key_bits,
                                   insecure_allow_small_keys=params.insecure_allow_small_keys)
    layout_msg = hello.get("layout")
    layout = P.Layout.for_rows(params.precision_bits, n)
    P.expect(isinstance(layout_msg, dict) and layout_msg == {"frac_bits": layout.frac_bits, "h_bits": layout.h_bits},
             "the parties disagree on precision_bits")
    consistency = hello.get("consistency_rows")
    P.expect(isinstance(consistency, int) and 0 <= consistency <= n, "hello: bad consistency_rows")
    nonce_g = hello.get("nonce")
    P.expect(isinstance(nonce_g, bytes) and len(nonce_g) == 32, "hello: the nonce must be 32 bytes")
    import hashlib

    salt = hashlib.sha256(nonce_g + nonce).digest()
    setup.peer.send("ids", {"data": P.ids_digest(salt, ids),
                            "validate": None if valid is None else P.ids_digest(salt, valid[0])})
    theirs = setup.peer.recv("ids")
    P.expect(isinstance(theirs, dict), "ids: malformed")
    if theirs.get("data") != P.ids_digest(salt, ids):
        raise InvalidInput("the guest's and the host's rows are not aligned (different ids or order): "
                           "run psi on both tables first", input="data")
    if theirs.get("validate") != (None if valid is None else P.ids_digest(salt, valid[0])):
        raise InvalidInput("the guest's and the host's validation rows are not aligned", input="validate")

    splits: dict[str, dict[str, Any]] = {}
    work: dict[str, Any] = {"histogram_row_features": 0, "candidates_sent": 0, "ciphertexts_sent": 0,
                            "seconds": {"histograms": 0.0, "packing": 0.0, "rerandomize": 0.0}}
    trees_grown = 0
    used_ids: set[int] = set()  # candidate ids become split ids: never reuse one in a training
    if resume:
        splits, used_ids, trees_grown = resume["splits"], set(resume["used_ids"]), resume["trees_grown"]
        work.update(resume["work"])
    for t, tctx in ctx.range("tree", params.n_trees):
        if t < start:
            continue  # grown before the checkpoint we resume from
        ctx.report(fraction=t / params.n_trees, stage=f"tree {t + 1} of {params.n_trees}")
        message = tctx.peer.recv("gradients")
        P.expect(isinstance(message, dict) and isinstance(message.get("ciphertexts"), BigIntArray),
                 "gradients: malformed")
        if message.get("sample") is None:
            rows = np.arange(n, dtype=np.int64)
        else:
            rows = np.flatnonzero(P.unpack_mask(message["sample"], n, "gradients sample"))
        P.expect(len(message["ciphertexts"]) == len(rows) and len(rows) >= 1, "gradients: wrong count")
        encrypted = EncryptedArray.from_ciphertexts(public_key, message["ciphertexts"].to_mpz(), frac_bits=0,
                                                    bound=layout.sample_bound)
        state = _TreeState(encrypted, rows, n)
        this_tree: list[str] = []
        for depth in range(params.max_depth):
            lctx = tctx.sub(f"level{depth}")
            message = lctx.peer.recv("plan")
            P.expect(isinstance(message, dict), "plan: malformed")
            plan = P.int_list(message.get("nodes"), "plan")
            if not plan:
                break
            P.expect(len(set(plan)) == len(plan) and set(plan) <= state.frontier, "plan: unknown nodes")
            _level_histograms(state, plan, binned, work)
            _send_histograms(lctx, state, plan, binned, layout, public_key, work, used_ids)
            _apply_decisions(lctx, state, plan, binned, t, splits, this_tree)
        trees_grown += 1
        oob = np.flatnonzero(state.slot < 0)
        if oob.size or valid is not None:
            # Rows the tree was not grown on, and validation rows: where each of this tree's
            # host splits sends them. The guest needs it to update their margins.
            routes: dict[str, Any] = {}
            if oob.size:
                routes["train"] = {sid: P.pack_mask(_left(binned, splits[sid], binned.codes[oob])) for sid in this_tree}
            if valid is not None:
                routes["validate"] = {sid: P.pack_mask(_left(binned, splits[sid], valid[1])) for sid in this_tree}
            tctx.peer.send("routes", routes)
        verdict = tctx.peer.recv("next")
        P.expect(isinstance(verdict, dict) and isinstance(verdict.get("stop"), bool), "next: malformed")
        write_checkpoint(params, "host", hello.get("model_id") or "", t + 1, {
            "stopped": verdict["stop"], "ids_sha256": ids_sha256(ids), "splits": splits,
            "used_ids": sorted(used_ids), "trees_grown": trees_grown, "work": work,
        })
        if verdict["stop"]:
            break
    final = ctx.sub("final").peer.recv("final")
    keep = final.get("trees") if isinstance(final, dict) else None
    P.expect(isinstance(keep, int) and 0 <= keep <= trees_grown, "final: bad tree count")
    kept = {sid: split for sid, split in splits.items() if split["tree"] < keep}

    importance: dict[str, dict[str, int]] = {}
    for split in kept.values():
        entry = importance.setdefault(split["feature"], {"splits": 0})
        entry["splits"] += 1
    body = {
        "id_column": params.id_column,
        "features": binned.features,
        "skipped_features": binned.skipped,
        "bins": {name: edges.tolist() for name, edges in zip(binned.features, binned.edges)},
        "missing_values": "right",
        "splits": kept,
        "feature_importance": importance,
        "transform": transform,
    }
    check_host_body(body)
    sample_ids = ids[:consistency]
    sample = T.feature_matrix(frame.iloc[:consistency], binned.features)
    document = model_io.build(
        component=COMPONENT, component_version=VERSION, role="host", model_id=hello.get("model_id") or uuid.uuid4().hex,
        params=params_record(params), body=body,
        sample_check={"ids": sample_ids, "scores": _routing_bits(body, sample),
                      "what": "1.0 if the row goes left at the split, for each split (in split id order) "
                              "then each row"},
    )
    metrics = {
        "trees": keep,
        "splits": len(kept),
        "feature_importance": importance,
        "skipped_features": binned.skipped,
        "work": work,
        "seconds": {"total": time.perf_counter() - started},
    }
    return {"model": document, "metrics": metrics}


def _left(binned: T.BinnedColumns, split: dict[str, Any], codes: np.ndarray) -> np.ndarray:
    return codes[:, binned.features.index(split["feature"])] <= split["bin"]


def _routing_bits(body: dict[str, Any], matrix: np.ndarray) -> list[float]:
    split_ids = sorted(body["splits"])
    routing = host_routing(body, matrix, split_ids)
    return [float(v) for sid in split_ids for v in routing[sid].tolist()]


# ---------------------------------------------------------------- prediction


def predict(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    document = inputs["model"]
    if not isinstance(document, dict):
        raise InvalidInput("input 'model' must be a model document", input="model")
    checked = model_io.loads(model_io.dumps(document), component=COMPONENT, role="host")
    body = checked["body"]
    check_host_body(body)
    transform = body.get("transform") or inputs.get("transform")
    frame = apply_transform(transform, as_frame(inputs["data"], "data"), "data")
    ids = read_ids(frame, params.id_column, "data")
    n = len(ids)
    matrix = T.feature_matrix(frame, body["features"])

    setup = ctx.sub("setup")
    nonce = os.urandom(32)
    setup.peer.send("hello", {"protocol": P.PREDICT_PROTOCOL, "nonce": nonce,
                              "model_id": document["model_id"], "rows": n})
    hello = setup.peer.recv("hello")
    P.expect(isinstance(hello, dict) and hello.get("protocol") == P.PREDICT_PROTOCOL,
             "the guest does not run the same prediction protocol")
    if hello.get("model_id") != document["model_id"]:
        raise InvalidInput("the guest's and the host's model halves come from different trainings "
                           "(model ids differ)", input="model")
    if hello.get("rows") != n:
        raise InvalidInput(f"the host has {n} rows to score but the guest has {hello.get('rows')}: "
                           "align both tables with psi first", input="data")
    nonce_g = hello.get("nonce")
    P.expect(isinstance(nonce_g, bytes) and len(nonce_g) == 32, "hello: the nonce must be 32 bytes")
    import hashlib

    salt = hashlib.sha256(nonce_g + nonce).digest()
    setup.peer.send("ids", {"data": P.ids_digest(salt, ids), "validate": None})
    theirs = setup.peer.recv("ids")
    if not isinstance(theirs, dict) or theirs.get("data") != P.ids_digest(salt, ids):
        raise InvalidInput("the guest's and the host's rows are not aligned (different ids or order): "
                           "run psi on both tables first", input="data")

    split_ids = sorted(body["splits"])
    routing = host_routing(body, matrix, split_ids)
    # Per host split, which rows go left: all the guest needs to route every row.
    ctx.sub("route").peer.send("routes", {"data": {sid: P.pack_mask(routing[sid]) for sid in split_ids}})

    status = "not requested"
    sample = checked.get("sample_check")
    if params.check_consistency:
        status = "no sample stored"
        if sample and sample.get("ids"):
            position = {text: i for i, text in enumerate(ids)}
            if all(text in position for text in sample["ids"]):
                rows = [position[text] for text in sample["ids"]]
                recomputed = [float(v) for sid in split_ids for v in routing[sid][rows].tolist()]
                model_io.check_consistency(sample["scores"], recomputed)
                status = "passed"
            else:
                status = "skipped: the sample rows are not in this table"
    return {"metrics": {"rows": n, "splits_routed": len(split_ids), "consistency_check": status}}
