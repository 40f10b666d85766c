"""Hostile but fair input through the public CLI: a one-line error and a non-zero exit, never a traceback, never a
silent wrong success, never a file that runs code; kills at random moments resume to bit-identical results."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from filelock import FileLock

from replication.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--hidden-sizes", "16", "--max-epochs", "2", "--no-progress"]
NO_SUCH_CUDA = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def npz(path: Path, rows: tuple[int, int, int] = (60, 20, 20), dim: int = 12, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    splits = {f"{s}_data": rng.integers(0, 2, size=(n, dim)).astype(np.uint8) for s, n in zip(("train", "valid", "test"), rows)}
    np.savez(path, **splits)
    return path


@pytest.fixture
def data(tmp_path) -> Path:
    return npz(tmp_path / "data.npz")


@pytest.fixture
def trained(tmp_path, data) -> Path:
    """A finished one-mask run folder."""
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--out", str(out), *QUICK]) == 0
    return out


def refused(args: list[str], capsys, *expected: str) -> str:
    """Run the CLI; it must exit non-zero with one short line on stderr holding every ``expected`` text."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code != 0, err
    assert "Traceback" not in err and len(err.splitlines()) == 1 or err.startswith("usage:"), err
    for text in expected:
        assert text in err, err
    return err


class RunsCode:
    """Unpickling this runs a shell command: what a crafted checkpoint would do with ``weights_only=False``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("file", ["checkpoint.pt", "model.pt"])
def test_a_crafted_file_is_refused_and_runs_no_code(file, tmp_path, trained, data, capsys):
    marker = tmp_path / "code-ran"
    with open(trained / file, "wb") as f:
        pickle.dump({"format": 2, "payload": RunsCode(marker)}, f)
    args = ["evaluate", str(trained)] if file == "model.pt" else ["train", "--dataset", str(data), "--out", str(trained), *QUICK]
    refused(args, capsys, file, "not a readable file")
    assert not marker.exists()
    torch.save({"payload": RunsCode(marker)}, trained / file)  # the same through torch.save's zip format
    refused(args, capsys, file)
    assert not marker.exists()


@pytest.mark.parametrize(
    "options, expected",
    [
        (["--lr", "inf"], "lr must be"),
        (["--lr", "nan"], "lr must be"),
        (["--lr", "-1"], "lr must be"),
        (["--seed", "-1"], "seed must be"),
        (["--dropout", "1.0"], "dropout must be"),
        (["--num-masks", "-2"], "num_masks must be"),
        (["--hidden-sizes", "0"], "hidden_sizes must be"),
        (["--device", "bogus"], "device 'bogus'"),
        (["--device", "cuda:99"], "cuda:99"),
        (["--device", NO_SUCH_CUDA], NO_SUCH_CUDA),  # plain "cuda" where this machine has none
        (["--hidden-sizes", "2000000", "2000000"], "use smaller hidden_sizes"),
    ],
)
def test_bad_options_are_refused_before_any_work(options, expected, tmp_path, data, capsys):
    out = tmp_path / "run"
    refused(["train", "--dataset", str(data), "--out", str(out), *QUICK, *options], capsys, expected)
    assert not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_an_empty_split_is_refused_before_training(split, tmp_path, capsys):
    rows = {"train": (0, 20, 20), "valid": (60, 0, 20), "test": (60, 20, 0)}[split]
    path = npz(tmp_path / "empty.npz", rows)
    out = tmp_path / "run"
    refused(["train", "--dataset", str(path), "--out", str(out), *QUICK], capsys, f"{split}_data has no rows")
    assert not (out / "checkpoint.pt").exists()


def test_an_output_path_that_is_a_file_or_cannot_be_created_is_refused(tmp_path, data, capsys):
    file = tmp_path / "a-file"
    file.write_text("x")
    refused(["train", "--dataset", str(data), "--out", str(file), *QUICK], capsys, "is a file")
    refused(["train", "--dataset", str(data), "--out", "/proc/made-run", *QUICK], capsys, "cannot create")


def test_a_finished_run_refuses_other_data_of_the_same_shape(tmp_path, trained, capsys):
    other = npz(tmp_path / "other.npz", seed=1)
    before = (trained / "metrics.json").read_text()
    refused(["train", "--dataset", str(other), "--out", str(trained), *QUICK], capsys, "other data")
    assert (trained / "metrics.json").read_text() == before


def test_a_changed_recipe_in_a_run_folder_is_refused(trained, data, capsys):
    refused(["train", "--dataset", str(data), "--out", str(trained), *QUICK, "--lr", "0.5"], capsys, "different configuration")


def test_sampling_a_mask_the_run_does_not_have_is_refused(tmp_path, trained, capsys):
    refused(["sample", str(trained), "--mask", "99", "--out", str(tmp_path / "g.png")], capsys, "--mask 99", "1 mask")
    assert not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_says_how_to_restart(damage, trained, data, capsys):
    path = trained / "checkpoint.pt"
    content = path.read_bytes()
    path.write_bytes({"truncated": content[: len(content) // 2], "garbage": os.urandom(2000), "empty": b""}[damage])
    args = ["train", "--dataset", str(data), "--out", str(trained), *QUICK]
    refused(args, capsys, "checkpoint.pt", "delete it to train this run afresh")
    path.unlink()  # the documented way to restart
    assert main(args) == 0


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_model_file_is_refused(damage, trained, capsys):
    path = trained / "model.pt"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 3] if damage == "truncated" else os.urandom(500))
    refused(["evaluate", str(trained)], capsys, "model.pt")


def test_a_diverging_run_stops_with_an_error(tmp_path, data, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", str(data), "--out", str(out), "--optimizer", "sgd", "--lr", "1e30", *QUICK]
    refused(args, capsys, "diverged", "lower the learning rate")
    assert not (out / "metrics.json").exists()


def test_a_run_folder_in_use_is_refused(tmp_path, data, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with FileLock(out / "lock", timeout=0):
        refused(["train", "--dataset", str(data), "--out", str(out), *QUICK], capsys, "in use by another process")


def cli(args: list[str]) -> subprocess.Popen:
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "replication", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def checkpoint_time(run_dir: Path) -> int:
    """When the run folder's checkpoint was last written (0 before the first)."""
    path = run_dir / "checkpoint.pt"
    return path.stat().st_mtime_ns if path.exists() else 0


def test_kills_at_random_moments_resume_to_bit_identical_results(tmp_path):
    data = npz(tmp_path / "data.npz", rows=(3000, 300, 300), dim=40)
    recipe = ["--dataset", str(data), "--hidden-sizes", "64", "64", "--num-masks", "3", "--order-agnostic",
              "--connectivity-agnostic", "--dropout", "0.1", "--optimizer", "adam", "--lr", "0.003",
              "--max-epochs", "12", "--patience", "50", "--test-masks", "3", "--no-progress"]  # fmt: skip
    straight = cli(["train", *recipe, "--out", str(tmp_path / "straight")])
    assert straight.wait(timeout=300) == 0, straight.stderr.read()
    rng, kills, out = random.Random(7), 0, tmp_path / "killed"
    for _ in range(100):  # every round makes progress (a new checkpoint) before its kill, so this ends
        if (out / "metrics.json").exists():
            break
        proc = cli(["train", *recipe, "--out", str(out)])
        before = checkpoint_time(out)
        while proc.poll() is None and checkpoint_time(out) == before:  # started and saved an epoch: however
            time.sleep(0.02)  # slow the machine, the kill below comes after progress, never during start-up
        time.sleep(rng.uniform(0.0, 0.3))  # then a random moment: mid-epoch, mid-write of a file, or after the end
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            continue
        assert proc.returncode == 0, proc.stderr.read()
    assert (out / "metrics.json").exists()
    assert kills >= 2
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("straight", "killed"))
    assert a["history"] == b["history"] and a["test_nll"] == b["test_nll"]
    ma, mb = (torch.load(tmp_path / d / "model.pt", weights_only=True)["state"] for d in ("straight", "killed"))
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
