"""Benchmarks of the library's MADE against a naive reference MADE, measured side by side in one run.

Writes ``results/benchmarks.json`` and ``results/benchmarks.md``.  Times are medians of repeated
runs after warm-up (``time.perf_counter``); ratios compare measurements taken in the same run.
Peak memory: each measurement runs in a fresh subprocess and reports its peak resident memory
increase over the process after set-up (CPU), or ``torch.cuda.max_memory_allocated`` (CUDA).

Usage: ``python benchmarks/bench.py [--quick] [--out results]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from replication.files import write_json, write_text
from replication.model.made import MADE
from replication.model.masks import degrees_for_mask, masks_from_degrees
from replication.model.sampling import sample_fast, sample_naive
from replication.training.device import keep_freed_memory
from replication.training.optimizers import make_optimizer

D, BATCH = 784, 100


class NaiveMaskedLinear(nn.Linear):
    """The common minimal-implementation layer: multiply weight by mask on every forward pass."""

    def __init__(self, n_in: int, n_out: int, mask: torch.Tensor, bias: bool = True) -> None:
        super().__init__(n_in, n_out, bias=bias)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class NaiveMADE(nn.Module):
    """Reference MADE: one masked nn.Linear per weight matrix, direct connections as a separate layer."""

    def __init__(self, hidden: list[int]) -> None:
        super().__init__()
        masks = masks_from_degrees(degrees_for_mask(D, hidden, 0, 0, order_agnostic=False, connectivity_agnostic=False))
        sizes = [D, *hidden]
        self.hidden = nn.ModuleList(NaiveMaskedLinear(i, o, m) for i, o, m in zip(sizes[:-1], sizes[1:], masks.hidden))
        self.out = NaiveMaskedLinear(hidden[-1], D, masks.output)
        self.direct = NaiveMaskedLinear(D, D, masks.direct, bias=False)
        self.order = list(range(D))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.out(h) + self.direct(x)


def naive_sample(model: NaiveMADE, uniforms: torch.Tensor) -> torch.Tensor:
    """One full forward pass per dimension."""
    x = torch.zeros_like(uniforms)
    with torch.no_grad():
        for d in model.order:
            x[:, d] = (uniforms[:, d] < torch.sigmoid(model(x)[:, d])).float()
    return x


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2, sync: Callable[[], None] = lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_flops(hidden: list[int]) -> float:
    """Matmul FLOPs of one training step (forward, input-gradients of hidden layers, weight gradients)."""
    sizes = [D, *hidden]
    fwd = sum(2 * BATCH * i * o for i, o in zip(sizes[:-1], sizes[1:])) + 2 * BATCH * (hidden[-1] + D) * D
    weight_grads = fwd
    input_grads = fwd - 2 * BATCH * D * hidden[0] - 2 * BATCH * D * D  # no gradient w.r.t. the data x
    return float(fwd + weight_grads + input_grads)


def matmul_peak(hidden: list[int], steps: int, *, device: torch.device, sync) -> float:
    """GFLOP/s of plain torch.mm doing exactly the matmuls of a training step (the practical limit)."""
    sizes = [D, *hidden]
    g = torch.Generator().manual_seed(0)
    layers = [(torch.randn(BATCH, i, generator=g), torch.randn(o, i, generator=g)) for i, o in zip(sizes[:-1], sizes[1:])]
    layers.append((torch.randn(BATCH, hidden[-1] + D, generator=g), torch.randn(D, hidden[-1] + D, generator=g)))
    layers = [(a.to(device), w.to(device)) for a, w in layers]
    grads = [torch.randn(BATCH, w.shape[0], generator=g).to(device) for _, w in layers]

    def step():
        for i, ((a, w), gy) in enumerate(zip(layers, grads)):
            torch.mm(a, w.t())
            torch.mm(gy.t(), a)
            if i > 0:
                torch.mm(gy, w)

    seconds = median_seconds(lambda: [step() for _ in range(steps)], repeats=7, sync=sync) / steps
    return train_step_flops(hidden) / seconds / 1e9


def training_throughput(kind: str, hidden: list[int], optimizer: str, steps: int, *, device: torch.device, sync) -> float:
    """Examples per second of full training steps (forward, backward, optimizer step)."""
    torch.manual_seed(0)
    x = (torch.rand(BATCH, D) < 0.3).float().to(device)
    if kind == "library":
        model = MADE(input_dim=D, hidden_sizes=hidden).to(device)
        opt = make_optimizer(model.parameters(), optimizer, lr=0.01, weight_decay=0.0)
        loss_fn = lambda: -model.log_prob(x).mean()  # noqa: E731
    else:
        model = NaiveMADE(hidden).to(device)
        fused = kind == "naive+fused"
        cls = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam}[optimizer]
        opt = cls(model.parameters(), lr=0.01, fused=True) if fused else cls(model.parameters(), lr=0.01)
        loss_fn = lambda: F.binary_cross_entropy_with_logits(model(x), x, reduction="none").sum(1).mean()  # noqa: E731

    def step():
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = median_seconds(lambda: [step() for _ in range(steps)], repeats=7, sync=sync) / steps
    return BATCH / seconds


def sampling_seconds(kind: str, hidden: list[int], *, device: torch.device, sync) -> float:
    torch.manual_seed(0)
    uniforms = torch.rand(100, D).to(device)
    if kind == "naive":
        model = NaiveMADE(hidden).to(device).eval()
        return median_seconds(lambda: naive_sample(model, uniforms), repeats=3, warmup=1, sync=sync)
    model = MADE(input_dim=D, hidden_sizes=hidden).to(device).eval()
    fn = sample_fast if kind == "library" else sample_naive  # "naive-lib": the library's reference sampler
    return median_seconds(lambda: fn(model, uniforms), repeats=5, warmup=1, sync=sync)


def ensemble_eval_seconds(hidden: list[int], n_test: int = 10_000, *, device: torch.device, sync) -> float:
    """Log-likelihood of n_test MNIST-sized vectors under a 32-mask ensemble, batches of 1000."""
    from replication.training.evaluate import evaluate_nll

    torch.manual_seed(0)
    data = (torch.rand(n_test, D) < 0.15).float()
    try:
        from replication.training.data import load_dataset

        data = load_dataset("binarized_mnist", download=False).test[:n_test]
    except Exception:  # noqa: BLE001 - random data of the same shape times the same
        pass
    model = MADE(input_dim=D, hidden_sizes=hidden, num_masks=32, order_agnostic=True, connectivity_agnostic=True).to(device)
    return median_seconds(lambda: evaluate_nll(model, data, n_masks=32), repeats=3, warmup=1, sync=sync)


def paper_epoch_seconds(hidden: list[int], masks: int, steps: int, *, device: torch.device, sync) -> float:
    """Seconds per training epoch (500 minibatches of 100, Adagrad, orthogonal init) of a paper architecture,
    from the median of timed steps on the path training takes (``sorted_training_pays``); with ``masks`` > 1 the
    mask changes every minibatch, as in training."""
    from replication.training.structured import structured_training
    from replication.training.train import sorted_training_pays

    torch.manual_seed(0)
    x = (torch.rand(BATCH, D) < 0.3).float().to(device)
    agnostic = masks > 1
    model = MADE(input_dim=D, hidden_sizes=hidden, num_masks=masks, order_agnostic=agnostic, connectivity_agnostic=agnostic,
                 init="orthogonal").to(device)  # fmt: skip
    opt = make_optimizer(model.parameters(), "adagrad", lr=0.01, weight_decay=0.0)
    path = structured_training(model, opt) if sorted_training_pays(model) else contextlib.nullcontext(model.log_prob)
    mask = 0
    with path as log_prob:

        def step():
            nonlocal mask
            mask = model.mask_set.following(mask)
            loss = -log_prob(x, mask).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return median_seconds(step, repeats=steps, warmup=masks + 1, sync=sync) * 50_000 / BATCH  # every mask built


def validation_pass_seconds(hidden: list[int], rows: int, path: str, *, device: torch.device, sync) -> float:
    """Seconds of one 32-mask ensemble pass over 10,000 images on the ``path`` ("dense" or "structured") evaluation
    path: the cost of ``rows`` images (an evaluation batch) scaled to 10,000, except (structured) the building of
    the 32 sorted layouts, which a pass does once whatever its length."""
    from replication.training.structured import StructuredMADE

    torch.manual_seed(0)
    data = (torch.rand(rows, D) < 0.15).float().to(device)
    model = MADE(input_dim=D, hidden_sizes=hidden, num_masks=32, order_agnostic=True, connectivity_agnostic=True).to(device)
    model.eval()
    repeats = 3 if max(hidden) < 8000 else 1
    with torch.no_grad():
        if path == "dense":
            per_pass = median_seconds(lambda: [model.log_prob(data, k) for k in range(32)], repeats=repeats, warmup=1, sync=sync)
            return per_pass * 10_000 / rows

        def one_pass() -> float:  # one mask's layout at a time, as evaluation builds them
            build = rows_part = 0.0
            for k in range(32):
                start = time.perf_counter()
                layout = StructuredMADE(model, k)
                built = time.perf_counter()
                layout.log_prob(data)
                sync()
                build, rows_part = build + built - start, rows_part + time.perf_counter() - built
            return build + rows_part * 10_000 / rows

        one_pass()
        return statistics.median(one_pass() for _ in range(repeats))


def training_step_seconds(kind: str, hidden: list[int], masks: int, steps: int, *, device: torch.device, sync) -> float:
    """Seconds of one training step (batch 100, Adagrad, a new mask every step when ``masks`` > 1) on the ``kind``
    path: "naive" (the reference model; with K masks it builds the step's masks from their degrees, as a minimal
    implementation does), "dense" (``MADE.log_prob``) or "structured" (the library's structured training path)."""
    from replication.training.structured import structured_training

    torch.manual_seed(0)
    x = (torch.rand(BATCH, D) < 0.3).float().to(device)
    agnostic = masks > 1
    if kind == "naive":
        model = NaiveMADE(hidden).to(device)
        opt = torch.optim.Adagrad(model.parameters(), lr=0.01)
        layers = [*model.hidden, model.out, model.direct]

        def log_prob(batch: torch.Tensor, k: int) -> torch.Tensor:
            if agnostic:
                degrees = degrees_for_mask(D, hidden, 0, k, order_agnostic=True, connectivity_agnostic=True)
                for layer, mask in zip(layers, masks_from_degrees(degrees, device=device).all):
                    layer.mask = mask
            return -F.binary_cross_entropy_with_logits(model(batch), batch, reduction="none").sum(1)

        path = contextlib.nullcontext(log_prob)
    else:
        model = MADE(input_dim=D, hidden_sizes=hidden, num_masks=masks, order_agnostic=agnostic,
                     connectivity_agnostic=agnostic).to(device)  # fmt: skip
        opt = make_optimizer(model.parameters(), "adagrad", lr=0.01, weight_decay=0.0)
        path = structured_training(model, opt) if kind == "structured" else contextlib.nullcontext(model.log_prob)
    mask = 0
    with path as log_prob:

        def step():
            nonlocal mask
            mask = (mask + 1) % masks
            loss = -log_prob(x, mask).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return median_seconds(step, repeats=steps, warmup=masks + 2, sync=sync)  # every mask built, as in training


def permutation_seconds(hidden: list[int], masks: int, steps: int, *, device: torch.device, sync) -> float:
    """Seconds that the permutations alone of a K-mask structured step take: every masked weight gathered into its
    mask's sorted layout (with the bands masked) and a gradient of each scattered back, no products."""
    from replication.training.structured import layout

    model = MADE(input_dim=D, hidden_sizes=hidden, num_masks=masks, order_agnostic=True, connectivity_agnostic=True).to(device)
    layouts = [layout(model, k) for k in range(masks)]
    gradients = [torch.randn_like(layer.weight) for layer in model.masked_layers]
    mask = 0

    def moves():
        nonlocal mask
        mask = (mask + 1) % masks
        with torch.no_grad():
            for layer, geometry, gradient in zip(model.masked_layers, layouts[mask].layers, gradients):
                geometry.gather(layer.weight)
                geometry.scatter(gradient)

    return median_seconds(moves, repeats=steps, warmup=2, sync=sync)


def training_section(quick: bool, common: tuple) -> dict[str, dict[str, float]]:
    """Training steps on the naive, dense and structured paths, 1 and 32 masks, against the structural limit: the
    masks' nonzero share of the step's matmul FLOPs at the machine's measured matmul rate."""
    section = {}
    for label, hidden in (("1x500", [500]), ("1x8000", [8000]), ("2x8000", [8000, 8000])):
        peak, _ = in_subprocess("peak", hidden, 3, *common)
        sizes = [D, *hidden]
        dense_madds = sum(i * o for i, o in zip(sizes[:-1], sizes[1:])) + hidden[-1] * D + D * D
        for masks in (1, 32):
            steps = 3 if quick else (5 if hidden == [8000, 8000] else 9)
            kinds = ("naive", "dense", "structured")
            row = {kind: in_subprocess("train_step", kind, hidden, masks, steps, *common)[0] for kind in kinds}
            if masks > 1:
                row["permutations"] = in_subprocess("permutations", hidden, masks, steps, *common)[0]
            share = structural_multiply_adds(hidden, masks, agnostic=masks > 1) / dense_madds
            limit = train_step_flops(hidden) * share / (peak * 1e9)
            row |= {"speedup": row["dense"] / row["structured"], "vs_naive": row["naive"] / row["structured"],
                    "limit_s": limit, "matmul_peak_gflops": peak, "nonzero_share": share}  # fmt: skip
            section[f"{label}, {masks} mask{'s' if masks > 1 else ''}"] = row
            print(label, masks, json.dumps({k: round(v, 4) for k, v in row.items()}), flush=True)
    return section


def training_markdown(section: dict[str, dict[str, float]]) -> list[str]:
    if not section:
        return []
    lines = [
        "## Training steps: naive, dense and structure-aware paths",
        "",
        "One training step (batch 100, Adagrad; with 32 masks a new mask every step, as in training), in milliseconds.",
        "`naive`: the reference model (mask multiplied into every weight on every pass; with 32 masks it builds each",
        "step's masks, as a minimal implementation does). `dense`: `MADE.log_prob`. `structured`: the structured",
        "training path (`training/structured.py`): a one-mask model holds its parameters in the sorted layout",
        "(`SortedTraining`, no gather); a K-mask model gathers its mask's layout each step and scatters the gradients",
        "back (`GatheredTraining`). The structural limit is the step's matmul FLOPs times the masks' nonzero share, at",
        "the machine's matmul rate measured with the same shapes; `of limit` is that time over the measured one.",
        "One-mask training takes the structured path by itself from 1000 hidden units (`sorted_training_pays`).",
        "`permutations`: of a K-mask structured step, the gathers of every weight into its mask's layout and the",
        "scatters of the gradients back alone (measured apart), which no K-mask step on this path can avoid.",
        "",
        "| model | naive (ms) | dense (ms) | structured (ms) | structured vs dense | vs naive | limit (ms) | "
        "structured, of limit | permutations (ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in section.items():
        moves = f"{1e3 * r['permutations']:.1f}" if "permutations" in r else "none"
        lines.append(
            f"| {label} | {1e3 * r['naive']:.1f} | {1e3 * r['dense']:.1f} | {1e3 * r['structured']:.1f} | "
            f"**{r['speedup']:.2f}x** | {r['vs_naive']:.2f}x | {1e3 * r['limit_s']:.1f} | "
            f"{100 * r['limit_s'] / r['structured']:.0f}% | {moves} |"
        )
    return lines + [""]


def structural_multiply_adds(hidden: list[int], masks: int = 32, agnostic: bool = True) -> float:
    """Mean multiply-adds per example that the masks keep (the nonzeros of every masked product), counted from the
    degrees (no mask is built: this runs in the parent process, whose peak memory the measurements inherit)."""
    total = 0
    for k in range(masks):
        degrees = degrees_for_mask(D, hidden, 0, k, order_agnostic=agnostic, connectivity_agnostic=agnostic)  # models' seed
        layers = [np.sort(degrees.inputs), *(np.sort(h) for h in degrees.hidden)]
        total += sum(int(np.searchsorted(a, b, side="right").sum()) for a, b in zip(layers[:-1], layers[1:]))
        total += int(np.searchsorted(layers[-1], layers[0], side="left").sum()) + D * (D - 1) // 2
    return total / masks


def validation_section(quick: bool, common: tuple) -> dict[str, dict[str, float]]:
    """The 32-mask validation pass on the dense and the structured path, against the structural limit: the masks'
    nonzero multiply-adds at the machine's measured matmul rate."""
    section = {}
    for label, hidden in (("1x500", [500]), ("1x8000", [8000]), ("2x8000", [8000, 8000])):
        rows = 200 if quick else 1000  # one evaluation batch: the dense path builds each mask once per batch
        row = {path: in_subprocess("valid_path", hidden, rows, path, *common)[0] for path in ("dense", "structured")}
        peak, _ = in_subprocess("peak", hidden, 3, *common)
        limit = 2 * structural_multiply_adds(hidden) * 32 * 10_000 / (peak * 1e9)
        row |= {
            "speedup": row["dense"] / row["structured"],
            "limit_s": limit,
            "matmul_peak_gflops": peak,
            "structured_fraction_of_limit": limit / row["structured"],
            "dense_fraction_of_limit": limit / row["dense"],
        }
        section[label] = row
        print(label, json.dumps({k: round(v, 3) for k, v in row.items()}, indent=1), flush=True)
    return section


def validation_markdown(section: dict[str, dict[str, float]]) -> list[str]:
    if not section:
        return []
    lines = [
        "## The 32-mask validation pass: dense and structure-aware paths",
        "",
        "One 32-mask ensemble pass over 10,000 images (extrapolated from a subset), on the dense path (every masked",
        "product in full) and on the structure-aware one (`training/structured.py`: units sorted by degree, each mask a",
        "staircase of blocks, about half the multiply-adds). The structural limit is the masks' nonzero multiply-adds",
        "at the machine's matmul rate measured with a training step's shapes (batch 100); `of limit` is that time",
        "over the measured one. The evaluation multiplies 1000 rows at a time, faster than batch 100, so a figure",
        "above 100% means the limit's rate is conservative, not that the masks' work was skipped.",
        "",
        "| architecture | dense (s) | structured (s) | speedup | structural limit (s) | dense, of limit | structured, of limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in section.items():
        lines.append(
            f"| {label} | {r['dense']:.1f} | {r['structured']:.1f} | **{r['speedup']:.2f}x** | {r['limit_s']:.1f} | "
            f"{100 * r['dense_fraction_of_limit']:.0f}% | {100 * r['structured_fraction_of_limit']:.0f}% |"
        )
    return lines + [""]


def measure(name: str, args: tuple, queue: mp.Queue) -> None:
    """Run one measurement in this (fresh) process; report (value, peak memory MiB)."""
    device = torch.device(args[-1])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.set_num_threads(args[-2])
    if device.type == "cpu":
        keep_freed_memory()  # as training does (`fit`)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = {"train": training_throughput, "peak": matmul_peak, "sample": sampling_seconds, "ensemble": ensemble_eval_seconds,
          "paper_epoch": paper_epoch_seconds, "valid_path": validation_pass_seconds,
          "train_step": training_step_seconds, "permutations": permutation_seconds}[name]  # fmt: skip
    value = fn(*args[:-2], device=device, sync=sync)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    queue.put((value, peak))


def in_subprocess(name: str, *args) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=measure, args=(name, args, queue))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"benchmark {name}{args} failed in its subprocess (exit code {proc.exitcode})")
    return queue.get(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run, not for reporting)")
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--only",
        choices=["small", "paper", "validation", "training"],
        default=None,
        help="only the 1x500/2x500, the paper, the validation-path or the training-path section",
    )
    args = parser.parse_args()
    quick = args.quick
    steps = 5 if quick else 30
    common = (args.threads, args.device)
    report = {"machine": f"{platform.processor() or platform.machine()}, {args.threads} threads", "device": args.device,
              "torch": torch.__version__, "batch": BATCH, "D": D, "models": {}}  # fmt: skip
    report["training"] = training_section(quick, common) if args.only in (None, "training") else {}
    report["validation"] = validation_section(quick, common) if args.only in (None, "validation") else {}
    report["paper"] = paper_section(quick, common) if args.only in (None, "paper") else {}
    for label, hidden in (("1x500", [500]), ("2x500", [500, 500])) if args.only in (None, "small") else ():
        row: dict[str, float] = {}
        for optimizer in ("adagrad", "adam"):
            for kind in ("naive", "naive+fused", "library"):
                value, mem = in_subprocess("train", kind, hidden, optimizer, steps, *common)
                row[f"train_{optimizer}_{kind}_examples_per_s"] = value
                row[f"train_{optimizer}_{kind}_peak_mib"] = mem
            lib = row[f"train_{optimizer}_library_examples_per_s"]
            row[f"train_{optimizer}_speedup_vs_naive"] = lib / row[f"train_{optimizer}_naive_examples_per_s"]
            row[f"train_{optimizer}_speedup_vs_naive_fused"] = lib / row[f"train_{optimizer}_naive+fused_examples_per_s"]
        peak, _ = in_subprocess("peak", hidden, steps, *common)
        flops = train_step_flops(hidden)
        row["matmul_peak_gflops"] = peak
        for optimizer in ("adagrad", "adam"):
            achieved = flops * row[f"train_{optimizer}_library_examples_per_s"] / BATCH / 1e9
            row[f"train_{optimizer}_library_gflops"] = achieved
            row[f"train_{optimizer}_fraction_of_peak"] = achieved / peak
        for kind in ("naive", "library_naive_sampler", "library"):
            sampler = {"naive": "naive", "library_naive_sampler": "naive-lib", "library": "library"}[kind]
            seconds, mem = in_subprocess("sample", sampler, hidden, *common)
            row[f"sample100_{kind}_s"] = seconds
            row[f"sample100_{kind}_peak_mib"] = mem
        row["sample100_speedup_vs_naive"] = row["sample100_naive_s"] / row["sample100_library_s"]
        seconds, mem = in_subprocess("ensemble", hidden, 1000 if quick else 10_000, *common)
        row["ensemble32_test10000_s"], row["ensemble32_peak_mib"] = seconds, mem
        report["models"][label] = row
        print(label, json.dumps({k: round(v, 3) for k, v in row.items()}, indent=1), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(report, args.out / "benchmarks.json")
    write_text(args.out / "benchmarks.md", markdown(report, quick=args.quick))
    print((args.out / "benchmarks.md").read_text())


def paper_section(quick: bool, common: tuple) -> dict[str, dict[str, float]]:
    """Cost of the paper's MNIST architectures: an epoch with 1 and with 32 masks (the validation pass: see
    :func:`validation_section`)."""
    section = {}
    for label, hidden in (("1x8000", [8000]), ("2x8000", [8000, 8000])):
        row: dict[str, float] = {}
        steps = 3 if quick else 7
        row["epoch_1mask_s"], row["epoch_1mask_peak_mib"] = in_subprocess("paper_epoch", hidden, 1, steps, *common)
        row["epoch_32masks_s"], _ = in_subprocess("paper_epoch", hidden, 32, steps, *common)
        row["matmul_peak_gflops"], _ = in_subprocess("peak", hidden, 3, *common)
        row["epoch_1mask_gflops"] = train_step_flops(hidden) * 500 / row["epoch_1mask_s"] / 1e9
        row["epoch_1mask_fraction_of_peak"] = row["epoch_1mask_gflops"] / row["matmul_peak_gflops"]
        section[label] = row
        print(label, json.dumps({k: round(v, 3) for k, v in row.items()}, indent=1), flush=True)
    return section


def paper_markdown(section: dict[str, dict[str, float]]) -> list[str]:
    if not section:
        return []
    lines = [
        "## The paper's architectures (MNIST, Adagrad, orthogonal init)",
        "",
        "Seconds per training epoch (500 minibatches of 100) from the median of timed steps on the path training",
        "takes (one mask: the structured path, from 1000 hidden units on CPU; 32 masks: dense); with 32 masks the",
        "mask changes every minibatch (the 32-mask validation pass is in the section above). GFLOP/s: the one-mask",
        "epoch's dense-equivalent matmul FLOPs per second; of peak: that over plain `torch.mm` doing the same matmuls",
        "(above 100% when the structured path skips the masked-out half).",
        "",
        "| architecture | s/epoch, 1 mask | s/epoch, 32 masks | GFLOP/s (1 mask) | of peak |",
        "|---|---|---|---|---|",
    ]
    for label, r in section.items():
        lines.append(
            f"| {label} | {r['epoch_1mask_s']:.1f} | {r['epoch_32masks_s']:.1f} | "
            f"{r['epoch_1mask_gflops']:.0f} | {100 * r['epoch_1mask_fraction_of_peak']:.0f}% |"
        )
    return lines + [""]


def markdown(report: dict, quick: bool) -> str:
    lines = [
        "# Benchmarks: this library vs a naive reference MADE",
        "",
        f"Measured by `make bench` on {report['machine']} ({report['device']}, torch {report['torch']}), "
        f"binarized-MNIST-sized models (D = {report['D']}, direct connections, batch {report['batch']}).",
        "Medians of repeated runs after warm-up (with K masks the warm-up builds every mask, as a training's first",
        "epoch does); each figure from a fresh process that keeps freed memory for reuse, as training does",
        "(`keep_freed_memory`: no fresh pages, and no page faults, for each step's gradients); ratios come from the same run.",
        "The naive reference (in `benchmarks/bench.py`) multiplies every weight by its mask on every forward",
        "pass with one `nn.Linear`-style layer per weight matrix and PyTorch's default optimizer; `naive+fused`",
        "is the same model with the fused optimizer the library uses, to separate the two effects.",
        "" if not quick else "\n**Quick run (few steps): not for reporting.**\n",
    ]
    lines += training_markdown(report.get("training", {}))
    lines += validation_markdown(report.get("validation", {}))
    lines += paper_markdown(report.get("paper", {}))
    for label, r in report["models"].items():
        lines += [
            f"## {label}",
            "",
            "| measurement | naive | naive+fused opt. | library | library / naive |",
            "|---|---|---|---|---|",
        ]
        for opt in ("adagrad", "adam"):
            lines.append(
                f"| training throughput, {opt} (examples/s) | {r[f'train_{opt}_naive_examples_per_s']:.0f} | "
                f"{r[f'train_{opt}_naive+fused_examples_per_s']:.0f} | {r[f'train_{opt}_library_examples_per_s']:.0f} | "
                f"{r[f'train_{opt}_speedup_vs_naive']:.2f}x ({r[f'train_{opt}_speedup_vs_naive_fused']:.2f}x vs naive+fused) |"
            )
            lines.append(
                f"| peak memory of training, {opt} (MiB) | {r[f'train_{opt}_naive_peak_mib']:.0f} | "
                f"{r[f'train_{opt}_naive+fused_peak_mib']:.0f} | {r[f'train_{opt}_library_peak_mib']:.0f} | |"
            )
        lines.append(
            f"| 100 exact samples (s) | {r['sample100_naive_s']:.3f} | | {r['sample100_library_s']:.4f} | "
            f"{r['sample100_speedup_vs_naive']:.1f}x faster |"
        )
        lines.append(
            f"| peak memory of sampling (MiB) | {r['sample100_naive_peak_mib']:.0f} | | {r['sample100_library_peak_mib']:.0f} | |"
        )
        lines += [
            "",
            f"- Matmul peak (plain `torch.mm` doing exactly the step's matmuls): {r['matmul_peak_gflops']:.1f} GFLOP/s; "
            f"library training step: {r['train_adagrad_library_gflops']:.1f} GFLOP/s with Adagrad "
            f"(**{100 * r['train_adagrad_fraction_of_peak']:.0f}%** of peak), {r['train_adam_library_gflops']:.1f} with Adam "
            f"({100 * r['train_adam_fraction_of_peak']:.0f}%).",
            f"- The library's own naive sampler (a full forward pass per dimension, kept as the exactness reference): "
            f"{r['sample100_library_naive_sampler_s']:.3f} s.",
            f"- Test-set evaluation, 10,000 images, 32-mask ensemble: **{r['ensemble32_test10000_s']:.1f} s** "
            f"(peak memory +{r['ensemble32_peak_mib']:.0f} MiB).",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
