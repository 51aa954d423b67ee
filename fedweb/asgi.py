"""ASGI entry point: HTTP through Django, WebSockets through Channels (live progress)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fedweb.settings.base")
django_asgi_app = get_asgi_application()

from fedweb.sitedata import prepare_site_files  # noqa: E402

prepare_site_files()  # the web server is one of the site's processes: its folders exist from here on

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs the app registry)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from fedweb.limits import BodySizeLimitMiddleware  # noqa: E402
from fedweb.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimitMiddleware(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
