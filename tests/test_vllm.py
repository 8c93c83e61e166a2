"""The vLLM backend against a real vLLM server (opt-in: PLUMLINE_TEST_VLLM_URL, see
scripts/vllm-cpu-server), and its error when no server answers (always)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from agent.models import ModelConfig
from agent.models.prompts import Context
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


@needs_server
def test_lora_adapter_is_loaded_and_named(backend, embedded_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)).save_pretrained(tmp_path / "a1")
    backend.set_adapter(Path(tmp_path / "a1"), "test-a1")
    c = backend.complete(Context("x = ", "\n"))
    assert c.adapter_id == "test-a1"
    backend.set_adapter(None)
