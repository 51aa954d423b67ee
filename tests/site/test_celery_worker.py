"""Validation really runs in a separate Celery worker, over Redis, against PostgreSQL.

Runs where the suite itself runs on PostgreSQL and Redis (CI); the embedded SQLite
test database lives in memory and cannot be shared with another process.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not django_settings.REDIS_URL or connection.vendor != "postgresql",
        reason="needs DATABASE_URL (PostgreSQL) and REDIS_URL",
    ),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker(tmp_path):
    from fedweb.celery import app

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "fedweb.settings.base",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
            "FEDWEB_DATA_DIR": str(tmp_path),
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "fedweb", "worker", "--pool", "solo", "-Q", "default", "--loglevel", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    # With the Django namespace, the CELERY_-prefixed key is the one Celery reads.
    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    try:
        yield process
    finally:
        app.conf.CELERY_TASK_ALWAYS_EAGER = True
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(dataset, statuses, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dataset.refresh_from_db()
        if dataset.status in statuses:
            return dataset
        time.sleep(0.2)
    raise AssertionError(f"dataset still {dataset.status} after {seconds}s")


def test_a_worker_process_validates_an_upload(worker, alice, api_as):
    from datasets.models import Dataset

    response = api_as(alice).post(
        "/api/datasets/", {"file": SimpleUploadedFile("w.csv", b"id,y,x\n01,1,2.5\n02,0,3.5\n")}, format="multipart"
    )
    assert response.status_code == 201
    dataset = Dataset.objects.get(pk=response.json()["id"])
    assert dataset.status == "uploaded"  # queued, not run inline
    dataset = _wait_for(dataset, {"ready", "failed"})
    assert dataset.status == "ready", dataset.error_message
    assert dataset.row_count == 2
    assert dataset.id_column == "id"


def test_a_jobs_worker_that_cannot_run_every_queued_task_at_once_refuses_to_start(settings):
    """Otherwise a task queued behind one that waits for the partner waits while the partner waits for it."""
    from fedweb.celery import _check_jobs_concurrency, worker_arguments

    settings.JOBS_MAX_TASKS = 4
    for options in ({"pool": "solo", "queues": "default,jobs"}, {"pool": "prefork", "concurrency": 2, "queues": ["jobs"]}):
        with pytest.raises(SystemExit, match="FEDWEB_JOBS_MAX_TASKS is 4"):
            _check_jobs_concurrency(options=options)
    _check_jobs_concurrency(options={"pool": "threads", "concurrency": 5, "queues": "default,jobs"})
    _check_jobs_concurrency(options={"pool": "solo", "queues": "default"})  # no job tasks there
    arguments = worker_arguments({"FEDWEB_JOBS_MAX_TASKS": "4"})
    assert arguments[arguments.index("--concurrency") + 1] == "5" and "solo" not in arguments
