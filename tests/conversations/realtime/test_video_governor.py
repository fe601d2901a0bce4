"""Degrade, don't collapse: the process's video governor thins the face video when frames are
late, and gives the frame rate back once the box keeps up; audio is never thinned."""
from __future__ import annotations

import asyncio
import time
import numpy as np

from conversations.realtime.media import VIDEO_FPS, MediaPump, VideoGovernor


def test_pressure_lowers_the_frame_rate_step_by_step_and_calm_restores_it() -> None:
    gov = VideoGovernor(calm_windows=3)
    assert gov.fps == VIDEO_FPS
    gov.decide(True)
    assert gov.stride == 2 and gov.fps == VIDEO_FPS / 2
    gov.decide(True)
    gov.decide(True)
    assert gov.stride == VideoGovernor.MAX_STRIDE  # never below ~8 fps
    gov.decide(False)
    gov.decide(False)
    assert gov.stride == 3  # not before calm_windows quiet windows
    gov.decide(False)
    assert gov.stride == 2
    gov.decide(True)  # pressure again resets the calm count
    for _ in range(3):
        gov.decide(False)
    assert gov.stride == 2


def test_late_frames_count_as_pressure() -> None:
    gov = VideoGovernor(late_ratio=0.05)
    class Pump:  # what the governor reads of a pump
        video_frames = 0
        late_video_frames = 0

    pump = Pump()
    gov._pumps.add(pump)
    pump.video_frames, pump.late_video_frames = 50, 1  # 2 % late
    assert gov._pressure() is False
    pump.video_frames, pump.late_video_frames = 90, 11  # 40 more frames, 10 more late
    assert gov._pressure() is True


def test_a_pump_renders_at_the_governors_rate_and_audio_stays_whole() -> None:
    async def run(stride: int) -> tuple[int, int, float]:
        gov = VideoGovernor(window_s=3600)
        gov.stride = stride
        renders = []
        pump = MediaPump(lambda n: np.zeros(n, np.int16), lambda t_ms: renders.append(t_ms) or
                         np.zeros((64, 64, 3), np.uint8), governor=gov)
        pump.add_tracks()
        started = time.monotonic()
        await asyncio.sleep(1.2)
        await pump.close()
        return len(renders), pump.audio_frames, time.monotonic() - started

    for stride in (1, 2):
        renders, audio_frames, elapsed = asyncio.run(asyncio.wait_for(run(stride), 30))
        # never more frames than the thinned schedule allows (a loaded machine only gives fewer)
        assert 1 <= renders <= VIDEO_FPS / stride * elapsed + 2, (stride, renders, elapsed)
        # audio is paced on the same clock whatever the video does: 50 frames a second
        assert audio_frames >= 0.8 * 50 * 1.2


def test_an_idle_face_renders_at_half_rate_only_while_other_calls_share_the_process() -> None:
    gov = VideoGovernor()

    class Pump:
        video_frames = 0
        late_video_frames = 0

    gov._pumps.add(Pump())
    assert gov.stride_for(False) == 1  # one call: every face at full rate
    gov._pumps.add(Pump())
    assert gov.stride_for(False) == 2 and gov.stride_for(True) == 1  # lip-sync keeps 25 fps
    gov.stride = 3
    assert gov.stride_for(True) == 3 and gov.stride_for(False) == 3  # pressure thins everyone
