"""Big-integer kernels behind :mod:`engine.crypto.paillier`, and the threads that run them.

Everything here works on plain lists of ``gmpy2.mpz`` and knows nothing about
keys, encodings or shapes; :mod:`engine.crypto.paillier` owns those.

Threads first, processes for the bucket loops
---------------------------------------------
gmpy2 releases the GIL around a GMP call when the calling thread's context
has ``allow_release_gil=True`` (``powmod_base_list`` always releases it). A
4096-bit multiplication plus reduction costs ~6 us against a fraction of a
microsecond of bytecode around it, so two threads keep both cores busy with
no pickling and no copy of the ciphertexts: measured on this machine's two
cores, ~1.9x for encryption and decryption, ~1.7x for elementwise loops.
Only the *operators* (``*``, ``%``) honour the flag: module functions such
as ``gmpy2.mul``, ``gmpy2.invert`` or the built-in three-argument ``pow``
keep the GIL. Hence the hot loops below are written with operators,
exponentiations go through ``powmod_base_list`` and inversions through
Montgomery's batch trick.

The bucket loops of ``X.T @ [[d]]`` and bucket sums over large tables only
reach ~1.4x on threads (the GIL changes hands on every multiplication), so
:func:`parallel_column_sums` and :func:`parallel_bucket_tables` split large
jobs by rows with the helper processes of :mod:`engine.crypto._paillier_worker`
(~1.97x).

Every task runs inside :func:`run_tasks`, which sets that context for the
worker thread and runs nested calls inline, so a kernel can never deadlock
the pool by waiting for work queued behind itself.

Thread count: the ``FEDWEB_CRYPTO_THREADS`` environment variable if set (the
same knob as :mod:`engine.crypto.ecc`), else the CPUs this process may use;
:func:`set_thread_count` overrides both.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gmpy2
import numpy as np
from gmpy2 import mpz

from engine.crypto import _paillier_worker as worker

ONE = mpz(1)
# A job worth sending to helper processes: about this many row-passes (each
# roughly one 4096-bit multiplication, ~6 us), i.e. a quarter of a second.
HELPER_MIN_ROW_PASSES = 40_000

# ------------------------------------------------------------------ threads

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_configured_threads: int | None = None
_local = threading.local()


def thread_count() -> int:
    """How many threads the heavy Paillier loops use."""
    if _configured_threads is not None:
        return _configured_threads
    configured = os.environ.get("FEDWEB_CRYPTO_THREADS")
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise ValueError(f"FEDWEB_CRYPTO_THREADS must be a positive integer, got {configured!r}") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_thread_count(threads: int | None) -> None:
    """Use ``threads`` threads from now on (``None``: back to the default)."""
    global _configured_threads
    if threads is not None and threads < 1:
        raise ValueError("threads must be >= 1")
    _configured_threads = threads


def _get_pool(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != size:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="paillier")
            _pool_size = size
        return _pool


def _forget_pool_after_fork() -> None:
    # A forked child (e.g. a Celery prefork worker) inherits the pool object
    # but not its threads; start a fresh one on first use instead of hanging.
    global _pool, _pool_size
    _pool = None
    _pool_size = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _run(fn: Callable[..., Any], args: tuple) -> Any:
    outer = getattr(_local, "inside", False)
    _local.inside = True
    try:
        with gmpy2.context(allow_release_gil=True):
            return fn(*args)
    finally:
        _local.inside = outer


def run_inline(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on this thread, with any nested :func:`run_tasks` also kept on it."""
    return _run(fn, args)


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple]) -> list:
    """``[fn(*t) for t in tasks]``, on the thread pool when that can help."""
    threads = thread_count()
    if threads <= 1 or len(tasks) <= 1 or getattr(_local, "inside", False):
        return [_run(fn, args) for args in tasks]
    pool = _get_pool(threads)
    return list(pool.map(_run, [fn] * len(tasks), tasks))


def spans(count: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous near-equal ``(lo, hi)`` ranges covering ``range(count)``."""
    parts = max(1, min(parts, count)) if count else 1
    bounds = [count * k // parts for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(parts)]


def chunk_count(count: int, min_chunk: int = 32) -> int:
    """Chunks worth making for ``count`` independent items (one per thread)."""
    return max(1, min(thread_count(), count // min_chunk))


def map_chunks(fn: Callable[..., list], items: Sequence, *extra: Any, min_chunk: int = 32) -> list:
    """Apply ``fn(items[lo:hi], *extra)`` over chunks in parallel; concatenate the results."""
    ranges = spans(len(items), chunk_count(len(items), min_chunk))
    parts = run_tasks(fn, [(items[lo:hi], *extra) for lo, hi in ranges])
    return [x for part in parts for x in part]


# ------------------------------------------------------------- elementwise


def mulmod_pairs(a: Sequence[mpz], b: Sequence[mpz], modulus: mpz) -> list[mpz]:
    return [x * y % modulus for x, y in zip(a, b)]


def parallel_mulmod_pairs(a: Sequence[mpz], b: Sequence[mpz], modulus: mpz) -> list[mpz]:
    ranges = spans(len(a), chunk_count(len(a), 64))
    parts = run_tasks(mulmod_pairs, [(a[lo:hi], b[lo:hi], modulus) for lo, hi in ranges])
    return [x for part in parts for x in part]


def product(values: Sequence[mpz | None], modulus: mpz) -> mpz | None:
    """Product of the non-``None`` values, ``None`` if there are none."""
    acc = None
    for v in values:
        if v is not None:
            acc = v if acc is None else acc * v % modulus
    return acc


def batch_invert(values: Sequence[mpz], modulus: mpz) -> list[mpz]:
    """Modular inverses by Montgomery's trick: 3 multiplications each + 1 inversion.

    ``gmpy2.invert`` costs ~40 us for 4096 bits and keeps the GIL; three
    multiplications cost ~18 us and release it. Raises ZeroDivisionError if
    any value is not invertible (then neither is the running product).
    """
    if not values:
        return []
    prefix = []
    acc = ONE
    for v in values:
        acc = acc * v % modulus
        prefix.append(acc)
    inverse = gmpy2.invert(acc, modulus)
    out: list[mpz] = [ONE] * len(values)
    for i in range(len(values) - 1, 0, -1):
        out[i] = inverse * prefix[i - 1] % modulus
        inverse = inverse * values[i] % modulus
    out[0] = inverse
    return out


def powmod_scalar(values: Sequence[mpz], exponent: int, modulus: mpz) -> list[mpz]:
    if exponent == 1:
        return list(values)
    return gmpy2.powmod_base_list(list(values), exponent, modulus)


def powmod_each(values: Sequence[mpz], exponents: Sequence[int], modulus: mpz) -> list[mpz]:
    """``values[i] ** exponents[i]`` (non-negative exponents)."""
    out = []
    for v, e in zip(values, exponents):
        if e == 1:
            out.append(v)
        else:
            # A one-element list: powmod_base_list releases the GIL, pow() does not.
            out.append(gmpy2.powmod_base_list([v], e, modulus)[0])
    return out


# ------------------------------------------------------- encryption kernels


def fixed_base_row(base: mpz, modulus: mpz, width: int) -> list[mpz]:
    """``[base**0, base**1, ..., base**(2**width - 1)]`` modulo ``modulus``."""
    row = [ONE, base]
    for _ in range((1 << width) - 2):
        row.append(row[-1] * base % modulus)
    return row


def fixed_base_table(base: mpz, exponent_bytes: int, modulus: mpz) -> list[list[mpz]]:
    """Rows ``i``: powers ``(base ** 256**i) ** j`` for ``j < 256``, ``i < exponent_bytes``."""
    row_bases = [base]
    for _ in range(exponent_bytes - 1):
        b = row_bases[-1]
        for _ in range(8):
            b = b * b % modulus
        row_bases.append(b)
    return run_tasks(fixed_base_row, [(b, modulus, 8) for b in row_bases])


def table_product(table: Sequence[Sequence[mpz]], digits: bytes, modulus: mpz) -> mpz | None:
    """``prod_i table[i][digits[i]]``: a fixed-base power whose exponent has base-256 ``digits``.

    ``table`` comes from :func:`fixed_base_table`; zero digits are skipped and
    ``None`` means every digit was zero (the power is 1).
    """
    acc = None
    for row, digit in zip(table, digits):
        if digit:
            acc = row[digit] if acc is None else acc * row[digit] % modulus
    return acc


def encrypt_chunk(plaintexts: Sequence[mpz], n: mpz, nsquare: mpz, table: list[list[mpz]]) -> list[mpz]:
    """Encrypt plaintexts already reduced to ``[0, n)``.

    ``c = (1 + m*n) * hs**alpha mod n**2`` with ``alpha`` uniform over
    ``8 * len(table)`` bits. The random bytes *are* alpha's base-256
    digits, so ``hs**alpha`` is one table lookup and one multiplication per
    byte: no exponentiation at all.
    """
    rows = len(table)
    randomness = os.urandom(rows * len(plaintexts))
    out = []
    for i, m in enumerate(plaintexts):
        # All digits zero has probability 2**-(8*rows): the power is then 1.
        acc = table_product(table, randomness[i * rows : (i + 1) * rows], nsquare) or ONE
        out.append((m * n + 1) * acc % nsquare)
    return out


def full_randomizers(count: int, n: mpz, nsquare: mpz) -> list[mpz]:
    """``count`` values ``r**n mod n**2`` with ``r`` uniform in ``Z*_n``."""
    byte_length = (n.bit_length() + 7) // 8 + 16  # 128 extra bits: negligible bias mod n
    rs = []
    while len(rs) < count:
        r = mpz.from_bytes(os.urandom(byte_length), "big") % n
        if r > 1 and gmpy2.gcd(r, n) == 1:
            rs.append(r)
    return gmpy2.powmod_base_list(rs, n, nsquare)


# ------------------------------------------------------- decryption kernel


def crt_half(
    ciphertexts: Sequence[mpz], prime: mpz, prime_square: mpz, h: mpz, exponent: mpz | None = None
) -> list[mpz]:
    """Plaintexts modulo one prime factor: ``L_p(c**e mod p**2) * h_p mod p``, ``e = p - 1`` by default.

    Working modulo ``p**2`` (2048 bits) with the 1024-bit exponent ``p - 1``
    (half the exponent, a modulus a quarter as costly to multiply in) is
    about an eighth of the direct ``c**lambda mod n**2``; the two halves run
    on different threads. Okamoto-Uchiyama passes its short exponent ``t``
    (a prime factor of ``p - 1`` that kills the randomness).
    """
    reduced = [c % prime_square for c in ciphertexts]
    powered = gmpy2.powmod_base_list(reduced, prime - 1 if exponent is None else exponent, prime_square)
    return [(y - 1) // prime * h % prime for y in powered]


# ---------------------------------------------- grouped products (buckets)


def bucket_products(
    ciphertexts: Sequence[mpz], keys: Sequence[int], size: int, modulus: mpz, skip_zero: bool = False
) -> list[mpz | None]:
    """``out[k]`` = product of the ciphertexts whose key is ``k`` (``None`` if none).

    With ``skip_zero`` rows keyed 0 are not multiplied at all: in a bit-plane
    pass they belong to no plane, which makes sparse features cheap.
    """
    buckets: list[mpz | None] = [None] * size
    if skip_zero:
        for key, c in zip(keys, ciphertexts):
            if key:
                current = buckets[key]
                buckets[key] = c if current is None else current * c % modulus
        return buckets
    for key, c in zip(keys, ciphertexts):
        current = buckets[key]
        buckets[key] = c if current is None else current * c % modulus
    return buckets


def merge_bucket_lists(lists: Sequence[list[mpz | None]], modulus: mpz) -> list[mpz | None]:
    merged = list(lists[0])
    for other in lists[1:]:
        merged = [b if a is None else a if b is None else a * b % modulus for a, b in zip(merged, other)]
    return merged


def digit_marginals(
    buckets: list[mpz | None], radices: Sequence[int], modulus: mpz, skip_zero: bool
) -> list[list[mpz | None]]:
    """Per-digit products from a joint bucket table.

    ``buckets`` is indexed by the mixed-radix key ``sum(d_t * stride_t)``
    (digit 0 least significant). Returns, for every digit position ``t`` and
    value ``v``, the product of all buckets whose digit ``t`` equals ``v``.

    Peels off the most significant digit: its marginals are products of
    contiguous blocks, and multiplying the blocks together elementwise
    leaves a table over the remaining digits. Every level touches each
    bucket about twice, so the whole thing costs ~2 multiplications per
    non-empty bucket, however many digits share the table.
    """
    out: list[list[mpz | None]] = [[] for _ in radices]
    current = buckets
    for t in range(len(radices) - 1, -1, -1):
        radix = radices[t]
        stride = len(current) // radix
        blocks = [current[v * stride : (v + 1) * stride] for v in range(radix)]
        out[t] = [None if (skip_zero and v == 0) else product(blocks[v], modulus) for v in range(radix)]
        if t:
            current = merge_bucket_lists(blocks, modulus)
    return out


def plan_groups(n_rows: int, n_digits: int, radix: int, max_table_bits: int = 20) -> list[int]:
    """How many digits to bucket jointly per pass; returns the pass sizes.

    One pass costs ~``n_rows`` multiplications (every row joins one bucket)
    plus ~2 per filled bucket for the marginals, and a pass over ``k``
    digits has ``radix**k`` buckets. Pick the ``k`` minimising the total,
    then spread the digits evenly over the passes.
    """
    if n_digits == 0:
        return []
    best_k, best_cost = 1, math.inf
    for k in range(1, n_digits + 1):
        size = radix**k
        if k > 1 and size > (1 << max_table_bits):
            break
        filled = size * -math.expm1(-n_rows / size)
        cost = math.ceil(n_digits / k) * (n_rows + filled + 0.02 * size)
        if cost < best_cost:
            best_k, best_cost = k, cost
    passes = math.ceil(n_digits / best_k)
    return [n_digits * (p + 1) // passes - n_digits * p // passes for p in range(passes)]


def grouped_marginals(
    ciphertexts: Sequence[mpz],
    pass_radices: Sequence[Sequence[int]],
    key_fn: Callable[[int, int, int], list[int]],
    modulus: mpz,
    skip_zero: bool,
) -> list[list[list[mpz | None]]]:
    """Run :func:`bucket_products` + :func:`digit_marginals` for every pass, in parallel.

    ``key_fn(p, lo, hi)`` returns the bucket keys of rows ``lo:hi`` in pass
    ``p``. Passes are independent, so they are the unit of parallel work;
    when there are too few of them to feed every thread, each pass is also
    split into row ranges whose bucket tables are multiplied together.
    """
    n = len(ciphertexts)
    n_passes = len(pass_radices)
    if n_passes == 0:
        return []
    sizes = [math.prod(r) for r in pass_radices]
    threads = thread_count()
    chunks = 1 if n_passes >= 2 * threads else math.ceil(2 * threads / n_passes)
    # Each extra chunk costs one more table merge; keep chunks much larger than the table.
    chunks = max(1, min(chunks, n // max(4 * max(sizes), 1)))
    ranges = spans(n, chunks)

    def bucket_task(p: int, lo: int, hi: int) -> list[mpz | None]:
        return bucket_products(ciphertexts[lo:hi], key_fn(p, lo, hi), sizes[p], modulus, skip_zero)

    tables = run_tasks(bucket_task, [(p, lo, hi) for p in range(n_passes) for lo, hi in ranges])

    def finish(p: int) -> list[list[mpz | None]]:
        merged = merge_bucket_lists(tables[p * len(ranges) : (p + 1) * len(ranges)], modulus)
        return digit_marginals(merged, pass_radices[p], modulus, skip_zero)

    return run_tasks(finish, [(p,) for p in range(n_passes)])


def weighted_column_sums(
    ciphertexts: Sequence[mpz], weights: np.ndarray, with_total: bool, modulus: mpz
) -> tuple[list[mpz | None], mpz | None]:
    """``prod_i c_i ** W[i, j]`` for every column ``j`` of a non-negative uint64 matrix.

    Bit-plane bucketing: write every weight in binary; "plane" ``(j, s)`` is
    the set of rows whose weight in column ``j`` has bit ``s`` set. A pass
    takes ``k`` planes, files each row under the ``k``-bit pattern of its
    bits in those planes (one multiplication per row), and
    :func:`digit_marginals` turns the ``2**k`` bucket products into the
    ``k`` plane products. Each column is then ``prod_s P_{j,s} ** (2**s)``
    by Horner's rule (a few squarings per column). A row costs about one
    multiplication per ``k ~ log2(rows)`` planes instead of one
    exponentiation per matrix entry.

    With ``with_total`` an extra all-ones plane yields ``prod_i c_i`` too.
    Returns ``(columns, total)``; ``None`` marks an empty product.
    """
    n_rows, n_cols = weights.shape
    columns = np.asfortranarray(weights, dtype=np.uint64)
    widths = [int(columns[:, j].max()).bit_length() if n_rows else 0 for j in range(n_cols)]
    planes: list[tuple[int, int]] = [(j, s) for j in range(n_cols) for s in range(widths[j])]
    if with_total:
        planes.append((-1, 0))
    pass_sizes = plan_groups(n_rows, len(planes), 2)
    pass_planes: list[list[tuple[int, int]]] = []
    start = 0
    for size in pass_sizes:
        pass_planes.append(planes[start : start + size])
        start += size

    def keys(p: int, lo: int, hi: int) -> list[int]:
        out = np.zeros(hi - lo, dtype=np.uint64)
        for t, (j, s) in enumerate(pass_planes[p]):
            if j < 0:
                out |= np.uint64(1 << t)
            else:
                out |= ((columns[lo:hi, j] >> np.uint64(s)) & np.uint64(1)) << np.uint64(t)
        return out.tolist()

    marginals = grouped_marginals(ciphertexts, [[2] * len(pp) for pp in pass_planes], keys, modulus, True)
    plane_product: dict[tuple[int, int], mpz | None] = {}
    for pp, marg in zip(pass_planes, marginals):
        for t, plane in enumerate(pp):
            plane_product[plane] = marg[t][1]

    def horner(j: int) -> mpz | None:
        acc = None
        for s in range(widths[j] - 1, -1, -1):
            if acc is not None:
                acc = acc * acc % modulus
            bit_product = plane_product[(j, s)]
            if bit_product is not None:
                acc = bit_product if acc is None else acc * bit_product % modulus
        return acc

    return [horner(j) for j in range(n_cols)], plane_product.get((-1, 0))


def bucket_tables(ciphertexts: Sequence[mpz], ids: np.ndarray, n_buckets: int, modulus: mpz) -> list[mpz | None]:
    """Per feature ``j`` and bucket ``b``: product of ``c_i`` with ``ids[i, j] == b`` (feature-major).

    Features are bucketed jointly, ``k`` at a time, when the joint table of
    ``n_buckets**k`` entries stays small next to the row count (see
    :func:`plan_groups`); each feature's buckets are then read off the
    joint table by :func:`digit_marginals`.
    """
    n_rows, n_features = ids.shape
    pass_sizes = plan_groups(n_rows, n_features, n_buckets)
    pass_features: list[list[int]] = []
    start = 0
    for size in pass_sizes:
        pass_features.append(list(range(start, start + size)))
        start += size
    columns = np.asfortranarray(ids, dtype=np.int64)

    def keys(p: int, lo: int, hi: int) -> list[int]:
        out = np.zeros(hi - lo, dtype=np.int64)
        for t, j in enumerate(pass_features[p]):
            out += columns[lo:hi, j] * (n_buckets**t)
        return out.tolist()

    radices = [[n_buckets] * len(features) for features in pass_features]
    marginals = grouped_marginals(ciphertexts, radices, keys, modulus, False)
    out: list[mpz | None] = []
    for features, marg in zip(pass_features, marginals):
        for t in range(len(features)):
            out.extend(marg[t])
    return out


# ------------------------------------------------- helper-process wrappers


def _helpers_for(n_rows: int, n_passes: int) -> list:
    if n_rows * n_passes < HELPER_MIN_ROW_PASSES or thread_count() < 2 or getattr(_local, "inside", False):
        return []
    return worker.acquire(thread_count() - 1)


def _width(modulus: mpz) -> int:
    return (modulus.bit_length() + 7) // 8


def parallel_column_sums(
    ciphertexts: Sequence[mpz], weights: np.ndarray, with_total: bool, modulus: mpz
) -> tuple[list[mpz | None], mpz | None]:
    """:func:`weighted_column_sums`, with rows shared with helper processes when large."""
    n_rows, n_cols = weights.shape
    n_planes = sum(int(w).bit_length() for w in weights.max(axis=0).tolist()) if n_rows else 0
    helpers = _helpers_for(n_rows, len(plan_groups(n_rows, n_planes + with_total, 2)))
    if not helpers:
        return weighted_column_sums(ciphertexts, weights, with_total, modulus)
    width = _width(modulus)

    def request(lo: int, hi: int) -> tuple[int, list[bytes]]:
        return worker.OP_COLUMN_SUMS, [
            modulus.to_bytes(width, "little"),
            worker._u64(width),
            worker.ciphertexts_to_bytes(ciphertexts[lo:hi], width),
            np.ascontiguousarray(weights[lo:hi], dtype="<u8").tobytes(),
            worker._u64(n_cols),
            worker._u64(int(with_total)),
        ]

    def decode(body: bytes) -> tuple[list[mpz | None], mpz | None]:
        values = worker.optional_ciphertexts_from_bytes(memoryview(body), width)
        if len(values) != n_cols + 1:
            raise ValueError("helper returned the wrong number of column sums")
        return values[:n_cols], values[n_cols]

    def compute(lo: int, hi: int) -> tuple[list[mpz | None], mpz | None]:
        return weighted_column_sums(ciphertexts[lo:hi], weights[lo:hi], with_total, modulus)

    parts = worker.run_split(n_rows, helpers, request, decode, compute)
    columns = [product([part[0][j] for part in parts], modulus) for j in range(n_cols)]
    return columns, product([part[1] for part in parts], modulus)


def parallel_bucket_tables(
    ciphertexts: Sequence[mpz], ids: np.ndarray, n_buckets: int, modulus: mpz
) -> list[mpz | None]:
    """:func:`bucket_tables`, with rows shared with helper processes when large."""
    n_rows, n_features = ids.shape
    helpers = _helpers_for(n_rows, len(plan_groups(n_rows, n_features, n_buckets)))
    if not helpers:
        return bucket_tables(ciphertexts, ids, n_buckets, modulus)
    width = _width(modulus)
    size = n_features * n_buckets

    def request(lo: int, hi: int) -> tuple[int, list[bytes]]:
        return worker.OP_BUCKET_SUMS, [
            modulus.to_bytes(width, "little"),
            worker._u64(width),
            worker.ciphertexts_to_bytes(ciphertexts[lo:hi], width),
            np.ascontiguousarray(ids[lo:hi], dtype="<i8").tobytes(),
            worker._u64(n_features),
            worker._u64(n_buckets),
        ]

    def decode(body: bytes) -> list[mpz | None]:
        values = worker.optional_ciphertexts_from_bytes(memoryview(body), width)
        if len(values) != size:
            raise ValueError("helper returned the wrong number of bucket sums")
        return values

    def compute(lo: int, hi: int) -> list[mpz | None]:
        return bucket_tables(ciphertexts[lo:hi], ids[lo:hi], n_buckets, modulus)

    parts = worker.run_split(n_rows, helpers, request, decode, compute)
    return merge_bucket_lists(parts, modulus)


def warm_up_helpers() -> int:
    """Start the helper processes now rather than on the first large job."""
    return worker.warm_up(thread_count() - 1) if thread_count() > 1 else 0
