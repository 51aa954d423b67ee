"""The site's one Celery app, configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery
from celery.signals import celeryd_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedweb.settings.base")

app = Celery("fedweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def jobs_worker_concurrency(max_tasks: int) -> int:
    """Processes (or threads) a worker of the jobs queue needs: one for every job task that may be
    queued at once, plus one for the other work (checking uploads)."""
    return max_tasks + 1


def worker_arguments(env) -> list[str]:
    """``celery worker`` arguments for one site process running every queue (the demo, tests): a
    thread per task that may run at once, in one process that a signal stops as a whole."""
    max_tasks = int(env.get("FEDWEB_JOBS_MAX_TASKS") or 4)
    return ["-A", "fedweb", "worker", "--pool", "threads", "--concurrency", str(jobs_worker_concurrency(max_tasks)),
            "-Q", "default,jobs"]


@celeryd_init.connect
def _check_jobs_concurrency(sender=None, conf=None, options=None, **kwargs):
    """Refuse to start a jobs worker that cannot run every queued job task at once.

    A job's task waits for its half at the partner. If this site queued more tasks than its
    worker can run, a task can sit behind another that waits for the partner, while the
    partner's worker is busy waiting for it: both sites wait until the receive timeout. So a
    worker of the ``jobs`` queue runs at least ``FEDWEB_JOBS_MAX_TASKS`` tasks at once.
    """
    from django.conf import settings

    options = options or {}
    queues = options.get("queues") or []
    queues = queues.split(",") if isinstance(queues, str) else list(queues)
    if queues and settings.JOBS_QUEUE not in queues:
        return
    pool = str(options.get("pool") or "")
    concurrency = 1 if pool == "solo" else int(options.get("concurrency") or os.cpu_count() or 1)
    if concurrency < settings.JOBS_MAX_TASKS:
        raise SystemExit(
            f"This worker runs {concurrency} task(s) at once but FEDWEB_JOBS_MAX_TASKS is {settings.JOBS_MAX_TASKS}: "
            f"start it with --concurrency {jobs_worker_concurrency(settings.JOBS_MAX_TASKS)} (and not --pool solo), "
            "or lower FEDWEB_JOBS_MAX_TASKS. Otherwise two sites' jobs can wait for each other until they fail.")


@worker_init.connect
def _prepare_site_files(**kwargs):
    """A worker is one of the site's processes: the broker's and artifacts' folders exist from here on."""
    from fedweb.sitedata import prepare_site_files

    prepare_site_files()
