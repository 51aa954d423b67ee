"""The host (feature provider) of ``hetero_lr`` and ``hetero_lr_predict``.

The protocol, its message table and what each party learns are in
:mod:`engine.components.hetero_lr.protocol`. The host follows the guest's
row orders and stop/best signals; it owns its weights and never sees labels.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np

from engine.components.hetero_lr import model, protocol
from engine.components.hetero_lr.guest import _ids_sha256, _params_record, _scoring_frame
from engine.crypto.owner import OwnerEncryptor
from engine.components.hetero_lr.protocol import FRAC_BITS, expect
from engine.components.hetero_lr.tables import read_party, write_checkpoint
from engine.crypto import he
from engine.errors import InvalidInput, ProtocolError
from engine.federation.context import Context
from engine.ml import logistic


def train(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    # The encryption worker processes stop when training ends, however it ends.
    with contextlib.ExitStack() as cleanup:
        return _train(ctx, params, inputs, cleanup)


def _train(ctx: Context, params: Any, inputs: dict[str, Any], cleanup: contextlib.ExitStack) -> dict[str, Any]:
    started = time.perf_counter()
    protocol.check_key_bits(params)
    settings = logistic.Settings.from_params(params)
    data = read_party(inputs["data"], id_column=params.id_column, input="data", requested=params.feature_columns)
    n, m = data.X.shape
    protocol.require_rows(n, "data")
    logistic.check_not_constant(data.X, data.columns)
    exponents = logistic.column_exponents(data.X, params.feature_bits)
    M = logistic.quantize(data.X, exponents)
    Xq = logistic.dequantize(M, exponents)
    val = None
    if inputs.get("validate") is not None:
        val = read_party(inputs["validate"], id_column=params.id_column, input="validate", columns=data.columns)
        protocol.require_rows(len(val.ids), "validate")
        Xv = logistic.grid(val.X, exponents)
    n_val = len(val.ids) if val is not None else 0

    resume = inputs.get("resume")
    history: list[dict[str, Any]] = []
    if resume is not None:
        checkpoint = model.read_half(resume, role="host", kind="checkpoint")
        body = checkpoint.document["body"]
        if checkpoint.features != data.columns:
            raise InvalidInput("the checkpoint was made with other feature columns", input="resume")
        if not np.array_equal(checkpoint.exponents, exponents) or body.get("ids_sha256") != _ids_sha256(data.ids):
            raise InvalidInput("the checkpoint was made on other data (rows or feature ranges differ)", input="resume")
        for key in ("epoch", "best_weights", "has_best", "history"):
            if key not in body:
                raise InvalidInput(f"the checkpoint lacks {key!r}", input="resume")
        w = checkpoint.weights.copy()
        best = np.array(body["best_weights"], dtype=np.float64)
        has_best = bool(body["has_best"])
        epoch = int(body["epoch"])
        history = list(body["history"])
        model_id: str | None = checkpoint.model_id
    else:
        w = np.zeros(m)
        best = w.copy()
        has_best = False
        epoch = 0
        model_id = None
    resumed_from = epoch if resume is not None else None

    public, private = protocol.new_keypair(params.key_bits, params.insecure_allow_small_keys, params.he_scheme)
    he.scheme(params.he_scheme).warm_up()
    encryptor = OwnerEncryptor(private)
    cleanup.callback(encryptor.close)
    peer = ctx.peer
    hello = expect(peer.recv("hello"), ["protocol", "model_id", "rows", "validation_rows", "weights", "public_key",
                                        "nonce", "ids", "validation_ids", "settings", "resume_epoch", "done"], "hello")
    protocol.check_protocol(hello, protocol.PROTOCOL)
    nonce = hello["nonce"]
    if not isinstance(nonce, bytes) or len(nonce) != 32:
        raise ProtocolError("the guest's nonce is not 32 bytes")
    peer.send("hello", {
        "protocol": protocol.PROTOCOL,
        "model_id": model_id,
        "rows": n,
        "validation_rows": n_val,
        "weights": m,
        "public_key": public.to_bytes(),
        "ids": protocol.ids_digest(nonce, data.ids),
        "validation_ids": protocol.ids_digest(nonce, val.ids) if val is not None else None,
        "settings": protocol.shared_settings(params),
        "resume_epoch": resumed_from,
    })
    protocol.check_peer_hello(hello, params, nonce, data.ids, val.ids if val is not None else None, resumed_from,
                              model_id, "guest")
    model_id = str(hello["model_id"])
    guest_key = protocol.peer_public_key(hello["public_key"], params.insecure_allow_small_keys, params.he_scheme)
    m_g = hello["weights"]
    if not isinstance(m_g, int) or m_g < 1:
        raise ProtocolError("the guest announced no weights")
    protocol.check_batch_rows(logistic.batches(np.arange(n), settings.batch_size), m_g, m)

    done = bool(hello["done"])
    checkpoint_doc = None
    while not done:
        ectx = ctx.sub(f"epoch{epoch}")
        rate = logistic.learning_rate(settings.learning_rate, settings.decay, settings.decay_sqrt, epoch)
        order = protocol.check_order(ectx.peer.recv("order"), n)
        chunks = logistic.batches(order, settings.batch_size)
        cross = None  # [[sum_i D_i uq_i]]_G over the epoch, for the loss share
        offset = 0  # -2 sum_i U_h,i uq_i over the epoch
        squares = []
        gradient_norm = 0.0
        for k, bctx in ectx.range("batch", len(chunks)):
            ctx.report(fraction=(epoch + k / len(chunks)) / settings.max_epochs,
                       stage=f"epoch {epoch + 1} of {settings.max_epochs}")
            rows = chunks[k]
            b = len(rows)
            u_h = Xq[rows] @ w
            bctx.peer.send("u_host", protocol.ciphertexts(protocol.encrypt_scores(encryptor, u_h, "a host partial score")))
            uq = protocol.loss_grid(u_h)
            offset -= 2 * sum(a * c for a, c in zip(protocol.encoded(u_h), uq.tolist()))
            squares.append(u_h)

            enc_v = protocol.receive_encrypted(bctx.peer.recv("v_guest"), guest_key, count=b, frac_bits=FRAC_BITS,
                                               bound=protocol.score_bound(), what="v_guest")
            d4 = enc_v + u_h  # [[v + u_h]]_G = [[4d]]_G
            # One product for the gradient (m columns) and the loss (u_h on its fixed grid).
            product = protocol.product(d4, np.c_[M[rows], uq])
            bits = protocol.gradient_bits(params.feature_bits, b)
            masked, masks = protocol.mask(protocol.rebound(product[:m], bits), bits)
            bctx.peer.send("host_gradient", protocol.ciphertexts(masked))
            column = product[m : m + 1]
            cross = column if cross is None else cross + column

            # The guest's gradient, masked by the guest: decrypt it and send it back.
            plain = protocol.decrypt_for_peer(private, bctx.peer.recv("guest_gradient"), m_g, "guest_gradient", bits)
            bctx.peer.send("guest_gradient_plain", plain)

            sums4 = protocol.unmask(bctx.peer.recv("host_gradient_plain"), masks, bits, "host_gradient_plain")
            sums = np.array([protocol.scaled(sums4[j], FRAC_BITS + int(exponents[j])) for j in range(m)])
            gradient = sums / (4.0 * b) + settings.l2 * w
            gradient_norm = max(gradient_norm, float(np.linalg.norm(gradient)))
            w = logistic.gradient_step(w, sums, b, rate, settings.l2)

        all_u = np.concatenate(squares)
        share = protocol.host_loss_share(cross, protocol.square_sum_integer(all_u) + offset, guest_key)
        ectx.peer.send("loss", protocol.ciphertexts(share))
        if val is not None:
            _validate(ectx, params, guest_key, Xv, w)
        control = expect(ectx.peer.recv("control"), ["stop", "best"], "control")
        if control["best"] is True:
            best = w.copy()
            has_best = True
        history.append({"epoch": epoch, "learning_rate": rate, "max_gradient_norm": gradient_norm})
        epoch += 1
        done = control["stop"] is True

        checkpoint_doc = model.build_half(
            role="host", model_id=model_id, params=_params_record(params), id_column=params.id_column,
            features=data.columns, weights=w, intercept=None, exponents=exponents, feature_bits=params.feature_bits,
            peer_weights=m_g, training={"epochs": epoch, "rows": n, "validation_rows": n_val}, kind="checkpoint",
            extra={"epoch": epoch, "best_weights": [float(x) for x in best], "has_best": has_best,
                   "history": history, "ids_sha256": _ids_sha256(data.ids)},
        )
        write_checkpoint(params.checkpoint_dir, "host", epoch, checkpoint_doc)

    final = best if (settings.restores_best and has_best) else w
    sample = min(params.sample_rows, n)
    sample_scores = model.partial_scores(data.X[:sample], final, exponents)
    document = model.build_half(
        role="host", model_id=model_id, params=_params_record(params), id_column=params.id_column,
        features=data.columns, weights=final, intercept=None, exponents=exponents, feature_bits=params.feature_bits,
        peer_weights=m_g, training={"epochs": epoch, "rows": n, "validation_rows": n_val},
        sample=(data.ids[:sample], sample_scores) if sample else None,
    )
    metrics = {
        "model_id": model_id,
        "rows": n,
        "validation_rows": n_val,
        "features": m,
        "guest_weights": m_g,
        "epochs": epoch,
        "resumed_from_epoch": resumed_from,
        "restored_best": bool(settings.restores_best and has_best),
        "key_bits": params.key_bits,
        "history": history,
        "seconds": time.perf_counter() - started,
    }
    outputs = {"model": document, "metrics": metrics}
    if checkpoint_doc is not None:
        outputs["checkpoint"] = checkpoint_doc
    elif resume is not None:
        outputs["checkpoint"] = checkpoint.document
    return outputs


def _validate(ectx: Context, params: Any, guest_key: he.HEPublicKey, Xv: np.ndarray, w: np.ndarray) -> None:
    """The host's part of the validation step (see the protocol's steps 6)."""
    u_h = Xv @ w
    if params.validation_reveal == "scores":
        ectx.peer.send("validation_scores", np.ascontiguousarray(u_h, dtype=np.float64))
        return
    n_val = len(u_h)
    enc_v = protocol.receive_encrypted(ectx.peer.recv("validation_v"), guest_key, count=n_val, frac_bits=FRAC_BITS,
                                       bound=protocol.score_bound(), what="validation_v")
    if u_h.size and not (np.isfinite(u_h).all() and np.max(np.abs(u_h)) < 2.0**protocol.SCORE_BITS):
        raise logistic.TrainingDiverged("a host partial score reached 2^32: training diverged (lower learning_rate)")
    cross = enc_v.dot(protocol.loss_grid(u_h))
    share = protocol.host_loss_share(cross, protocol.square_sum_integer(u_h), guest_key)
    ectx.peer.send("validation_loss", protocol.ciphertexts(share))


# ------------------------------------------------------------------ predict


def predict(ctx: Context, params: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    half = model.read_half(inputs["model"], role="host")
    frame = _scoring_frame(inputs)
    data = read_party(frame, id_column=params.id_column, input="data", columns=half.features)
    consistency = model.verify_sample(half, frame, params.id_column, require=False)
    u_h = model.partial_scores(data.X, half.weights, half.exponents)
    n = len(data.ids)
    peer = ctx.peer
    hello = expect(peer.recv("hello"), ["protocol", "model_id", "rows", "nonce", "ids"], "hello")
    protocol.check_protocol(hello, protocol.PREDICT_PROTOCOL)
    nonce = hello["nonce"]
    if not isinstance(nonce, bytes) or len(nonce) != 32:
        raise ProtocolError("the guest's nonce is not 32 bytes")
    chunks = len(range(0, n, protocol.CHUNK_ROWS))
    peer.send("hello", {"protocol": protocol.PREDICT_PROTOCOL, "model_id": half.model_id, "rows": n,
                        "ids": protocol.ids_digest(nonce, data.ids), "chunks": chunks})
    if hello["model_id"] != half.model_id:
        raise ProtocolError("the two model halves come from different trainings (model ids differ)")
    if hello["rows"] != n or hello["ids"] != protocol.ids_digest(nonce, data.ids):
        raise ProtocolError("the parties' rows are not aligned (different ids or order): align them with psi first")
    for i, cctx in ctx.range("scores", chunks):
        lo = i * protocol.CHUNK_ROWS
        cctx.peer.send("u_host", np.ascontiguousarray(u_h[lo : lo + protocol.CHUNK_ROWS], dtype=np.float64))
    return {"metrics": {"model_id": half.model_id, "rows": n, "consistency_check": consistency}}
