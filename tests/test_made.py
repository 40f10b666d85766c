"""MADE defines a normalized autoregressive distribution, for every variant and every mask."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import all_binary, make_model, masks_to_check

from replication.made import MADE, MADEConfig

D = 8


def test_sums_to_one_over_all_inputs_for_every_mask(variant):
    _, overrides = variant
    model = make_model(D, **overrides)
    x = all_binary(D)
    for k in masks_to_check(model):
        model.set_mask(k)
        total = torch.logsumexp(model.log_prob(x), dim=0).exp().item()
        assert abs(total - 1.0) < 1e-6, (k, total)


def test_ensemble_sums_to_one(variant):
    _, overrides = variant
    model = make_model(D, **overrides)
    total = torch.logsumexp(model.log_prob(all_binary(D), n_masks=3), dim=0).exp().item()
    assert abs(total - 1.0) < 1e-6


def test_jacobian_is_zero_for_inputs_not_before_the_output(variant):
    _, overrides = variant
    model = make_model(D, **overrides)
    x = torch.rand(D, dtype=torch.float64) * 2 - 0.5  # generic point: few dead units
    for k in masks_to_check(model):
        model.set_mask(k)
        jac = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x)
        position = torch.as_tensor(model.degrees().inputs)
        forbidden = position[None, :] >= position[:, None]  # [d, j]: j is not before d
        assert torch.all(jac[forbidden] == 0), k
        assert jac[~forbidden].abs().sum() > 0  # and the allowed links carry signal


def test_no_leak_when_perturbing_inputs_not_before_the_output(variant):
    """Flip everything at or after d's position: logit d must not move (catches links behind dead ReLUs)."""
    _, overrides = variant
    model = make_model(D, **overrides)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (64, D), generator=gen).double()
    for k in masks_to_check(model):
        model.set_mask(k)
        position = torch.as_tensor(model.degrees().inputs)
        base = model(x)
        for d in range(D):
            late = position >= position[d]
            noise = torch.randint(0, 2, (64, D), generator=gen).double()
            perturbed = torch.where(late, noise, x)
            assert torch.equal(model(perturbed)[:, d], base[:, d]), (k, d)


def test_output_mask_with_ge_instead_of_gt_would_be_caught():
    """The perturbation test has teeth: a leaky output mask (>=) makes logits depend on their own input."""
    model = make_model(D, num_masks=2)  # multi-mask models apply the mask buffers on every pass
    position = torch.as_tensor(model.degrees().inputs)
    hidden_deg = torch.as_tensor(model.degrees().hidden[-1])
    leaky = (position[:, None] >= hidden_deg[None, :]).double()
    model.output.set_mask(leaky)
    x = torch.zeros(1, D, dtype=torch.float64)
    moved = [not torch.equal(model(x)[0, d], model(x + torch.eye(D, dtype=x.dtype)[d])[0, d]) for d in range(D)]
    assert any(moved)


def test_ensemble_is_log_mean_of_probabilities_not_mean_of_logits():
    model = make_model(D, num_masks=5, order_agnostic=True, connectivity_agnostic=True)
    x = all_binary(D)[::7]
    per_mask = []
    for k in range(5):
        model.set_mask(k)
        per_mask.append(model.log_prob(x).exp())
    brute = torch.stack(per_mask).mean(dim=0).log()
    model.set_mask(2)
    ensemble = model.log_prob(x, n_masks=5)
    assert torch.allclose(ensemble, brute, atol=1e-12)
    assert model.mask_index == 2  # current mask restored
    mean_logits = torch.stack([(model.set_mask(k), model(x))[1] for k in range(5)]).mean(dim=0)
    logit_average = -torch.nn.functional.binary_cross_entropy_with_logits(mean_logits, x, reduction="none").sum(1)
    assert (logit_average - ensemble).abs().max() > 1e-3


def test_next_mask_cycles_through_a_fixed_set():
    model = make_model(D, num_masks=3, order_agnostic=True)
    seen = []
    for _ in range(6):
        seen.append(tuple(model.degrees().inputs))
        model.next_mask()
    assert seen[:3] == seen[3:] and len(set(seen)) == 3


def test_state_dict_holds_parameters_only_and_masks_are_rebuilt_from_seed_and_index():
    model = make_model(D, num_masks=4, order_agnostic=True)
    model.set_mask(2)
    assert set(model.state_dict()) == {name for name, _ in model.named_parameters()}  # masks are not saved
    clone = MADE(model.config).double()
    clone.load_state_dict(model.state_dict())
    clone.set_mask(2)
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(model.masked_layers, clone.masked_layers))
    x = all_binary(D)
    assert torch.equal(clone.log_prob(x), model.log_prob(x))


def test_same_seed_same_model_and_masks():
    a, b = MADE(MADEConfig(input_dim=D, seed=5)), MADE(MADEConfig(input_dim=D, seed=5))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bad_configuration_is_rejected_clearly():
    with pytest.raises(ValueError, match="activation"):
        MADEConfig(input_dim=D, activation="gelu")
    with pytest.raises(ValueError, match="hidden_sizes"):
        MADEConfig(input_dim=D, hidden_sizes=[])


def test_log_prob_is_in_nats_for_a_uniform_model():
    model = make_model(D)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    assert torch.allclose(model.log_prob(all_binary(D)), torch.full((2**D,), -D * math.log(2), dtype=torch.float64))


def test_unbounded_mask_sets_do_not_grow_memory():
    model = make_model(D, num_masks=0, order_agnostic=True, connectivity_agnostic=True)
    first = tuple(model.degrees().inputs)
    for _ in range(3000):
        model.next_mask()
    assert not model._mask_cache and model.mask_index == 3000  # an unbounded set is never cached
    model.set_mask(0)
    assert tuple(model.degrees().inputs) == first  # redrawn identically from (seed, index)
