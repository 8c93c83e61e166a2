"""`plumline demo` end to end on the tiny model: the table, the plot, a second run, no sandbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

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
