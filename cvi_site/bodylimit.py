"""Request body limits enforced before Django reads a byte of the body: in Daphne while the body
arrives (``install_daphne_limits``), and at the ASGI edge (``BodyLimitMiddleware``).

Django's own middleware runs after the ASGI handler has received the whole body, so a 300 MiB
upload was taken in full before its 413, and a request announcing ``Content-Length:
99999999999`` with two bytes behind it held its connection until it timed out. Here:

- an announced length over the limit is answered 413 at once, body unread;
- a body of unannounced length (``Transfer-Encoding: chunked``) is read here, spooled to disk
  past ``FILE_UPLOAD_MAX_MEMORY_SIZE``, cut off with a 413 as soon as it passes the limit, and
  handed to Django with its length (Django read such bodies as empty: a chunked create got
  "system_prompt is required").

Uploads within the limit are spooled to disk by Django's ASGI handler as they arrive. The limit
is ``MAX_UPLOAD_BYTES`` for multipart bodies and ``MAX_JSON_BODY_BYTES`` for the rest
(``body_limit``: one rule, also applied by ``BodySizeLimitMiddleware`` for WSGI and the test client).
"""
from __future__ import annotations

import json
import tempfile
from typing import Any

from django.conf import settings

#: bytes handed to Django per message when a spooled body is replayed
_PIECE = 64 * 1024


def body_limit(content_type: str) -> int:
    """The largest body a request of ``content_type`` may have."""
    return settings.MAX_UPLOAD_BYTES if content_type.startswith("multipart/") else settings.MAX_JSON_BODY_BYTES


def too_large_message(length: int | None, limit: int) -> str:
    size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
    return f"Request body too large: {size}, the limit is {limit} bytes"


async def _reply(send: Any, status: int, message: str) -> None:  # noqa: ANN401 - ASGI send
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """ASGI middleware for the HTTP app (WebSockets pass through untouched)."""

    def __init__(self, app: Any) -> None:  # noqa: ANN401 - an ASGI app
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # noqa: ANN401
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        limit = body_limit(headers.get(b"content-type", b"").decode("latin-1"))
        announced = headers.get(b"content-length")
        if announced is not None:
            try:
                length = int(announced)
            except ValueError:
                return await _reply(send, 400, "Malformed Content-Length header")
            if length > limit:
                return await _reply(send, 413, too_large_message(length, limit))
            return await self.app(scope, receive, send)
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            return await self.app(scope, receive, send)
        # A body of unannounced length: take it here, within the limit, then replay it with its length.
        spool = tempfile.SpooledTemporaryFile(max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE)
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                spool.close()
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                spool.close()
                return await _reply(send, 413, too_large_message(None, limit))
            spool.write(chunk)
            if not message.get("more_body", False):
                break
        spool.seek(0)
        scope = {**scope, "headers": [(k, v) for k, v in scope["headers"]
                                      if k.lower() not in (b"transfer-encoding", b"content-length")]
                 + [(b"content-length", str(size).encode())]}
        done = False

        async def replay() -> dict:
            nonlocal done
            if done:
                return await receive()
            piece = spool.read(_PIECE)
            more = spool.tell() < size
            if not more:
                done = True
                spool.close()
            return {"type": "http.request", "body": piece, "more_body": more}

        return await self.app(scope, replay, send)


def install_daphne_limits() -> None:
    """Make Daphne refuse an over-limit body while it arrives, and leave multipart bodies to Django.

    Daphne (on Twisted) takes a request's whole body before it calls the ASGI app, so the
    middleware above would only see it afterwards. Daphne builds each request from the class
    ``daphne.http_protocol.WebRequest``; this puts a subclass there that answers 413 and closes
    the connection as soon as the announced length (or, for a chunked body, the bytes received
    so far) passes the limit. Called when ``cvi_site.asgi`` is imported, i.e. in the Daphne
    process before it serves anything."""
    try:
        from daphne import http_protocol
    except ImportError:  # pragma: no cover - another ASGI server
        return
    base = http_protocol.WebRequest
    if getattr(base, "opencvi_body_limit", False):
        return

    class LimitedWebRequest(base):  # type: ignore[misc, valid-type]
        opencvi_body_limit = True
        _refused = False
        _received = 0

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            # Twisted would also parse a multipart body into ``request.args`` (which Daphne never
            # reads), holding the whole upload in memory and answering a malformed one with a bare
            # 400 before Django could give its JSON error. Django parses the body itself.
            self._parsePOSTFormSubmission = False

        def _limit(self) -> int:
            kind = (self.requestHeaders.getRawHeaders(b"content-type") or [b""])[0]
            return body_limit(kind.decode("latin-1"))

        def _refuse(self, length: int | None) -> None:
            self._refused = True
            body = json.dumps({"error": too_large_message(length, self._limit())}).encode()
            self.channel.transport.write(
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            self.channel.transport.loseConnection()

        def gotLength(self, length):  # noqa: N802 - Twisted's name
            super().gotLength(length)
            if length is not None and length > self._limit():
                self._refuse(length)

        def handleContentChunk(self, data):  # noqa: N802 - Twisted's name
            if self._refused:
                return
            self._received += len(data)
            if self._received > self._limit():
                self._refuse(None)
                return
            super().handleContentChunk(data)

        def requestReceived(self, command, path, version):  # noqa: N802 - Twisted's name
            if not self._refused:
                super().requestReceived(command, path, version)

    http_protocol.WebRequest = LimitedWebRequest
