"""engine.federation: contexts, namespacing, deadlines, aborts, backends, run_local."""

from __future__ import annotations

import secrets
import threading
import time

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from engine.errors import (
    DuplicateMessage,
    EngineError,
    FederationError,
    FederationTimeout,
    PeerFailed,
    WireError,
)
from engine.federation import Context, InMemoryTransport, SocketTransport, run_local
from engine.registry import Component, Port

PARTIES = {"g": "guest", "h": "host"}


def pair(transport=None, timeout=5.0, session="s1"):
    transport = transport or InMemoryTransport()
    guest = Context(session_id=session, party_id="g", role="guest", parties=PARTIES,
                    transport=transport, default_timeout=timeout)
    host = Context(session_id=session, party_id="h", role="host", parties=PARTIES,
                   transport=transport, default_timeout=timeout)
    return guest, host


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delay: float = 0.0


def two_party_component(guest_fn, host_fn, name="fed_test"):
    component = Component(
        name=name, version="1.0.0", description="test", roles=("guest", "host"), params=NoParams,
        inputs=[], outputs=[Port("metrics", "metrics", optional=True)],
    )
    component.role("guest")(guest_fn)
    component.role("host")(host_fn)
    return component


# ------------------------------------------------------------------ messaging


def test_a_value_sent_by_one_party_is_received_by_the_other_as_a_decoded_copy():
    guest, host = pair()
    arr = np.arange(6).reshape(2, 3)
    guest.peer.send("x", {"arr": arr, "n": 1})
    got = host.peer.recv("x")
    assert got["n"] == 1 and np.array_equal(got["arr"], arr) and got["arr"] is not arr


def test_the_peer_of_a_two_party_context_is_the_other_party_with_its_role():
    guest, host = pair()
    assert (guest.peer.party_id, guest.peer.role) == ("h", "host")
    assert (host.peer.party_id, host.peer.role) == ("g", "guest")
    assert [p.party_id for p in guest.peers_with_role("host")] == ["h"]


def test_ctx_peer_refuses_when_there_is_more_than_one_other_party():
    ctx = Context(session_id="s", party_id="g", role="guest",
                  parties={"g": "guest", "h1": "host", "h2": "host"}, transport=InMemoryTransport())
    with pytest.raises(FederationError, match="exactly one"):
        _ = ctx.peer
    assert [p.party_id for p in ctx.peers] == ["h1", "h2"]


def test_sub_contexts_and_ranges_namespace_messages_so_equal_names_never_collide():
    guest, host = pair()
    guest.peer.send("v", 0)
    guest.sub("stats").peer.send("v", 1)
    for i, ctx in guest.range("epoch", 3):
        ctx.peer.send("v", 10 + i)
    for _, item, ctx in guest.enumerate("batch", ["a", "b"]):
        ctx.peer.send("v", item)
    assert host.peer.recv("v") == 0
    assert host.sub("stats").peer.recv("v") == 1
    assert [ctx.peer.recv("v") for _, ctx in host.range("epoch", 3)] == [10, 11, 12]
    assert [ctx.peer.recv("v") for _, _, ctx in host.enumerate("batch", "ab")] == ["a", "b"]
    assert guest.sub("stats").range("epoch", 2).__next__()[1].key("v") == "stats/epoch.0/v"


@pytest.mark.parametrize("bad", ["", "a/b", "a.b", "a b", "é", "x" * 129])
def test_message_and_namespace_names_outside_the_allowed_characters_are_refused(bad):
    guest, _ = pair()
    with pytest.raises(EngineError, match="not valid"):
        guest.peer.send(bad, 1)
    with pytest.raises(EngineError, match="not valid"):
        guest.sub(bad)


def test_sending_the_same_name_twice_in_one_namespace_is_refused():
    guest, _ = pair()
    guest.peer.send("x", 1)
    with pytest.raises(DuplicateMessage, match="already sent"):
        guest.peer.send("x", 2)
    guest.sub("again").peer.send("x", 2)  # a sub-context is the way to repeat


def test_a_value_the_wire_cannot_carry_fails_at_send_naming_the_message():
    guest, _ = pair()
    with pytest.raises(WireError, match="'x'.*tuple"):
        guest.peer.send("x", (1, 2))


def test_a_malformed_payload_fails_at_recv_with_a_wire_error_naming_the_message():
    transport = InMemoryTransport()
    _, host = pair(transport)
    transport.push("s1", "g", "h", "x", b"not a wire message")
    with pytest.raises(WireError, match="'x' from party 'g'"):
        host.peer.recv("x")


# ------------------------------------------------------------------- deadlines


def test_a_recv_that_times_out_raises_federation_timeout_naming_the_message_and_peer():
    guest, _ = pair(timeout=30)
    started = time.monotonic()
    with pytest.raises(FederationTimeout) as info:
        guest.sub("round").peer.recv("answer", timeout=0.2)
    assert 0.15 < time.monotonic() - started < 5
    assert info.value.key == "round/answer" and info.value.src == "h"
    assert "'round/answer'" in str(info.value) and "'h'" in str(info.value)


def test_the_context_default_timeout_applies_when_recv_does_not_give_one():
    guest, _ = pair(timeout=0.2)
    started = time.monotonic()
    with pytest.raises(FederationTimeout, match="within 0.2 s"):
        guest.peer.recv("never")
    assert time.monotonic() - started < 5


def test_invalid_timeouts_are_refused():
    with pytest.raises(EngineError, match="default_timeout"):
        pair(timeout=0)
    guest, _ = pair()
    with pytest.raises(EngineError, match="timeout"):
        guest.peer.recv("x", timeout=float("inf"))


# ---------------------------------------------------------------------- aborts


def test_an_abort_makes_a_waiting_recv_raise_peer_failed_promptly_with_the_message():
    guest, host = pair(timeout=60)
    caught = {}

    def wait():
        started = time.monotonic()
        try:
            host.peer.recv("never")
        except PeerFailed as exc:
            caught["exc"], caught["seconds"] = exc, time.monotonic() - started

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.1)
    guest.abort("ValueError: bad input")
    waiter.join(10)
    assert caught["exc"].peer == "g" and caught["exc"].peer_message == "ValueError: bad input"
    assert caught["seconds"] < 2


def test_a_message_delivered_before_an_abort_can_still_be_received():
    guest, host = pair()
    guest.peer.send("last", 42)
    guest.abort("failed afterwards")
    assert host.peer.recv("last") == 42
    with pytest.raises(PeerFailed):
        host.peer.recv("next")


def test_a_party_is_not_failed_by_its_own_abort():
    guest, _ = pair()
    guest.abort("I failed")
    with pytest.raises(FederationTimeout):
        guest.peer.recv("x", timeout=0.05)


def test_aborts_are_scoped_to_their_session():
    transport = InMemoryTransport()
    guest1, _ = pair(transport, session="one")
    _, host2 = pair(transport, session="two")
    guest1.abort("gone")
    with pytest.raises(FederationTimeout):
        host2.peer.recv("x", timeout=0.05)


# ------------------------------------------------------------------- run_local


def test_run_local_runs_every_role_and_returns_outputs_by_role():
    def guest(ctx, params, inputs):
        ctx.peer.send("ping", "hello")
        return {"metrics": {"reply": ctx.peer.recv("pong")}}

    def host(ctx, params, inputs):
        ctx.peer.send("pong", "hi")
        return {"metrics": {"got": ctx.peer.recv("ping")}}

    out = run_local(two_party_component(guest, host), {}, {}, timeout=10)
    assert out == {"guest": {"metrics": {"reply": "hi"}}, "host": {"metrics": {"got": "hello"}}}


def test_a_failing_role_makes_the_other_fail_promptly_and_run_local_reraises_the_real_error():
    seen = {}

    def guest(ctx, params, inputs):
        time.sleep(0.2)
        raise ValueError("guest data is broken")

    def host(ctx, params, inputs):
        try:
            ctx.peer.recv("never-sent")  # would wait 60 s without the abort
        except PeerFailed as exc:
            seen["host"] = exc
            raise

    started = time.monotonic()
    with pytest.raises(ValueError, match="guest data is broken"):
        run_local(two_party_component(guest, host), {}, {}, timeout=60)
    assert time.monotonic() - started < 3
    assert seen["host"].peer == "guest"
    assert "ValueError: guest data is broken" in seen["host"].peer_message


def test_run_local_validates_parameters_before_starting_any_role():
    started = []
    component = two_party_component(lambda *a: started.append(1) or {}, lambda *a: started.append(1) or {})
    with pytest.raises(EngineError, match="delai"):
        run_local(component, {"delai": 1}, {})
    assert not started


def test_role_params_override_the_shared_params_for_one_role():
    def report(ctx, params, inputs):
        return {"metrics": {"delay": params.delay}}

    out = run_local(two_party_component(report, report), {"delay": 1.0}, {},
                    role_params={"host": {"delay": 2.0}})
    assert out["guest"]["metrics"]["delay"] == 1.0 and out["host"]["metrics"]["delay"] == 2.0


def test_run_local_uses_the_given_party_ids():
    def who(ctx, params, inputs):
        return {"metrics": {"me": ctx.party_id, "peer": ctx.peer.party_id}}

    out = run_local(two_party_component(who, who), {}, {}, parties={"guest": "org-9999", "host": "org-10000"})
    assert out["guest"]["metrics"] == {"me": "org-9999", "peer": "org-10000"}


# ------------------------------------------------------------ socket transport


def test_the_socket_transport_carries_messages_and_aborts_between_two_endpoints(tmp_path):
    key = secrets.token_bytes(32)
    addresses = {"g": str(tmp_path / "g.sock"), "h": str(tmp_path / "h.sock")}
    with SocketTransport("g", addresses["g"], {"h": addresses["h"]}, key) as tg, \
            SocketTransport("h", addresses["h"], {"g": addresses["g"]}, key) as th:
        guest, _ = pair(tg)
        _, host = pair(th)
        big = np.frombuffer(secrets.token_bytes(3 << 20), dtype=np.uint8)
        guest.peer.send("big", big)
        host.peer.send("small", "ok")
        assert np.array_equal(host.peer.recv("big"), big)
        assert guest.peer.recv("small") == "ok"
        host.abort("host failed")
        with pytest.raises(PeerFailed, match="host failed"):
            guest.peer.recv("never", timeout=10)


def test_components_report_their_progress_through_the_context_and_a_broken_listener_is_harmless():
    from engine.federation.local import run_local
    from engine.samples import breast_cancer_split

    guest, host = breast_cancer_split(shuffle_seed=None)
    seen = {"guest": [], "host": []}

    def listener(role):
        def report(*, fraction, stage, metrics):
            seen[role].append((fraction, stage, metrics))
        return report

    def broken(**_kwargs):
        raise RuntimeError("the listener is down")

    params = {"max_epochs": 2, "key_bits": 1024, "insecure_allow_small_keys": True}
    run_local("hetero_lr", params, {"guest": {"data": guest}, "host": {"data": host}},
              reporters={"guest": listener("guest"), "host": listener("host")})
    losses = [m["train_loss"] for _f, _s, m in seen["guest"] if "train_loss" in m]
    assert len(losses) == 2  # one figure per epoch
    assert any(stage == "epoch 2 of 2" for _f, stage, _m in seen["host"])
    assert seen["guest"][-1][0] == 1.0
    out = run_local("hetero_lr", params, {"guest": {"data": guest}, "host": {"data": host}}, reporters={"guest": broken})
    assert "model" in out["guest"]
