"""The benchmarks run what a live call runs: the same PipelineConfig, built by the same code."""
from __future__ import annotations

import pytest

from bench.live import live_session_config
from conversations.live.config import load_session_config
from conversations.services import conversation_create


@pytest.mark.django_db
def test_bench_pipeline_and_a_live_session_build_the_same_config(api, account) -> None:
    from faces.services import face_stock_ensure

    list(face_stock_ensure())
    layers = {"llm": {"max_tokens": 50, "temperature": 0.3},
              "conversational_flow": {"turn_taking_patience": "low", "turn_detection_model": "sparrow-1"},
              "stt": {"hotwords": "Romeo, Juliet"}}
    r = api.post("/v2/pals", {"pal_name": "Bench", "system_prompt": "You are a test.", "layers": layers,
                              "default_replica_id": "rstock000001"}, format="json")
    assert r.status_code in (200, 201), r.content
    pal_id = r.json()["persona_id"] if "persona_id" in r.json() else r.json()["pal_id"]

    live = conversation_create(account=account, data={"pal_id": pal_id})
    live_config = load_session_config(live.pk)
    bench_config = live_session_config(pal_id=pal_id)

    assert bench_config.pipeline == live_config.pipeline
    assert bench_config.pipeline.llm.max_tokens == 50 and bench_config.pipeline.llm.temperature == 0.3
    assert bench_config.pipeline.flow.smart_turn and bench_config.pipeline.flow.waits.threshold == 0.35
    # the stock PAL too (run in the benchmark account)
    assert live_session_config(pal_id="pstock000001").pipeline == load_session_config(
        conversation_create(account=account, data={"pal_id": "pstock000001"}).pk).pipeline
