"""Command line: ``python -m replication {train,evaluate,sample,complete} ...`` (see ``--help``).

The options of ``train`` are generated from the configuration dataclasses (``replication/training/config.py``): the same
names, defaults and choices as the fields of ``experiments.toml``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from .cli import SEED, exit_status, int_at_least, nonblank, nonblank_path
from .completions import one_per_class, top_half, write_completions
from .errors import ConfigError, DataError, ReplicationError
from .experiment_record import CompletionFigure
from .figures import save_grid
from .files import atomic_path, write_json
from .model.conditional import observed_first
from .model.made import MADE
from .training.config import add_recipe_options, check_ensemble, configs_from_recipe, recipe_from_args
from .training.data import BinaryDataset, load_dataset, registry
from .training.device import memory_words, usable_bytes
from .training.evaluate import evaluate_nll, plus_minus
from .training.record import RunRecord
from .training.runs import load_metrics, load_model, train_run


def image_path(text: str) -> Path:
    """An argparse type: a non-empty path to an image file in a format matplotlib writes, not an existing folder."""
    from matplotlib.figure import Figure

    if not text.strip():
        raise argparse.ArgumentTypeError("must be a file path, got an empty one")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give an image file such as {Path(text) / 'samples.png'}")
    formats = Figure().canvas.get_supported_filetypes()
    if path.suffix.lstrip(".").lower() not in formats:
        raise argparse.ArgumentTypeError(
            f"{text!r} needs an image extension: one of {', '.join('.' + f for f in sorted(formats))}"
        )
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m replication", description="MADE (Germain et al. 2015): train, evaluate, sample, complete."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train a MADE and write DIR/metrics.json and DIR/model.pt",
        description="Train a MADE with early stopping; rerunning the same command resumes from DIR/checkpoint.pt.",
    )
    train.add_argument(
        "--dataset", required=True, type=nonblank, help=f"a registered name ({', '.join(registry())}) or a path to an .npz"
    )
    train.add_argument("--out", required=True, type=nonblank_path, help="run folder DIR")
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_recipe_options(train)

    evaluate = commands.add_parser(
        "evaluate",
        help="NLL of a trained run on a split",
        description="Evaluate a trained run; writes DIR/eval_<split>_<N>masks.json.",
    )
    evaluate.add_argument("run_dir", type=nonblank_path, metavar="DIR")
    evaluate.add_argument("--test-masks", type=int_at_least(1), default=1, help="masks in the ensemble")
    evaluate.add_argument("--split", choices=["test", "valid", "train"], default="test")
    evaluate.add_argument("--device", default=None)

    sample = commands.add_parser(
        "sample", help="draw exact samples and save an image grid", description="Draw exact ancestral samples from a trained run."
    )
    sample.add_argument("run_dir", type=nonblank_path, metavar="DIR")
    sample.add_argument("-n", type=int_at_least(1), default=100, help="number of samples")
    sample.add_argument("--mask", type=int_at_least(0), default=0, help="which mask of the set to sample with")
    sample.add_argument("--seed", type=SEED, default=0, help="seed of the draws")
    sample.add_argument(
        "--out", type=image_path, required=True, help="image file (PNG) for the grid; the samples also go to <out>.npy"
    )

    completion = commands.add_parser(
        "complete",
        help="complete the bottom half of test images given the top half, exactly",
        description="Draw exact completions p(bottom half | top half) of one test image per class (image data, and a "
        "mask whose ordering puts the top half first, such as a raster-ordered run's), and report the conditional "
        "NLL of the true bottom halves on the test split.",
    )
    completion.add_argument("run_dir", type=nonblank_path, metavar="DIR")
    completion.add_argument("--out", type=image_path, required=True, help="image file (PNG) for the figure")
    completion.add_argument("-k", type=int_at_least(1), default=5, help="completions per test image")
    completion.add_argument("--mask", type=int_at_least(0), default=0, help="which mask of the set to complete with")
    completion.add_argument("--seed", type=SEED, default=0, help="seed of the draws")
    return parser


def cmd_train(args: argparse.Namespace) -> RunRecord:
    recipe = recipe_from_args(args)
    configs_from_recipe(recipe, input_dim=2)  # every option checked before the data are read
    data = load_dataset(args.dataset)
    model_config, train_config, eval_config = configs_from_recipe(recipe, data.dim)
    _, metrics = train_run(args.out, data, model_config, train_config, eval_config, args.device, not args.no_progress)
    print(
        f"test NLL {plus_minus(metrics.test_nll.nats, metrics.test_nll.stderr)} nats after {metrics.epochs} epochs "
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
    model = load_model(args.run_dir, args.device, metrics)
    check_ensemble(model.config, args.test_masks, "--test-masks")
    data = run_data(metrics)
    nll = evaluate_nll(model, data.split(args.split), n_masks=args.test_masks)
    if not math.isfinite(nll.nats):
        raise ReplicationError(f"{args.run_dir / 'model.pt'} gives a non-finite {args.split} NLL ({nll.nats}); train it again")
    result = {"split": args.split, **nll.as_dict()}
    write_json(result, args.run_dir / f"eval_{args.split}_{args.test_masks}masks.json")
    print(f"{args.split} NLL: {nll}")
    return result


def refuse_run_files(run_dir: Path, *outputs: Path) -> None:
    """Refuse outputs that would write over a file of the run (its NLLs, model, metrics)."""
    targets = {path.resolve() for path in outputs}
    owned = sorted(p.name for p in run_dir.iterdir() if p.resolve() in targets)
    if owned:
        raise ConfigError(f"--out {outputs[0]} would write over {', '.join(owned)} of the run; choose another file")


def check_mask(model: MADE, mask: int) -> None:
    """Refuse a mask index the run's mask set does not have."""
    masks = model.mask_set.distinct if model.config.num_masks else 0
    if masks and mask >= masks:
        raise ConfigError(f"--mask {mask}: this run has {masks} mask(s), numbered 0 to {masks - 1}")


def cmd_sample(args: argparse.Namespace) -> None:
    metrics = load_metrics(args.run_dir)
    refuse_run_files(args.run_dir, args.out, args.out.with_suffix(".npy"))
    model = load_model(args.run_dir, None, metrics)
    check_mask(model, args.mask)
    check_draws_fit(args.n, model, f"-n {args.n} needs", "draw fewer samples")
    samples = model.sample(args.n, args.mask, generator=torch.Generator().manual_seed(args.seed)).numpy()
    info = registry().get(metrics.data["name"])
    image_shape = info.image_shape if info and not metrics.data.get("source") else None
    save_grid(samples, args.out, image_shape, title=f"{args.n} samples, mask {args.mask}")
    with atomic_path(args.out.with_suffix(".npy"), suffix=".tmp.npy") as tmp:
        np.save(tmp, samples.astype(np.uint8))
    print(f"wrote {args.out}")


def cmd_complete(args: argparse.Namespace) -> CompletionFigure:
    metrics = load_metrics(args.run_dir)
    refuse_run_files(args.run_dir, args.out)
    model = load_model(args.run_dir, None, metrics)
    check_mask(model, args.mask)
    data = run_data(metrics)
    if data.image_shape is None:
        raise ConfigError(f"{data.name} is not a registered image data set; completions need images with a top half")
    observed_first(model, top_half(data.image_shape), args.mask)  # refuses a mask that models the top half late
    rows = args.k * len(one_per_class(data)[0])
    check_draws_fit(rows, model, f"-k {args.k} draws {rows} completions, which need", "draw fewer")
    result = write_completions(model, data, args.out, args.run_dir.name, args.k, args.mask, args.seed)
    print(f"-log p(bottom half | top half) on the test split: {plus_minus(result.nll, result.stderr)} nats; wrote {args.out}")
    return result


def sampling_bytes(n: int, model: MADE) -> int:
    """Memory to draw ``n`` samples: uniforms, samples and the grid (float32 and float64 copies) plus each hidden
    layer's activations, all ``n`` rows at once."""
    width = model.config.input_dim + sum(model.config.hidden_sizes)
    return n * (8 * 4 * model.config.input_dim + 2 * 4 * width)


def check_draws_fit(rows: int, model: MADE, what: str, remedy: str) -> None:
    """Refuse, before drawing, ``rows`` samples or completions that do not fit the memory this process may use."""
    cpu = torch.device("cpu")
    need = sampling_bytes(rows, model)
    if need > usable_bytes(cpu):
        raise ConfigError(f"{what} about {need / 2**30:.1f} GiB, but only {memory_words(cpu)}; {remedy}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample, "complete": cmd_complete}
    resume = "interrupted; rerun the same command to resume from the last finished epoch"

    def run() -> int:
        commands[args.command](args)  # each returns what it wrote (for callers in Python); the status is 0
        return 0

    return exit_status(run, interrupted=resume)


if __name__ == "__main__":
    sys.exit(main())
