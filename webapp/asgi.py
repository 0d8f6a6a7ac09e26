"""ASGI entry point: HTTP goes to Django (a body over the upload limit is refused with 413 first, see
webapp/bodylimit.py), WebSockets to the Channels consumers (login required)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from webapp.bodylimit import BodyLimitMiddleware, install_daphne_guard  # noqa: E402
from webapp.searches.routing import websocket_urlpatterns  # noqa: E402

install_daphne_guard()  # under daphne, which reads a whole body before the application starts

application = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
