"""The paper's mask rules, unit by unit, and their consequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replication.model.masks import Degrees, Masks, degrees_for_mask, masks_from_degrees

D, HIDDEN = 9, [20, 15, 25]


def connectivity(masks: Masks) -> torch.Tensor:
    """Number of paths from input j to output d (D x D), the product of the masks: zero unless j precedes d."""
    path = masks.hidden[0]
    for mask in masks.hidden[1:]:
        path = mask @ path
    return masks.output @ path + masks.direct


def units_without_inputs(masks: Masks) -> list[int]:
    """Per hidden layer, the units no connection reaches (they would output a constant)."""
    return [int((m.sum(dim=1) == 0).sum()) for m in masks.hidden]


def degrees(seed=0, k=0, oa=True, ca=True):
    return degrees_for_mask(D, HIDDEN, seed, k, order_agnostic=oa, connectivity_agnostic=ca)


@pytest.mark.parametrize("k", range(5))
def test_degree_ranges(k):
    deg = degrees(k=k)
    assert sorted(deg.inputs.tolist()) == list(range(1, D + 1))
    low = 1
    for layer in deg.hidden:
        assert layer.min() >= low and layer.max() <= D - 1
        low = layer.min()


@pytest.mark.parametrize("k", range(5))
def test_masks_follow_the_rules_unit_by_unit(k):
    deg = degrees(k=k)
    masks = masks_from_degrees(deg)
    layers = [deg.inputs, *deg.hidden]
    for l, mask in enumerate(masks.hidden):
        prev, nxt = layers[l], layers[l + 1]
        assert mask.shape == (len(nxt), len(prev))
        for unit in range(len(nxt)):
            for src in range(len(prev)):
                assert mask[unit, src] == float(nxt[unit] >= prev[src])
    for d in range(D):
        for unit in range(HIDDEN[-1]):
            assert masks.output[d, unit] == float(deg.inputs[d] > deg.hidden[-1][unit])
        for j in range(D):
            assert masks.direct[d, j] == float(deg.inputs[d] > deg.inputs[j])


@pytest.mark.parametrize("k", range(5))
def test_mask_product_is_strictly_lower_triangular_in_the_ordering(k):
    deg = degrees(k=k)
    paths = connectivity(masks_from_degrees(deg))
    order = torch.as_tensor(deg.ordering)
    in_order = paths[order][:, order]
    assert torch.equal(torch.triu(in_order), torch.zeros_like(in_order))
    assert (torch.tril(in_order, -1)[1:] > 0).any(dim=1).all()  # every output after the first sees something


def test_no_hidden_unit_is_left_without_inputs_even_in_deep_narrow_nets():
    """Each layer's degrees start at the previous layer's minimum, so every unit reads at least one unit below it.
    Deep, narrow layers over many seeds are where a rule drawing every layer from [1, D-1] leaves units unreached."""
    hidden = [6, 3, 3, 3, 6]
    naive_dead = 0
    for seed in range(200):
        deg = degrees_for_mask(D, hidden, seed, 0, order_agnostic=True, connectivity_agnostic=True)
        assert units_without_inputs(masks_from_degrees(deg)) == [0] * len(hidden), seed
        rng = np.random.default_rng(seed)
        naive = tuple(rng.integers(1, D, size=size) for size in hidden)  # every layer from [1, D-1]
        naive_dead += sum(units_without_inputs(masks_from_degrees(Degrees(deg.inputs, naive))))
    assert naive_dead > 0  # the count has teeth: the naive rule does leave units without inputs


def test_masks_are_reproducible_from_the_seed_alone():
    a, b = degrees(seed=7, k=3), degrees(seed=7, k=3)
    assert np.array_equal(a.inputs, b.inputs) and all(np.array_equal(x, y) for x, y in zip(a.hidden, b.hidden))
    c = degrees(seed=8, k=3)
    assert not np.array_equal(a.inputs, c.inputs)


def test_variants_resample_only_what_they_should():
    order_only = [degrees(k=k, oa=True, ca=False) for k in range(4)]
    assert len({tuple(d.inputs) for d in order_only}) == 4
    assert all(np.array_equal(d.hidden[0], order_only[0].hidden[0]) for d in order_only)
    conn_only = [degrees(k=k, oa=False, ca=True) for k in range(4)]
    assert all(np.array_equal(d.inputs, np.arange(1, D + 1)) for d in conn_only)
    assert len({tuple(d.hidden[0]) for d in conn_only}) == 4


def test_tiny_input_is_rejected():
    with pytest.raises(ValueError, match="at least 2"):
        degrees_for_mask(1, [4], 0, 0, order_agnostic=False, connectivity_agnostic=False)
