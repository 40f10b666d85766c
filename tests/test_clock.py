"""The running clock: a process stopped with SIGSTOP records its running time, not the pause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="SIGSTOP is POSIX only")

STOP = 2.5  # seconds each test keeps its child stopped

CLOCK_CHILD = """
import sys, time
from replication.training.clock import RunningClock
clock = RunningClock(tick=0.05, slack=0.3)
wall, running = time.perf_counter(), clock.now()
print("ready", flush=True)
sys.stdin.readline()
time.sleep(0.3)
print(time.perf_counter() - wall, clock.now() - running, flush=True)
"""

TRAINER_CHILD = """
import sys, time, torch
from replication.model.made import MADE, MADEConfig
from replication.training.data import BinaryDataset
from replication.training.train import TrainConfig, Trainer

class Waiting(Trainer):
    def train_epoch(self):
        print("in epoch", self.epoch + 1, flush=True)
        sys.stdin.readline()  # the parent stops this process here, inside the epoch's measured time
        return super().train_epoch()

rows = torch.randint(0, 2, (64, 6), generator=torch.Generator().manual_seed(0)).float()
data = BinaryDataset("toy", rows, rows, rows, "memory", "none")
model = MADE(MADEConfig(input_dim=6, hidden_sizes=[8], seed=1))
wall = time.perf_counter()
result = Waiting(model, data, TrainConfig(optimizer="adam", batch_size=16, max_epochs=3), None, progress=False).run()
print(time.perf_counter() - wall, result.seconds, flush=True)
"""


def run_child(script: str, stop_at: str | None) -> tuple[float, float]:
    """Run ``script``; each time it prints a line, stop it for ``STOP`` s if the line is ``stop_at``, then let it on."""
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    for line in child.stdout:
        words = line.split()
        if words and words[0] not in ("ready", "in"):
            child.wait(timeout=60)
            return float(words[0]), float(words[1])
        if line.strip() == stop_at:
            os.kill(child.pid, signal.SIGSTOP)
            time.sleep(STOP)
            os.kill(child.pid, signal.SIGCONT)
        child.stdin.write("go\n")
        child.stdin.flush()
    raise AssertionError(f"the child printed no times (exit status {child.wait(timeout=60)})")


def test_the_running_clock_leaves_out_the_time_the_process_was_stopped():
    wall, running = run_child(CLOCK_CHILD, stop_at="ready")
    assert wall >= STOP
    assert 0.0 <= running <= wall - STOP + 0.2


def test_the_running_clock_counts_all_the_time_of_a_process_never_stopped():
    wall, running = run_child(CLOCK_CHILD, stop_at=None)
    assert abs(wall - running) < 0.05


def test_a_training_run_stopped_inside_an_epoch_records_its_running_time_only():
    wall, seconds = run_child(TRAINER_CHILD, stop_at="in epoch 2")
    assert wall >= STOP
    assert 0.0 < seconds <= wall - STOP + 0.2
