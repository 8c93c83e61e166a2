"""`plumline demo` end to end on the tiny model: the table, the plot, a second run, no sandbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from agent.store import Store


def demo(*args, **env):
    return subprocess.run([sys.executable, "-m", "agent.cli", "demo", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "120", **env}, timeout=900)


def test_demo_runs_the_loop_and_prints_before_after(tiny_env, monkeypatch):
    monkeypatch.setenv("PLUMLINE_SANDBOX_BACKEND", "process")
    out = demo("--tasks", "6", "--quick")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "held-out pass@1" in out.stdout and "cycle 1 of 1" in out.stdout
    row = next(line for line in out.stdout.splitlines() if re.match(r"│\s+1\s+│", line))  # the cycle's row
    assert "%" in row  # a before figure, whether or not an adapter was trained
    report = out.stdout[out.stdout.index("held-out pass@1"):out.stdout.index("plot: ")]
    assert max(map(len, report.splitlines())) <= 80, report  # at COLUMNS=120: the report keeps to 80
    store = Store(tiny_env / "plumline.db")
    splits = {r["split"]: r["n"] for r in store.rows("select split, count(*) n from tasks group by split")}
    assert sum(splits.values()) == 6 and splits.get("heldout") and splits.get("train")
    assert store.db["train_runs"].count + store.db["samples"].count > 0  # the cycle sampled (and trained if it could)
    png = tiny_env / "demo.png"
    assert f"plot: {png}" in out.stdout.replace("\n", "") and png.read_bytes()[:4] == b"\x89PNG"

    again = demo("--tasks", "6", "--quick")  # a second run (or one after an interrupt) picks up the same store
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 new task(s)" in again.stdout and "6 already there" in again.stdout
    stats = subprocess.run([sys.executable, "-m", "agent.cli", "stats", "--json"], capture_output=True, text=True,
                           env=dict(os.environ), timeout=120)
    assert stats.returncode == 0 and sum(json.loads(stats.stdout)["loop"]["tasks_by_status"].values()) == 6


def test_demo_without_a_sandbox_says_how_to_get_one(tiny_env):
    out = demo("--quick", PLUMLINE_SANDBOX_BACKEND="docker", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert out.returncode != 0
    assert "bubblewrap" in out.stderr + out.stdout and "docker" in (out.stderr + out.stdout).lower()
    assert not (tiny_env / "plumline.db").exists() or Store(tiny_env / "plumline.db").db["tasks"].count == 0


# -- the report layer, on the data a cycle produces (no loop run) -------------------------------------

LONG_REASON = ("held-out pass@1 12.5% -> 25.0% (3 tasks won, 1 lost of 8) is within noise (p = 0.3125 >= alpha "
               "0.05); " + "the HumanEval guard held: 40.0% -> 40.0% on 10 tasks; " * 6).strip()


def rendered(reports, width=200) -> list[str]:
    import io

    from rich.console import Console

    from agent.demo import render_report

    console = Console(file=io.StringIO(), width=width, color_system=None)
    render_report(console, reports)
    return console.file.getvalue().splitlines()


def table_rows(lines: list[str]) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│")]


@pytest.mark.parametrize("decision, gate_decision", [("promoted", "promote"), ("rejected", "reject")])
def test_report_fits_80_columns_and_the_decision_is_two_words_at_most(decision, gate_decision):
    from agent.demo import cycle_report

    gate = {"decision": gate_decision, "reason": LONG_REASON, "metrics": {"heldout": {
        "current_pass1": 0.125, "candidate_pass1": 0.25, "wins": 3, "losses": 1, "tasks": 8, "p_improve": 0.3125}}}
    report = cycle_report(1, SimpleNamespace(status="done", message="ok"), gate, 312.0)
    lines = rendered([report])
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    [row] = table_rows(lines)
    assert row == ["1", "12.5%", "25.0%", "+3 / -1 of 8", "0.31", decision, "5.2"]
    # the long reason is below the table as a paragraph, every word of it
    below = " ".join(lines[next(i for i, line in enumerate(lines) if line.startswith("└")) + 1:])
    assert " ".join(LONG_REASON.split()) in " ".join(below.split())


def test_report_says_what_changed_and_what_to_do_next():
    from agent.demo import CycleReport, summary_sentence

    promoted = CycleReport(1, "promoted", "r", 1.0, 0.1, 0.3, 3, 1, 10, 0.01)
    rejected = CycleReport(1, "rejected", "r", 1.0, 0.1, 0.1, 1, 1, 10, 0.7)
    same = CycleReport(1, "rejected", "r", 1.0, 0.857, 0.857, 0, 0, 7, 1.0)
    assert "moved" not in summary_sentence([same]) and "exactly the held-out problems" in summary_sentence([same])
    nothing = CycleReport(1, "no adapter", "train: dpo: 0 usable example(s)", 1.0, before=0.1, tasks=10)
    assert "10.0% to 30.0%" in summary_sentence([promoted]) and "serves your editor" in summary_sentence([promoted])
    assert "--tasks 80" in summary_sentence([rejected]) and "stays" in summary_sentence([rejected])
    assert "No adapter was trained" in summary_sentence([nothing]) and "--cycles 2" in summary_sentence([nothing])
    for r in (promoted, rejected, nothing):
        assert summary_sentence([r]).count(". ") <= 1  # one or two short sentences, not a paragraph


def test_a_small_demo_says_how_much_change_its_held_out_set_can_show():
    from agent.demo import resolution_sentence, smallest_provable_gain
    from trainer.gate import mcnemar_exact

    for tasks in (3, 8, 20, 96):
        k = smallest_provable_gain(tasks)
        if k is None:
            assert mcnemar_exact(tasks, 0)[0] >= 0.05 and "no change can be told from noise" in resolution_sentence(tasks)
        else:  # the fewest clean wins the gate's own test accepts
            assert mcnemar_exact(k, 0)[0] < 0.05 <= mcnemar_exact(k - 1, 0)[0]
            assert f"at least {k} more solved" in resolution_sentence(tasks)
    assert smallest_provable_gain(3) is None and smallest_provable_gain(8) == 5
