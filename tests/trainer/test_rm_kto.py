"""Reward model (Bradley-Terry on the pairs) and KTO (kept vs dismissed suggestions)."""

from __future__ import annotations

from agent.store import new_id, now
from tests.trainer.conftest import fill_pairs, moved_weights, weight_snapshot
from trainer import runs


def test_rm_trains_and_ranks(train_env, model_name, monkeypatch):
    monkeypatch.setenv("PLUMLINE_TRAIN_LEARNING_RATE", "0.02")  # with 12 steps: enough for a tiny random model to lean
    monkeypatch.setenv("PLUMLINE_TRAIN_RM_MARGIN", "false")     # plain Bradley-Terry: the clearest signal for 4 pairs
    monkeypatch.setenv("PLUMLINE_TRAIN_LORA_ALPHA", "8")
    import pytest

    from agent.adapters import AdapterError, base_fingerprint, promote
    from agent.config import load_config
    from trainer.data import preference_dataset
    from trainer.rm import RewardModel, latest_reward_model, make_rm_reward
    from transformers import AutoTokenizer

    config, store = load_config(), train_env[1]
    fill_pairs(store, n=4, model=model_name)
    result = runs.train(config, store, method="rm", max_steps=12, progress=False, say=lambda m: None)
    assert result.ok, result.message
    adapter = latest_reward_model(config.adapters_dir)
    assert adapter.id == result.adapter_id
    with pytest.raises(AdapterError, match="reward model"):
        promote(config.adapters_dir, adapter.id)  # an RM scores; it never serves
    rm = RewardModel(model_name, adapter.path)
    ds, _ = preference_dataset(store, AutoTokenizer.from_pretrained(model_name), "chat", method="rm",
                               adapter_id="base", base=base_fingerprint(model_name), on_policy_only=True, min_examples=1)
    gaps = [c - r for c, r in (rm.score([x["prompt"]] * 2, [x["chosen"], x["rejected"]]) for x in ds)]
    assert sum(gaps) > 0, f"the trained RM does not prefer chosen responses on its training pairs: {gaps}"
    best = rm.rank(ds[0]["prompt"], [ds[0]["rejected"], ds[0]["chosen"]])
    assert best == ([1, 0] if gaps[0] > 0 else [0, 1])  # rank orders by score, best first
    assert len(make_rm_reward(rm)(prompts=[ds[0]["prompt"]], completions=[ds[0]["chosen"]])) == 1


def test_kto_trains_on_kept_vs_dismissed(train_env, model_name):
    config, store = train_env
    for i in range(6):
        cid = store.record_completion(id=new_id(), model=model_name, adapter_id="base", prompt=f"<|im_start|>user\nq{i}<|im_end|>\n",
                                      prefix=f"x{i} = ", suffix="", mode="line", language="python", text=str(i))
        store.record_event(cid, "accepted" if i % 2 else "dismissed")
        if i % 2:
            store.record_event(cid, "persist", 1.0)
    snapshot = weight_snapshot()
    result = runs.train(config, store, method="kto", max_steps=2, callbacks=[snapshot], progress=False,
                        say=lambda m: None)
    assert result.ok, result.message
    assert result.window["rows"] == 6
    lora_moved, base_moved = moved_weights(snapshot.before, model_name, config.adapters_dir / result.adapter_id)
    assert lora_moved, "no LoRA weight changed"
    assert not base_moved, f"base weights changed: {base_moved[:3]}"


def test_best_of_n_serving_picks_the_reward_models_favourite(train_env, model_name, monkeypatch):
    from agent.completion import load_serving_policy
    from agent.config import load_config
    from agent.models import Context
    from agent.models.rerank import Reranked
    from trainer.rm import RewardModel, latest_reward_model

    config, store = load_config(), train_env[1]
    said: list[str] = []
    monkeypatch.setenv("PLUMLINE_MODEL_RERANK_N", "3")
    config = load_config()
    plain = load_serving_policy(config, say=said.append)
    assert not isinstance(plain, Reranked) and any("no reward model" in m for m in said)  # asked for, none yet

    fill_pairs(store, n=4, model=model_name)
    assert runs.train(config, store, method="rm", max_steps=2, progress=False, say=lambda m: None).ok
    policy = load_serving_policy(config, say=said.append)
    assert isinstance(policy, Reranked) and policy.adapter_id == "base"
    got = policy.complete(Context("def add(a, b):\n    return ", "\n", language="python", mode="line"))
    info = got.decoding["rerank"]
    assert info["n"] == 3 and len(info["scores"]) == 3 and info["rm"] == latest_reward_model(config.adapters_dir).id
    assert info["scores"][info["picked"]] == max(info["scores"])
    rm = RewardModel(model_name, latest_reward_model(config.adapters_dir).path)
    assert abs(rm.score([got.prompt], [got.text])[0] - max(info["scores"])) < 1e-3  # the served text is the favourite
