"""The hostile suite (issue 3): every attack gets a fail verdict on every backend, the runner and
the host survive, nothing outlives the job, and other candidates in the batch are unaffected.

Run: ``pytest tests/sandbox/hostile -q`` (add ``PLUMLINE_TEST_REQUIRE=docker,bwrap`` in CI).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import STATUSES, open_sandbox, parse_tests
from tests.sandbox.conftest import LIMITS, runner_processes, sandbox_containers, test_config
from tests.sandbox.hostile.attacks import (ATTACKS, FORGE_FDS, FORGED, GOOD, ON_THE_WARDEN, SLOW, forged_result,
                                           impersonator)

PROJECT = Path(__file__).resolve().parents[3]


def _run(pool, program: str, tests: str):
    return pool.run(program, parse_tests(tests), LIMITS)


def _assert_good_still_passes(pool) -> None:
    verdicts = _run(pool, *GOOD)
    assert [v.status for v in verdicts] == ["passed", "passed"], verdicts


def _runner_id(worker):
    """The runner a worker talks to: its process (process backend) or its container (Docker)."""
    proc = getattr(worker, "proc", None)
    return getattr(worker, "container_id", None) or (proc.pid if proc else None)


@pytest.mark.parametrize("attack", [a for a, (_, t) in ATTACKS.items() if t is not None and a not in ON_THE_WARDEN])
def test_attack_never_passes(pool, attack):
    program, tests = ATTACKS[attack]
    verdicts = _run(pool, program, tests)
    assert verdicts, "every test must get a verdict"
    assert all(v.status in STATUSES for v in verdicts)
    assert not any(v.passed for v in verdicts), verdicts
    _assert_good_still_passes(pool)


@pytest.mark.parametrize("attack", ON_THE_WARDEN)
def test_attack_on_the_warden_leaves_the_same_runner_judging(solo, attack):
    """Killing, tracing or writing through the warden fails, and the very runner that took the
    attack gives the next candidate a real verdict (a one-worker pool: no other worker to hide behind)."""
    worker = solo._all[0]
    _assert_good_still_passes(solo)
    before = _runner_id(worker)
    assert before is not None
    verdicts = _run(solo, *ATTACKS[attack])
    assert verdicts and not any(v.passed for v in verdicts), verdicts
    assert worker.alive and _runner_id(worker) == before, "the runner died or was replaced"
    _assert_good_still_passes(solo)
    assert _runner_id(worker) == before


@pytest.mark.parametrize("form", sorted(FORGED))
@pytest.mark.parametrize("when", ["import", "call"])
@pytest.mark.parametrize("fd", FORGE_FDS)
def test_forged_result_never_counts(pool, fd, when, form):
    """A report written on any inherited descriptor, before the call or during it, is not the
    runner's answer to this test's call: the test gets a clean fail verdict."""
    verdicts = _run(pool, *forged_result(fd, when, form))
    assert len(verdicts) == 2 and all(v.status in STATUSES for v in verdicts)
    assert not any(v.passed for v in verdicts), verdicts


@pytest.mark.parametrize("when", ["import", "call"])
def test_impersonated_helper_verdict_never_counts(pool, when):
    """A candidate that plays the harness (announces the call, takes the released nonce, reports
    True) cannot pass an assert on a helper's answer: such an assert is unsplittable, never run."""
    verdicts = _run(pool, *impersonator(when))
    assert [v.status for v in verdicts] == ["unsplittable"], verdicts


def test_other_candidates_in_a_batch_are_unaffected(pool):
    fast = [a for a, (_, t) in ATTACKS.items() if t is not None and a not in SLOW]
    items = []
    for name in fast + ["busy_loop", "fork_bomb"]:
        items.append(GOOD)
        items.append(ATTACKS[name])
    results = pool.run_batch([(p, parse_tests(t)) for p, t in items], LIMITS)
    for (program, _), verdicts in zip(items, results):
        if program == GOOD[0]:
            assert all(v.passed for v in verdicts), verdicts
        else:
            assert not any(v.passed for v in verdicts), verdicts


def test_writes_never_reach_the_host(pool, tmp_path):
    target = PROJECT / "plumline-sandbox-pwned"
    program, _ = ATTACKS["write_project_dir"]
    for path in (target, tmp_path / "pwned", Path("/etc/plumline-pwned")):
        verdicts = _run(pool, program, f"assert f({str(path)!r}) == True\n")
        assert not verdicts[0].passed
        assert not path.exists()


def test_host_environment_is_invisible(pool):
    program = "import os\ndef f():\n    return sorted(os.environ)\n"
    verdicts = _run(pool, program, "assert f() == []\n")
    # Docker always injects PATH/HOSTNAME; whatever is there, no host variable is.
    if not verdicts[0].passed:
        leaked = _run(pool, program, "assert 'PLUMLINE_HOST_SECRET' in f() or 'HOME' in f()\n")
        assert not leaked[0].passed


def test_scratch_is_wiped_between_candidates(pool):
    writer = ("import os\ndef f():\n    os.makedirs('d/e', exist_ok=True)\n    open('d/e/x', 'w').write('x')\n"
              "    open('sitecustomize.py', 'w').write('import os\\nos._exit(0)\\n')\n    os.chmod('d', 0)\n"
              "    return sorted(os.listdir('.'))\n")
    assert _run(pool, writer, "assert f() == ['d', 'sitecustomize.py']\n")[0].passed
    for _ in range(pool.size * 2):  # whichever worker picks up the next candidate
        reader = "import os\ndef f():\n    return os.listdir('.')\n"
        assert _run(pool, reader, "assert f() == []\n")[0].passed


def test_state_does_not_leak_between_tests(pool):
    program = "import threading, time\nSEEN = []\ndef f():\n    SEEN.append(1)\n    return len(SEEN)\n"
    verdicts = _run(pool, program, "assert f() == 1\nassert f() == 1\nassert f() == 1\n")
    assert all(v.passed for v in verdicts), verdicts


def test_threads_do_not_outlive_their_test(pool):
    program = ("import threading, time\ndef spin():\n    while True: time.sleep(0.01)\n"
               "def start():\n    threading.Thread(target=spin, daemon=False).start()\n    return 0\n"
               "def count():\n    return threading.active_count()\n")
    verdicts = _run(pool, program, "assert start() == 0\nassert count() == 1\n")
    assert [v.status for v in verdicts] == ["passed", "passed"], verdicts


def test_nothing_outlives_the_pool(backend):
    before_pids, before_ctrs = set(runner_processes()), set(sandbox_containers())
    with open_sandbox(test_config(backend, workers=2)) as sb:
        items = [(ATTACKS[a][0], parse_tests(ATTACKS[a][1])) for a in ("fork_bomb", "setsid_daemon", "busy_loop")]
        sb.run_batch(items, LIMITS)
    import time
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        left = (set(runner_processes()) - before_pids) | (set(sandbox_containers()) - before_ctrs)
        if not left:
            break
        time.sleep(0.2)
    assert not left, f"left running after close: {left}"
