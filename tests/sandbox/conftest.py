"""Sandbox test fixtures: one warm pool per backend, skip-or-fail when an engine is missing.

Tests that need Docker or bubblewrap skip when it is missing, unless ``PLUMLINE_TEST_REQUIRE``
(comma-separated, e.g. ``docker,bwrap``) names it: then they fail, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandbox import Limits, SandboxConfig, open_sandbox

BACKENDS = ("process", "docker")
TOOL = {"process": "bwrap", "docker": "docker"}
# Small limits keep the suite fast on 2 cores: every attack that loops costs one timeout.
LIMITS = Limits(timeout_s=2.0, memory_mb=256)


def require(tool: str, available: bool, why: str) -> None:
    """Skip when ``tool`` is unavailable, or fail if PLUMLINE_TEST_REQUIRE names it."""
    if available:
        return
    required = {t.strip() for t in os.environ.get("PLUMLINE_TEST_REQUIRE", "").split(",") if t.strip()}
    if tool in required:
        pytest.fail(f"{tool} is required (PLUMLINE_TEST_REQUIRE) but unavailable: {why}")
    pytest.skip(f"{tool} unavailable: {why}")


def require_backend(backend: str) -> None:
    from sandbox import docker_backend
    from sandbox.pool import _bwrap_works

    ok, why = docker_backend.engine_status() if backend == "docker" else _bwrap_works()
    require(TOOL[backend], ok, why)


def test_config(backend: str, workers: int = 2) -> SandboxConfig:
    return SandboxConfig(backend=backend, workers=workers, timeout_s=LIMITS.timeout_s, memory_mb=LIMITS.memory_mb)


test_config.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    require_backend(request.param)
    return request.param


@pytest.fixture(scope="session")
def pool(backend):
    """A warm two-worker pool for the backend, shared by the session and closed at its end."""
    sb = open_sandbox(test_config(backend))
    sb.warm_up()
    yield sb
    sb.close()


@pytest.fixture(scope="session")
def solo(backend):
    """A warm one-worker pool: the worker that took an attack is the one that judges next."""
    sb = open_sandbox(test_config(backend, workers=1))
    sb.warm_up()
    yield sb
    sb.close()


def runner_processes() -> list[int]:
    """Host pids of sandbox runners (process and unsafe backends)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"/opt/plumline/runner.py" in cmd or b"sandbox/runner.py" in cmd:
            pids.append(int(entry.name))
    return pids


def sandbox_containers() -> list[str]:
    from sandbox import docker_backend

    return docker_backend.list_containers()
