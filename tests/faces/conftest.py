"""Faces fixtures built once per test session: the stock face's assets, speech from the
embedded TTS, and the synthetic training videos (good, two faces, no face, 5 fps, garbage)."""
from __future__ import annotations

from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "faces"


@pytest.fixture(scope="session")
def stock_dir(tmp_path_factory) -> Path:
    from faces.training import build_stock_face

    out = tmp_path_factory.mktemp("stock") / "face"
    build_stock_face(out)
    return out


@pytest.fixture(scope="session")
def stock_assets(stock_dir):
    from faces.training import load_assets

    return load_assets(stock_dir)


@pytest.fixture(scope="session")
def reply_chunks():
    """A spoken reply of three phrases (eSpeak NG, with word and phoneme timings)."""
    from bench.face import reply_chunks as speak

    chunks = speak("Hello! It is wonderful to see you. How are you today?")
    assert len(chunks) >= 2 and all(c.phonemes for c in chunks)
    return chunks


@pytest.fixture(scope="session")
def training_videos(tmp_path_factory, stock_assets) -> dict[str, Path]:
    from bench.face_video import make_variant_videos

    return make_variant_videos(tmp_path_factory.mktemp("videos"), stock_assets)


@pytest.fixture(scope="session")
def video_face(tmp_path_factory, training_videos) -> dict:
    """The good synthetic video trained once: ``dir``, ``info`` and the ``progress`` seen."""
    from faces.training import train_from_video

    out = tmp_path_factory.mktemp("video-face") / "face"
    progress: list[int] = []
    info = train_from_video(training_videos["good"], out, progress=progress.append)
    return {"dir": out, "info": info, "progress": progress}


@pytest.fixture(scope="session")
def video_face_dir(video_face) -> Path:
    return video_face["dir"]
