"""Encryption by the key's owner: for Paillier the same ciphertexts, several times cheaper.

In the hetero LR protocol every per-row encryption is made by the owner of
the key (the host encrypts ``u_h`` under its own key, the guest ``v`` under
its own), and the owner knows ``p`` and ``q``. :class:`OwnerEncryptor`
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

An Okamoto-Uchiyama key (``he_scheme="ou"``) encrypts with its public key
(``G**m H**r mod n`` from fixed-base tables, on the encryption layer's
threads, no worker process). For one party alone that path measured faster
than the Paillier owner path above (4,900-5,600 against 2,900-3,700
encryptions/s on the shared 2-core machine); with both parties in one process
(``run_local``) its threads share the interpreter and it is slower
(docs/hetero-lr.md, "Choosing the encryption scheme").
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

from engine.components.hetero_lr import _owner_worker as worker
from engine.crypto import paillier
from engine.crypto.he import EncryptedArray, HEPrivateKey

WINDOW_BITS = 11
MIN_ROWS_PER_WORKER = 64


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
    """Encrypt under one's own key: for Paillier by CRT, fixed-base tables and worker processes.

    For any other scheme (Okamoto-Uchiyama) it is the public key's own
    ``encrypt``, with no worker (see the module docstring).
    """

    def __init__(self, private: HEPrivateKey, *, workers: int | None = None):
        public = private.public_key
        self.public = public
        self.crt = isinstance(private, paillier.PrivateKey)
        self._state: worker.State | None = None
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._finalizer = weakref.finalize(self, _stop, self._workers)
        if not self.crt:
            return
        self._p, self._q = int(private.p), int(private.q)
        self.exponent_bits = public.short_exponent_bits
        count = paillier.thread_count() if workers is None else workers
        if os.environ.get("FEDWEB_PAILLIER_HELPERS", "1") == "0":
            count = 0
        if count >= 1:
            self._start(count)

    def _start(self, count: int) -> None:
        setup = b"".join(
            len(data).to_bytes(4, "big") + data
            for data in (mpz(self._p).to_bytes((self._p.bit_length() + 7) // 8, "big"),
                         mpz(self._q).to_bytes((self._q.bit_length() + 7) // 8, "big"))
        ) + self.exponent_bits.to_bytes(4, "big") + WINDOW_BITS.to_bytes(4, "big")
        try:
            for _ in range(count):
                self._workers.append(_Worker())
            for w in self._workers:  # all build their tables at once
                w.send(worker.OP_SETUP, setup)
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
            self._state = worker.build_state(self._p, self._q, self.exponent_bits, WINDOW_BITS)
        return self._state

    def encrypt_integers(self, integers: Sequence[int]) -> list[mpz]:
        """Ciphertexts of signed integers (already checked against the key's range)."""
        if not self.crt:
            return self.public.encrypt_int(list(integers)).ciphertexts
        n = self.public.n
        residues = [int(k) % n for k in integers]
        with self._lock:
            if self._workers and len(residues) >= MIN_ROWS_PER_WORKER:
                try:
                    return self._on_workers(residues)
                except OSError:
                    _stop(self._workers)  # fall through: encrypt here from now on
            return worker.encrypt(self._local_state(), residues)

    def _on_workers(self, residues: list[int]) -> list[mpz]:
        width = self.public.key_bytes
        size = self.public.ciphertext_bytes
        parts = min(len(self._workers), max(1, len(residues) // MIN_ROWS_PER_WORKER))
        bounds = [len(residues) * k // parts for k in range(parts + 1)]
        busy = self._workers[:parts]
        for w, lo, hi in zip(busy, bounds, bounds[1:]):
            body = b"".join(m.to_bytes(width, "big") for m in residues[lo:hi])
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
        if not self.crt:
            return self.public.encrypt(values, frac_bits=frac_bits)
        integers = [int(k) for k in np.rint(np.ldexp(values, frac_bits)).tolist()]
        bound = max((abs(k) for k in integers), default=0)
        if bound > self.public.max_int:
            raise paillier.PlaintextOverflowError("a value is too large for this key")
        return EncryptedArray.from_ciphertexts(self.public, self.encrypt_integers(integers), (len(integers),),
                                               frac_bits=frac_bits, bound=bound)
