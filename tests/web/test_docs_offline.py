"""The API docs pages (Redoc at /v2/docs/, Swagger UI at /v2/swagger/) render their operations
in a real browser with the network blocked for every host but the site: their scripts are the
site's own static files (drf-spectacular-sidecar), never a CDN's."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.live import start_site
from tests.web.support import ARTIFACTS, CHROMIUM_ARGS, require_chromium, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    live = start_site(tmp_path_factory.mktemp("docs-site"), env_overrides={"LOG_LEVEL": "WARNING"})
    yield live
    live.stop()


@pytest.mark.parametrize("path, operation_text", [("/v2/docs/", "pals_create"), ("/v2/swagger/", "/v2/pals")])
def test_the_api_docs_render_with_only_the_site_reachable(site, path, operation_text):
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    site_host = urlsplit(site.url).netloc
    blocked: list[str] = []

    def only_the_site(route):
        if urlsplit(route.request.url).netloc == site_host:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_the_site)
            page.goto(site.url + path, wait_until="networkidle", timeout=60_000)
            page.get_by_text(operation_text).first.wait_for(state="attached", timeout=60_000)  # drawn by the script
            shot(page, f"docs-{path.strip('/').replace('/', '-')}")
        finally:
            browser.close()
    assert not blocked, f"the page asked other hosts for {blocked}"
