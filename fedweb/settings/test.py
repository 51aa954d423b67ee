"""Test settings: the base settings with a fast password hasher and tasks run inline.

``DATABASE_URL`` / ``REDIS_URL`` still switch to PostgreSQL and Redis, so CI runs the
same suite against the real services.
"""

import os
import tempfile

os.environ.setdefault("FEDWEB_DATA_DIR", tempfile.mkdtemp(prefix="fedweb-test-"))

from .base import *  # noqa: E402,F401,F403

# The test process's own site folders, in its temporary data folder.
for _folder in (DATA_DIR, ARTIFACT_DIR, UPLOAD_TMP_DIR):  # noqa: F405
    _folder.mkdir(parents=True, exist_ok=True)
FILE_UPLOAD_TEMP_DIR = str(UPLOAD_TMP_DIR)  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

if REDIS_URL:  # noqa: F405
    from urllib.parse import urlsplit, urlunsplit

    # One Redis database per test worker, so clearing the cache in one worker never
    # wipes another's login counters.
    _worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    _db = 1 + (int(_worker[2:]) if _worker[2:].isdigit() else 0)
    _parts = urlsplit(REDIS_URL)  # noqa: F405
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": urlunsplit(_parts._replace(path=f"/{_db}")),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
