"""Training runs: too little data, NaN losses, interrupts and foreign data end cleanly."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import TrainerCallback

from agent.adapters import base_fingerprint
from tests.trainer.conftest import fill_pairs
from trainer import runs
from trainer.data import preference_rows


def test_empty_dataset_says_so(train_env, model_name):
    config, store = train_env
    fill_pairs(store, n=2, model=model_name)  # below train.min_examples (4)
    result = runs.train(config, store, progress=False, say=lambda m: None)
    assert result.status == "empty"
    assert "2 usable example(s), at least 4 needed" in result.message
    assert not any(config.adapters_dir.glob("dpo-*"))


def test_heldout_and_foreign_data_never_train(train_env, model_name):
    config, store = train_env
    fill_pairs(store, n=2, model=model_name)
    fill_pairs(store, n=1, model=model_name, split="heldout")
    fill_pairs(store, n=1, model=model_name, source="humaneval")  # a train-split HumanEval task: fair data
    fill_pairs(store, n=1, model="some/other-base")
    fill_pairs(store, n=1, model=model_name, adapter_id="an-older-adapter")
    rows, dropped = preference_rows(store, adapter_id="base", base=base_fingerprint(model_name))
    assert len(rows) == 3
    assert {k: n for k, n in dropped.items() if n} == {
        "from held-out tasks": 1, "from another base model": 1, "from another adapter (train.on_policy_only)": 1}


class _InterruptAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise KeyboardInterrupt  # what Ctrl-C (or a kill before the next checkpoint) does


def test_resume_after_interrupt(train_env, model_name, monkeypatch):
    monkeypatch.setenv("PLUMLINE_TRAIN_SAVE_STEPS", "1")  # checkpoint every step, so step 1 survives
    from agent.config import load_config

    config, store = load_config(), train_env[1]
    fill_pairs(store, n=4, model=model_name)
    with pytest.raises(KeyboardInterrupt):
        runs.train(config, store, max_steps=3, callbacks=[_InterruptAt(2)], progress=False, say=lambda m: None)
    row = next(store.rows("select * from train_runs"))
    assert row["status"] == "interrupted"
    result = runs.train(config, store, max_steps=3, progress=False, say=lambda m: None)
    assert result.ok, result.message
    assert result.run_id == row["id"]
    assert result.metrics["resumed_from_step"] == 1 and result.metrics["steps"] == 3


class _DatasetSize(TrainerCallback):
    def __init__(self):
        self.rows = None

    def on_train_begin(self, args, state, control, train_dataloader=None, **kw):
        self.rows = len(train_dataloader.dataset)


def test_resume_trains_on_the_examples_the_run_started_with(train_env, model_name, monkeypatch):
    monkeypatch.setenv("PLUMLINE_TRAIN_SAVE_STEPS", "1")  # checkpoint every step, so step 1 survives
    from agent.config import load_config

    config, store = load_config(), train_env[1]
    fill_pairs(store, n=4, model=model_name)
    first_pairs = [r["id"] for r in store.rows("select id from pairs order by id")]
    with pytest.raises(KeyboardInterrupt):
        runs.train(config, store, max_steps=3, callbacks=[_InterruptAt(2)], progress=False, say=lambda m: None)
    fill_pairs(store, n=4, model=model_name)  # new on-policy pairs arrive while the run is interrupted
    size = _DatasetSize()
    result = runs.train(config, store, max_steps=3, callbacks=[size], progress=False, say=lambda m: None)
    assert result.ok and result.metrics["resumed_from_step"] == 1, result.message
    assert size.rows == 4 and result.window["rows"] == 4  # the snapshot, not the 8 pairs stored now
    used = {r["id"]: json.loads(r["used_by"] or "[]") for r in store.rows("select id, used_by from pairs")}
    assert {pid for pid, runs_ in used.items() if result.run_id in runs_} == set(first_pairs)


def test_run_that_cannot_rebuild_its_examples_starts_over(train_env, model_name, monkeypatch):
    monkeypatch.setenv("PLUMLINE_TRAIN_SAVE_STEPS", "1")
    from agent.config import load_config

    config, store = load_config(), train_env[1]
    fill_pairs(store, n=5, model=model_name)
    with pytest.raises(KeyboardInterrupt):
        runs.train(config, store, max_steps=3, callbacks=[_InterruptAt(2)], progress=False, say=lambda m: None)
    interrupted = next(store.rows("select id from train_runs"))["id"]
    store.db.execute("delete from pairs where id = (select min(id) from pairs)")  # one of its examples is gone
    said: list[str] = []
    result = runs.train(config, store, max_steps=1, progress=False, say=said.append)
    assert result.ok and result.run_id != interrupted and result.metrics["resumed_from_step"] == 0
    old = store.get("train_runs", interrupted)
    assert old["status"] == "failed" and "1 of its 5 examples are gone" in old["metrics"]
    assert any("cannot resume on the examples it started with" in m for m in said)


class _PoisonLora(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kw):
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "lora_A" in name:
                    p.fill_(float("nan"))  # what a diverged update leaves behind


def test_nan_loss_is_caught(train_env, model_name):
    config, store = train_env
    fill_pairs(store, n=4, model=model_name)
    result = runs.train(config, store, max_steps=2, callbacks=[_PoisonLora()], progress=False, say=lambda m: None)
    assert result.status == "failed"
    assert "loss became nan" in result.message and "train.learning_rate" in result.message
    assert not any(config.adapters_dir.glob("dpo-*"))
    assert next(store.rows("select status from train_runs"))["status"] == "failed"


def test_out_of_memory_names_the_setting(train_env):
    config, _ = train_env
    msg = str(runs._explain_oom(config, RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")))
    assert "train.batch_size" in msg and "train.max_length" in msg


def test_continues_from_current_adapter(train_env, model_name):
    from agent.adapters import Adapter, promote

    config, store = train_env
    fill_pairs(store, n=4, model=model_name)
    first = runs.train(config, store, max_steps=1, progress=False, say=lambda m: None)  # 1 step: just an adapter
    promote(config.adapters_dir, first.adapter_id, store=store)
    fill_pairs(store, n=4, model=model_name, adapter_id=first.adapter_id)  # fresh on-policy data from it
    second = runs.train(config, store, max_steps=1, progress=False, say=lambda m: None)
    assert second.ok, second.message
    meta = Adapter(second.adapter_id, config.adapters_dir / second.adapter_id).meta
    assert meta["parent"] == first.adapter_id and second.window["rows"] == 4
    assert not (config.adapters_dir / second.adapter_id / "ref").exists()  # only the policy adapter is saved
