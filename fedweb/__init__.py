"""FedWeb site: the Django project (settings, URLs, ASGI and Celery apps, site-wide apps)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
