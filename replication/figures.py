"""Figures: training curves, the NLL-vs-masks curve and image grids of samples (matplotlib, written atomically)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .experiment_record import ExperimentRecord
from .files import save_figure


def png(figure: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (to embed in a notebook as an image, not as ``<Figure size ...>`` text)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


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


def save_grid(
    samples: np.ndarray, path: str | Path, image_shape: tuple[int, int] | None = None, title: str = "", title_size: float = 12
) -> Path:
    """Save samples (n, D) as a grid image: as pictures when ``image_shape`` is given, else as a bitmap of rows."""
    samples = np.asarray(samples, dtype=np.float32)
    n = samples.shape[0]
    if image_shape is not None:
        cols = math.ceil(math.sqrt(n))
        picture = tile(samples.reshape(n, *image_shape), math.ceil(n / cols), cols)
    else:
        picture = samples  # one row per sample
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
        ax.set_title(title, fontsize=title_size)
    return save_figure(fig, path, dpi=120, bbox_inches="tight")


def plot_masks_curve(
    frame: pd.DataFrame, paper: list[tuple[str, float]], path: Path, twins: dict[str, list | None] | None = None
) -> Path:
    """Test NLL of the n-mask ensemble against n for each model, its 1-mask twin as a dashed line, the paper's points."""
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for i, (name, curve) in enumerate(frame.groupby("experiment", sort=False)):
        color = f"C{i}"
        ax.errorbar(curve["masks"], curve["test NLL"], yerr=curve["stderr"], marker="o", color=color,
                    label=f"ours: {name}, ensemble of n masks")  # fmt: skip
        twin = (twins or {}).get(name)
        if twin is not None:
            ax.axhline(twin[1], color=color, ls="--", label=f"ours: {twin[0]}, trained with 1 mask ({twin[1]:.2f})")
    for i, ((row, nll), n, marker) in enumerate(zip(paper, (1, 32), ("s", "D"))):
        ax.scatter([n], [nll], marker=marker, s=60, zorder=3, color="k" if i else "gray",
                   label=f"paper (8000 units): {row} ({nll})")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of masks n in the test ensemble")
    ax.set_ylabel("test NLL (nats; bars: ± 1 test stderr)")
    ax.set_title("Binarized MNIST: NLL vs number of masks")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=120, bbox_inches="tight")


def plot_history(metrics: ExperimentRecord) -> Figure:
    """Training and validation NLL per epoch (a matplotlib Figure, for notebooks)."""
    history = pd.DataFrame(metrics.history)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(history["epoch"], history["train_nll"], label="train")
    k = metrics.train_config.valid_masks
    ax.plot(history["epoch"], history["valid_nll"], label="valid (1 mask)" if k == 1 else f"valid ({k}-mask ensemble)")
    ax.axvline(metrics.best_epoch, color="gray", ls=":", label=f"best epoch ({metrics.best_epoch})")
    ax.set_ylim(*fitted_limits([history["train_nll"], history["valid_nll"]]))
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats)")
    ax.set_title(f"{metrics.name or 'run'}: NLL per epoch (test NLL {metrics.test_nll.nats:.2f})", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return fig


def plot_vs_paper(frame: pd.DataFrame, path: Path, title: str) -> Path:
    """Ours minus the paper's test NLL, row by row; the band is |difference| <= 1 nat. Bars: two standard deviations
    over seeds where a row has several seeds, else two standard errors over test examples (the axis label says so).

    ``frame`` has the columns experiment, difference, stderr, sd over seeds and vs paper (rows without a result are
    left out). The legend sits below the axes, never over a point, and names only the markers drawn.
    """
    done = frame.dropna(subset=["difference"]).iloc[::-1].reset_index(drop=True)
    fig = Figure(figsize=(7, 0.28 * len(done) + 2.0), layout="constrained")
    ax = fig.subplots()
    ax.axvspan(-1, 1, color="C2", alpha=0.12, label="within 1 nat of the paper")
    ax.axvline(0, color="gray", lw=0.8)
    spread = done.get("sd over seeds", pd.Series([None] * len(done))).astype(float)
    bars = 2 * spread.where(spread.notna(), done["stderr"].astype(float))
    same = done["vs paper"].str.startswith(("equal", "assumed"))
    for chosen, marker, label in (
        (same, "o", "paper's architecture (or assumed equal)"),
        (~same, "s", "narrower than the paper's table, judged against the paper's figure of its width"),
    ):
        if chosen.any():
            rows = done[chosen]
            ax.errorbar(rows["difference"], rows.index, xerr=bars[chosen], fmt=marker, ms=4, capsize=2, label=label,
                        mfc="none" if marker == "s" else None)  # fmt: skip
    ax.set_yticks(range(len(done)), done["experiment"], fontsize=7)
    ax.set_xlabel("our test NLL minus the paper's (nats); bars: 2 sd over seeds, or 2 standard errors for one seed")
    ax.set_title(title, fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="outside lower center")
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path, dpi=120, bbox_inches="tight")


STYLES = [(f"C{c}", ls) for ls in ("-", "--", ":", "-.") for c in range(10)]  # 40 styles, none repeated in a panel


def fitted_limits(curves: list[pd.Series], margin: float = 0.5) -> tuple[float, float]:
    """A y-range around what matters in NLL curves: from the lowest value to the highest once the first tenth of each
    curve (its steep start) is past."""
    low = min(float(c.min()) for c in curves)
    high = max(float(c.iloc[len(c) // 10 :].max()) for c in curves)
    return low - margin, max(high, low + 1.0) + margin


def plot_histories(runs: list[ExperimentRecord], path: Path, title: str) -> Path:
    """Validation NLL per epoch of finished runs (their records), one panel per network (width and one mask or K
    masks), each best epoch marked; no style repeats within a panel and each legend sits below its panel."""
    groups: dict[str, list[ExperimentRecord]] = {}
    for metrics in runs:
        hidden = metrics.model_config.hidden_sizes
        width = f"{len(hidden)}x{hidden[0]}" if len(set(hidden)) == 1 else str(hidden)
        groups.setdefault(f"{width}, {'one mask' if metrics.model_config.single_mask else 'K masks'}", []).append(metrics)
    cols = min(2, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig = Figure(figsize=(6.5 * cols, 5.2 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (group, members) in zip(axes, groups.items()):
        curves = []
        for (color, style), metrics in zip(STYLES, members):
            history = pd.DataFrame(metrics.history)
            curves.append(history["valid_nll"])
            ax.plot(history["epoch"], history["valid_nll"], color=color, ls=style, lw=1, label=metrics.name)
            best = history.loc[history["epoch"] == metrics.best_epoch, "valid_nll"]
            ax.plot([metrics.best_epoch], best, "o", color=color, ms=3)
        ax.set_xscale("log")
        ax.set_ylim(*fitted_limits(curves))
        ax.set_title(f"{group} ({len(members)} run(s))", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation NLL (nats)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    for ax in axes[len(groups) :]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path, dpi=120, bbox_inches="tight")


def save_completions(
    images: np.ndarray,
    observed: np.ndarray,
    completions: np.ndarray,
    path: str | Path,
    image_shape: tuple[int, int],
    title: str = "",
    row_labels: list[str] | None = None,
) -> Path:
    """One row per test image: the image, what the model is given (the rest grey), then its completions.

    ``images`` is (n, D), ``observed`` a boolean (D,), ``completions`` (n, k, D).
    """
    n, k, _ = completions.shape
    given = np.where(observed, images, 0.5)
    rows = np.concatenate([images[:, None], given[:, None], completions], axis=1).reshape(n * (k + 2), *image_shape)
    h, w = image_shape
    picture = tile(rows.astype(np.float32), n, k + 2)
    fig = Figure(figsize=(0.75 * (k + 2) + 0.6, 0.75 * n + 0.8))
    ax = fig.subplots()
    ax.imshow(picture, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([1 + c * (w + 1) + w / 2 for c in range(k + 2)],
                  ["test image", "given", *[f"draw {i + 1}" for i in range(k)]], fontsize=7)  # fmt: skip
    ax.set_yticks([1 + r * (h + 1) + h / 2 for r in range(n)], row_labels or [""] * n, fontsize=7)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=8, pad=14)
    return save_figure(fig, path, dpi=120, bbox_inches="tight")


def plot_trained_masks(
    trained: pd.DataFrame,
    first_n: pd.DataFrame | None,
    paper: tuple[str, float],
    nade: tuple[list[int], list[float], float],
    path: Path,
) -> Path:
    """Test NLL against the number of masks: models trained with K masks (each on its K-mask ensemble), one K-mask
    model's first-n ensembles, the paper's 1-mask point and order-agnostic NADE's n-ordering ensembles."""
    fig = Figure(figsize=(7, 4.8))
    ax = fig.subplots()
    seeds = ", ".join(str(s) for s in sorted(set(trained["seed"])))
    ax.errorbar(trained["masks K"], trained["test NLL"], yerr=trained["stderr"], marker="o", color="C0", capsize=2,
                label=f"ours, 1x500: trained with K masks, tested on its K-mask ensemble (seed {seeds})")  # fmt: skip
    if first_n is not None and not first_n.empty:
        name = first_n["experiment"].iloc[0]
        ax.errorbar(first_n["masks"], first_n["test NLL"], yerr=first_n["stderr"], marker="s", ls="--", color="C1",
                    capsize=2, mfc="none", label=f"ours, 1x500: {name} (first seed), its first n masks")  # fmt: skip
    orderings, nlls, fixed = nade
    ax.plot(orderings, nlls, "^:", color="gray", label="order-agnostic NADE, 1 hidden layer: one model, n orderings")
    ax.axhline(fixed, color="gray", ls="-.", lw=1, label=f"NADE, fixed order ({fixed})")
    ax.scatter([1], [paper[1]], marker="*", s=140, color="k", zorder=3, label=f"paper: {paper[0]} ({paper[1]})")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of masks K (or orderings n)")
    ax.set_ylabel("test NLL (nats; bars: ± 1 test stderr)")
    ax.set_title("Binarized MNIST at 500 units: test NLL against the number of masks", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13))
    ax.grid(alpha=0.3)
    return save_figure(fig, path, dpi=120, bbox_inches="tight")
