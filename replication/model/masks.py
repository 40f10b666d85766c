"""Degrees and connectivity masks of MADE, following the paper's rules (Germain et al. 2015, sec. 4).

Every unit gets a *degree*: input ``d`` gets ``m0(d)``, its position (1..D) in the ordering;
hidden unit ``k`` of layer ``l`` gets ``m^l(k)`` drawn uniformly from
``{min_k' m^{l-1}(k'), ..., D-1}``.  A hidden weight exists iff ``m^l(k) >= m^{l-1}(k')``;
an output weight exists iff ``m0(d) > m^L(k)``; a direct input-to-output weight exists iff
``m0(d) > m0(j)``.  Mask ``k`` of a model is a pure function of ``(seed, k)``.
"""

from __future__ import annotations

import os
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

    @property
    def all(self) -> tuple[torch.Tensor, ...]:
        """Every mask in layer order: hidden ones, output, direct."""
        return (*self.hidden, self.output, self.direct)


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
    random_ordering: bool = False,
) -> Degrees:
    """Degrees of mask ``mask_index``; orderings and hidden degrees use independent seeded streams.

    The ordering is resampled per mask only when ``order_agnostic`` (otherwise it is the natural
    one, or a single random one when ``random_ordering``); hidden degrees are resampled per
    mask only when ``connectivity_agnostic``.
    """
    order_key = mask_index if order_agnostic else 0
    if order_agnostic or random_ordering:
        order_rng = np.random.default_rng([seed, 1, order_key])
        positions = order_rng.permutation(input_dim) + 1
    else:
        positions = np.arange(1, input_dim + 1)
    conn_key = mask_index if connectivity_agnostic else 0
    conn_rng = np.random.default_rng([seed, 2, conn_key])
    return Degrees(positions, sample_hidden_degrees(input_dim, hidden_sizes, conn_rng))


def masks_from_degrees(degrees: Degrees, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> Masks:
    """Build the masks (on ``device``): hidden ``m^l >= m^{l-1}``, output ``m0(d) > m^L``, direct ``m0(d) > m0(j)``.

    >>> masks = masks_from_degrees(Degrees(np.array([1, 2, 3]), (np.array([1, 2]),)))
    >>> masks.hidden[0].tolist()  # hidden unit of degree 2 sees inputs at positions 1 and 2
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    >>> masks.output.tolist()  # output d sees hidden units of degree < d
    [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
    """
    layers = [torch.as_tensor(d, device=device) for d in (degrees.inputs, *degrees.hidden)]
    hidden = tuple((nxt[:, None] >= prev[None, :]).to(dtype) for prev, nxt in zip(layers[:-1], layers[1:]))
    inputs = layers[0]
    output = (inputs[:, None] > layers[-1][None, :]).to(dtype)
    direct = (inputs[:, None] > inputs[None, :]).to(dtype)
    return Masks(hidden, output, direct)


SCHEDULE_OFFSETS = {"cycled": 0, "official": 1}  # the first mask each schedule scores
MASK_CACHE_BYTES = 512 * 2**20  # the least a K-mask set may take to stay resident


def mask_cache_budget(device: torch.device) -> int:
    """Bytes a K-mask set may take to stay resident: a quarter of the device's memory (the machine's on CPU, at
    least 512 MiB). The paper's 1x8000 set of 32 masks takes 1.7 GB in float32, its 2x8000 set 9.8 GB: resident,
    they are built once, not every minibatch and every validation batch."""
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
    else:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return max(MASK_CACHE_BYTES, total // 4)


class MaskSet:
    """The masks of one model: mask ``k`` is a pure function of ``(seed, k)``; the one owner of mask state.

    ``size`` masks K are cycled (``size == 0``: an unbounded set, a new mask for every index). Nothing here
    is "current": every caller names the mask it wants. A bounded set is kept resident on a device when it fits.

    The ``schedule`` says which masks training cycles and which an ensemble of ``n`` masks averages:
    ``cycled`` trains masks ``0..K-1`` and scores ``0..n-1``; ``official`` (the official trainer's "K masks") trains
    the K+1 masks ``0..K`` and scores ``1..n``, so its ensemble of K+1 masks ends with mask K+1, never trained.

    >>> cycled = MaskSet(4, [8], 0, 3, order_agnostic=True, connectivity_agnostic=True, random_ordering=False)
    >>> [cycled.following(k) for k in range(4)], list(cycled.ensemble(3))
    ([1, 2, 0, 1], [0, 1, 2])
    >>> official = MaskSet(4, [8], 0, 3, order_agnostic=True, connectivity_agnostic=True, random_ordering=False,
    ...                    schedule="official")
    >>> [official.following(k) for k in range(5)], list(official.ensemble(4))
    ([1, 2, 3, 0, 1], [1, 2, 3, 4])
    """

    def __init__(
        self,
        input_dim: int,
        hidden_sizes: list[int],
        seed: int,
        size: int,
        *,
        order_agnostic: bool,
        connectivity_agnostic: bool,
        random_ordering: bool,
        schedule: str = "cycled",
    ) -> None:
        if schedule not in SCHEDULE_OFFSETS:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULE_OFFSETS)}, got {schedule!r}")
        if schedule == "official" and size < 2:
            raise ValueError(f"the official schedule needs a set of at least 2 masks, got {size}")
        self.input_dim, self.hidden_sizes, self.seed, self.size = input_dim, list(hidden_sizes), seed, size
        self.order_agnostic, self.connectivity_agnostic = order_agnostic, connectivity_agnostic
        self.random_ordering, self.schedule = random_ordering, schedule
        self.first_scored = SCHEDULE_OFFSETS[schedule]  # the first mask of an ensemble
        self.cycle = size + self.first_scored  # masks trained in turn: 0..cycle-1
        self.distinct = self.cycle + self.first_scored  # masks trained or scored: 0..distinct-1
        self._cache: dict[tuple, Masks] = {}

    def canonical(self, k: int) -> int:
        """Mask ``k`` of the set: indices wrap around a bounded set's distinct masks."""
        return k % self.distinct if self.size > 0 else k

    def following(self, k: int) -> int:
        """The mask that trains after mask ``k`` (the same one for a single-mask set)."""
        return (k + 1) % self.cycle if self.size > 0 else k + 1

    def ensemble(self, n: int) -> range:
        """The masks an ensemble of ``n`` masks averages (probabilities, never logits)."""
        if n < 1:
            raise ValueError(f"an ensemble needs at least one mask, got {n}")
        return range(self.first_scored, self.first_scored + n)

    def degrees(self, k: int = 0) -> Degrees:
        return degrees_for_mask(
            self.input_dim, self.hidden_sizes, self.seed, self.canonical(k), order_agnostic=self.order_agnostic,
            connectivity_agnostic=self.connectivity_agnostic, random_ordering=self.random_ordering,
        )  # fmt: skip

    def ordering(self, k: int = 0) -> torch.Tensor:
        """Input indices in the order mask ``k`` models them."""
        return torch.as_tensor(self.degrees(k).ordering)

    def masks(self, k: int = 0, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> Masks:
        """The masks of mask ``k`` on ``device``; a bounded set is cached when all of it fits the device's budget."""
        device = torch.device(device)
        key = (self.canonical(k), dtype, device)
        if key in self._cache:
            return self._cache[key]
        masks = masks_from_degrees(self.degrees(key[0]), dtype, device)
        sizes = [self.input_dim, *self.hidden_sizes, self.input_dim]
        per_mask = (sum(i * o for i, o in zip(sizes[:-1], sizes[1:])) + self.input_dim**2) * masks.output.element_size()
        if self.size > 1 and self.distinct * per_mask <= mask_cache_budget(device):
            self._cache = {c: m for c, m in self._cache.items() if c[1:] == key[1:]}  # one dtype and device at a time
            self._cache[key] = masks
        return masks

    @property
    def resident(self) -> int:
        """How many masks are held in memory."""
        return len(self._cache)
