"""Completions of test images: the bottom half drawn exactly from ``p(bottom | top)``, for a model whose mask 0
models the top half first (a raster ordering), with the conditional NLL of the true bottom halves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError
from .experiment_record import CompletionFigure
from .figures import save_completions
from .model.conditional import complete, conditional_log_prob, observed_first
from .model.made import MADE
from .training.data import BinaryDataset
from .training.evaluate import plus_minus, standard_error


def top_half(image_shape: tuple[int, int]) -> torch.Tensor:
    """The observed inputs of a completion: the pixels of the top half of the image (row-major)."""
    height, width = image_shape
    return (torch.arange(height * width) // width) < height // 2


def completable(model: MADE, data: BinaryDataset, mask: int = 0) -> bool:
    """Whether ``data`` are images and mask ``mask`` of ``model`` models their top half first."""
    if data.image_shape is None:
        return False
    try:
        observed_first(model, top_half(data.image_shape), mask)
    except ConfigError:
        return False
    return True


def one_per_class(data: BinaryDataset, n: int = 10) -> tuple[np.ndarray, list[str]]:
    """Test rows to complete: the middle example of each class when the test labels are known, else the first ``n``."""
    labels = data.extra.get("test_labels")
    if labels is None or len(labels) != len(data.test):
        rows = np.arange(min(n, len(data.test)))
        return rows, [f"test #{r}" for r in rows]
    classes = np.unique(labels)[:n]
    members = [np.flatnonzero(labels == c) for c in classes]
    rows = np.array([m[len(m) // 2] for m in members])
    return rows, [f"{c} (#{r})" for c, r in zip(classes, rows)]


@torch.no_grad()
def conditional_nll(model: MADE, data: BinaryDataset, mask: int = 0, batch_size: int = 1000) -> tuple[float, float, int]:
    """Mean ``-log p(bottom | top)`` of the true test images in nats, its standard error, and the number of images."""
    observed, param = top_half(data.image_shape), model.output.weight
    was_training = model.training
    model.eval()
    nll = torch.cat([
        -conditional_log_prob(model, batch.to(param), observed, mask).double().cpu()
        for batch in data.test.split(batch_size)
    ])  # fmt: skip
    model.train(was_training)
    return float(nll.mean()), standard_error(nll), len(nll)


def write_completions(
    model: MADE, data: BinaryDataset, path: Path, title: str, draws: int = 5, mask: int = 0, seed: int = 0
) -> CompletionFigure:
    """Draw ``draws`` completions of one test image per class into ``path``; return the figure's record (its path
    relative to the folder above ``path``'s folder, as the sample grids)."""
    observed = top_half(data.image_shape)
    rows, labels = one_per_class(data)
    images = data.test[rows]
    filled = complete(model, images.repeat_interleave(draws, dim=0), observed, mask, torch.Generator().manual_seed(seed))
    nll, stderr, n = conditional_nll(model, data, mask)
    save_completions(
        images.numpy(), observed.numpy(), filled.cpu().numpy().reshape(len(rows), draws, -1), path, data.image_shape,
        f"{title}: {draws} exact completions of the bottom half given the top half (mask {mask})\n"
        f"-log p(bottom | top) of the true test images: {plus_minus(nll, stderr)} nats (n = {n})",
        labels,
    )  # fmt: skip
    return CompletionFigure(str(path.relative_to(path.parents[1])), nll, stderr, n)


def caption(completions: CompletionFigure) -> str:
    """One line to print beside the figure."""
    return (
        f"Exact completions of the bottom half given the top half. -log p(bottom | top) of the true test images: "
        f"{plus_minus(completions.nll, completions.stderr)} nats (test split, n = {completions.n})"
    )
