"""SecretFlow's side of the side-by-side benchmark (``benchmarks/bench_secretflow.py``).

Runs in SecretFlow's own virtual environment (``.venv-sf``, made by ``make
bench-secretflow`` from ``benchmarks/secretflow/requirements.txt``), never in
the project's, so it imports nothing from the project::

    .venv-sf/bin/python benchmarks/secretflow/runner.py ROW --data DIR --out OUT.json [options]

ROW is one of

* ``sgb``: ``secretflow.ml.boost.sgb_v.Sgb``, one tree of depth 5, 32 bins
  (``sketch_eps = 1/32``), learning rate 0.3, lambda 1, on ``sb-guest.csv``
  (alice: id, y, 10 features) and ``sb-host.csv`` (bob: id, 20 features),
  already aligned; ``--scheme ou`` (SGB's documented default, OU-2048) or
  ``paillier`` (2048). ``first_tree_with_label_holder_feature`` is turned off:
  SecretFlow's default grows the first tree from the label holder's features
  alone, with no encryption at all, which is not the federated tree being
  compared. The AUC is taken on the training rows, as ours reports it.
* ``hesslr``: ``secretflow.ml.linear.HESSLogisticRegression``, one epoch,
  ``--batch`` rows a batch, on ``lr-guest.csv`` / ``lr-host.csv`` (2048-bit
  Paillier for both parties' HEUs, SEMI2K on FM128 for the SPU, as SecretFlow's
  own test configuration). ``--cap`` seconds bound it: past that the row is
  written as not finished and every process this runner started is ended.
* ``psi``: the SPU device's PSI v2 (``spu.psi``), ``--protocol rr22`` or
  ``ecdh`` (``CURVE_25519``), on ``psi-guest.csv`` / ``psi-host.csv`` (one id
  column), both parties getting the result, aligned CSVs written.

The simulation mode of SecretFlow 1.11 is used: ``sf.init(parties=["alice",
"bob"], address="local", num_cpus=16)``, one Ray instance on this machine, bound to
127.0.0.1. ``num_cpus`` is a logical count for Ray's scheduler (the machine has
2 cores): with the real count, SGB and HESS-LR wait forever for free slots.

The JSON written to ``--out`` has ``seconds`` (reading the files and the
algorithm, from the driver's side; SecretFlow's start-up, ``init_seconds``,
apart), ``finished``, the row's own figures and ``memory``: the peak resident
set (``VmHWM``) of every process this runner started, in MB, grouped as

* ``alice`` / ``bob``: the Ray actors created for that party (SPU runtime,
  HEU key keeper or evaluator, SGB's per-party actors);
* ``shared workers``: Ray's pooled task workers, where both parties' PYU
  functions run in simulation mode (they cannot be told apart);
* ``ray``: the driver and Ray's own daemons (GCS, raylet, object store).

Each group's figure is the sum of its processes' peaks (an upper bound of the
group's peak: the processes need not peak at the same moment), with the
largest single process beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

STARTED = time.perf_counter()
PARTIES = ("alice", "bob")  # alice: the guest (labels), bob: the host


# ------------------------------------------------------------------ processes


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` (Ray's daemons are children of the driver, workers of the raylet)."""
    children, out, stack = _children_map(), [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _title(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    return raw[0].decode(errors="replace")[:60] if raw and raw[0] else "?"


class MemoryWatch:
    """Peak RSS of this process and everything it started, sampled each second (processes may end early)."""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self.titles: dict[int, str] = {}
        self.party_of: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        for pid in [os.getpid(), *descendants(os.getpid())]:
            peak = _peak_mb(pid)
            if peak is None:
                continue
            self.peaks[pid] = max(peak, self.peaks.get(pid, 0.0))
            title = _title(pid)
            if title != "?" and (pid not in self.titles or title.startswith("ray::")):
                self.titles[pid] = title

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def report(self) -> dict:
        self.sample()
        groups: dict[str, list[tuple[int, float]]] = {}
        for pid, peak in self.peaks.items():
            title = self.titles.get(pid, "?")
            if pid in self.party_of:
                group = self.party_of[pid]
            elif pid == os.getpid() or not title.startswith("ray::"):
                group = "ray"  # the driver, gcs_server, raylet, log monitor, ...
            else:
                group = "shared workers"
            groups.setdefault(group, []).append((pid, peak))
        return {
            group: {
                "sum_mb": round(sum(p for _, p in members), 1),
                "largest_mb": round(max(p for _, p in members), 1),
                "processes": sorted(
                    ({"pid": pid, "title": self.titles.get(pid, "?"), "peak_mb": round(p, 1)} for pid, p in members),
                    key=lambda item: -item["peak_mb"]),
            }
            for group, members in groups.items()
        }


CREATED_ACTORS: list[tuple[object, str]] = []


def record_actor_parties() -> None:
    """Remember, for every Ray actor created from now on, the party whose resource it asked for."""
    import ray.actor

    original = ray.actor.ActorClass._remote

    def _remote(self, args=None, kwargs=None, **options):  # noqa: ANN001 - Ray's own signature
        handle = original(self, args, kwargs, **options)
        party = next((p for p in (options.get("resources") or {}) if p in PARTIES), None)
        if party is not None:
            CREATED_ACTORS.append((handle, party))
        return handle

    ray.actor.ActorClass._remote = _remote


def map_actor_pids(watch: MemoryWatch) -> None:
    import ray

    for handle, party in CREATED_ACTORS:
        try:
            pid = ray.get(handle.__ray_call__.remote(lambda self: os.getpid()), timeout=30)
        except Exception:  # noqa: BLE001 - a dead actor just stays unattributed
            continue
        watch.party_of[pid] = party


def end_everything_started_here() -> None:
    """SIGKILL every process below this one, by id (the Ray instance this runner started)."""
    for pid in reversed(descendants(os.getpid())):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# ------------------------------------------------------------------ rows


def versions() -> dict:
    import heu
    import ray
    import secretflow
    import spu

    return {"secretflow": secretflow.__version__, "spu": spu.__version__,
            "heu": getattr(heu, "__version__", "?"), "ray": ray.__version__}


def heu_config(sk_keeper: str, evaluator: str, schema: str, bits: int, **encoding) -> dict:
    config = {
        "sk_keeper": {"party": sk_keeper},
        "evaluators": [{"party": evaluator}],
        "mode": "PHEU",
        "he_parameters": {"schema": schema, "key_pair": {"generate": {"bit_size": bits}}},
    }
    if encoding:
        config["encoding"] = encoding
    return config


def read_vertical(data: Path, stem: str, devices: dict):
    from secretflow.data.vertical import read_csv

    paths = {devices[party]: str(data / f"{stem}-{role}.csv") for party, role in (("alice", "guest"), ("bob", "host"))}
    # The files are aligned already (same ids, same order): no PSI inside read_csv.
    return read_csv(paths, keys="id", drop_keys="id")


def row_sgb(args, sf, devices) -> dict:
    import spu
    from sklearn.metrics import roc_auc_score

    from secretflow.device.device.heu import HEU
    from secretflow.ml.boost.sgb_v import Sgb

    # FM64 without fraction bits, as SecretFlow's own sgb component makes its HEU.
    heu = HEU(heu_config("alice", "bob", args.scheme, args.key_bits), spu.spu_pb2.FM64)
    started = time.perf_counter()
    frame = read_vertical(args.data, "sb", devices)
    label = frame["y"]
    features = frame.drop(columns="y")
    params = {
        "num_boost_round": 1, "max_depth": 5, "learning_rate": 0.3, "reg_lambda": 1.0, "gamma": 0.0,
        "sketch_eps": 1 / 32, "objective": "logistic", "base_score": 0.0,
        "first_tree_with_label_holder_feature": False, "rowsample_by_tree": 1.0, "colsample_by_tree": 1.0,
        "seed": 1212,
    }
    model = Sgb(heu).train(params, features, label)
    seconds = time.perf_counter() - started
    scores = sf.reveal(model.predict(features))
    y = sf.reveal(devices["alice"](lambda t: t.to_numpy().ravel())(label.partitions[devices["alice"]].data))
    return {"seconds": seconds, "finished": True, "auc": float(roc_auc_score(y, scores)),
            "params": {**params, "he_scheme": args.scheme, "key_bits": args.key_bits}}


def row_hesslr(args, sf, devices) -> dict:
    import spu as spu_lib

    from secretflow.device.device.heu import HEU
    from secretflow.ml.linear import HESSLogisticRegression

    spu_dev = sf.SPU(sf.utils.testing.cluster_def(list(PARTIES)))
    field = spu_dev.cluster_def["runtime_config"]["field"]
    encoding = {"cleartext_type": "DT_I32", "encoder": "IntegerEncoder", "encoder_args": {"scale": 1}}
    heu_x = HEU(heu_config("bob", "alice", "paillier", args.key_bits, **encoding), field)  # features only
    heu_y = HEU(heu_config("alice", "bob", "paillier", args.key_bits, **encoding), field)  # the label's party
    started = time.perf_counter()
    frame = read_vertical(args.data, "lr", devices)
    label = frame["y"]
    features = frame.drop(columns="y")
    model = HESSLogisticRegression(spu_dev, heu_x, heu_y)
    model.fit(features, label, learning_rate=args.learning_rate, epochs=1, batch_size=args.batch)
    from secretflow.device import wait

    wait([model._w])  # fit returns before the last SPU step (Ray is asynchronous)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "finished": True,
            "params": {"epochs": 1, "batch_size": args.batch, "learning_rate": args.learning_rate,
                       "he_scheme": "paillier", "key_bits": args.key_bits, "spu": "SEMI2K FM128",
                       "field": spu_lib.spu_pb2.FieldType.Name(field)}}


def row_psi(args, sf, devices) -> dict:
    spu_dev = sf.SPU(sf.utils.testing.cluster_def(list(PARTIES)))
    protocol = {"rr22": "PROTOCOL_RR22", "ecdh": "PROTOCOL_ECDH"}[args.protocol]
    out = Path(args.out).parent
    started = time.perf_counter()
    reports = spu_dev.psi(
        keys={"alice": ["id"], "bob": ["id"]},
        input_path={"alice": str(args.data / "psi-guest.csv"), "bob": str(args.data / "psi-host.csv")},
        output_path={"alice": str(out / f"sf-{args.protocol}-guest.csv"),
                     "bob": str(out / f"sf-{args.protocol}-host.csv")},
        receiver="alice",
        table_keys_duplicated={"alice": False, "bob": False},
        broadcast_result=True,
        protocol=protocol,
        ecdh_curve="CURVE_25519",
    )
    seconds = time.perf_counter() - started
    counts = {r["party"]: r["intersection_count"] for r in reports}
    return {"seconds": seconds, "finished": True, "intersection": counts,
            "params": {"protocol": protocol, **({"curve": "CURVE_25519"} if args.protocol == "ecdh" else {})}}


ROWS = {"sgb": row_sgb, "hesslr": row_hesslr, "psi": row_psi}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=sorted(ROWS))
    parser.add_argument("--data", type=Path, required=True, help="folder of the generated CSV files")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--scheme", choices=("ou", "paillier"), default="ou", help="sgb: HEU scheme")
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--protocol", choices=("rr22", "ecdh"), default="rr22", help="psi: protocol")
    parser.add_argument("--batch", type=int, default=10_000, help="hesslr: rows per batch")
    parser.add_argument("--learning-rate", type=float, default=0.15, help="hesslr: learning rate")
    parser.add_argument("--cap", type=float, default=0.0, help="seconds after which the row stops (0: none)")
    parser.add_argument("--num-cpus", type=int, default=16, help="Ray's logical CPU count")
    args = parser.parse_args(argv)

    watch = MemoryWatch()
    result: dict = {"row": args.row, "finished": False}
    written = threading.Lock()

    def write(payload: dict) -> None:
        payload["memory"] = watch.report()
        payload["wall_in_process"] = time.perf_counter() - STARTED
        args.out.write_text(json.dumps(payload, indent=1))

    def on_cap() -> None:
        if not written.acquire(blocking=False):
            return
        try:
            map_actor_pids_quietly()
            write({**result, "finished": False, "cap_seconds": args.cap,
                   "error": f"not finished after {args.cap:.0f} s"})
        finally:
            end_everything_started_here()
            os._exit(0)

    def map_actor_pids_quietly() -> None:
        try:
            map_actor_pids(watch)
        except Exception:  # noqa: BLE001 - memory attribution is best effort when stopping
            pass

    t = time.perf_counter()
    import secretflow as sf

    record_actor_parties()
    result["versions"] = versions()
    sf.init(parties=list(PARTIES), address="local", num_cpus=args.num_cpus, log_to_driver=False,
            include_dashboard=False, _node_ip_address="127.0.0.1")
    devices = {party: sf.PYU(party) for party in PARTIES}
    result["init_seconds"] = time.perf_counter() - t
    if args.cap > 0:
        timer = threading.Timer(args.cap, on_cap)
        timer.daemon = True
        timer.start()
    try:
        result.update(ROWS[args.row](args, sf, devices))
    except Exception as exc:  # noqa: BLE001 - the driver records what failed and goes on
        import traceback

        traceback.print_exc()
        result.update({"finished": False, "error": f"{type(exc).__name__}: {exc}"[:2000]})
    if not written.acquire(blocking=False):
        time.sleep(3600)  # the cap fired meanwhile and is ending this process
    map_actor_pids_quietly()
    write(result)
    try:
        sf.shutdown()
    finally:
        end_everything_started_here()
    return 0


if __name__ == "__main__":
    sys.exit(main())
