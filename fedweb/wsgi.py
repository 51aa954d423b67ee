"""WSGI entry point (the ASGI app in ``asgi.py`` is the one sites run)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedweb.settings.base")
application = get_wsgi_application()
