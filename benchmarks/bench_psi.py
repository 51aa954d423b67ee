"""PSI benchmark: 1,000,000 x 1,000,000 ids, two parties as separate processes.

What is measured
================

* Two datasets of 11-digit, phone-number-like ids (``1`` + ``3``-``9`` + 9
  random digits), 1M rows each, half of them shared, in random order, with
  one numeric feature column, written as CSV.
* **Ours**: two OS processes (``python -m benchmarks.bench_psi party ...``),
  guest and host, each reading its CSV with :func:`engine.io.read_table`,
  running the ``psi`` component (``reveal="both"``) over a
  :class:`~engine.federation.SocketTransport` (Unix sockets) and writing its
  aligned rows as CSV. The figure is the wall time from starting the two
  processes to both exiting (start-up, reading and writing included). It is
  measured for both ``arithmetic`` settings: ``x25519`` (the default: the
  ristretto255 group through the X25519 ladder, ~100 CPU-s per party) and
  ``ristretto255`` (libsodium's generic multiplication, ~140-150 CPU-s per
  party, so at best on the edge of the target; see docs/engine.md). Each row also
  gives the parties' CPU time and the CPU time other processes took
  meanwhile, since the machine may be shared. Peak memory is each process's ``ru_maxrss`` as
  reported by ``os.wait4``.
* **Reference**: ``openmined-psi`` (Google's P-256 ECDH-PSI in C++,
  single-threaded) on the same two files, client and server in one process,
  reading the same CSVs. If the package is not installed, the reference is
  our own protocol run single-threaded in one process on a 50k x 50k slice
  of the same data, scaled linearly to the full size, and the row says so.
* For each arithmetic, a row scaling the wall time to the speed of the machine
  on which the 150 s target was set (:mod:`benchmarks.calibration`: ristretto255
  multiplications per second on one core, taken before and after the run).
* A crypto throughput row: hash-then-multiply per second with all cores
  (engine's batch API, both arithmetics) against rbcl's per-call API on one core.

``quick=True`` uses 20k x 20k so the harness can be checked in seconds.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import calibration

FULL_SIZE = 1_000_000
QUICK_SIZE = 20_000
TARGET_SECONDS = 150.0
TARGET_MEMORY_MB = 2048.0
FALLBACK_SLICE = 50_000
REPO_ROOT = Path(__file__).resolve().parent.parent
# What a party process runs: the ECDH protocol under each arithmetic, or the OT-based RR22.
VARIANTS = {"x25519": {"arithmetic": "x25519"}, "ristretto255": {"arithmetic": "ristretto255"},
            "rr22": {"protocol": "rr22"}}
RR22_TARGET_SECONDS = 60.0


# --------------------------------------------------------------------- dataset


def make_datasets(directory: Path, size: int, seed: int = 20240607) -> tuple[Path, Path, int]:
    """Write guest.csv and host.csv of ``size`` ids each, half shared.

    Returns the two paths and the exact intersection size.
    """
    rng = np.random.default_rng(seed)
    total = size + size // 2
    # Draw with a margin, keep distinct values: 7e9 possible numbers, so few collide.
    draws = np.unique(rng.integers(0, 7 * 10**9, size=int(total * 1.05)))
    rng.shuffle(draws)
    numbers = draws[:total]
    ids = [f"1{3 + v // 10**9}{v % 10**9:09d}" for v in numbers.tolist()]
    guest_ids = ids[:size]
    host_ids = ids[size - size // 2 :]
    guest = pd.DataFrame({"id": guest_ids, "x1": rng.normal(size=size).round(4)})
    host = pd.DataFrame({"id": host_ids, "x2": rng.normal(size=len(host_ids)).round(4)})
    guest = guest.sample(frac=1.0, random_state=1).reset_index(drop=True)
    host = host.sample(frac=1.0, random_state=2).reset_index(drop=True)
    guest_path, host_path = directory / "guest.csv", directory / "host.csv"
    guest.to_csv(guest_path, index=False)
    host.to_csv(host_path, index=False)
    return guest_path, host_path, size // 2


# --------------------------------------------------------------- child process


def _party_main(role: str, data: str, out: str, own_address: str, peer_address: str, variant: str) -> None:
    """Entry point of one party's process (see ``python -m benchmarks.bench_psi party``)."""
    started = time.perf_counter()
    from engine.federation import Context, SocketTransport
    from engine.io import read_table, write_table
    from engine.registry import get_component

    authkey = bytes.fromhex(os.environ["FEDWEB_BENCH_AUTHKEY"])
    session = os.environ["FEDWEB_BENCH_SESSION"]
    peer_role = "host" if role == "guest" else "guest"
    timings: dict[str, float] = {}

    t = time.perf_counter()
    table = read_table(data, text_columns=["id"])
    timings["read"] = time.perf_counter() - t

    component = get_component("psi")
    with SocketTransport(role, own_address, {peer_role: peer_address}, authkey) as transport:
        ctx = Context(
            session_id=session,
            party_id=role,
            role=role,
            parties={"guest": "guest", "host": "host"},
            transport=transport,
            namespace="psi",
        )
        t = time.perf_counter()
        params = {"id_column": "id", "reveal": "both", **VARIANTS[variant]}
        outputs = component.run(ctx, role, params, {"data": table})
        timings["protocol"] = time.perf_counter() - t

    t = time.perf_counter()
    write_table(outputs["data"], Path(out) / f"{role}-aligned.csv")
    timings["write"] = time.perf_counter() - t
    timings["total_in_process"] = time.perf_counter() - started
    # The RR22 library runs in a child process: its peak is this process's children's.
    library_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if variant == "rr22" else 0.0
    result = {"metrics": outputs["metrics"], "timings": timings, "library_mb": library_mb}
    (Path(out) / f"{role}-result.json").write_text(json.dumps(result))


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have spent on this machine since boot (Linux /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_two_processes(guest_csv: Path, host_csv: Path, workdir: Path, variant: str = "x25519") -> dict[str, Any]:
    """Run the guest and host as two processes; return wall time, memory, CPU, results.

    ``other_cpu_seconds`` is the CPU time other processes on the machine took
    during the run: when it is large, the wall time says more about the
    neighbours than about the engine.
    """
    env = dict(
        os.environ,
        FEDWEB_BENCH_AUTHKEY=secrets.token_hex(32),
        FEDWEB_BENCH_SESSION=secrets.token_hex(8),
        PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    workdir = workdir / variant  # each run its own sockets and outputs
    workdir.mkdir(exist_ok=True)
    sockets = {role: str(workdir / f"{role}.sock") for role in ("guest", "host")}
    data = {"guest": guest_csv, "host": host_csv}
    busy_before = machine_busy_seconds()
    started = time.perf_counter()
    procs = {}
    for role, peer in (("guest", "host"), ("host", "guest")):
        procs[role] = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bench_psi", "party", role, str(data[role]),
             str(workdir), sockets[role], sockets[peer], variant],
            cwd=REPO_ROOT,
            env=env,
        )
    memory_mb, cpu_seconds, status = {}, {}, {}
    for role, proc in procs.items():
        # wait4 reports this child's own peak RSS (KiB on Linux) and CPU time.
        _, code, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(code)
        memory_mb[role] = usage.ru_maxrss / 1024
        cpu_seconds[role] = usage.ru_utime + usage.ru_stime
        status[role] = proc.returncode
    wall = time.perf_counter() - started
    other_cpu = machine_busy_seconds() - busy_before - sum(cpu_seconds.values())
    if any(status.values()):
        raise RuntimeError(f"a party failed: exit statuses {status}")
    results = {
        role: json.loads((workdir / f"{role}-result.json").read_text()) for role in procs
    }
    for role in procs:  # a party and its library's process are alive together: their peaks add up
        memory_mb[role] += results[role].get("library_mb", 0.0)
    # Same rows in the same order on both sides.
    guest_ids = pd.read_csv(workdir / "guest-aligned.csv", dtype={"id": str}, keep_default_na=False)["id"]
    host_ids = pd.read_csv(workdir / "host-aligned.csv", dtype={"id": str}, keep_default_na=False)["id"]
    aligned = guest_ids.equals(host_ids)
    return {"wall": wall, "memory_mb": memory_mb, "cpu_seconds": cpu_seconds, "other_cpu_seconds": other_cpu,
            "results": results, "aligned": aligned, "intersection": len(guest_ids)}


# ------------------------------------------------------------------- reference


REFERENCE_PYTHON_ENV = "FEDWEB_BENCH_REFERENCE_PYTHON"


def _reference_python() -> str | None:
    """The interpreter of the reference environment, if it has openmined-psi.

    ``make bench`` builds ``.venv-ref`` from benchmarks/requirements-reference.txt
    and names its interpreter in ``FEDWEB_BENCH_REFERENCE_PYTHON``; without it,
    this interpreter is used if openmined-psi happens to be importable here.
    """
    candidate = os.environ.get(REFERENCE_PYTHON_ENV) or sys.executable
    probe = subprocess.run([candidate, "-c", "import private_set_intersection.python"], capture_output=True)
    return candidate if probe.returncode == 0 else None


def run_openmined(guest_csv: Path, host_csv: Path, workdir: Path) -> dict[str, Any] | None:
    """Time openmined-psi on the same files, or return None if it is not installed."""
    python = _reference_python()
    if python is None:
        return None
    out = workdir / "openmined.json"
    started = time.perf_counter()
    script = REPO_ROOT / "benchmarks" / "openmined_reference.py"
    proc = subprocess.Popen([python, str(script), str(guest_csv), str(host_csv), str(out)], cwd=REPO_ROOT)
    _, code, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(code):
        raise RuntimeError("the openmined-psi reference process failed")
    result = json.loads(out.read_text())
    result["wall"] = time.perf_counter() - started
    result["memory_mb"] = usage.ru_maxrss / 1024
    return result


def run_single_core_slice(guest_csv: Path, host_csv: Path, size: int) -> dict[str, Any]:
    """Fallback reference: our protocol, one thread, one process, a slice scaled up."""
    from engine.federation import run_local
    from engine.io import read_table

    slice_size = min(size, FALLBACK_SLICE)
    guest = read_table(guest_csv, text_columns=["id"]).iloc[:slice_size]
    host = read_table(host_csv, text_columns=["id"]).iloc[:slice_size]
    previous = os.environ.get("FEDWEB_CRYPTO_THREADS")
    os.environ["FEDWEB_CRYPTO_THREADS"] = "1"
    try:
        started = time.perf_counter()
        run_local("psi", {"reveal": "both"}, {"guest": {"data": guest}, "host": {"data": host}})
        seconds = time.perf_counter() - started
    finally:
        if previous is None:
            del os.environ["FEDWEB_CRYPTO_THREADS"]
        else:
            os.environ["FEDWEB_CRYPTO_THREADS"] = previous
    return {"wall": seconds * size / slice_size, "slice": slice_size}


# ------------------------------------------------------------ crypto throughput


def crypto_throughput(count: int, repeats: int = 3) -> dict[str, float]:
    """Hash-then-multiply per second: both arithmetics (all threads) vs rbcl per call.

    The variants are interleaved and each keeps its best of ``repeats`` runs,
    so a burst of activity from a neighbour on a shared machine does not
    decide the comparison.
    """
    import hashlib

    import rbcl

    from engine.crypto import ecc

    messages = [f"{i:011d}".encode() for i in range(count)]
    x25519_key, scalar = ecc.random_x25519_scalar(), ecc.random_scalar()

    def rbcl_per_call() -> None:
        for m in messages:
            point = rbcl.crypto_core_ristretto255_from_hash(hashlib.sha512(b"bench" + m).digest())
            rbcl.crypto_scalarmult_ristretto255(scalar, point)

    variants = {
        "x25519": lambda: ecc.hash_to_montgomery_many(messages, b"bench", x25519_key),
        "ristretto255": lambda: ecc.hash_to_group_many(messages, b"bench", scalar=scalar),
        "rbcl": rbcl_per_call,
    }
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeats):
        for name, fn in variants.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    rates = {name: count / seconds for name, seconds in best.items()}
    rates["threads"] = ecc.default_threads()
    return rates


# ------------------------------------------------------------------------- run


def _wall_text(run: dict[str, Any]) -> str:
    protocol = max(r["timings"]["protocol"] for r in run["results"].values())
    cpu = run["cpu_seconds"]
    return (
        f"{run['wall']:.1f} s (protocol {protocol:.1f} s; CPU guest {cpu['guest']:.0f} s + host "
        f"{cpu['host']:.0f} s; other processes {run['other_cpu_seconds']:.0f} CPU-s; "
        f"intersection {run['intersection']:,}, aligned={run['aligned']})"
    )


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Run the PSI benchmarks; rows as the harness (benchmarks.run) expects."""
    size = QUICK_SIZE if quick else FULL_SIZE
    label = f"{size // 1000}k x {size // 1000}k" if size < 10**6 else f"{size // 10**6}M x {size // 10**6}M"
    target = f"<= {TARGET_SECONDS:.0f} s at 1M x 1M"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-psi-") as tmp:
        workdir = Path(tmp)
        guest_csv, host_csv, expected = make_datasets(workdir, size)
        # The machine's speed is taken just before and after each run; the faster figure
        # is used to scale, so a slow moment cannot flatter the scaled time.
        runs, speeds = {}, {}
        for arithmetic in ("x25519", "ristretto255"):
            before = calibration.ristretto255_rate()
            runs[arithmetic] = run_two_processes(guest_csv, host_csv, workdir, arithmetic)
            speeds[arithmetic] = max(before, calibration.ristretto255_rate())
        rr22 = run_two_processes(guest_csv, host_csv, workdir, "rr22")

        reference = run_openmined(guest_csv, host_csv, workdir)
        if reference is not None:
            ref_seconds = reference["wall"]
            ref_label = "openmined-psi 2.0.6 (P-256, C++, 1 core, both roles in 1 process)"
            ref_ok = reference["intersection"] == expected
            ref_memory = f"{reference['memory_mb']:.0f} MB (both roles, 1 process)"
        else:
            fallback = run_single_core_slice(guest_csv, host_csv, size)
            ref_seconds = fallback["wall"]
            ref_label = (
                f"openmined-psi not installed: our protocol on 1 core, 1 process, "
                f"{fallback['slice'] // 1000}k slice scaled x{size / fallback['slice']:g}"
            )
            ref_ok, ref_memory = True, "n/a"

    for arithmetic, result in runs.items():
        correct = result["intersection"] == expected and result["aligned"] and ref_ok
        default = " (default)" if arithmetic == "x25519" else ""
        rows.append({
            "benchmark": f"PSI {label} ids, 2 processes, arithmetic={arithmetic}{default}, wall",
            "ours": _wall_text(result),
            "reference": f"{ref_seconds:.1f} s [{ref_label}]",
            "ratio": result["wall"] / ref_seconds,
            "target": target,
            "ok": correct and (quick or result["wall"] <= TARGET_SECONDS),
        })
        if not quick:
            scaled = calibration.scaled_row(f"PSI {label}, arithmetic={arithmetic}, wall", result["wall"],
                                            TARGET_SECONDS, "ristretto255", speeds[arithmetic])
            rows.append({**scaled, "ok": correct and scaled["ok"]})
    rows.append({
        "benchmark": f"PSI {label} ids, 2 processes, protocol=rr22 (OT-based, SecretFlow's libpsi), wall",
        "ours": _wall_text(rr22),
        "reference": f"{ref_seconds:.1f} s [{ref_label}]",
        "ratio": rr22["wall"] / ref_seconds,
        "target": f"<= {RR22_TARGET_SECONDS:.0f} s at 1M x 1M",
        "ok": rr22["intersection"] == expected and rr22["aligned"] and (quick or rr22["wall"] <= RR22_TARGET_SECONDS),
    })
    for variant in ("x25519", "rr22"):
        memory = (runs["x25519"] if variant == "x25519" else rr22)["memory_mb"]
        peak = max(memory.values())
        what = "arithmetic=x25519" if variant == "x25519" else "protocol=rr22, party + library process"
        rows.append({
            "benchmark": f"PSI {label} peak memory per party (ru_maxrss, {what})",
            "ours": f"guest {memory['guest']:.0f} MB, host {memory['host']:.0f} MB",
            "reference": ref_memory,
            "ratio": (peak / reference["memory_mb"]) if reference is not None else float("nan"),
            "target": f"< {TARGET_MEMORY_MB:.0f} MB per party",
            "ok": peak < TARGET_MEMORY_MB,
        })
    rates = crypto_throughput(5_000 if quick else 20_000)
    threads = rates["threads"]
    rows.append({
        "benchmark": "hash-to-group + scalar mult per second (ids/s)",
        "ours": f"{rates['x25519']:,.0f}/s x25519, {rates['ristretto255']:,.0f}/s ristretto255 "
                f"(engine batch API, {threads} threads)",
        "reference": f"{rates['rbcl']:,.0f}/s (rbcl per-call API, ristretto255, 1 thread; best of 3 each)",
        "ratio": rates["ristretto255"] / rates["rbcl"],
        "target": f"ristretto255 batch >= {0.8 * threads:.1f}x rbcl (uses all {threads} cores)",
        "ok": rates["ristretto255"] / rates["rbcl"] >= 0.8 * threads,
    })
    return rows


def main(argv: list[str]) -> int:
    if argv[:1] == ["party"] and len(argv) == 7:
        _party_main(*argv[1:])
        return 0
    quick = "--quick" in argv
    for row in run(quick=quick):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
