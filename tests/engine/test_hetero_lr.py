"""Hetero logistic regression: the central reference, the two-key protocol, prediction, models, checkpoints."""

from __future__ import annotations

import functools
import json
import threading

import numpy as np
import pandas as pd
import pytest

from engine import wire
from engine.components.hetero_lr import hetero_lr, hetero_lr_predict, model, protocol, scorecard
from engine.crypto import ou, paillier
from engine.errors import (
    AllMissingColumn,
    ConstantColumn,
    InvalidInput,
    InvalidParameters,
    MissingColumn,
    MissingValues,
    NotNumeric,
    ProtocolError,
    SingleClass,
)
from engine.federation import InMemoryTransport, run_local
from engine.ml import logistic, model_io, preprocessing
from engine.samples import breast_cancer_split, credit_table

SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}
TRAIN_ONLY = ("key_bits", "insecure_allow_small_keys", "validation_reveal", "checkpoint_dir", "sample_rows",
              "id_column", "label_column", "feature_columns")


def central_settings(params: dict) -> dict:
    """The component's parameters that the central reference takes."""
    return {k: v for k, v in params.items() if k not in TRAIN_ONLY}


@functools.lru_cache(maxsize=1)
def _breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    guest, host = breast_cancer_split()
    # Standardise each party's own columns (what its preprocessing would do), then align the host's rows
    # with the guest's (what psi does).
    for frame in (guest, host):
        columns = [c for c in frame.columns if c not in ("id", "y")]
        frame[columns] = (frame[columns] - frame[columns].mean()) / frame[columns].std(ddof=0)
    host = host.set_index("id").loc[guest["id"]].reset_index()
    return guest, host


def breast_cancer() -> tuple[pd.DataFrame, pd.DataFrame]:
    guest, host = _breast_cancer()
    return guest.copy(), host.copy()


def joined(guest: pd.DataFrame, host: pd.DataFrame, label: str = "y") -> tuple[np.ndarray, np.ndarray]:
    features = [c for c in guest.columns if c not in ("id", label)]
    return np.c_[guest[features].to_numpy(float), host.drop(columns="id").to_numpy(float)], guest[label].to_numpy()


def federated_weights(out: dict) -> tuple[np.ndarray, float]:
    guest, host = out["guest"]["model"]["body"], out["host"]["model"]["body"]
    return np.r_[guest["weights"], host["weights"]], guest["intercept"]


def train(params: dict, guest: pd.DataFrame, host: pd.DataFrame, guest_val=None, host_val=None, **kwargs) -> dict:
    inputs = {"guest": {"data": guest}, "host": {"data": host}}
    if guest_val is not None:
        inputs["guest"]["validate"] = guest_val
        inputs["host"]["validate"] = host_val
    return run_local(hetero_lr, {**SMALL_KEYS, **params}, inputs, **kwargs)


# ------------------------------------------------------------------ the central reference (pure functions)


def test_batches_are_near_equal_consecutive_chunks_of_the_order():
    order = np.arange(10, 33)
    chunks = logistic.batches(order, 5)
    assert [len(c) for c in chunks] == [5, 5, 5, 4, 4]  # 23 rows in ceil(23/5) = 5 batches, none a short tail
    assert np.array_equal(np.concatenate(chunks), order)
    assert len(logistic.batches(order, 0)) == 1 and len(logistic.batches(order, 100)) == 1


def test_the_feature_grid_keeps_the_requested_significant_bits_per_column():
    X = np.array([[1.5, -300.0, 1e-9], [0.1, 7.25, -3e-9]])
    exponents = logistic.column_exponents(X, 20)
    M = logistic.quantize(X, exponents)
    assert np.all(np.abs(M).max(axis=0) < 2**20) and np.all(np.abs(M).max(axis=0) >= 2**19)
    assert np.all(np.abs(logistic.grid(X, exponents) - X) <= np.abs(X).max(axis=0) * 2.0**-20)
    assert np.array_equal(logistic.grid(logistic.grid(X, exponents), exponents), logistic.grid(X, exponents))


def test_the_update_is_the_gradient_of_the_taylor_loss_plus_l2():
    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(50, 4)), rng.integers(0, 2, 50), rng.normal(size=4)

    def objective(weights: np.ndarray) -> float:
        return logistic.taylor_loss_sum(X @ weights, y) / 50 + 0.5 * 0.1 * weights @ weights

    numeric = np.array([(objective(w + e) - objective(w - e)) / 2e-6 for e in np.eye(4) * 1e-6])
    stepped = logistic.gradient_step(w, X.T @ (X @ w - 2 * logistic.signed(y)), 50, 1.0, 0.1)
    assert np.allclose(w - stepped, numeric, atol=1e-7)


def test_the_taylor_loss_is_the_logistic_loss_to_second_order():
    y = np.array([0, 1, 1, 0])
    u = np.array([0.01, -0.02, 0.03, 0.0])
    exact = np.logaddexp(0.0, -logistic.signed(y) * u).sum()
    assert abs(logistic.taylor_loss_sum(u, y) - exact) < 1e-6
    assert logistic.log_loss(u, y) == pytest.approx(exact / 4)


def test_learning_rate_decays_per_epoch_linearly_or_by_square_root():
    assert logistic.learning_rate(0.4, 0.5, False, 0) == 0.4
    assert logistic.learning_rate(0.4, 0.5, False, 2) == pytest.approx(0.2)
    assert logistic.learning_rate(0.4, 3.0, True, 1) == pytest.approx(0.2)


def test_early_stopping_waits_patience_epochs_without_an_improvement_beyond_tol():
    stopper = logistic.EarlyStopping("validation_auc", patience=2, tol=0.01)
    decisions = [stopper.update(v, e) for e, v in enumerate([0.80, 0.85, 0.855, 0.86, 0.84])]
    assert decisions == [(True, False), (True, False), (False, False), (False, True), (False, True)]
    assert stopper.best_epoch == 1 and stopper.best_value == 0.85
    loss = logistic.EarlyStopping("train_loss", patience=1, tol=0.0)
    assert loss.update(0.5, 0) == (True, False) and loss.update(0.6, 1) == (False, True)


def test_the_trainer_state_survives_json_and_replays_the_same_row_orders():
    settings = logistic.Settings(batch_size=7, max_epochs=5, seed=None, early_stopping="train_loss")
    trainer = logistic.Trainer.start(settings, 30)
    trainer.epoch_batches()
    trainer.end_epoch({"train_loss": 0.5})
    restored = logistic.Trainer.from_state(json.loads(json.dumps(trainer.state())), settings)
    assert np.array_equal(trainer.epoch_batches()[0], restored.epoch_batches()[0])
    assert restored.epoch == 1 and restored.stopper.best_value == 0.5
    with pytest.raises(InvalidInput, match="batch_size"):
        logistic.Trainer.from_state(trainer.state(), logistic.Settings(batch_size=8, max_epochs=5))


def test_central_training_is_as_good_as_scikit_learn_on_breast_cancer():
    from sklearn.linear_model import LogisticRegression

    from engine.evaluation import roc_auc_score

    guest, host = breast_cancer()
    X, y = joined(guest, host)
    fit = logistic.fit(X[:450], y[:450], learning_rate=0.3, batch_size=64, max_epochs=20, seed=1)
    reference = LogisticRegression(max_iter=2000).fit(X[:450], y[:450])
    ours = roc_auc_score(y[450:], logistic.predict_logit(fit, X[450:]))
    assert ours == pytest.approx(roc_auc_score(y[450:], reference.decision_function(X[450:])), abs=0.01)
    # The 32-bit feature grid changes nothing that matters.
    plain = logistic.fit(X[:450], y[:450], learning_rate=0.3, batch_size=64, max_epochs=20, seed=1, feature_bits=None)
    assert np.max(np.abs(fit.weights - plain.weights)) < 1e-6


@pytest.mark.parametrize(
    "change, error, column",
    [
        (lambda f: f.assign(mean_radius="a"), NotNumeric, "mean_radius"),
        (lambda f: f.assign(mean_texture=np.where(np.arange(len(f)) % 7 == 0, np.nan, f["mean_texture"])),
         MissingValues, "mean_texture"),
        (lambda f: f.assign(mean_area=np.nan), AllMissingColumn, "mean_area"),
        (lambda f: f.assign(mean_perimeter=3.0), ConstantColumn, "mean_perimeter"),
        (lambda f: f.assign(y=1), SingleClass, "y"),
        (lambda f: f.assign(y=f["y"] * 2), NotNumeric, "y"),
        (lambda f: f.drop(columns="y"), MissingColumn, "y"),
    ],
)
def test_bad_guest_tables_fail_with_an_error_naming_the_column(change, error, column):
    guest, host = breast_cancer()
    with pytest.raises(error) as info:
        train({"max_epochs": 1}, change(guest), host)
    assert info.value.column == column and column in str(info.value)
    if error is MissingValues:
        assert "missing or infinite values" in str(info.value)
    if error is AllMissingColumn:
        assert isinstance(info.value, MissingValues) and "only missing values" in str(info.value)
    if error is NotNumeric and column == "y":
        assert "0/1 labels" in str(info.value)


def test_one_class_only_is_a_clear_error_at_the_guest_and_in_the_central_reference(monkeypatch):
    made = []
    real = protocol.new_keypair
    monkeypatch.setattr(protocol, "new_keypair", lambda *a: made.append(threading.current_thread().name) or real(*a))
    guest, host = breast_cancer()
    with pytest.raises(SingleClass, match="label column 'y' .* single class"):
        train({"max_epochs": 1}, guest.assign(y=0), host)
    assert not any(name.endswith("guest") for name in made)  # refused before any key or message
    with pytest.raises(SingleClass):
        logistic.fit(np.arange(3.0).reshape(3, 1), np.zeros(3))


# ------------------------------------------------------------------ protocol helpers


def test_a_crafted_okamoto_uchiyama_ciphertext_is_refused_rather_than_decrypted_for_the_peer():
    """The raw decryption of G**M for M > p is M mod p, which gives away p: the bound check stops it."""
    public, private = ou.generate_keypair()
    bits = protocol.gradient_bits(32, 1000)
    honest, masks = protocol.mask(public.encrypt_int([3, -4], frac_bits=0), bits)
    assert protocol.unmask(protocol.decrypt_for_peer(private, protocol.ciphertexts(honest), 2, "g", bits), masks, bits,
                           "g") == [3, -4]
    big = (1 << 700) + 12345  # beyond p (683 bits)
    crafted = wire.BigIntArray([pow(int(public.g), big, int(public.n)), pow(int(public.g), big * 3, int(public.n))])
    with pytest.raises(ProtocolError, match="does not decrypt within its public bound"):
        protocol.decrypt_for_peer(private, crafted, 2, "guest_gradient", bits)
    with pytest.raises(ProtocolError, match="does not decrypt within its public bound"):
        protocol.read_loss_share(private, wire.BigIntArray(crafted.values[:1]), 1000)


def test_a_peer_key_that_is_malformed_too_long_or_of_the_other_scheme_is_refused():
    ou_key = ou.generate_keypair()[0].to_bytes()
    paillier_key = paillier.generate_keypair(1024, insecure_allow_small_keys=True)[0].to_bytes()
    assert protocol.peer_public_key(ou_key, False, "ou").bits == 2048
    cases = [
        (ou_key[:-1], "ou", "Okamoto-Uchiyama public key is not acceptable"),
        (paillier_key, "ou", "not an exported Okamoto-Uchiyama public key"),
        (b"OU1" + b"\x01" * 3 * 2048, "ou", "at most 8192 bits"),
        (int.from_bytes(paillier_key, "big"), "paillier", "not an exported Paillier key"),
        (b"\x02" * 256, "paillier", "Paillier public key is not acceptable"),  # even n
        (paillier_key, "paillier", "too small"),
    ]
    for data, scheme, message in cases:
        with pytest.raises(ProtocolError, match=message):
            protocol.peer_public_key(data, False, scheme)


def test_masks_hide_the_value_and_come_off_exactly():
    public, private = paillier.generate_keypair(1024, insecure_allow_small_keys=True)
    values = np.array([-5, 0, 12345], dtype=np.int64)
    encrypted = public.encrypt_int(values)
    masked, masks = protocol.mask(encrypted, 20)
    seen = protocol.decrypt_for_peer(private, protocol.ciphertexts(masked), 3, "test", 20)
    assert protocol.unmask(seen, masks, 20, "test") == [-5, 0, 12345]
    assert all(abs(v) > 2**60 for v in seen)  # what the decrypting party sees is the mask, not the value
    again, _ = protocol.mask(encrypted, 20)
    assert protocol.decrypt_for_peer(private, protocol.ciphertexts(again), 3, "test", 20) != seen
    # Masked with a wider bound than the protocol's: refused, not decrypted and sent back.
    wide, _ = protocol.mask(encrypted, 40)
    with pytest.raises(ProtocolError, match="does not decrypt within its public bound"):
        protocol.decrypt_for_peer(private, protocol.ciphertexts(wide), 3, "test", 20)
    with pytest.raises(ProtocolError, match="bound"):
        protocol.unmask([m + 2**21 for m in masks], masks, 20, "test")


def test_the_loss_square_sum_is_rounded_exactly():
    u = np.array([0.1, -2.5, 3.0])
    expected = round(np.sum(u * u) * 2**(protocol.FRAC_BITS + protocol.LOSS_FRAC_BITS))
    assert protocol.square_sum_integer(u) == expected


# ------------------------------------------------------------------ lossless against central training


def test_federated_weights_equal_central_taylor_lr_on_breast_cancer_and_auc_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    from engine.evaluation import roc_auc_score

    guest, host = breast_cancer()
    params = {"learning_rate": 0.3, "batch_size": 150, "max_epochs": 6, "l2": 0.01, "decay": 0.1, "seed": 5,
              "early_stopping": "validation_auc", "patience": 2, "tol": 0.0}
    out = train(params, guest[:420], host[:420], guest[420:], host[420:])
    weights, intercept = federated_weights(out)
    X, y = joined(guest, host)
    central = logistic.fit(X[:420], y[:420], X_val=X[420:], y_val=y[420:], **central_settings(params))
    assert np.max(np.abs(weights - central.weights)) < 1e-6 and abs(intercept - central.intercept) < 1e-6
    assert np.max(np.abs(weights - central.weights)) < 1e-12  # in fact equal to float rounding
    metrics = out["guest"]["metrics"]
    assert metrics["epochs"] == central.epochs and metrics["best_epoch"] == central.best_epoch
    for fed, cen in zip(metrics["history"], central.history, strict=True):
        assert fed["train_loss"] == pytest.approx(cen["train_loss"], abs=1e-9)
        assert fed["validation_auc"] == pytest.approx(cen["validation_auc"], abs=1e-12)
        assert fed["validation_ks"] == pytest.approx(cen["validation_ks"], abs=1e-12)
    reference = LogisticRegression(max_iter=2000).fit(X[:420], y[:420])
    sklearn_auc = roc_auc_score(y[420:], reference.decision_function(X[420:]))
    assert metrics["validation_auc"] == pytest.approx(sklearn_auc, abs=0.01)


def _credit(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = credit_table(rows)
    table["income"] = pd.to_numeric(table["income"], errors="coerce")  # "" gaps become NaN
    table["income"] = table["income"].fillna(table["income"].mean())
    numeric = ["age", "income", "debt_ratio", "credit_lines", "months_employed", "late_payments", "utilisation"]
    table[numeric] = (table[numeric] - table[numeric].mean()) / table[numeric].std(ddof=0)
    onehot = pd.get_dummies(table[["region", "education"]], dtype=float)
    guest = table[["id", "default", "age", "income", "debt_ratio", "late_payments"]]
    host = pd.concat([table[["id", "credit_lines", "months_employed", "utilisation"]], onehot], axis=1)
    return guest, host


def test_federated_weights_equal_central_on_the_credit_table_with_mixed_feature_scales():
    from sklearn.linear_model import LogisticRegression

    from engine.evaluation import roc_auc_score

    guest, host = _credit(5000)
    params = {"learning_rate": 0.5, "batch_size": 1000, "max_epochs": 3, "l2": 0.001, "seed": 11, "label_column":
              "default"}
    out = train(params, guest[:4000], host[:4000], guest[4000:], host[4000:])
    weights, intercept = federated_weights(out)
    X, y = joined(guest, host, "default")
    central = logistic.fit(X[:4000], y[:4000], X_val=X[4000:], y_val=y[4000:], **central_settings(params))
    assert np.max(np.abs(weights - central.weights)) < 1e-6 and abs(intercept - central.intercept) < 1e-6
    reference = LogisticRegression(max_iter=2000).fit(X[:4000], y[:4000])
    sklearn_auc = roc_auc_score(y[4000:], reference.decision_function(X[4000:]))
    assert out["guest"]["metrics"]["validation_auc"] == pytest.approx(sklearn_auc, abs=0.01)


def test_loss_only_validation_trains_the_same_model_and_reports_only_the_validation_loss():
    guest, host = breast_cancer()
    params = {"learning_rate": 0.3, "batch_size": 200, "max_epochs": 3, "seed": 2, "early_stopping": "validation_loss",
              "validation_reveal": "loss_only"}
    out = train(params, guest[:400], host[:400], guest[400:], host[400:])
    X, y = joined(guest, host)
    central = logistic.fit(X[:400], y[:400], X_val=X[400:], y_val=y[400:], **central_settings(params))
    assert np.max(np.abs(federated_weights(out)[0] - central.weights)) < 1e-12
    for fed, cen in zip(out["guest"]["metrics"]["history"], central.history, strict=True):
        assert fed["validation_loss"] == pytest.approx(cen["validation_loss"], abs=1e-9)
        assert "validation_auc" not in fed
    with pytest.raises(InvalidParameters, match="validation_reveal"):
        hetero_lr.validate_params({"validation_reveal": "loss_only", "early_stopping": "validation_auc"})


# ------------------------------------------------------------------ Okamoto-Uchiyama (he_scheme="ou")

OU_KEYS = {"key_bits": 2048, "insecure_allow_small_keys": False, "he_scheme": "ou"}


def test_under_okamoto_uchiyama_the_federated_weights_equal_central_training():
    guest, host = breast_cancer()
    params = {"learning_rate": 0.3, "batch_size": 150, "max_epochs": 6, "l2": 0.01, "decay": 0.1, "seed": 5,
              "early_stopping": "validation_auc", "patience": 2, "tol": 0.0}
    transport = RecordingTransport()
    out = train({**OU_KEYS, **params}, guest[:420], host[:420], guest[420:], host[420:], transport=transport)
    weights, intercept = federated_weights(out)
    X, y = joined(guest, host)
    central = logistic.fit(X[:420], y[:420], X_val=X[420:], y_val=y[420:], **central_settings(params))
    assert np.max(np.abs(weights - central.weights)) < 1e-12 and abs(intercept - central.intercept) < 1e-12
    metrics = out["guest"]["metrics"]
    assert metrics["epochs"] == central.epochs and metrics["best_epoch"] == central.best_epoch
    for fed, cen in zip(metrics["history"], central.history, strict=True):
        assert fed["train_loss"] == pytest.approx(cen["train_loss"], abs=1e-9)
        assert fed["validation_auc"] == pytest.approx(cen["validation_auc"], abs=1e-12)
    assert out["guest"]["model"]["params"]["he_scheme"] == out["host"]["model"]["params"]["he_scheme"] == "ou"
    # Both keys really were 2048-bit Okamoto-Uchiyama: every ciphertext lies below its key's n.
    hellos = {src: value for src, dst, key, value in transport.sent if key.endswith("hello")}
    keys = {src: ou.PublicKey.from_bytes(hello["public_key"]) for src, hello in hellos.items()}
    assert {k.bits for k in keys.values()} == {2048}
    for src, dst, key, value in transport.sent:
        if isinstance(value, wire.BigIntArray):
            owner = {"u_host": "host", "v_guest": "guest", "validation_v": "guest", "loss": "guest",
                     "validation_loss": "guest", "guest_gradient": "host", "host_gradient": "guest"}[key.rsplit("/", 1)[-1]]
            assert all(0 < c < keys[owner].n for c in value.values), key


@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_loss_only_validation_under_either_scheme_trains_the_central_model(scheme):
    guest, host = breast_cancer()
    params = {"learning_rate": 0.3, "batch_size": 200, "max_epochs": 2, "seed": 4, "early_stopping": "validation_loss",
              "validation_reveal": "loss_only"}
    keys = OU_KEYS if scheme == "ou" else {}
    out = train({**keys, **params}, guest[:400], host[:400], guest[400:], host[400:])
    X, y = joined(guest, host)
    central = logistic.fit(X[:400], y[:400], X_val=X[400:], y_val=y[400:], **central_settings(params))
    assert np.max(np.abs(federated_weights(out)[0] - central.weights)) < 1e-12
    for fed, cen in zip(out["guest"]["metrics"]["history"], central.history, strict=True):
        assert fed["validation_loss"] == pytest.approx(cen["validation_loss"], abs=1e-9)


def test_parties_set_to_different_schemes_refuse_to_train_naming_both():
    guest, host = breast_cancer()
    with pytest.raises(InvalidParameters, match="he_scheme") as info:
        train({"max_epochs": 1}, guest, host, role_params={"host": {"he_scheme": "paillier"}})
    assert info.value.param == "he_scheme"
    assert "'paillier'" in str(info.value) and "'ou'" in str(info.value)
    assert _encryption_workers_of_this_process() == 0
    assert hetero_lr.validate_params({}).he_scheme == "ou"  # the default, chosen by the benchmarks
    with pytest.raises(InvalidParameters) as info:
        hetero_lr.validate_params({"he_scheme": "ou", "key_bits": 1024})
    assert info.value.param == "key_bits"


# ------------------------------------------------------------------ what each party receives


class RecordingTransport(InMemoryTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, str, object]] = []

    def push(self, session_id, src, dst, key, payload):
        self.sent.append((src, dst, key, wire.decode(payload)))
        super().push(session_id, src, dst, key, payload)


def test_each_party_receives_only_what_the_security_statement_says(monkeypatch):
    keys: dict[str, tuple] = {}

    def keypair(bits, insecure, scheme):
        assert scheme == "paillier"
        pair = paillier.generate_keypair(bits, insecure_allow_small_keys=insecure)
        keys[threading.current_thread().name.rsplit("-", 1)[-1]] = pair
        return pair

    monkeypatch.setattr(protocol, "new_keypair", keypair)
    guest, host = breast_cancer()
    transport = RecordingTransport()
    params = {"learning_rate": 0.3, "batch_size": 100, "max_epochs": 2, "seed": 3, "validation_reveal": "loss_only",
              "early_stopping": "validation_loss", "he_scheme": "paillier"}
    train(params, guest[:300], host[:300], guest[300:], host[300:], transport=transport)
    (guest_public, guest_private), (host_public, host_private) = keys["guest"], keys["host"]
    y = guest["y"].to_numpy()[:300]
    Xg = guest.drop(columns=["id", "y"]).to_numpy()[:300]

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list) and not all(isinstance(v, int) for v in value):
            for item in value:
                yield from walk(item)
        else:
            yield value

    to_host = [(key.rsplit("/", 1)[-1], value) for src, dst, key, value in transport.sent if dst == "host"]
    names = {name for name, _ in to_host}
    assert names == {"hello", "order", "v_guest", "guest_gradient", "host_gradient_plain", "validation_v", "control"}
    for name, value in to_host:
        for leaf in walk(value):
            # No plaintext vector reaches the host except the row orders, and those are permutations.
            if isinstance(leaf, np.ndarray):
                assert name == "order" and np.array_equal(np.sort(leaf), np.arange(300))
                assert abs(np.corrcoef(leaf, y[leaf])[0, 1]) < 0.25 and abs(np.corrcoef(leaf, y)[0, 1]) < 0.25
            assert not isinstance(leaf, float) or name == "hello"
        if name in ("v_guest", "validation_v"):
            # Under the guest's key: the host cannot decrypt them; the guest's key gives back v = u_g - 2y~.
            cts = paillier.EncryptedArray.from_ciphertexts(guest_public, value.values, frac_bits=53)
            assert np.all(np.abs(guest_private.decrypt(cts)) < 2**protocol.SCORE_BITS)
        if name == "guest_gradient":
            # Under the host's own key, but what it decrypts is masked: 128 bits above any gradient.
            cts = paillier.EncryptedArray.from_ciphertexts(host_public, value.values, frac_bits=0)
            assert all(abs(int(v)) > 2**(protocol.gradient_bits(32, 100) + 64) for v in host_private.decrypt_int(cts))
        if name == "host_gradient_plain":
            assert all(isinstance(v, int) and abs(v) > 2**(protocol.gradient_bits(32, 100) + 64) for v in value)
        if name == "control":
            assert set(value) == {"stop", "best"} and all(isinstance(v, bool) for v in value.values())
        if name == "hello":
            assert set(value) == {"protocol", "model_id", "rows", "validation_rows", "weights", "public_key", "nonce",
                                  "ids", "validation_ids", "settings", "resume_epoch", "done"}
            assert value["public_key"] == guest_public.to_bytes()
    # A plaintext vector of the rows' length never reaches the host, so nothing can correlate with y or X_g:
    # the only arrays are permutations (checked above), the rest is ciphertexts and masked integers.
    assert Xg.shape == (300, 10)

    to_guest = [(key.rsplit("/", 1)[-1], value) for src, dst, key, value in transport.sent if dst == "guest"]
    assert {name for name, _ in to_guest} == {"hello", "u_host", "host_gradient", "guest_gradient_plain", "loss",
                                               "validation_loss"}
    for name, value in to_guest:
        for leaf in walk(value):
            assert not isinstance(leaf, np.ndarray)  # with loss_only, no host score vector reaches the guest
        if name == "u_host":
            cts = paillier.EncryptedArray.from_ciphertexts(host_public, value.values, frac_bits=53)
            assert len(value.values) == 100 and np.all(np.isfinite(host_private.decrypt(cts)))
            with pytest.raises(paillier.PaillierError):
                guest_private.decrypt(cts)
        if name == "host_gradient":
            cts = paillier.EncryptedArray.from_ciphertexts(guest_public, value.values, frac_bits=0)
            assert all(abs(int(v)) > 2**(protocol.gradient_bits(32, 100) + 64) for v in guest_private.decrypt_int(cts))


def test_with_validation_scores_the_guest_receives_the_host_scores_of_validation_rows_only():
    guest, host = breast_cancer()
    transport = RecordingTransport()
    train({"batch_size": 0, "max_epochs": 1, "seed": 3}, guest[:500], host[:500], guest[500:], host[500:],
          transport=transport)
    arrays = [(key, value) for src, dst, key, value in transport.sent if dst == "guest" and isinstance(value, np.ndarray)]
    assert [key.rsplit("/", 1)[-1] for key, _ in arrays] == ["validation_scores"]
    assert arrays[0][1].shape == (69,)


def _encryption_workers_of_this_process() -> int:
    import os
    from pathlib import Path

    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"_owner_worker" in (proc / "cmdline").read_bytes():
                count += 1
        except (OSError, ValueError, IndexError):
            pass
    return count


def test_unaligned_rows_and_differing_settings_are_refused():
    guest, host = breast_cancer()
    with pytest.raises(ProtocolError, match="not aligned"):
        train({"max_epochs": 1}, guest, host.iloc[::-1].reset_index(drop=True))
    assert _encryption_workers_of_this_process() == 0  # stopped even though the run failed
    with pytest.raises(ProtocolError, match="row counts"):
        train({"max_epochs": 1}, guest, host[:-1])
    with pytest.raises(InvalidParameters, match="learning_rate") as info:
        train({"max_epochs": 1}, guest, host, role_params={"host": {"learning_rate": 0.5}})
    assert info.value.param == "learning_rate"


def test_batches_too_small_for_the_number_of_weights_are_refused():
    guest, host = breast_cancer()
    with pytest.raises(InvalidParameters, match="batch") as info:
        train({"batch_size": 15, "max_epochs": 1}, guest, host)
    assert info.value.param == "batch_size"


def test_keys_below_2048_bits_need_the_insecure_flag_and_the_schema_is_a_form():
    with pytest.raises(InvalidParameters) as info:
        hetero_lr.validate_params({"key_bits": 1024})
    assert info.value.param == "key_bits"
    with pytest.raises(InvalidParameters, match="unknown parameter 'epochs'"):
        hetero_lr.validate_params({"epochs": 3})
    schema = hetero_lr.describe()["parameters"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["key_bits"]["default"] == 2048 and schema["properties"]["learning_rate"]["title"]
    assert hetero_lr_predict.describe()["outputs"][0]["roles"] == ["guest"]


# ------------------------------------------------------------------ checkpoints and resuming


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run_exactly(tmp_path):
    guest, host = breast_cancer()
    params = {"learning_rate": 0.3, "batch_size": 150, "max_epochs": 4, "decay": 0.2, "l2": 0.01, "seed": None,
              "early_stopping": "validation_ks", "patience": 5, "checkpoint_dir": str(tmp_path)}
    full = train(params, guest[:450], host[:450], guest[450:], host[450:])
    assert sorted(p.name for p in (tmp_path / "guest").iterdir()) == [
        "epoch-00001.json", "epoch-00002.json", "epoch-00003.json", "epoch-00004.json", "latest.json"]
    saved = {role: model_io.load(tmp_path / role / "epoch-00002.json") for role in ("guest", "host")}
    assert saved["guest"]["body"]["trainer"]["epoch"] == 2 and saved["host"]["body"]["epoch"] == 2
    resumed = run_local(hetero_lr, {**SMALL_KEYS, **params, "checkpoint_dir": None}, {
        role: {"data": data[:450], "validate": data[450:], "resume": saved[role]}
        for role, data in (("guest", guest), ("host", host))})
    for role in ("guest", "host"):
        assert resumed[role]["model"]["body"]["weights"] == full[role]["model"]["body"]["weights"]
    assert resumed["guest"]["model"]["body"]["intercept"] == full["guest"]["model"]["body"]["intercept"]
    assert resumed["guest"]["metrics"]["history"] == full["guest"]["metrics"]["history"]
    assert resumed["guest"]["metrics"]["resumed_from_epoch"] == 2
    assert resumed["guest"]["checkpoint"]["body"]["trainer"] == full["guest"]["checkpoint"]["body"]["trainer"]
    with pytest.raises(InvalidInput, match="learning_rate"):
        run_local(hetero_lr, {**SMALL_KEYS, **params, "learning_rate": 0.1, "checkpoint_dir": None}, {
            role: {"data": data[:450], "validate": data[450:], "resume": saved[role]}
            for role, data in (("guest", guest), ("host", host))})


def test_a_host_vanishing_mid_training_loses_no_finished_epoch(tmp_path, monkeypatch):
    # The host dies while finishing epoch 3 (after the guest may have saved its own epoch 3). The guest
    # stops promptly with the host's failure, epochs 1 and 2 are on disk at both, a mismatched resume is
    # refused with both epochs named, and resuming both from epoch 2 ends exactly as an unbroken run.
    from engine.components.hetero_lr import host as host_module

    guest, host = breast_cancer()
    params = {"learning_rate": 0.3, "batch_size": 150, "max_epochs": 4, "seed": 4, "checkpoint_dir": str(tmp_path)}
    full = train({**params, "checkpoint_dir": None}, guest[:450], host[:450])

    real_write = host_module.write_checkpoint

    def dying_write(directory, role, epoch, document):
        if epoch == 3:
            raise ConnectionResetError("host machine lost its network")
        real_write(directory, role, epoch, document)

    monkeypatch.setattr(host_module, "write_checkpoint", dying_write)
    with pytest.raises(ConnectionResetError, match="lost its network"):
        train(params, guest[:450], host[:450])
    monkeypatch.setattr(host_module, "write_checkpoint", real_write)
    assert {p.name for p in (tmp_path / "host").iterdir()} == {"epoch-00001.json", "epoch-00002.json", "latest.json"}
    assert model_io.load(tmp_path / "host" / "latest.json")["body"]["epoch"] == 2

    def resume_from(guest_file: str, host_file: str) -> dict:
        saved = {"guest": model_io.load(tmp_path / "guest" / guest_file),
                 "host": model_io.load(tmp_path / "host" / host_file)}
        return run_local(hetero_lr, {**SMALL_KEYS, **params, "checkpoint_dir": None}, {
            role: {"data": data[:450], "resume": saved[role]} for role, data in (("guest", guest), ("host", host))})

    guest_latest = model_io.load(tmp_path / "guest" / "latest.json")["body"]["trainer"]["epoch"]
    if guest_latest != 2:
        named = f"epoch {guest_latest} here, epoch 2 at the host|epoch 2 here, epoch {guest_latest} at the guest"
        with pytest.raises(ProtocolError, match=named):
            resume_from("latest.json", "latest.json")
    resumed = resume_from("epoch-00002.json", "epoch-00002.json")
    for role in ("guest", "host"):
        assert resumed[role]["model"]["body"]["weights"] == full[role]["model"]["body"]["weights"]
    assert resumed["guest"]["metrics"]["history"] == full["guest"]["metrics"]["history"]


# ------------------------------------------------------------------ prediction and model files


@functools.lru_cache(maxsize=1)
def _trained() -> tuple[dict, dict]:
    guest, host = breast_cancer()
    out = train({"learning_rate": 0.3, "batch_size": 0, "max_epochs": 3, "seed": 9}, guest[:400], host[:400])
    return out["guest"]["model"], out["host"]["model"]


def test_prediction_gives_the_central_probabilities_and_passes_the_consistency_check():
    guest_model, host_model = _trained()
    guest, host = breast_cancer()
    out = run_local(hetero_lr_predict, {}, {"guest": {"model": guest_model, "data": guest},
                                            "host": {"model": host_model, "data": host}})
    predictions = out["guest"]["predictions"]
    X, _ = joined(guest, host)
    central = logistic.LogisticFit(
        weights=np.r_[guest_model["body"]["weights"], host_model["body"]["weights"]],
        intercept=guest_model["body"]["intercept"],
        exponents=np.r_[guest_model["body"]["exponents"], host_model["body"]["exponents"]],
        seed=9, epochs=3, stopped_early=False, best_epoch=None, history=[])
    assert np.allclose(predictions["probability"], logistic.predict_proba(central, X), rtol=0, atol=1e-12)
    assert predictions["id"].tolist() == guest["id"].tolist()
    assert predictions["prediction"].tolist() == (predictions["probability"] >= 0.5).astype(int).tolist()
    assert out["guest"]["metrics"]["consistency_check"] == "passed"
    assert out["host"]["metrics"]["consistency_check"] == "passed"
    assert out["guest"]["metrics"]["auc"] > 0.95 and "predictions" not in out["host"]


def test_prediction_reports_curves_for_labelled_rows_and_scores_a_one_class_batch_without_measuring_it():
    guest_model, host_model = _trained()
    guest, host = breast_cancer()
    out = run_local(hetero_lr_predict, {}, {"guest": {"model": guest_model, "data": guest},
                                            "host": {"model": host_model, "data": host}})
    report = out["guest"]["metrics"]["evaluation"]
    assert report["auc"] == out["guest"]["metrics"]["auc"] and report["roc"]["fpr"] and len(report["lift"]) == 10
    ones = guest["y"] == 1
    out = run_local(hetero_lr_predict, {}, {"guest": {"model": guest_model, "data": guest[ones]},
                                            "host": {"model": host_model, "data": host[ones.to_numpy()]}})
    metrics = out["guest"]["metrics"]
    assert "single class" in metrics["evaluation_skipped"] and "auc" not in metrics
    assert len(out["guest"]["predictions"]) == int(ones.sum())


def test_an_exported_half_imports_only_if_it_scores_its_sample_identically():
    guest_model, host_model = _trained()
    guest, host = breast_cancer()
    for document, frame, role in ((guest_model, guest, "guest"), (host_model, host, "host")):
        data = model.export_half(document)
        assert b"pickle" not in data and json.loads(data)["format"] == "fedweb-model/1"
        assert model.import_half(data, frame, role=role)["model_id"] == document["model_id"]
    tampered = json.loads(model.export_half(host_model))
    tampered["body"]["weights"][0] *= 1 + 1e-12  # a model that scores differently in the last bits
    with pytest.raises(model_io.ModelFormatError, match="differs after import"):
        model.import_half(json.dumps(tampered), host, role="host")
    with pytest.raises(model_io.ModelFormatError, match="not in the data"):
        model.import_half(model.export_half(host_model), host[400:], role="host")
    with pytest.raises(model_io.ModelFormatError, match="host's half"):
        model.import_half(model.export_half(host_model), host, role="guest")
    # Different data under the same ids fails the check too.
    shifted = host.assign(**{host.columns[1]: host[host.columns[1]] + 1e-3})
    with pytest.raises(model_io.ModelFormatError, match="differs after import"):
        model.import_half(model.export_half(host_model), shifted, role="host")


def test_prediction_refuses_halves_of_different_models_and_unaligned_rows():
    guest_model, host_model = _trained()
    guest, host = breast_cancer()
    other = json.loads(json.dumps(host_model))
    other["model_id"] = "another"
    with pytest.raises(ProtocolError, match="different trainings"):
        run_local(hetero_lr_predict, {}, {"guest": {"model": guest_model, "data": guest},
                                          "host": {"model": other, "data": host}})
    with pytest.raises(ProtocolError, match="not aligned"):
        run_local(hetero_lr_predict, {}, {"guest": {"model": guest_model, "data": guest},
                                          "host": {"model": host_model, "data": host.iloc[::-1]}})


def test_prediction_applies_the_preprocessing_transform_first():
    raw_guest, raw_host = breast_cancer_split()
    raw_host = raw_host.set_index("id").loc[raw_guest["id"]].reset_index()
    transforms = {
        role: model_io.build(component=preprocessing.COMPONENT, component_version="1.0.0", role=role,
                             model_id="prep", params={},
                             body=preprocessing.fit(frame[:400], id_column="id", passthrough=passthrough,
                                                    scaling="standard"))
        for role, frame, passthrough in (("guest", raw_guest, ["y"]), ("host", raw_host, []))
    }
    guest = preprocessing.apply_model(transforms["guest"], raw_guest)
    host = preprocessing.apply_model(transforms["host"], raw_host)
    out = train({"batch_size": 0, "max_epochs": 2, "seed": 4}, guest[:400], host[:400])
    scored = run_local(hetero_lr_predict, {}, {
        "guest": {"model": out["guest"]["model"], "data": raw_guest, "transform": transforms["guest"]},
        "host": {"model": out["host"]["model"], "data": raw_host, "transform": transforms["host"]}})
    direct = run_local(hetero_lr_predict, {}, {"guest": {"model": out["guest"]["model"], "data": guest},
                                               "host": {"model": out["host"]["model"], "data": host}})
    assert scored["guest"]["predictions"]["probability"].tolist() == direct["guest"]["predictions"]["probability"].tolist()
    assert scored["guest"]["metrics"]["consistency_check"] == "passed"


def test_the_runner_trains_from_csv_files_then_predicts_and_scores_with_the_model_files(tmp_path, capsys):
    from engine.__main__ import main
    from engine.errors import ComponentNotFound
    from engine.registry import get_component, register

    for component in (hetero_lr, hetero_lr_predict, scorecard):  # registered by discovery; tolerate older trees
        try:
            get_component(component.name)
        except ComponentNotFound:
            register(component)
    guest, host = breast_cancer()
    guest[:300].to_csv(tmp_path / "g.csv", index=False)
    host[:300].to_csv(tmp_path / "h.csv", index=False)
    params = json.dumps({**SMALL_KEYS, "batch_size": 0, "max_epochs": 2, "seed": 1})
    code = main(["run", "hetero_lr", "--data", f"guest={tmp_path / 'g.csv'}", f"host={tmp_path / 'h.csv'}",
                 "--params", params, "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    guest_model = model_io.load(tmp_path / "out" / "guest" / "model.json", component="hetero_lr", role="guest")
    host_model = model_io.load(tmp_path / "out" / "host" / "model.json", component="hetero_lr", role="host")
    assert guest_model["model_id"] == host_model["model_id"]
    assert guest_model["body"]["features"] == list(guest.columns[2:])
    assert guest_model["sample_check"]["ids"] == guest["id"][:10].tolist()  # ids stay text: leading zeros kept
    metrics = json.loads((tmp_path / "out" / "guest" / "metrics.json").read_text())
    assert len(metrics["history"]) == 2 and metrics["train_loss"] < metrics["history"][0]["train_loss"]

    # Score new rows with the two model files, then turn the probabilities into points.
    guest[300:].to_csv(tmp_path / "g2.csv", index=False)
    host[300:].to_csv(tmp_path / "h2.csv", index=False)
    code = main(["run", "hetero_lr_predict", "--data", f"guest={tmp_path / 'g2.csv'}", f"host={tmp_path / 'h2.csv'}",
                 f"guest.model={tmp_path / 'out' / 'guest' / 'model.json'}",
                 f"host.model={tmp_path / 'out' / 'host' / 'model.json'}", "--out", str(tmp_path / "scored")])
    assert code == 0, capsys.readouterr().err
    predictions = pd.read_csv(tmp_path / "scored" / "guest" / "predictions.csv", dtype={"id": str})
    assert predictions["id"].tolist() == guest["id"][300:].tolist() and predictions["probability"].between(0, 1).all()
    code = main(["run", "scorecard", "--data", f"guest={tmp_path / 'scored' / 'guest' / 'predictions.csv'}",
                 "--params", '{"base_score": 600, "base_odds": 50, "pdo": 20}', "--out", str(tmp_path / "points")])
    assert code == 0, capsys.readouterr().err
    points = pd.read_csv(tmp_path / "points" / "guest" / "data.csv", dtype={"id": str})
    assert np.allclose(points["points"], 600 + 20 / np.log(2) * (np.log((1 - points["probability"]) / points["probability"])
                                                                   - np.log(50)))
