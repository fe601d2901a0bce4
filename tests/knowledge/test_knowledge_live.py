"""The knowledge base on the real site (Daphne, a Celery worker on Redis, headless Chromium): a
document added on the PAL Maker's Knowledge page is read by the worker while the page shows its
progress (pushed over a WebSocket), and the API then lists it ready."""
from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.knowledge import files
from tests.live import start_site
from tests.web.support import CHROMIUM_ARGS, require_chromium, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

USERNAME, PASSWORD = "kim", "knowledge-page-password-1"


@pytest.fixture(scope="module")
def site(tmp_path_factory, redis_url):
    live = start_site(tmp_path_factory.mktemp("knowledge-site"), worker=True,
                      env_overrides={"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING"})
    try:
        live.api_key = live.manage("create_api_key", USERNAME, "--create-account", "--password",
                                   env={"OPENCVI_PASSWORD": PASSWORD}).strip()
        yield live
    finally:
        live.stop()


def test_a_document_added_on_the_knowledge_page_is_read_by_the_worker(site, tmp_path):
    chromium = require_chromium()
    from playwright.sync_api import expect, sync_playwright

    path = tmp_path / "help.docx"
    path.write_bytes(files.docx_bytes())
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(base_url=site.url).new_page()
        page.set_default_timeout(30_000)
        try:
            page.goto("/login/")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("link", name="Knowledge").click()
            page.get_by_label("A file").set_input_files(str(path))
            page.get_by_label("Tags").fill("support, shop")
            page.get_by_role("button", name="Add").click()
            expect(page.locator(".flash-success")).to_contain_text("Reading help.docx")
            row = page.locator("#documents tr", has_text="help.docx")
            expect(page.locator("#documents")).to_have_attribute("data-ws", "open")
            expect(row.locator("[data-document-status]")).to_have_text("ready", timeout=180_000)  # pushed, no reload
            expect(row.locator("[data-document-progress]")).to_be_hidden()
            shot(page, "knowledge-page", full_page=True)
            # the PAL editor's picker puts the document on a PAL
            page.goto("/pals/new/")
            page.get_by_label("Name", exact=True).fill("Help desk")
            page.get_by_label("System prompt").fill("You answer questions about the shop.")
            page.locator("[data-doc-picker]").get_by_label("help.docx").check()
            shot(page, "pal-document-picker", full_page=True)
            page.get_by_role("button", name="Create PAL").first.click()
            expect(page.locator(".flash-success")).to_be_visible()
        except Exception:
            shot(page, "knowledge-failure", full_page=True)
            raise
        finally:
            browser.close()
    listed = httpx.get(site.url + "/v2/documents", headers={"x-api-key": site.api_key}, timeout=30).json()
    mine = [d for d in listed["data"] if d["document_name"] == "help.docx"]  # the site is shared by this module
    assert len(mine) == 1, listed
    doc = mine[0]
    assert doc["status"] == "ready" and doc["progress"] == 100 and doc["tags"] == ["support", "shop"], (doc, site.log_tail())
    pals = httpx.get(site.url + "/v2/pals?pal_type=user", headers={"x-api-key": site.api_key}, timeout=30).json()
    assert [p["document_ids"] for p in pals["data"] if p["pal_name"] == "Help desk"] == [[doc["document_id"]]]


QUESTIONS = ["How much does the Zorblax blender cost?", "When are refunds paid?", "When does the Lisbon shop open?"]
SEARCH = ("import json; from knowledge.retrieval import KnowledgeScope, load_knowledge; "
          "from knowledge.models import Document; d = Document.objects.get(pk={doc!r}); "
          "kb = load_knowledge(KnowledgeScope(account_id=d.account_id, document_ids=(d.pk,))); "
          "print(json.dumps([[p.text for p in kb.search(q)] for q in {questions!r}]))")


@pytest.mark.django_db
def test_pdf_html_and_bad_documents_through_the_worker_and_the_same_answers_on_both_databases(site, tmp_path, settings):
    """The documented statuses and error codes, with the real worker; the same passages come back
    for the same questions here (SQLite) as on PostgreSQL (the suite's database)."""
    from tests.knowledge.test_documents import Site

    api = httpx.Client(base_url=site.url, headers={"x-api-key": site.api_key}, timeout=60)
    big = b"x" * (50 * 1024 * 1024 + 1)
    pages = Site({"/shop.html": ("text/html", files.html_page("Shop", f"<h2>Hours</h2><p>{files.FACTS['hours']}</p>")),
                  "/huge.txt": ("text/plain", big)})
    try:
        created = {
            "pdf": api.post("/v2/documents", files={"file": ("manual.pdf", files.pdf_bytes(
                [files.FACTS["zorblax"], files.FACTS["refund"]]), "application/pdf")}),
            "html": api.post("/v2/documents", json={"document_url": pages.url + "/shop.html", "tags": ["shop"]}),
            "empty": api.post("/v2/documents", files={"file": ("empty.txt", b"  \n", "text/plain")}),
            "image": api.post("/v2/documents", files={"file": ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")}),
            "huge": api.post("/v2/documents", json={"document_url": pages.url + "/huge.txt"}),
        }
        assert all(r.status_code == 200 for r in created.values()), {k: r.text for k, r in created.items()}
        ids = {k: r.json()["document_id"] for k, r in created.items()}
        deadline = time.monotonic() + 300
        states: dict = {}
        while time.monotonic() < deadline:
            states = {k: api.get(f"/v2/documents/{i}").json() for k, i in ids.items()}
            if all(s["status"] in ("ready", "error") for s in states.values()):
                break
            time.sleep(0.5)
    finally:
        pages.close()
    assert {k: (s["status"], s["error_code"]) for k, s in states.items()} == {
        "pdf": ("ready", None), "html": ("ready", None), "empty": ("error", "file_empty"),
        "image": ("error", "file_format_unsupported"), "huge": ("error", "file_size_too_large")}, (states, site.log_tail())

    here = json.loads(site.manage("shell", "-c", SEARCH.format(doc=ids["pdf"], questions=QUESTIONS)).splitlines()[-1])
    assert "417 euros" in here[0][0] and "14 days" in here[1][0]
    settings.DATA_DIR = tmp_path
    assert _on_postgres(files.pdf_bytes([files.FACTS["zorblax"], files.FACTS["refund"]])) == here


def _on_postgres(pdf: bytes) -> list[list[str]]:
    """The same document read and searched in this process, on the suite's database."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the suite's database is not PostgreSQL (CI runs it on PostgreSQL)")
    from cvi_site.services import account_create
    from knowledge.models import Document
    from knowledge.retrieval import KnowledgeScope, load_knowledge
    from knowledge.services import document_dir, document_ingest

    account = account_create(username="pg-compare")
    doc = Document.objects.create(account=account, document_name="manual.pdf", file_name="manual.pdf")
    document_dir(doc).mkdir(parents=True, exist_ok=True)
    (document_dir(doc) / "manual.pdf").write_bytes(pdf)
    assert document_ingest(document_id=doc.pk).status == "ready"
    kb = load_knowledge(KnowledgeScope(account_id=account.pk, document_ids=(doc.pk,)))
    return [[p.text for p in kb.search(q)] for q in QUESTIONS]
