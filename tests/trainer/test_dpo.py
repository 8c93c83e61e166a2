"""DPO: LoRA weights move, base weights do not; the data is in the serving prompt format."""

from __future__ import annotations

import torch

from agent.models.prompts import Context, postprocess
from tests.trainer.conftest import fill_pairs
from trainer.data import response_for


def test_dpo_moves_lora_weights_not_base(train_env, model_name):
    from transformers import AutoModelForCausalLM, TrainerCallback

    from trainer import runs

    config, store = train_env
    fill_pairs(store, n=4, model=model_name)
    seen = {}

    class Snapshot(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kw):
            seen["before"] = {n: p.detach().clone() for n, p in model.named_parameters()}

    result = runs.train(config, store, max_steps=2, callbacks=[Snapshot()], progress=False)
    assert result.ok, result.message
    from peft import PeftModel

    trained = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_name),
                                        str(config.adapters_dir / result.adapter_id))
    after = dict(trained.named_parameters())
    lora_moved = [n for n, p in seen["before"].items() if "lora_B" in n and not torch.equal(p, after[n].detach())]
    base_moved = [n for n, p in seen["before"].items() if "lora_" not in n and not torch.equal(p, after[n].detach())]
    assert lora_moved, "no LoRA weight changed"
    assert not base_moved, f"base weights changed: {base_moved[:3]}"


def test_training_target_round_trips_through_serving_trim():
    ctx = Context(prefix='def add(a, b):\n    """Return a + b."""\n', suffix="", mode="block")
    raw = response_for(ctx, "    return a + b", "chat")
    assert postprocess(raw, ctx, "chat")[0] == "    return a + b"
