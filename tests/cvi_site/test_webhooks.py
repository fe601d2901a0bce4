"""Webhooks are signed: the receiver can check the body with the shared secret."""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Receiver(BaseHTTPRequestHandler):
    got: list = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.got.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()


def test_a_webhook_carries_the_hmac_of_its_body(settings):
    from cvi_site.webhooks import SIGNATURE_HEADER, webhook_deliver

    settings.WEBHOOK_SECRET = "a-shared-secret-of-the-receiver"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        status = webhook_deliver.apply(args=(url, {"event_type": "application.recording_ready", "n": 1})).get()
    finally:
        server.shutdown()
    assert status == 204
    headers, body = _Receiver.got[-1]
    expected = "sha256=" + hmac.new(b"a-shared-secret-of-the-receiver", body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE_HEADER] == expected
    assert json.loads(body) == {"event_type": "application.recording_ready", "n": 1}
