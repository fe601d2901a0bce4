"""Where the server may connect on an account's behalf (the site's outbound rule; no Django imports).

Remote engines (LLM, TTS, vision endpoints), face downloads and webhooks go to URLs that
accounts choose. On a self-hosted box that is what you want (a GPU server on the LAN, a
local llama.cpp server). A server shared by several accounts can refuse private addresses:
``configure(allow_private=False)`` (the ``ALLOW_PRIVATE_URLS`` setting) makes every such
request, redirects included, check what its host resolves to, and refuse loopback, private,
link-local and reserved addresses with a clear error.

The hooks raise ``httpx.ConnectError``, so callers report a refused host the way they report
an unreachable one. A name that resolves differently between the check and the connection
(DNS rebinding) is not covered; a proxy that enforces egress rules is the stronger tool.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import httpx

_state = {"allow_private": True}


def configure(*, allow_private: bool) -> None:
    _state["allow_private"] = bool(allow_private)


def allow_private() -> bool:
    return _state["allow_private"]


def _first_private(addresses: list[str]) -> str | None:
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            return str(ip)
    return None


def _literal(host: str) -> list[str] | None:
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        return None


class PrivateAddressRefused(httpx.ConnectError):
    """A request to a private address while they are not allowed (never worth retrying)."""


def _refusal(request: httpx.Request, address: str) -> PrivateAddressRefused:
    host = request.url.host
    where = host if host == address else f"{host} ({address})"
    return PrivateAddressRefused(f"{where} is a private address, and this server does not connect to private "
                              "addresses (ALLOW_PRIVATE_URLS is off)", request=request)


def _refuse_private(request: httpx.Request, addresses: list[str]) -> None:
    blocked = _first_private(addresses)
    if blocked is not None:
        raise _refusal(request, blocked)


def check_request(request: httpx.Request) -> None:
    """httpx request hook (sync clients)."""
    if _state["allow_private"]:
        return
    addresses = _literal(request.url.host)
    if addresses is None:
        try:
            addresses = [info[4][0] for info in socket.getaddrinfo(request.url.host, request.url.port or 443)]
        except OSError:
            return  # the connection itself will report the unknown name
    _refuse_private(request, addresses)


async def acheck_request(request: httpx.Request) -> None:
    """httpx request hook (async clients): resolves without blocking the event loop."""
    if _state["allow_private"]:
        return
    addresses = _literal(request.url.host)
    if addresses is None:
        loop = asyncio.get_running_loop()
        try:
            addresses = [info[4][0] for info in await loop.getaddrinfo(request.url.host, request.url.port or 443)]
        except OSError:
            return
    _refuse_private(request, addresses)


def client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that applies the rule to every request it sends."""
    return httpx.Client(event_hooks={"request": [check_request]}, **kwargs)


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that applies the rule to every request it sends."""
    return httpx.AsyncClient(event_hooks={"request": [acheck_request]}, **kwargs)
