"""The structure-aware evaluation path gives the dense path's log-likelihoods with about half the work."""

from __future__ import annotations

import pytest
import torch
from conftest import VARIANTS, make_model, masks_to_check

from replication.model.made import MADE, MADEConfig
from replication.model.structured import StructuredMADE
from replication.training import evaluate
from replication.training.evaluate import evaluate_nll, structured_pays


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("dim", [5, 23])
def test_structured_log_prob_equals_the_dense_one_for_every_mask(name, dim):
    model = make_model(dim, dtype=torch.float32, **dict(VARIANTS[name]))
    x = (torch.rand(300, dim, generator=torch.Generator().manual_seed(dim)) < 0.4).float()
    for k in masks_to_check(model):
        dense, structured = model.log_prob(x, k), StructuredMADE(model, k).log_prob(x)
        assert torch.allclose(structured, dense, rtol=1e-5, atol=1e-4), (name, k, float((structured - dense).abs().max()))


@pytest.mark.parametrize("seed", range(4))
def test_random_shapes_and_depths(seed):
    gen = torch.Generator().manual_seed(seed)
    dim = int(torch.randint(3, 60, (1,), generator=gen))
    hidden = [int(h) for h in torch.randint(1, 90, (int(torch.randint(1, 4, (1,), generator=gen)),), generator=gen)]
    model = make_model(dim, seed=seed, dtype=torch.float64, hidden_sizes=hidden, num_masks=3, order_agnostic=True,
                       connectivity_agnostic=True, direct=bool(seed % 2))  # fmt: skip
    x = (torch.rand(50, dim, generator=gen, dtype=torch.float64) < 0.5).double()
    for k in range(3):
        assert torch.allclose(StructuredMADE(model, k).log_prob(x), model.log_prob(x, k), rtol=0, atol=1e-10)


def test_the_structured_path_does_about_half_the_multiply_adds():
    model = MADE(MADEConfig(input_dim=784, hidden_sizes=[1000, 1000], num_masks=2, order_agnostic=True))
    dense = sum(w.numel() for w in model.masked_weights(1))
    assert 0.49 < StructuredMADE(model, 1).multiply_adds / dense < 0.56


def test_evaluation_takes_the_structured_path_where_it_pays_and_gives_the_same_nll(monkeypatch):
    model = make_model(30, dtype=torch.float32, hidden_sizes=[40], num_masks=4, order_agnostic=True)
    x = (torch.rand(500, 30, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    assert not structured_pays(model)
    dense = evaluate_nll(model, x, n_masks=4)
    monkeypatch.setattr(evaluate, "STRUCTURED_MIN_UNITS", 40)
    assert structured_pays(model)
    built = []
    monkeypatch.setattr(evaluate, "StructuredMADE", lambda m, k: built.append(k) or StructuredMADE(m, k))
    structured = evaluate_nll(model, x, n_masks=4, batch_size=100)
    assert built == [0, 1, 2, 3]  # built once per mask, not per batch
    assert structured.nats == pytest.approx(dense.nats, rel=1e-6) and structured.stderr == pytest.approx(dense.stderr, rel=1e-4)


def test_the_dense_path_gives_the_per_batch_ensemble():
    """Evaluating mask by mask (so that a structured layout is built once per mask) gives the ensemble of the masks'
    probabilities batch by batch, to float32 rounding (the reduction over masks runs on longer rows)."""
    model = make_model(30, dtype=torch.float32, hidden_sizes=[40], num_masks=5, order_agnostic=True)
    x = (torch.rand(2500, 30, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    with torch.no_grad():
        per_batch = torch.cat([model.ensemble_log_prob(x[i : i + 1000], 5).double() for i in range(0, 2500, 1000)])
    mask_by_mask = evaluate.log_likelihoods(model, x, 5)
    assert torch.allclose(mask_by_mask, per_batch, rtol=1e-6, atol=0)
    assert not torch.allclose(evaluate.log_likelihoods(model, x, 4), per_batch, rtol=1e-6, atol=0)  # 4 masks differ
