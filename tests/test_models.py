"""The transformers backend on the tiny model: completion, sampling, cancellation, adapter swap."""

import threading

import pytest

from agent.models import BASE_ADAPTER, ModelConfig, load_backend
from agent.models.prompts import Context


@pytest.fixture(scope="module")
def backend(tiny_model_dir, tmp_path_factory):
    return load_backend(ModelConfig(name=str(tiny_model_dir), line_tokens=8, block_tokens=16),
                        tmp_path_factory.mktemp("cache"))


def test_complete_returns_a_tagged_completion(backend):
    c = backend.complete(Context("def add(a, b):\n    return ", "\n"))
    assert c.adapter_id == BASE_ADAPTER
    assert c.mode == "line"
    assert "\n" not in c.text
    assert c.prompt.endswith("return")  # trailing space healed out of the prompt
    assert c.context.prefix.endswith("return ")


def test_long_files_are_cut_to_the_token_budget(tiny_model_dir, tmp_path):
    b = load_backend(ModelConfig(name=str(tiny_model_dir), context_tokens=64, line_tokens=4), tmp_path)
    prefix = "".join(f"x{i} = {i}\n" for i in range(400))
    c = b.complete(Context(prefix, "y = 2\n" * 200))
    n = len(b.tokenizer(c.context.prefix + c.context.suffix)["input_ids"])
    assert n <= 64
    assert c.context.prefix.endswith("x399 = 399\n")


def test_prefix_cache_gives_the_same_answer(backend):
    ctx = Context("import os\n" * 40 + "def f(x):\n    return ", "\n")
    first = backend.complete(ctx).text
    again = backend.complete(ctx).text  # served with the KV cache of the first
    assert first == again


def test_cancel_stops_generation(backend):
    cancel = threading.Event()
    cancel.set()
    c = backend.complete(Context("def f():\n    ", "", mode="block"), cancel=cancel, max_new_tokens=200)
    assert c.cancelled
    assert c.new_tokens <= 1


def test_sample_gives_n_candidates_per_context(backend):
    out = backend.sample([Context("def f(x):\n", "", mode="block"), Context("def g():\n", "", mode="block")],
                         3, temperature=1.0, max_new_tokens=8)
    assert [len(x) for x in out] == [3, 3]
    assert all(isinstance(t, str) for row in out for t in row)


def _make_adapter(model_dir, out_dir, seed):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    peft = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(out_dir)
    return out_dir


def test_adapter_swap_changes_the_policy_and_the_tag(tiny_model_dir, tmp_path):
    b = load_backend(ModelConfig(name=str(tiny_model_dir), quantize="none"), tmp_path)
    import torch

    ids = b.tokenizer("def f(x):", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        before = b.model(ids).logits
    b.set_adapter(_make_adapter(tiny_model_dir, tmp_path / "a1", seed=1), "a1")
    assert b.adapter_id == "a1"
    with torch.no_grad():
        after = b.model(ids).logits
    assert not torch.allclose(before, after)
    assert b.complete(Context("x = ", "\n")).adapter_id == "a1"
    b.set_adapter(None)
    with torch.no_grad():
        back = b.model(ids).logits
    assert torch.allclose(before, back, atol=1e-5)
    assert b.adapter_id == BASE_ADAPTER


def test_generate_stops_at_a_stop_string(backend):
    out = backend.generate(["def f():\n"], max_new_tokens=24, temperature=1.0, n=4, stop=("e",))
    assert all("e" not in text for text in out[0])
