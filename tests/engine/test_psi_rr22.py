"""The psi component's OT-based protocol (RR22, SecretFlow's library in a child process)."""

from __future__ import annotations

import sys
import tempfile
import threading
import time

import pandas as pd
import pytest

from engine.components.psi import rr22
from engine.errors import EngineError, FederationError, InvalidParameters, PolicyViolation, ProtocolError
from engine.federation import Transport, run_local
from tests.engine.test_psi import TRICKY_GUEST, TRICKY_HOST, RecordingTransport


def psi(guest_ids, host_ids, *, transport=None, role_params=None, **params):
    guest = pd.DataFrame({"id": list(guest_ids), "g": range(len(guest_ids))})
    host = pd.DataFrame({"id": list(host_ids), "h": range(len(host_ids))})
    return run_local("psi", {"protocol": "rr22", **params}, {"guest": {"data": guest}, "host": {"data": host}},
                     transport=transport, role_params=role_params, timeout=60)


# Ids a CSV file, a hash or a library could get wrong: separators, quotes, line breaks,
# NUL, Unicode forms, near-duplicates, a formula, the library's own header name.
ADVERSARIAL_GUEST = TRICKY_GUEST + ['a,b', '"quoted"', '""', "k", "=HYPERLINK(1)", "line\r\nbreak", "\r", " ",
                                    "ａ", "Ⅻ", "\ufeffbom", "a" * 131_072, "0" * 32]
ADVERSARIAL_HOST = TRICKY_HOST + ['a,b', '"quoted"', "k", "=HYPERLINK(1)", "line\nbreak", "\r", "a", "ａ",
                                  "bom", "a" * 131_071, "0" * 32, "00000000000000000000000000000000 "]


@pytest.mark.parametrize("guest_minimum", [0, 3])
def test_rr22_matches_ids_exactly_as_text_like_a_python_set_intersection(guest_minimum):
    """With no minimum overlap the library gives the host its result; with one, the guest counts
    first and then sends the host the matched keys: the same rows either way."""
    transport = RecordingTransport()
    out = psi(ADVERSARIAL_GUEST, ADVERSARIAL_HOST, transport=transport, role_params={"guest": {"min_overlap": guest_minimum}})
    assert bool([k for k in transport.keys("guest", "host") if "matched" in k]) == (guest_minimum > 0)
    expected = set(ADVERSARIAL_GUEST) & set(ADVERSARIAL_HOST)
    assert set(out["guest"]["data"]["id"]) == expected
    assert out["guest"]["data"]["id"].tolist() == out["host"]["data"]["id"].tolist()  # aligned row for row
    for role, column, ids in (("guest", "g", ADVERSARIAL_GUEST), ("host", "h", ADVERSARIAL_HOST)):
        rows = out[role]["data"]
        assert all(ids[position] == value for position, value in zip(rows[column], rows["id"]))  # rows keep their features
        assert out[role]["metrics"]["intersection_size"] == len(expected) == 16
        assert out[role]["metrics"]["protocol"] == "rr22"
    assert {"a,b", '"quoted"', "k", "\r", "0" * 32, "\x00"} <= expected
    assert "a" * 131_072 not in expected and "line\r\nbreak" not in expected and "ａ" in expected


def test_rr22_gives_the_same_intersection_as_ecdh_on_larger_sets_in_a_shared_pseudorandom_order():
    guest_ids = [f"{i:07d}" for i in range(0, 6000)]
    host_ids = [f"{i:07d}" for i in range(4000, 12000)][::-1]
    fast = psi(guest_ids, host_ids)
    ecdh = run_local("psi", {}, {"guest": {"data": pd.DataFrame({"id": guest_ids})},
                                 "host": {"data": pd.DataFrame({"id": host_ids})}}, timeout=120)
    shared = fast["guest"]["data"]["id"].tolist()
    assert sorted(shared) == sorted(ecdh["guest"]["data"]["id"]) == guest_ids[4000:]
    assert shared == fast["host"]["data"]["id"].tolist()
    assert shared != sorted(shared) and shared != sorted(shared, reverse=True)


def test_guest_only_reveal_gives_the_host_the_size_and_no_rows_and_no_keys():
    transport = RecordingTransport()
    out = psi(TRICKY_GUEST, TRICKY_HOST, transport=transport, reveal="guest")
    assert set(out["guest"]["data"]["id"]) == set(TRICKY_GUEST) & set(TRICKY_HOST)
    assert len(out["host"]["data"]) == 0 and list(out["host"]["data"].columns) == ["id", "h"]
    assert out["host"]["metrics"]["intersection_size"] == 9 and out["host"]["metrics"]["rows_revealed"] is False
    assert not [key for key in transport.keys("guest", "host") if "matched" in key]


def test_identical_sets_empty_sets_and_disjoint_sets():
    same = [f"id-{i}" for i in range(50)]
    out = psi(same, same[::-1])
    assert sorted(out["host"]["data"]["id"]) == sorted(same)
    for guest_ids, host_ids in [([], []), ([], ["a"]), (["a", "b"], ["c"])]:
        out = psi(guest_ids, host_ids)
        assert len(out["guest"]["data"]) == len(out["host"]["data"]) == 0


def test_duplicate_ids_keep_every_row_when_asked():
    out = psi(["a", "b", "a", "c"], ["a", "a", "c", "d"], duplicate_ids="all")
    assert sorted(out["guest"]["data"]["id"]) == ["a", "a", "c"]
    assert sorted(out["host"]["data"]["id"]) == ["a", "a", "c"]


def test_below_the_guests_minimum_overlap_the_host_learns_nothing_and_both_fail():
    transport = RecordingTransport()
    with pytest.raises(PolicyViolation, match="min_overlap=10"):
        psi(["a", "b", "c"], ["a", "b", "x"], transport=transport, role_params={"guest": {"min_overlap": 10}})
    sent = transport.keys("guest", "host")
    assert "psi/verdict" in sent and not [key for key in sent if "matched" in key]


def test_a_host_asking_for_a_minimum_overlap_is_refused_before_its_library_starts(monkeypatch):
    started = []
    real_popen = rr22.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(threading.current_thread().name)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(rr22.subprocess, "Popen", popen)
    with pytest.raises(PolicyViolation, match="minimum overlap of 5"):
        psi(["a"], ["a"], role_params={"host": {"min_overlap": 5}})
    assert "psi-host" not in started


def test_a_size_only_psi_is_not_offered_under_rr22():
    with pytest.raises(InvalidParameters, match="for the size only, use protocol 'ecdh'"):
        psi(["a"], ["a"], reveal="cardinality")


def test_parties_running_different_protocols_refuse_to_run():
    with pytest.raises(ProtocolError):
        psi(["a"], ["a"], role_params={"host": {"protocol": "ecdh"}})


def test_a_missing_library_is_named_with_how_to_install_it(monkeypatch):
    monkeypatch.setenv(rr22.PSI_PYTHON_ENV, "/nonexistent/python")
    with pytest.raises(EngineError, match="make venv"):
        psi(["a"], ["a"])


def test_a_transport_without_byte_streams_says_so():
    class MessagesOnly(Transport):
        push = pull = abort = None

    with pytest.raises(FederationError, match="MessagesOnly carries messages only, not the byte streams 'psi/rr22'"):
        MessagesOnly().open_stream("s", "guest", "host", "psi/rr22")


def test_when_one_partys_library_dies_the_other_stops_at_once_and_no_file_is_left(monkeypatch, tmp_path):
    """The host's library process is killed mid-run: the guest reports it within seconds
    (not after the receive deadline), and neither side leaves keys or sockets behind."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    real_popen = rr22.subprocess.Popen

    def popen(args, **kwargs):
        child = real_popen(args, **kwargs)
        if threading.current_thread().name.endswith("host"):
            threading.Timer(0.3, child.kill).start()
        return child

    monkeypatch.setattr(rr22.subprocess, "Popen", popen)
    started = time.monotonic()
    with pytest.raises((EngineError, ProtocolError)) as failure:
        psi([f"g{i}" for i in range(200_000)], [f"g{i}" for i in range(100_000, 300_000)])
    assert time.monotonic() - started < 40
    assert "library" in str(failure.value)
    assert list(private.iterdir()) == []


def test_the_child_program_reports_a_wrong_library_version_in_one_line():
    import subprocess

    done = subprocess.run([rr22.psi_python(), str(rr22.RUNNER), "spu 0.0.1"], input=b"{}", capture_output=True,
                          timeout=60)
    assert done.returncode == 2
    assert b"FEDWEB-ERROR: RuntimeError: this site has spu 0.9.5, the protocol needs spu 0.0.1" in done.stderr
    assert sys.executable != rr22.psi_python()


def test_keys_are_located_exactly_even_when_two_share_their_first_64_bits():
    import numpy as np

    rng = np.random.default_rng(3)
    keys = rng.integers(0, 256, size=(1000, 16), dtype=np.uint8)
    keys[7, :8] = keys[500, :8]  # same first word, different second
    found = keys[[500, 7, 3]]
    stranger = rng.integers(0, 256, size=(1, 16), dtype=np.uint8)
    assert rr22._locate(keys, np.concatenate([found, stranger])).tolist() == [500, 7, 3, -1]
    unique = np.delete(keys, 7, axis=0)
    assert rr22._locate(unique, unique[[10, 0, 998]]).tolist() == [10, 0, 998]


def test_the_library_process_dies_with_the_job_process_even_on_sigkill(tmp_path):
    """A worker killed mid-PSI leaves no library process behind holding its socket."""
    import os
    import signal
    import subprocess

    import json

    pid_file = tmp_path / "child.pid"
    (tmp_path / "in.csv").write_text("k\n" + "ab" * 16 + "\n")
    # The library dials a peer that never answers: it would retry for a minute.
    config = {"rank": 0, "parties": [f"unix:{tmp_path}/self.sock", f"unix:{tmp_path}/nobody.sock"], "link_id": "t",
              "input": str(tmp_path / "in.csv"), "output": str(tmp_path / "out.csv"),
              "report": str(tmp_path / "report.json"), "receiver_rank": 0, "broadcast": False,
              "recv_timeout_ms": 60000}
    parent = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, time; "
        f"child = subprocess.Popen([{rr22.psi_python()!r}, {str(rr22.RUNNER)!r}, {rr22.LIBRARY!r}], "
        "stdin=subprocess.PIPE, start_new_session=True); "
        f"child.stdin.write({json.dumps(config).encode()!r}); child.stdin.close(); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)")])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pid_file.read_text())
    time.sleep(1.5)  # the library is loaded and dialling its peer
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if open(f"/proc/{child}/stat").read().split(")")[1].split()[0] == "Z":
            break  # dead, not yet reaped by init
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the library's process outlived the job's process")


def test_a_stalled_opening_handshake_starts_both_libraries_again(monkeypatch):
    """The host's first library dials nowhere, so neither finishes the handshake: both notice
    (or hear from the other), stop, and the second attempt, on fresh streams, succeeds."""
    from engine.federation import InMemoryTransport

    class FirstStreamGoesNowhere(InMemoryTransport):
        def __init__(self):
            super().__init__()
            self.opened = []

        def open_stream(self, session_id, src, dst, name):
            link = super().open_stream(session_id, src, dst, name)
            self.opened.append(name)
            if src == "host" and name == "psi/rr22":
                link.connect = "unix:/nonexistent/nobody.sock"
            return link

    monkeypatch.setattr(rr22, "STALL_SECONDS", 8.0)  # above brpc's ~3 s wait before it dials again
    transport = FirstStreamGoesNowhere()
    out = psi([f"g{i}" for i in range(300)], [f"g{i}" for i in range(100, 500)], transport=transport)
    assert set(out["guest"]["data"]["id"]) == {f"g{i}" for i in range(100, 300)}
    assert out["guest"]["data"]["id"].tolist() == out["host"]["data"]["id"].tolist()
    assert {"psi/rr22", "psi/retry-1/rr22"} <= set(transport.opened)
