"""The training data belongs to a base model by fingerprint, not by path: a moved or copied model
keeps its data, a different model (same architecture, other weights) does not get it."""

from __future__ import annotations

import shutil

import pytest
import sqlite_utils

from agent.adapters import base_fingerprint, same_base
from agent.store import MIGRATIONS, Store, new_id, now
from tests.tinymodel import build_tiny_model
from tests.trainer.conftest import fill_pairs
from trainer import runs
from trainer.data import GONE_BASE, OTHER_BASE, kto_dataset, preference_rows


@pytest.fixture
def moved_env(train_env, tiny_model_dir, tmp_path, monkeypatch):
    """The tiny model copied to ``old``; ``move()`` moves it to ``new`` and points the config there,
    as when the model cache moves (a changed XDG cache dir, a reconverted embedded model)."""
    from agent.config import load_config

    old, new = tmp_path / "cache-old" / "tiny", tmp_path / "cache-new" / "tiny"
    shutil.copytree(tiny_model_dir, old)

    def move(*, keep_old: bool = False):
        (shutil.copytree if keep_old else shutil.move)(old, new)
        monkeypatch.setenv("PLUMLINE_MODEL_NAME", str(new))
        return load_config()

    return train_env[1], old, move


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    """A genuinely different base: the same architecture, config and file sizes, other weights."""
    return build_tiny_model(tmp_path_factory.mktemp("other-tiny"), seed=1)


def test_fingerprint_ignores_the_folder_and_sees_the_weights(tiny_model_dir, other_model_dir, tmp_path):
    copy = shutil.copytree(tiny_model_dir, tmp_path / "elsewhere")
    assert base_fingerprint(copy) == base_fingerprint(tiny_model_dir)
    mine, other = base_fingerprint(tiny_model_dir), base_fingerprint(other_model_dir)
    assert mine.split("-")[0] == other.split("-")[0]  # config and sizes alike: only the weights tell them apart
    assert not same_base(mine, other)
    # an adapter recorded by an older version (layout part only) still fits its base
    assert same_base(mine.split("-")[0], mine) and not same_base("another-base", mine)


def test_data_follows_the_model_when_its_folder_moves(moved_env):
    store, old, move = moved_env
    fill_pairs(store, n=4, model=str(old), base=base_fingerprint(old))  # as sample_candidates logs them
    config = move()
    result = runs.train(config, store, progress=False, say=lambda m: None)
    assert result.ok, result.message
    assert result.window["rows"] == 4 and not result.window["dropped"]


def test_rows_without_a_fingerprint_are_matched_by_their_folder(moved_env):
    store, old, move = moved_env
    fill_pairs(store, n=3, model=str(old))  # logged before fingerprints were stored: a path only
    fill_pairs(store, n=1, model="/no/such/cache/tiny")  # ... from a folder that is gone: cannot be told
    config = move(keep_old=True)
    from trainer.model import load_base

    rows, dropped = preference_rows(store, adapter_id="base", base=load_base(config, say=lambda m: None).fingerprint)
    assert len(rows) == 3 and dropped[GONE_BASE] == 1 and dropped[OTHER_BASE] == 0


def test_migration_records_the_fingerprint_of_earlier_rows(tmp_path, tiny_model_dir):
    """A store from before fingerprints: the upgrade fills them in while the model folder is still
    there, so moving the cache afterwards loses nothing."""
    old = shutil.copytree(tiny_model_dir, tmp_path / "old-cache" / "tiny")
    db = sqlite_utils.Database(tmp_path / "plumline.db")
    MIGRATIONS.apply(db, stop_before="m0002_base_fingerprint")
    db["samples"].insert({"id": "s1", "task_id": "t", "adapter_id": "base", "model": str(old), "created_at": now()})
    db["completions"].insert({"id": "c1", "model": "some/hub-id", "adapter_id": "base", "created_at": now()})
    db.close()
    store = Store(tmp_path / "plumline.db")
    assert store.get("samples", "s1")["base_fingerprint"] == base_fingerprint(tiny_model_dir)
    assert store.get("completions", "c1")["base_fingerprint"] is None  # not a folder: matched by name later


def test_another_base_models_data_is_left_out_and_said(train_env, model_name, other_model_dir):
    config, store = train_env
    fill_pairs(store, n=4, model=model_name, base=base_fingerprint(model_name))
    fill_pairs(store, n=2, model=str(other_model_dir), base=base_fingerprint(other_model_dir))
    fill_pairs(store, n=1, model=str(other_model_dir))  # an older row of the other model: by its folder
    said = []
    result = runs.train(config, store, progress=False, say=said.append)
    assert result.ok, result.message
    assert result.window["rows"] == 4 and result.window["dropped"] == {OTHER_BASE: 3}
    assert any(f"left out 3 {OTHER_BASE}" in m for m in said), said


def test_kto_compares_completions_by_fingerprint(train_env, model_name, other_model_dir):
    from transformers import AutoTokenizer

    _, store = train_env
    mine, other = base_fingerprint(model_name), base_fingerprint(other_model_dir)
    for i, (fp, status) in enumerate([(mine, "accepted"), (mine, "dismissed"), (other, "dismissed")]):
        cid = store.record_completion(id=new_id(), model=f"/a/moved/path/{i}", base_fingerprint=fp, adapter_id="base",
                                      prompt="p", text="    return 1", prefix="def f():\n")
        store.record_event(cid, status)
        store.record_event(cid, "persist", 1.0)
    _, window = kto_dataset(store, AutoTokenizer.from_pretrained(model_name), "chat", adapter_id="base", base=mine,
                            on_policy_only=True, min_examples=2)
    assert window.rows == 2 and window.dropped == {OTHER_BASE: 1}


def test_samples_and_completions_record_the_fingerprint(train_env, model_name):
    from agent.completion import log_completion
    from agent.models import load_backend
    from agent.models.prompts import Context
    from agent.sample import sample_candidates

    config, store = train_env
    policy = load_backend(config.model, config.cache_dir, say=lambda m: None)
    assert policy.base_fingerprint == base_fingerprint(model_name)
    task = {"id": "t1", "prompt": "def add(a, b):\n"}
    sample_candidates(policy, [task], n=1, temperature=0.8, store=store, max_new_tokens=4)
    assert next(store.rows("select base_fingerprint from samples"))["base_fingerprint"] == policy.base_fingerprint
    cid = log_completion(store, config.privacy, policy.complete(Context("def f():\n    "), max_new_tokens=4),
                         source="cli", relpath="f.py")
    assert store.get("completions", cid)["base_fingerprint"] == policy.base_fingerprint
