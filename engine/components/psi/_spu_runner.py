"""Run one party of SecretFlow's RR22 PSI (the ``spu`` wheel's libpsi), as a child process.

Started by :mod:`engine.components.psi.rr22` with the interpreter of the PSI
library's own virtual environment (``.venv-psi``: spu's metadata pins a numpy and
jax the project does not use, so it is installed there with ``--no-deps``). Only the
standard library is imported here, and only spu's two compiled modules are loaded
(not its Python package, which would import jax).

Run as ``python _spu_runner.py "spu 0.9.5"``: it loads the library (checking its
version) at once, then reads one JSON object on standard input, which its parent writes
once the input file is ready::

    {"rank": 0 | 1, "parties": ["unix:...", "unix:..."], "link_id": "...",
     "input": "/private/in.csv", "output": "/private/out.csv", "report": "/private/report.json",
     "receiver_rank": 0, "broadcast": false, "recv_timeout_ms": 600000}

``parties[rank]`` is where this party listens, the other entry what it dials.
Writes the library's report as JSON to ``report`` and exits 0; exits 2 with a one-line
reason on standard error when anything fails (the library's own log lines go there too).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types
from importlib import metadata


def load_library(expected: str):
    """spu's compiled ``libspu`` (link) and ``libpsi`` (PSI) modules, without its package."""
    for entry in sys.path:
        folder = os.path.join(entry, "spu")
        if os.path.isdir(folder) and any(
            name.startswith("libpsi") for name in os.listdir(folder)
        ):
            break
    else:
        raise RuntimeError("the spu library is not installed in this interpreter's environment")
    installed = f"spu {metadata.version('spu')}"
    if installed != expected:
        raise RuntimeError(f"this site has {installed}, the protocol needs {expected}")
    package = types.ModuleType("spu")
    package.__path__ = [folder]
    sys.modules["spu"] = package
    return importlib.import_module("spu.libspu"), importlib.import_module("spu.libpsi")


def open_link(libspu, config: dict):
    """This party's end of the library's network link, connected to the other's."""
    link = libspu.link
    desc = link.Desc()
    desc.id = config["link_id"]
    for rank, address in enumerate(config["parties"]):
        desc.add_party(f"party-{rank}", address)
    desc.connect_retry_times = 600
    desc.connect_retry_interval_ms = 100
    desc.recv_timeout_ms = int(config["recv_timeout_ms"])
    # Each brpc call (a connection attempt, one piece of a message) gives up after this and is
    # retried: a call that hangs must not hold the run until the receive deadline.
    desc.http_timeout_ms = 20_000
    return link.create_brpc(desc, int(config["rank"]))


def execute(libpsi, lctx, config: dict) -> dict:
    psi_config = libpsi.PsiExecuteConfig(
        protocol_conf=libpsi.PsiProtocolConfig(
            protocol=libpsi.PsiProtocol.PROTOCOL_RR22, receiver_rank=int(config["receiver_rank"]),
            broadcast_result=bool(config["broadcast"]),
        ),
        input_params=libpsi.InputParams(path=config["input"], selected_keys=["k"], keys_unique=True),
        output_params=libpsi.OutputParams(path=config["output"], disable_alignment=True),
    )
    report = libpsi.psi_execute(psi_config, lctx)
    return {"original_count": report.original_count, "intersection_count": report.intersection_count}


def die_with_parent() -> None:
    """Linux: be killed when the job's process dies, even by SIGKILL (no orphan holding a socket).

    The parent starts us in a session of our own, so that it can kill our whole group; that
    also keeps us out of the reach of its own death, which this puts back."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        parent = os.getppid()
        if libc.prctl(1, signal.SIGKILL) == 0 and os.getppid() != parent:  # PR_SET_PDEATHSIG; already orphaned?
            os._exit(2)
    except (OSError, AttributeError):
        pass  # not Linux: the parent's deadline and kill still apply


def main() -> int:
    die_with_parent()
    try:
        libspu, libpsi = load_library(sys.argv[1])
        config = json.loads(sys.stdin.read())
        lctx = open_link(libspu, config)  # returns once both ends are connected
        try:
            report = execute(libpsi, lctx, config)
        finally:
            lctx.stop_link()
        with open(config["report"], "w", encoding="utf-8") as handle:
            json.dump(report, handle)
    except Exception as exc:  # noqa: BLE001 - the parent reads this one line
        print(f"FEDWEB-ERROR: {type(exc).__name__}: {str(exc)[:500]}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
