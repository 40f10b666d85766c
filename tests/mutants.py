"""`make mutants`: deliberate bugs in the core claims, applied one at a time to a scratch copy, each of which a test
must catch.

Each mutant replaces one exact snippet of one library file (a snippet that is no longer there is an error: the list
follows the code) and runs the tests that guard that claim; the report names the first test that failed. A mutant
that every test survives, or a baseline that fails unmutated, exits with status 1. Not part of `make test`: it runs
the selected tests once per mutant (a few minutes on 2 cores).

    python tests/mutants.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    claim: str
    path: str  # under replication/
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments: files, node ids, or "-k" expressions


MUTANTS = (
    Mutant("output_mask_ge", "output d sees only inputs before it", "model/masks.py",
           "output = (inputs[:, None] > layers[-1][None, :])", "output = (inputs[:, None] >= layers[-1][None, :])",
           ("tests/test_masks.py", "tests/test_made.py")),
    Mutant("direct_mask_ge", "direct links see only earlier inputs", "model/masks.py",
           "direct = (inputs[:, None] > inputs[None, :])", "direct = (inputs[:, None] >= inputs[None, :])",
           ("tests/test_masks.py", "tests/test_made.py")),
    Mutant("hidden_degrees_reach_D", "hidden degrees lie in [min of the layer below, D-1]", "model/masks.py",
           "layer = rng.integers(low, input_dim, size=size)", "layer = rng.integers(low, input_dim + 1, size=size)",
           ("tests/test_masks.py",)),
    Mutant("ensemble_averages_log_probabilities", "an ensemble averages its masks' probabilities", "model/made.py",
           "return torch.logsumexp(log_probs, dim=0) - math.log(log_probs.shape[0])", "return log_probs.mean(dim=0)",
           ("tests/test_evaluate.py", "tests/test_made.py")),
    Mutant("evaluation_scores_one_mask", "evaluation scores every mask of the ensemble", "training/evaluate.py",
           "for k in model.mask_set.ensemble(n_masks):", "for k in model.mask_set.ensemble(1):",
           ("tests/test_evaluate.py",)),
    Mutant("training_stays_on_mask_0", "each minibatch trains under the next mask", "training/train.py",
           "self.mask_index = self.model.mask_set.following(self.mask_index)", "self.mask_index = self.mask_index",
           ("tests/test_schedule.py",)),
    Mutant("official_schedule_scores_the_first_mask", "the official ensembles start at the second mask",
           "model/masks.py", 'SCHEDULE_OFFSETS = {"cycled": 0, "official": 1}',
           'SCHEDULE_OFFSETS = {"cycled": 0, "official": 0}', ("tests/test_schedule.py",)),
    Mutant("minibatches_never_shuffled", "shuffled minibatches are a new permutation every epoch", "training/train.py",
           "return torch.randperm(rows, generator=self.shuffle_rng).to(self.device)",
           "return torch.arange(rows, device=self.device)", ("tests/test_schedule.py",)),
    Mutant("fixed_order_shuffled", "the fixed order takes the same consecutive rows every epoch", "training/train.py",
           'if self.config.minibatch_order == "fixed":', "if False:", ("tests/test_schedule.py",)),
    Mutant("look_ahead_one_epoch_long", "early stopping waits exactly `patience` epochs", "training/train.py",
           'return self.epoch - self.best["epoch"] >= self.config.patience',
           'return self.epoch - self.best["epoch"] > self.config.patience', ("tests/test_evaluate.py",)),
    Mutant("best_parameters_not_restored", "a finished run holds its best validation epoch's parameters",
           "training/train.py", 'self.model.load_state_dict(self.best["state"])\n        return TrainResult(',
           "return TrainResult(", ("tests/test_train.py",)),
    Mutant("test_nll_on_the_validation_split", "the test NLL is the test split's", "training/runs.py",
           "test_nll = -log_likelihoods(model, data.test,", "test_nll = -log_likelihoods(model, data.valid,",
           ("tests/test_evaluate.py",)),
    Mutant("stderr_with_n", "a run's standard error is sd(ddof=1)/sqrt(n)", "training/evaluate.py",
           "values.double().std(unbiased=True)", "values.double().std(unbiased=False)", ("tests/test_evaluate.py",)),
    Mutant("bits_per_dim_without_ln2", "bits/dim is nats/(D ln 2)", "training/evaluate.py",
           "mean / (dim * math.log(2))", "mean / dim", ("tests/test_evaluate.py",)),
    Mutant("paired_stderr_with_n", "a paired standard error is sd(ddof=1)/sqrt(n) of the differences", "tables.py",
           "np.std(first - second, ddof=1)", "np.std(first - second, ddof=0)",
           ("tests/test_study_tables.py", "-k", "paired_stderr or variant")),
    Mutant("reproduced_within_half_a_nat", "reproduced means within 1 nat", "tables.py",
           "REPRODUCED_WITHIN = 1.0", "REPRODUCED_WITHIN = 0.5", ("tests/test_experiments.py", "-k", "verdict or reproduced")),
    Mutant("reproduced_excludes_one_nat", "a difference of exactly 1 nat is reproduced", "tables.py",
           'return "reproduced" if difference <= REPRODUCED_WITHIN else "gap"',
           'return "reproduced" if difference < REPRODUCED_WITHIN else "gap"',
           ("tests/test_experiments.py", "-k", "verdict or reproduced")),
    Mutant("official_adagrad_eps", "the official Adagrad steps by lr*g/sqrt(G + 1e-6)", "training/optimizers.py",
           "eps: float = 1e-6", "eps: float = 1e-8", ("tests/test_optimizers.py",)),
    Mutant("training_time_counts_stops", "a run stopped with SIGSTOP records its running time only", "training/clock.py",
           "if late > self._slack:", "if late > self._slack + 1e9:",
           ("tests/test_clock.py",)),
)  # fmt: skip


def scratch_copy(into: Path) -> None:
    """The project with its own copies of ``replication/`` and ``tests/`` (the rest linked, read only)."""
    for entry in ROOT.iterdir():
        if entry.name in (".git", ".venv") or entry.name.startswith("."):
            continue
        if entry.name in ("replication", "tests"):
            shutil.copytree(entry, into / entry.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (into / entry.name).symlink_to(entry)


def run_tests(where: Path, tests: tuple[str, ...]) -> tuple[bool, str]:
    """Run ``tests`` in ``where``; whether they passed, and the first failing test's id."""
    env = {**os.environ, "PYTHONPATH": str(where), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rf", "--durations=0", *tests]
    done = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.MULTILINE)
    return done.returncode == 0, failed[0] if failed else done.stdout.strip().splitlines()[-1:][0] if done.stdout else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=[], help="mutant names")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - {m.name for m in MUTANTS})
    if unknown:
        parser.error(f"unknown mutants {unknown}")
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    with tempfile.TemporaryDirectory(prefix="mutants-") as scratch:
        where = Path(scratch)
        scratch_copy(where)
        probe = subprocess.run([sys.executable, "-c", "import replication; print(replication.__file__)"], cwd=where,
                               env={**os.environ, "PYTHONPATH": str(where)}, capture_output=True, text=True)  # fmt: skip
        if not probe.stdout.startswith(str(where)):
            print(f"error: the scratch copy imports replication from {probe.stdout.strip()}", file=sys.stderr)
            return 1
        baseline = tuple(dict.fromkeys(t for m in chosen for t in m.tests if t.endswith(".py")))
        passed, failure = run_tests(where, baseline)
        if not passed:
            print(f"error: the unmutated tests fail ({failure}); fix them first", file=sys.stderr)
            return 1
        survivors = 0
        print(f"{'mutant':45} {'claim':62} caught by")
        for mutant in chosen:
            target = where / "replication" / mutant.path
            original = target.read_text()
            if original.count(mutant.old) != 1:
                print(f"error: mutant {mutant.name}: its snippet is not in replication/{mutant.path} exactly once",
                      file=sys.stderr)  # fmt: skip
                return 1
            target.write_text(original.replace(mutant.old, mutant.new))
            try:
                passed, failure = run_tests(where, mutant.tests)
            finally:
                target.write_text(original)
            survivors += passed
            print(f"{mutant.name:45} {mutant.claim:62} {'SURVIVED' if passed else failure}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} mutants caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
