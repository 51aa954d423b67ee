"""Hetero binning benchmark: WOE/IV for 100,000 rows x (10 guest + 20 host) features.

What is measured
================

* **ours**: the wall time of the whole ``hetero_binning`` component, both parties in
  this process (``run_local``: one thread each, in-memory transport, the Paillier
  helper process for the host's bucket sums), 2048-bit keys, 10 quantile bins per
  feature plus the missing bin, ``host_learns="iv"``. It includes key generation,
  encrypting the 100,000 labels, the transfer, the host's bucket sums for its 20
  features, packing, re-randomising and decrypting the histograms, and both
  parties' plaintext binning. The result is checked against the same binning
  computed centrally on the joined table (every IV must be equal to 1e-9).
* **reference**: the same protocol with ``phe`` (python-paillier 1.5 + gmpy2) done
  element by element: encrypt each label, add each row's ciphertext into its bin for
  every host feature, decrypt every bin sum. Encryption and additions are timed on a
  slice of rows and scaled linearly to 100,000; decryption is timed on all the
  ``20 x 11`` sums (its cost does not depend on the rows).
* The data are synthetic (labels from a logistic model of some features; 2 % missing
  values in some columns; 2 of the host's 20 columns are text categories).

``quick=True`` uses 5,000 rows and a 400-row phe slice to check the harness in seconds.
Run ``python -m benchmarks.bench_binning [--quick]`` to print the rows.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd
from phe import paillier as phe

from engine.components.binning import hetero_binning
from engine.federation import run_local
from engine.ml import binning as B

FULL = {"rows": 100_000, "slice": 1_000}
QUICK = {"rows": 5_000, "slice": 400}
GUEST_FEATURES, HOST_FEATURES, HOST_CATEGORICAL = 10, 20, 2
TARGET_SECONDS = 60.0


def make_tables(rows: int, seed: int = 2024) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"{i:09d}" for i in rng.choice(10**9, size=rows, replace=False)]
    guest_x = rng.normal(size=(rows, GUEST_FEATURES))
    host_x = rng.lognormal(sigma=0.7, size=(rows, HOST_FEATURES - HOST_CATEGORICAL))
    logit = -1.0 + guest_x[:, :3] @ [0.8, -0.5, 0.3] + 0.6 * np.log(host_x[:, :4]) @ [1.0, -0.7, 0.5, 0.2]
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    for x in (guest_x, host_x):
        x[rng.uniform(size=x.shape) < 0.02 * (np.arange(x.shape[1]) % 3 == 0)] = np.nan
    guest = pd.DataFrame(guest_x, columns=[f"g{j}" for j in range(GUEST_FEATURES)])
    guest.insert(0, "y", y)
    guest.insert(0, "id", ids)
    host = pd.DataFrame(host_x, columns=[f"x{j}" for j in range(host_x.shape[1])])
    for j in range(HOST_CATEGORICAL):
        host[f"c{j}"] = rng.choice(["a", "b", "c", "d", "e", "f"], size=rows)
    host.insert(0, "id", ids)
    return guest, host


def _central_ivs(guest: pd.DataFrame, host: pd.DataFrame) -> dict[str, float]:
    joined = guest.merge(host, on="id")
    columns = [c for c in joined.columns if c not in ("id", "y")]
    features, index, _ = B.fit_table(joined, columns)
    return {f["name"]: f["iv"] for f in B.feature_tables(features, index, joined["y"].to_numpy())}


def _phe_reference(y: np.ndarray, host_index: np.ndarray, width: int, slice_rows: int) -> dict[str, float]:
    public, private = phe.generate_paillier_keypair(n_length=2048)
    labels = y[:slice_rows].tolist()
    started = time.perf_counter()
    encrypted = [public.encrypt(int(v)) for v in labels]
    encrypt_s = time.perf_counter() - started
    started = time.perf_counter()
    sums = []
    zero = public.encrypt(0)
    for j in range(host_index.shape[1]):
        bins = [zero] * width
        column = host_index[:slice_rows, j].tolist()
        for i, b in enumerate(column):
            bins[b] = bins[b] + encrypted[i]
        sums.append(bins)
    add_s = time.perf_counter() - started
    started = time.perf_counter()
    decrypted = [[private.decrypt(c) for c in row] for row in sums]
    decrypt_s = time.perf_counter() - started
    expected = B.event_counts(host_index[:slice_rows], y[:slice_rows], width)
    if not np.array_equal(np.array(decrypted), expected):
        raise AssertionError("phe reference: wrong bin sums")
    scale = len(y) / slice_rows
    return {"encrypt": encrypt_s * scale, "add": add_s * scale, "decrypt": decrypt_s,
            "total": encrypt_s * scale + add_s * scale + decrypt_s}


def run(quick: bool = False) -> list[dict[str, Any]]:
    sizes = QUICK if quick else FULL
    rows = sizes["rows"]
    guest, host = make_tables(rows)
    params = {"label_column": "y", "key_bits": 2048, "host_learns": "iv"}
    started = time.perf_counter()
    out = run_local(hetero_binning, params, {"guest": {"data": guest}, "host": {"data": host}}, timeout=900)
    ours = time.perf_counter() - started

    central = _central_ivs(guest, host)
    names = {f["id"]: f["name"] for f in out["host"]["model"]["body"]["features"]}
    federated = dict(out["guest"]["metrics"]["iv"])
    federated.update({names[k]: v for k, v in out["guest"]["metrics"]["host_iv"].items()})
    if set(federated) != set(central) or any(abs(federated[k] - central[k]) > 1e-9 for k in central):
        raise AssertionError("hetero_binning benchmark: federated IVs differ from the central ones")

    host_columns = [c for c in host.columns if c != "id"]
    features, host_index, _ = B.fit_table(host, host_columns)
    width = max(f["spec"]["n_value_bins"] for f in features) + 1
    ref = _phe_reference(guest["y"].to_numpy(), host_index, width, sizes["slice"])
    return [{
        "benchmark": f"hetero_binning WOE/IV, {rows:,} rows x ({GUEST_FEATURES} guest + {HOST_FEATURES} host) "
                     "features, 10 bins + missing, 2048-bit, both parties",
        "ours": f"{ours:.1f} s (IVs equal the central computation)",
        "reference": (f"phe element by element on a {sizes['slice']:,}-row slice, scaled: {ref['total']:,.0f} s "
                      f"(encrypt {ref['encrypt']:,.0f} s, per-bin adds {ref['add']:,.1f} s, "
                      f"decrypt {ref['decrypt']:.1f} s)"),
        "ratio": round(ours / ref["total"], 4),
        "target": f"≤ {TARGET_SECONDS:g} s",
        "ok": bool(ours <= TARGET_SECONDS),
    }]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for row in run(quick=args.quick):
        print(row)


if __name__ == "__main__":
    main()
