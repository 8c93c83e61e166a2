"""The registry: promotion is checked and atomic, rollback returns to the previous adapter."""

from __future__ import annotations

import pytest

from agent.adapters import AdapterError, base_fingerprint, current_adapter, promote, rollback
from tests.trainer.conftest import make_adapter


def test_corrupt_adapter_is_not_promoted(train_env):
    config, store = train_env
    fp = base_fingerprint(config.model.name)
    make_adapter(config, "good", fingerprint=fp)
    promote(config.adapters_dir, "good", store=store, fingerprint=fp)
    bad = make_adapter(config, "bad", fingerprint=fp)
    for weights in bad.glob("adapter_model.*"):
        weights.unlink()  # an interrupted save: config without weights
    with pytest.raises(AdapterError, match="corrupt"):
        promote(config.adapters_dir, "bad", store=store, fingerprint=fp)
    assert current_adapter(config.adapters_dir).id == "good"
    assert store.get("adapters", "bad")["status"] == "broken"


def test_adapter_from_another_base_is_refused(train_env):
    config, store = train_env
    make_adapter(config, "foreign", fingerprint="another-base")
    with pytest.raises(AdapterError, match="trained on base model"):
        promote(config.adapters_dir, "foreign", store=store, fingerprint=base_fingerprint(config.model.name))
    assert current_adapter(config.adapters_dir).id == "base"


def test_rollback_restores_previous(train_env):
    config, store = train_env
    fp = base_fingerprint(config.model.name)
    for i, name in enumerate(("a1", "a2")):
        make_adapter(config, name, fingerprint=fp, seed=i)
        promote(config.adapters_dir, name, store=store, fingerprint=fp)
    assert rollback(config.adapters_dir, store=store, fingerprint=fp) == ("a2", "a1")
    assert current_adapter(config.adapters_dir).id == "a1"
    assert store.get("adapters", "a2")["status"] == "rejected"
    assert rollback(config.adapters_dir, store=store, fingerprint=fp) == ("a1", "base")
    with pytest.raises(AdapterError, match="nothing to roll back"):
        rollback(config.adapters_dir, store=store, fingerprint=fp)


def test_rollback_via_cli(train_env):
    from typer.testing import CliRunner

    from agent.cli import app

    config, store = train_env
    fp = base_fingerprint(config.model.name)
    make_adapter(config, "c1", fingerprint=fp)
    promote(config.adapters_dir, "c1", store=store, fingerprint=fp)
    result = CliRunner().invoke(app, ["adapters", "rollback"])
    assert result.exit_code == 0, result.output
    assert current_adapter(config.adapters_dir).id == "base"
