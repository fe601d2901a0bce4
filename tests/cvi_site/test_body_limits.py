"""Body limits against the real server (Daphne, as `make run` starts it): an announced length
over the limit is refused at once, a chunked body is read (and cut off past the limit) before
Django, and a valid chunked create works."""
from __future__ import annotations

import json
import socket
import time

import pytest

from bench.livesite import start_site

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    live = start_site(tmp_path_factory.mktemp("limits"), env_overrides={"MAX_JSON_BODY_BYTES": "4096",
                                                                       "LOG_LEVEL": "WARNING"})
    yield live
    live.stop()


def _exchange(site, head: str, pieces: list[bytes], *, pause: float = 0.0) -> tuple[int, dict, float]:
    """Send a request (head, then body pieces), read the reply: (status, JSON body, seconds to reply)."""
    port = int(site.url.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        for piece in pieces:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed: the rest is not wanted
            if pause:
                time.sleep(pause)
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.monotonic() - started
    head_part, _, body = data.partition(b"\r\n\r\n")
    status = int(head_part.split()[1])
    return status, json.loads(body or b"{}"), elapsed


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def _chunked(body: bytes, size: int = 1000) -> list[bytes]:
    parts = [body[i: i + size] for i in range(0, len(body), size)]
    return [f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts] + [b"0\r\n\r\n"]


def test_an_announced_length_over_the_limit_is_refused_at_once(site):
    head = (f"POST /v2/pals HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {site.api_key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n")
    status, body, elapsed = _exchange(site, head, [b"{}"])
    assert status == 413 and "the limit is 4096 bytes" in body["error"]
    assert elapsed < 10  # answered without waiting for a body that never comes


def test_a_chunked_create_is_read_and_works(site):
    payload = json.dumps({"pal_name": "Chunked", "system_prompt": "You are brief."}).encode()
    head = (f"POST /v2/pals HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {site.api_key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    status, body, _ = _exchange(site, head, _chunked(payload, 16))
    assert status == 200, body
    assert body["pal_name"] == "Chunked" and body["system_prompt"] == "You are brief."


def test_a_chunked_body_past_the_limit_is_cut_off_before_it_ends(site):
    head = (f"POST /v2/pals HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {site.api_key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = b'{"system_prompt": "' + b"x" * 200_000 + b'"}'
    status, reply, _ = _exchange(site, head, _chunked(body), pause=0.001)
    assert status == 413 and "more than 4096 bytes" in reply["error"]


@pytest.mark.parametrize("body", [
    b"--b\r\nContent-Disposition: form-data; name=\"face_name\"\r\n\r\nx",  # cut off, no closing boundary
    b"not a multipart body at all",
])
def test_a_malformed_upload_gets_the_documented_json_error(site, body):
    """Twisted would parse a multipart body itself and answer a broken one with a bare 400 (holding
    the whole upload in memory to do so); Django reads it instead and says what is wrong in JSON."""
    head = (f"POST /v2/faces HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {site.api_key}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    status, reply, _ = _exchange(site, head, [body])
    assert status == 400 and isinstance(reply.get("error"), str) and reply["error"], reply
