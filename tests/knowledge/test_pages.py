"""The PAL Maker's Knowledge page and memory store pages (Django's test client; the live flow
with the worker and the browser is test_knowledge_live.py)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client, account):
    client.force_login(account)
    return client


def test_the_page_asks_for_a_file_or_a_url(web):
    r = web.post("/knowledge/", {"document_name": "nothing"})
    assert r.status_code == 400 and "Choose a file or give a URL" in r.content.decode()
    r = web.post("/knowledge/", {"document_url": "ftp://files.example/a.pdf"})
    assert r.status_code == 400


def test_a_memory_store_page_forgets_one_fact_or_all(web, account, other_account):
    from knowledge.models import Memory

    def remember(owner, text):
        return Memory.objects.create(account=owner, store="guest-7", text=text, embedding=b"\0" * 8, embedding_model="m")

    tea, cats = remember(account, "The person likes tea."), remember(account, "The person has two cats.")
    theirs = remember(other_account, "Someone else's fact.")
    page = web.get("/knowledge/memories/guest-7/").content.decode()
    assert "likes tea" in page and "two cats" in page and "Someone else" not in page
    assert "guest-7" in web.get("/knowledge/").content.decode()
    web.post("/knowledge/memories/guest-7/", {"memory_id": tea.pk})
    assert list(Memory.objects.filter(account=account).values_list("pk", flat=True)) == [cats.pk]
    web.post("/knowledge/memories/guest-7/", {})
    assert not Memory.objects.filter(account=account).exists() and Memory.objects.filter(pk=theirs.pk).exists()
