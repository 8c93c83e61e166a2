"""The nightly cycle: never two at once, every stage runs and is logged, schedule entries render."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.trainer.conftest import TASKS, add_task, fill_pairs
from trainer.nightly import run_nightly


def test_two_nightly_runs_do_not_overlap(train_env):
    config, store = train_env
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from trainer.nightly import NightlyLock\n"
         f"with NightlyLock(Path({str(config.home / 'nightly.lock')!r})):\n"
         "    print('locked', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = run_nightly(config, store, policy=object(), sandbox=object(), say=lambda m: None)
        assert result.status == "skipped" and f"pid {holder.pid}" in result.message
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert json.loads(store.get_state("nightly.last"))["status"] == "skipped"


def test_nightly_trains_gates_and_logs(train_env, model_name, sandbox):
    from agent.completion import load_policy

    config, store = train_env
    config.train.gate_samples = 0      # greedy only: the tiny model's samples would all fail anyway
    config.train.gate_humaneval = 0    # no HumanEval tasks in this store
    fill_pairs(store, n=4, model=model_name)
    for name, prompt, good, bad, tests in TASKS[:2]:
        add_task(store, name, prompt, tests, split="heldout")
    policy = load_policy(config, say=lambda m: None)
    result = run_nightly(config, store, policy=policy, sandbox=sandbox, check_power=False,
                         train_kwargs={"max_steps": 1}, say=lambda m: None)
    assert result.status == "done", result.message
    assert result.stages["train"]["status"] == "finished"
    assert result.stages["gate"]["decision"] == "reject"  # two tasks can never be beyond noise
    decision = store.get("gate_decisions", result.stages["gate"]["id"])
    assert decision["candidate"] == result.stages["train"]["adapter"]
    assert json.loads(store.get_state("nightly.history"))[-1]["status"] == "done"


def test_schedule_entries(train_env, monkeypatch):
    from trainer import schedule

    config, _ = train_env
    line = schedule.cron_line("03:30", config.home / "nightly.log")
    assert line.startswith("30 3 * * * ") and "nightly" in line and line.endswith(schedule.MARK)
    assert f"PLUMLINE_HOME={config.home}" in line
    units = schedule.systemd_units("03:30")
    assert "OnCalendar=*-*-* 03:30:00" in units["plumline-nightly.timer"]
    assert "Nice=10" in units["plumline-nightly.service"]


def test_every_command_has_help_with_an_example():
    from typer.testing import CliRunner

    from agent.cli import app

    runner = CliRunner()
    for args in (["train"], ["eval"], ["nightly"], ["adapters", "list"], ["adapters", "promote"],
                 ["adapters", "rollback"], ["adapters", "check"], ["schedule", "install"], ["schedule", "remove"],
                 ["schedule", "show"]):
        out = runner.invoke(app, [*args, "--help"])
        assert out.exit_code == 0 and "Example" in out.output, args
