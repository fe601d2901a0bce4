"""ASGI entry point: HTTP through Django, WebSockets through Channels."""
from __future__ import annotations

import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cvi_site.settings")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

try:
    from django.core.asgi import get_asgi_application

    django_asgi_app = get_asgi_application()
except ImproperlyConfigured as exc:
    sys.stderr.write(f"OpenCVI configuration error: {exc}\n")
    raise SystemExit(2) from None

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from cvi_site.bodylimit import BodyLimitMiddleware, install_daphne_limits  # noqa: E402
from cvi_site.routing import websocket_urlpatterns  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(django_asgi_app),
        # No origin validator: the conversation page may be embedded on other origins; the
        # consumers authorise each join themselves (conversation id + meeting token).
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)


def _tune_gil() -> None:
    """The event loop thread carries every call's media (ICE, DTLS, SRTP, RTP pacing) and gives the
    GIL away at each socket call; threads doing CPU work (rendering, encoding, speech models) then
    keep it for up to the switch interval (CPython's default: 5 ms) before the loop gets it back.
    A shorter interval returns it sooner. (Set on that reasoning; its effect alone was not
    measured: the four-call failure it was first suspected of had another cause, README.)"""
    from django.conf import settings

    sys.setswitchinterval(settings.GIL_SWITCH_INTERVAL_US / 1_000_000)


_tune_gil()
install_daphne_limits()


async def application(scope, receive, send):
    """The router, with this process's event-loop lag monitor started on its loop."""
    from conversations.realtime.loopwatch import start_loop_watch

    start_loop_watch()
    return await router(scope, receive, send)
