"""Choosing the dtype from the CPU's flags and the engine per job from a recorded measurement."""

from __future__ import annotations

import json

import pytest

from agent.models import ModelConfig, load_backend
from agent.models import engines
from agent.models.engines import EngineChoice, choose_engine, machine_key, record_path
from agent.models.hardware import choose_dtype


@pytest.mark.parametrize("flags, want", [
    ({"avx2", "fma", "amx_bf16", "amx_tile"}, "bfloat16"),
    ({"avx2", "avx512f", "avx512_bf16"}, "bfloat16"),
    ({"avx2", "fma", "f16c"}, "float32"),
    (set(), "float32"),
])
def test_cpu_dtype_follows_the_flags(flags, want):
    choice = choose_dtype("auto", "cpu", frozenset(flags))
    assert choice.name == want
    assert choice.reason


def test_a_configured_dtype_wins_over_the_flags():
    assert choose_dtype("float32", "cpu", frozenset({"amx_bf16"})).name == "float32"


def test_a_configured_engine_is_used_as_is(tmp_path):
    choice = choose_engine(ModelConfig(backend="transformers"), tmp_path, "serve")
    assert choice.engine == "transformers" and "model.backend" in choice.reason
    choice = choose_engine(ModelConfig(sample_backend="llamacpp"), tmp_path, "sample")
    assert choice.engine == "llamacpp" and "model.sample_backend" in choice.reason


def test_auto_on_a_model_folder_is_transformers_with_the_reason(tiny_model_dir, tmp_path):
    choice = choose_engine(ModelConfig(name=str(tiny_model_dir)), tmp_path, "serve")
    assert choice.engine == "transformers"
    assert "GGUF" in choice.reason
    backend = load_backend(ModelConfig(name=str(tiny_model_dir)), tmp_path, say=lambda _m: None)
    assert backend.engine == "transformers"


def test_auto_without_llamacpp_falls_back_to_transformers(tmp_path, monkeypatch):
    from agent.models import llamacpp_backend

    def broken():
        raise llamacpp_backend.LlamaCppUnavailable("llama-cpp-python is not usable here (ImportError: no module)")

    monkeypatch.setattr(llamacpp_backend, "import_llama", broken)
    choice = choose_engine(ModelConfig(), tmp_path, "serve")
    assert choice.engine == "transformers"
    assert "llama-cpp-python is not usable" in choice.reason


@pytest.fixture
def llamacpp_and_parts():
    """auto can only choose llama.cpp where it imports and the embedded model's parts are installed."""
    pytest.importorskip("llama_cpp")
    from agent.models.embedded import EmbeddedModelMissing, lookup, part_paths

    try:
        part_paths(lookup("embedded"))
    except EmbeddedModelMissing as exc:
        pytest.skip(str(exc))


def test_auto_uses_the_recorded_measurement_without_measuring_again(llamacpp_and_parts, tmp_path, monkeypatch):
    key = machine_key("qwen2.5-coder-0.5b")
    record_path(tmp_path).write_text(json.dumps({key: {"serve": {
        "engine": "llamacpp", "reason": "measured here: llamacpp 3.00x faster", "figures": {}}}}))
    monkeypatch.setattr(engines, "measure", lambda *a, **k: pytest.fail("measured again"))
    assert choose_engine(ModelConfig(), tmp_path, "serve") == EngineChoice(
        "llamacpp", "measured here: llamacpp 3.00x faster", {})


def test_auto_measures_once_and_records_the_faster(llamacpp_and_parts, tmp_path, monkeypatch):
    calls = []

    def fake_measure(config, cache_dir, job):
        calls.append(job)
        return {"llamacpp": {"cost": 2.0}, "transformers": {"cost": 1.0}}

    monkeypatch.setattr(engines, "measure", fake_measure)
    first = choose_engine(ModelConfig(), tmp_path, "sample", say=lambda _m: None)
    second = choose_engine(ModelConfig(), tmp_path, "sample", say=lambda _m: None)
    assert first.engine == second.engine == "transformers"
    assert "2.00x faster" in first.reason
    assert calls == ["sample"]
