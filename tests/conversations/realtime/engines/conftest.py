"""Fixtures for the engine tests: the real engines (loaded once per test session through the
registry, as the product does) and speech made by our eSpeak NG engine."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import resample

from conversations.realtime.engines import registry
from conversations.realtime.engines.base import STT_SAMPLE_RATE, VoiceOptions
from conversations.realtime.engines.models import prepare_models


@pytest.fixture(scope="session")
def model_paths() -> dict[str, Path]:
    return prepare_models()


@pytest.fixture(scope="session")
def tts():
    return registry.get_tts()


@pytest.fixture(scope="session")
def speak(tts) -> Callable[..., np.ndarray]:
    """Text -> float32 mono 16 kHz speech from eSpeak NG (what the mic path delivers)."""

    def _speak(text: str, voice: str = "en-us", speed: float = 1.0) -> np.ndarray:
        chunks = tts.synthesize_blocking(text, voice=VoiceOptions(voice=voice, speed=speed))
        pcm = np.concatenate([c.pcm for c in chunks]).astype(np.float32) / 32768.0
        return resample(pcm, tts.sample_rate, STT_SAMPLE_RATE)

    return _speak


@pytest.fixture(scope="session")
def vad(model_paths):
    return registry.get_vad()


@pytest.fixture(scope="session")
def stt(model_paths):
    return registry.get_stt()


@pytest.fixture(scope="session")
def llm(model_paths):
    return registry.get_llm()
