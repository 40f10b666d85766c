"""Image grids of binary samples, drawn with numpy and matplotlib (no torchvision)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def tile(images: np.ndarray, rows: int, cols: int, pad: int = 1) -> np.ndarray:
    """Tile ``rows*cols`` images of shape (n, h, w) into one array with ``pad`` pixels of gap."""
    n, h, w = images.shape
    if n > rows * cols:
        raise ValueError(f"{n} images do not fit a {rows}x{cols} grid")
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 0.5, dtype=np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = image
    return grid


def save_grid(samples: np.ndarray, path: str | Path, image_shape: tuple[int, int] | None = None, title: str = "") -> Path:
    """Save samples (n, D) as a grid image: as pictures when ``image_shape`` is given, else as a bitmap of rows."""
    from matplotlib.figure import Figure

    samples = np.asarray(samples, dtype=np.float32)
    n = samples.shape[0]
    if image_shape is not None:
        cols = math.ceil(math.sqrt(n))
        picture = tile(samples.reshape(n, *image_shape), math.ceil(n / cols), cols)
    else:
        picture = samples  # one row per sample
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 6 * picture.shape[0] / picture.shape[1]) if image_shape else (8, 4))
    ax = fig.subplots()
    ax.imshow(
        picture,
        cmap="gray_r" if image_shape is None else "gray",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        aspect="auto" if image_shape is None else "equal",
    )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path
