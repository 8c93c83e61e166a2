"""scripts/bootstrap, the launcher's install, as a new user meets it when a step fails.

The bootstrap runs for real in a copy of the checkout's install files, with a package registry that
has nothing (pip's own switches: no index, an empty find-links folder, no config files), so the
torch step fails exactly as it does when the registry cannot be reached. It must stop with one
message that names the step and its log, keep pip's output out of the terminal, and on a rerun keep
the steps that finished (the virtualenv is not made again) and fail at the same step.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def bootstrap(checkout: Path, registry: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(registry),
               PYTHON=shutil.which("python3") or "python3")
    return subprocess.run(["bash", str(checkout / "scripts" / "bootstrap")], capture_output=True, text=True,
                          env=env, timeout=300)


def test_a_failing_step_is_named_with_its_log_and_a_rerun_resumes(tmp_path):
    checkout, registry = tmp_path / "plumline", tmp_path / "empty-registry"
    (checkout / "scripts").mkdir(parents=True)
    registry.mkdir()
    for name in ("scripts/bootstrap", "pyproject.toml"):
        shutil.copy2(REPO / name, checkout / name)

    first = bootstrap(checkout, registry)
    assert first.returncode != 0
    assert first.stdout == ""  # pip's pages go to the log, not the terminal
    log = checkout / ".venv" / "bootstrap-logs" / "torch.log"
    lines = first.stderr.splitlines()
    assert lines[0].startswith("plumline: environment:") and lines[0].endswith(")")  # "... done (4s)"
    assert lines[1].startswith("plumline: torch:") and lines[1].endswith("FAILED")
    assert "step 'torch' failed" in first.stderr and str(log.relative_to(checkout)) in first.stderr
    assert "run the same command again" in first.stderr
    assert "No matching distribution found for torch==2.13.0" in log.read_text()  # the whole story is kept
    assert len(lines) < 25, first.stderr  # one screen, not pip's pages
    python = checkout / ".venv" / "bin" / "python"
    made = python.lstat().st_mtime_ns

    again = bootstrap(checkout, registry)
    assert again.returncode != 0
    assert again.stderr.splitlines()[0] == "plumline: environment: done in an earlier run"
    assert python.lstat().st_mtime_ns == made  # the virtualenv was kept, not made again
    assert "step 'torch' failed" in again.stderr
