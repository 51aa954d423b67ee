"""Online scoring's arithmetic (engine.serving) gives the batch components' floats, bit for bit,
whether a row is scored alone, in a batch, from a serving table or from the request."""

import base64
import functools
import json

import numpy as np
import pytest

from engine.components.hetero_lr import hetero_lr, hetero_lr_predict
from engine.components.secureboost import hetero_secureboost, hetero_secureboost_predict
from engine.errors import ProtocolError
from engine.federation.local import run_local
from engine.samples import breast_cancer_split
from engine.serving import Half, ServingError, ServingTable, score_rows

SMALL_KEYS = {"key_bits": 1024, "insecure_allow_small_keys": True}


@functools.lru_cache(maxsize=1)
def _data():
    guest, host = breast_cancer_split()
    host = host.set_index("id").loc[guest["id"]].reset_index()  # aligned, as PSI leaves them
    return guest, host


@functools.lru_cache(maxsize=1)
def _lr():
    guest, host = _data()
    out = run_local(hetero_lr, {**SMALL_KEYS, "learning_rate": 0.3, "batch_size": 0, "max_epochs": 3, "seed": 9},
                    {"guest": {"data": guest[:300]}, "host": {"data": host[:300]}})
    return out["guest"]["model"], out["host"]["model"]


@functools.lru_cache(maxsize=1)
def _sb():
    guest, host = _data()
    out = run_local(hetero_secureboost, {**SMALL_KEYS, "n_trees": 3, "max_depth": 3},
                    {"guest": {"data": guest[:300]}, "host": {"data": host[:300]}}, timeout=120)
    return out["guest"]["model"], out["host"]["model"]


def _batch(component, models):
    guest, host = _data()
    out = run_local(component, {}, {"guest": {"model": models[0], "data": guest},
                                    "host": {"model": models[1], "data": host}}, timeout=60)
    return out["guest"]["predictions"]["probability"].to_numpy()


@pytest.mark.parametrize("kind", ["lr", "sb"])
def test_online_scores_equal_the_batch_components_bit_for_bit(kind):
    models = _lr() if kind == "lr" else _sb()
    expected = _batch(hetero_lr_predict if kind == "lr" else hetero_secureboost_predict, models)
    guest, host = _data()
    g, h = Half.load(models[0]), Half.load(json.dumps(models[1]))
    g_table, h_table = ServingTable(g, guest, "id"), ServingTable(h, host, "id")
    ids = guest["id"].tolist()
    # In one batch, through JSON as between sites.
    positions_h, missing_h = h_table.locate(ids)
    part = json.loads(json.dumps(h_table.host_part(positions_h)))
    positions_g, _missing = g_table.locate(ids)
    assert not missing_h and np.array_equal(g_table.combine(positions_g, part), expected)
    # Few rows at a time (SecureBoost walks them row by row instead of routing them with numpy).
    for lo in range(0, len(ids), 32):
        chunk = ids[lo:lo + 32]
        part = json.loads(json.dumps(h_table.host_part(h_table.locate(chunk)[0])))
        assert np.array_equal(g_table.combine(g_table.locate(chunk)[0], part), expected[lo:lo + 32])
    # One id at a time, and with the guest's features in the request instead of a table.
    for row in (0, 17, len(ids) - 1):
        part = json.loads(json.dumps(h_table.host_part(h_table.locate([ids[row]])[0])))
        assert g_table.combine(g_table.locate([ids[row]])[0], part)[0] == expected[row]
        assert score_rows(g, guest.iloc[[row]], part)[0] == expected[row]


def test_unknown_ids_are_named_and_nothing_else_is_lost():
    guest, host = _data()
    table = ServingTable(Half.load(_lr()[1]), host, "id")
    positions, missing = table.locate([host["id"].iloc[3], "no-such-id", host["id"].iloc[5]])
    assert positions == [3, 5] and missing == ["no-such-id"]


def test_a_partners_malformed_answer_is_a_protocol_error_not_a_wrong_score():
    guest, _host = _data()
    for kind, bad in (("lr", {"u": [1.0, 2.0]}), ("lr", {"u": ["1"]}), ("lr", {"u": [float("nan")]}),
                      ("sb", {"routes": {}}), ("sb", {"routes": {"x": "***"}}), ("lr", [1.0])):
        half = Half.load((_lr() if kind == "lr" else _sb())[0])
        routes = bad.get("routes") if isinstance(bad, dict) else None
        if routes == {"x": "***"}:
            splits = {nd["split"]["split_id"] for nodes in half.document["body"]["trees"] for nd in nodes
                      if "split" in nd and nd["split"]["owner"] == "host"}
            bad = {"routes": {sid: "***" for sid in splits}}
        with pytest.raises(ProtocolError):
            half.combine(half.matrix(guest.iloc[[0]]), bad)


def test_roles_and_components_are_checked_when_a_half_is_loaded():
    guest, host = _data()
    with pytest.raises(ServingError, match="host's half"):
        Half.load(_lr()[1]).combine(np.zeros((1, 1)), {"u": [0.0]})
    with pytest.raises(ServingError, match="serves"):
        Half.load({**_lr()[0], "component": "scorecard"})
    with pytest.raises(ServingError, match="no column 'customer'"):
        ServingTable(Half.load(_lr()[1]), host, "customer")


def test_own_part_is_what_one_half_computes_alone_row_by_row():
    guest, host = _data()
    for models in (_lr(), _sb()):
        for half, frame in ((Half.load(models[0]), guest), (Half.load(models[1]), host)):
            rows = frame.iloc[:20]
            batch = half.own_part(half.matrix(rows))
            assert json.loads(json.dumps(batch)) == batch
            (key, values), = batch.items()
            for i in (0, 7, 19):
                alone = half.own_part(half.matrix(rows.iloc[[i]]))[key]
                if key == "u":
                    assert alone == [values[i]]
                else:
                    bits = {k: np.unpackbits(np.frombuffer(base64.b64decode(v), np.uint8))[i]
                            for k, v in values.items()}
                    assert bits == {k: np.unpackbits(np.frombuffer(base64.b64decode(v), np.uint8))[0]
                                    for k, v in alone.items()}
