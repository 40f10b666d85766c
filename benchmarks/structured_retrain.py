"""Retrain committed one-mask runs with every training step on the structured path and compare their test NLL.

For each named experiment of the cpu profile, trains its exact recipe with ``Trainer(structured=True)`` (parameters
held in the sorted layout, see ``replication/training/structured.py``) into ``--runs`` (resumable), evaluates the test
split and compares it with the committed record in ``--results``: the difference and its paired standard error over
the same test digits. Writes ``--out`` (markdown).

Usage: ``python benchmarks/structured_retrain.py mnist_1x500_1mask mnist_1x2000_1mask [--out results/structured_retrain.md]``
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from replication.experiments import load_data, load_plan, metrics_path, per_example_path
from replication.files import write_text
from replication.model.made import MADE
from replication.training.device import keep_freed_memory
from replication.training.evaluate import log_likelihoods
from replication.training.record import read_record
from replication.training.train import Trainer, sorted_training_pays


def retrain(name: str, results: Path, runs: Path) -> dict:
    experiment = load_plan().experiment(name, "cpu")
    data = load_data(experiment)
    model_config, train_config, eval_config = experiment.configs(data.dim)
    model = MADE(model_config)
    started = time.perf_counter()
    result = Trainer(model, data, train_config, runs / f"{name}.pt", structured=True).run()
    nll = -log_likelihoods(model, data.test, n_masks=eval_config.test_masks).numpy()
    committed = read_record(metrics_path(results, name))
    committed_nll = np.load(per_example_path(results, name)).astype(np.float64)
    diff = nll - committed_nll
    return {
        "name": name, "automatic": sorted_training_pays(model), "epochs": result.epochs, "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early, "seconds": result.seconds, "wall": time.perf_counter() - started,
        "test": float(nll.mean()), "committed": committed.test_nll.nats, "committed_epochs": committed.epochs,
        "committed_best": committed.best_epoch, "diff": float(diff.mean()),
        "stderr": float(diff.std(ddof=1) / math.sqrt(len(diff))),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--runs", type=Path, default=Path("runs/structured_retrain"))
    parser.add_argument("--out", type=Path, default=Path("results/structured_retrain.md"))
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    keep_freed_memory()  # as `fit` does
    rows = [retrain(name, args.results, args.runs) for name in args.names]
    lines = [
        "# Committed one-mask runs retrained on the structured training path",
        "",
        "Each run's exact recipe retrained with every training step on the structured path (`Trainer(structured=True)`:",
        "parameters and optimizer state held in the mask's sorted layout, staircase products), on "
        f"{torch.get_num_threads()} thread(s). Test split, nats; the difference is paired over the same test digits. Written by",
        "`benchmarks/structured_retrain.py`.",
        "",
        "| run | path chosen by itself | epochs (best) | committed epochs (best) | test NLL | committed | difference ± stderr |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {'structured' if r['automatic'] else 'dense'} | {r['epochs']} ({r['best_epoch']}) | "
            f"{r['committed_epochs']} ({r['committed_best']}) | {r['test']:.2f} | {r['committed']:.2f} | "
            f"{r['diff']:+.3f} ± {r['stderr']:.3f} |"
        )
    write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
