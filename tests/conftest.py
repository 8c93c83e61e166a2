"""Shared fixtures: an isolated plumline home, the tiny test model, a store on a real file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.skip_report import pytest_unconfigure  # noqa: F401 - a hook: lists skipped tests loudly, last
from tests.tinymodel import build_tiny_model


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer random Llama with a locally trained tokenizer (built once per session)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture
def plumline_home(tmp_path, monkeypatch) -> Path:
    """A private data home and an empty config, so no test touches the user's files."""
    home = tmp_path / "home"
    monkeypatch.setenv("PLUMLINE_HOME", str(home))
    monkeypatch.setenv("PLUMLINE_CONFIG", str(tmp_path / "config.toml"))
    for key in list(os.environ):
        if key.startswith("PLUMLINE_") and not key.startswith("PLUMLINE_TEST_") and key not in ("PLUMLINE_HOME", "PLUMLINE_CONFIG"):
            monkeypatch.delenv(key)
    return home


@pytest.fixture
def tiny_env(plumline_home, tiny_model_dir, monkeypatch) -> Path:
    """plumline configured to serve the tiny model; returns the data home."""
    monkeypatch.setenv("PLUMLINE_MODEL_NAME", str(tiny_model_dir))
    return plumline_home


@pytest.fixture(scope="session")
def embedded_model_dir(tmp_path_factory) -> Path:
    """The real embedded model, converted once (shared cache when PLUMLINE_TEST_CACHE is set)."""
    from agent.models.embedded import EmbeddedModelMissing, ensure_embedded

    cache = Path(os.environ.get("PLUMLINE_TEST_CACHE") or tmp_path_factory.mktemp("embedded-cache"))
    try:
        return ensure_embedded(cache, say=lambda _m: None)
    except EmbeddedModelMissing as exc:
        pytest.skip(str(exc))
