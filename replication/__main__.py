"""Command line: ``python -m replication {train,evaluate,sample} ...`` (see ``--help``).

The options of ``train`` are generated from the configuration dataclasses (``replication/config.py``): the same
names, defaults and choices as the fields of ``experiments.toml``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, DataError, ReplicationError
from .figures import save_grid
from .training.config import add_recipe_options, configs_from_recipe, recipe_from_args
from .training.data import BinaryDataset, load_dataset, registry
from .training.evaluate import evaluate_nll
from .training.files import atomic_path, write_json
from .training.record import RunRecord
from .training.runs import load_metrics, load_model, train_run


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replication", description="MADE (Germain et al. 2015): train, evaluate, sample."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train a MADE and write DIR/metrics.json and DIR/model.pt",
        description="Train a MADE with early stopping; rerunning the same command resumes from DIR/checkpoint.pt.",
    )
    train.add_argument("--dataset", required=True, help=f"a registered name ({', '.join(registry())}) or a path to an .npz")
    train.add_argument("--out", required=True, type=Path, help="run folder DIR")
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_recipe_options(train)

    evaluate = commands.add_parser(
        "evaluate",
        help="NLL of a trained run on a split",
        description="Evaluate a trained run; writes DIR/eval_<split>_<N>masks.json.",
    )
    evaluate.add_argument("run_dir", type=Path, metavar="DIR")
    evaluate.add_argument("--test-masks", type=int_at_least(1), default=1, help="masks in the ensemble")
    evaluate.add_argument("--split", choices=["test", "valid", "train"], default="test")
    evaluate.add_argument("--device", default=None)

    sample = commands.add_parser(
        "sample", help="draw exact samples and save an image grid", description="Draw exact ancestral samples from a trained run."
    )
    sample.add_argument("run_dir", type=Path, metavar="DIR")
    sample.add_argument("-n", type=int_at_least(1), default=100, help="number of samples")
    sample.add_argument("--mask", type=int_at_least(0), default=0, help="which mask of the set to sample with")
    sample.add_argument("--seed", type=int_at_least(0), default=0)
    sample.add_argument("--out", type=Path, required=True, help="image file (PNG) for the grid; the samples also go to <out>.npy")
    return parser


def cmd_train(args: argparse.Namespace) -> RunRecord:
    recipe = recipe_from_args(args)
    configs_from_recipe(recipe, input_dim=2)  # every option checked before the data are read
    data = load_dataset(args.dataset)
    model_config, train_config, eval_config = configs_from_recipe(recipe, data.dim)
    _, metrics = train_run(args.out, data, model_config, train_config, eval_config, args.device, not args.no_progress)
    print(
        f"test NLL {metrics.test_nll.nats:.2f} ± {metrics.test_nll.stderr:.2f} nats after {metrics.epochs} epochs "
        f"(best {metrics.best_epoch}); written to {args.out / 'metrics.json'}"
    )
    return metrics


def run_data(metrics: RunRecord) -> BinaryDataset:
    """The data set a run was trained on: by registered name or by its recorded path, checked by SHA-256."""
    saved = metrics.data
    data = load_dataset(saved.get("source") or saved["name"])
    if data.sha256 != saved["sha256"]:
        raise DataError(f"{data.source} has SHA-256 {data.sha256[:12]}..., but the run was trained on {saved['sha256'][:12]}...")
    return data


def cmd_evaluate(args: argparse.Namespace) -> dict:
    metrics = load_metrics(args.run_dir)
    model = load_model(args.run_dir, args.device)
    data = run_data(metrics)
    nll = evaluate_nll(model, data.split(args.split), n_masks=args.test_masks)
    result = {"split": args.split, **nll.as_dict()}
    write_json(result, args.run_dir / f"eval_{args.split}_{args.test_masks}masks.json")
    print(f"{args.split} NLL: {nll}")
    return result


def cmd_sample(args: argparse.Namespace) -> None:
    metrics = load_metrics(args.run_dir)
    model = load_model(args.run_dir)
    masks = model.config.num_masks
    if masks and args.mask >= masks:
        raise ConfigError(f"--mask {args.mask}: this run has {masks} mask(s), numbered 0 to {masks - 1}")
    samples = model.sample(args.n, args.mask, generator=torch.Generator().manual_seed(args.seed)).numpy()
    info = registry().get(metrics.data["name"])
    image_shape = info.image_shape if info and not metrics.data.get("source") else None
    save_grid(samples, args.out, image_shape, title=f"{args.n} samples, mask {args.mask}")
    with atomic_path(args.out.with_suffix(".npy"), suffix=".tmp.npy") as tmp:
        np.save(tmp, samples.astype(np.uint8))
    print(f"wrote {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample}[args.command](args)
    except ReplicationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume from the last finished epoch", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
