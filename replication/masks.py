"""Degrees and connectivity masks of MADE, following the paper's rules (Germain et al. 2015, sec. 4).

Every unit gets a *degree*: input ``d`` gets ``m0(d)``, its position (1..D) in the ordering;
hidden unit ``k`` of layer ``l`` gets ``m^l(k)`` drawn uniformly from
``{min_k' m^{l-1}(k'), ..., D-1}``.  A hidden weight exists iff ``m^l(k) >= m^{l-1}(k')``;
an output weight exists iff ``m0(d) > m^L(k)``; a direct input-to-output weight exists iff
``m0(d) > m0(j)``.  Mask ``k`` of a model is a pure function of ``(seed, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Degrees:
    """Degrees of one mask: ``inputs`` (positions 1..D, indexed by input) and each hidden layer."""

    inputs: np.ndarray
    hidden: tuple[np.ndarray, ...]

    @property
    def ordering(self) -> np.ndarray:
        """Input indices sorted by position: ``ordering[i]`` is the (i+1)-th input to be modelled."""
        return np.argsort(self.inputs, kind="stable")


@dataclass(frozen=True)
class Masks:
    """The binary masks of one connectivity, shaped like ``nn.Linear`` weights (out, in)."""

    hidden: tuple[torch.Tensor, ...]
    output: torch.Tensor
    direct: torch.Tensor


def sample_hidden_degrees(input_dim: int, hidden_sizes: list[int], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Draw hidden degrees layer by layer, each uniform in ``[min of previous layer, D-1]``."""
    if input_dim < 2:
        raise ValueError(f"MADE needs at least 2 input dimensions, got {input_dim}")
    low, degrees = 1, []
    for size in hidden_sizes:
        layer = rng.integers(low, input_dim, size=size)  # upper bound exclusive: D-1 is the max
        degrees.append(layer)
        low = int(layer.min())
    return tuple(degrees)


def degrees_for_mask(
    input_dim: int,
    hidden_sizes: list[int],
    seed: int,
    mask_index: int,
    *,
    order_agnostic: bool,
    connectivity_agnostic: bool,
    random_first_ordering: bool = False,
) -> Degrees:
    """Degrees of mask ``mask_index``; orderings and hidden degrees use independent seeded streams.

    The ordering is resampled per mask only when ``order_agnostic`` (otherwise it is the natural
    one, or a single random one when ``random_first_ordering``); hidden degrees are resampled per
    mask only when ``connectivity_agnostic``.
    """
    order_key = mask_index if order_agnostic else 0
    if order_agnostic or random_first_ordering:
        order_rng = np.random.default_rng([seed, 1, order_key])
        positions = order_rng.permutation(input_dim) + 1
    else:
        positions = np.arange(1, input_dim + 1)
    conn_key = mask_index if connectivity_agnostic else 0
    conn_rng = np.random.default_rng([seed, 2, conn_key])
    return Degrees(positions, sample_hidden_degrees(input_dim, hidden_sizes, conn_rng))


def masks_from_degrees(degrees: Degrees, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Masks:
    """Build the masks (on ``device``): hidden ``m^l >= m^{l-1}``, output ``m0(d) > m^L``, direct ``m0(d) > m0(j)``."""
    layers = [torch.as_tensor(d, device=device) for d in (degrees.inputs, *degrees.hidden)]
    hidden = tuple((nxt[:, None] >= prev[None, :]).to(dtype) for prev, nxt in zip(layers[:-1], layers[1:]))
    inputs = layers[0]
    output = (inputs[:, None] > layers[-1][None, :]).to(dtype)
    direct = (inputs[:, None] > inputs[None, :]).to(dtype)
    return Masks(hidden, output, direct)


def connectivity(masks: Masks) -> torch.Tensor:
    """Number of paths from input j to output d (D x D): must be zero unless j precedes d."""
    path = masks.hidden[0]
    for mask in masks.hidden[1:]:
        path = mask @ path
    return masks.output @ path + masks.direct


def count_disconnected_units(masks: Masks) -> dict[str, list[int]]:
    """Per hidden layer, units with no incoming and with no outgoing connection."""
    outgoing = list(masks.hidden[1:]) + [masks.output]
    return {
        "no_inputs": [int((m.sum(dim=1) == 0).sum()) for m in masks.hidden],
        "no_outputs": [int((m.sum(dim=0) == 0).sum()) for m in outgoing],
    }
