"""FedWeb's federated engine: plain Python, no Django.

The engine runs federated algorithms ("components") between parties. It can
be used on its own, the way a data scientist tries an algorithm::

    import pandas as pd
    import engine

    guest = pd.read_csv("a.csv", dtype={"id": str}, keep_default_na=False)
    host = pd.read_csv("b.csv", dtype={"id": str}, keep_default_na=False)
    out = engine.run_local("psi", {"reveal": "both"},
                           {"guest": {"data": guest}, "host": {"data": host}})
    out["guest"]["metrics"]["intersection_size"]

or from the shell: ``python -m engine describe`` / ``python -m engine run psi ...``.

Layout (see docs/engine.md):

* :mod:`engine.registry` -- components, ports, parameters, ``describe()``.
* :mod:`engine.federation` -- contexts, the transport interface, backends, ``run_local``.
* :mod:`engine.wire` -- the binary format of everything sent between parties.
* :mod:`engine.crypto` -- group and encryption primitives.
* :mod:`engine.components` -- the built-in components (``psi``, ...).
* :mod:`engine.io` -- reading and writing local tables for the runner.
* :mod:`engine.errors` -- the exception hierarchy (everything is an ``EngineError``).
"""

from __future__ import annotations

from typing import Any

from engine.errors import EngineError

__all__ = ["EngineError", "Component", "Port", "run_local", "describe", "get_component"]

# Resolved on first access so that ``import engine.wire`` stays light and
# the registry/federation modules can import each other's parents freely.
_LAZY = {
    "Component": ("engine.registry", "Component"),
    "Port": ("engine.registry", "Port"),
    "describe": ("engine.registry", "describe"),
    "get_component": ("engine.registry", "get_component"),
    "run_local": ("engine.federation.local", "run_local"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
