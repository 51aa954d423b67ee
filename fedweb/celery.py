"""The site's one Celery app, configured from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedweb.settings.base")

app = Celery("fedweb")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
