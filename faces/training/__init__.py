"""Face training: pure functions from a video or a photo to render assets (no Django).

The Celery task (faces.tasks) calls these through faces.training_job:

- ``train_from_video(path, out_dir, *, progress=None, consent=None) -> AssetsInfo``
- ``train_from_image(path, out_dir, *, progress=None) -> AssetsInfo``
- ``build_stock_face(out_dir) -> AssetsInfo`` (scikit-image's astronaut portrait)
- ``load_assets(out_dir) -> FaceAssets`` (what ``faces.renderer`` renders; any version: the format
  is ``faces.assets``, version 1 folders are brought up to date by ``faces.training.legacy``)

Bad input raises ``TrainingError(code, message)`` with the documented error codes.
Benchmarks: ``bench.face`` (``bench_render``, ``bench_training``), outside the product's runtime.
"""
from faces.assets import AssetsInfo, FaceAssets
from faces.training.errors import TrainingError
from faces.training.legacy import load_assets
from faces.training.photo import train_from_image
from faces.training.stock import build_stock_face


def train_from_video(path, out_dir, *, progress=None, consent=None) -> AssetsInfo:
    from faces.training.video import train_from_video as _train

    return _train(path, out_dir, progress=progress, consent=consent)



__all__ = ["AssetsInfo", "FaceAssets", "TrainingError", "build_stock_face", "load_assets", "train_from_image",
           "train_from_video"]
