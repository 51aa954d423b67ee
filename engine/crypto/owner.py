"""Encryption by the key's owner: the same ciphertexts, several times cheaper.

Wherever a party encrypts many rows under its *own* key it knows ``p`` and
``q``: in hetero LR every per-row encryption (the host's ``u_h`` under its
key, the guest's ``v`` under its own), in SecureBoost the guest's packed
``(g, h)`` pair of every row, once per tree. :class:`OwnerEncryptor`
produces ciphertexts with exactly the distribution of
:meth:`engine.crypto.paillier.PublicKey.encrypt` (``g = n + 1`` and
Damgard-Jurik-Nielsen randomness ``hs**alpha`` with ``hs = (-y**2)**n mod n**2``
for a secret random ``y`` and ``alpha`` uniform over ``4 * kappa`` bits, 448
for 2048-bit keys), computed modulo ``p**2`` and ``q**2`` and recombined by
the Chinese remainder theorem:

* a multiplication modulo ``p**2`` (2048 bits) costs ~2.3 us against ~8 us
  modulo ``n**2`` (4096 bits) on the benchmark machine;
* ``hs**alpha`` comes from fixed-base tables with 11-bit windows (41 windows
  of 2048 powers per prime, 43 MB for a 2048-bit key, built in ~0.6 s),
  so one encryption is ~82 small multiplications (~0.2 ms) instead of 55
  large ones (~0.35 ms);
* the work runs in worker processes (:mod:`._owner_worker`, one per core,
  each with its own tables and its own ``y``), because threads would spend
  their time handing the GIL over around 2.3 us operations. Plain pipes,
  fixed-width integers, no pickle. If a worker cannot start or fails, the
  encryption is done in this process instead.

Nothing about the ciphertexts changes (a ciphertext is a number modulo
``n**2``; how it was computed is invisible), so the receiving party and every
operation on them are unaffected. ``FEDWEB_PAILLIER_HELPERS=0`` (the Paillier
layer's switch) keeps everything in-process.

An Okamoto-Uchiyama key (``he_scheme="ou"``) is handled the same way
(:func:`._owner_worker.encrypt_ou`): ``G**m H**r mod n`` with ``r`` uniform
over ``4 * kappa`` bits, exactly the public key's ciphertext, computed modulo
``p**2`` (1366 bits) and ``q`` (683 bits) from 11-bit window tables of ``H``,
``G`` and ``G**-1`` (41 + 2 x 9 windows of 2048 powers per modulus, about
40 MB for a 2048-bit key, for ``|m| < 2**96``) and recombined by CRT: ~49
multiplications of the two smaller sizes instead of ~67 modulo the 2048-bit
``n``, in worker processes instead of threads that share the interpreter.
Wider plaintexts, and jobs too small for the workers, use the public key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
from gmpy2 import mpz

from engine.crypto import _owner_worker as worker
from engine.crypto import paillier
from engine.crypto.he import EncryptedArray, HEPrivateKey

WINDOW_BITS = 11
MIN_ROWS_PER_WORKER = 64
OU_PLAINTEXT_BITS = 96
"""Widest ``|m|`` the Okamoto-Uchiyama workers tabulate ``G`` for: partial scores need 32 + 53 bits."""


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", worker.__file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )

    def send(self, op: int, payload: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(bytes([op]) + len(payload).to_bytes(8, "big"))
        stdin.write(payload)
        stdin.flush()

    def receive(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        header = stdout.read(8)
        if len(header) != 8:
            raise OSError("the encryption worker stopped")
        length = int.from_bytes(header, "big")
        data = stdout.read(length)
        if len(data) != length:
            raise OSError("the encryption worker stopped mid-answer")
        return data


def _stop(workers: list[_Worker]) -> None:
    for w in workers:
        try:
            if w.process.stdin:
                w.process.stdin.close()
            w.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            w.process.kill()
    workers.clear()


class OwnerEncryptor:
    """Encrypt under one's own key: by CRT, fixed-base tables and worker processes.

    Paillier: :func:`._owner_worker.encrypt`; Okamoto-Uchiyama:
    :func:`._owner_worker.encrypt_ou` (see the module docstring). Small jobs,
    and Okamoto-Uchiyama plaintexts wider than the workers' tables, are
    encrypted in this process (Paillier by the same CRT arithmetic, OU by the
    public key's own ``encrypt``).
    """

    def __init__(self, private: HEPrivateKey, *, workers: int | None = None):
        public = private.public_key
        self.public = public
        self.scheme = public.scheme_name
        if self.scheme not in ("paillier", "ou"):
            raise TypeError(f"no owner-side encryption for scheme {self.scheme!r}")
        self.exponent_bits = public.short_exponent_bits
        self._private = private
        self._state: worker.State | None = None
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop, self._workers)
        count = paillier.thread_count() if workers is None else workers
        if os.environ.get("FEDWEB_PAILLIER_HELPERS", "1") == "0":
            count = 0
        if count >= 1:
            self._start(count)

    def _setup_message(self) -> tuple[int, bytes]:
        private = self._private
        if self.scheme == "paillier":
            numbers, tail = (private.p, private.q), (self.exponent_bits, WINDOW_BITS)
            op = worker.OP_SETUP
        else:
            numbers = (private.p, private.q, self.public.g, self.public.h)
            tail, op = (self.exponent_bits, WINDOW_BITS, OU_PLAINTEXT_BITS), worker.OP_SETUP_OU
        fields = b"".join(len(data).to_bytes(4, "big") + data
                          for data in (mpz(v).to_bytes((int(v).bit_length() + 7) // 8, "big") for v in numbers))
        return op, fields + b"".join(v.to_bytes(4, "big") for v in tail)

    def _start(self, count: int) -> None:
        op, setup = self._setup_message()
        try:
            for _ in range(count):
                self._workers.append(_Worker())
            for w in self._workers:  # all build their tables at once
                w.send(op, setup)
            for w in self._workers:
                if w.receive() != b"ok":
                    raise OSError("unexpected answer from an encryption worker")
        except OSError:
            _stop(self._workers)

    @property
    def worker_count(self) -> int:
        return len(self._workers)

    def close(self) -> None:
        """Stop the worker processes (also done when the object is garbage-collected)."""
        self._finalizer()

    def _local_state(self) -> worker.State:
        if self._state is None:
            self._state = worker.build_state(int(self._private.p), int(self._private.q), self.exponent_bits,
                                             WINDOW_BITS)
        return self._state

    def encrypt_integers(self, integers: Sequence[int]) -> list[mpz]:
        """Ciphertexts of signed integers (already checked against the key's range)."""
        if self.scheme == "ou":
            values = [int(k) for k in integers]
            fits = all(abs(k) < 1 << OU_PLAINTEXT_BITS for k in values)
            with self._lock:
                if self._workers and fits and len(values) >= MIN_ROWS_PER_WORKER:
                    try:
                        return self._on_workers(values)
                    except OSError:
                        _stop(self._workers)
            return self.public.encrypt_int(values).ciphertexts
        n = self.public.n
        residues = [int(k) % n for k in integers]
        with self._lock:
            if self._workers and len(residues) >= MIN_ROWS_PER_WORKER:
                try:
                    return self._on_workers(residues)
                except OSError:
                    _stop(self._workers)  # fall through: encrypt here from now on
            return worker.encrypt(self._local_state(), residues)

    def _encoded(self, values: list[int]) -> tuple[int, bytes]:
        """The worker's plaintext format: ``m mod n`` (Paillier) or a sign byte and ``|m|`` (OU)."""
        if self.scheme == "paillier":
            width = self.public.key_bytes
            return width, b"".join(m.to_bytes(width, "big") for m in values)
        width = 1 + (OU_PLAINTEXT_BITS + 7) // 8
        return width, b"".join(bytes([m < 0]) + abs(m).to_bytes(width - 1, "big") for m in values)

    def _on_workers(self, values: list[int]) -> list[mpz]:
        size = self.public.ciphertext_bytes
        parts = min(len(self._workers), max(1, len(values) // MIN_ROWS_PER_WORKER))
        bounds = [len(values) * k // parts for k in range(parts + 1)]
        busy = self._workers[:parts]
        for w, lo, hi in zip(busy, bounds, bounds[1:]):
            width, body = self._encoded(values[lo:hi])
            w.send(worker.OP_ENCRYPT, (hi - lo).to_bytes(4, "big") + width.to_bytes(4, "big") + body)
        out: list[mpz] = []
        for w, lo, hi in zip(busy, bounds, bounds[1:]):
            data = w.receive()
            if len(data) != (hi - lo) * size:
                raise OSError("an encryption worker answered the wrong number of ciphertexts")
            out.extend(mpz.from_bytes(data[i * size : (i + 1) * size], "big") for i in range(hi - lo))
        return out

    def encrypt(self, values: Any, *, frac_bits: int = paillier.DEFAULT_FRAC_BITS) -> EncryptedArray:
        """Like ``public_key.encrypt(values, frac_bits=...)`` for a 1-D float array."""
        values = np.asarray(values, dtype=np.float64).ravel()
        return self.encrypt_int([int(k) for k in np.rint(np.ldexp(values, frac_bits)).tolist()], frac_bits=frac_bits)

    def encrypt_int(self, integers: Sequence[int], *, frac_bits: int = 0) -> EncryptedArray:
        """Like ``public_key.encrypt_int(integers, frac_bits=...)`` for a 1-D list of integers.

        A value beyond the key's ``max_int`` raises the scheme's
        :class:`~engine.crypto.paillier.PlaintextOverflowError` with the
        public key's own wording, before anything is encrypted.
        """
        integers = [int(k) for k in integers]
        bound = max((abs(k) for k in integers), default=0)
        if bound > self.public.max_int:
            raise paillier.PlaintextOverflowError(
                f"a value needs {bound.bit_length()} bits; this {self.public.bits}-bit key holds at most "
                f"{self.public.max_int.bit_length() - 1} bits")
        return EncryptedArray(self.public, self.encrypt_integers(integers), (len(integers),), frac_bits, bound)
