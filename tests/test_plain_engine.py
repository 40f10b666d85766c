"""The papermill-free engine for GPU machines (``replication.plain_engine``): the same code path, tested on CPU; and a
CUDA smoke test wherever CUDA is present."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from replication.experiments import load_data, load_plan, run_experiment
from replication.model.made import MADE
from replication.model.masks import mask_cache_budget
from replication.training.config import MADEConfig, TrainConfig
from replication.training.train import fit

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["uci_dna_single", "mnist_1x500_32masks"]


def direct(tmp_path: Path, device: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "replication.plain_engine", "--profile", "smoke", "--results", str(tmp_path / "results"),
               "--runs", str(tmp_path / "runs"), "--only", ",".join(NAMES), "--parallel", "2", "--device", device,
               "--archive", str(tmp_path / "out" / "paper.tar.gz")]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)


def test_direct_engine_runs_experiments_in_parallel_and_packs_a_small_archive(tmp_path):
    done = direct(tmp_path, "cpu")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 of 3 experiment(s) finished" in done.stdout  # uci_dna_single has two seeds in the smoke profile
    for name in NAMES:  # the same numbers as the notebook engine's code path (run_experiment) in this process
        ours = json.loads((tmp_path / "results" / "metrics" / f"{name}.json").read_text())
        theirs = run_experiment(name, "smoke", tmp_path / "local", tmp_path / "local-runs", device="cpu", progress=False)
        assert ours["test_nll"]["nats"] == pytest.approx(theirs.test_nll.nats, abs=1e-6)
        assert ours["float32_matmul_precision"] == "highest"
    with tarfile.open(tmp_path / "out" / "paper.tar.gz") as tar:
        names = tar.getnames()
    assert "results/metrics/uci_dna_single.json" in names and "results/README.md" in names
    assert "logs/uci_dna_single.log" in names and not any(n.endswith(".pt") or ".locks" in n for n in names)
    again = direct(tmp_path, "cpu")  # finished experiments are skipped
    assert again.returncode == 0 and "[skip]" in (tmp_path / "runs" / "logs" / "uci_dna_single.log").read_text()


def test_a_k_mask_set_stays_resident_on_the_device_when_it_fits():
    model = MADE(MADEConfig(input_dim=12, hidden_sizes=[16], num_masks=4, order_agnostic=True, connectivity_agnostic=True))
    x = torch.zeros(2, 12)
    for k in range(6):
        model(x, k)
    assert model.mask_set.resident == 4  # built once each, then reused while cycling
    assert mask_cache_budget(torch.device("cpu")) >= 512 * 2**20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA smoke test: needs a CUDA device")
def test_cuda_smoke(tmp_path):
    experiment = load_plan().experiment("mnist_1x500_32masks", "smoke")
    data = load_data(experiment)
    model_config, train_config, _ = experiment.configs(data.dim)
    model, result = fit(model_config, data, TrainConfig(**{**train_config.__dict__, "max_epochs": 1}), device="cuda",
                        progress=False)  # fmt: skip
    assert model.output.weight.is_cuda and result.epochs == 1
    cpu = MADE(model_config)
    cpu.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    x = data.test[:50]
    assert torch.allclose(model.ensemble_log_prob(x.cuda(), 4).cpu(), cpu.ensemble_log_prob(x, 4), atol=1e-3)
    done = direct(tmp_path, "cuda")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    metrics = json.loads((tmp_path / "results" / "metrics" / "uci_dna_single.json").read_text())
    assert metrics["device"].startswith("cuda")
