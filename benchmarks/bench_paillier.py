"""Paillier benchmark: engine.crypto.paillier against phe (python-paillier) + gmpy2.

What is measured (2048-bit keys, ours and phe in this one process)
===================================================================

Every figure is the best of a few runs (3 for the small benchmarks, 2 for
``X^T [[d]]``), ours and phe's alike, because the machine may be shared.
One-off costs a training loop pays once per key or per process are paid
before timing: our fixed-base randomness table (~0.1 s) and the start of the
helper process used by ``X^T [[d]]`` (~0.2 s). For encrypt, decrypt and add,
passes of ours and of the reference take turns and each keeps its best: this
virtual machine's speed drifts by up to 2x over tens of seconds, and taking
turns gives both sides the same moments.

* **encrypt**: float gradients encrypted per second. Ours uses every thread
  of :mod:`engine.crypto.paillier`; the reference is ``phe``'s
  ``PublicKey.encrypt`` on one core (phe has no parallelism).
* **decrypt**: ciphertexts decrypted per second, ours on all threads (CRT
  halves in parallel) against ``phe``'s CRT decryption on one core.
* **add**: ciphertext additions per second. The reference adds phe numbers
  made the usual way, ``encrypt(float)``, whose exponents differ from value
  to value, so phe rescales before multiplying (what summing gradients
  costs); the row also gives phe's best case (all values with one exponent:
  a bare multiplication) and our ratio to it. A pass lasts a fraction of a
  second, so 7 turns here instead of 3.
* **X^T [[d]]**: ``X`` is 100,000 x 20 signed 16-bit integers, ``d`` 100,000
  encrypted float gradients; the unit is matrix entries per second. Ours
  splits the rows between this process and a helper process. The
  reference computes ``sum_i X[i, j] * [[d_i]]`` with phe scalar
  multiplications and additions on a 100 x 20 slice, scaled linearly to the
  full matrix. Its ratio is against phe used the usual way (``d`` encrypted
  with ``encrypt(float)``, so additions rescale); the row also gives phe's
  best case (all ``d`` encrypted with one fixed exponent) and our ratio to it.

``quick=True`` shrinks every size so the harness can be checked in seconds;
its figures are not comparable to the targets.

Run ``python -m benchmarks.bench_paillier [--quick]`` to print the table.
"""

from __future__ import annotations

import argparse
import functools
import operator
import time
from typing import Any

import numpy as np
from phe import paillier as phe

from engine.crypto import paillier

FULL = {"encrypt": (4000, 200), "decrypt": (2000, 300), "add": (100_000, 20_000), "matvec": (100_000, 20, 100)}
QUICK = {"encrypt": (200, 20), "decrypt": (200, 20), "add": (2000, 500), "matvec": (2000, 20, 10)}
# The machine may be shared: every figure is the best of a few runs, ours and phe's alike.
FULL_REPEATS = {"small": 3, "add": 7, "matvec": 2}
QUICK_REPEATS = {"small": 1, "add": 1, "matvec": 1}
TARGETS = {"encrypt": 12.0, "decrypt": 1.8, "add": 2.0, "matvec": 30.0}


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _fmt(rate: float, unit: str = "/s") -> str:
    return f"{rate:,.0f} {unit}"


def _timed(fn: Any, repeats: int = 1) -> tuple[Any, float]:
    """``fn()``'s value and its best wall time over ``repeats`` runs."""
    best = float("inf")
    value = None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - started)
    return value, best


def _interleaved(passes: dict[str, Any], repeats: int) -> dict[str, float]:
    """Best wall time of each pass, the passes taking turns ``repeats`` times.

    This virtual machine's speed drifts by up to 2x over tens of seconds; when
    ours and the reference take turns, both see the same fast and slow moments
    and their ratio stays put, where timing one after the other would not.
    """
    best = dict.fromkeys(passes, float("inf"))
    for _ in range(repeats):
        for name, fn in passes.items():
            best[name] = min(best[name], _timed(fn)[1])
    return best


def _row(name: str, ours: str, reference: str, ratio: float, key: str) -> dict[str, Any]:
    target = TARGETS[key]
    return {
        "benchmark": name,
        "ours": ours,
        "reference": reference,
        "ratio": round(ratio, 2),
        "target": f"≥ {target:g}×",
        "ok": bool(ratio >= target),
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    sizes = QUICK if quick else FULL
    repeats = (QUICK_REPEATS if quick else FULL_REPEATS)["small"]
    rng = np.random.default_rng(2024)
    threads = paillier.thread_count()
    public, private = paillier.generate_keypair(2048)
    phe_public, phe_private = phe.generate_paillier_keypair(n_length=2048)
    # One-off costs a training loop pays once, kept out of the timings: the
    # key's fixed-base table (~0.1 s) and the helper processes (~0.2 s).
    public.encrypt(np.zeros(1))
    helpers = paillier.warm_up()
    rows = []

    # -- encryption
    ours_n, ref_n = sizes["encrypt"]
    values = rng.normal(size=ours_n)
    ref_values = values[:ref_n].tolist()
    encrypted = public.encrypt(values)
    phe_encrypted = [phe_public.encrypt(v) for v in ref_values]
    best = _interleaved({"ours": lambda: public.encrypt(values),
                         "ref": lambda: [phe_public.encrypt(v) for v in ref_values]}, repeats)
    ours, ref = _rate(ours_n, best["ours"]), _rate(ref_n, best["ref"])
    rows.append(
        _row(
            "encrypt, float64 -> ciphertext, 2048-bit",
            f"{_fmt(ours)} ({threads} threads)",
            f"phe 1.5 + gmpy2, 1 core: {_fmt(ref)}",
            ours / ref,
            "encrypt",
        )
    )

    # -- decryption
    ours_n, ref_n = sizes["decrypt"]
    to_decrypt = encrypted[:ours_n]
    if not np.allclose(private.decrypt(to_decrypt), values[:ours_n], rtol=0, atol=1e-15):
        raise AssertionError("decryption benchmark: wrong plaintexts")
    ref_cts = (phe_encrypted * (ref_n // len(phe_encrypted) + 1))[:ref_n]
    # Full-width plaintexts (packed histogram slots, up to n/3) need both CRT
    # halves; fixed-point numbers need only the p half (see PrivateKey). Both are
    # timed in the same turns so the table shows what each case costs.
    wide = public.encrypt_int([public.max_int - int(x) for x in rng.integers(1, 2**62, size=ours_n)])
    best = _interleaved({"ours": lambda: private.decrypt(to_decrypt),
                         "wide": lambda: private.decrypt_int(wide),
                         "ref": lambda: [phe_private.decrypt(c) for c in ref_cts]}, repeats)
    ours, wide_rate, ref = _rate(ours_n, best["ours"]), _rate(ours_n, best["wide"]), _rate(ref_n, best["ref"])
    rows.append(
        _row(
            "decrypt, ciphertext -> float64, 2048-bit",
            f"{_fmt(ours)} ({threads} threads)",
            f"phe 1.5 + gmpy2 (CRT), 1 core: {_fmt(ref)}",
            ours / ref,
            "decrypt",
        )
    )
    rows.append(
        {
            "benchmark": "decrypt, full-width plaintexts (packed slots, both CRT halves), 2048-bit",
            "ours": f"{_fmt(wide_rate)} ({threads} threads)",
            "reference": f"phe 1.5 + gmpy2 (CRT), 1 core: {_fmt(ref)}",
            "ratio": round(wide_rate / ref, 2),
            "target": "none: shown beside the row above",
            "ok": True,
        }
    )

    # -- addition
    ours_n, ref_n = sizes["add"]
    a = public.encrypt(rng.normal(size=ours_n))
    b = public.encrypt(rng.normal(size=ours_n))
    # The reference pairs: phe used the usual way (encrypt(float) picks each value's
    # exponent, so an addition first rescales one operand when the exponents
    # differ, as when gradients are summed) and phe's best case (one exponent for
    # every value: a bare multiplication modulo n^2).
    usual = [phe_public.encrypt(float(v)) for v in rng.normal(size=256)]
    same = [phe_public.encrypt(float(v), precision=2.0**-53) for v in rng.normal(size=64)]
    pairs = {
        name: ([base[i % len(base)] for i in range(ref_n)], [base[(7 * i + 3) % len(base)] for i in range(ref_n)])
        for name, base in (("usual", usual), ("same", same))
    }
    # A pass of additions lasts a fraction of a second, so more turns than elsewhere.
    add_repeats = (QUICK_REPEATS if quick else FULL_REPEATS)["add"]
    best = _interleaved({
        "ours": lambda: a + b,
        **{name: (lambda xs=xs, ys=ys: [x + y for x, y in zip(xs, ys)]) for name, (xs, ys) in pairs.items()},
    }, add_repeats)
    ours = _rate(ours_n, best["ours"])
    ref, ref_same = _rate(ref_n, best["usual"]), _rate(ref_n, best["same"])
    rows.append(
        _row(
            "add, ciphertext + ciphertext, 2048-bit",
            f"{_fmt(ours)} ({threads} threads)",
            f"phe 1.5 + gmpy2, 1 core, values from encrypt(float) (rescaling when exponents differ): "
            f"{_fmt(ref)}; phe best case, one exponent for all: {_fmt(ref_same)} (ours {ours / ref_same:.2f}x that)",
            ours / ref,
            "add",
        )
    )

    # -- X^T [[d]]
    n_rows, n_cols, slice_rows = sizes["matvec"]
    X = rng.integers(-(2**15), 2**15, size=(n_rows, n_cols), dtype=np.int64)
    d = rng.normal(scale=0.5, size=n_rows)
    enc_d = public.encrypt(d)
    matvec_repeats = (QUICK_REPEATS if quick else FULL_REPEATS)["matvec"]
    result, seconds = _timed(lambda: X.T @ enc_d, matvec_repeats)
    exact = X.T @ (np.rint(d * 2.0**53) / 2.0**53)
    if not np.allclose(private.decrypt(result), exact, rtol=1e-12, atol=1e-6):
        raise AssertionError("X^T [[d]] benchmark: wrong result")
    entries = n_rows * n_cols
    ours = _rate(entries, seconds)
    ours_seconds = seconds

    X_slice = X[:slice_rows].tolist()
    slice_entries = slice_rows * n_cols

    def phe_matvec(enc: list) -> list:
        return [
            functools.reduce(operator.add, (enc[i] * X_slice[i][j] for i in range(slice_rows))) for j in range(n_cols)
        ]

    usual = [phe_public.encrypt(float(v)) for v in d[:slice_rows]]
    _, seconds = _timed(lambda: phe_matvec(usual), matvec_repeats)
    ref = _rate(slice_entries, seconds)
    common = [phe_public.encrypt(float(v), precision=2.0**-53) for v in d[:slice_rows]]
    _, seconds = _timed(lambda: phe_matvec(common), matvec_repeats)
    best = _rate(slice_entries, seconds)
    rows.append(
        _row(
            f"X^T [[d]], {n_rows:,} x {n_cols} int16, matrix entries/s",
            f"{_fmt(ours, 'entries/s')} ({ours_seconds:.1f} s, this process + {helpers} helper process)",
            f"phe scalar mul + add on a {slice_rows} x {n_cols} slice, 1 core: {_fmt(ref, 'entries/s')} "
            f"(~{entries / ref:,.0f} s full); phe best case, one exponent for all d: {_fmt(best, 'entries/s')} "
            f"(~{entries / best:,.0f} s, ours {ours / best:.1f}x that)",
            ours / ref,
            "matvec",
        )
    )
    return rows


def _print_table(rows: list[dict[str, Any]]) -> None:
    keys = ("benchmark", "ours", "reference", "ratio", "target", "ok")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_paillier", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    _print_table(run(quick=args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
