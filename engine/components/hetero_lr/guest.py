"""The guest (label holder) of ``hetero_lr`` and ``hetero_lr_predict``.

The protocol, its message table and what each party learns are in
:mod:`engine.components.hetero_lr.protocol`; the algorithm (batches,
learning rate, early stopping) is :class:`engine.ml.logistic.Trainer`, shared
with the central reference. The guest drives: it draws the row orders,
decides when to stop, and owns the intercept.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from engine import evaluation
from engine.components.hetero_lr import model, protocol
from engine.crypto.owner import OwnerEncryptor
from engine.components.hetero_lr.protocol import FRAC_BITS, expect
from engine.components.hetero_lr.tables import as_frame, read_party, write_checkpoint
from engine.crypto import he
from engine.errors import InvalidInput, ProtocolError
from engine.federation.context import Context
from engine.ml import logistic
from engine.ml.columns import label_vector


def train(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    # The encryption worker processes stop when training ends, however it ends.
    with contextlib.ExitStack() as cleanup:
        return _train(ctx, params, inputs, cleanup)


def _train(ctx: Context, params: Any, inputs: dict[str, Any], cleanup: contextlib.ExitStack) -> dict[str, Any]:
    started = time.perf_counter()
    protocol.check_key_bits(params)
    settings = logistic.Settings.from_params(params)
    data = read_party(inputs["data"], id_column=params.id_column, input="data", label_column=params.label_column,
                      requested=params.feature_columns)
    n, m = data.X.shape
    protocol.require_rows(n, "data")
    logistic.check_not_constant(data.X, data.columns)
    exponents = logistic.column_exponents(data.X, params.feature_bits)
    M = logistic.quantize(data.X, exponents)
    Xq = logistic.dequantize(M, exponents)
    ysigned = logistic.signed(data.y)

    val = None
    if inputs.get("validate") is not None:
        val = read_party(inputs["validate"], id_column=params.id_column, input="validate",
                         label_column=params.label_column, columns=data.columns)
        protocol.require_rows(len(val.ids), "validate")
        Xv = logistic.grid(val.X, exponents)
    elif settings.uses_validation:
        raise InvalidInput(f"early_stopping={settings.early_stopping!r} needs the 'validate' input", input="validate")
    n_val = len(val.ids) if val is not None else 0

    intercept = params.fit_intercept
    n_weights = m + int(intercept)
    penalized = np.r_[np.ones(m, dtype=bool), False]  # the intercept (last) gets no L2

    resume = inputs.get("resume")
    if resume is not None:
        checkpoint = model.read_half(resume, role="guest", kind="checkpoint")
        _check_resume(checkpoint, data.columns, exponents, data.ids)
        trainer = logistic.Trainer.from_state(checkpoint.document["body"]["trainer"], settings)
        body = checkpoint.document["body"]
        w = np.r_[checkpoint.weights, checkpoint.intercept]
        best = np.r_[np.array(body["best_weights"], dtype=np.float64), float(body["best_intercept"])]
        model_id = checkpoint.model_id
        if trainer.rows != n:
            raise InvalidInput("the checkpoint was made on a different number of rows", input="resume")
    else:
        trainer = logistic.Trainer.start(settings, n)
        w = np.zeros(m + 1)
        best = w.copy()
        model_id = uuid.uuid4().hex
    resumed_from = trainer.epoch if resume is not None else None

    public, private = protocol.new_keypair(params.key_bits, params.insecure_allow_small_keys, params.he_scheme)
    he.scheme(params.he_scheme).warm_up()
    encryptor = OwnerEncryptor(private)
    cleanup.callback(encryptor.close)
    nonce = protocol.new_nonce()
    peer = ctx.peer
    peer.send("hello", {
        "protocol": protocol.PROTOCOL,
        "model_id": model_id,
        "rows": n,
        "validation_rows": n_val,
        "weights": n_weights,
        "public_key": public.to_bytes(),
        "nonce": nonce,
        "ids": protocol.ids_digest(nonce, data.ids),
        "validation_ids": protocol.ids_digest(nonce, val.ids) if val is not None else None,
        "settings": protocol.shared_settings(params),
        "resume_epoch": resumed_from,
        "done": trainer.done,
    })
    hello = expect(peer.recv("hello"), ["protocol", "rows", "validation_rows", "weights", "public_key", "ids",
                                        "validation_ids", "settings", "resume_epoch", "model_id"], "hello")
    protocol.check_protocol(hello, protocol.PROTOCOL)
    protocol.check_peer_hello(hello, params, nonce, data.ids, val.ids if val is not None else None, resumed_from,
                              model_id, "host")
    host_key = protocol.peer_public_key(hello["public_key"], params.insecure_allow_small_keys, params.he_scheme)
    m_h = hello["weights"]
    if not isinstance(m_h, int) or m_h < 1:
        raise ProtocolError("the host announced no features")
    protocol.check_batch_rows(logistic.batches(np.arange(n), settings.batch_size), n_weights, m_h)

    checkpoint_doc = None
    while not trainer.done:
        epoch = trainer.epoch
        ectx = ctx.sub(f"epoch{epoch}")
        rate = trainer.learning_rate()
        order, chunks = trainer.epoch_batches()
        ectx.peer.send("order", order)
        guest_loss = 0.0
        for k, bctx in ectx.range("batch", len(chunks)):
            ctx.report(fraction=(epoch + k / len(chunks)) / settings.max_epochs,
                       stage=f"epoch {epoch + 1} of {settings.max_epochs}")
            rows = chunks[k]
            b = len(rows)
            u_g = Xq[rows] @ w[:m] + w[m]
            v = u_g - 2.0 * ysigned[rows]
            bctx.peer.send("v_guest", protocol.ciphertexts(protocol.encrypt_scores(encryptor, v, "a guest partial score")))
            guest_loss += logistic.taylor_loss_sum(u_g, data.y[rows])

            enc_uh = protocol.receive_encrypted(bctx.peer.recv("u_host"), host_key, count=b, frac_bits=FRAC_BITS,
                                                bound=protocol.score_bound(), what="u_host")
            d4 = enc_uh + v  # [[u_h + v]]_H = [[4d]]_H
            matrix = np.c_[M[rows], np.ones(b, dtype=np.int64)] if intercept else M[rows]
            bits = protocol.gradient_bits(params.feature_bits, b)
            product = protocol.rebound(protocol.product(d4, matrix), bits)
            masked, masks = protocol.mask(product, bits)
            bctx.peer.send("guest_gradient", protocol.ciphertexts(masked))

            # The host's gradient, masked by the host: decrypt it and send it back.
            plain = protocol.decrypt_for_peer(private, bctx.peer.recv("host_gradient"), m_h, "host_gradient", bits)
            bctx.peer.send("host_gradient_plain", plain)

            sums4 = protocol.unmask(bctx.peer.recv("guest_gradient_plain"), masks, bits, "guest_gradient_plain")
            sums = np.zeros(m + 1)
            for j in range(m):
                sums[j] = protocol.scaled(sums4[j], FRAC_BITS + int(exponents[j]))
            if intercept:
                sums[m] = protocol.scaled(sums4[m], FRAC_BITS)
            w = logistic.gradient_step(w, sums, b, rate, settings.l2, penalized)

        share = protocol.read_loss_share(private, ectx.peer.recv("loss"), n)
        record: dict[str, Any] = {"train_loss": (guest_loss + share) / n}
        if val is not None:
            record.update(_validate(ectx, params, encryptor, private, Xv, val, w, m))
        improved, done = trainer.end_epoch(record)
        ctx.report(fraction=(epoch + 1) / settings.max_epochs, stage=f"epoch {epoch + 1} of {settings.max_epochs}",
                   metrics={k: v for k, v in record.items() if isinstance(v, (int, float))})
        if improved:
            best = w.copy()
        ectx.peer.send("control", {"stop": done, "best": improved})

        checkpoint_doc = model.build_half(
            role="guest", model_id=model_id, params=_params_record(params), id_column=params.id_column,
            features=data.columns, weights=w[:m], intercept=float(w[m]), exponents=exponents,
            feature_bits=params.feature_bits, peer_weights=m_h, label_column=params.label_column,
            training=_training_record(trainer, n, n_val), kind="checkpoint",
            extra={
                "trainer": trainer.state(),
                "best_weights": [float(x) for x in best[:m]],
                "best_intercept": float(best[m]),
                "ids_sha256": _ids_sha256(data.ids),
            },
        )
        write_checkpoint(params.checkpoint_dir, "guest", trainer.epoch, checkpoint_doc)

    final = best if (settings.restores_best and trainer.stopper.best_epoch is not None) else w
    sample = min(params.sample_rows, n)
    sample_scores = model.partial_scores(data.X[:sample], final[:m], exponents, float(final[m]))
    document = model.build_half(
        role="guest", model_id=model_id, params=_params_record(params), id_column=params.id_column,
        features=data.columns, weights=final[:m], intercept=float(final[m]), exponents=exponents,
        feature_bits=params.feature_bits, peer_weights=m_h, label_column=params.label_column,
        training=_training_record(trainer, n, n_val), sample=(data.ids[:sample], sample_scores) if sample else None,
    )
    chunk_sizes = [len(c) for c in logistic.batches(np.arange(n), settings.batch_size)]
    metrics = {
        "model_id": model_id,
        "rows": n,
        "validation_rows": n_val,
        "features": m,
        "host_weights": m_h,
        "batches_per_epoch": len(chunk_sizes),
        "batch_rows": [min(chunk_sizes), max(chunk_sizes)],
        "epochs": trainer.epoch,
        "resumed_from_epoch": resumed_from,
        "stopped_early": trainer.stopped_early,
        "best_epoch": trainer.stopper.best_epoch,
        "restored_best": bool(settings.restores_best and trainer.stopper.best_epoch is not None),
        "seed": trainer.seed,
        "key_bits": params.key_bits,
        "history": trainer.history,
        "seconds": time.perf_counter() - started,
    }
    if trainer.history:
        metrics.update({k: v for k, v in trainer.history[-1].items() if k not in ("epoch", "improved")})
    outputs = {"model": document, "metrics": metrics}
    if checkpoint_doc is not None:
        outputs["checkpoint"] = checkpoint_doc
    elif resume is not None:
        outputs["checkpoint"] = checkpoint.document
    return outputs


def _validate(ectx: Context, params: Any, encryptor: OwnerEncryptor, private: he.HEPrivateKey,
              Xv: np.ndarray, val: Any, w: np.ndarray, m: int) -> dict[str, float]:
    """Validation metrics after an epoch (see the protocol's steps 6)."""
    u_g = Xv @ w[:m] + w[m]
    n_val = len(u_g)
    if params.validation_reveal == "scores":
        u_h = ectx.peer.recv("validation_scores")
        if not isinstance(u_h, np.ndarray) or u_h.dtype != np.float64 or u_h.shape != (n_val,):
            raise ProtocolError("message 'validation_scores' is not one float64 per validation row")
        if not np.isfinite(u_h).all():
            raise ProtocolError("message 'validation_scores' holds non-finite values")
        return logistic.validation_metrics(u_g + u_h, val.y)
    v = u_g - 2.0 * logistic.signed(val.y)
    ectx.peer.send("validation_v", protocol.ciphertexts(protocol.encrypt_scores(encryptor, v, "a guest partial score")))
    share = protocol.read_loss_share(private, ectx.peer.recv("validation_loss"), n_val)
    return {"validation_loss": (logistic.taylor_loss_sum(u_g, val.y) + share) / n_val}


def _check_resume(checkpoint: model.Half, columns: list[str], exponents: np.ndarray, ids: list[str]) -> None:
    body = checkpoint.document["body"]
    if checkpoint.features != columns:
        raise InvalidInput("the checkpoint was made with other feature columns", input="resume")
    if not np.array_equal(checkpoint.exponents, exponents) or body.get("ids_sha256") != _ids_sha256(ids):
        raise InvalidInput("the checkpoint was made on other data (rows or feature ranges differ)", input="resume")
    for key in ("trainer", "best_weights", "best_intercept"):
        if key not in body:
            raise InvalidInput(f"the checkpoint lacks {key!r}", input="resume")


def _ids_sha256(ids: list[str]) -> str:
    return protocol.ids_digest(b"", ids).hex()


def _params_record(params: Any) -> dict[str, Any]:
    record = params.model_dump()
    record.pop("checkpoint_dir", None)  # a local path: not part of the model
    return record


def _training_record(trainer: logistic.Trainer, n: int, n_val: int) -> dict[str, Any]:
    return {
        "epochs": trainer.epoch,
        "stopped_early": trainer.stopped_early,
        "best_epoch": trainer.stopper.best_epoch,
        "seed": trainer.seed,
        "rows": n,
        "validation_rows": n_val,
    }


# ------------------------------------------------------------------ predict


def predict(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    half = model.read_half(inputs["model"], role="guest")
    frame = _scoring_frame(inputs)
    data = read_party(frame, id_column=params.id_column, input="data", columns=half.features)
    consistency = model.verify_sample(half, frame, params.id_column, require=False)
    u_g = model.partial_scores(data.X, half.weights, half.exponents, half.intercept)
    n = len(data.ids)

    nonce = protocol.new_nonce()
    peer = ctx.peer
    peer.send("hello", {"protocol": protocol.PREDICT_PROTOCOL, "model_id": half.model_id, "rows": n,
                        "nonce": nonce, "ids": protocol.ids_digest(nonce, data.ids)})
    hello = expect(peer.recv("hello"), ["protocol", "model_id", "rows", "ids", "chunks"], "hello")
    protocol.check_protocol(hello, protocol.PREDICT_PROTOCOL)
    if hello["model_id"] != half.model_id:
        raise ProtocolError("the two model halves come from different trainings (model ids differ)")
    if hello["rows"] != n or hello["ids"] != protocol.ids_digest(nonce, data.ids):
        raise ProtocolError("the parties' rows are not aligned (different ids or order): align them with psi first")
    chunks = hello["chunks"]
    if not isinstance(chunks, int) or chunks != len(range(0, n, protocol.CHUNK_ROWS)):
        raise ProtocolError("the host announced an unexpected number of score chunks")
    parts = []
    for i, cctx in ctx.range("scores", chunks):
        part = cctx.peer.recv("u_host")
        lo = i * protocol.CHUNK_ROWS
        size = min(protocol.CHUNK_ROWS, n - lo)
        if not isinstance(part, np.ndarray) or part.dtype != np.float64 or part.shape != (size,):
            raise ProtocolError("message 'u_host' is not one float64 per row of its chunk")
        parts.append(part)
    u_h = np.concatenate(parts) if parts else np.zeros(0)
    if not np.isfinite(u_h).all():
        raise ProtocolError("the host's partial scores hold non-finite values")
    probability = logistic.sigmoid(u_g + u_h)
    out = pd.DataFrame({params.id_column: pd.Series(data.ids, dtype=object), "probability": probability,
                        "prediction": (probability >= params.threshold).astype(np.int64)})
    metrics: dict[str, Any] = {"model_id": half.model_id, "rows": n, "consistency_check": consistency,
                               "threshold": params.threshold}
    label = half.document["body"].get("label_column")
    if params.evaluate and label and label in frame.columns:
        # Scoring a batch whose labels are all one class is not an error; measuring it is impossible.
        y = label_vector(frame, label, input="data", allow_single_class=True).astype(np.int8)
        out[label] = y
        if np.unique(y).size < 2:
            metrics["evaluation_skipped"] = f"label column {label!r} holds a single class: AUC and KS are undefined"
        else:
            # The same full report as hetero_secureboost_predict's, for the same charts; the
            # headline figures are read off it (its JSON form says None for an infinite threshold).
            report = evaluation.binary_report(y, probability, threshold=params.threshold)
            ks_threshold = math.inf if report["ks_threshold"] is None else report["ks_threshold"]
            metrics.update({"auc": report["auc"], "ks": report["ks"], "ks_threshold": ks_threshold,
                            "log_loss": logistic.log_loss(u_g + u_h, y), "evaluation": report})
    return {"predictions": out, "metrics": metrics}


def _scoring_frame(inputs: dict[str, Any]) -> pd.DataFrame:
    frame = as_frame(inputs["data"])
    transform = inputs.get("transform")
    if transform is not None:
        try:
            from engine.ml import preprocessing
        except ImportError:  # pragma: no cover - the module ships with the engine
            raise InvalidInput("the 'transform' input needs engine.ml.preprocessing", input="transform") from None
        frame = preprocessing.apply_model(transform, frame)
    return frame
