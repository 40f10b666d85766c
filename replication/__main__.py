"""Command line: ``python -m replication {train,evaluate,sample} ...`` (see ``--help``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .data import load_dataset, registry
from .errors import ReplicationError
from .evaluate import evaluate_nll
from .made import MADEConfig
from .report_images import save_grid
from .runs import load_metrics, load_model, train_run, write_json
from .train import OPTIMIZERS, TrainConfig


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


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
    train.add_argument(
        "--hidden",
        type=positive_int,
        action="append",
        help="hidden layer size; repeat for more layers (default: one layer of 500)",
    )
    train.add_argument(
        "--masks", type=int, default=1, help="number of masks K cycled over minibatches (0 = a new mask every minibatch)"
    )
    train.add_argument("--order-agnostic", action="store_true", help="resample the input ordering per mask")
    train.add_argument("--connectivity-agnostic", action="store_true", help="resample hidden connectivity per mask")
    train.add_argument("--random-ordering", action="store_true", help="use one random ordering instead of the natural one")
    train.add_argument("--no-direct", action="store_true", help="drop the direct input-to-output connections")
    train.add_argument("--activation", choices=["relu", "tanh", "sigmoid"], default="relu")
    train.add_argument("--init", choices=["default", "orthogonal"], default="default", help="weight initialisation")
    train.add_argument("--dropout", type=non_negative_float, default=0.0, help="dropout rate on hidden units")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adagrad")
    train.add_argument("--lr", type=float, default=0.01, help="learning rate")
    train.add_argument("--batch-size", type=positive_int, default=100)
    train.add_argument("--weight-decay", type=non_negative_float, default=0.0, help="L2 penalty")
    train.add_argument("--patience", type=int, default=30, help="early-stopping look-ahead in epochs")
    train.add_argument("--max-epochs", type=positive_int, default=1000)
    train.add_argument("--valid-masks", type=positive_int, default=1, help="masks in the validation ensemble for early stopping")
    train.add_argument("--test-masks", type=positive_int, default=1, help="masks in the test ensemble")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--out", required=True, type=Path, help="run folder DIR")

    evaluate = commands.add_parser(
        "evaluate",
        help="NLL of a trained run on a split",
        description="Evaluate a trained run; writes DIR/eval_<split>_<N>masks.json.",
    )
    evaluate.add_argument("run_dir", type=Path, metavar="DIR")
    evaluate.add_argument("--test-masks", type=positive_int, default=1, help="masks in the ensemble")
    evaluate.add_argument("--split", choices=["test", "valid", "train"], default="test")
    evaluate.add_argument("--device", default=None)

    sample = commands.add_parser(
        "sample", help="draw exact samples and save an image grid", description="Draw exact ancestral samples from a trained run."
    )
    sample.add_argument("run_dir", type=Path, metavar="DIR")
    sample.add_argument("-n", type=positive_int, default=100, help="number of samples")
    sample.add_argument("--mask", type=int, default=0, help="which mask of the set to sample with")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", type=Path, required=True, help="image file (PNG) for the grid; the samples also go to <out>.npy")
    return parser


def cmd_train(args: argparse.Namespace) -> dict:
    data = load_dataset(args.dataset)
    model_config = MADEConfig(
        input_dim=data.dim, hidden_sizes=args.hidden or [500], direct=not args.no_direct, activation=args.activation,
        num_masks=args.masks, order_agnostic=args.order_agnostic, connectivity_agnostic=args.connectivity_agnostic,
        random_ordering=args.random_ordering, dropout=args.dropout, init=args.init, seed=args.seed,
    )  # fmt: skip
    train_config = TrainConfig(
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
        patience=args.patience, max_epochs=args.max_epochs, valid_masks=args.valid_masks, seed=args.seed,
    )  # fmt: skip
    metrics = train_run(args.out, data, model_config, train_config, args.test_masks, args.device, not args.no_progress)
    print(
        f"test NLL {metrics['test_nll']['nats']:.2f} ± {metrics['test_nll']['stderr']:.2f} nats after {metrics['epochs']} epochs "
        f"(best {metrics['best_epoch']}); written to {args.out / 'metrics.json'}"
    )
    return metrics


def cmd_evaluate(args: argparse.Namespace) -> dict:
    metrics = load_metrics(args.run_dir)
    model = load_model(args.run_dir, args.device)
    data = load_dataset(metrics["data"]["source"] if Path(metrics["data"]["source"]).is_file() else metrics["data"]["name"])
    nll = evaluate_nll(model, data.split(args.split), n_masks=args.test_masks)
    result = {"split": args.split, **nll.as_dict()}
    write_json(result, args.run_dir / f"eval_{args.split}_{args.test_masks}masks.json")
    print(f"{args.split} NLL: {nll}")
    return result


def cmd_sample(args: argparse.Namespace) -> None:
    metrics = load_metrics(args.run_dir)
    model = load_model(args.run_dir)
    model.set_mask(args.mask)
    samples = model.sample(args.n, generator=torch.Generator().manual_seed(args.seed)).numpy()
    shape = registry().get(metrics["data"]["name"])
    image_shape = shape.image_shape if shape else None
    save_grid(samples, args.out, image_shape, title=f"{args.n} samples, mask {args.mask}")
    import numpy as np

    np.save(args.out.with_suffix(".npy"), samples.astype(np.uint8))
    print(f"wrote {args.out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample}[args.command](args)
    except ReplicationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # invalid model options (MADEConfig) and the like
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
