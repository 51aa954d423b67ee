"""Hetero logistic regression between two parties, each with its own additively homomorphic key.

Both keys are of the scheme ``he_scheme`` names: Paillier or Okamoto-Uchiyama
(:mod:`engine.crypto.he`; the two give identical results, see "The scheme"
below).

Setting: the guest holds the labels ``y`` and features ``X_g``, the host
features ``X_h`` for the same rows (aligned by ``psi``: row ``i`` is the same
individual at both). The model is ``u = X_g w_g + b + X_h w_h``; the guest
owns ``w_g`` and ``b``, the host ``w_h``. There is no third party.

The algorithm is :mod:`engine.ml.logistic` (Taylor-approximated loss, the
same batches, learning-rate schedule, L2 and early stopping); this module
is how it is computed without either party seeing the other's data. Notation
for one batch ``B`` of ``b`` rows: ``u_g = X_g w_g + b`` and ``u_h = X_h w_h``
(each party's partial scores), ``ỹ = 2y - 1``, ``v = u_g - 2ỹ`` (the guest's
part), ``4d = u_h + v = u - 2ỹ`` (four times the fore gradient). ``[[x]]_G`` /
``[[x]]_H`` is ``x`` encrypted under the guest's / host's public key; only
the key's owner can decrypt it.

Message table
=============
Per-batch messages are named ``epoch<e>/batch.<k>/<name>``; per-epoch ones
``epoch<e>/<name>``. Ciphertexts travel as :class:`~engine.wire.BigIntArray`.

=====  =====  ==========================  ==============================================================
step   dir    message                     content
=====  =====  ==========================  ==============================================================
0      G->H   ``hello``                   protocol id, model id, row counts (training, validation), its
                                          number of weights, the guest's exported public key, a 32-byte
                                          nonce, the digests ``SHA-256(nonce, ids)`` of its training and
                                          validation ids, the shared settings, the epoch it resumes from
                                          (and whether training is already done)
0      H->G   ``hello``                   the same from the host (its public key; digests keyed by the
                                          guest's nonce). Both check rows, ids, settings (``he_scheme``
                                          among them) and key sizes.
1      G->H   ``order``                   the epoch's row order: a permutation of ``0..n-1`` (aligned
                                          row positions, not data); the batches are its consecutive
                                          near-equal chunks (:func:`engine.ml.logistic.batches`)
2      H->G   ``u_host``                  ``[[u_h]]_H`` for the batch (``b`` ciphertexts, host key)
2      G->H   ``v_guest``                 ``[[v]]_G`` for the batch (``b`` ciphertexts, guest key)
3      G->H   ``guest_gradient``          ``[[X_g^T 4d + R_g]]_H`` and, with an intercept, ``[[sum 4d +
                                          R_0]]_H``: the guest computes ``[[4d]]_H = [[u_h]]_H + v`` and
                                          ``X_g^T [[4d]]_H`` with :meth:`EncryptedArray.dot`, adds a
                                          fresh mask, re-randomises
3      H->G   ``host_gradient``           ``[[X_h^T 4d + R_h]]_G``: the host computes ``[[4d]]_G =
                                          [[v]]_G + u_h`` and ``X_h^T [[4d]]_G``, adds a fresh mask, re-
                                          randomises
4      H->G   ``guest_gradient_plain``    ``X_g^T 4d + R_g``: decrypted by the host, still masked
4      G->H   ``host_gradient_plain``     ``X_h^T 4d + R_h``: decrypted by the guest, still masked
5      H->G   ``loss``                    ``[[sum over the epoch of v u_h / 4 + u_h^2 / 8]]_G`` (one
                                          ciphertext, re-randomised): the host's share of the Taylor
                                          loss, from the same ``X_h^T [[4d]]_G`` product (one extra
                                          column: ``u_h`` on a fixed grid) and its own ``u_h^2``
6      H->G   ``validation_scores``       ``validation_reveal="scores"`` only: ``u_h`` on the validation
                                          rows (float64), after the epoch's updates
6      G->H   ``validation_v``            ``validation_reveal="loss_only"``: ``[[v]]_G`` on the
                                          validation rows
6      H->G   ``validation_loss``         ``validation_reveal="loss_only"``: the host's share of the
                                          validation Taylor loss, ``[[...]]_G`` as in step 5
7      G->H   ``control``                 ``{"stop": bool, "best": bool}``: whether training stops after
                                          this epoch, whether this epoch is the best so far
=====  =====  ==========================  ==============================================================

Each party removes its own mask (``R_g`` / ``R_h``) and updates its own
weights with :func:`engine.ml.logistic.gradient_step`. Both parties' step 2
messages are sent before either is received, and both step 3 products are
computed at the same time.

Why two keys, and why this direction
-------------------------------------
Every gradient is computed by the party that holds the features, on
ciphertexts under the *other* party's key, so it never holds a ciphertext it
can decrypt that carries the other's per-row values: the guest computes on
``[[u_h]]_H`` (host key), the host on ``[[v]]_G`` (guest key). The only
things a party decrypts for the other are gradient sums plus a mask drawn by
the other, and the only things it decrypts for itself are its own loss.

Masks: statistical hiding
-------------------------
A masked value is ``x + R`` with ``R`` uniform in ``[0, 2**(beta + 128))``,
where ``2**beta`` is a *public* bound on ``|x|`` (computed from
:data:`~engine.ml.logistic.VALUE_BITS`, the fixed-point scale, ``feature_bits``
and the batch size, never from the data, so the mask's size tells nothing).
The distribution of ``x + R`` is within statistical distance ``2**-128`` of
that of ``x' + R`` for any other admissible ``x'``. ``beta + 128`` stays far
below the plaintext range (a 2048-bit Paillier key holds 2046 bits, an
Okamoto-Uchiyama key 681; a gradient needs ``beta`` ~ 86 + feature_bits +
log2(batch), ~135 by default). Before a result goes to the key owner it is
re-randomised with full-length randomness (:meth:`EncryptedArray.rerandomize`:
Paillier's ``r**n``, Okamoto-Uchiyama's ``H**r``), so its randomness carries
nothing about how it was computed (circuit privacy).

What a party decrypts for the other (the masked gradients, steps 3-4) is
accepted only within its public bound ``2**beta + 2**(beta + 128)``, and the
loss share only within ``2**loss_bits``; anything else is refused. With
Okamoto-Uchiyama this is what keeps the key safe: the raw decryption of a
crafted ``G**M`` with ``M > p`` is ``M mod p``, which gives away ``p``
(docs/paillier.md), and a crafted value lands inside the bound with
probability about ``2**(beta + 130 - 682)``.

Every per-row encryption (steps 2 and 6) is made by the key's owner, which
knows the factorisation: :class:`~engine.crypto.owner.OwnerEncryptor`
computes the same ciphertexts by CRT (Paillier modulo ``p**2`` and ``q**2``,
Okamoto-Uchiyama modulo ``p**2`` and ``q``) in worker processes, less work
than the public-key path, identically distributed.

The scheme
----------
Nothing in the message table depends on it: keys travel as their scheme's
``PublicKey.to_bytes()``, ciphertexts as :class:`~engine.wire.BigIntArray`,
and every bound above is far inside both plaintext spaces (at the largest
``feature_bits`` and batch, masked gradients need ~290 bits, the products
``X^T [[4d]]`` ~175 and the loss share ~170). Both
parties compare ``he_scheme`` in the hello, so each imports the other's key
with the scheme it expects.

Partial scores must stay below ``2**32`` in magnitude (else the run stops
with :class:`~engine.ml.logistic.TrainingDiverged`): that public bound sizes
every overflow check.

What each party learns
======================
Semi-honest (honest-but-curious) parties; the transport must be
authenticated (Paillier is malleable).

* **Guest** learns: its own gradients ``X_g^T d / b`` per batch (they
  involve ``u_h``, as in every hetero LR); the training loss per epoch, i.e.
  the host's share ``sum(v u_h / 4 + u_h^2 / 8)`` summed over the epoch;
  with ``validation_reveal="scores"`` the host's partial scores ``u_h`` on the
  validation rows after every epoch (needed for AUC/KS: from the
  probabilities and its own ``u_g`` the guest could compute them anyway;
  note that the scores of successive epochs are ``X_h,val w_h(t)`` for
  changing weights, so after as many epochs as the host has features they
  span the column space of the host's validation features: prefer
  ``"loss_only"`` for long runs on sensitive features), with ``"loss_only"``
  only the validation loss per epoch; the host's number
  of features and public key. It does **not** learn ``X_h``, ``w_h``, the
  host's gradients, or ``u_h`` on training rows.
* **Host** learns: its own gradients ``X_h^T d / b`` per batch; the row
  order of each epoch (positions in the aligned table, drawn at random); per
  epoch, whether training stops and whether the epoch is the best so far
  (one bit each, so that it can keep the same weights as the guest); the
  guest's number of features, whether there is an intercept, the number of
  validation rows, the guest's public key. It does **not** learn ``y``,
  ``X_g``, ``w_g``, ``b``, ``u_g``, the loss or any validation metric.
* Gradients reveal linear combinations of the batch's fore gradients; to
  keep them from pinning individual rows, every batch must have more rows
  than either party has weights (checked: :func:`check_batch_rows`).
* At prediction time (``hetero_lr_predict``) the guest receives the host's
  partial scores in plaintext, as in FATE: the guest outputs probabilities,
  and ``p`` with its own ``u_g`` gives ``u_h`` anyway.
* Both learn the row count and that their ids agree (the digests of equal
  id lists, keyed by a fresh nonce).
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.crypto import he
from engine.crypto.he import EncryptedArray, HEPrivateKey, HEPublicKey, HomomorphicError
from engine.errors import InvalidInput, InvalidParameters, ProtocolError
from engine.ml import logistic
from engine.wire import BigIntArray

# v2: the scheme is a setting (v1 was Paillier only).
PROTOCOL = "fedweb-hetero-lr-two-keys-v2"
PREDICT_PROTOCOL = "fedweb-hetero-lr-predict-v1"

FRAC_BITS = he.DEFAULT_FRAC_BITS
"""Fractional bits of every encrypted partial score (53: float64 precision)."""

STAT_BITS = 128
"""Statistical hiding of every mask: ``x + R`` is within ``2**-STAT_BITS`` of independent of ``x``."""

SCORE_BITS = logistic.VALUE_BITS
"""Public bound on partial scores in the protocol: ``|u_h|, |v| < 2**SCORE_BITS`` (32)."""

LOSS_FRAC_BITS = 62 - SCORE_BITS - 1
"""Fixed grid (``2**-29``) of ``u_h`` in the loss column: fits int64, public, and data-independent."""

D_BITS = SCORE_BITS + FRAC_BITS + 1
"""Public bound (bits) on the encrypted integers of ``4d = u_h + v`` at ``FRAC_BITS``."""

SHARED_SETTINGS = (
    "learning_rate", "decay", "decay_sqrt", "l2", "batch_size", "max_epochs",
    "early_stopping", "restore_best", "validation_reveal", "feature_bits", "he_scheme",
)
"""Parameters both parties must agree on (compared in the hello)."""

CHUNK_ROWS = 1 << 20
"""Rows per message for plaintext score vectors (8 MiB of float64)."""


# ---------------------------------------------------------------- keys


SCHEME_NAMES = {"paillier": "Paillier", "ou": "Okamoto-Uchiyama"}

MAX_KEY_BITS = 8192
"""The largest modulus a job may ask for (``key_bits``): a longer key from the peer is refused unread."""


def new_keypair(
    bits: int, insecure_allow_small_keys: bool, scheme: str = "paillier"
) -> tuple[HEPublicKey, HEPrivateKey]:
    """A fresh key pair of ``scheme`` for one run (a function so tests can observe the keys)."""
    return he.scheme(scheme).generate_keypair(bits, insecure_allow_small_keys=insecure_allow_small_keys)


def peer_public_key(data: Any, insecure_allow_small_keys: bool, scheme: str = "paillier") -> HEPublicKey:
    """The peer's public key from its hello, validated (length before reading, then the scheme's own checks).

    ``scheme`` is this party's ``he_scheme``, already compared with the peer's
    in the hello.
    """
    name = SCHEME_NAMES[scheme]
    # Paillier exports n; Okamoto-Uchiyama a 3-byte header and n, G, H.
    longest = MAX_KEY_BITS // 8 if scheme == "paillier" else 3 + 3 * (MAX_KEY_BITS // 8)
    if not isinstance(data, bytes) or not 0 < len(data) <= longest:
        raise ProtocolError(f"the peer's public key is not an exported {name} key of at most {MAX_KEY_BITS} bits")
    try:
        return he.scheme(scheme).PublicKey.from_bytes(data, insecure_allow_small_keys=insecure_allow_small_keys)
    except HomomorphicError as exc:
        raise ProtocolError(f"the peer's {name} public key is not acceptable: {exc}") from None


# -------------------------------------------------------------- hello


def ids_digest(nonce: bytes, ids: Sequence[str]) -> bytes:
    """SHA-256 of the nonce and the ids in order (each length-prefixed UTF-8)."""
    h = hashlib.sha256(b"fedweb-hetero-lr-ids-v1")
    h.update(nonce)
    for text in ids:
        data = str(text).encode("utf-8")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.digest()


def new_nonce() -> bytes:
    return os.urandom(32)


def shared_settings(params: Any) -> dict[str, Any]:
    dumped = params.model_dump()
    return {name: dumped[name] for name in SHARED_SETTINGS}


def compare_settings(mine: dict[str, Any], theirs: Any) -> None:
    if not isinstance(theirs, dict):
        raise ProtocolError("the peer's hello has no settings")
    for name in SHARED_SETTINGS:
        if theirs.get(name) != mine[name]:
            raise InvalidParameters(
                f"parameter {name!r} differs between the parties ({mine[name]!r} here, "
                f"{theirs.get(name)!r} at the peer): both must train with the same value",
                param=name,
            )


def expect(message: Any, keys: Sequence[str], what: str) -> dict[str, Any]:
    """A received dict with at least ``keys``, or a ProtocolError naming the message."""
    if not isinstance(message, dict):
        raise ProtocolError(f"message {what!r} is not a dict")
    missing = [k for k in keys if k not in message]
    if missing:
        raise ProtocolError(f"message {what!r} lacks {', '.join(missing)}")
    return message


def check_protocol(hello: dict[str, Any], protocol: str) -> None:
    if hello.get("protocol") != protocol:
        raise ProtocolError(f"the peer runs protocol {hello.get('protocol')!r}, this party {protocol!r}")


# ---------------------------------------------------------- batches


def check_resume(mine: int | None, theirs: Any, same_model: bool, peer: str) -> None:
    """Both parties resume from the same epoch of the same run, or both start afresh.

    A party that failed mid-epoch may have written one checkpoint fewer than
    the other, so the message names both epochs: give both parties the
    ``epoch-NNNNN.json`` of the last epoch they both have.
    """
    def text(epoch: Any) -> str:
        return "a fresh start" if epoch is None else f"epoch {epoch}"

    if theirs != mine:
        raise ProtocolError(
            f"the parties resume from different checkpoints: {text(mine)} here, {text(theirs)} at the {peer}; "
            "give both the checkpoint of the same epoch (epoch-NNNNN.json in each party's checkpoint directory)"
        )
    if not same_model:
        raise ProtocolError(f"the checkpoints here and at the {peer} come from different training runs")


def check_peer_hello(
    hello: dict[str, Any],
    params: Any,
    nonce: bytes,
    ids: Sequence[str],
    validation_ids: Sequence[str] | None,
    resumed_from: int | None,
    model_id: str | None,
    peer: str,
) -> None:
    """What each party checks in the other's ``hello``: same settings, same rows in the same order, same checkpoint.

    ``ids`` and ``validation_ids`` are this party's (``None``: no validation
    set); ``peer`` names the other party in the messages.
    """
    compare_settings(shared_settings(params), hello["settings"])
    n, n_val = len(ids), len(validation_ids) if validation_ids is not None else 0
    if hello["rows"] != n or hello["validation_rows"] != n_val:
        raise ProtocolError(
            f"the parties have different row counts (training {n} here, {hello['rows']} at the {peer}; "
            f"validation {n_val} here, {hello['validation_rows']} at the {peer}): align them with psi first"
        )
    if hello["ids"] != ids_digest(nonce, ids) or (
        validation_ids is not None and hello["validation_ids"] != ids_digest(nonce, validation_ids)
    ):
        raise ProtocolError("the parties' rows are not aligned (different ids or order): align them with psi first")
    check_resume(resumed_from, hello["resume_epoch"], resumed_from is None or hello["model_id"] == model_id, peer)


def check_batch_rows(chunks: Sequence[np.ndarray], guest_weights: int, host_weights: int) -> None:
    """Every batch must have more rows than either party has weights.

    A party learns its gradient ``X^T d`` per batch: with no more rows than
    weights it could solve for the batch's per-row ``d`` (and so the labels
    or the other's scores).
    """
    smallest = min(len(c) for c in chunks)
    needed = max(guest_weights, host_weights) + 1
    if smallest < needed:
        raise InvalidParameters(
            f"the smallest batch has {smallest} rows but a party has {needed - 1} weights: every batch "
            f"needs at least {needed} rows, or its gradient would reveal per-row values "
            "(raise batch_size, or use 0 for one batch of all rows)",
            param="batch_size",
        )


def check_order(order: Any, rows: int) -> np.ndarray:
    """The guest's row order: must be a permutation of ``0..rows-1``."""
    if not isinstance(order, np.ndarray) or order.dtype != np.int64 or order.shape != (rows,):
        raise ProtocolError("message 'order' is not an int64 vector of the training row count")
    seen = np.zeros(rows, dtype=bool)
    if rows and (order.min() < 0 or order.max() >= rows):
        raise ProtocolError("message 'order' holds a position outside the table")
    seen[order] = True
    if not seen.all():
        raise ProtocolError("message 'order' is not a permutation of the rows")
    return order


# ----------------------------------------------------- ciphertexts on the wire


def ciphertexts(enc: EncryptedArray) -> BigIntArray:
    return BigIntArray(enc.ciphertexts, enc.shape)


def receive_encrypted(
    message: Any, key: HEPublicKey, *, count: int, frac_bits: int, bound: int | None, what: str
) -> EncryptedArray:
    """Wrap a received BigIntArray as ``count`` ciphertexts under ``key``.

    ``bound`` is the *public* bound on the plaintext integers (``None``: no
    promise, used for values this party decrypts, which are masked).
    """
    if not isinstance(message, BigIntArray) or message.shape != (count,):
        raise ProtocolError(f"message {what!r} is not {count} ciphertexts")
    try:
        return EncryptedArray.from_ciphertexts(key, message.values, (count,), frac_bits=frac_bits, bound=bound)
    except HomomorphicError as exc:
        raise ProtocolError(f"message {what!r}: {exc}") from None


def score_bound() -> int:
    """Public bound on the encrypted integers of a partial score."""
    return 1 << (SCORE_BITS + FRAC_BITS)


def encrypt_scores(encryptor: Any, scores: np.ndarray, what: str) -> EncryptedArray:
    """``[[scores]]`` at :data:`FRAC_BITS`, after checking the public bound.

    ``encryptor`` is this party's :class:`~engine.crypto.owner.OwnerEncryptor`
    (or any object with the ``PublicKey.encrypt`` signature).
    """
    if scores.size and not (np.isfinite(scores).all() and np.max(np.abs(scores)) < 2.0**SCORE_BITS):
        raise logistic.TrainingDiverged(
            f"{what} reached 2^{SCORE_BITS} or is not finite: training diverged "
            "(lower learning_rate or scale the features)"
        )
    return encryptor.encrypt(scores, frac_bits=FRAC_BITS)


def encoded(values: np.ndarray) -> list[int]:
    """The exact integers ``round(x * 2**FRAC_BITS)`` the encryption layer encrypts for ``values``."""
    return [int(k) for k in np.rint(np.ldexp(np.asarray(values, dtype=np.float64), FRAC_BITS)).tolist()]


# ----------------------------------------------------------------- masks


def product(enc: EncryptedArray, matrix: np.ndarray, max_columns: int = 8) -> EncryptedArray:
    """``enc @ matrix`` (:meth:`EncryptedArray.dot`, exact for int64) in groups of columns.

    Both parties compute their products at the same time and the encryption
    layer has one helper process per spare core: a product that starts while
    the helper is busy runs on its own thread. In groups of a few columns
    (each still over all rows, so the bucketing stays as efficient), every
    group asks for the helper again and picks it up as soon as it is free.
    """
    columns = matrix.shape[1]
    groups = -(-columns // max_columns)
    if groups <= 1:
        return enc.dot(matrix)
    parts = [enc.dot(np.ascontiguousarray(block)) for block in np.array_split(matrix, groups, axis=1)]
    return he.concatenate(parts)


def gradient_bits(matrix_bits: int, rows: int) -> int:
    """Public bound (bits) on ``sum_i D_i M_ij`` for ``rows`` rows and ``|M| < 2**matrix_bits``."""
    return D_BITS + matrix_bits + max(1, rows).bit_length()


def mask(enc: EncryptedArray, value_bits: int) -> tuple[EncryptedArray, list[int]]:
    """``enc + R`` re-randomised, with ``R_j`` uniform in ``[0, 2**(value_bits + STAT_BITS))``.

    ``value_bits`` must be a public bound on the plaintexts (checked against
    the array's own bound). The mask is added at the integer level (same
    fixed-point scale), so no low bits are left unmasked.
    """
    if enc.bound >= 1 << value_bits:
        raise ProtocolError("a value exceeds its public bound: the protocol constants are inconsistent")
    bits = value_bits + STAT_BITS
    key = enc.public_key
    if (1 << value_bits) + (1 << bits) > key.max_int:
        raise he.KeySizeError(
            f"masking needs {bits + 1}-bit plaintexts; a {key.bits}-bit key holds {key.max_int.bit_length() - 1}"
        )
    masks = [secrets.randbits(bits) for _ in range(enc.size)]
    masked = enc + key.encrypt_int(masks, frac_bits=enc.frac_bits)
    return masked.rerandomize(), masks


def masked_bound(value_bits: int) -> int:
    """Public bound on a masked value ``x + R`` (``|x| < 2**value_bits``, ``R < 2**(value_bits + STAT_BITS)``)."""
    return (1 << value_bits) + (1 << (value_bits + STAT_BITS))


def decrypt_for_peer(private: HEPrivateKey, message: Any, count: int, what: str, value_bits: int) -> list[int]:
    """Decrypt a masked array the peer sent, as exact integers to send back.

    Only plaintexts within :func:`masked_bound` of ``value_bits`` (the public
    bound the peer masked with) are returned: anything else was not made by
    :func:`mask` and is refused, so the peer cannot use this party as a
    decryption oracle for arbitrary ciphertexts (with Okamoto-Uchiyama that
    would reveal the key).
    """
    enc = receive_encrypted(message, private.public_key, count=count, frac_bits=0, bound=masked_bound(value_bits),
                            what=what)
    try:
        return [int(k) for k in private.decrypt_int(enc).tolist()]
    except HomomorphicError as exc:
        raise ProtocolError(f"message {what!r} does not decrypt within its public bound: {exc}") from None


def unmask(message: Any, masks: Sequence[int], value_bits: int, what: str) -> list[int]:
    """Remove this party's masks from the integers the peer decrypted."""
    if not isinstance(message, list) or len(message) != len(masks) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in message
    ):
        raise ProtocolError(f"message {what!r} is not {len(masks)} integers")
    values = [v - r for v, r in zip(message, masks)]
    limit = 1 << value_bits
    if any(abs(v) >= limit for v in values):
        raise ProtocolError(f"message {what!r}: a value is outside its bound after unmasking")
    return values


def scaled(value: int, frac_bits: int) -> float:
    """``value / 2**frac_bits`` correctly rounded (``frac_bits`` may be negative)."""
    if frac_bits >= 0:
        return value / (1 << frac_bits)
    return float(value * (1 << -frac_bits))


# ------------------------------------------------------------ loss share


def loss_bits(rows: int) -> int:
    """Public bound (bits) on the host's loss share integer ``T`` at scale ``2**-(FRAC+LOSS_FRAC+3)``."""
    # T = 2 sum V_i uq_i + round(sum u_h^2 * 2**(FRAC+LOSS_FRAC)); |V| < 2**(SCORE+FRAC), |uq| < 2**(SCORE+LOSS_FRAC).
    return 2 * SCORE_BITS + FRAC_BITS + LOSS_FRAC_BITS + 2 + max(1, rows).bit_length()


LOSS_SCALE_BITS = FRAC_BITS + LOSS_FRAC_BITS + 3
"""The host's loss share is ``T / 2**LOSS_SCALE_BITS`` (``v u_h / 4 + u_h**2 / 8`` with both scales)."""


def loss_grid(u_h: np.ndarray) -> np.ndarray:
    """``u_h`` on the fixed loss grid ``2**-LOSS_FRAC_BITS``, int64."""
    return np.rint(np.ldexp(u_h, LOSS_FRAC_BITS)).astype(np.int64)


def square_sum_integer(u_h: np.ndarray) -> int:
    """``round(sum u_h**2 * 2**(FRAC+LOSS_FRAC))`` exactly from the float64 sum of squares."""
    total = float(np.sum(u_h * u_h))
    numerator, denominator = total.as_integer_ratio()
    shifted = numerator << (FRAC_BITS + LOSS_FRAC_BITS)
    quotient, remainder = divmod(shifted, denominator)
    return quotient + (1 if 2 * remainder >= denominator else 0)


def host_loss_share(cross: EncryptedArray | None, offset: int, guest_key: HEPublicKey) -> EncryptedArray:
    """``[[T]]_G = 2 [[cross]] + Enc(offset)``, re-randomised for the guest (the key owner).

    ``cross`` is ``[[sum_i D_i uq_i]]`` (training: ``D = V + U_h``) or
    ``[[sum_i V_i uq_i]]`` (validation); ``offset`` is
    ``round(sum u_h**2 * 2**(FRAC+LOSS_FRAC)) - 2 sum_i U_h,i uq_i`` (training)
    or the first term alone, so that ``T = 2 sum V uq + squares``.
    """
    # Same frac_bits as ``cross``: adding arrays of different scales would shift one of them.
    frac_bits = cross.frac_bits if cross is not None else 0
    total = guest_key.encrypt_int([offset], frac_bits=frac_bits)
    if cross is not None:
        total = cross.reshape((1,)) * 2 + total
    return total.rerandomize()


def rebound(enc: EncryptedArray, value_bits: int) -> EncryptedArray:
    """The same ciphertexts with the public bound ``2**value_bits`` (the products' own bound mixes columns)."""
    return EncryptedArray.from_ciphertexts(
        enc.public_key, enc.ciphertexts, enc.shape, frac_bits=enc.frac_bits, bound=(1 << value_bits) - 1
    )


def read_loss_share(private: HEPrivateKey, message: Any, rows: int) -> float:
    """The host's loss share as a float, from its one-ciphertext message (refused beyond its public bound)."""
    enc = receive_encrypted(message, private.public_key, count=1, frac_bits=0, bound=(1 << loss_bits(rows)) - 1,
                            what="loss")
    try:
        value = int(private.decrypt_int(enc)[0])
    except HomomorphicError as exc:
        raise ProtocolError(f"message 'loss' does not decrypt within its public bound: {exc}") from None
    if abs(value) >= 1 << loss_bits(rows):
        raise ProtocolError("message 'loss' is outside its bound")
    return scaled(value, LOSS_SCALE_BITS)


def check_key_bits(params: Any) -> None:
    minimum = he.scheme(params.he_scheme).MIN_SECURE_KEY_BITS
    if params.key_bits < minimum and not params.insecure_allow_small_keys:
        raise InvalidParameters(
            f"key_bits={params.key_bits} is below {minimum}: "
            "allowed only with insecure_allow_small_keys (tests)",
            param="key_bits",
        )


def require_rows(n: int, what: str) -> None:
    if n == 0:
        raise InvalidInput(f"input {what!r} has no rows", input=what)


def integer_bits(value: int) -> int:
    return max(1, math.ceil(math.log2(value + 1)))
