"""SecureBoost, guest side (label holder): drives training and prediction.

The guest owns the key pair (Paillier or Okamoto-Uchiyama, as ``he_scheme``
says), the labels, the gradients, the tree structure and every leaf value.
Messages and what each party learns: see the package docstring
(:mod:`engine.components.secureboost`).

What the guest sends: the public key, encrypted packed ``(g, h)`` per sample,
the row sample of each tree, which nodes to examine, its own splits as row
partitions of a node (never its features or thresholds), the opaque ids of
the host candidates it picks, and stop decisions. What it receives: packed,
re-randomised encrypted histogram sums keyed by per-node random ids, and row
partitions for the host's splits -- never a host feature name, value or
threshold.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from engine.components.secureboost import protocol as P
from engine.components.secureboost.common import (
    COMPONENT,
    VERSION,
    apply_transform,
    as_frame,
    boost_params,
    check_guest_body,
    check_same_resume,
    default_features,
    guest_margin,
    host_split_ids,
    ids_sha256,
    params_record,
    read_checkpoint,
    read_ids,
    resume_point,
    write_checkpoint,
)
from engine.crypto import he
from engine.crypto.he import EncryptedArray
from engine.crypto.owner import OwnerEncryptor
from engine.errors import InvalidInput, InvalidParameters, ProtocolError
from engine.federation.context import Context
from engine.ml import model_io
from engine.ml import tree as T
from engine.ml.columns import label_vector
from engine.wire import BigIntArray

# ------------------------------------------------------------------ training


class _GuestSplitter:
    """Finds splits over the guest's own features in plaintext and the host's under encryption."""

    def __init__(self, tctx: Context, binned: T.BinnedColumns, gq: np.ndarray, hq: np.ndarray,
                 params: T.BoostParams, private_key: Any, layout: P.Layout, work: dict[str, Any]):
        self.tctx = tctx
        self.binned = binned
        self.gq, self.hq = gq, hq
        self.params = params
        self.private_key = private_key
        self.public_key = private_key.public_key
        self.layout = layout
        self.n_bins = binned.n_bins
        self.work = work

    def _level(self, depth: int) -> Context:
        return self.tctx.sub(f"level{depth}")

    def _own_best(self, nd: dict) -> tuple[float, int, int] | None:
        if not self.binned.features:
            return None
        p = self.params
        rows = nd["rows"]
        g_hist, h_hist, _ = T.node_histograms(self.binned.codes[rows], self.gq[rows], self.hq[rows],
                                              self.binned.n_buckets)
        width = int(self.n_bins.max())
        valid = np.arange(width)[None, :] < self.n_bins[:, None]
        gains = T.split_gains(T.candidate_sums(g_hist, self.n_bins), T.candidate_sums(h_hist, self.n_bins),
                              nd["G"], nd["H"], l2=p.l2, min_child_weight=p.min_child_weight,
                              bits=p.precision_bits, valid=valid)
        return T.best_candidate(gains)

    def find(self, depth: int, nodes: list[dict]) -> list[dict | None]:
        lctx = self._level(depth)
        lctx.peer.send("plan", {"nodes": [nd["id"] for nd in nodes]})
        # The guest's own candidates are computed while the host builds its histograms.
        own = [self._own_best(nd) for nd in nodes]
        message = lctx.peer.recv("histograms")
        host = self._host_candidates(message, nodes)
        p = self.params
        out: list[dict | None] = []
        for nd, mine, (ids, gl, hl) in zip(nodes, own, host):
            host_gain, tied = -np.inf, np.empty(0, dtype=np.int64)
            if ids.size:
                gains = T.split_gains(gl, hl, nd["G"], nd["H"], l2=p.l2, min_child_weight=p.min_child_weight,
                                      bits=p.precision_bits)
                host_gain = float(gains.max())
                if np.isfinite(host_gain):
                    tied = ids[gains == host_gain]
            # The guest's features come first in the joined order, so it wins ties.
            if mine is not None and mine[0] >= host_gain:
                gain, j, t = mine
                out.append({"gain": gain, "owner": "guest", "feature_index": j, "bin": t,
                            "split": {"owner": "guest", "feature": self.binned.features[j], "bin": t,
                                      "threshold": T.threshold_of(self.binned.edges[j], t)}})
            elif tied.size:
                out.append({"gain": host_gain, "owner": "host", "candidates": tied,
                            "split": {"owner": "host"}})
            else:
                out.append(None)
        return out

    def _host_candidates(self, message: Any, nodes: list[dict]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Decrypt and unpack the host's histogram message: per node (ids, GL, HL)."""
        P.expect(isinstance(message, dict), "histograms: expected a dict")
        entries = message.get("nodes")
        P.expect(isinstance(entries, list) and len(entries) == len(nodes), "histograms: wrong node list")
        width = self.layout.pair_width(max(len(nd["rows"]) for nd in nodes))
        slots = P.slots_per_ciphertext(self.public_key, width)
        P.expect(message.get("width") == width and message.get("slots") == slots,
                 "histograms: unexpected packing layout")
        counts, id_arrays = [], []
        for entry, nd in zip(entries, nodes):
            P.expect(isinstance(entry, dict) and entry.get("node") == nd["id"], "histograms: nodes out of order")
            ids = np.asarray(P.int_list(entry.get("ids"), "histograms ids"), dtype=np.int64)
            P.expect(len(set(ids.tolist())) == ids.size, "histograms: repeated candidate ids")
            counts.append(ids.size)
            id_arrays.append(ids)
        total = sum(counts)
        ciphertexts = message.get("ciphertexts")
        P.expect(isinstance(ciphertexts, BigIntArray), "histograms: ciphertexts must be a BigIntArray")
        groups = -(-total // slots) if total else 0
        P.expect(len(ciphertexts) == groups, "histograms: wrong number of ciphertexts")
        if total == 0:
            return [(ids, np.empty(0, np.int64), np.empty(0, np.int64)) for ids in id_arrays]
        bound = P.packed_bound(max(len(nd["rows"]) for nd in nodes) * self.layout.sample_bound, width, slots)
        packed = EncryptedArray.from_ciphertexts(self.public_key, ciphertexts.to_mpz(), frac_bits=0,
                                                 bound=min(bound, self.public_key.max_int))
        tick = time.perf_counter()
        plain = self.private_key.decrypt_int(packed)
        self.work["decrypt_s"] += time.perf_counter() - tick
        self.work["decryptions"] += groups
        self.work["host_candidates"] += total
        digits = P.unpack_pairs(plain.tolist(), width, slots, total)
        out, start = [], 0
        for ids, count, nd in zip(id_arrays, counts, nodes):
            pairs = [self.layout.decode(v) for v in digits[start:start + count]]
            start += count
            gl = np.array([g for g, _ in pairs], dtype=np.int64)
            hl = np.array([h for _, h in pairs], dtype=np.int64)
            # A left side can never exceed its node: anything else is a broken peer.
            P.expect(bool(np.all(hl <= nd["H"])) if count else True, "histograms: impossible sums")
            out.append((ids, gl, hl))
        return out

    def partition(self, depth: int, chosen: list[tuple[dict, dict]]) -> list[np.ndarray]:
        lctx = self._level(depth)
        decisions, masks = [], {}
        for nd, ch in chosen:
            decision: dict[str, Any] = {"node": nd["id"], "children": list(ch["children"]), "owner": ch["owner"]}
            if ch["owner"] == "guest":
                mask = self.binned.codes[nd["rows"], ch["feature_index"]] <= ch["bin"]
                masks[nd["id"]] = mask
                decision["left"] = P.pack_mask(mask)  # the partition only: no feature, no threshold
            else:
                decision["candidates"] = np.asarray(ch["candidates"], dtype=np.int64)
            decisions.append(decision)
        lctx.peer.send("decisions", {"splits": decisions})
        reply = lctx.peer.recv("partitions")
        P.expect(isinstance(reply, dict) and isinstance(reply.get("splits"), list), "partitions: malformed")
        host_chosen = [(nd, ch) for nd, ch in chosen if ch["owner"] == "host"]
        P.expect(len(reply["splits"]) == len(host_chosen), "partitions: wrong number of splits")
        for item, (nd, ch) in zip(reply["splits"], host_chosen):
            P.expect(isinstance(item, dict) and item.get("node") == nd["id"], "partitions: nodes out of order")
            split_id = item.get("split_id")
            P.expect(isinstance(split_id, str) and any(P.split_id_text(c) == split_id for c in ch["candidates"]),
                     "partitions: the host chose a candidate the guest did not offer")
            mask = P.unpack_mask(item.get("left"), len(nd["rows"]), "partitions")
            P.expect(bool(mask.any() and not mask.all()), "partitions: a host split must send rows both ways")
            ch["split"]["split_id"] = split_id
            masks[nd["id"]] = mask
        return [masks[nd["id"]] for nd, _ in chosen]

    def finish(self, depth: int) -> None:
        if depth < self.params.max_depth:
            self._level(depth).peer.send("plan", {"nodes": []})


def _goes_left(codes: np.ndarray, index: dict[str, int], host_masks: dict[str, np.ndarray]):
    """``goes_left(node, rows)`` for rows of a table: own codes, or the host's masks for its splits."""
    def left(nd: dict, rows: np.ndarray) -> np.ndarray:
        split = nd["split"]
        if split["owner"] == "guest":
            return codes[rows, index[split["feature"]]] <= split["bin"]
        mask = host_masks.get(split["split_id"])
        if mask is None:
            raise ProtocolError(f"the host sent no routing for split {split['split_id']}")
        return mask[rows]
    return left


def _host_routes(message: Any, section: str, split_ids: list[str], rows: int) -> dict[str, np.ndarray]:
    part = message.get(section) if isinstance(message, dict) else None
    P.expect(isinstance(part, dict) and sorted(part) == sorted(split_ids), f"routes: wrong {section} splits")
    return {sid: P.unpack_mask(part[sid], rows, f"routes {section}") for sid in split_ids}


def train(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    bp = boost_params(params)
    transform = inputs.get("transform")
    frame = apply_transform(transform, as_frame(inputs["data"], "data"), "data")
    ids = read_ids(frame, params.id_column, "data")
    y = label_vector(frame, params.label_column, input="data")
    n = len(y)
    T.check_precision(n, bp.precision_bits)
    features = default_features(frame, params, role="guest")
    binned = T.bin_columns(T.feature_matrix(frame, features), features, params.max_bins,
                           degenerate=params.degenerate_columns)
    valid = None
    if bp.early_stopping_rounds and inputs.get("validate") is None:
        raise InvalidParameters("early_stopping_rounds needs the 'validate' input (a validation set)",
                                param="early_stopping_rounds")
    if inputs.get("validate") is not None:
        vframe = apply_transform(transform, as_frame(inputs["validate"], "validate"), "validate")
        vids = read_ids(vframe, params.id_column, "validate")
        vy = label_vector(vframe, params.label_column, input="validate",
                          allow_single_class=bp.early_stopping_metric != "auc")
        vcodes = binned.codes_for(T.feature_matrix(vframe, binned.features, input="validate"))
        valid = (vids, vy, vcodes)

    public_key, private_key = he.scheme(params.he_scheme).generate_keypair(
        params.key_bits, insecure_allow_small_keys=params.insecure_allow_small_keys)
    layout = P.Layout.for_rows(bp.precision_bits, n)
    resume = read_checkpoint(inputs.get("resume"), "guest", ids, params)
    start = resume_point(resume, bp.n_trees)
    model_id = resume["model_id"] if resume else uuid.uuid4().hex
    consistency = min(params.consistency_rows, n)

    setup = ctx.sub("setup")
    nonce = os.urandom(32)
    setup.peer.send("hello", {
        "protocol": P.PROTOCOL, "nonce": nonce, "model_id": model_id, "rows": n,
        "validate_rows": None if valid is None else len(valid[1]),
        **P.public_key_fields(public_key), "layout": {"frac_bits": layout.frac_bits, "h_bits": layout.h_bits},
        "n_trees": bp.n_trees, "max_depth": bp.max_depth, "consistency_rows": consistency, "resume_tree": start,
    })
    theirs = setup.peer.recv("hello")
    P.expect(isinstance(theirs, dict) and theirs.get("protocol") == P.PROTOCOL,
             "the host does not run the same SecureBoost protocol")
    P.check_same_scheme(theirs.get("he_scheme"), params.he_scheme, "host")
    check_same_resume(start, theirs.get("resume_tree"))
    if theirs.get("rows") != n:
        raise InvalidInput(f"the guest has {n} training rows but the host has {theirs.get('rows')}: "
                           "align both tables with psi first", input="data")
    if theirs.get("validate_rows") != (None if valid is None else len(valid[1])):
        raise InvalidInput("the guest and the host must both give the 'validate' input, with the same rows",
                           input="validate")
    salt = _salt(nonce, theirs.get("nonce"))
    setup.peer.send("ids", {"data": P.ids_digest(salt, ids),
                            "validate": None if valid is None else P.ids_digest(salt, valid[0])})
    their_ids = setup.peer.recv("ids")
    _check_alignment(their_ids, P.ids_digest(salt, ids),
                     None if valid is None else P.ids_digest(salt, valid[0]))

    margin = np.full(n, T.base_margin(y))
    base = float(margin[0])
    vmargin = None if valid is None else np.full(len(valid[1]), base)
    stopper = T.EarlyStopping(bp.early_stopping_rounds, bp.early_stopping_metric)
    index = {name: j for j, name in enumerate(binned.features)}
    trees: list[list[dict]] = []
    sample_leaves: list[np.ndarray] = []
    history: list[dict[str, Any]] = []
    work: dict[str, Any] = {"encryptions": 0, "decryptions": 0, "host_candidates": 0, "decrypt_s": 0.0}
    timing = {"encrypt_s": 0.0}
    best_margin = None  # training margins at the best tree count, with early stopping
    if resume:
        trees, history = resume["trees"], resume["history"]
        sample_leaves = [np.asarray(leaves, dtype=np.int64) for leaves in resume["sample_leaves"]]
        margin = np.asarray(resume["margin"], dtype=np.float64)
        vmargin = None if resume["vmargin"] is None else np.asarray(resume["vmargin"], dtype=np.float64)
        best_margin = None if resume["best_margin"] is None else np.asarray(resume["best_margin"], dtype=np.float64)
        stopper.best_value, stopper.best_trees = resume["stopper"]["best_value"], resume["stopper"]["best_trees"]
        work.update(resume["work"])
    # The guest owns the key, so it encrypts by CRT modulo p**2 and q**2 (q for OU) in worker
    # processes: the same ciphertexts as public_key.encrypt_int, several times cheaper.
    tick = time.perf_counter()
    encryptor = OwnerEncryptor(private_key)
    timing["encrypt_s"] += time.perf_counter() - tick  # its workers' tables are part of what encrypting costs
    try:
        for t, tctx in ctx.range("tree", bp.n_trees):
            if t < start:
                continue  # grown before the checkpoint we resume from
            ctx.report(fraction=t / bp.n_trees, stage=f"tree {t + 1} of {bp.n_trees}")
            g, h = T.gradients(y, margin)
            gq, hq = T.quantize(g, h, bp.precision_bits)
            rows = T.sample_rows(n, bp.subsample, bp.seed, t)
            tick = time.perf_counter()
            encrypted = encryptor.encrypt_int(layout.encode(gq[rows], hq[rows]))
            timing["encrypt_s"] += time.perf_counter() - tick
            work["encryptions"] += len(rows)
            sampled = None
            if len(rows) < n:
                mask = np.zeros(n, dtype=bool)
                mask[rows] = True
                sampled = P.pack_mask(mask)  # the host must know which rows the tree is grown on
            tctx.peer.send("gradients", {"sample": sampled, "ciphertexts": BigIntArray(encrypted.ciphertexts)})
            splitter = _GuestSplitter(tctx, binned, gq, hq, bp, private_key, layout, work)
            nodes = T.grow_tree(rows, gq, hq, bp, splitter)
            leaf = T.leaf_of_rows(nodes, n)
            host_ids = [nd["split"]["split_id"] for nd in nodes if "split" in nd and nd["split"]["owner"] == "host"]
            oob = np.flatnonzero(leaf < 0)
            if oob.size or valid is not None:
                routes = tctx.peer.recv("routes")
                if oob.size:
                    masks = _host_routes(routes, "train", host_ids, oob.size)
                    leaf[oob] = T.route_rows(nodes, _goes_left(binned.codes[oob], index, masks), oob.size)
            margin = T.add_leaves(margin, nodes, leaf)
            sample_leaves.append(leaf[:consistency].copy())
            public = _public_nodes(nodes)
            trees.append(public)
            record: dict[str, Any] = {"tree": t, "train_logloss": T.logloss(y, margin)}
            stop = False
            if valid is not None:
                vmasks = _host_routes(routes, "validate", host_ids, len(valid[1]))
                vleaf = T.route_rows(nodes, _goes_left(valid[2], index, vmasks), len(valid[1]))
                vmargin = T.add_leaves(vmargin, nodes, vleaf)
                metrics = T.validation_metrics(valid[1], vmargin)
                record.update({f"validate_{k}": v for k, v in metrics.items()})
                stop = stopper.update(t + 1, metrics[bp.early_stopping_metric])
                if bp.early_stopping_rounds and stopper.best_trees == t + 1:
                    best_margin = margin.copy()
            history.append(record)
            ctx.report(fraction=(t + 1) / bp.n_trees, stage=f"tree {t + 1} of {bp.n_trees}",
                       metrics={k: v for k, v in record.items() if k != "tree" and isinstance(v, (int, float))})
            tctx.peer.send("next", {"stop": stop})
            write_checkpoint(params, "guest", model_id, t + 1, {
                "stopped": stop, "ids_sha256": ids_sha256(ids), "trees": trees, "history": history,
                "sample_leaves": [leaves.tolist() for leaves in sample_leaves], "margin": margin.tolist(),
                "vmargin": None if vmargin is None else vmargin.tolist(),
                "best_margin": None if best_margin is None else best_margin.tolist(),
                "stopper": {"best_value": stopper.best_value, "best_trees": stopper.best_trees}, "work": dict(work),
            })
            if stop:
                break
    finally:
        encryptor.close()
    keep = stopper.best_trees if (valid is not None and bp.early_stopping_rounds > 0) else len(trees)
    ctx.sub("final").peer.send("final", {"trees": keep})
    trees = trees[:keep]

    sample_margin = np.full(consistency, base)
    for nodes_public, leaves in zip(trees, sample_leaves):
        sample_margin = T.add_leaves(sample_margin, nodes_public, leaves)
    importance = _importance(trees)
    body = {
        "id_column": params.id_column,
        "label_column": params.label_column,
        "features": binned.features,
        "skipped_features": binned.skipped,
        "bins": {name: edges.tolist() for name, edges in zip(binned.features, binned.edges)},
        "missing_values": "right",
        "base_margin": base,
        "learning_rate": bp.learning_rate,
        "precision_bits": bp.precision_bits,
        "trees": trees,
        "feature_importance": importance,
        "transform": transform,
    }
    check_guest_body(body)
    document = model_io.build(
        component=COMPONENT, component_version=VERSION, role="guest", model_id=model_id,
        params=params_record(params), body=body,
        # Margins, not probabilities: a margin is base + leaf values, additions only, so it
        # is bit-identical on any machine, where exp() may differ in the last bit.
        sample_check={"ids": ids[:consistency], "scores": sample_margin.tolist(),
                      "what": "margin (log-odds) of each row"},
    )
    metrics: dict[str, Any] = {
        "trees": keep,
        "trees_trained": len(history),
        "base_margin": base,
        "history": history,
        "feature_importance": importance,
        "skipped_features": binned.skipped,
        "work": work,
        "seconds": {"total": time.perf_counter() - started, "encrypt": timing["encrypt_s"],
                    "decrypt": work.pop("decrypt_s")},
    }
    metrics["train"] = T.validation_metrics(y, margin if best_margin is None else best_margin)
    if valid is not None:
        metrics["best_trees"] = stopper.best_trees
    return {"model": document, "metrics": metrics}


def _salt(mine: bytes, theirs: Any) -> bytes:
    P.expect(isinstance(theirs, bytes) and len(theirs) == 32, "hello: the nonce must be 32 bytes")
    import hashlib

    return hashlib.sha256(mine + theirs).digest()


def _check_alignment(theirs: Any, data: bytes, validate: bytes | None) -> None:
    P.expect(isinstance(theirs, dict), "ids: malformed")
    if theirs.get("data") != data:
        raise InvalidInput("the guest's and the host's rows are not aligned (different ids or order): "
                           "run psi on both tables first", input="data")
    if theirs.get("validate") != validate:
        raise InvalidInput("the guest's and the host's validation rows are not aligned (different ids or order)",
                           input="validate")


def _public_nodes(nodes: list[dict]) -> list[dict]:
    out = []
    for nd in nodes:
        item: dict[str, Any] = {"id": nd["id"], "depth": nd["depth"], "samples": len(nd["rows"])}
        if "leaf" in nd:
            item["leaf"] = nd["leaf"]
        else:
            item.update(split=dict(nd["split"]), gain=nd["gain"], left=nd["left"], right=nd["right"])
        out.append(item)
    return out


def _importance(trees: list[list[dict]]) -> dict[str, Any]:
    """Split count and total gain: per guest feature, and per opaque host split."""
    guest: dict[str, dict[str, float]] = {}
    host_splits: dict[str, float] = {}
    for nodes in trees:
        for nd in nodes:
            if "split" not in nd:
                continue
            split = nd["split"]
            if split["owner"] == "guest":
                entry = guest.setdefault(split["feature"], {"splits": 0, "gain": 0.0})
                entry["splits"] += 1
                entry["gain"] += nd["gain"]
            else:
                host_splits[split["split_id"]] = host_splits.get(split["split_id"], 0.0) + nd["gain"]
    return {
        "guest": guest,
        "host": {"splits": len(host_splits), "gain": float(sum(host_splits.values())),
                 "gain_by_split_id": host_splits},
    }


# ---------------------------------------------------------------- prediction


def predict(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    document = inputs["model"]
    body = _guest_half(document)
    transform = body.get("transform") or inputs.get("transform")
    frame = apply_transform(transform, as_frame(inputs["data"], "data"), "data")
    ids = read_ids(frame, params.id_column, "data")
    n = len(ids)
    features = body["features"]
    matrix = T.feature_matrix(frame, features)

    setup = ctx.sub("setup")
    nonce = os.urandom(32)
    setup.peer.send("hello", {"protocol": P.PREDICT_PROTOCOL, "nonce": nonce,
                              "model_id": document["model_id"], "rows": n})
    theirs = setup.peer.recv("hello")
    P.expect(isinstance(theirs, dict) and theirs.get("protocol") == P.PREDICT_PROTOCOL,
             "the host does not run the same prediction protocol")
    if theirs.get("model_id") != document["model_id"]:
        raise InvalidInput("the guest's and the host's model halves come from different trainings "
                           "(model ids differ)", input="model")
    if theirs.get("rows") != n:
        raise InvalidInput(f"the guest has {n} rows to score but the host has {theirs.get('rows')}: "
                           "align both tables with psi first", input="data")
    salt = _salt(nonce, theirs.get("nonce"))
    setup.peer.send("ids", {"data": P.ids_digest(salt, ids), "validate": None})
    _check_alignment(setup.peer.recv("ids"), P.ids_digest(salt, ids), None)

    host_ids = host_split_ids(body)
    masks = _host_routes(ctx.sub("route").peer.recv("routes"), "data", host_ids, n)
    margin = guest_margin(body, matrix, masks)
    scores = T.sigmoid(margin)
    out = pd.DataFrame({params.id_column: pd.Series(ids, dtype=object), "probability": scores,
                        "prediction": (scores >= params.threshold).astype(np.int64)})
    metrics: dict[str, Any] = {"rows": n, "trees": len(body["trees"]), "host_splits_routed": len(host_ids),
                               "consistency_check": _consistency(document, ids, margin.tolist(), params)}
    label = params.label_column
    if label and label in frame.columns:
        from engine.evaluation import binary_report

        y = label_vector(frame, label, input="data", allow_single_class=True)
        out[label] = y
        if np.unique(y).size == 2:
            metrics["evaluation"] = binary_report(y, scores, threshold=params.threshold)
    return {"predictions": out, "metrics": metrics}


def _guest_half(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise InvalidInput("input 'model' must be a model document", input="model")
    checked = model_io.loads(model_io.dumps(document), component=COMPONENT, role="guest")
    check_guest_body(checked["body"])
    return checked["body"]


def _consistency(document: dict, ids: list[str], values: list[float], params: Any) -> str:
    """Recompute the model's stored sample predictions, if its rows are here (seed 003)."""
    sample = document.get("sample_check")
    if not params.check_consistency or not sample or not sample.get("ids"):
        return "not requested" if not params.check_consistency else "no sample stored"
    position = {text: i for i, text in enumerate(ids)}
    if not all(text in position for text in sample["ids"]):
        return "skipped: the sample rows are not in this table"
    recomputed = [values[position[text]] for text in sample["ids"]]
    model_io.check_consistency(sample["scores"], recomputed)
    return "passed"
