"""Read settings from the environment, failing loudly on malformed values.

Every helper raises ``ImproperlyConfigured`` naming the variable, so a typo in a
deployment's environment stops the site at start-up instead of surfacing later as
odd behaviour. A secret can also be given as ``NAME_FILE`` pointing at a file
(docker secrets), which wins over ``NAME``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    file_var = os.environ.get(f"{name}_FILE")
    if file_var:
        try:
            return Path(file_var).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {file_var!r}: {exc}") from exc
    return os.environ.get(name)


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = _raw(name)
    if value is None or value == "":
        if required:
            raise ImproperlyConfigured(f"{name} must be set")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_database_url(url: str, *, name: str = "DATABASE_URL") -> dict:
    """Turn ``postgres://user:pass@host:port/db?sslmode=require`` into a Django DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme in {"postgres", "postgresql", "pgsql"}:
        db_name = unquote(parts.path.lstrip("/"))
        if not db_name:
            raise ImproperlyConfigured(f"{name} must name a database, got {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has an invalid port: {url!r}") from None
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": db_name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            # Each thread (web, worker, proxy) keeps its connection this long; 0 closes it after
            # each request or task, for hosts that run many sites on one PostgreSQL.
            "CONN_MAX_AGE": env_int("FEDWEB_DB_CONN_MAX_AGE", 60, minimum=0),
            "CONN_HEALTH_CHECKS": True,
        }
    if parts.scheme == "sqlite":
        # sqlite:////absolute/path.db  or sqlite:///relative.db
        path = url[len("sqlite://"):]
        if path.startswith("/") and not path.startswith("//"):
            path = path[1:]
        elif path.startswith("//"):
            path = path[1:]
        if not path:
            raise ImproperlyConfigured(f"{name} must name a SQLite file, got {url!r}")
        return sqlite_database(Path(path))
    raise ImproperlyConfigured(
        f"{name} must start with postgres:// or sqlite://, got scheme {parts.scheme!r}"
    )


def sqlite_database(path: Path) -> dict:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # IMMEDIATE transactions take the write lock up front, so two writers queue
        # instead of one failing with "database is locked" when it upgrades its lock
        # (the audit hash chain depends on writers queueing). Write-ahead logging lets the web
        # server, the proxy and the worker read while one of them writes, and commits without
        # waiting for the disk each time (a power cut may lose the last commits, never the file):
        # a scoring request's log rows cost microseconds, not a disk flush each.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20,
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
    }


def validate_redis_url(url: str | None, *, name: str = "REDIS_URL") -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name} must start with redis://, rediss:// or unix://, got {url!r}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ImproperlyConfigured(f"{name} must name a host, got {url!r}")
    return url
