"""Several processes (`accelerate launch`): every process trains, only the main one writes.

The real launch runs on CPU: accelerate's `--multi_gpu` launcher is torchrun, and on a machine
without CUDA each process gets the gloo backend (DistributedType.MULTI_CPU). (`--cpu` alone would
start one process: accelerate spreads CPU training over processes only through mpirun.)"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys

from tests.trainer.conftest import fill_pairs
from trainer import runs


class _OtherRank:
    """What ``runs.processes`` gives rank 1 of 2, minus the collectives (nothing to wait for here)."""

    is_main_process = False
    num_processes = 2

    def main_process_first(self):
        return contextlib.nullcontext()

    def wait_for_everyone(self):
        pass


def test_main_process_is_rank_zero(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert runs.is_main_process()  # alone
    monkeypatch.setenv("RANK", "1")
    assert not runs.is_main_process()


def test_alone_nothing_distributed(monkeypatch, train_env):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert runs.processes(train_env[0]) is None and runs.from_main(None, "x") == "x"


def test_other_ranks_train_but_write_nothing(train_env, model_name, monkeypatch):
    config, store = train_env
    fill_pairs(store, n=4, model=model_name)
    monkeypatch.setattr(runs, "processes", lambda config: _OtherRank())
    monkeypatch.setattr(runs, "from_main", lambda procs, value: value)  # rank 0's values: here, its own
    said = []
    result = runs.train(config, store, say=said.append)
    assert result.ok, result.message
    assert result.metrics["steps"] == 2 and result.adapter_id
    assert store.db["train_runs"].count == 0 and store.db["adapters"].count == 0
    assert not next(store.rows("select count(*) n from pairs where used_by is not null"))["n"]
    assert not config.adapters_dir.exists() or not any(config.adapters_dir.iterdir())
    assert said == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_launch_two_processes(train_env, model_name):
    """`accelerate launch --num_processes 2 -m agent.cli train` on CPU: one run, one adapter, one report."""
    config, store = train_env
    fill_pairs(store, n=8, model=model_name)
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
           "-m", "agent.cli", "train", "--max-steps", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    runs_rows = list(store.rows("select * from train_runs"))
    assert [r["status"] for r in runs_rows] == ["finished"], runs_rows
    assert json.loads(runs_rows[0]["config"])["processes"] == 2
    adapters = [p.name for p in config.adapters_dir.iterdir()]
    assert adapters == [runs_rows[0]["adapter_id"]] and store.db["adapters"].count == 1
    assert out.count("Next: plumline eval") == 1 and out.count(f"{config.train.method}: 8 examples from 8 tasks") == 1, out[-4000:]
    assert not any((config.home / "runs").iterdir())  # checkpoints gone, by the main process, after both finished
