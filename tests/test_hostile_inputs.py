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
        (["--hidden-sizes", "2000000", "2000000"], "mostly for the weights of hidden_sizes [2000000, 2000000]"),
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


# ---------------------------------------------------------------- second round: data files


def zip_member(path: Path, name: str, content: bytes, method: int = 0) -> Path:
    """An .npz with the normal splits plus (or instead of) member ``name`` holding ``content``."""
    import zipfile

    good = npz(path.with_name("good-" + path.name))
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for info in source.infolist():
            if info.filename != name:
                target.writestr(info, source.read(info))
        target.writestr(zipfile.ZipInfo(name), content, compress_type=method)
    return path


def huge_header(shape: tuple[int, ...]) -> bytes:
    """The header of a .npy that declares ``shape`` of float64, without its data."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def patch_member(path: Path, name: str, *, flag: int = 0, method: int | None = None) -> Path:
    """Set a zip member's general-purpose flag bits and/or compression method in both of its headers."""
    data = bytearray(path.read_bytes())
    encoded = name.encode()
    for signature, flag_at, method_at, name_at in ((b"PK\x03\x04", 6, 8, 30), (b"PK\x01\x02", 8, 10, 46)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            if data[start + name_at : start + name_at + len(encoded)] == encoded:
                data[start + flag_at] |= flag
                if method is not None:
                    data[start + method_at : start + method_at + 2] = method.to_bytes(2, "little")
            start += 4
    path.write_bytes(bytes(data))
    return path


def data_file_cases(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    rows = {f"{s}_data": np.zeros((n, 12), dtype=np.uint8) for s, n in (("train", 60), ("valid", 20), ("test", 20))}
    cases = {}
    np.savez(tmp_path / "inputsize.npz", **rows, inputsize=np.array([12, 12]))
    cases["inputsize of two numbers"] = (tmp_path / "inputsize.npz", "inputsize must be a single whole number")
    np.savez(tmp_path / "length.npz", **rows, train_length=np.array("60"))
    cases["a length that is text"] = (tmp_path / "length.npz", "train_length must be a single whole number")
    zip_member(tmp_path / "notarray.npz", "valid_data.npy", b"these bytes are no array")
    cases["a member that is not an array"] = (tmp_path / "notarray.npz", "'valid_data' is not a numpy array")
    zip_member(tmp_path / "huge.npz", "train_data.npy", huge_header((10**7, 10**6)))
    cases["a shape beyond memory"] = (tmp_path / "huge.npz", "but only")
    zip_member(tmp_path / "bomb.npz", "train_data.npy", huge_header((10**7, 10**6)) + bytes(10**5), method=8)
    cases["a compressed member expanding past memory"] = (tmp_path / "bomb.npz", "but only")
    patch_member(npz(tmp_path / "locked.npz"), "test_data.npy", flag=1)
    cases["an encrypted member"] = (tmp_path / "locked.npz", "'test_data' is encrypted")
    patch_member(npz(tmp_path / "odd.npz"), "test_data.npy", method=99)
    cases["an unsupported compression"] = (tmp_path / "odd.npz", "unsupported compression")
    (tmp_path / "text.npz").write_text("train_data,valid_data\n0,1\n")
    cases["a file that is not an npz"] = (tmp_path / "text.npz", "is not an .npz file")
    (tmp_path / "folder.npz").mkdir()
    cases["a folder"] = (tmp_path / "folder.npz", "is a folder")
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "inputsize of two numbers", "a length that is text", "a member that is not an array", "a shape beyond memory",
        "a compressed member expanding past memory", "an encrypted member", "an unsupported compression",
        "a file that is not an npz", "a folder",
    ],
)  # fmt: skip
def test_a_malformed_data_file_is_refused_in_one_line(case, tmp_path, capsys):
    path, expected = data_file_cases(tmp_path)[case]
    out = tmp_path / "run"
    err = refused(["train", "--dataset", str(path), "--out", str(out), *QUICK], capsys, str(path), expected)
    assert "allow_pickle" not in err and not (out / "checkpoint.pt").exists()


def test_a_registered_data_set_with_other_content_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MADE_DATA_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    splits = {
        f"{s}_data": rng.integers(0, 2, size=(n, 180)).astype(np.uint8) for s, n in (("train", 30), ("valid", 9), ("test", 9))
    }
    np.savez(tmp_path / "dna.npz", **splits)  # the right shape, not the registered file
    refused(["train", "--dataset", "dna", "--out", str(tmp_path / "run"), *QUICK], capsys, "is not the registered dna")
    assert main(["train", "--dataset", str(tmp_path / "dna.npz"), "--out", str(tmp_path / "own"), *QUICK]) == 0  # by path
    assert json.loads((tmp_path / "own" / "metrics.json").read_text())["data"]["source"] == str(tmp_path / "dna.npz")


# ---------------------------------------------------------------- second round: command line


def test_a_seed_beyond_the_generators_range_is_refused_and_leaves_no_lock(tmp_path, data, capsys):
    out = tmp_path / "run"
    refused(["train", "--dataset", str(data), "--out", str(out), *QUICK, "--seed", str(2**64)], capsys, "seed must be")
    assert not out.exists()


@pytest.mark.parametrize("target", ["", "FOLDER", "grid.xyz"])
def test_sample_refuses_an_output_that_is_empty_a_folder_or_not_an_image(target, tmp_path, trained, capsys):
    out = {"": "", "FOLDER": str(tmp_path), "grid.xyz": str(tmp_path / "grid.xyz")}[target]
    refused(["sample", str(trained), "-n", "4", "--out", out], capsys, "--out")
    assert not (tmp_path / "grid.xyz").exists()


def test_sample_checks_memory_before_drawing(trained, tmp_path, capsys):
    refused(["sample", str(trained), "-n", str(10**13), "--out", str(tmp_path / "g.png")], capsys, "-n", "GiB")


def test_sample_never_writes_over_a_file_of_the_run(trained, capsys):
    before = (trained / "test_nll.npy").read_bytes()
    refused(["sample", str(trained), "-n", "4", "--out", str(trained / "test_nll.png")], capsys, "test_nll.npy")
    assert (trained / "test_nll.npy").read_bytes() == before


# ---------------------------------------------------------------- second round: run folders


def test_a_malformed_metrics_field_is_reported_with_its_path(trained, capsys):
    metrics = json.loads((trained / "metrics.json").read_text())
    (trained / "metrics.json").write_text(json.dumps({**metrics, "data": ["not", "a", "fingerprint"]}))
    refused(["evaluate", str(trained)], capsys, str(trained / "metrics.json"), "'data'")


def test_a_malformed_checkpoint_field_is_reported_with_its_path(trained, data, capsys):
    state = torch.load(trained / "checkpoint.pt", weights_only=True)
    torch.save({**state, "epoch": "2"}, trained / "checkpoint.pt")
    refused(["train", "--dataset", str(data), "--out", str(trained), *QUICK], capsys, "checkpoint.pt", "'epoch'")


def test_a_model_file_of_another_run_is_refused(tmp_path, trained, data, capsys):
    other = tmp_path / "other"
    assert main(["train", "--dataset", str(data), "--out", str(other), "--hidden-sizes", "8", "--max-epochs", "1",
                 "--no-progress"]) == 0  # fmt: skip
    (trained / "model.pt").write_bytes((other / "model.pt").read_bytes())
    refused(["evaluate", str(trained)], capsys, "model.pt", "does not belong to this run")


def test_a_model_with_a_non_finite_nll_is_refused_and_no_json_is_written(trained, capsys):
    saved = torch.load(trained / "model.pt", weights_only=True)
    saved["state"]["output.bias"] = torch.full_like(saved["state"]["output.bias"], float("nan"))
    torch.save(saved, trained / "model.pt")
    refused(["evaluate", str(trained)], capsys, "non-finite")
    assert not (trained / "eval_test_1masks.json").exists()


def test_a_full_disk_is_one_line_naming_the_file(trained, monkeypatch, capsys):
    import errno

    real = Path.write_bytes

    def full(self, content):
        if "eval_test" in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, content)

    monkeypatch.setattr(Path, "write_bytes", full)
    refused(["evaluate", str(trained)], capsys, "eval_test_1masks.json", "No space left on device")


def test_a_memory_error_names_its_real_cause(tmp_path, capsys):
    out, wide = tmp_path / "run", npz(tmp_path / "wide.npz", dim=50)  # the weights outgrow a batch's activations
    args = ["train", "--dataset", str(wide), "--out", str(out), "--hidden-sizes", str(10**8), "--no-progress"]
    refused(args, capsys, "the weights of hidden_sizes", "GiB")


# ---------------------------------------------------------------- second round: the plan and the pipeline


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda t: t.replace("[defaults]", "[defaults", 1), "not valid TOML"),
        (lambda t: t.replace('dataset = "dna"', 'dataset = "dnaa"', 1), "dataset 'dnaa'"),
        (lambda t: t.replace('\npaper = "uci.dna.single"', '\npaper = "uci.dna.triple"', 1), "paper 'uci.dna.triple'"),
        (lambda t: t.replace("subset = 100", 'subset = "100"', 1), "subset"),
        (lambda t: t.replace("subset = 100", "subset = 0", 1), "subset"),
        (lambda t: t.replace('profiles = ["cpu", "smoke"]', 'profiles = "cpu"', 1), "profiles"),
    ],
)
def test_a_broken_plan_is_one_line_naming_the_key(change, expected):
    from replication.errors import ReplicationError
    from replication.experiments import parse_plan

    text = (ROOT / "replication" / "experiments.toml").read_text()
    assert change(text) != text
    with pytest.raises(ReplicationError, match=expected) as error:
        parse_plan(change(text))
    assert "\n" not in str(error.value).strip() or "line" in str(error.value)


def make_replicate(tmp_path: Path, *extra: str, timeout: int = 120) -> subprocess.CompletedProcess:
    command = [
        "make",
        "--no-print-directory",
        "replicate",
        "PROFILE=smoke",
        f"RUNS={tmp_path}/runs",
        "ONLY=uci_dna_masks",
        *extra,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ | {"MAKEFLAGS": ""}, timeout=timeout)


def test_an_unknown_engine_is_refused(tmp_path):
    done = make_replicate(tmp_path, f"RESULTS={tmp_path}/results", "ENGINE=spark")
    assert done.returncode != 0 and "ENGINE=spark is not an engine" in done.stderr
    assert not (tmp_path / "results").exists()


def test_a_results_folder_with_a_space_is_refused_clearly(tmp_path):
    done = make_replicate(tmp_path, f"RESULTS={tmp_path}/my results")
    assert done.returncode != 0 and "without spaces" in done.stderr
    assert not (tmp_path / "my results").exists() and not (tmp_path / "my").exists()


def test_an_unreadable_finished_record_stops_the_summary_with_its_path(tmp_path):
    (tmp_path / "metrics").mkdir()
    broken = tmp_path / "metrics" / "uci_dna_single-seed1235.json"
    broken.write_text('{"model_config": {')  # truncated
    command = [sys.executable, "-m", "replication.replicate", "summary", "--profile", "smoke", "--results", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and str(broken) in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "README.md").exists()


def test_a_process_waiting_for_a_lock_says_which_and_who_holds_it(tmp_path):
    lock = tmp_path / "results" / ".locks" / "uci_dna_masks.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from replication.files import locked\n"
         "with locked(sys.argv[1], 'a test', wait=False):\n    print('held', flush=True); time.sleep(60)", str(lock)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        log = tmp_path / "waiter.err"
        with open(log, "w") as stderr:
            waiter = subprocess.Popen(
                [sys.executable, "-m", "replication.replicate", "run", "uci_dna_masks", "--profile", "smoke", "--results",
                 str(tmp_path / "results"), "--runs", str(tmp_path / "runs")],
                cwd=ROOT, stderr=stderr, text=True,
            )  # fmt: skip
            for _ in range(60):  # it says so at once (after its imports), then waits
                if "waiting for" in log.read_text():
                    break
                time.sleep(1)
            waiter.kill()
            waiter.wait()
        err = log.read_text()
    finally:
        holder.kill()
    assert "waiting for" in err and str(lock) in err and f"pid {holder.pid}" in err


# ---------------------------------------------------------------- third round: limits, empty paths, one-row splits


def limited_cli(args: list[str], *, fsize: int | None = None, address_space_mib: int | None = None):
    """The CLI in a child process under a file-size limit (bytes) or an address-space limit (MiB above what the
    process has mapped once torch is imported): what a full disk or ``ulimit -v`` does to a real run."""
    code = (
        "import resource, sys\n"
        "import torch, numpy, matplotlib.figure\n"
        "from replication.__main__ import main\n"
        f"fsize, extra = {fsize!r}, {address_space_mib!r}\n"
        "if fsize: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))\n"
        "if extra:\n"
        "    used = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize:')][0]\n"
        "    resource.setrlimit(resource.RLIMIT_AS, (used + extra * 2**20, resource.RLIM_INFINITY))\n"
        f"sys.exit(main({args!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def one_line_error(done, *expected: str) -> None:
    err = done.stderr.strip()
    assert done.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert all(text in err for text in expected), err


def test_a_checkpoint_over_the_file_size_limit_is_one_line_and_the_last_one_stays_usable(tmp_path, data):
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--out", str(out), *QUICK]) == 0
    (out / "metrics.json").unlink()
    before = (out / "checkpoint.pt").read_bytes()
    more = ["train", "--dataset", str(data), "--out", str(out), "--hidden-sizes", "16", "--max-epochs", "4", "--no-progress"]
    done = limited_cli(more, fsize=len(before) // 2)
    one_line_error(done, str(out / "checkpoint.pt"), "file too large", "ulimit -f")
    assert (out / "checkpoint.pt").read_bytes() == before  # the epoch-2 checkpoint, whole
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    assert main(more) == 0 and json.loads((out / "metrics.json").read_text())["epochs"] == 4  # it resumes


@pytest.mark.parametrize("what", ["checkpoint.pt", "model.pt", "metrics.json", "test_nll.npy"])
def test_every_file_of_a_run_on_a_full_disk_is_one_line_naming_it(what, tmp_path, data, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    from replication import files

    real_replace = os.replace

    def full(src, dst):
        if Path(dst).name == what:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")  # torch.save's way
        return real_replace(src, dst)

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(files.os, "replace", full)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: usage(10**12, 10**12, 0))
    out = tmp_path / "run"
    refused(["train", "--dataset", str(data), "--out", str(out), *QUICK], capsys, what, "no space left on device")
    assert shutil.disk_usage is files.shutil.disk_usage


def test_data_beyond_the_address_space_limit_is_refused_naming_the_limit(tmp_path):
    big = npz(tmp_path / "big.npz", rows=(20000, 5000, 5000), dim=784)  # 24 MB stored, about 140 MB to load and check
    done = limited_cli(["train", "--dataset", str(big), "--out", str(tmp_path / "run"), *QUICK], address_space_mib=60)
    one_line_error(done, str(big), "ulimit -v", "GiB")


def test_a_model_beyond_the_address_space_limit_is_refused_naming_the_weights(tmp_path):
    wide = npz(tmp_path / "wide.npz", dim=50)  # 101 weights a hidden unit, 6 copies each: more than its activations
    args = ["train", "--dataset", str(wide), "--out", str(tmp_path / "run"), "--hidden-sizes", "400000", "--no-progress"]
    done = limited_cli(args, address_space_mib=200)
    one_line_error(done, "the weights of hidden_sizes [400000]", "ulimit -v")


def test_wide_data_blame_the_direct_connections(tmp_path, capsys):
    wide = npz(tmp_path / "wide.npz", rows=(2, 1, 1), dim=200_000)
    refused(["train", "--dataset", str(wide), "--out", str(tmp_path / "run"), *QUICK], capsys, "direct connections")


def test_a_batch_larger_than_the_data_is_one_batch_of_all_rows(tmp_path, data, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--out", str(out), *QUICK, "--batch-size", str(10**11)]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    "args, option",
    [
        (["sample", "RUN", "-n", "4", "--out", "OUT", "--seed", str(2**63)], "--seed"),
        (["sample", "RUN", "-n", "4", "--out", "OUT", "--seed", "-1"], "--seed"),
        (["complete", "RUN", "--out", "OUT", "--seed", str(2**64)], "--seed"),
        (["train", "--dataset", "DATA", "--out", "", *QUICK], "--out"),
        (["train", "--dataset", "DATA", "--out", "  ", *QUICK], "--out"),
        (["train", "--dataset", "", "--out", "RUNS", *QUICK], "--dataset"),
        (["evaluate", ""], "DIR"),
        (["sample", " ", "--out", "OUT"], "DIR"),
    ],
)
def test_every_seed_and_path_is_checked_before_any_work(args, option, tmp_path, trained, data, capsys):
    where = {"RUN": str(trained), "OUT": str(tmp_path / "g.png"), "DATA": str(data), "RUNS": str(tmp_path / "new")}
    before = sorted(p.name for p in Path.cwd().iterdir())
    refused([where.get(a, a) for a in args], capsys, option)
    assert sorted(p.name for p in Path.cwd().iterdir()) == before and not (tmp_path / "g.png").exists()


@pytest.mark.parametrize("engine", ["replication.replicate", "replication.plain_engine"])
def test_the_engines_refuse_an_empty_results_folder(engine):
    command = [sys.executable, "-m", engine, *(["pending"] if engine.endswith("replicate") else []), "--results", ""]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "--results: must be a path, got an empty one" in done.stderr


def test_the_library_refuses_an_empty_run_folder(data):
    from replication.errors import ConfigError
    from replication.training.data import load_dataset
    from replication.training.runs import train_run

    with pytest.raises(ConfigError, match="empty path"):
        train_run("", load_dataset(str(data)), *configs_for(12))


def configs_for(dim: int):
    from replication.training.config import configs_from_recipe, default_recipe

    return configs_from_recipe({**default_recipe(), "hidden_sizes": [8], "max_epochs": 1}, dim)


@pytest.mark.parametrize("rows", [(60, 20, 1), (60, 1, 20), (1, 20, 20)])
def test_a_split_of_one_row_trains_evaluates_and_writes_its_record(rows, tmp_path, capsys):
    one = npz(tmp_path / "one.npz", rows=rows)
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(one), "--out", str(out), *QUICK]) == 0
    record = json.loads((out / "metrics.json").read_text())
    assert (record["test_nll"]["stderr"] is None) == (rows[2] == 1) and (record["valid_nll"]["stderr"] is None) == (rows[1] == 1)
    printed = capsys.readouterr().out
    assert ("one example: no standard error" in printed) == (rows[2] == 1)


def test_no_shipped_data_set_warns_when_loaded():
    import warnings

    from replication.training.data import is_local, load_dataset, registry

    shipped = [name for name in registry() if is_local(name)]
    assert "dna" in shipped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in shipped:
            load_dataset(name)
    assert [str(w.message) for w in caught] == []


def test_a_data_file_without_the_schema_names_the_arrays_it_holds(tmp_path, capsys):
    np.savez(tmp_path / "odd.npz", pixels=np.zeros((3, 4), dtype=np.uint8), labels=np.zeros(3))
    refused(["train", "--dataset", str(tmp_path / "odd.npz"), "--out", str(tmp_path / "run"), *QUICK], capsys,
            "has no 'train_data' (it holds: labels, pixels)")  # fmt: skip


@pytest.mark.parametrize("run_dir, message", [("missing", "does not exist"), ("a_file", "is a file, not a run folder")])
def test_evaluate_says_what_a_path_that_is_not_a_run_folder_is(run_dir, message, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    refused(["evaluate", str(tmp_path / run_dir)], capsys, message)


def test_an_ensemble_larger_than_the_masks_is_refused_before_any_work(tmp_path, trained, data, capsys):
    out = tmp_path / "run2"
    refused(["train", "--dataset", str(data), "--out", str(out), *QUICK, "--num-masks", "4", "--test-masks", "5"], capsys,
            "test_masks must be at most the 4 mask(s)")  # fmt: skip
    refused(["train", "--dataset", str(data), "--out", str(out), *QUICK, "--num-masks", "0", "--test-masks", str(10**11)],
            capsys, "test_masks must be at most 10000")  # fmt: skip
    refused(["evaluate", str(trained), "--test-masks", "2"], capsys, "--test-masks must be at most the 1 mask(s)")
    assert not out.exists()


def test_completions_check_memory_before_drawing(tmp_path, capsys):
    quick = ["--dataset", "binarized_mnist", "--hidden-sizes", "8", "--max-epochs", "1", "--no-progress"]
    assert main(["train", *quick, "--out", str(tmp_path / "raster")]) == 0
    capsys.readouterr()
    refused(["complete", str(tmp_path / "raster"), "--out", str(tmp_path / "c.png"), "-k", str(10**13)], capsys, "-k", "GiB")
    assert not (tmp_path / "c.png").exists()


def test_a_complex_valued_data_file_is_refused(tmp_path, capsys):
    splits = {f"{s}_data": np.ones((5, 4), dtype=np.complex64) for s in ("train", "valid", "test")}
    np.savez(tmp_path / "complex.npz", **splits)
    refused(["train", "--dataset", str(tmp_path / "complex.npz"), "--out", str(tmp_path / "run"), *QUICK], capsys,
            "must hold real numbers")  # fmt: skip


def test_loading_mnist_under_an_address_space_limit_refuses_or_succeeds_never_a_traceback(tmp_path):
    """Between "refused by the check" and "enough": every limit ends in one of the two (the cases a user met)."""
    for extra in (80, 200, 350):
        done = limited_cli(["train", "--dataset", "binarized_mnist", "--hidden-sizes", "8", "--max-epochs", "1",
                            "--no-progress", "--out", str(tmp_path / f"run{extra}")], address_space_mib=extra)  # fmt: skip
        assert done.returncode in (0, 2) and "Traceback" not in done.stderr, (extra, done.stderr[-600:])
        if done.returncode == 2:
            one_line_error(done, "ulimit -v")
