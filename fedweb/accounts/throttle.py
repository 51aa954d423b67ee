"""Throttle failed sign-ins per account name and per client address.

Keys use the *submitted* user name, whether or not such a user exists, so a
throttled answer reveals nothing about which accounts exist. Counters live in the
shared cache (Redis, or the database cache on the embedded default) so every web
process sees every failure.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"login-fail:{kind}:{digest}"


def _keys(username: str, ip: str | None) -> list[tuple[str, int]]:
    keys = [(_key("user", username or ""), settings.LOGIN_FAILURE_LIMIT)]
    if ip:
        keys.append((_key("ip", ip), settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS))
    return keys


def seconds_locked(username: str, ip: str | None) -> int:
    """How long sign-in stays refused for this name or address (0 = allowed)."""
    now = time.time()
    wait = 0
    for key, limit in _keys(username, ip):
        state = cache.get(key)
        if state and state["count"] >= limit:
            wait = max(wait, int(state["until"] - now) + 1)
    return max(wait, 0)


def register_failure(username: str, ip: str | None) -> None:
    window = settings.LOGIN_LOCKOUT_SECONDS
    now = time.time()
    for key, _limit in _keys(username, ip):
        state = cache.get(key) or {"count": 0, "until": now + window}
        if state["until"] < now:
            state = {"count": 0, "until": now + window}
        state["count"] += 1
        state["until"] = now + window
        cache.set(key, state, timeout=window)


def clear_failures(username: str) -> None:
    """A successful sign-in clears the account counter (not the address counter)."""
    cache.delete(_key("user", username or ""))
