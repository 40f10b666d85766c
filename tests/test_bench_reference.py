"""A tiny correctness version of the benchmark: the naive reference computes what the library computes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

from replication.model.made import MADE
from replication.model.sampling import sample_fast

spec = importlib.util.spec_from_file_location("bench", Path(__file__).resolve().parents[1] / "benchmarks" / "bench.py")
bench = importlib.util.module_from_spec(spec)
sys.modules["bench"] = bench
spec.loader.exec_module(bench)


def test_naive_reference_matches_the_library_with_the_same_weights():
    hidden = [40, 30]
    naive = bench.NaiveMADE(hidden).double()
    lib = MADE(input_dim=bench.D, hidden_sizes=hidden, seed=0).double()  # mask 0 of seed 0, as the reference
    with torch.no_grad():
        for src, dst in zip([*naive.hidden, naive.out, naive.direct], [*lib.hidden, lib.output, lib.direct]):
            dst.weight.copy_(src.weight * src.mask)
            if src.bias is not None:
                dst.bias.copy_(src.bias)
    x = (torch.rand(7, bench.D, generator=torch.Generator().manual_seed(0)) < 0.3).double()
    assert torch.allclose(naive(x), lib(x), atol=1e-10)
    uniforms = torch.rand(5, bench.D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.equal(bench.naive_sample(naive, uniforms), sample_fast(lib, uniforms))


def test_flop_count_of_a_training_step():
    # 1x500: forward 2*B*(784*500 + 500*784 + 784*784); same again for weight grads; hidden-input grads 2*B*500*784
    b, d, h = bench.BATCH, bench.D, 500
    forward = 2 * b * (d * h + h * d + d * d)
    assert bench.train_step_flops([h]) == forward + forward + 2 * b * h * d


def test_the_structured_path_computes_every_kept_connection_and_little_more():
    """The structural limit counts the masks' nonzeros; the structured path computes at least those (else it would
    drop connections) and at most the bands' worth more: half a block per block, ``dense / (2 * BLOCKS)``."""
    from replication.training.structured import BLOCKS, StructuredMADE

    hidden = [300]
    kept = bench.structural_multiply_adds(hidden, masks=4)
    model = MADE(input_dim=bench.D, hidden_sizes=hidden, num_masks=4, order_agnostic=True, connectivity_agnostic=True, seed=0)
    computed = sum(StructuredMADE(model, k).multiply_adds for k in range(4)) / 4
    assert kept <= computed <= kept * (1 + 1.05 / BLOCKS)  # kept is about half the dense work


def test_the_training_table_shows_the_permutations_of_k_mask_steps():
    """The permutations a K-mask structured step cannot avoid are measured apart and shown; one-mask rows have none."""
    seconds = bench.permutation_seconds([30], 3, 2, device=torch.device("cpu"), sync=lambda: None)
    assert 0 < seconds < 1
    row = dict(naive=0.06, dense=0.05, structured=0.07, speedup=0.7, vs_naive=0.9, limit_s=0.01)
    lines = bench.training_markdown({"1x30, 3 masks": row | {"permutations": 0.031}, "1x30, 1 mask": row})
    assert lines[-3].endswith("| 31.0 |") and lines[-2].endswith("| none |")
