"""The report's figures: no legend over data, no style repeated within a panel, error bars that say what they show."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from replication import figures
from replication.experiment_record import ExperimentRecord
from replication.training.record import read_record

ROOT = Path(__file__).resolve().parents[1]
MNIST = [read_record(p, ExperimentRecord) for p in sorted((ROOT / "results" / "metrics").glob("mnist_*.json"))]


def drawn(monkeypatch, draw) -> Figure:
    """The matplotlib figure a plotting function saves (caught instead of written)."""
    caught = {}
    monkeypatch.setattr(figures, "save_figure", lambda fig, path, **kw: caught.setdefault("fig", fig))
    draw()
    fig = caught["fig"]
    FigureCanvasAgg(fig).draw()
    return fig


def legends_clear_of_axes(fig: Figure) -> bool:
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    boxes = [ax.get_window_extent(renderer) for ax in fig.axes if ax.axison]
    return bool(legends) and not any(lg.get_window_extent(renderer).overlaps(box) for lg in legends for box in boxes)


def test_the_training_curves_come_in_panels_without_a_repeated_style_or_a_legend_over_them(monkeypatch, tmp_path):
    assert len(MNIST) > 20
    fig = drawn(monkeypatch, lambda: figures.plot_histories(MNIST, tmp_path / "c.png", "curves"))
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) >= 3 and sum(len(ax.get_legend().get_texts()) for ax in panels) == len(MNIST)
    for ax in panels:
        styles = [(line.get_color(), line.get_linestyle()) for line in ax.get_lines() if line.get_label()[0] != "_"]
        assert len(styles) == len(set(styles)), ax.get_title()
    assert legends_clear_of_axes(fig)


def test_the_lead_figure_keeps_its_legend_off_the_points_and_shows_seed_spreads(monkeypatch, tmp_path):
    frame = pd.read_csv(ROOT / "results" / "nll_uci.csv")
    fig = drawn(monkeypatch, lambda: figures.plot_vs_paper(frame, tmp_path / "v.png", "vs paper"))
    assert legends_clear_of_axes(fig)
    labels = [t.get_text() for lg in fig.legends for t in lg.get_texts()]
    assert not any("narrower" in label for label in labels)  # UCI rows only: no marker listed that is not drawn
    assert "sd over seeds" in fig.axes[0].get_xlabel()
    errorbars = fig.axes[0].containers[0]
    half_widths = sorted(float(seg[1][0] - seg[0][0]) / 2 for seg in errorbars.lines[2][0].get_segments())
    done = frame.dropna(subset=["difference"])
    expected = sorted(2 * done["sd over seeds"].where(done["sd over seeds"].notna(), done["stderr"]))
    assert [round(h, 9) for h in half_widths] == [round(e, 9) for e in expected]


def test_a_training_curve_has_a_title_and_a_y_axis_fitted_to_its_run():
    record = next(m for m in MNIST if m.name == "mnist_1x500_1mask")
    ax = figures.plot_history(record).axes[0]
    assert "mnist_1x500_1mask" in ax.get_title() and f"{record.test_nll.nats:.2f}" in ax.get_title()
    low, high = ax.get_ylim()
    history = pd.DataFrame(record.history)
    assert low < history["train_nll"].min() and high - low < 30  # not the first epochs' 200 nats
    assert json.dumps(record.history)  # the record it was drawn from is plain data


def test_the_masks_curve_keeps_its_legend_off_the_points(monkeypatch, tmp_path):
    state = json.loads((ROOT / "results" / "paper" / "masks_curve.json").read_text())
    paper = [("MADE 1 hidden layer, 1 mask", 88.4), ("MADE 1 hidden layer, 32 masks", 86.64)]
    frame = pd.DataFrame(state["rows"])
    fig = drawn(monkeypatch, lambda: figures.plot_masks_curve(frame, paper, tmp_path / "m.png", state["twins"]))
    assert legends_clear_of_axes(fig)
