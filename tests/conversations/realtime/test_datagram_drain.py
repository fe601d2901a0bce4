"""The root cause of four calls dying: asyncio read one UDP datagram per loop iteration, so a
call's socket queue grew faster than the loop drained it. Drained, one wake-up takes them all."""
from __future__ import annotations

import asyncio
import socket

from conversations.realtime.ice import MAX_DATAGRAMS_PER_WAKE, drain_datagram_sockets


class Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received = 0

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        self.received += 1


def test_one_wake_up_reads_every_queued_datagram() -> None:
    drain_datagram_sockets()

    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(Counter, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for i in range(60):  # a second of a call's audio arriving while the loop was busy
                sender.sendto(b"x" * 160, ("127.0.0.1", port))
            # let the loop find the socket readable once; the stdlib transport would take one
            for _ in range(3):
                await asyncio.sleep(0)
            first = proto.received
            await asyncio.sleep(0.05)
            return first, proto.received
        finally:
            sender.close()
            transport.close()

    first, total = asyncio.run(asyncio.wait_for(main(), 30))
    assert total == 60
    assert first >= min(60, MAX_DATAGRAMS_PER_WAKE) - 1, first  # (not one per iteration)
