"""Exact completions: draws of the unobserved inputs follow p(x_u | x_o), computed by enumerating every state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import all_binary, make_model
from replication.__main__ import main
from replication.completions import completable, one_per_class, top_half, write_completions
from replication.errors import ConfigError
from replication.model.conditional import complete, conditional_log_prob
from replication.training.data import BinaryDataset, load_dataset, registry

D, GIVEN, N = 7, 3, 100_000
Z_BOUND = 5.5  # per-cell |z| bound over 16 cells: a correct sampler exceeds it with probability < 1e-6
OBSERVED = torch.arange(D) < GIVEN  # the natural ordering models these first


def exact_conditional(model, top: torch.Tensor) -> torch.Tensor:
    """p(bottom | top) for every bottom (in binary counting order), from the joint over all 2^D states."""
    states = all_binary(D)
    rows = (states[:, :GIVEN] == top).all(dim=1)
    joint = model.log_prob(states[rows]).detach()
    return (joint - torch.logsumexp(joint, dim=0)).exp()


def codes(x: torch.Tensor) -> torch.Tensor:
    return (x[:, GIVEN:].long() * (2 ** torch.arange(D - GIVEN - 1, -1, -1))).sum(dim=1)


@pytest.mark.parametrize("top", [(1, 0, 1), (0, 0, 0)])
@pytest.mark.parametrize("variant", [dict(), dict(hidden_sizes=[12, 9]), dict(direct=False)])
def test_completion_frequencies_match_the_exact_conditional(top, variant):
    model = make_model(D, **variant)
    top = torch.tensor(top, dtype=torch.float64)
    x = torch.cat([top, torch.ones(D - GIVEN, dtype=torch.float64)]).expand(N, D)  # the bottom values must not matter
    draws = complete(model, x, OBSERVED, generator=torch.Generator().manual_seed(0))
    assert torch.equal(draws[:, :GIVEN], x[:, :GIVEN])  # the observed inputs are kept
    probs = exact_conditional(model, top)
    freq = torch.bincount(codes(draws), minlength=2 ** (D - GIVEN)).double() / N
    assert float(((freq - probs).abs() / (probs * (1 - probs) / N).sqrt()).max()) < Z_BOUND


def test_the_bound_rejects_unconditional_samples():
    """Power check: the same test rejects draws of the bottom that ignore the top (plain samples)."""
    model = make_model(D)
    top = torch.tensor((1, 0, 1), dtype=torch.float64)
    draws = model.sample(N, generator=torch.Generator().manual_seed(0))
    probs = exact_conditional(model, top)
    freq = torch.bincount(codes(draws), minlength=2 ** (D - GIVEN)).double() / N
    assert float(((freq - probs).abs() / (probs * (1 - probs) / N).sqrt()).max()) > Z_BOUND


def test_fast_and_naive_completions_agree_draw_for_draw():
    model = make_model(D, hidden_sizes=[10, 11])
    x = all_binary(D)
    fast = complete(model, x, OBSERVED, generator=torch.Generator().manual_seed(4))
    naive = complete(model, x, OBSERVED, generator=torch.Generator().manual_seed(4), naive=True)
    assert torch.equal(fast, naive)


def test_conditional_log_prob_is_the_enumerated_conditional():
    model = make_model(D)
    states = all_binary(D)
    got = conditional_log_prob(model, states, OBSERVED)
    for top in all_binary(GIVEN):
        rows = (states[:, :GIVEN] == top).all(dim=1)
        assert torch.allclose(got[rows].exp(), exact_conditional(model, top), atol=1e-12)


def test_a_mask_that_does_not_model_the_observed_inputs_first_is_refused():
    model = make_model(D, random_ordering=True, seed=5)
    assert model.ordering(0)[:GIVEN].sort().values.tolist() != list(range(GIVEN))
    with pytest.raises(ConfigError, match="puts every observed input first"):
        complete(model, all_binary(D), OBSERVED)
    with pytest.raises(ConfigError, match="puts every observed input first"):
        conditional_log_prob(model, all_binary(D), OBSERVED)
    agnostic = make_model(D, num_masks=4, order_agnostic=True)  # its masks differ: those that fit are accepted
    fits = [k for k in range(4) if sorted(agnostic.ordering(k)[:GIVEN].tolist()) == list(range(GIVEN))]
    for k in range(4):
        if k in fits:
            complete(agnostic, all_binary(D), OBSERVED, k)
        else:
            with pytest.raises(ConfigError):
                complete(agnostic, all_binary(D), OBSERVED, k)


def images(rows: int, labels: bool) -> BinaryDataset:
    rng = np.random.default_rng(0)
    split = {s: torch.from_numpy(rng.integers(0, 2, (rows, 16)).astype(np.float32)) for s in ("train", "valid", "test")}
    extra = {"test_labels": np.repeat(np.arange(4), rows // 4)} if labels else {}
    return BinaryDataset("tiny_images", **split, source="memory", sha256="0", image_shape=(4, 4), extra=extra)


def test_the_top_half_is_the_first_rows_of_the_image():
    assert top_half((4, 3)).tolist() == [True] * 6 + [False] * 6


@pytest.mark.parametrize("labels", [True, False])
def test_the_figure_shows_one_test_image_per_class_and_the_conditional_nll(tmp_path, labels):
    data = images(40, labels)
    model = make_model(16, dtype=torch.float32)
    assert completable(model, data) and not completable(make_model(16, random_ordering=True, seed=1), data)
    rows, names = one_per_class(data)
    assert (rows.tolist(), names[0]) == (([5, 15, 25, 35], "0 (#5)") if labels else (list(range(10)), "test #0"))
    result = write_completions(model, data, tmp_path / "figures" / "completions.png", "tiny")
    nll = -conditional_log_prob(model, data.test, top_half((4, 4)))
    assert result.figure == "figures/completions.png" and (tmp_path / result.figure).stat().st_size > 0
    assert result.n == 40 and result.nll == pytest.approx(float(nll.mean()), rel=1e-5) and result.stderr > 0


def test_the_test_split_of_mnist_is_sorted_by_class_in_blocks_of_the_registered_sizes():
    info = registry()["binarized_mnist"]
    assert sum(info.test_class_sizes) == info.splits[2] and len(info.test_class_sizes) == 10
    labels = load_dataset("binarized_mnist").extra["test_labels"]
    assert np.bincount(labels).tolist() == list(info.test_class_sizes) and np.all(np.diff(labels) >= 0)


def boundary_offsets(images: torch.Tensor, sizes: np.ndarray, window: int = 100) -> list[int]:
    """Where each class boundary lies in the images themselves, relative to where ``sizes`` put it: within ``window``
    rows of each claimed boundary, the split that best separates "nearer class c's mean image" from "nearer class
    c+1's" (class means taken from the blocks' interiors)."""
    ends = np.cumsum(sizes)
    means = torch.stack([images[e - n + window : e - window].mean(0) for e, n in zip(ends, sizes)])
    offsets = []
    for c, boundary in enumerate(ends[:-1]):
        rows = images[boundary - window : boundary + window]
        distance = torch.cdist(rows, means[[c, c + 1]])
        looks_like_c = np.concatenate([[0.0], np.cumsum((distance[:, 1] - distance[:, 0]).numpy())])
        offsets.append(int(np.argmax(2 * looks_like_c - looks_like_c[-1])) - window)
    return offsets


def test_the_mnist_test_images_change_class_exactly_where_the_registered_sizes_say():
    """The claim checked against the pixels: each boundary of the class blocks is found in the images within 2 rows
    (measured: 0 or 1 row off), and a boundary moved by 5 rows is found moved."""
    sizes = np.array(registry()["binarized_mnist"].test_class_sizes)
    images = load_dataset("binarized_mnist").test.double()
    assert max(abs(o) for o in boundary_offsets(images, sizes)) <= 2
    moved = sizes + np.array([0, 0, 0, 5, -5, 0, 0, 0, 0, 0])
    assert boundary_offsets(images, moved)[3] <= -4  # the test can fail: the true boundary is 5 rows earlier


def test_the_command_line_completes_a_raster_ordered_run(tmp_path, capsys):
    quick = ["--dataset", "binarized_mnist", "--hidden-sizes", "8", "--max-epochs", "1", "--no-progress"]
    assert main(["train", *quick, "--out", str(tmp_path / "raster")]) == 0
    assert main(["complete", str(tmp_path / "raster"), "--out", str(tmp_path / "completions.png"), "-k", "2"]) == 0
    assert (tmp_path / "completions.png").stat().st_size > 0
    assert "-log p(bottom half | top half) on the test split" in capsys.readouterr().out


def test_the_command_line_refuses_data_that_are_not_images(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "rows.npz", **{f"{s}_data": rng.integers(0, 2, (30, 6)) for s in ("train", "valid", "test")})
    quick = ["--dataset", str(tmp_path / "rows.npz"), "--hidden-sizes", "8", "--max-epochs", "1", "--no-progress"]
    assert main(["train", *quick, "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["complete", str(tmp_path / "run"), "--out", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a registered image data set" in err and "\n" not in err and not (tmp_path / "c.png").exists()
