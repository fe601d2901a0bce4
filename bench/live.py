"""Shared bits of the benchmark commands: espeak-ng utterances, percentiles, JSON output."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_UTTERANCES = [
    "Hello, how are you today?",
    "What is the capital of France?",
    "Can you recommend a good book to read?",
    "What's the weather usually like in spring?",
    "Tell me one fun fact about octopuses.",
    "How many minutes are there in a day?",
    "What should I cook for dinner tonight?",
    "Which planet is closest to the sun?",
    "Do you have any tips for sleeping better?",
    "What is your favourite colour?",
]
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en"]


def load_utterances(path: str | None) -> list[str]:
    if not path:
        return list(DEFAULT_UTTERANCES)
    lines = [line.strip() for line in Path(path).read_text().splitlines()]
    found = [line for line in lines if line]
    if not found:
        raise ValueError(f"{path} has no utterances (one sentence per line)")
    return found


def speech(text: str, *, rate: int, voice: str = "en-us") -> np.ndarray:
    """eSpeak NG speech as int16 mono at ``rate``."""
    from conversations.realtime.audio import StreamResampler
    from conversations.realtime.engines.base import VoiceOptions
    from conversations.realtime.engines.registry import get_tts

    chunks = get_tts().synthesize_blocking(text, voice=VoiceOptions(voice=voice, language="en"))
    pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768
    out = StreamResampler(chunks[0].sample_rate, rate).process(pcm) if chunks[0].sample_rate != rate else pcm
    return (np.clip(out, -1, 1) * 32767).astype(np.int16)


def live_session_config(*, pal_id: str, language: str = "english"):  # -> session.SessionConfig
    """The SessionConfig a live call of this PAL gets: a conversation is created through the
    API's own service (``test_mode``: it is stored ended and holds no slot) and read back by
    ``live.config.load_session_config``, the function a live session uses."""
    from conversations.api.serializers import conversation_input
    from conversations.live.config import load_session_config
    from conversations.services import conversation_create
    from cvi_site.models import Account
    from cvi_site.services import account_create

    from pals.models import Pal

    pal = Pal.objects.filter(pk=pal_id).first()
    if pal is None:
        raise ValueError(f"no PAL {pal_id!r}")
    # a PAL of an account is run in that account, as its calls are; the stock PAL in "bench"
    account = pal.account or (Account.objects.filter(username=BENCH_ACCOUNT).first()
                              or account_create(username=BENCH_ACCOUNT))
    conv = conversation_create(account=account, data=conversation_input({
        "pal_id": pal_id, "test_mode": True, "conversation_name": "benchmark",
        "properties": {"language": language}}))
    config = load_session_config(conv.pk)
    assert config is not None
    return config


#: the account benchmarks create their (test-mode) conversations in
BENCH_ACCOUNT = "bench"


def stats(values: list[float]) -> dict[str, Any]:
    clean = [v for v in values if v is not None]
    if not clean:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    arr = np.asarray(clean, dtype=float)
    return {"p50": round(float(np.percentile(arr, 50)), 1), "p95": round(float(np.percentile(arr, 95)), 1),
            "max": round(float(arr.max()), 1), "n": len(clean)}


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=2))
