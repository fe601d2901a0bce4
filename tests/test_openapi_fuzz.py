"""Property-based fuzzing of the running site with Schemathesis, driven by the generated schema:
no 5xx on any endpoint, and every response conforms to the schema (status, content type, body)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live import ROOT, start_site

pytestmark = pytest.mark.slow

ALL_CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = start_site(tmp_path_factory.mktemp("fuzz-site"))
    yield site
    site.stop()


def _schemathesis(site, report: Path, checks: str, selection: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", site.url + "/v2/openapi.yaml",
         "--url", site.url, "-H", f"x-api-key: {site.api_key}", "--checks", checks,
         "--max-examples", "25", "--seed", "1", "--workers", "1", "--request-timeout", "20",
         "--phases", "examples,coverage,fuzzing", "--suppress-health-check", "all",
         "--report", "junit", "--report-dir", str(report), *selection],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )


def test_schema_is_served_and_documents_the_api_key(site):
    schema = httpx.get(site.url + "/v2/openapi.yaml", timeout=10).text
    assert "/v2/conversations" in schema and "/v2/personas" in schema and "/v2/replicas" in schema
    assert "x-api-key" in schema


def test_fuzz_every_endpoint(site, tmp_path):
    # Uploads included: a malformed multipart body reaches Django (cvi_site/bodylimit.py), which
    # answers with the documented JSON error like any other bad request.
    proc = _schemathesis(site, tmp_path / "all", ALL_CHECKS, [])
    assert proc.returncode == 0, proc.stdout[-20000:] + proc.stderr[-2000:]
