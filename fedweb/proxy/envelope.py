"""Building, signing and checking envelopes (see ``proxy.proto``).

The MAC is HMAC-SHA256 under the project's cooperation token over a canonical,
unambiguous rendering of every header field plus SHA-256 of the body, so no field
can be changed, moved to another project or replayed under another nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

from .proxy_pb2 import Envelope

FRESHNESS_SECONDS = 300  # clocks of two sites may differ this much; nonces are kept as long
NONCE_BYTES = 16
MAC_DOMAIN = b"fedweb-proxy-v1"


def canonical(env: Envelope) -> bytes:
    fields = [
        env.sender, env.receiver, env.project_id, str(env.timestamp_ms), env.nonce.hex(), env.kind,
        str(env.token_version), env.session_id, env.key, str(env.chunk_index), str(env.chunk_count),
        hashlib.sha256(env.body).hexdigest(),
    ]
    # Length-prefixed so that no two different headers render to the same bytes.
    return MAC_DOMAIN + b"".join(len(f.encode()).to_bytes(4, "big") + f.encode() for f in fields)


def compute_mac(env: Envelope, token: bytes) -> bytes:
    return hmac.new(token, canonical(env), hashlib.sha256).digest()


def mac_is_valid(env: Envelope, token: bytes) -> bool:
    return hmac.compare_digest(env.mac, compute_mac(env, token))


def build(*, sender: str, receiver: str, kind: str, project_id: str = "", body: bytes = b"",
          token: bytes | None = None, token_version: int = 0, session_id: str = "", key: str = "",
          chunk_index: int = 0, chunk_count: int = 0, timestamp_ms: int | None = None) -> Envelope:
    env = Envelope(
        sender=sender, receiver=receiver, project_id=project_id, kind=kind, body=body,
        timestamp_ms=int(time.time() * 1000) if timestamp_ms is None else timestamp_ms,
        nonce=os.urandom(NONCE_BYTES), token_version=token_version, session_id=session_id, key=key,
        chunk_index=chunk_index, chunk_count=chunk_count,
    )
    if token is not None:
        env.mac = compute_mac(env, token)
    return env


def is_fresh(env: Envelope, now: float | None = None) -> bool:
    now_ms = (time.time() if now is None else now) * 1000
    return abs(now_ms - env.timestamp_ms) <= FRESHNESS_SECONDS * 1000


def json_body(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def parse_json_body(env: Envelope):
    try:
        return json.loads(env.body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"the request body is not valid JSON: {exc}") from None
