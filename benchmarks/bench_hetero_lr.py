"""Hetero LR benchmark: one training epoch, both parties in this process, against phe.

What is measured
================
``hetero_lr`` through :func:`engine.federation.run_local` (guest and host in
two threads of this process, in-memory transport; every message is still
encoded with :mod:`engine.wire`), 2048-bit Paillier keys (one pair per
party), 100,000 aligned rows, 10 guest + 20 host features (standard normal,
labels from a logistic model), an intercept, ``batch_size`` 10,000 (10
batches), ``max_epochs`` 1. The time is the whole ``run_local`` call: both
key generations, the owner-side encryption tables, the hello, and the epoch
(the loss share included). It is checked against the central reference
(:func:`engine.ml.logistic.fit` with the same settings): the second row
reports the largest weight difference.

The reference: the same protocol's Paillier operations done with ``phe``
(python-paillier 1.5 + gmpy2) element by element on one core, each kind
timed on a slice and multiplied by how many the epoch needs (``n`` rows,
``B`` batches, ``m_g = 10 + 1`` guest weights with the intercept, ``m_h = 20``
host weights):

* ``2n`` encryptions of floats (``[[u_h]]_H`` and ``[[v]]_G``);
* ``2n`` ciphertext + float additions (forming ``[[4d]]`` on each side);
* ``n (m_g + m_h + 1)`` scalar multiplications by a 33-bit integer plus
  additions (``X_g^T [[4d]]_H``, ``X_h^T [[4d]]_G`` and the loss column);
* ``B (m_g + m_h)`` mask encryptions, additions, re-randomisations
  (``obfuscate``) and decryptions, plus the loss share's one.

phe gets no credit for our tricks (no bucketing, no CRT encryption), which
is the point of the comparison; it also does no wire encoding, which we pay.

A third row scales the measured wall time to the speed of the machine on
which the 120 s target was set (:mod:`benchmarks.calibration`, by ``phe``
encryptions per second, taken before and after the run).

``quick=True`` shrinks everything (4,000 rows, batch 2,000) so the harness
can be checked in seconds; its figures are not comparable to the targets.

Run ``python -m benchmarks.bench_hetero_lr [--quick]`` to print the table.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import calibration

FULL = {"rows": 100_000, "guest": 10, "host": 20, "batch": 10_000, "slice": {"encrypt": 40, "entries": 400, "small": 10}}
QUICK = {"rows": 4_000, "guest": 10, "host": 20, "batch": 2_000, "slice": {"encrypt": 5, "entries": 40, "small": 2}}
TARGET_SECONDS = 120.0
TARGET_SPEEDUP = 10.0


def _tables(rows: int, guest_features: int, host_features: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(2024)
    X = rng.normal(size=(rows, guest_features + host_features))
    true_w = rng.normal(scale=0.3, size=X.shape[1])
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-(X @ true_w - 0.5)))).astype(np.int64)
    ids = [f"{i:09d}" for i in range(rows)]
    guest = pd.DataFrame(X[:, :guest_features], columns=[f"g{j}" for j in range(guest_features)])
    guest.insert(0, "y", y)
    guest.insert(0, "id", ids)
    host = pd.DataFrame(X[:, guest_features:], columns=[f"h{j}" for j in range(host_features)])
    host.insert(0, "id", ids)
    return guest, host, X


def _helper_cpu_seconds() -> float:
    """CPU used so far by the Paillier helper processes (they outlive the run, so getrusage misses them)."""
    from engine.crypto import _paillier_worker as worker

    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for helper in list(getattr(worker, "_helpers", [])):
        try:
            with open(f"/proc/{helper.process.pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, AttributeError, IndexError, ValueError):
            pass
    return total


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _per_op(fn: Any, count: int) -> float:
    """Seconds per operation: best of two timings of ``fn()``, which performs ``count`` operations."""
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best / count


def _reference(rows: int, batches: int, guest_weights: int, host_weights: int, sizes: dict) -> tuple[float, str]:
    """phe's time for the epoch's Paillier operations, from per-operation timings on slices."""
    from phe import paillier as phe

    rng = np.random.default_rng(7)
    public, private = phe.generate_paillier_keypair(n_length=2048)
    k = sizes["encrypt"]
    values = rng.normal(size=k).tolist()
    encrypt = _per_op(lambda: [public.encrypt(v) for v in values], k)
    encrypted = [public.encrypt(v) for v in values]
    add_plain = _per_op(lambda: [c + 0.37 for c in encrypted * 10], 10 * k)
    e = sizes["entries"]
    column = rng.integers(-(2**32), 2**32, size=e).tolist()
    cts = [encrypted[i % k] for i in range(e)]

    def weighted_sum() -> Any:
        total = cts[0] * column[0]
        for c, x in zip(cts[1:], column[1:]):
            total = total + c * x
        return total

    entry = _per_op(weighted_sum, e)
    s = sizes["small"]
    big = [int(v) for v in rng.integers(1, 2**62, size=s)]
    mask_encrypt = _per_op(lambda: [public.encrypt(v) for v in big], s)
    sums = [weighted_sum() for _ in range(1)] * s
    obfuscate = _per_op(lambda: [c.obfuscate() for c in sums], s)
    decrypt = _per_op(lambda: [private.decrypt(c) for c in sums], s)
    entries = rows * (guest_weights + host_weights + 1)
    small = batches * (guest_weights + host_weights) + 1
    seconds = (2 * rows * (encrypt + add_plain) + entries * entry
               + small * (mask_encrypt + add_plain + obfuscate + decrypt))
    detail = (f"phe 1.5 + gmpy2, 1 core, per op: encrypt {encrypt * 1e3:.1f} ms x {2 * rows:,}, "
              f"add {add_plain * 1e6:.0f} us x {2 * rows:,}, mul+add {entry * 1e6:.0f} us x {entries:,}, "
              f"mask+obfuscate+decrypt {(mask_encrypt + obfuscate + decrypt) * 1e3:.1f} ms x {small:,}")
    return seconds, detail


def run(quick: bool = False) -> list[dict[str, Any]]:
    from engine.components.hetero_lr import hetero_lr
    from engine.crypto import paillier
    from engine.federation import run_local
    from engine.ml import logistic

    sizes = QUICK if quick else FULL
    rows, batch = sizes["rows"], sizes["batch"]
    guest, host, X = _tables(rows, sizes["guest"], sizes["host"])
    params = {"batch_size": batch, "max_epochs": 1, "seed": 1, "learning_rate": 0.15, "l2": 0.001}
    paillier.warm_up()
    speed_before = 0.0 if quick else calibration.phe_encrypt_rate()
    helper_before = _helper_cpu_seconds()
    children_before = _children_cpu_seconds()
    cpu_before = time.process_time()
    started = time.perf_counter()
    out = run_local(hetero_lr, params, {"guest": {"data": guest}, "host": {"data": host}})
    wall = time.perf_counter() - started
    # This process, the Paillier helper (still running) and the encryption workers (stopped and waited for).
    cpu = (time.process_time() - cpu_before + _helper_cpu_seconds() - helper_before
           + _children_cpu_seconds() - children_before)
    load = os.getloadavg()[0]
    # The faster of the two figures scales, so a slow moment cannot flatter the scaled time.
    speed = 0.0 if quick else max(speed_before, calibration.phe_encrypt_rate())

    central = logistic.fit(X, guest["y"].to_numpy(), **params)
    federated = np.r_[out["guest"]["model"]["body"]["weights"], out["host"]["model"]["body"]["weights"]]
    difference = max(float(np.max(np.abs(federated - central.weights))),
                     abs(out["guest"]["model"]["body"]["intercept"] - central.intercept))

    batches = out["guest"]["metrics"]["batches_per_epoch"]
    reference, detail = _reference(rows, batches, sizes["guest"] + 1, sizes["host"], sizes["slice"])
    speedup = reference / wall
    epoch = f"hetero LR, one epoch, {rows:,} rows x ({sizes['guest']} guest + {sizes['host']} host) features"
    scaled = [] if quick else [calibration.scaled_row(f"{epoch}, wall incl. key generation", wall, TARGET_SECONDS,
                                                      "phe_encrypt", speed)]
    return [
        {
            "benchmark": f"{epoch}, 2048-bit keys, batch {batch:,}, both parties in 1 process (run_local)",
            "ours": (f"{wall:.1f} s wall incl. key generation (CPU {cpu:.0f} s incl. helper and worker processes; "
                     f"{paillier.thread_count()} threads; load average {load:.1f} at the end)"),
            "reference": f"{reference:,.0f} s estimated [{detail}]",
            "ratio": round(wall / reference, 4),
            "target": f"<= {TARGET_SECONDS:.0f} s and >= {TARGET_SPEEDUP:.0f}x faster than the reference",
            "ok": bool(wall <= TARGET_SECONDS and speedup >= TARGET_SPEEDUP),
        },
        *scaled,
        {
            "benchmark": "hetero LR, same epoch: federated weights vs central Taylor LR (engine.ml.logistic)",
            "ours": f"max |difference| {difference:.1e}",
            "reference": "central plaintext run, same batches, learning rate and L2",
            "ratio": difference,
            "target": "<= 1e-6",
            "ok": bool(difference <= 1e-6),
        },
    ]


def _print_table(rows: list[dict[str, Any]]) -> None:
    keys = ("benchmark", "ours", "reference", "ratio", "target", "ok")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_hetero_lr", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    _print_table(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
