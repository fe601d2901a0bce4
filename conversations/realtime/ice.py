"""ICE and UDP set-up for aiortc, process-wide and Django-free.

Three helpers every peer connection of the process relies on:

- ``include_loopback_candidates``: aioice also offers 127.0.0.1, so a server and a browser on
  one machine (and two peers in one test) connect;
- ``drain_datagram_sockets``: asyncio reads every queued datagram at each wake-up, so a busy
  loop does not let the sockets' queues (and the ICE consent checks) fall seconds behind;
- ``rtc_configuration``: the ``RTCConfiguration`` for a call's STUN/TURN servers.

The two patches install themselves once per process (``PeerSession`` calls both).
"""
from __future__ import annotations

from aiortc import RTCConfiguration, RTCIceServer


def include_loopback_candidates() -> None:
    """aioice gathers host candidates on every interface but loopback; a server and a browser
    on the same machine (and two peers in one test) need loopback too."""
    import aioice.ice

    if getattr(aioice.ice.get_host_addresses, "_opencvi", False):
        return
    original = aioice.ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = original(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses.append("127.0.0.1")
        return addresses

    with_loopback._opencvi = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = with_loopback



#: datagrams read per readiness event of one UDP socket (asyncio reads one)
MAX_DATAGRAMS_PER_WAKE = 128


def drain_datagram_sockets() -> None:
    """Read every queued datagram when a UDP socket is ready, not one per loop iteration.

    asyncio's selector datagram transport reads ONE datagram each time the loop finds the
    socket readable. A call's socket receives ~50 audio packets a second (and a client's
    ~200 with video); with four calls the loop iterates fewer times a second than that, so
    each socket's kernel queue grew by seconds (~130 KB of mic audio per socket, measured
    with ``ss``): the user's speech reached the pipeline seconds late, and the ICE consent
    checks, which allow 0.5 s for an answer, failed six times in a row, so every transport
    died ~33 s after connecting. Draining the socket at each wake-up keeps the queue at
    zero however many calls share the loop. (uvloop reads in batches too; Daphne's Twisted
    reactor runs on the stdlib loop, so the stdlib transport is what needs it.)"""
    from asyncio import selector_events

    transport = selector_events._SelectorDatagramTransport
    if getattr(transport._read_ready, "_opencvi", False):
        return

    def _read_ready(self) -> None:  # noqa: ANN001 - mirrors CPython's, in a loop
        for _ in range(MAX_DATAGRAMS_PER_WAKE):
            if self._conn_lost:
                return
            try:
                data, addr = self._sock.recvfrom(self.max_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)
                return
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - as CPython does
                self._fatal_error(exc, "Fatal read error on datagram transport")
                return
            self._protocol.datagram_received(data, addr)

    _read_ready._opencvi = True  # type: ignore[attr-defined]
    transport._read_ready = _read_ready


def rtc_configuration(ice_servers: list[str] | None = None, username: str = "", credential: str = "") -> RTCConfiguration:
    """No ICE servers by default (aiortc would otherwise ask a public STUN server)."""
    servers = []
    for url in ice_servers or []:
        if url.startswith("turn"):
            servers.append(RTCIceServer(urls=url, username=username or None, credential=credential or None))
        else:
            servers.append(RTCIceServer(urls=url))
    return RTCConfiguration(iceServers=servers)

