"""How remote engines reach the network. The site installs its outbound policy here at start-up
(``cvi_site.netguard``: with ``ALLOW_PRIVATE_URLS`` off, no request to a private address); this
package stays free of Django and of the site's rules. Until one is installed: plain httpx."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

_policy: dict[str, Any] = {"async_client": httpx.AsyncClient, "check": None}


def install(*, async_client: Callable[..., httpx.AsyncClient],
            check: Callable[[httpx.Request], Awaitable[None]]) -> None:
    """``async_client(**httpx_kwargs)`` builds every engine's HTTP client; ``check(request)``
    vets a URL that an SDK (not httpx) will connect to."""
    _policy.update(async_client=async_client, check=check)


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    return _policy["async_client"](**kwargs)


async def check_request(request: httpx.Request) -> None:
    if _policy["check"] is not None:
        await _policy["check"](request)
