"""The paper's mask rules, unit by unit, and their consequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replication.masks import connectivity, count_disconnected_units, degrees_for_mask, masks_from_degrees

D, HIDDEN = 9, [20, 15, 25]


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


def test_every_hidden_unit_has_inputs_and_count_is_reported():
    for k in range(20):
        counts = count_disconnected_units(masks_from_degrees(degrees(k=k)))
        assert counts["no_inputs"] == [0, 0, 0]
        assert len(counts["no_outputs"]) == 3


def test_disconnected_count_detects_a_dead_unit():
    deg = degrees()
    hidden = list(deg.hidden)
    hidden[1] = hidden[1].copy()
    hidden[1][0] = D  # degree D is outside the rule: no unit of layer 3 (max D-1) can read it
    counts = count_disconnected_units(masks_from_degrees(type(deg)(deg.inputs, tuple(hidden))))
    assert counts["no_outputs"][1] >= 1


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
