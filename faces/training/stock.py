"""The stock face: scikit-image's astronaut portrait (Eileen Collins, NASA, public domain),
the one real human portrait that ships inside a package we install, trained as a photo face."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from faces.assets import AssetsInfo
from faces.training.photo import train_from_array


def stock_portrait() -> np.ndarray:
    """The astronaut portrait, RGB 512×512 uint8."""
    from skimage import data

    return data.astronaut()


def build_stock_face(out_dir: str | Path, *, progress: Callable[[int], None] | None = None) -> AssetsInfo:
    """Train the stock face into ``out_dir`` (about 3 s on two cores)."""
    info = train_from_array(stock_portrait(), out_dir, progress=progress)
    return info
