from __future__ import annotations

import pytest


@pytest.mark.django_db
def test_healthz_reports_every_part(client):
    response = client.get("/healthz")
    body = response.json()
    assert set(body["checks"]) >= {"database", "channel_layer", "broker"}
    assert any(name.startswith("engine:") for name in body["checks"])
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True
    expected = 200 if all(c["ok"] for c in body["checks"].values() if c["required"]) else 503
    assert response.status_code == expected


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_is_down(client, settings, monkeypatch):
    from cvi_site import health

    def broken():
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(health, "_check_broker", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] == {**body["checks"]["broker"], "ok": False}
    assert "broker down" in body["checks"]["broker"]["detail"]
