"""How long a job will take: the one place where run time is modelled.

Each component's time is its count of expensive operations (Paillier encryptions and
ciphertext additions, hash-to-curve multiplications for PSI, key generations) divided by
this site's measured speed of each, plus a small per-row cost for the plaintext steps and
the orchestration overhead per node. The operation counts follow the protocols (see
docs/hetero-lr.md, docs/secureboost.md, docs/engine.md); the constant factors were fitted
on the benchmark runs in docs/benchmarks.md (e.g. one LR epoch on 100,000 rows x 30
features: the model says 93 s, the run took 94-103 s).

**Measured speed.** ``site_speed()`` times each operation with the engine's own code on
this machine (about two seconds) and keeps the result in ``ARTIFACT_DIR/site-speed.json``
for a week, so the estimate follows the hardware the site actually runs on.

Rows are known before the run only as the tables' sizes: the overlap is at most the
smaller table, so the estimate is an upper bound on the rows, which is the side users
prefer to be wrong on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from dataclasses import dataclass

from django.conf import settings

log = logging.getLogger(__name__)

SPEED_FILE = "site-speed.json"
SPEED_MAX_AGE = 7 * 24 * 3600
REFERENCE_BITS = 2048

JOB_OVERHEAD = 1.5  # submit, accept and the last status, seconds (docs/benchmarks.md: 1.3 + 0.3)
NODE_OVERHEAD = 0.3  # per node: queueing and storing artifacts (docs/benchmarks.md: 0.26)
PLAIN_CELL = 2e-6  # seconds per row x column of pandas work (split, scaling, statistics, selection)
# Okamoto–Uchiyama does the same protocol on half-size numbers: one SecureBoost tree or LR epoch
# took 1/1.6 to 1/1.9 of Paillier's time at the same security (docs/benchmarks.md, "Choosing
# the encryption scheme"). The rates above are measured with Paillier, so an OU node is scaled by the middle.
OU_SPEEDUP = 1.75

HOP = 0.1  # one message from one site's task to the other's, through both proxies

_lock = threading.Lock()


@dataclass(frozen=True)
class Speed:
    """Operations per second on this machine at 2048 bits (key generation: seconds per key pair)."""

    encrypt: float
    add: float
    psi_ids: float
    keygen: float

    def encrypt_rate(self, bits: int) -> float:
        return self.encrypt * (REFERENCE_BITS / bits) ** 3  # modular exponentiation, cubic in the size

    def add_rate(self, bits: int) -> float:
        return self.add * (REFERENCE_BITS / bits) ** 2  # one multiplication modulo n²

    def keygen_seconds(self, bits: int) -> float:
        return self.keygen * (bits / REFERENCE_BITS) ** 4  # prime search: density x test cost


def measure() -> Speed:
    """Time each operation with the engine's code (about two seconds)."""
    import numpy as np

    from engine.crypto import ecc, paillier

    started = time.perf_counter()
    public, _private = paillier.generate_keypair(REFERENCE_BITS)
    keygen = time.perf_counter() - started
    values = np.linspace(-1.0, 1.0, 512)
    public.encrypt(values[:32])  # warm the randomness table and the worker threads
    started = time.perf_counter()
    encrypted = public.encrypt(values)
    encrypt = len(values) / (time.perf_counter() - started)
    total, started, rounds = encrypted, time.perf_counter(), 40
    for _ in range(rounds):
        total = total + encrypted
    add = rounds * len(values) / (time.perf_counter() - started)
    ids = [f"{i:010d}".encode() for i in range(4000)]
    scalar = ecc.random_x25519_scalar()
    ecc.hash_to_montgomery_many(ids[:100], b"fedweb-speed", scalar)
    started = time.perf_counter()
    points = ecc.hash_to_montgomery_many(ids, b"fedweb-speed", scalar)
    ecc.x25519_many(ecc.random_x25519_scalar(), points)
    # A PSI party hashes-and-multiplies its own ids and multiplies the partner's: two passes per id.
    psi_ids = 2 * len(ids) / (time.perf_counter() - started)
    return Speed(encrypt=encrypt, add=add, psi_ids=psi_ids, keygen=keygen)


def site_speed(*, refresh: bool = False) -> Speed:
    """This site's measured speed, measured again when older than a week (or when asked)."""
    path = settings.ARTIFACT_DIR / SPEED_FILE
    with _lock:
        if not refresh:
            try:
                stored = json.loads(path.read_text())
                if time.time() - stored.pop("measured_at", 0) < SPEED_MAX_AGE:
                    return Speed(**stored)
            except (OSError, ValueError, TypeError):
                pass
        speed = measure()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**speed.__dict__, "measured_at": time.time()}))
        os.replace(tmp, path)
        log.info("site speed measured: %s", speed)
        return speed


@dataclass(frozen=True)
class Shape:
    """What the estimate knows of the data before the run."""

    guest_rows: int
    host_rows: int
    guest_features: int
    host_features: int


def _common(spec_node: dict) -> dict:
    return (spec_node.get("params") or {}).get("common") or {}


def _param(node: dict, name: str, default):
    value = _common(node).get(name)
    return default if value is None else value


def _scheme_speedup(node: dict) -> float:
    return OU_SPEEDUP if _param(node, "he_scheme", "ou") == "ou" else 1.0


def node_seconds(node: dict, shape: Shape, speed: Speed, *, validation_fraction: float) -> float:
    """Seconds one node takes at its slower site, from its parameters and the data's shape.

    Fixed costs inside the protocols (a batch's masked gradients, a tree level's decryptions)
    are written as a number of encryptions' worth of work, so they follow the machine's speed;
    each message between the sites adds ``HOP`` seconds (two proxies, TLS, a MAC).
    """
    component = node["component"]
    overlap = min(shape.guest_rows, shape.host_rows)
    train = overlap * (1 - validation_fraction)
    validate = overlap - train
    features = shape.guest_features + shape.host_features
    bits = int(_param(node, "key_bits", REFERENCE_BITS))
    enc, add = speed.encrypt_rate(bits), speed.add_rate(bits)
    keygen = speed.keygen_seconds(bits)
    if component == "psi":
        # Each party multiplies every id of both tables once; reading, sorting and sending the points
        # add about 60% (docs/benchmarks.md: 100,000 x 100,000 ids in 11 s).
        return (shape.guest_rows + shape.host_rows) / speed.psi_ids * 1.6 + 4 * HOP
    if component == "hetero_binning":
        # The guest encrypts each label once; the host adds them up per bin of each feature.
        return keygen + 1900 / enc + train / enc + train * shape.host_features / add + 4 * HOP
    if component == "hetero_lr":
        epochs = int(_param(node, "max_epochs", 30))
        batch_size = int(_param(node, "batch_size", 10_000)) or max(1, int(train))
        batches = max(1, math.ceil(train / batch_size))
        # Per batch each party encrypts its share of the residuals and weights them by its features;
        # masking and decrypting the gradients costs about 2,800 encryptions' worth, and 7 messages.
        per_batch = 2800 / enc + 7 * HOP
        epoch = batches * per_batch + 2 * train / enc + train * features / (1.09 * add)
        if "validate" in (node.get("inputs") or {}):
            epoch += validate * features * PLAIN_CELL + 2 * HOP
        return (2 * keygen + 6000 / enc + epochs * epoch) / _scheme_speedup(node)
    if component == "hetero_secureboost":
        trees, depth = int(_param(node, "n_trees", 10)), int(_param(node, "max_depth", 3))
        subsample = float(_param(node, "subsample", 1.0))
        rows = train * subsample
        # Per tree: packed gradients encrypted once; per level the host's histograms (for half the
        # nodes: the sibling of each split is a subtraction), their decryption and 4 messages.
        level = 1500 / enc + 4 * HOP
        tree = depth * level + 1.2 * rows / enc + rows * shape.host_features * depth / 2 / (1.6 * add)
        return (keygen + 2000 / enc + trees * tree) / _scheme_speedup(node)
    if component in ("hetero_lr_predict", "hetero_secureboost_predict"):
        return validate * features * PLAIN_CELL * 5 + 2 * HOP
    rows = train if component != "split" else overlap
    return rows * features * PLAIN_CELL


@dataclass(frozen=True)
class Estimate:
    seconds: float
    per_node: dict[str, float]
    shape: Shape


def estimate(spec: dict, shape: Shape, speed: Speed | None = None) -> Estimate:
    """The whole job: its nodes one after another (they are a chain in every template), plus overheads."""
    speed = speed or site_speed()
    nodes = spec.get("nodes", [])
    split = next((n for n in nodes if n.get("component") == "split"), None)
    fraction = float(_param(split, "validation_fraction", 0.2)) if split else 0.0
    per_node = {n["id"]: NODE_OVERHEAD + node_seconds(n, shape, speed, validation_fraction=fraction) for n in nodes}
    return Estimate(seconds=JOB_OVERHEAD + sum(per_node.values()), per_node=per_node, shape=shape)


def shape_of(project, our_table: str, partner_table: str) -> Shape:
    """Rows and feature counts of the two tables, from our dataset and the partner's announcement."""
    from datasets.models import Dataset

    from .spec import our_role

    dataset = Dataset.objects.filter(pk=our_table).first()
    remote = project.remote_tables.filter(table_id=partner_table).first()
    ours = (dataset.row_count or 0, len(dataset.feature_columns)) if dataset else (0, 0)
    theirs = ((remote.row_count or 0), sum(1 for c in remote.columns if c.get("role") == "feature")) if remote else (0, 0)
    if our_role(project) == "guest":
        return Shape(ours[0], theirs[0], ours[1], theirs[1])
    return Shape(theirs[0], ours[0], theirs[1], ours[1])


def for_spec(spec: dict, project) -> Estimate | None:
    """The estimate of a spec whose PSI reads two of the project's tables (None if it reads none)."""
    from .pipelines import tables_of

    ours, theirs = tables_of(spec, project)
    if not ours or not theirs:
        return None
    return estimate(spec, shape_of(project, ours, theirs))


HISTORY_JOBS = 10


def history_factor() -> float:
    """How long this site's recent jobs took against their (uncorrected) estimates: the median
    of took / estimated over the last finished ones, 1 without any, kept within [0.5, 3].

    It captures what the operation counts cannot: the broker's latency, the network between
    the sites, a partner slower than this site. Jobs store the uncorrected estimate, so the
    factor never feeds on itself.
    """
    from .models import Job, JobStatus

    jobs = (Job.objects.filter(status=JobStatus.SUCCEEDED, estimate_seconds__gt=0, accepted_at__isnull=False,
                               finished_at__isnull=False)
            .order_by("-finished_at").values_list("estimate_seconds", "accepted_at", "finished_at")[:HISTORY_JOBS])
    ratios = sorted((finished - accepted).total_seconds() / estimated for estimated, accepted, finished in jobs)
    if not ratios:
        return 1.0
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    return min(3.0, max(0.5, median))
