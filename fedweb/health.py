"""``/healthz``: is the database, Redis (when configured) and the artifact store usable?"""

import os
import tempfile
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def _check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_redis():
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


def _check_artifacts():
    directory = settings.ARTIFACT_DIR
    fd, name = tempfile.mkstemp(prefix=".healthz-", dir=directory)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        os.unlink(name)


def healthz(request):
    checks = {"database": _check_database, "artifact_store": _check_artifacts}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis
    report, healthy = {}, True
    for name, check in checks.items():
        started = time.monotonic()
        try:
            check()
            report[name] = {"status": "ok", "ms": round(1000 * (time.monotonic() - started), 1)}
        except Exception as exc:  # any failure is the answer, not a crash
            healthy = False
            report[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    if not settings.REDIS_URL:
        report["redis"] = {"status": "not configured"}
    return JsonResponse(
        {"status": "ok" if healthy else "error", "site": settings.SITE_PARTY_ID, "checks": report},
        status=200 if healthy else 503,
    )
