"""The knowledge base on the real site (Daphne, a Celery worker on Redis, headless Chromium): a
document added on the PAL Maker's Knowledge page is read by the worker while the page shows its
progress (pushed over a WebSocket), and the API then lists it ready."""
from __future__ import annotations

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
        except Exception:
            shot(page, "knowledge-failure", full_page=True)
            raise
        finally:
            browser.close()
    listed = httpx.get(site.url + "/v2/documents", headers={"x-api-key": site.api_key}, timeout=30).json()
    assert listed["total_count"] == 1, listed
    doc = listed["data"][0]
    assert doc["status"] == "ready" and doc["progress"] == 100 and doc["tags"] == ["support", "shop"], (doc, site.log_tail())
