"""The call recorder: what the pump sends (reply audio, face video) plus the microphone, in one
file that players open, in sync, encoded off the event loop."""
from __future__ import annotations

import av
import numpy as np

from conversations.realtime.recorder import RATE, CallRecorder

FRAME = 960  # the pump's 20 ms at 48 kHz


def tone(freq: float, n: int, start: int = 0, level: float = 0.3) -> np.ndarray:
    t = (np.arange(n) + start) / RATE
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


def decode(path):
    with av.open(str(path)) as c:
        streams = {s.type: s.codec_context.name for s in c.streams}
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    video_frames = []
    if "video" in streams:
        with av.open(str(path)) as c:
            video_frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return streams, audio, video_frames


def power_at(audio: np.ndarray, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    return float(spectrum[np.argmin(np.abs(freqs - freq))])


def test_records_reply_audio_with_the_microphone_mixed_in_and_the_face_video(tmp_path):
    rec = CallRecorder(tmp_path / "c1.mp4", video_size=(128, 128))
    rec.start()
    for i in range(150):  # 3 s
        if i % 2 == 0:  # the pump renders a video frame every other audio frame
            shade = np.full((128, 128, 3), 40 + i, np.uint8)
            rec.add_video(shade, i // 2)
        if i >= 50:  # the person speaks from 1 s on: 16 kHz mic audio, a 440 Hz tone
            mic = np.sin(2 * np.pi * 440 * (np.arange(320) + i * 320) / 16_000) * 0.3 * 32767
            rec.add_user_audio(mic.astype(np.int16), 16_000)
        rec.add_reply_audio(tone(1000, FRAME, start=i * FRAME) if i < 100 else np.zeros(FRAME, np.int16), i)
    result = rec.close()
    assert result is not None and result.path == tmp_path / "c1.mp4" and result.video
    assert abs(result.duration_s - 3.0) < 0.05
    assert not (tmp_path / "c1.mp4.part").exists()
    streams, audio, frames = decode(result.path)
    assert streams == {"audio": "aac", "video": "h264"}
    assert 70 <= len(frames) <= 76 and frames[0].shape == (128, 128, 3)
    assert frames[-1].mean() > frames[0].mean() + 50  # in order: the shade grows
    first, middle, last = audio[RATE // 4: RATE - RATE // 4], audio[RATE + RATE // 4: 2 * RATE - RATE // 4], audio[-RATE // 2:]
    # 0-1 s: the reply only; 1-2 s: reply and microphone; 2-3 s: the microphone only
    assert power_at(first, 1000) > 20 * power_at(first, 440)
    assert power_at(middle, 1000) > 0 and power_at(middle, 440) > 0.2 * power_at(middle, 1000)
    assert power_at(last, 440) > 20 * power_at(last, 1000)


def test_audio_only_calls_record_m4a(tmp_path):
    rec = CallRecorder(tmp_path / "c2.m4a")
    rec.start()
    for i in range(50):
        rec.add_video(np.zeros((8, 8, 3), np.uint8), i)  # ignored: no video in this recording
        rec.add_reply_audio(tone(500, FRAME, start=i * FRAME), i)
    result = rec.close()
    assert result is not None and not result.video and abs(result.duration_s - 1.0) < 0.05
    streams, audio, _ = decode(result.path)
    assert streams == {"audio": "aac"} and len(audio) >= 0.9 * RATE


def test_nothing_recorded_leaves_no_file(tmp_path):
    rec = CallRecorder(tmp_path / "c3.mp4", video_size=(64, 64))
    rec.start()
    assert rec.close() is None
    assert list(tmp_path.iterdir()) == []


def test_an_encoder_failure_is_reported_and_leaves_no_file(tmp_path):
    rec = CallRecorder(tmp_path / "c4.mp4", video_size=(64, 64))
    rec.start()
    rec.add_reply_audio(tone(500, FRAME), 0)
    rec.add_video(np.zeros((10, 10), np.uint8), 0)  # not an RGB frame
    rec.add_reply_audio(tone(500, FRAME), 1)
    assert rec.close() is None
    assert rec.error
    assert list(tmp_path.iterdir()) == []


def test_a_slow_encoder_loses_video_frames_before_any_sound(tmp_path, monkeypatch):
    import conversations.realtime.recorder as recorder

    monkeypatch.setattr(recorder, "MAX_QUEUE", 40)
    monkeypatch.setattr(recorder, "VIDEO_QUEUE_LIMIT", 20)
    rec = CallRecorder(tmp_path / "c5.mp4", video_size=(64, 64))
    # not started yet: nothing is encoded, so the queue only fills
    for i in range(30):
        rec.add_reply_audio(tone(500, FRAME, start=i * FRAME), i)
        rec.add_video(np.zeros((64, 64, 3), np.uint8), i)
    assert rec._queue.qsize() == 40 and rec.dropped_frames == 20
    kinds = [item[0] for item in list(rec._queue.queue)]
    assert kinds.count("video") == 10 and kinds.count("audio") == 30
    rec.start()
    result = rec.close()
    assert result is not None and abs(result.duration_s - 30 * FRAME / RATE) < 0.01


def test_two_people_talking_at_once_are_mixed_not_queued(tmp_path):
    rec = CallRecorder(tmp_path / "c6.m4a")
    rec.start()
    for i in range(50):  # 1 s: both speak the whole time, at 48 kHz and at 16 kHz
        a = np.sin(2 * np.pi * 300 * (np.arange(FRAME) + i * FRAME) / RATE) * 0.2 * 32767
        b = np.sin(2 * np.pi * 700 * (np.arange(320) + i * 320) / 16_000) * 0.2 * 32767
        rec.add_user_audio(a.astype(np.int16), RATE, source="ann")
        rec.add_user_audio(b.astype(np.int16), 16_000, source="bob")
        rec.add_reply_audio(np.zeros(FRAME, np.int16), i)
    result = rec.close()
    assert result is not None and abs(result.duration_s - 1.0) < 0.05  # not 2 s of one after the other
    _, audio, _ = decode(result.path)
    middle = audio[RATE // 4: 3 * RATE // 4]
    assert power_at(middle, 300) > 0.3 * power_at(middle, 700) and power_at(middle, 700) > 0.3 * power_at(middle, 300)
