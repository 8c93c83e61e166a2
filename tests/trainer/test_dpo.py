"""DPO: LoRA weights move, base weights do not; the data is in the serving prompt format."""

from __future__ import annotations

from agent.models.prompts import Context, postprocess
from tests.trainer.conftest import fill_pairs, moved_weights, weight_snapshot
from trainer.data import response_for


def test_dpo_moves_lora_weights_not_base(train_env, model_name):
    from trainer import runs

    config, store = train_env
    fill_pairs(store, n=4, model=model_name)
    snapshot = weight_snapshot()
    result = runs.train(config, store, max_steps=2, callbacks=[snapshot], progress=False)
    assert result.ok, result.message
    lora_moved, base_moved = moved_weights(snapshot.before, model_name, config.adapters_dir / result.adapter_id)
    assert lora_moved, "no LoRA weight changed"
    assert not base_moved, f"base weights changed: {base_moved[:3]}"


def test_training_target_round_trips_through_serving_trim():
    ctx = Context(prefix='def add(a, b):\n    """Return a + b."""\n', suffix="", mode="block")
    raw = response_for(ctx, "    return a + b", "chat")
    assert postprocess(raw, ctx, "chat")[0] == "    return a + b"
