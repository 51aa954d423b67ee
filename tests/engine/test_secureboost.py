"""Hetero SecureBoost: lossless against central training, private, and its model halves."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from engine import wire
from engine.components.secureboost import hetero_secureboost, hetero_secureboost_predict
from engine.crypto import ou, paillier
from engine.errors import (
    AllMissingColumn,
    InvalidInput,
    InvalidParameters,
    MissingColumn,
    NotNumeric,
    ProtocolError,
    SingleClass,
)
from engine.evaluation import roc_auc_score
from engine.federation import InMemoryTransport, run_local
from engine.ml import model_io, preprocessing
from engine.ml import tree as T
from engine.samples import breast_cancer_split, credit_table

SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}


# ------------------------------------------------------------------ helpers


def aligned(guest: pd.DataFrame, host: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What psi hands over: the host's rows in the guest's order."""
    return guest, host.set_index("id").loc[guest["id"]].reset_index()


def train(guest, host, *, guest_validate=None, host_validate=None, transport=None, role_params=None, **params):
    inputs = {"guest": {"data": guest}, "host": {"data": host}}
    if guest_validate is not None:
        inputs["guest"]["validate"] = guest_validate
        inputs["host"]["validate"] = host_validate
    return run_local(hetero_secureboost, {**SMALL_KEYS, **params}, inputs, transport=transport,
                     role_params=role_params, timeout=120)


def predict(guest_model, host_model, guest, host, **params):
    return run_local(hetero_secureboost_predict, params,
                     {"guest": {"model": guest_model, "data": guest}, "host": {"model": host_model, "data": host}},
                     timeout=60)


def central(guest, host, *, validate=None, max_bins=32, **params):
    """The same algorithm in plaintext on the joined table (guest's features first)."""
    features = [c for c in guest.columns if c not in ("id", "y")] + [c for c in host.columns if c != "id"]
    joined = guest.merge(host, on="id", validate="one_to_one")
    valid = None
    if validate is not None:
        vjoined = validate[0].merge(validate[1], on="id")
        valid = (vjoined[features], vjoined["y"].to_numpy())
    boost = {k: v for k, v in params.items() if k in T.BoostParams.__dataclass_fields__}
    return T.train(joined[features], joined["y"].to_numpy(), T.BoostParams(**boost), features=features,
                   max_bins=max_bins, validate=valid, degenerate=params.get("degenerate_columns", "skip"))


def resolved(guest_model: dict, host_model: dict) -> list[list[dict]]:
    """The guest's trees with every opaque host split replaced by the host's own record of it."""
    host_splits = host_model["body"]["splits"]
    trees = []
    for nodes in guest_model["body"]["trees"]:
        out = []
        for node in nodes:
            node = dict(node)
            if "split" in node:
                split = node["split"]
                source = host_splits[split["split_id"]] if split["owner"] == "host" else split
                node["split"] = {k: source[k] for k in ("feature", "bin", "threshold")}
            out.append(node)
        trees.append(out)
    return trees


def assert_identical_to_central(result, reference):
    guest_model, host_model = result["guest"]["model"], result["host"]["model"]
    # Same splits, same leaf values, same gains and sample counts: bit for bit, not approximately.
    assert resolved(guest_model, host_model) == reference["trees"]
    assert guest_model["body"]["base_margin"] == reference["base_margin"]
    fed_history = result["guest"]["metrics"]["history"]
    assert [h["train_logloss"] for h in fed_history] == [h["train_logloss"] for h in reference["history"]]


def prepare_credit(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """credit_table split by columns: the lender has the label and income (with gaps)."""
    guest = frame[["id", "default", "age", "income", "debt_ratio"]].rename(columns={"default": "y"})
    host = frame[["id", "credit_lines", "months_employed", "late_payments", "utilisation", "region", "education"]]
    return guest.reset_index(drop=True), host.reset_index(drop=True)


def one_hot(host: pd.DataFrame) -> pd.DataFrame:
    out = host.drop(columns=["region", "education"]).copy()
    for column in ("region", "education"):
        for value in sorted(host[column].unique()):
            out[f"{column}={value}"] = (host[column] == value).astype(float)
    return out


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def cancer():
    guest, host = aligned(*breast_cancer_split())
    return {"guest": guest.iloc[:400].reset_index(drop=True), "host": host.iloc[:400].reset_index(drop=True),
            "guest_valid": guest.iloc[400:].reset_index(drop=True),
            "host_valid": host.iloc[400:].reset_index(drop=True)}


# A high learning rate overfits quickly: validation logloss stops improving after 5 trees.
CANCER_PARAMS = {"n_trees": 8, "max_depth": 3, "learning_rate": 1.0, "subsample": 0.8, "seed": 5,
                 "early_stopping_rounds": 1, "min_child_weight": 1.0}


@pytest.fixture(scope="module")
def cancer_run(cancer):
    return train(cancer["guest"], cancer["host"], guest_validate=cancer["guest_valid"],
                 host_validate=cancer["host_valid"], **CANCER_PARAMS)


# For the comparison with XGBoost: usual settings, no subsampling (its draws could not match ours).
PLAIN_PARAMS = {"n_trees": 5, "max_depth": 3, "learning_rate": 0.3}


@pytest.fixture(scope="module")
def cancer_plain_run(cancer):
    return train(cancer["guest"], cancer["host"], **PLAIN_PARAMS)


CREDIT_PARAMS = {"n_trees": 3, "max_depth": 3, "learning_rate": 0.3, "max_bins": 16}


@pytest.fixture(scope="module")
def credit():
    guest, host = prepare_credit(credit_table(5000, seed=11))
    return {"guest": guest.iloc[:4000].reset_index(drop=True), "host": host.iloc[:4000].reset_index(drop=True),
            "guest_valid": guest.iloc[4000:].reset_index(drop=True),
            "host_valid": host.iloc[4000:].reset_index(drop=True)}


@pytest.fixture(scope="module")
def credit_run(credit):
    return train(credit["guest"], one_hot(credit["host"]), **CREDIT_PARAMS)


# ------------------------------------------------------ lossless vs central


def test_federated_trees_on_breast_cancer_are_identical_to_central_trees(cancer, cancer_run):
    reference = central(cancer["guest"], cancer["host"], validate=(cancer["guest_valid"], cancer["host_valid"]),
                        **CANCER_PARAMS)
    assert_identical_to_central(cancer_run, reference)
    trees = cancer_run["guest"]["model"]["body"]["trees"]
    owners = {nd["split"]["owner"] for nodes in trees for nd in nodes if "split" in nd}
    assert owners == {"guest", "host"}  # both parties' features are used
    # Early stopping on the validation logloss kept the same trees as the central run...
    assert cancer_run["guest"]["metrics"]["trees"] == reference["n_trees"] == len(trees) == 5
    assert cancer_run["guest"]["metrics"]["trees_trained"] == 6
    # ...and the host dropped its splits of the tree that was trained but not kept.
    assert {s["tree"] for s in cancer_run["host"]["model"]["body"]["splits"].values()} <= set(range(5))
    history = cancer_run["guest"]["metrics"]["history"]
    assert [h["validate_logloss"] for h in history] == [h["validate_logloss"] for h in reference["history"]]


def test_federated_trees_on_the_credit_table_with_gaps_are_identical_to_central_trees(credit, credit_run):
    host = one_hot(credit["host"])
    reference = central(credit["guest"], host, **CREDIT_PARAMS)
    assert_identical_to_central(credit_run, reference)
    income = [nd for nodes in reference["trees"] for nd in nodes
              if "split" in nd and nd["split"]["feature"] == "income"]
    assert income, "the feature with missing values should be used"
    assert credit["guest"]["income"].eq("").sum() > 50


def test_auc_is_within_0_01_of_xgboost_with_matching_parameters(cancer, cancer_plain_run, credit, credit_run):
    assert_identical_to_central(cancer_plain_run, central(cancer["guest"], cancer["host"], **PLAIN_PARAMS))
    cases = [
        (cancer, cancer_plain_run, cancer["host"], cancer["host_valid"], PLAIN_PARAMS),
        (credit, credit_run, one_hot(credit["host"]), one_hot(credit["host_valid"]), CREDIT_PARAMS),
    ]
    for data, result, host, host_valid, params in cases:
        scored = predict(result["guest"]["model"], result["host"]["model"], data["guest_valid"], host_valid)
        y_valid = data["guest_valid"]["y"].to_numpy()
        ours = roc_auc_score(y_valid, scored["guest"]["predictions"]["probability"].to_numpy())
        features = [c for c in data["guest"].columns if c not in ("id", "y")] + [c for c in host.columns if c != "id"]

        def joined(g, h, features=features):
            frame = g.merge(h, on="id")
            return frame[features].apply(pd.to_numeric, errors="coerce"), frame["y"].to_numpy()

        x_train, y_train = joined(data["guest"], host)
        x_valid, _ = joined(data["guest_valid"], host_valid)
        reference = xgb.XGBClassifier(
            n_estimators=result["guest"]["metrics"]["trees"], max_depth=params["max_depth"],
            learning_rate=params["learning_rate"], reg_lambda=1.0, gamma=0.0,
            min_child_weight=params.get("min_child_weight", 1.0), subsample=1.0, tree_method="hist",
            max_bin=params.get("max_bins", 32), base_score=float(y_train.mean()), n_jobs=1)
        reference.fit(x_train, y_train)
        theirs = roc_auc_score(y_valid, reference.predict_proba(x_valid)[:, 1])
        assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_a_preprocessing_transform_is_applied_in_training_and_stored_for_scoring(credit):
    guest, host = credit["guest"].iloc[:600], credit["host"].iloc[:600]
    body = preprocessing.fit(host, id_column="id", categorical_columns=["region", "education"])
    transform = model_io.build(component="preprocess", component_version="1.0.0", role="host",
                               model_id="t", params={}, body=body)
    result = run_local(hetero_secureboost, {**SMALL_KEYS, "n_trees": 2, "max_depth": 2},
                       {"guest": {"data": guest}, "host": {"data": host, "transform": transform}}, timeout=60)
    reference = central(guest, preprocessing.apply_model(transform, host), n_trees=2, max_depth=2)
    assert_identical_to_central(result, reference)
    host_model = result["host"]["model"]
    assert host_model["body"]["transform"] == transform
    # Scoring raw rows: the stored transform one-hot encodes them again.
    scored = predict(result["guest"]["model"], host_model, guest.iloc[:50], host.iloc[:50])
    expected = T.sigmoid(T.predict_margin(reference, guest.iloc[:50].merge(
        preprocessing.apply_model(transform, host.iloc[:50]), on="id")))
    assert scored["guest"]["predictions"]["probability"].tolist() == expected.tolist()


def test_constant_and_empty_columns_are_skipped_like_the_central_learner_does():
    rng = np.random.default_rng(8)
    n = 300
    ids = [f"r{i:04d}" for i in range(n)]
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + x[:, 2] + rng.normal(size=n) > 0).astype(int)
    guest = pd.DataFrame({"id": ids, "y": y, "a": x[:, 0], "same": 7.0})
    host = pd.DataFrame({"id": ids, "b": x[:, 1], "c": x[:, 2], "nothing": np.nan})
    result = train(guest, host, n_trees=2, max_depth=2)
    assert_identical_to_central(result, central(guest, host, n_trees=2, max_depth=2))
    assert result["guest"]["metrics"]["skipped_features"] == [{"name": "same", "reason": "constant"}]
    assert result["host"]["metrics"]["skipped_features"] == [{"name": "nothing", "reason": "all_missing"}]
    with pytest.raises(AllMissingColumn, match="'nothing'.*only missing values"):
        train(guest.drop(columns=["same"]), host, n_trees=1, max_depth=1, degenerate_columns="error")


def test_a_party_without_any_usable_feature_still_trains_identically():
    rng = np.random.default_rng(9)
    n = 200
    ids = [f"r{i:04d}" for i in range(n)]
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] - x[:, 1] + rng.normal(size=n) > 0).astype(int)
    labels_only = pd.DataFrame({"id": ids, "y": y})
    features = pd.DataFrame({"id": ids, "a": x[:, 0], "b": x[:, 1]})
    result = train(labels_only, features, n_trees=2, max_depth=2)
    assert_identical_to_central(result, central(labels_only, features, n_trees=2, max_depth=2))
    empty_host = pd.DataFrame({"id": ids, "same": 1.0})  # its only column is constant: skipped
    result = train(features.assign(y=y), empty_host, n_trees=2, max_depth=2)
    assert_identical_to_central(result, central(features.assign(y=y), empty_host, n_trees=2, max_depth=2))
    assert result["host"]["model"]["body"]["splits"] == {}


# ------------------------------------------------------------- bad inputs


def test_a_label_with_one_class_only_is_refused_with_a_clear_error(cancer):
    guest = cancer["guest"].iloc[:50].assign(y=1)
    with pytest.raises(SingleClass, match="label column 'y'.*single class"):
        train(guest, cancer["host"].iloc[:50], n_trees=1)


def test_rows_that_psi_did_not_align_are_refused():
    guest, host = breast_cancer_split()  # each party keeps its own row order
    with pytest.raises(InvalidInput, match="not aligned"):
        train(guest.iloc[:40], host.iloc[:40], n_trees=1)


def test_text_features_and_missing_columns_are_refused_naming_the_column(credit):
    guest, host = credit["guest"].iloc[:40], credit["host"].iloc[:40]
    with pytest.raises(NotNumeric, match="'region'"):
        train(guest, host, n_trees=1)
    with pytest.raises(MissingColumn, match="'salary'"):
        train(guest, one_hot(host), n_trees=1, role_params={"guest": {"feature_columns": ["age", "salary"]}})


def test_early_stopping_without_a_validation_set_is_refused(cancer):
    with pytest.raises(InvalidParameters, match="early_stopping_rounds needs the 'validate' input"):
        train(cancer["guest"].iloc[:50], cancer["host"].iloc[:50], n_trees=2, early_stopping_rounds=2)


def test_keys_below_2048_bits_need_the_explicit_test_flag():
    with pytest.raises(InvalidParameters) as info:
        hetero_secureboost.validate_params({"key_bits": 1024})
    assert info.value.param == "key_bits"
    assert hetero_secureboost.validate_params({}).key_bits == 2048
    schema = hetero_secureboost.describe()["parameters"]
    assert schema["additionalProperties"] is False and schema["properties"]["max_bins"]["default"] == 32


@pytest.mark.parametrize("scheme", ["paillier", "ou"])
def test_the_guest_encrypts_its_gradients_as_the_keys_owner_on_workers_and_stops_them(cancer, monkeypatch, scheme):
    from engine.components.secureboost import guest as guest_module
    from engine.crypto.owner import OwnerEncryptor

    made = []

    class Recording(OwnerEncryptor):
        def __init__(self, private, **kwargs):
            super().__init__(private, workers=2)
            self.batches = []
            made.append(self)

        def encrypt_int(self, integers, **kwargs):
            self.batches.append((len(integers), self.worker_count))
            return super().encrypt_int(integers, **kwargs)

    monkeypatch.setattr(guest_module, "OwnerEncryptor", Recording)
    keys = OU_KEYS if scheme == "ou" else {}
    params = {"n_trees": 2, "max_depth": 2, "learning_rate": 0.3}
    result = train(cancer["guest"], cancer["host"], **keys, **params)
    assert_identical_to_central(result, central(cancer["guest"], cancer["host"], **params))
    assert len(made) == 1 and made[0].batches == [(400, 2), (400, 2)]  # every row, each tree, on the workers
    assert made[0].worker_count == 0  # stopped when the training ended
    assert result["guest"]["metrics"]["seconds"]["encrypt"] > 0


# ------------------------------------------------- Okamoto-Uchiyama (he_scheme="ou")

OU_KEYS = {"key_bits": 2048, "insecure_allow_small_keys": False, "he_scheme": "ou"}


def test_under_okamoto_uchiyama_the_trees_are_identical_to_central_trees(cancer):
    transport = CapturingTransport()
    result = train(cancer["guest"], cancer["host"], guest_validate=cancer["guest_valid"],
                   host_validate=cancer["host_valid"], transport=transport, **OU_KEYS, **CANCER_PARAMS)
    reference = central(cancer["guest"], cancer["host"], validate=(cancer["guest_valid"], cancer["host_valid"]),
                        **CANCER_PARAMS)
    assert_identical_to_central(result, reference)
    history = result["guest"]["metrics"]["history"]
    assert [h["validate_logloss"] for h in history] == [h["validate_logloss"] for h in reference["history"]]
    assert result["guest"]["metrics"]["trees"] == reference["n_trees"] == 5
    assert result["guest"]["model"]["params"]["he_scheme"] == "ou"
    # What travelled really was Okamoto-Uchiyama under a 2048-bit n = p^2 q: half-size ciphertexts below n.
    hello = transport.received["host"][0][1]
    assert hello["he_scheme"] == "ou"
    public = ou.PublicKey.from_bytes(hello["public_key"])
    assert public.bits == 2048
    for key, message in transport.received["host"] + transport.received["guest"]:
        for leaf in leaves_of(message):
            if isinstance(leaf, wire.BigIntArray):
                assert all(0 < c < public.n for c in leaf.values), key
                assert max(c.bit_length() for c in leaf.values) > 2000, key
    # The host packs a third as many histogram entries per ciphertext as with Paillier.
    assert result["host"]["metrics"]["work"]["ciphertexts_sent"] > 0


def test_the_scheme_is_a_choice_in_the_form_and_okamoto_uchiyama_is_the_default():
    assert hetero_secureboost.validate_params({}).he_scheme == "ou"
    schema = hetero_secureboost.describe()["parameters"]["properties"]["he_scheme"]
    assert schema["enum"] == ["paillier", "ou"] and schema["default"] == "ou" and schema["title"]
    with pytest.raises(InvalidParameters) as info:
        hetero_secureboost.validate_params({"he_scheme": "rsa"})
    assert info.value.param == "he_scheme"
    with pytest.raises(InvalidParameters) as info:
        hetero_secureboost.validate_params({"he_scheme": "ou", "key_bits": 1024})
    assert info.value.param == "key_bits"


def test_parties_set_to_different_schemes_refuse_to_train_naming_both(cancer):
    guest, host = cancer["guest"].iloc[:60], cancer["host"].iloc[:60]
    with pytest.raises(InvalidParameters, match="same he_scheme") as info:
        train(guest, host, n_trees=1, max_depth=1, role_params={"guest": {"he_scheme": "paillier"}})
    assert info.value.param == "he_scheme"
    assert "Paillier (he_scheme='paillier')" in str(info.value)
    assert "Okamoto-Uchiyama (he_scheme='ou')" in str(info.value)


class TamperingTransport(InMemoryTransport):
    """Changes fields of the guest's hello on its way to the host."""

    def __init__(self, **changes):
        super().__init__()
        self.changes = changes

    def push(self, session_id, src, dst, key, payload):
        if dst == "host" and key.endswith("setup/hello"):
            payload = wire.encode({**wire.decode(payload), **self.changes})
        super().push(session_id, src, dst, key, payload)


def test_a_malformed_or_foreign_public_key_is_refused_before_anything_is_encrypted(cancer):
    guest, host = cancer["guest"].iloc[:60], cancer["host"].iloc[:60]
    good_ou = ou.generate_keypair()[0].to_bytes()
    odd_n = (1 << 2047) + 1  # divisible by 3: not a modulus
    cases = [
        ({"he_scheme": "ou", "public_key": good_ou[:-1]}, "Okamoto-Uchiyama public key is not acceptable"),
        ({"he_scheme": "ou", "public_key": b"OU1" + odd_n.to_bytes(256, "big") * 3}, "not acceptable"),
        ({"he_scheme": "ou", "public_key": b"OU1" + b"\xff" * 3 * 2048}, "at most 8192 bits"),
        ({"he_scheme": "ou", "public_key": int(odd_n)}, "exported Okamoto-Uchiyama key"),  # the v1 form
        ({"he_scheme": "elgamal"}, "unknown encryption scheme 'elgamal'"),
        ({"he_scheme": "ou", "public_key": paillier.generate_keypair(1024, insecure_allow_small_keys=True)[0]
          .to_bytes()}, "not an exported Okamoto-Uchiyama public key"),
    ]
    for changes, message in cases:
        with pytest.raises(ProtocolError, match=message):
            train(guest, host, n_trees=1, max_depth=1, transport=TamperingTransport(**changes), **OU_KEYS)
    small = ou.generate_keypair(1024, insecure_allow_small_keys=True)[0].to_bytes()
    with pytest.raises(ProtocolError, match="too small"):
        train(guest, host, n_trees=1, max_depth=1, transport=TamperingTransport(public_key=small), **OU_KEYS)
    # A host that allows test keys still holds the guest to its own key_bits.
    with pytest.raises(InvalidInput, match="1024 bits; this party requires 2048"):
        train(guest, host, n_trees=1, max_depth=1, transport=TamperingTransport(public_key=small),
              **{**OU_KEYS, "insecure_allow_small_keys": True})


# ------------------------------------------------------- message inspection


class CapturingTransport(InMemoryTransport):
    """Keeps a decoded copy of every message, by receiving party."""

    def __init__(self):
        super().__init__()
        self.received: dict[str, list[tuple[str, object]]] = {"guest": [], "host": []}

    def push(self, session_id, src, dst, key, payload):
        self.received[dst].append((key, wire.decode(payload)))
        super().push(session_id, src, dst, key, payload)


def leaves_of(value):
    """Every scalar, array and ciphertext array inside a decoded message."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves_of(item)
    else:
        yield value


def test_every_ciphertext_the_guest_receives_is_freshly_re_randomised_and_only_those_are(cancer, monkeypatch):
    """Full-length re-randomisation is paid for the packed sums sent, not for every histogram bucket."""
    from engine.crypto.he import EncryptedArray

    outputs, sizes = [], []
    rerandomize = EncryptedArray.rerandomize

    def recording(self, **kwargs):
        fresh = rerandomize(self, **kwargs)
        sizes.append(self.size)
        outputs.extend(int(c) for c in fresh.ciphertexts)
        return fresh

    monkeypatch.setattr(EncryptedArray, "rerandomize", recording)
    transport = CapturingTransport()
    result = train(cancer["guest"], cancer["host"], transport=transport, n_trees=1, max_depth=3)
    seen = [int(c) for key, message in transport.received["guest"] if key.endswith("histograms")
            for leaf in leaves_of(message) if isinstance(leaf, wire.BigIntArray) for c in leaf.values]
    work = result["host"]["metrics"]["work"]
    assert seen and sorted(seen) == sorted(outputs)  # each one re-randomised on its way out, nothing more
    assert sum(sizes) == len(seen) == work["ciphertexts_sent"] < work["candidates_sent"]  # packed first


def test_the_host_receives_only_ciphertexts_row_masks_and_ids_and_the_guest_no_host_thresholds(cancer):
    transport = CapturingTransport()
    guest, host = cancer["guest"].iloc[:150], cancer["host"].iloc[:150]
    result = train(guest, host, transport=transport, n_trees=2, max_depth=3, subsample=0.7, he_scheme="paillier")
    hello = transport.received["host"][0][1]
    assert hello["he_scheme"] == "paillier"
    public_n = paillier.PublicKey.from_bytes(hello["public_key"], insecure_allow_small_keys=True).n

    for key, message in transport.received["host"]:
        for leaf in leaves_of(message):
            # No float anywhere: gradients, hessians, gains, leaf values never reach the host.
            assert not isinstance(leaf, float), key
            if isinstance(leaf, np.ndarray):
                assert leaf.dtype in (np.uint8, np.int64), key  # row bit masks, candidate ids
            if isinstance(leaf, wire.BigIntArray):
                assert key.endswith("/gradients")
                # Ciphertexts modulo n^2: a plaintext (scaled) gradient would be far below n.
                assert all(public_n < c < public_n**2 for c in leaf.values)
    host_keys = {key.split("/")[-1] for key, _ in transport.received["host"]}
    assert host_keys == {"hello", "ids", "gradients", "plan", "decisions", "next", "final"}

    host_model = result["host"]["model"]["body"]
    host_names = set(host.columns) - {"id"}
    host_thresholds = {s["threshold"] for s in host_model["splits"].values()}
    host_edges = {e for edges in host_model["bins"].values() for e in edges}
    for key, message in transport.received["guest"]:
        for leaf in leaves_of(message):
            assert not isinstance(leaf, float), key  # so no threshold or bin edge either
            if isinstance(leaf, str):
                assert leaf not in host_names, key
            if isinstance(leaf, np.ndarray):
                assert leaf.dtype in (np.uint8, np.int64), key
                assert leaf.dtype != np.float64
            if isinstance(leaf, wire.BigIntArray):
                assert key.endswith("/histograms")
    assert host_thresholds and host_edges  # the host did split, and kept its thresholds
    guest_keys = {key.split("/")[-1] for key, _ in transport.received["guest"]}
    assert guest_keys == {"hello", "ids", "histograms", "partitions", "routes"}
    # The guest's model refers to host splits by opaque id only.
    guest_text = json.dumps(result["guest"]["model"])
    assert not any(name in guest_text for name in host_names)


# ------------------------------------------------ prediction and model files


def test_prediction_equals_central_prediction_on_new_rows(cancer, cancer_run):
    reference = central(cancer["guest"], cancer["host"], validate=(cancer["guest_valid"], cancer["host_valid"]),
                        **CANCER_PARAMS)
    scored = predict(cancer_run["guest"]["model"], cancer_run["host"]["model"], cancer["guest_valid"],
                     cancer["host_valid"], label_column="y")
    rows = cancer["guest_valid"].merge(cancer["host_valid"], on="id")
    expected = T.sigmoid(T.predict_margin(reference, rows))
    out = scored["guest"]["predictions"]
    assert out["id"].tolist() == cancer["guest_valid"]["id"].tolist()
    assert out["probability"].tolist() == expected.tolist()
    assert out["prediction"].tolist() == (expected >= 0.5).astype(int).tolist()
    assert scored["guest"]["metrics"]["evaluation"]["auc"] > 0.95
    assert scored["host"]["metrics"] == {"rows": len(rows), "consistency_check": "skipped: the sample rows are "
                                         "not in this table",
                                         "splits_routed": len(cancer_run["host"]["model"]["body"]["splits"])}


def test_exported_halves_reimport_and_predict_their_consistency_sample_exactly(tmp_path, cancer, cancer_run):
    guest_file = model_io.save(cancer_run["guest"]["model"], tmp_path / "guest.json")
    host_file = model_io.save(cancer_run["host"]["model"], tmp_path / "host.json")
    guest_model = model_io.load(guest_file, component="hetero_secureboost", role="guest")
    host_model = model_io.load(host_file, component="hetero_secureboost", role="host")
    assert guest_model["model_id"] == host_model["model_id"]
    assert len(guest_model["sample_check"]["ids"]) == 50
    scored = predict(guest_model, host_model, cancer["guest"], cancer["host"])
    assert scored["guest"]["metrics"]["consistency_check"] == "passed"
    assert scored["host"]["metrics"]["consistency_check"] == "passed"
    # JSON only: the files are plain text documents, and the scores are unchanged by the round trip.
    before = predict(cancer_run["guest"]["model"], cancer_run["host"]["model"], cancer["guest"], cancer["host"])
    assert scored["guest"]["predictions"]["probability"].tolist() == before["guest"]["predictions"]["probability"].tolist()


def test_a_model_half_that_no_longer_predicts_the_same_is_refused_after_import(cancer, cancer_run):
    host_model = copy.deepcopy(cancer_run["host"]["model"])
    body = host_model["body"]
    split_id = min(body["splits"])
    split = body["splits"][split_id]
    edges = body["bins"][split["feature"]]
    # A different, still well-formed threshold (far from the original, so that sample rows move).
    split["bin"] = 0 if split["bin"] > len(edges) // 2 else len(edges) - 1
    split["threshold"] = edges[split["bin"]]
    with pytest.raises(model_io.ModelFormatError, match="differs after import"):
        predict(cancer_run["guest"]["model"], host_model, cancer["guest"], cancer["host"])
    broken = copy.deepcopy(cancer_run["guest"]["model"])
    broken["body"]["trees"][0][0]["left"] = 0
    with pytest.raises(model_io.ModelFormatError, match="children"):
        predict(broken, cancer_run["host"]["model"], cancer["guest"], cancer["host"])


def test_halves_of_different_trainings_are_not_mixed(cancer, cancer_run):
    other = copy.deepcopy(cancer_run["host"]["model"])
    other["model_id"] = "another-training"
    with pytest.raises(InvalidInput, match="model ids differ"):
        predict(cancer_run["guest"]["model"], other, cancer["guest"], cancer["host"])


def test_feature_importance_counts_every_split_once_on_each_side(cancer_run):
    guest_trees = cancer_run["guest"]["model"]["body"]["trees"]
    host_body = cancer_run["host"]["model"]["body"]
    guest_importance = cancer_run["guest"]["metrics"]["feature_importance"]
    host_split_nodes = [nd for nodes in guest_trees for nd in nodes
                        if "split" in nd and nd["split"]["owner"] == "host"]
    assert guest_importance["host"]["splits"] == len(host_split_nodes) == len(host_body["splits"])
    assert sum(v["splits"] for v in host_body["feature_importance"].values()) == len(host_split_nodes)
    assert math.isclose(guest_importance["host"]["gain"], sum(nd["gain"] for nd in host_split_nodes))
    guest_splits = sum(v["splits"] for v in guest_importance["guest"].values())
    assert guest_splits + len(host_split_nodes) == sum(1 for nodes in guest_trees for nd in nodes if "split" in nd)


# ------------------------------------------------------------------ runner


def test_the_runner_trains_from_csv_files_and_writes_each_half(tmp_path, cancer):
    from engine.__main__ import main
    from engine.errors import ComponentNotFound
    from engine.registry import get_component, register

    try:
        get_component("hetero_secureboost")
    except ComponentNotFound:  # registered by package discovery; this keeps the test independent of it
        register(hetero_secureboost)
    cancer["guest"].iloc[:120].to_csv(tmp_path / "g.csv", index=False)
    cancer["host"].iloc[:120].to_csv(tmp_path / "h.csv", index=False)
    params = json.dumps({**SMALL_KEYS, "n_trees": 2, "max_depth": 2})
    code = main(["run", "hetero_secureboost", "--data", f"guest={tmp_path / 'g.csv'}", f"host={tmp_path / 'h.csv'}",
                 "--params", params, "--out", str(tmp_path / "out")])
    assert code == 0
    guest_model = model_io.load(tmp_path / "out" / "guest" / "model.json", role="guest")
    host_model = model_io.load(tmp_path / "out" / "host" / "model.json", role="host")
    reference = central(cancer["guest"].iloc[:120], cancer["host"].iloc[:120], n_trees=2, max_depth=2)
    assert resolved(guest_model, host_model) == reference["trees"]
    bad = main(["run", "hetero_secureboost", "--data", f"guest={tmp_path / 'g.csv'}", f"host={tmp_path / 'h.csv'}",
                "--params", json.dumps({**SMALL_KEYS, "label_column": "nope"}), "--out", str(tmp_path / "o2")])
    assert bad == 2


def test_a_peer_that_breaks_the_protocol_is_reported_as_such():
    from engine.components.secureboost import protocol as P

    with pytest.raises(ProtocolError, match="fewer entries"):
        P.unpack_pairs([5], 8, 1, 3)


def test_training_resumed_from_the_checkpoint_after_a_tree_grows_the_same_trees(cancer, cancer_run, tmp_path):
    inputs = dict(guest_validate=cancer["guest_valid"], host_validate=cancer["host_valid"])
    full = train(cancer["guest"], cancer["host"], checkpoint_dir=str(tmp_path / "ckpt"), **inputs, **CANCER_PARAMS)
    assert resolved(full["guest"]["model"], full["host"]["model"]) == resolved(cancer_run["guest"]["model"],
                                                                               cancer_run["host"]["model"])
    assert "checkpoint_dir" not in full["guest"]["model"]["params"]  # a local path is not part of the model
    checkpoints = {role: model_io.load(tmp_path / "ckpt" / role / "tree-00002.json") for role in ("guest", "host")}
    resumed = run_local(
        hetero_secureboost, {**SMALL_KEYS, **CANCER_PARAMS},
        {"guest": {"data": cancer["guest"], "validate": cancer["guest_valid"], "resume": checkpoints["guest"]},
         "host": {"data": cancer["host"], "validate": cancer["host_valid"], "resume": checkpoints["host"]}},
        timeout=120)
    assert resolved(resumed["guest"]["model"], resumed["host"]["model"]) == resolved(full["guest"]["model"],
                                                                                     full["host"]["model"])
    assert resumed["guest"]["metrics"]["history"] == full["guest"]["metrics"]["history"]
    assert resumed["guest"]["model"]["sample_check"] == full["guest"]["model"]["sample_check"]


def test_the_parties_must_resume_from_the_same_tree(cancer, tmp_path):
    full = train(cancer["guest"], cancer["host"], checkpoint_dir=str(tmp_path), n_trees=3, max_depth=2)
    assert full["guest"]["metrics"]["trees"] == 3
    guest_ckpt = model_io.load(tmp_path / "guest" / "tree-00002.json")
    host_ckpt = model_io.load(tmp_path / "host" / "tree-00001.json")
    with pytest.raises(InvalidInput, match="same checkpoint"):
        run_local(hetero_secureboost, {**SMALL_KEYS, "n_trees": 3, "max_depth": 2},
                  {"guest": {"data": cancer["guest"], "resume": guest_ckpt},
                   "host": {"data": cancer["host"], "resume": host_ckpt}}, timeout=60)
    with pytest.raises(InvalidInput, match="other rows"):
        run_local(hetero_secureboost, {**SMALL_KEYS, "n_trees": 3, "max_depth": 2},
                  {"guest": {"data": cancer["guest"].iloc[::-1].reset_index(drop=True), "resume": guest_ckpt},
                   "host": {"data": cancer["host"].iloc[::-1].reset_index(drop=True), "resume": host_ckpt}}, timeout=60)
