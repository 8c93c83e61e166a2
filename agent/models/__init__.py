"""The policy: a base model plus (optionally) the current LoRA adapter, behind one small interface.

Three engines implement it; ``agent.models.engines`` picks one per job (editor suggestions, the
loop's sampling) from a recorded measurement when ``model.backend`` is ``auto``:

* ``llamacpp``: llama-cpp-python in this process, on the embedded model's GGUF (+ GGUF LoRA);
* ``transformers``: the model runs in this process, CPU or CUDA (+ PEFT LoRA);
* ``vllm``: an HTTP client for a vLLM OpenAI-compatible server, which serves LoRA adapters by name.

All offer the same three things:

* ``complete(ctx)`` – one suggestion for an editor position, trimmed (serving);
* ``sample(contexts, n, temperature)`` – N trimmed candidates per context in the *serving* prompt
  format, batched (the on-policy loop);
* ``generate(prompts, ...)`` – raw text for free-form prompts (e.g. asking the model for tests);
* ``set_adapter(path, adapter_id)`` – swap the LoRA adapter between requests, without restart.

Every result carries ``model``, ``base_fingerprint`` and ``adapter_id`` so the store can tag every
record with the policy that produced it (design rule 1); the fingerprint
(``agent.adapters.base_fingerprint``) names the base model wherever its folder lives.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from agent.models.config import ModelConfig
from agent.models.prompts import Context

BASE_ADAPTER = "base"

__all__ = ["BASE_ADAPTER", "Completion", "Context", "ModelBackend", "ModelConfig", "load_backend", "resolve_model_path"]


@dataclass
class Completion:
    text: str
    prompt: str
    model: str
    adapter_id: str
    latency_ms: float
    new_tokens: int
    mode: str
    decoding: dict = field(default_factory=dict)
    cancelled: bool = False
    context: Context | None = None  # the window actually sent (after truncation to the token budget)
    base_fingerprint: str | None = None


class ModelBackend(Protocol):
    model_name: str
    base_fingerprint: str
    adapter_id: str
    prompt_format: str

    def complete(self, ctx: Context, *, cancel: threading.Event | None = None,
                 max_new_tokens: int | None = None) -> Completion: ...

    def sample(self, contexts: list[Context], n: int, *, temperature: float,
               max_new_tokens: int | None = None, top_p: float = 0.95) -> list[list[str]]: ...

    def generate(self, prompts: list[str], *, max_new_tokens: int, temperature: float = 0.0,
                 n: int = 1, stop: tuple[str, ...] = ()) -> list[list[str]]: ...

    def set_adapter(self, path: Path | None, adapter_id: str = BASE_ADAPTER) -> None: ...


def resolve_model_path(config: ModelConfig, cache_dir: Path, say=print) -> str:
    """An embedded model ('embedded', 'smollm2') → its transformers folder, dequantized from its GGUF on
    first use; otherwise the local folder or Hugging Face id as given."""
    from agent.models.embedded import ensure_embedded, lookup

    if lookup(config.name) is not None:
        return str(ensure_embedded(cache_dir, say=say, name=config.name))
    path = Path(config.name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"model.name = {config.name!r} is a folder without config.json; point it at a "
                "transformers model folder, or use 'embedded'"
            )
        return str(path)
    return config.name  # a Hugging Face id; transformers resolves it (and may download it)


def load_backend(config: ModelConfig, cache_dir: Path, say=print, *, job: str = "serve") -> ModelBackend:
    """Build the engine for ``job`` ("serve": editor suggestions; "sample": the loop's candidates),
    as ``model.backend`` / ``model.sample_backend`` say (``auto``: ``agent.models.engines``).
    The model is loaded here, once."""
    from agent.models.engines import choose_engine

    choice = choose_engine(config, cache_dir, job, say=say)
    if choice.engine == "vllm":
        from agent.models.vllm_backend import VLLMBackend

        return VLLMBackend(config, tokenizer_path=resolve_model_path(config, cache_dir, say=say))
    path = resolve_model_path(config, cache_dir, say=say)
    if choice.engine == "llamacpp":
        from agent.models.embedded import assemble, lookup
        from agent.models.llamacpp_backend import LlamaCppBackend, LlamaCppUnavailable

        model = lookup(config.name)
        if model is None:
            raise ValueError(f"model.backend = 'llamacpp' needs an embedded model (a GGUF); model.name = "
                             f"{config.name!r}. Use model.backend = transformers or auto.")
        try:
            return LlamaCppBackend(config, assemble(cache_dir, model, say=say), path)
        except LlamaCppUnavailable as exc:
            say(f"{exc}; serving with transformers instead")
    from agent.models.transformers_backend import TransformersBackend

    try:
        return TransformersBackend(config, path)
    except Exception as exc:  # noqa: BLE001 - a damaged cache fails in many ways (OSError, safetensors, json)
        from agent.models.embedded import ensure_embedded, lookup

        if lookup(config.name) is None:
            raise
        say(f"the converted embedded model in {path} does not load ({type(exc).__name__}); converting it again")
        return TransformersBackend(config, str(ensure_embedded(cache_dir, say=say, force=True, name=config.name)))
