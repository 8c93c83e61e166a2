"""The nightly cycle: never two at once, every stage runs and is logged, the live check runs every
night, a gate promotion goes through, schedule entries render."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from agent.adapters import current_adapter
from tests.trainer.conftest import TASKS, FakePolicy, add_task, fill_pairs, promote_two_adapters, serve
from trainer.nightly import run_nightly


class TrainedIsBetter(FakePolicy):
    """Answers every held-out task wrongly as the base model and rightly as any trained adapter: a
    candidate that is clearly better, so the gate's own statistics, on real sandbox verdicts, decide."""

    def __init__(self):
        super().__init__({"base": {t[0]: t[3] for t in TASKS}, "trained": {t[0]: t[2] for t in TASKS}})

    def sample(self, contexts, n, **kw):
        serving = self.adapter_id
        self.adapter_id = "base" if serving == "base" else "trained"
        try:
            return super().sample(contexts, n, **kw)
        finally:
            self.adapter_id = serving


def four_pairs_two_heldout(config, store, model_name) -> None:
    """Four training pairs and two held-out tasks, gated on greedy pass@1 only: a candidate the gate
    always rejects, since two tasks are never beyond noise."""
    config.train.gate_samples = 0     # greedy pass@1 only
    config.train.gate_humaneval = 0   # no HumanEval tasks in this store
    fill_pairs(store, n=4, model=model_name)
    for name, prompt, good, bad, tests in TASKS[:2]:
        add_task(store, name, prompt, tests, split="heldout")


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


def test_nightly_promotes_a_candidate_the_gate_accepts(train_env, model_name, sandbox):
    config, store = train_env
    config.train.gate_samples = 0     # greedy pass@1: the fake policy answers the same every time
    config.train.gate_humaneval = 2   # the real guard, small: both adapters fail it alike (no regression)
    fill_pairs(store, n=4, model=model_name)
    for name, prompt, good, bad, tests in TASKS * 2:  # 8 held-out tasks, all won: p = 1/256 < gate_alpha
        add_task(store, name, prompt, tests, split="heldout")
    policy = TrainedIsBetter()
    result = run_nightly(config, store, policy=policy, sandbox=sandbox, check_power=False,
                         train_kwargs={"max_steps": 1}, say=lambda m: None)
    assert result.status == "done", result.message
    adapter = result.stages["train"]["adapter"]
    assert result.stages["gate"]["decision"] == "promote", result.stages["gate"]["reason"]
    assert {k: result.stages["promote"][k] for k in ("from", "to")} == {"from": "base", "to": adapter}
    assert current_adapter(config.adapters_dir).id == adapter
    assert store.get("adapters", adapter)["status"] == "current"
    metrics = json.loads(store.get("gate_decisions", result.stages["gate"]["id"])["metrics"])
    assert metrics["heldout"]["wins"] == 8 and metrics["guard"]["tasks"] == 2


def test_nightly_rolls_back_a_live_regression_when_nothing_trains(train_env, sandbox):
    config, store = train_env
    config.train.rollback_min_events = 30
    promote_two_adapters(config, store)
    serve(store, "first", shown=40, accepted=20)
    serve(store, "second", shown=40, accepted=4)
    policy = FakePolicy({})
    policy.set_adapter(config.adapters_dir / "second", "second")
    result = run_nightly(config, store, policy=policy, sandbox=sandbox, check_power=False, say=lambda m: None)
    assert result.stages["train"]["status"] == "empty"  # no pairs: nothing was trained tonight
    assert result.stages["live"]["regressed"] and result.stages["live"]["rolled_back_to"] == "first"
    assert current_adapter(config.adapters_dir).id == "first"
    assert policy.adapter_id == "first"  # tonight's samples come from the adapter that serves again


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


def test_a_cycle_stopped_before_its_gate_gates_the_candidate_it_left(train_env, model_name, sandbox):
    from trainer.runs import train

    config, store = train_env
    four_pairs_two_heldout(config, store, model_name)
    left = train(config, store, max_steps=1, progress=False, say=lambda m: None)  # then the cycle stopped
    assert left.ok, left.message
    result = run_nightly(config, store, policy=FakePolicy({}), sandbox=sandbox, check_power=False,
                         train_kwargs={"max_steps": 1}, say=lambda m: None)
    assert result.status == "done", result.message
    assert result.stages["train"]["adapter"] == left.adapter_id and result.stages["train"]["resumed"]
    assert store.get("gate_decisions", result.stages["gate"]["id"])["candidate"] == left.adapter_id
    assert store.db["train_runs"].count == 1  # nothing was trained again
    # the record is the stopped cycle's training: its data and metrics, not an empty resumed stage
    train_stage = result.stages["train"]
    assert train_stage["run"] == left.run_id and train_stage["window"] == left.window
    assert train_stage["metrics"]["steps"] == 1 and "loss_curve" not in train_stage["metrics"]
    assert {"seconds", "peak_rss_mb"} <= set(result.stages["gate"]) and result.stages["train"]["seconds"] >= 0


def test_a_night_with_nothing_new_does_not_train_a_rejected_candidate_again(train_env, model_name, sandbox):
    """The seeds are fixed, so the same examples from the same parent with the same settings make the
    same adapter, and the gate would reject it again: the next night says so and trains nothing.
    New examples train again."""
    config, store = train_env
    four_pairs_two_heldout(config, store, model_name)

    def night():
        return run_nightly(config, store, policy=FakePolicy({}), sandbox=sandbox, check_power=False,
                           train_kwargs={"max_steps": 1}, say=lambda m: None)

    first = night()
    assert first.stages["gate"]["decision"] == "reject", first.message  # two tasks are never beyond noise
    rejected = first.stages["train"]["adapter"]
    second = night()
    assert second.status == "done" and second.stages["train"]["status"] == "empty", second.message
    assert "nothing new to learn from" in second.message and rejected in second.message
    assert "gate" not in second.stages and store.db["gate_decisions"].count == 1
    empty = [json.loads(r["metrics"])["message"] for r in store.rows("select metrics from train_runs where status = 'empty'")]
    assert len(empty) == 1 and "nothing new to learn from" in empty[0]  # the night's run is on record
    fill_pairs(store, n=2, model=model_name)  # the editor brought new examples
    third = night()
    assert third.stages["train"]["status"] == "finished" and third.stages["train"]["adapter"] != rejected


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists() or platform.libc_ver()[0] != "glibc",
                    reason="resident memory from /proc, trimming through glibc")
def test_freed_memory_goes_back_to_the_system_before_the_gate():
    from trainer.nightly import return_freed_memory

    blocks = [bytes(1000) + bytes([i % 256]) for i in range(300_000)]  # ~300 MB on glibc's heap
    pin = bytes(2000)  # allocated after them: glibc's own trimming of the heap's top cannot free them
    del blocks
    held = _rss_mb()
    return_freed_memory()
    assert held - _rss_mb() > 200, "the freed heap stayed resident"
    assert pin
