"""The train/validation split: drawn by the guest, membership only to the host."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import wire
from engine.components.split import split
from engine.components.split.align import RowsNotAligned, rows_digest
from engine.components.split.protocol import draw_split
from engine.errors import InvalidInput, InvalidParameters, SingleClass
from engine.federation import InMemoryTransport, run_local
from engine.samples import breast_cancer_split


class RecordingTransport(InMemoryTransport):
    def __init__(self):
        super().__init__()
        self.log = []

    def push(self, session_id, src, dst, key, payload):
        self.log.append((src, dst, key, wire.decode(payload)))
        super().push(session_id, src, dst, key, payload)

    def received_by(self, dst):
        return [(key, value) for _, d, key, value in self.log if d == dst]


def tables(rows=200, positives=60):
    ids = [f"{i:05d}" for i in range(rows)]
    y = np.zeros(rows, dtype=int)
    y[:positives] = 1
    guest = pd.DataFrame({"id": ids, "y": y, "a": np.arange(rows) * 1.5})
    host = pd.DataFrame({"id": ids, "b": np.arange(rows) % 7})
    return guest, host


def run(guest, host, transport=None, **params):
    return run_local(split, params, {"guest": {"data": guest}, "host": {"data": host}}, transport=transport,
                     timeout=30)


def test_a_random_split_puts_the_rounded_fraction_of_rows_in_validation_and_depends_only_on_the_seed():
    mask = draw_split(101, 0.25, seed=7)
    assert mask.sum() == 25  # round(25.25)
    assert np.array_equal(mask, draw_split(101, 0.25, seed=7))
    assert not np.array_equal(mask, draw_split(101, 0.25, seed=8))


def test_a_stratified_split_keeps_each_class_share_within_one_row():
    labels = np.array([1] * 30 + [0] * 71)
    mask = draw_split(101, 0.2, seed=1, labels=labels)
    assert mask[labels == 1].sum() == 6 and mask[labels == 0].sum() == 14  # round(14.2)
    with pytest.raises(ValueError):
        draw_split(10, 1.0, seed=1)


def test_both_parties_get_the_same_rows_in_train_and_validation_in_their_original_order():
    guest, host = breast_cancer_split(shuffle_seed=None)
    out = run(guest, host, validation_fraction=0.3, seed=5)
    for part in ("train", "validate"):
        assert out["guest"][part]["id"].tolist() == out["host"][part]["id"].tolist()
        assert list(out["host"][part].columns) == list(host.columns)
    valid = out["guest"]["validate"]
    assert len(valid) == round(0.3 * (guest["y"] == 1).sum()) + round(0.3 * (guest["y"] == 0).sum())
    assert out["guest"]["train"]["id"].is_monotonic_increasing
    metrics = out["guest"]["metrics"]
    assert abs(metrics["train_event_rate"] - metrics["validate_event_rate"]) < 0.01
    assert out["host"]["metrics"] == {"rows": 569, "train_rows": metrics["train_rows"],
                                      "validate_rows": metrics["validate_rows"]}


def test_the_host_receives_only_a_nonce_and_one_boolean_per_row_never_a_label():
    guest, host = tables()
    transport = RecordingTransport()
    out = run(guest, host, transport=transport)
    received = dict(transport.received_by("host"))
    assert list(received) == ["split/hello", "split/membership"]
    assert set(received["split/hello"]) == {"protocol", "rows", "nonce"}
    membership = received["split/membership"]
    assert set(membership) == {"validate"} and membership["validate"].dtype == bool
    assert membership["validate"].sum() == len(out["host"]["validate"])
    # What the guest receives from the host: a digest, not ids.
    hello = dict(transport.received_by("guest"))["split/hello"]
    assert hello["digest"] == rows_digest(list(host["id"]), received["split/hello"]["nonce"])


def test_the_same_seed_gives_the_same_split_and_a_random_split_needs_no_label():
    guest, host = tables()
    first = run(guest, host, seed=3)["guest"]["validate"]["id"].tolist()
    assert run(guest, host, seed=3)["guest"]["validate"]["id"].tolist() == first
    no_label = guest.drop(columns="y")
    out = run(no_label, host, method="random", validation_fraction=0.1)
    assert len(out["guest"]["validate"]) == 20 and "train_event_rate" not in out["guest"]["metrics"]


def test_rows_that_are_not_aligned_are_refused_before_the_membership_is_sent():
    guest, host = tables()
    transport = RecordingTransport()
    with pytest.raises(RowsNotAligned):
        run(guest, host.iloc[::-1].reset_index(drop=True), transport=transport)
    assert [key for key, _ in transport.received_by("host")] == ["split/hello"]
    with pytest.raises(RowsNotAligned, match="199 rows"):
        run(guest, host.iloc[1:].reset_index(drop=True))


def test_a_stratified_split_of_a_single_class_or_an_empty_set_is_a_clear_error():
    guest, host = tables()
    with pytest.raises(SingleClass, match="'y'"):
        run(guest.assign(y=0), host)
    with pytest.raises(InvalidInput, match="validation set empty"):
        run(guest.head(2), host.head(2), method="random", validation_fraction=0.1)
    with pytest.raises(InvalidInput, match="no id column 'uid'"):
        run(guest, host, id_column="uid")
    with pytest.raises(InvalidParameters, match="validation_fraction"):
        run(guest, host, validation_fraction=1.0)
