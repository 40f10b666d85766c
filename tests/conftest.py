"""Shared fixtures: small models of every variant, and all binary vectors of a small D."""

from __future__ import annotations

import itertools

import pytest
import torch

from replication.model.made import MADE, MADEConfig

# (name, config overrides): every variant, 1 and 3 hidden layers, with and without direct links.
VARIANTS = {
    "single-natural": dict(num_masks=1),
    "single-random-order": dict(num_masks=1, random_ordering=True),
    "single-no-direct": dict(num_masks=1, direct=False),
    "single-3-layers": dict(num_masks=1, hidden_sizes=[12, 9, 11]),
    "order-agnostic": dict(num_masks=4, order_agnostic=True),
    "connectivity-agnostic": dict(num_masks=4, connectivity_agnostic=True),
    "both": dict(num_masks=4, order_agnostic=True, connectivity_agnostic=True),
    "both-3-layers-no-direct": dict(
        num_masks=4, order_agnostic=True, connectivity_agnostic=True, hidden_sizes=[10, 7, 12], direct=False
    ),
    "both-unbounded-tanh": dict(num_masks=0, order_agnostic=True, connectivity_agnostic=True, activation="tanh"),
}  # fmt: skip


def make_model(input_dim: int = 8, seed: int = 3, dtype: torch.dtype = torch.float64, **overrides) -> MADE:
    """A small MADE with non-trivial (non-zero) biases, so no unit is trivially dead."""
    config = MADEConfig(input_dim=input_dim, hidden_sizes=overrides.pop("hidden_sizes", [16]), seed=seed, **overrides)
    model = MADE(config).to(dtype)
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=dtype))
        for layer in model.masked_layers if model.single_mask else []:  # a fixed mask's removed weights stay zero
            layer.weight.mul_(layer.fixed_mask)
    return model


def masks_to_check(model: MADE) -> list[int]:
    """Every mask of the set (the first 4 of an unbounded one)."""
    return list(range(model.config.num_masks or 4))


def all_binary(d: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0, 1], repeat=d)), dtype=dtype)


@pytest.fixture(params=sorted(VARIANTS))
def variant(request) -> tuple[str, dict]:
    return request.param, dict(VARIANTS[request.param])


def fake_metrics(experiment, **fields) -> dict:
    """A complete ``metrics.json`` object of a finished ``experiment`` (for table tests), with ``fields`` overriding;
    a partial ``test_nll`` is merged into a whole one."""
    from dataclasses import asdict

    model_config, train_config, eval_config = experiment.configs(784)
    nll = {"nats": 90.0, "stderr": 0.3, "bits_per_dim": 0.17, "n": 10000, "n_masks": eval_config.test_masks}
    record = {
        "model_config": asdict(model_config), "train_config": asdict(train_config), "test_masks": eval_config.test_masks,
        "data": {"name": experiment.dataset}, "epochs": 9, "best_epoch": 5, "stopped_early": True, "train_seconds": 9.0,
        "seconds_per_epoch": 1.0, "eval_seconds": 1.0, "wall_seconds_this_call": 10.0, "valid_nll": dict(nll),
        "test_nll": dict(nll), "history": [], "device": "cpu", "torch": "2.13.0", "machine": "x86_64 2 cpus",
        "name": experiment.name, "profile": "cpu", "identity": experiment.identity(), "architecture": experiment.architecture,
        "note": experiment.note, "paper": {"key": experiment.paper, "row": "a paper row", "nll": 90.0}, "split": "test",
    }  # fmt: skip
    test_nll = {**record["test_nll"], **fields.pop("test_nll", {})}
    return {**record, **fields, "test_nll": test_nll}
