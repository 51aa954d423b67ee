"""Run every role of a component in this process, one thread per role."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from engine.errors import FederationError, PeerFailed, UnknownRole
from engine.federation.context import Context
from engine.federation.memory import InMemoryTransport
from engine.federation.transport import Transport

__all__ = ["run_local"]


def run_local(
    component: Any,
    params: Mapping[str, Any] | BaseModel | None,
    inputs_by_role: Mapping[str, Mapping[str, Any]],
    *,
    role_params: Mapping[str, Mapping[str, Any]] | None = None,
    parties: Mapping[str, str] | None = None,
    transport: Transport | None = None,
    timeout: float | None = None,
    session_id: str | None = None,
    reporters: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run all roles of ``component`` locally and return ``{role: outputs}``.

    Args:
        component: a :class:`~engine.registry.Component` or a registered name.
        params: parameters shared by every role (a dict or the params model).
        inputs_by_role: ``{role: {input_name: value}}``; a role left out runs
            with no inputs. Every role the component declares is run.
        role_params: per-role overrides merged over ``params``, e.g.
            ``{"host": {"id_column": "phone"}}``.
        parties: ``{role: party_id}``; defaults to the role names.
        transport: defaults to a fresh :class:`InMemoryTransport`.
        timeout: default ``recv`` deadline in seconds for every role.
        session_id: defaults to a random UUID.
        reporters: ``{role: callable}`` receiving that role's ``ctx.report`` calls.

    Parameters are validated for every role before any thread starts, so a
    bad parameter raises :class:`~engine.errors.InvalidParameters` directly.
    If roles fail, the first *real* failure is re-raised (by time, preferring
    a party's own error over the :class:`~engine.errors.PeerFailed` it caused
    in the others), with its original traceback.
    """
    from engine.registry import Component, get_component

    comp = component if isinstance(component, Component) else get_component(component)
    for role in inputs_by_role:
        if role not in comp.roles:
            raise UnknownRole(comp.name, role, comp.roles)
    for role in role_params or {}:
        if role not in comp.roles:
            raise UnknownRole(comp.name, role, comp.roles)

    params_by_role = {}
    for role in comp.roles:
        merged = params
        overrides = (role_params or {}).get(role)
        if overrides:
            base = params.model_dump() if isinstance(params, BaseModel) else dict(params or {})
            merged = {**base, **overrides}
        params_by_role[role] = comp.validate_params(merged)

    party_of = {role: (parties or {}).get(role, role) for role in comp.roles}
    if len(set(party_of.values())) != len(party_of):
        raise FederationError(f"every role needs its own party id, got {party_of}")
    roster = {party: role for role, party in party_of.items()}
    transport = transport or InMemoryTransport()
    session_id = session_id or uuid.uuid4().hex

    outputs: dict[str, dict[str, Any]] = {}
    failures: list[tuple[float, str, BaseException]] = []
    lock = threading.Lock()

    def run_role(role: str) -> None:
        ctx = Context(
            session_id=session_id,
            party_id=party_of[role],
            role=role,
            parties=roster,
            transport=transport,
            namespace=comp.name,
            default_timeout=timeout,
            reporter=(reporters or {}).get(role),
        )
        try:
            result = comp.run(ctx, role, params_by_role[role], inputs_by_role.get(role, {}))
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            with lock:
                failures.append((time.monotonic(), role, exc))
            return
        with lock:
            outputs[role] = result

    threads = [
        threading.Thread(target=run_role, args=(role,), name=f"{comp.name}-{role}")
        for role in comp.roles
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    if failures:
        failures.sort(key=lambda item: item[0])
        own = [exc for _, _, exc in failures if not isinstance(exc, PeerFailed)]
        raise (own or [failures[0][2]])[0]
    return {role: outputs[role] for role in comp.roles}
