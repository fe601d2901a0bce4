"""The knowledge base through the REST API: documents from uploads, URLs and a crawled site,
ingested by the job (run here in-process; tests/knowledge/test_knowledge_live.py runs it in a real
worker), searched with the strategies, scoped to the account, and used by a conversation."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.knowledge import files

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingest_now(monkeypatch):
    """Ingestion runs at once in this process (as the worker would), after the create commits."""
    from knowledge import tasks

    monkeypatch.setattr(tasks.document_ingest, "delay", lambda document_id: tasks.document_ingest.apply(
        args=(document_id,)).get())


class Site:
    """A small website: pages by path."""

    def __init__(self, pages: dict[str, tuple[str, bytes]]) -> None:
        outer = self
        self.hits: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                outer.hits.append(self.path)
                if self.path not in pages:
                    self.send_response(404)
                    self.end_headers()
                    return
                media_type, body = pages[self.path]
                self.send_response(200)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _upload(api, name: str, data: bytes, **fields):
    return api.post("/v2/documents", {"file": SimpleUploadedFile(name, data), **fields}, format="multipart")


def test_an_uploaded_docx_becomes_searchable_passages(api, account, ingest_now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        r = _upload(api, "help.docx", files.docx_bytes(), tags='["support", "shop"]')
    assert r.status_code == 200, r.json()
    doc_id = r.json()["document_id"]
    assert doc_id.startswith("d") and r.json()["status"] == "started"
    got = api.get(f"/v2/documents/{doc_id}").json()
    assert got["status"] == "ready" and got["progress"] == 100, got
    assert got["document_name"] == "help.docx" and got["tags"] == ["support", "shop"]

    from knowledge.retrieval import KnowledgeScope, load_knowledge

    kb = load_knowledge(KnowledgeScope(account_id=account.pk, document_tags=("support",)))
    best = kb.search("How much is the Zorblax blender?")[0]
    assert "417 euros" in best.text and best.heading == "Customer help › Products"
    refund = kb.retrieve("When do I get my money back after a return?")
    assert "14 days" in refund.text.split("\n")[0] and refund.passages[0]["document_id"] == doc_id


def test_a_crawled_site_is_read_within_its_limits(api, ingest_now, django_capture_on_commit_callbacks):
    site = Site({
        "/": ("text/html", files.html_page("Shop", "<p>Welcome to the shop.</p>", ["/hours", "/prices", "https://elsewhere.example/x"])),
        "/hours": ("text/html", files.html_page("Hours", f"<p>{files.FACTS['hours']}</p>", ["/deep"])),
        "/prices": ("text/html", files.html_page("Prices", f"<p>{files.FACTS['zorblax']}</p>")),
        "/deep": ("text/html", files.html_page("Deep", "<p>Two links away.</p>")),
    })
    try:
        with django_capture_on_commit_callbacks(execute=True):
            r = api.post("/v2/documents", {"document_url": site.url + "/", "crawl": {"depth": 1, "max_pages": 3}},
                         format="json")
        assert r.status_code == 200, r.json()
    finally:
        site.close()
    got = api.get(f"/v2/documents/{r.json()['document_id']}").json()
    assert got["status"] == "ready", got
    assert sorted(got["crawled_urls"]) == sorted(site.url + p for p in ("/", "/hours", "/prices"))
    assert "/deep" not in site.hits and got["crawl_count"] == 1  # depth 1: the links of the first page only


@pytest.mark.parametrize("name, data, code", [
    ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "file_format_unsupported"),
    ("empty.txt", b"\n\n", "file_empty"),
])
def test_a_document_that_cannot_be_read_ends_in_error_with_its_code(api, ingest_now, django_capture_on_commit_callbacks,
                                                                   name, data, code):
    with django_capture_on_commit_callbacks(execute=True):
        doc_id = _upload(api, name, data).json()["document_id"]
    got = api.get(f"/v2/documents/{doc_id}").json()
    assert got["status"] == "error" and got["error_code"] == code and got["error_message"]


def test_a_url_that_fails_is_an_invalid_file_url(api, ingest_now, django_capture_on_commit_callbacks):
    site = Site({})
    try:
        with django_capture_on_commit_callbacks(execute=True):
            doc_id = api.post("/v2/documents", {"document_url": site.url + "/missing.pdf"}, format="json").json()["document_id"]
    finally:
        site.close()
    got = api.get(f"/v2/documents/{doc_id}").json()
    assert got["status"] == "error" and got["error_code"] == "invalid_file_url" and "404" in got["error_message"]


def test_bad_requests_are_refused_with_their_field(api):
    r = api.post("/v2/documents", {}, format="json")
    assert r.status_code == 400 and "document_url or a file" in r.json()["error"]
    r = api.post("/v2/documents", {"document_url": "ftp://files.example/a.pdf"}, format="json")
    assert r.status_code == 400 and "document_url" in r.json()["error"]
    r = api.post("/v2/documents", {"document_url": "https://a.example/", "crawl": {"depth": 11}}, format="json")
    assert r.status_code == 400 and "crawl.depth" in r.json()["error"]


def test_rename_retag_delete_and_no_other_accounts_document(api, other_api, ingest_now, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        doc_id = _upload(api, "prices.xlsx", files.xlsx_bytes()).json()["document_id"]
    r = api.patch(f"/v2/documents/{doc_id}", {"document_name": "Price list", "tags": ["prices"]}, format="json")
    assert r.status_code == 200 and r.json()["document_name"] == "Price list" and r.json()["tags"] == ["prices"]
    assert other_api.get(f"/v2/documents/{doc_id}").status_code == 404
    assert other_api.delete(f"/v2/documents/{doc_id}").status_code == 404
    assert api.get("/v2/documents").json()["total_count"] == 1
    assert other_api.get("/v2/documents").json()["total_count"] == 0
    # another account's PAL cannot name it
    r = other_api.post("/v2/pals", {"system_prompt": "x", "document_ids": [doc_id]}, format="json")
    assert r.status_code == 400 and doc_id in r.json()["error"]
    assert api.delete(f"/v2/documents/{doc_id}").status_code == 204
    assert api.get(f"/v2/documents/{doc_id}").status_code == 404
    from knowledge.models import Chunk

    assert not Chunk.objects.filter(document_id=doc_id).exists()
