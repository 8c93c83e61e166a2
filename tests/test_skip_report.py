"""The test command says, at the end and by reason, which tests were skipped (tests/skip_report.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_skipped_tests_are_listed_loudly_with_their_reasons(tmp_path):
    (tmp_path / "test_tools.py").write_text(
        "import pytest\n\n"
        "def test_runs():\n    pass\n\n"
        "@pytest.mark.parametrize('attack', ['fork_bomb', 'fd_forgery'])\n"
        "def test_hostile(attack):\n    pytest.skip('bwrap unavailable: bubblewrap is not installed')\n\n"
        "def test_editor():\n    pytest.skip('nvim not found')\n")
    env = {k: v for k, v in os.environ.items() if k != "PLUMLINE_TEST_REQUIRE"}
    env["PYTHONPATH"] = str(REPO)
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.skip_report", "-p", "no:cacheprovider", "-q",
                          "test_tools.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr  # still green: skipping is not failing...
    tail = out.stdout[out.stdout.index("3 TEST(S) SKIPPED: NOT TESTED ON THIS MACHINE"):]  # ...but it says so last
    assert "    2  bwrap unavailable: bubblewrap is not installed" in tail
    assert "    1  nvim not found" in tail
    assert "PLUMLINE_TEST_REQUIRE=docker,bwrap,nvim,node,plumline" in tail
    assert "3 TEST(S) SKIPPED" in out.stdout.strip().splitlines()[-1]  # the very last line, after pytest's own


def test_a_full_run_prints_no_skip_report(tmp_path):
    (tmp_path / "test_ok.py").write_text("def test_runs():\n    pass\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.skip_report", "-p", "no:cacheprovider", "-q",
                          "test_ok.py"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "SKIPPED" not in out.stdout
