"""The update rules: each trains LoRA (never the base) on its own data, is chosen by config or on the
command line, is seeded, and with too little data says so and trains nothing."""

from __future__ import annotations

import json

import pytest

from agent.collect import pair
from tests.trainer.conftest import TASKS, add_sample, add_task, fill_mixed, moved_weights, weight_snapshot


@pytest.mark.parametrize("method", ["plum", "rpo", "rft", "offpolicy"])
def test_each_rule_moves_lora_weights_not_base(train_env, model_name, method):
    from trainer import runs

    config, store = train_env
    config.train.method = method
    fill_mixed(store, n=4, model=model_name)
    pair(store, config)  # collect's pair stage, under this rule's pair rule
    snapshot = weight_snapshot()
    result = runs.train(config, store, max_steps=2, callbacks=[snapshot], progress=False, say=lambda m: None)
    assert result.ok and result.method == method, result.message
    lora_moved, base_moved = moved_weights(snapshot.before, model_name, config.adapters_dir / result.adapter_id)
    assert lora_moved, "no LoRA weight changed"
    assert not base_moved, f"base weights changed: {base_moved[:3]}"


def _dataset(config, store, method):
    from trainer.model import load_base
    from trainer.runs import build_dataset

    config.train.method = method
    return build_dataset(config, store, load_base(config, say=lambda m: None), method, "base")


def test_each_rule_reads_its_own_examples(train_env, model_name):
    config, store = train_env
    fill_mixed(store, n=4, model=model_name)
    config.train.method = "plum"
    pair(store, config)
    plum, window, _ = _dataset(config, store, "plum")
    assert len(plum) == 4 * 2 and window.outcomes == {"mixed": 4, "all_pass": 0, "all_fail": 0}
    # ACECODER's rule wants rejected > 0: of PLUM's pairs only those rejecting the 0.2 body qualify
    dpo, window, _ = _dataset(config, store, "dpo")
    assert len(dpo) == 4 and window.dropped == {"made under another pair rule": 4}
    rft, _, _ = _dataset(config, store, "rft")
    assert len(rft) == 4 * 2 and set(rft.column_names) == {"prompt", "completion"}  # both right bodies, distinct
    control, _, _ = _dataset(config, store, "offpolicy")
    assert len(control) == 4 * 2  # the reference over each of the two distinct failing samples
    assert all(TASKS[0][2].strip() in c for c, p in zip(control["chosen"], control["prompt"]) if "add(" in p)


def test_rpo_adds_the_nll_of_the_chosen_answer_to_dpo(train_env, model_name):
    from trainer import runs

    config, store = train_env
    fill_mixed(store, n=4, model=model_name)
    config.train.method = "plum"
    pair(store, config)
    first = {}
    for method in ("plum", "rpo"):
        result = runs.train(config, store, method=method, max_steps=1, progress=False, say=lambda m: None)
        assert result.ok, result.message
        first[method] = result.metrics["loss_first"]
    assert first["plum"] == pytest.approx(0.6931, abs=1e-3)  # DPO at the reference: log 2
    assert first["rpo"] > first["plum"] + 1.0  # + the chosen answer's NLL (the tiny model knows nothing)


def _lora(config, adapter_id):
    from safetensors.torch import load_file

    return load_file(str(config.adapters_dir / adapter_id / "adapter_model.safetensors"))


def test_seed_fixes_lora_init_and_data_order_and_is_recorded(train_env, model_name):
    import torch

    from trainer import runs

    config, store = train_env
    fill_mixed(store, n=4, model=model_name)
    config.train.method = "plum"
    pair(store, config)
    ids = []
    for seed in (7, 7, 8):
        config.train.seed = seed
        torch.manual_seed(len(ids))  # whatever the process drew before must not matter
        result = runs.train(config, store, max_steps=2, progress=False, say=lambda m: None)
        assert result.ok, result.message
        ids.append(result.adapter_id)
    a, b, c = (_lora(config, i) for i in ids)
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed, same data: a different adapter"
    assert any(not torch.equal(a[k], c[k]) for k in a), "another seed changed nothing"
    run = next(store.rows("select config from train_runs where adapter_id = ?", [ids[2]]))
    assert json.loads(run["config"])["seeds"]["lora_init"] == 8


def test_rule_is_chosen_in_config_or_on_the_command_line(train_env, model_name, monkeypatch):
    from typer.testing import CliRunner

    from agent.cli import app

    _, store = train_env
    fill_mixed(store, n=4, model=model_name)
    runner = CliRunner()
    bad = runner.invoke(app, ["train", "--method", "ppo"])
    assert bad.exit_code != 0 and "rft" in bad.output and "plum" in bad.output
    monkeypatch.setenv("PLUMLINE_TRAIN_METHOD", "offpolicy")
    monkeypatch.setenv("PLUMLINE_TRAIN_MAX_STEPS", "1")
    assert runner.invoke(app, ["train"]).exit_code == 0
    assert runner.invoke(app, ["train", "--method", "rft"]).exit_code == 0
    runs = list(store.rows("select method, status, config from train_runs order by started_at"))
    assert [(r["method"], r["status"]) for r in runs] == [("offpolicy", "finished"), ("rft", "finished")]
    assert json.loads(runs[1]["config"])["train"]["method"] == "rft"


def test_a_cycle_with_too_little_data_says_so_and_trains_nothing(train_env, model_name, sandbox):
    from tests.trainer.conftest import FakePolicy
    from trainer.nightly import run_nightly

    config, store = train_env
    config.train.method = "plum"
    fill_mixed(store, n=1, model=model_name)  # one mixed task: two PLUM pairs, fewer than min_examples (4)
    for name, prompt, good, bad, tests in TASKS[1:3]:  # one task the policy always solves, one it never does
        tid = add_task(store, name, prompt, tests)
        for i in range(2):
            add_sample(store, tid, (good if name == "neg" else bad) + "  " * i, 1.0 if name == "neg" else 0.0,
                       adapter_id="base", model=model_name)
    result = run_nightly(config, store, policy=FakePolicy({}), sandbox=sandbox, check_power=False, say=lambda m: None)
    assert result.status == "done" and "not trained" in result.message, result.message
    assert "plum: 2 usable example(s), at least 4 needed" in result.message
    assert "1 whose samples all pass, 1 whose samples all fail" in result.message
    assert result.stages["train"]["status"] == "empty" and "gate" not in result.stages
    assert not list(store.rows("select id from adapters"))
    assert [r["status"] for r in store.rows("select status from train_runs")] == ["empty"]
