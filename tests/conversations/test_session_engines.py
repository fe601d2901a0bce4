"""What a session builds from its conversation: the PAL's engines (a remote TTS included) and
the recording flag, read once from the database."""
from __future__ import annotations

import asyncio

import pytest

from conversations.services import conversation_create
from conversations.live.config import load_session_config
from conversations.realtime.frontdoor import build_engines
from tests.factories import make_face, make_pal

pytestmark = pytest.mark.django_db


def test_a_pal_with_a_remote_tts_gets_its_own_engine_with_its_settings(account):
    from conversations.realtime.engines.cloud_tts import ElevenLabsTTS

    pal = make_pal(account=account, layers={"tts": {
        "tts_engine": "elevenlabs", "api_key": "el-key", "external_voice_id": "voice-1",
        "tts_model_name": "eleven_flash_v2_5", "base_url": "http://127.0.0.1:9",
        "voice_settings": {"speed": 1.2, "stability": 0.3}}})
    conv = conversation_create(account=account, data={"pal_id": pal.id, "face_id": make_face(account=account).id,
                                                      "properties": {"enable_recording": True}})
    config = load_session_config(conv.id)
    assert config.enable_recording is True and config.pipeline.tts.speed == 1.2
    engines = build_engines(config.pipeline)
    tts = engines.tts
    assert isinstance(tts, ElevenLabsTTS)
    assert (tts.api_key, tts.voice_id, tts.model, tts.base_url) == ("el-key", "voice-1", "eleven_flash_v2_5",
                                                                    "http://127.0.0.1:9")
    assert tts.settings == {"stability": 0.3}  # speed travels with each phrase's VoiceOptions
    asyncio.run(tts.aclose())


def test_the_stock_pal_keeps_the_shared_embedded_voice(account):
    from conversations.realtime.engines import registry

    conv = conversation_create(account=account, data={"pal_id": "pstock000001", "face_id": make_face(account=account).id})
    config = load_session_config(conv.id)
    assert config.enable_recording is False
    assert build_engines(config.pipeline).tts is registry.get_tts()
