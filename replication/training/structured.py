"""Structure-aware masked products: skip the part of every masked product that its mask zeroes.

Sort each layer's units by degree (the inputs by their position in the ordering). Every MADE connection rule is
monotone in the degrees (hidden ``m^l >= m^{l-1}``, output and direct ``m0(d) > m``), so after sorting, each output
unit sees a *prefix* of the sorted inputs and the prefixes grow with the unit: each mask becomes a staircase. Cut
the longer side into blocks: a block of outputs needs only the inputs up to its last unit's prefix, a block of
inputs only the outputs from the first that sees it. The products over these tiles do about half the dense work.
The sum of per-input log-likelihoods does not depend on the order of the inputs, so the logits never need unsorting.

Three users: :class:`StructuredMADE` (evaluation: the masked weights gathered once per mask, then many rows),
:class:`SortedTraining` (a one-mask model trains with its parameters held in the sorted layout, so no step gathers
anything) and :func:`staircase_log_prob` with ``gather=True`` (a K-mask step gathers its mask's layout and scatters
the gradients back).

Each is a second forward pass, for speed only: it must equal :meth:`MADE.log_prob` (that is, :meth:`MADE.forward`)
to float rounding, and its gradients the dense ones; ``tests/test_structured.py`` checks both for every variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from types import TracebackType

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS_IN_PLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "sigmoid": torch.sigmoid_}  # evaluation only
BLOCKS = 8  # blocks per layer: the work is about (1/2 + 1/(2 * BLOCKS)) of the dense product's; 8 measured fastest
# for training steps at 1x8000 on 2 CPU threads (4, 6, 12, 16 and 24 slower); 8 to 32 within 5% for evaluation

Tile = tuple[int, int, int, int]  # rows r0:r1 of the sorted weight read columns c0:c1
Band = tuple[int, int, int, int, torch.Tensor]  # a tile's part that the mask cuts: rows, columns and the 0/1 mask


@dataclass(frozen=True)
class LayerLayout:
    """One masked layer's sorted layout: weight rows ``rows`` and columns ``cols`` (indices into the model's layout),
    the tiles of the sorted weight that the products read, the bands inside them that the mask cuts, and the gaps
    (what no tile reads)."""

    rows: torch.Tensor
    cols: torch.Tensor
    tiles: tuple[Tile, ...]
    bands: tuple[Band, ...]
    gaps: tuple[Tile, ...]  # the rest of the weight: zero under the mask

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds per row of input: what the tiles compute (the dense product computes ``out * in``)."""
        return sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in self.tiles)

    def gather(self, weight: torch.Tensor) -> torch.Tensor:
        """``weight`` (out, in) in this layout, its entries outside the staircase zeroed where the tiles read them."""
        return mask_bands(permute(weight, self.rows, self.cols), self)

    @cached_property
    def inverse(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The inverse permutations of ``rows`` and ``cols``: from the sorted layout back to the model's."""
        return torch.argsort(self.rows), torch.argsort(self.cols)

    def scatter(self, sorted_weight: torch.Tensor) -> torch.Tensor:
        """The inverse of the permutation of :meth:`gather`: back to the model's layout."""
        return permute(sorted_weight, *self.inverse)


def permute(t: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
    """``t[rows][:, cols]`` (``t[rows]`` without ``cols``)."""
    t = t.index_select(0, rows)
    return t if cols is None else t.index_select(1, cols)


def layer_layout(rows: np.ndarray, cols: np.ndarray, prefix: np.ndarray, device: torch.device) -> LayerLayout:
    """Tile a staircase whose sorted row ``r`` sees the first ``prefix[r]`` columns (non-decreasing in ``r``).

    The longer side is cut into blocks, so that every product keeps a long side: blocks of rows, each reading the
    columns up to its last row's prefix, or blocks of columns, each read by the rows from the first that sees it.
    """
    n_out, n_in = len(rows), len(cols)
    by_rows = n_out >= n_in
    edges = np.linspace(0, n_out if by_rows else n_in, min(BLOCKS, n_out if by_rows else n_in) + 1).round().astype(int)
    tiles, bands, gaps = [], [], []
    for a, b in zip(edges[:-1], edges[1:]):
        if by_rows:  # rows a:b; all of them see columns :prefix[a], some of them prefix[a]:prefix[b - 1]
            tile, band_rows, band_cols = (a, b, 0, prefix[b - 1]), (a, b), (prefix[a], prefix[b - 1])
            gap = (a, b, prefix[b - 1], n_in)
        else:  # columns a:b; rows from the first that sees column a, all of them from the first that sees b - 1
            first, full = np.searchsorted(prefix, [a, b - 1], side="right")
            tile, band_rows, band_cols = (first, n_out, a, b), (first, full), (a, b)
            gap = (0, first, a, b)
        r0, r1, c0, c1 = (int(v) for v in gap)
        if r1 > r0 and c1 > c0:
            gaps.append((r0, r1, c0, c1))
        r0, r1, c0, c1 = (int(v) for v in tile)
        if r1 <= r0 or c1 <= c0:
            continue
        tiles.append((r0, r1, c0, c1))
        (br0, br1), (bc0, bc1) = (int(v) for v in band_rows), (int(v) for v in band_cols)
        if br1 > br0 and bc1 > bc0:
            band = torch.arange(bc0, bc1)[None, :] < torch.as_tensor(prefix[br0:br1])[:, None]
            bands.append((br0, br1, bc0, bc1, band.to(device=device, dtype=torch.float32)))
    as_index = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int64), device=device)  # noqa: E731
    return LayerLayout(as_index(rows), as_index(cols), tuple(tiles), tuple(bands), tuple(gaps))


@dataclass(frozen=True)
class Layout:
    """A mask's sorted layout: the input ``order`` and each masked layer's :class:`LayerLayout` (in the model's
    ``masked_layers`` order: hidden layers, output, direct)."""

    order: torch.Tensor
    layers: tuple[LayerLayout, ...]

    @property
    def multiply_adds(self) -> int:
        return sum(layer.multiply_adds for layer in self.layers)


def layout(model: nn.Module, mask: int = 0) -> Layout:
    """The sorted layout of mask ``mask`` of ``model``, from its degrees."""
    device = model.output.weight.device
    degrees = model.degrees(mask)
    positions = degrees.inputs  # 1..D
    order = np.argsort(positions, kind="stable")
    layer_degrees = [positions, *degrees.hidden]
    orders = [order, *(np.argsort(d, kind="stable") for d in degrees.hidden)]
    layers = []
    for l in range(len(degrees.hidden)):  # hidden unit k sees the inputs of degree <= its own
        d_in, d_out = layer_degrees[l][orders[l]], layer_degrees[l + 1][orders[l + 1]]
        layers.append(layer_layout(orders[l + 1], orders[l], np.searchsorted(d_in, d_out, side="right"), device))
    last, sorted_positions = layer_degrees[-1][orders[-1]], positions[order]  # output d sees units of degree < its position
    layers.append(layer_layout(order, orders[-1], np.searchsorted(last, sorted_positions, side="left"), device))
    if model.direct is not None:  # output d sees the inputs before it in the ordering
        layers.append(layer_layout(order, order, np.arange(len(order)), device))
    return Layout(torch.as_tensor(order, device=device), tuple(layers))


def mask_bands(weight: torch.Tensor, layer: LayerLayout) -> torch.Tensor:
    """Zero, in place, the entries of a sorted ``weight`` (or gradient) that lie in a tile's band but off the mask."""
    for r0, r1, c0, c1, band in layer.bands:
        weight[r0:r1, c0:c1] *= band
    return weight


def staircase_product(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, layer: LayerLayout) -> torch.Tensor:
    """``x @ weight.T + bias`` of a sorted, band-masked ``weight``, tile by tile."""
    out = x.new_zeros(x.shape[0], weight.shape[0]) if bias is None else bias.expand(x.shape[0], -1).contiguous()
    for r0, r1, c0, c1 in layer.tiles:
        out[:, r0:r1].addmm_(x[:, c0:c1], weight[r0:r1, c0:c1].t())
    return out


class StaircaseLinear(torch.autograd.Function):
    """The masked product of a sorted layer with its backward pass, tile by tile.

    ``gather=True``: ``weight`` and ``bias`` are in the model's layout; they are gathered into the sorted one and the
    gradients are scattered back. ``gather=False``: they are already sorted, and the weight is zero off the mask
    (a one-mask model in :class:`SortedTraining`). The weight's gradient is zero off the mask either way.

    ``gradient``: a buffer of the weight's shape, zero outside the tiles, that becomes ``weight.grad`` when the
    weight has none (a fresh 25 MB gradient per layer and step costs page faults and zeroing of the gaps); with a
    gradient already there, the new one is accumulated into it as usual.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, layer: LayerLayout, gather: bool, gradient: torch.Tensor | None = None):  # noqa: ANN001, ANN205 - autograd's signature
        ctx.gradient, ctx.parameter = gradient, weight
        if gather:
            weight = layer.gather(weight)
            bias = None if bias is None else bias.index_select(0, layer.rows)
        ctx.save_for_backward(x, weight)
        ctx.layer, ctx.gather, ctx.has_bias = layer, gather, bias is not None
        return staircase_product(x, weight, bias, layer)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        layer = ctx.layer
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(x)
            for r0, r1, c0, c1 in layer.tiles:
                grad_x[:, c0:c1].addmm_(grad[:, r0:r1], weight[r0:r1, c0:c1])
        into = ctx.gradient is not None and ctx.parameter.grad is None  # the persistent buffer becomes the gradient
        grad_weight = ctx.gradient if into else torch.empty_like(weight)
        if not into:
            for r0, r1, c0, c1 in layer.gaps:
                grad_weight[r0:r1, c0:c1].zero_()
        for r0, r1, c0, c1 in layer.tiles:
            grad_weight[r0:r1, c0:c1].addmm_(grad[:, r0:r1].t(), x[:, c0:c1], beta=0)
        mask_bands(grad_weight, layer)
        grad_bias = grad.sum(0) if ctx.has_bias else None
        if ctx.gather:
            grad_weight = layer.scatter(grad_weight)
            grad_bias = None if grad_bias is None else grad_bias.index_select(0, layer.inverse[0])
        if into:  # set, not accumulated: autograd would copy a tensor that someone else holds
            ctx.parameter.grad, grad_weight = grad_weight, None
        return grad_x, grad_weight, grad_bias, None, None, None


def staircase_log_prob(
    model: nn.Module, x: torch.Tensor, layout: Layout, *, gather: bool, gradients: tuple[torch.Tensor, ...] | None = None
) -> torch.Tensor:
    """``model.log_prob(x, mask)`` for the mask of ``layout``, differentiable, on the structured path (the
    parameters are gathered per call with ``gather=True``, or already held sorted, see :class:`SortedTraining`,
    which passes the weights' persistent ``gradients``)."""
    x = x.index_select(1, layout.order)
    layers, h = model.masked_layers, x
    gradients = gradients or (None,) * len(layers)
    for layer, geometry, gradient in zip(model.hidden, layout.layers, gradients):
        h = StaircaseLinear.apply(h, layer.weight, layer.bias, geometry, gather, gradient)
        h = model.dropout(model.activation(h))
    depth = len(model.hidden)
    output = (layers[depth].weight, layers[depth].bias, layout.layers[depth], gather, gradients[depth])
    logits = StaircaseLinear.apply(h, *output)
    if model.direct is not None:
        logits = logits + StaircaseLinear.apply(x, model.direct.weight, None, layout.layers[-1], gather, gradients[-1])
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)


class SortedTraining:
    """Hold a one-mask model's parameters and their optimizer state in the mask's sorted layout for a stretch of
    training steps (a context manager), its fixed masks set aside; on exit, everything is back in the model's layout.

    Inside, call the returned function instead of ``model.log_prob(x)``: it runs the staircase products on the
    sorted parameters, no gather per step, and each weight's gradient lands in a buffer kept for the stretch (its
    zeros off the tiles written once). Outside (checkpoints, validation, sampling) nothing sees the sorted layout,
    so a run moves between the dense and the structured path at any epoch.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        if not model.single_mask:
            raise ValueError("SortedTraining holds a one-mask model's parameters sorted; a K-mask model gathers per step")
        self.model, self.optimizer, self.layout = model, optimizer, layout(model, 0)
        self.gradients: tuple[torch.Tensor, ...] | None = None

    def _permute(self, to_sorted: bool) -> None:
        """Move the parameters and their optimizer state into (or out of) the sorted layout. The fixed masks are set
        aside meanwhile: the staircase products' gradients are zero off the mask already."""
        if to_sorted:
            self.fixed_masks = [layer.fixed_mask for layer in self.model.masked_layers]
        for layer, geometry, fixed_mask in zip(self.model.masked_layers, self.layout.layers, self.fixed_masks):
            rows, cols = (geometry.rows, geometry.cols) if to_sorted else geometry.inverse
            layer.fixed_mask = None if to_sorted else fixed_mask
            self._move(layer.weight, rows, cols)
            if layer.bias is not None:
                self._move(layer.bias, rows)

    def _move(self, parameter: nn.Parameter, rows: torch.Tensor, cols: torch.Tensor | None = None) -> None:
        """Permute a parameter in place (the optimizer keeps the same tensor), its gradient and every state of its
        shape."""
        with torch.no_grad():
            parameter.data = permute(parameter.data, rows, cols)
            if parameter.grad is not None:
                parameter.grad = permute(parameter.grad, rows, cols)
        state = self.optimizer.state.get(parameter, {})
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == parameter.shape:
                state[key] = permute(value, rows, cols)

    def log_prob(self, x: torch.Tensor, mask: int = 0) -> torch.Tensor:
        """``model.log_prob(x)`` on the sorted parameters (only inside the context)."""
        if self.gradients is None:
            raise RuntimeError("SortedTraining.log_prob runs only inside its context")
        return staircase_log_prob(self.model, x, self.layout, gather=False, gradients=self.gradients)

    def __enter__(self) -> Callable[[torch.Tensor, int], torch.Tensor]:
        self._permute(to_sorted=True)
        self.gradients = tuple(torch.zeros_like(layer.weight) for layer in self.model.masked_layers)
        return self.log_prob

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._permute(to_sorted=False)
        self.gradients = None


class GatheredTraining:
    """Training steps of a K-mask model on the structured path (a context manager for symmetry with
    :class:`SortedTraining`): each step gathers its mask's layout and scatters the gradients back."""

    def __init__(self, model: nn.Module) -> None:
        self.model, self.layouts = model, {}

    def log_prob(self, x: torch.Tensor, mask: int = 0) -> torch.Tensor:
        """``model.log_prob(x, mask)``, differentiable, on the structured path."""
        key = self.model.mask_set.canonical(mask)
        if key not in self.layouts:
            self.layouts[key] = layout(self.model, key)
        return staircase_log_prob(self.model, x, self.layouts[key], gather=True)

    def __enter__(self) -> Callable[[torch.Tensor, int], torch.Tensor]:
        return self.log_prob

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        return None


def structured_training(model: nn.Module, optimizer: torch.optim.Optimizer) -> SortedTraining | GatheredTraining:
    """The structured path of training steps: sorted parameters for a one-mask model, per-step gathers otherwise."""
    return SortedTraining(model, optimizer) if model.single_mask else GatheredTraining(model)


class StructuredMADE:
    """A MADE under one mask, in sorted layout, for inference: :meth:`log_prob` equals ``model.log_prob(x, mask)`` to
    float32 rounding with about half the multiply-adds. The masked weights are gathered once, at construction."""

    def __init__(self, model: nn.Module, mask: int = 0) -> None:
        self.layout = layout(model, mask)
        self.activation = ACTIVATIONS_IN_PLACE[model.config.activation]  # no autograd here: no new tensor per layer
        with torch.no_grad():
            self.weights = [(geometry.gather(layer.weight), None if layer.bias is None else layer.bias[geometry.rows])
                            for layer, geometry in zip(model.masked_layers, self.layout.layers)]  # fmt: skip
        self.depth, self.direct = len(model.hidden), model.direct is not None

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example log-likelihood in nats, shape (batch,)."""
        x = x.index_select(1, self.layout.order)
        h = x
        for (weight, bias), geometry in zip(self.weights[: self.depth], self.layout.layers):
            h = self.activation(staircase_product(h, weight, bias, geometry))
        logits = staircase_product(h, *self.weights[self.depth], self.layout.layers[self.depth])
        if self.direct:
            logits += staircase_product(x, *self.weights[-1], self.layout.layers[-1])
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=1)

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds per example."""
        return self.layout.multiply_adds
