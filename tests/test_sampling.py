"""Samples are exact: their empirical distribution matches exp(log_prob), a mask ensemble's its mixture."""

from __future__ import annotations

import pytest
import torch

from conftest import VARIANTS, all_binary, make_model, masks_to_check
from replication.model.sampling import sample, sample_ensemble, sample_fast, sample_naive

D, N = 5, 200_000
Z_BOUND = 5.5  # per-cell |z| bound; with 32 cells a correct sampler exceeds it with prob. < 1.3e-6


def max_z_score(samples: torch.Tensor, probs: torch.Tensor) -> float:
    """Largest |empirical - p| / sqrt(p(1-p)/N) over the 2^D states."""
    codes = (samples.long() * (2 ** torch.arange(D - 1, -1, -1))).sum(dim=1)
    freq = torch.bincount(codes, minlength=2**D).double() / samples.shape[0]
    return float(((freq - probs).abs() / (probs * (1 - probs) / samples.shape[0]).sqrt()).max())


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_empirical_frequencies_match_the_model_for_every_variant(name):
    model = make_model(D, **dict(VARIANTS[name]))
    for k in masks_to_check(model)[:3]:
        probs = model.log_prob(all_binary(D), k).exp().detach()
        samples = sample(model, N, k, generator=torch.Generator().manual_seed(k))
        assert set(samples.unique().tolist()) <= {0.0, 1.0}
        assert max_z_score(samples, probs) < Z_BOUND


def test_the_bound_rejects_samples_from_another_mask():
    """Power check: samples from mask 0 are rejected as samples of mask 1's distribution."""
    model = make_model(D, num_masks=2, order_agnostic=True, connectivity_agnostic=True, hidden_sizes=[12, 12])
    probs = model.log_prob(all_binary(D), 1).exp().detach()
    samples = sample(model, N, 0, generator=torch.Generator().manual_seed(0))
    assert max_z_score(samples, probs) > Z_BOUND


def test_sampling_is_seedable_and_keeps_training_mode():
    model = make_model(D)
    model.train()
    a = model.sample(10, generator=torch.Generator().manual_seed(1))
    b = model.sample(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and model.training


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_fast_sampler_returns_exactly_the_naive_samples(name):
    model = make_model(D + 3, **dict(VARIANTS[name]))
    for k in masks_to_check(model)[:2]:
        uniforms = torch.rand(500, D + 3, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
        assert torch.equal(sample_fast(model, uniforms, k), sample_naive(model, uniforms, k)), (name, k)


@pytest.mark.parametrize("name", ["both", "both-3-layers-no-direct", "both-unbounded-tanh"])
def test_the_ensemble_sampler_draws_each_sample_under_its_chosen_mask(name):
    """Row by row, the ensemble's sample is the fast sample of the mask it chose, from the same uniforms (the generator
    gives the uniforms, then the choices)."""
    model = make_model(D + 3, **dict(VARIANTS[name]))
    masks, generator = [1, 3, 2], torch.Generator().manual_seed(7)
    uniforms = torch.rand(300, D + 3, generator=generator, dtype=torch.float64)
    choices = torch.randint(len(masks), (300,), generator=generator)
    drawn = sample_ensemble(model, 300, masks, torch.Generator().manual_seed(7))
    for i, mask in enumerate(masks):
        assert (choices == i).sum() > 50
        assert torch.equal(drawn[choices == i], sample_fast(model, uniforms, mask)[choices == i]), (name, mask)
    one = sample_ensemble(model, 300, [3], torch.Generator().manual_seed(7))  # one mask: that mask's sampler
    assert torch.equal(one, sample_fast(model, uniforms, 3))


def ensemble_probabilities(model, masks: list[int]) -> torch.Tensor:
    """The mixture's probability of every input (float64): the masks' probabilities averaged."""
    return torch.stack([model.log_prob(all_binary(D), k).exp() for k in masks]).mean(dim=0).detach()


ENSEMBLE = dict(num_masks=4, order_agnostic=True, connectivity_agnostic=True, hidden_sizes=[12, 12])


def test_ensemble_samples_follow_the_mixture_of_its_masks():
    """Frequencies of N samples of a 3-mask ensemble against the exact mixture, within Z_BOUND standard errors per
    state (measured: a max |z| of 2.5 at this seed, 1.5 to 3.0 over seeds 11 to 15)."""
    model = make_model(D, **ENSEMBLE)
    masks = [0, 1, 2]
    samples = sample_ensemble(model, N, masks, torch.Generator().manual_seed(11))
    assert max_z_score(samples, ensemble_probabilities(model, masks)) < Z_BOUND


def test_the_mixture_bound_rejects_samples_of_one_mask_of_the_ensemble():
    """Power check: samples of mask 0 alone (a grid recorded without samples_drawn) are not the mixture's."""
    model = make_model(D, **ENSEMBLE)
    samples = sample_ensemble(model, N, [0], torch.Generator().manual_seed(11))
    assert max_z_score(samples, ensemble_probabilities(model, [0, 1, 2])) > Z_BOUND
