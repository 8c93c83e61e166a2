"""The vLLM backend against a real vLLM server (opt-in: PLUMLINE_TEST_VLLM_URL, see
scripts/vllm-cpu-server), and its error when no server answers (always)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from agent.models import ModelConfig
from agent.models.prompts import Context, build_prompt, fit_window
from agent.models.vllm_backend import VLLMBackend, VLLMError

URL = os.environ.get("PLUMLINE_TEST_VLLM_URL", "")
needs_server = pytest.mark.skipif(not URL, reason="set PLUMLINE_TEST_VLLM_URL to a vLLM server (scripts/vllm-cpu-server)")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_says_what_to_do(tiny_model_dir):
    config = ModelConfig(backend="vllm", vllm_url=f"http://127.0.0.1:{_closed_port()}", request_timeout_s=2)
    with pytest.raises(VLLMError, match="vllm serve"):
        VLLMBackend(config, str(tiny_model_dir))


@pytest.fixture(scope="module")
def backend(embedded_model_dir):
    return VLLMBackend(ModelConfig(backend="vllm", vllm_url=URL), str(embedded_model_dir))


@needs_server
def test_line_completion_from_the_server(backend):
    c = backend.complete(Context("import os\npath = os.path.", "\n"))
    assert c.adapter_id == "base"
    assert c.text and "\n" not in c.text


@needs_server
def test_sampling_gives_n_per_prompt(backend):
    out = backend.sample([Context('def add(a, b):\n    """Return a + b."""\n', "", mode="block")] * 2, 3, temperature=0.8)
    assert [len(x) for x in out] == [3, 3]


def _long_file(lines: int) -> str:
    return "".join(f"def f{i}(x):\n    return x * {i} + {i * i}\n\n" for i in range(lines // 3))


@needs_server
def test_server_gets_the_window_every_engine_sends(backend):
    ctx = Context(_long_file(300) + "value = f1(", "", mode="line")  # far over model.context_tokens
    c = backend.complete(ctx, max_new_tokens=4)
    want = build_prompt(fit_window(ctx, backend.tokenizer, backend.config.context_tokens), backend.tokenizer,
                        backend.prompt_format)
    assert c.prompt == want


@needs_server
def test_file_longer_than_the_server_window_still_gets_candidates(backend):
    body = _long_file(900) + 'def add(a, b):\n    """Return a + b."""\n'  # over the server's --max-model-len
    assert len(backend.tokenizer(body)["input_ids"]) > 2048
    out = backend.sample([Context(body, "", mode="block")], 2, temperature=0.8, max_new_tokens=16)
    assert [len(x) for x in out] == [2]


@needs_server
def test_decoding_ends_at_the_stop_tokens_of_every_engine(backend):
    # a FIM answer ends with <|endoftext|> (then this model writes comments); the server's own
    # default stops at <|im_end|> only
    prompt = "<|fim_prefix|>import os\npath = os.path.<|fim_suffix|>\nprint(path)\n<|fim_middle|>"
    [[raw]] = backend.generate([prompt], max_new_tokens=48)
    assert len(backend.tokenizer(raw, add_special_tokens=False)["input_ids"]) < 48, raw


def _lora(model_dir: Path, out: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(out)
    return out


@needs_server
def test_lora_adapter_is_loaded_and_named(backend, embedded_model_dir, tmp_path):
    backend.set_adapter(_lora(embedded_model_dir, tmp_path / "a1"), "test-a1")
    c = backend.complete(Context("x = ", "\n"))
    assert c.adapter_id == "test-a1"
    backend.set_adapter(None)


@needs_server
def test_adapter_the_server_already_holds_is_served_again(backend, embedded_model_dir, tmp_path):
    # a restarted plumline re-registers the current adapter with a server that kept it
    path = _lora(embedded_model_dir, tmp_path / "a2")
    backend.set_adapter(path, "test-a2")
    backend.set_adapter(None)
    backend.set_adapter(path, "test-a2")
    assert backend.complete(Context("x = ", "\n")).adapter_id == "test-a2"
    backend.set_adapter(None)
