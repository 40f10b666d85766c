"""MADE defines a normalized autoregressive distribution, for every variant and every mask."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import all_binary, make_model, masks_to_check
from replication.model.made import MADE, MADEConfig

D = 8


def test_sums_to_one_over_all_inputs_for_every_mask(variant):
    _, overrides = variant
    model = make_model(D, **overrides)
    x = all_binary(D)
    for k in masks_to_check(model):
        total = torch.logsumexp(model.log_prob(x, k), dim=0).exp().item()
        assert abs(total - 1.0) < 1e-13, (k, total)  # float64; measured at most 4.4e-16 over every variant


def test_ensemble_sums_to_one(variant):
    _, overrides = variant
    model = make_model(D, **overrides)
    total = torch.logsumexp(model.ensemble_log_prob(all_binary(D), 3), dim=0).exp().item()
    assert abs(total - 1.0) < 1e-13  # float64; measured at most 4.4e-16


def test_jacobian_is_zero_for_inputs_not_before_the_output(variant):
    _, overrides = variant
    model = make_model(D, **overrides)
    x = torch.rand(D, dtype=torch.float64) * 2 - 0.5  # generic point: few dead units
    for k in masks_to_check(model):
        jac = torch.autograd.functional.jacobian(lambda v, k=k: model(v[None], k)[0], x)
        position = torch.as_tensor(model.degrees(k).inputs)
        forbidden = position[None, :] >= position[:, None]  # [d, j]: j is not before d
        assert torch.all(jac[forbidden] == 0), k
        assert jac[~forbidden].abs().sum() > 0  # and the allowed links carry signal


def leaks(model, k: int) -> list[int]:
    """The perturbation procedure: for each output d, re-draw every input at or after d's position at random; the
    outputs whose logit moved (an autoregressive model has none; catches links behind dead ReLUs)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (64, D), generator=gen).double()
    position = torch.as_tensor(model.degrees(k).inputs)
    base = model(x, k)
    moved = []
    for d in range(D):
        late = position >= position[d]
        noise = torch.randint(0, 2, (64, D), generator=gen).double()
        if not torch.equal(model(torch.where(late, noise, x), k)[:, d], base[:, d]):
            moved.append(d)
    return moved


def test_no_leak_when_perturbing_inputs_not_before_the_output(variant):
    _, overrides = variant
    model = make_model(D, **overrides)
    for k in masks_to_check(model):
        assert leaks(model, k) == [], k


@pytest.mark.parametrize("leaky_layer", ["output", "direct"])
def test_the_perturbation_procedure_catches_a_mask_built_with_ge_instead_of_gt(leaky_layer):
    """The same procedure on a model whose output (or direct) mask lets output d see input d (``>=``)."""
    model = make_model(D, num_masks=2)  # multi-mask models apply their masks on every pass
    position = torch.as_tensor(model.degrees(0).inputs)
    hidden_deg = torch.as_tensor(model.degrees(0).hidden[-1])
    masks = model.masks(0)
    if leaky_layer == "output":
        leaky = [*masks.hidden, (position[:, None] >= hidden_deg[None, :]).double(), masks.direct]
    else:
        leaky = [*masks.hidden, masks.output, (position[:, None] >= position[None, :]).double()]
    model.layer_masks = lambda mask: leaky
    assert leaks(model, 0) != []


def test_ensemble_is_log_mean_of_probabilities_not_mean_of_logits():
    model = make_model(D, num_masks=5, order_agnostic=True, connectivity_agnostic=True)
    x = all_binary(D)[::7]
    brute = torch.stack([model.log_prob(x, k).exp() for k in range(5)]).mean(dim=0).log()
    ensemble = model.ensemble_log_prob(x, 5)
    assert torch.allclose(ensemble, brute, atol=1e-12)
    assert torch.equal(model.ensemble_log_prob(x, [0, 1, 2, 3, 4]), ensemble)
    mean_logits = torch.stack([model(x, k) for k in range(5)]).mean(dim=0)
    logit_average = -torch.nn.functional.binary_cross_entropy_with_logits(mean_logits, x, reduction="none").sum(1)
    assert (logit_average - ensemble).abs().max() > 1e-3


def test_training_cycles_through_a_fixed_set():
    model = make_model(D, num_masks=3, order_agnostic=True)
    seen, k = [], 0
    for _ in range(6):
        seen.append(tuple(model.degrees(k).inputs))
        k = model.mask_set.following(k)
    assert seen[:3] == seen[3:] and len(set(seen)) == 3
    assert model.mask_set.following(0) == 1 and make_model(D).mask_set.following(0) == 0  # one mask: always mask 0


def test_state_dict_holds_parameters_only_and_masks_are_rebuilt_from_seed_and_index():
    model = make_model(D, num_masks=4, order_agnostic=True)
    assert set(model.state_dict()) == {name for name, _ in model.named_parameters()}  # masks are not saved
    clone = MADE(model.config).double()
    clone.load_state_dict(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.masks(2).all, clone.masks(2).all))
    x = all_binary(D)
    assert torch.equal(clone.log_prob(x, 2), model.log_prob(x, 2))


@pytest.mark.parametrize("overrides", [dict(num_masks=1), dict(num_masks=4, order_agnostic=True, connectivity_agnostic=True)])
def test_same_seed_same_model_and_masks(overrides):
    a, b = MADE(MADEConfig(input_dim=D, seed=5, **overrides)), MADE(MADEConfig(input_dim=D, seed=5, **overrides))
    c = MADE(MADEConfig(input_dim=D, seed=6, **overrides))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    for k in range(4):
        assert all(torch.equal(p, q) for p, q in zip(a.masks(k).all, b.masks(k).all))
    assert not all(torch.equal(p, q) for p, q in zip(a.masks(0).all, c.masks(0).all))  # another seed, other masks


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
    first, k, x = tuple(model.degrees(0).inputs), 0, all_binary(D)[:3]
    for _ in range(3000):
        k = model.mask_set.following(k)
        model(x, k)
    assert model.mask_set.resident == 0 and k == 3000  # an unbounded set is never cached
    assert tuple(model.degrees(0).inputs) == first  # redrawn identically from (seed, index)
