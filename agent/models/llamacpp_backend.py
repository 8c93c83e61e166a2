"""In-process llama.cpp backend (llama-cpp-python) on the embedded model's GGUF, with LoRA adapters.

Why in process rather than a managed ``llama-server``: llama-cpp-python's wheel is built from its
sdist here and ships no ``llama-server`` binary; in process there is no HTTP hop or port to manage,
a cancelled request stops within one token (we drive the token loop), and llama-cpp-python keeps
the KV cache of the longest common prefix between consecutive prompts by itself, so a developer
typing along costs only the new tokens (``Completion.decoding["prompt_tokens_processed"]`` shows
how many were evaluated).

Same policy as the other engines:

* the same weights: the GGUF the transformers checkpoint was dequantized from;
* the same prompt: built with the model's Hugging Face tokenizer (``prompts.build_prompt``, the
  same ``fit_window``), and the token ids are that tokenizer's, fed to llama.cpp as they are;
* the same adapter: a promoted PEFT adapter is exported to GGUF LoRA once
  (``agent.models.gguf_lora``) and loaded with it. If the export fails, ``set_adapter`` raises and
  the server keeps serving the previous policy and logs why.

Build flags (scripts/bootstrap): AMX paths off and no ``-march=native``; the native build crashed
with a general protection fault in its AMX code inside a VM.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import random
import threading
import time
from pathlib import Path

from agent.adapters import base_fingerprint
from agent.models import BASE_ADAPTER, Completion
from agent.models.config import ModelConfig
from agent.models.quiet import quiet_libraries
from agent.models.prompts import Context, build_prompt, detect_format, fit_window, postprocess, stop_token_ids

N_CTX = 4096  # room for free-form prompts (test writing) as well as the editor window


class LlamaCppUnavailable(RuntimeError):
    """llama.cpp cannot serve here; the message says why and what to do."""


def import_llama():
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:  # OSError: the shared library does not load on this CPU
        raise LlamaCppUnavailable(
            f"llama-cpp-python is not usable here ({type(exc).__name__}: {exc}). From a checkout: "
            "rm .venv/.plumline-bootstrap* && scripts/bootstrap; with pip: pip install 'plumline[llamacpp]' with the "
            "CMAKE_ARGS the README gives; or set model.backend = transformers") from None
    return llama_cpp


class LlamaCppBackend:
    engine = "llamacpp"

    def __init__(self, config: ModelConfig, gguf: Path, tokenizer_path: str):
        quiet_libraries()
        from transformers import AutoTokenizer

        self.llama_cpp = import_llama()
        self.config = config
        self.gguf = Path(gguf)
        self.model_name = tokenizer_path
        self.base_fingerprint = base_fingerprint(tokenizer_path)
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        self.prompt_format = detect_format(self.tokenizer, config.prompt_format)
        self.stop_ids = stop_token_ids(self.tokenizer)
        self.threads = config.threads or os.cpu_count() or 1
        self.adapter_id = BASE_ADAPTER
        self.adapter_path: Path | None = None
        self._lock = threading.Lock()
        self.llm = self._load(None)
        atexit.register(self.close)  # free the context before interpreter teardown (else __del__ prints errors)

    def close(self) -> None:
        with self._lock:
            self.llm.close()

    def _load(self, lora: Path | None):
        from llama_cpp._utils import suppress_stdout_stderr

        try:
            # llama.cpp's own C logging (e.g. "cannot use buft 'CPU_REPACK'" per LoRA tensor) bypasses
            # verbose=False; the messages are advice a user cannot act on.
            with suppress_stdout_stderr(disable=False):
                return self.llama_cpp.Llama(
                    model_path=str(self.gguf), n_ctx=N_CTX, n_batch=512, n_threads=self.threads,
                    n_threads_batch=self.threads, lora_path=str(lora) if lora else None, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            what = f" with LoRA {lora}" if lora else ""
            raise LlamaCppUnavailable(f"llama.cpp could not load {self.gguf}{what}: {exc}") from None

    # -- adapter slot ---------------------------------------------------------------------------

    def set_adapter(self, path: Path | None, adapter_id: str = BASE_ADAPTER) -> None:
        """Serve ``path`` (a PEFT LoRA folder, exported to GGUF LoRA here once) as ``adapter_id``.
        The new context is built outside the lock; the request in flight finishes on the old one."""
        lora = None
        if path is not None:
            from agent.models.gguf_lora import adapter_gguf

            lora = adapter_gguf(Path(path), self.gguf)  # raises LoraExportError (a RuntimeError)
        llm = self._load(lora)
        with self._lock:
            old, self.llm = self.llm, llm
            self.adapter_id = adapter_id if path is not None else BASE_ADAPTER
            self.adapter_path = Path(path) if path is not None else None
        old.close()

    # -- generation -----------------------------------------------------------------------------

    def _ids(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

    def _cached_prefix(self, ids: list[int]) -> int:
        """How many leading tokens of ``ids`` the context already holds (llama-cpp-python reuses them)."""
        held = self.llm.input_ids[: self.llm.n_tokens]
        common = 0
        for a, b in zip(held, ids):
            if a != b:
                break
            common += 1
        return common

    def _run(self, ids: list[int], *, limit: int, temperature: float, top_p: float, done=None,
             cancel: threading.Event | None = None, stop: tuple[str, ...] = ()) -> tuple[list[int], bool]:
        """Decode up to ``limit`` tokens after ``ids``. Caller holds the lock."""
        if temperature > 0:
            # each call's seed comes from Python's generator, which agent.collect.seed_sampling seeds
            # (train.seed, per adapter), so the same seed draws the same samples and another seed others
            self.llm.set_seed(random.randrange(2**31))
        out: list[int] = []
        cancelled = False
        gen = self.llm.generate(ids, temp=temperature, top_p=top_p if temperature > 0 else 1.0, top_k=0, min_p=0.0,
                                typical_p=1.0, repeat_penalty=1.0, reset=True)
        for token in gen:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            if token in self.stop_ids:
                break
            out.append(token)
            if len(out) >= limit:
                break
            if done is not None or stop:
                text = self.tokenizer.decode(out, skip_special_tokens=True)
                if (done is not None and done(text)) or any(s in text for s in stop):
                    break
        gen.close()
        return out, cancelled

    def complete(self, ctx: Context, *, cancel: threading.Event | None = None,
                 max_new_tokens: int | None = None) -> Completion:
        start = time.perf_counter()
        mode = ctx.resolved_mode()
        ctx = fit_window(dataclasses.replace(ctx, mode=mode), self.tokenizer, self.config.context_tokens)
        limit = max_new_tokens or (self.config.line_tokens if mode == "line" else self.config.block_tokens)
        prompt = build_prompt(ctx, self.tokenizer, self.prompt_format)
        ids = self._ids(prompt)
        with self._lock:
            adapter = self.adapter_id
            reused = min(self._cached_prefix(ids), len(ids) - 1)
            new, cancelled = self._run(ids, limit=limit, temperature=self.config.temperature, top_p=0.95,
                                       done=lambda t: postprocess(t, ctx, self.prompt_format, final=False)[1],
                                       cancel=cancel)
        text, _ = postprocess(self.tokenizer.decode(new, skip_special_tokens=True), ctx, self.prompt_format)
        return Completion(
            text=text, prompt=prompt, model=self.model_name, adapter_id=adapter,
            latency_ms=(time.perf_counter() - start) * 1000, new_tokens=len(new), mode=mode,
            decoding={"temperature": self.config.temperature, "max_new_tokens": limit, "format": self.prompt_format,
                      "context_tokens": self.config.context_tokens, "backend": self.engine,
                      "prompt_tokens": len(ids), "prompt_tokens_processed": len(ids) - reused},
            cancelled=cancelled, context=ctx, base_fingerprint=self.base_fingerprint,
        )

    def sample(self, contexts: list[Context], n: int, *, temperature: float,
               max_new_tokens: int | None = None, top_p: float = 0.95) -> list[list[str]]:
        """N candidates per context, one after another: the prompt is evaluated once per context and
        its KV cache reused for the other N-1."""
        fixed = [fit_window(c.resolved(), self.tokenizer,
                            self.config.context_tokens) for c in contexts]
        limit = max_new_tokens or self.config.block_tokens
        out: list[list[str]] = []
        for ctx in fixed:
            ids = self._ids(build_prompt(ctx, self.tokenizer, self.prompt_format))
            done = lambda t, c=ctx: postprocess(t, c, self.prompt_format, final=False)[1]  # noqa: E731
            row = []
            for _ in range(n):
                with self._lock:
                    new, _ = self._run(ids, limit=limit, temperature=temperature, top_p=top_p, done=done)
                row.append(postprocess(self.tokenizer.decode(new, skip_special_tokens=True), ctx, self.prompt_format)[0])
            out.append(row)
        return out

    def generate(self, prompts: list[str], *, max_new_tokens: int, temperature: float = 0.0,
                 n: int = 1, stop: tuple[str, ...] = ()) -> list[list[str]]:
        out = []
        for prompt in prompts:
            ids = self._ids(prompt)
            row = []
            for _ in range(n):
                with self._lock:
                    new, _ = self._run(ids, limit=max_new_tokens, temperature=temperature, top_p=0.95, stop=tuple(stop))
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                cuts = [text.find(s) for s in stop if s in text]
                row.append(text[: min(cuts)] if cuts else text)
            out.append(row)
        return out

    def chat_prompt(self, user: str) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                      add_generation_prompt=True)
        return user + "\n"
