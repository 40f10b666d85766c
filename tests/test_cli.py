"""The command line: train/evaluate/sample on a small file, and clear one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replication.__main__ import main


@pytest.fixture
def tiny_npz(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        f"{s}_data": rng.integers(0, 2, size=(n, 16)).astype(np.uint8) for s, n in (("train", 120), ("valid", 40), ("test", 40))
    }
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    return path


def test_train_evaluate_sample(tmp_path, tiny_npz, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", str(tiny_npz), "--hidden-sizes", "20", "20", "--num-masks", "2", "--order-agnostic",
            "--connectivity-agnostic", "--optimizer", "adam", "--lr", "0.01", "--max-epochs", "2", "--test-masks", "2",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["test_masks"] == 2 and metrics["model_config"]["hidden_sizes"] == [20, 20]
    assert metrics["test_nll"]["n"] == 40 and metrics["test_nll"]["stderr"] > 0
    assert metrics["data"]["sha256"] and (out / "model.pt").is_file()
    assert main(args) == 0  # rerun resumes from the finished checkpoint: same numbers
    assert json.loads((out / "metrics.json").read_text())["test_nll"] == metrics["test_nll"]
    assert main(["evaluate", str(out), "--test-masks", "2"]) == 0
    assert json.loads((out / "eval_test_2masks.json").read_text())["nats"] == pytest.approx(metrics["test_nll"]["nats"])
    assert main(["sample", str(out), "-n", "9", "--out", str(tmp_path / "grid.png")]) == 0
    samples = np.load(tmp_path / "grid.npy")
    assert samples.shape == (9, 16) and set(np.unique(samples)) <= {0, 1}
    assert (tmp_path / "grid.png").stat().st_size > 0


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "--dataset", "no_such_set", "--out", "x"], "unknown data set"),
        (["train", "--dataset", "missing.npz", "--out", "x"], "does not exist"),
        (["evaluate", "no_such_run"], "no_such_run does not exist"),
        (["sample", "no_such_run", "--out", "g.png"], "no_such_run does not exist"),
    ],
)
def test_errors_are_one_line(args, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "bad", [["--lr", "-1"], ["--activation", "gelu"], ["--hidden-sizes", "0"], ["--num-masks", "-2"], ["--optimizer", "rmsprop"]]
)
def test_invalid_arguments_are_refused(bad, tiny_npz, tmp_path, capsys):
    try:
        code = main(["train", "--dataset", str(tiny_npz), "--out", str(tmp_path / "r"), "--max-epochs", "1", *bad])
    except SystemExit as exc:  # argparse's own refusal (exit status 2, usage on stderr)
        code = exc.code
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_every_command_has_help(capsys):
    for command in ("train", "evaluate", "sample"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
    assert "--order-agnostic" in capsys.readouterr().out
