"""Backend for a vLLM server (OpenAI-compatible API), for GPU users and teams.

vLLM pins its own torch and transformers, so it runs in its own environment and plumline talks
to it over HTTP. Start it with LoRA enabled and runtime adapter loading allowed::

    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True \\
    vllm serve ~/.local/share/plumline/cache/models/SmolLM2-135M-Instruct \\
        --served-model-name plumline-base --enable-lora --max-lora-rank 64 --max-loras 4

then set ``model.backend = "vllm"`` and ``model.vllm_url = "http://127.0.0.1:8000"``.

The prompt is built here with the model's own tokenizer (loaded from the same folder or id as the
server's model) and the same window (``prompts.fit_window``), so the server sees exactly the prompt
the in-process backends build; decoding stops at the same stop tokens (``prompts.stop_token_ids``:
the server's default is the EOS alone, and a FIM answer ends with ``<|endoftext|>``), and the same
trimming applies. There is no early stop at the end of a block: the server decodes until a stop
token and the trimming cuts afterwards. Adapters: ``set_adapter`` registers the folder with
``/v1/load_lora_adapter`` under the adapter id and later requests name it as ``model``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import requests
from transformers import AutoTokenizer

from agent.adapters import base_fingerprint
from agent.models import BASE_ADAPTER, Completion
from agent.models.config import ModelConfig
from agent.models.quiet import quiet_libraries
from agent.models.prompts import Context, build_prompt, detect_format, fit_window, postprocess, stop_token_ids


class VLLMError(RuntimeError):
    pass


class VLLMBackend:
    def __init__(self, config: ModelConfig, tokenizer_path: str):
        quiet_libraries()
        self.config = config
        self.url = config.vllm_url.rstrip("/")
        self.session = requests.Session()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
        self.prompt_format = detect_format(self.tokenizer, config.prompt_format)
        self.stop_ids = sorted(stop_token_ids(self.tokenizer))  # the server's default is the EOS alone
        self.base_name = config.vllm_model or self._served_model()
        self.model_name = self.base_name
        self.base_fingerprint = base_fingerprint(tokenizer_path)  # the folder the server serves, by design
        self.adapter_id = BASE_ADAPTER
        self._lock = threading.Lock()

    # -- HTTP -------------------------------------------------------------------------------------

    def _post(self, path: str, payload: dict) -> dict:
        try:
            r = self.session.post(self.url + path, json=payload, timeout=self.config.request_timeout_s)
        except requests.RequestException as exc:
            raise VLLMError(f"vLLM server at {self.url} unreachable ({type(exc).__name__}); is `vllm serve` running?") from None
        if r.status_code >= 400:
            raise VLLMError(f"vLLM {path} answered {r.status_code}: {r.text[:300]}")
        try:
            return r.json()
        except ValueError:
            return {"text": r.text}

    def _served_model(self) -> str:
        try:
            r = self.session.get(self.url + "/v1/models", timeout=self.config.request_timeout_s)
            r.raise_for_status()
            models = [m["id"] for m in r.json()["data"] if not m.get("parent")]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise VLLMError(f"cannot list models at {self.url}/v1/models ({exc}); is `vllm serve` running?") from None
        if not models:
            raise VLLMError(f"the vLLM server at {self.url} serves no base model")
        return models[0]

    def _complete_raw(self, prompts: list[str], *, n: int, max_tokens: int, temperature: float,
                      top_p: float = 0.95, model: str | None = None, stop: tuple[str, ...] = ()) -> list[list[str]]:
        data = self._post("/v1/completions", {
            **({"stop": list(stop)} if stop else {}),
            "model": model or (self.adapter_id if self.adapter_id != BASE_ADAPTER else self.base_name),
            "prompt": prompts, "n": n, "max_tokens": max_tokens, "temperature": temperature,
            "top_p": top_p if temperature > 0 else 1.0, "skip_special_tokens": True, "stop_token_ids": self.stop_ids,
        })
        out: list[list[str]] = [[] for _ in prompts]
        for choice in data.get("choices", []):
            # vLLM returns choices in order: prompt i's n samples are at i*n .. i*n+n-1
            out[choice["index"] // n].append(choice.get("text", ""))
        return out

    # -- the backend interface ----------------------------------------------------------------

    def _fit(self, ctx: Context) -> Context:
        return fit_window(ctx, self.tokenizer, self.config.context_tokens)  # the window every engine sends

    def set_adapter(self, path: Path | None, adapter_id: str = BASE_ADAPTER) -> None:
        with self._lock:
            if path is None:
                self.adapter_id = BASE_ADAPTER
                return
            # load_inplace: the server may hold this id already (plumline restarted, the server did not)
            self._post("/v1/load_lora_adapter", {"lora_name": adapter_id, "lora_path": str(Path(path).resolve()),
                                                 "load_inplace": True})
            self.adapter_id = adapter_id

    def complete(self, ctx: Context, *, cancel: threading.Event | None = None,
                 max_new_tokens: int | None = None) -> Completion:
        start = time.perf_counter()
        mode = ctx.resolved_mode()
        ctx = self._fit(dataclasses.replace(ctx, mode=mode))
        limit = max_new_tokens or (self.config.line_tokens if mode == "line" else self.config.block_tokens)
        prompt = build_prompt(ctx, self.tokenizer, self.prompt_format)
        adapter = self.adapter_id
        raw = "" if cancel is not None and cancel.is_set() else self._complete_raw(
            [prompt], n=1, max_tokens=limit, temperature=self.config.temperature)[0][0]
        text, _ = postprocess(raw, ctx, self.prompt_format)
        return Completion(text=text, prompt=prompt, model=self.base_name, adapter_id=adapter,
                          latency_ms=(time.perf_counter() - start) * 1000,
                          new_tokens=len(self.tokenizer(raw, add_special_tokens=False)["input_ids"]), mode=mode,
                          decoding={"temperature": self.config.temperature, "max_new_tokens": limit,
                                    "format": self.prompt_format, "backend": "vllm"},
                          cancelled=bool(cancel is not None and cancel.is_set()), context=ctx,
                          base_fingerprint=self.base_fingerprint)

    def sample(self, contexts: list[Context], n: int, *, temperature: float,
               max_new_tokens: int | None = None, top_p: float = 0.95) -> list[list[str]]:
        fixed = [self._fit(c.resolved()) for c in contexts]
        prompts = [build_prompt(c, self.tokenizer, self.prompt_format) for c in fixed]
        raw = self._complete_raw(prompts, n=n, max_tokens=max_new_tokens or self.config.block_tokens,
                                 temperature=temperature, top_p=top_p)
        return [[postprocess(t, c, self.prompt_format)[0] for t in texts] for texts, c in zip(raw, fixed)]

    def generate(self, prompts: list[str], *, max_new_tokens: int, temperature: float = 0.0,
                 n: int = 1, stop: tuple[str, ...] = ()) -> list[list[str]]:
        return self._complete_raw(prompts, n=n, max_tokens=max_new_tokens, temperature=temperature, stop=tuple(stop))

    def chat_prompt(self, user: str) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                      add_generation_prompt=True)
        return user + "\n"
