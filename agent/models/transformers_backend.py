"""In-process backend on Hugging Face transformers (+ PEFT for the LoRA adapter slot).

How it is fast enough for an editor on a laptop CPU:

* the dtype follows the hardware (``agent.models.hardware``): bf16 on CUDA and on CPUs with
  AMX/AVX-512-BF16, fp32 on other CPUs, where bf16 is emulated and 2–3× slower;
* the serving model is base + current adapter *merged* into one set of weights (no LoRA overhead
  per token); the base is kept for merging the next adapter. ``model.quantize = "int8"`` makes
  decoding ~2× faster on CPU (fewer weight bytes per token) but wrecked SmolLM2-135M's answers in
  our measurements, so it is off by default;
* a prefix KV cache: consecutive requests in the same file share most of their prompt, so only
  the tokens after the common prefix are processed again. The prompt window's start moves in
  steps of whole line blocks so it stays stable while the user types;
* decoding stops as soon as ``prompts.trim`` says the suggestion is complete, or when the cancel
  event is set (``$/cancelRequest``, a newer keystroke), so a cancelled request frees the model
  within one token.

One lock serialises generation and adapter swaps: a swap waits for the request in flight and the
next request uses the new adapter; no request is dropped.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import warnings
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, StoppingCriteria, StoppingCriteriaList

from agent.adapters import base_fingerprint
from agent.models import BASE_ADAPTER, Completion
from agent.models.config import ModelConfig
from agent.models.quiet import quiet_libraries
from agent.models.hardware import choose_dtype
from agent.models.prompts import Context, build_prompt, detect_format, fit_window, postprocess, stop_token_ids

class _Stop(StoppingCriteria):
    """Per-row early stop: the trimmed text is complete, or the request was cancelled."""

    def __init__(self, tokenizer, prompt_len: int, contexts: list[Context] | None, cancel: threading.Event | None,
                 fmt: str = "plain", stop: tuple[str, ...] = ()):
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.stop = stop
        self.prompt_len = prompt_len
        self.contexts = contexts
        self.cancel = cancel
        self.cancelled = False

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        rows = input_ids.shape[0]
        if self.cancel is not None and self.cancel.is_set():
            self.cancelled = True
            return torch.ones(rows, dtype=torch.bool, device=input_ids.device)
        if self.contexts is None and not self.stop:
            return torch.zeros(rows, dtype=torch.bool, device=input_ids.device)
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len:], skip_special_tokens=True)
        if self.contexts is None:
            return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool, device=input_ids.device)
        done = [postprocess(text, ctx, self.fmt, final=False)[1] for text, ctx in zip(texts, self.contexts)]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _cut_at(text: str, stop: tuple[str, ...]) -> str:
    cuts = [text.find(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


def _quantize_int8(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class TransformersBackend:
    engine = "transformers"

    def __init__(self, config: ModelConfig, model_path: str):
        quiet_libraries()
        self.config = config
        self.model_name = model_path
        self.base_fingerprint = base_fingerprint(model_path)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("model.device = 'cuda' but torch sees no CUDA device; set it to 'auto' or 'cpu'")
        self.dtype_choice = choose_dtype(config.dtype, self.device)
        dtype = getattr(torch, self.dtype_choice.name)
        self.quantized = config.quantize == "int8"
        if config.quantize == "int8" and self.device != "cpu":
            raise RuntimeError("model.quantize = 'int8' works on CPU only; use 'none' on CUDA")
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self.base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(self.device).eval()
        self.prompt_format = detect_format(self.tokenizer, config.prompt_format)
        self.stop_ids = sorted(stop_token_ids(self.tokenizer))
        self.adapter_id = BASE_ADAPTER
        self.adapter_path: Path | None = None
        self._lock = threading.Lock()
        self._cache: tuple[list[int], DynamicCache] | None = None
        self.model = self._serving_model(None)

    # -- adapter slot ---------------------------------------------------------------------------

    def _serving_model(self, adapter_path: Path | None):
        model = self.base
        if adapter_path is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(copy.deepcopy(self.base), str(adapter_path)).merge_and_unload()
        elif self.quantized:
            model = copy.deepcopy(self.base)
        return (_quantize_int8(model) if self.quantized else model).eval()

    def set_adapter(self, path: Path | None, adapter_id: str = BASE_ADAPTER) -> None:
        """Serve ``path`` (a PEFT LoRA folder) as ``adapter_id``; None returns to the base model.
        The new weights are prepared outside the lock; the request in flight finishes on the old
        adapter and the next one uses the new."""
        model = self._serving_model(Path(path) if path is not None else None)
        with self._lock:
            self.model = model
            self._cache = None
            self.adapter_id = adapter_id if path is not None else BASE_ADAPTER
            self.adapter_path = Path(path) if path is not None else None

    # -- prompts --------------------------------------------------------------------------------

    def _truncate(self, ctx: Context) -> Context:
        return fit_window(ctx, self.tokenizer, self.config.context_tokens)

    # -- generation -----------------------------------------------------------------------------

    def _decoding(self, temperature: float, top_p: float) -> dict:
        if temperature > 0:
            return dict(do_sample=True, temperature=temperature, top_p=top_p)
        return dict(do_sample=False, temperature=None, top_p=None, top_k=None)

    def complete(self, ctx: Context, *, cancel: threading.Event | None = None,
                 max_new_tokens: int | None = None) -> Completion:
        start = time.perf_counter()
        mode = ctx.resolved_mode()  # decided on the whole file, before truncation
        ctx = self._truncate(dataclasses.replace(ctx, mode=mode))
        limit = max_new_tokens or (self.config.line_tokens if mode == "line" else self.config.block_tokens)
        prompt = build_prompt(ctx, self.tokenizer, self.prompt_format)
        ids = self.tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(self.device)
        with self._lock, torch.inference_mode():
            adapter = self.adapter_id
            cache = self._reusable_cache(ids[0].tolist())
            stop = _Stop(self.tokenizer, ids.shape[1], [ctx], cancel, self.prompt_format)
            out = self.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=limit,
                pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stop_ids,
                stopping_criteria=StoppingCriteriaList([stop]),
                past_key_values=cache, return_dict_in_generate=True,
                **self._decoding(self.config.temperature, 0.95),
            )
            self._cache = (out.sequences[0].tolist(), out.past_key_values)
        new = out.sequences[0, ids.shape[1]:]
        text, _ = postprocess(self.tokenizer.decode(new, skip_special_tokens=True), ctx, self.prompt_format)
        return Completion(
            text=text, prompt=prompt, model=self.model_name, adapter_id=adapter,
            latency_ms=(time.perf_counter() - start) * 1000, new_tokens=int(new.shape[0]), mode=mode,
            decoding={"temperature": self.config.temperature, "max_new_tokens": limit, "format": self.prompt_format,
                      "context_tokens": self.config.context_tokens},
            cancelled=stop.cancelled, context=ctx, base_fingerprint=self.base_fingerprint,
        )

    def _reusable_cache(self, ids: list[int]) -> DynamicCache:
        """The previous request's KV cache cropped to the prefix it shares with this prompt."""
        if self._cache is None:
            return DynamicCache()
        old_ids, cache = self._cache
        common = 0
        for a, b in zip(old_ids, ids):
            if a != b:
                break
            common += 1
        common = min(common, len(ids) - 1, cache.get_seq_length())
        if common < 16:
            return DynamicCache()
        cache.crop(common - cache.get_seq_length())  # negative: remove that many tokens from the end
        return cache

    def _batch(self, prompts: list[str], contexts: list[Context] | None, *, n: int, max_new_tokens: int,
               temperature: float, top_p: float, stop: tuple[str, ...] = ()) -> list[str]:
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        prompt_len = enc["input_ids"].shape[1]
        expanded = [c for c in contexts for _ in range(n)] if contexts is not None else None
        criteria = _Stop(self.tokenizer, prompt_len, expanded, None, self.prompt_format, stop)
        with self._lock, torch.inference_mode():
            out = self.model.generate(
                **enc, max_new_tokens=max_new_tokens, num_return_sequences=n,
                pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.stop_ids,
                stopping_criteria=StoppingCriteriaList([criteria]),
                **self._decoding(temperature, top_p),
            )
        texts = self.tokenizer.batch_decode(out[:, prompt_len:], skip_special_tokens=True)
        return [_cut_at(t, stop) for t in texts] if stop else texts

    def sample(self, contexts: list[Context], n: int, *, temperature: float,
               max_new_tokens: int | None = None, top_p: float = 0.95) -> list[list[str]]:
        """N candidates per context, in the serving prompt format and with serving trimming."""
        fixed = [self._truncate(c.resolved()) for c in contexts]
        prompts = [build_prompt(c, self.tokenizer, self.prompt_format) for c in fixed]
        texts = self._batch(prompts, fixed, n=n, max_new_tokens=max_new_tokens or self.config.block_tokens,
                            temperature=temperature, top_p=top_p)
        return [[postprocess(texts[i * n + j], fixed[i], self.prompt_format)[0] for j in range(n)] for i in range(len(fixed))]

    def generate(self, prompts: list[str], *, max_new_tokens: int, temperature: float = 0.0,
                 n: int = 1, stop: tuple[str, ...] = ()) -> list[list[str]]:
        """Raw generations for free-form prompts (already formatted by the caller), each cut before
        the first of the ``stop`` strings (decoding of a row ends there too)."""
        texts = self._batch(prompts, None, n=n, max_new_tokens=max_new_tokens, temperature=temperature, top_p=0.95,
                            stop=tuple(stop))
        return [texts[i * n:(i + 1) * n] for i in range(len(prompts))]

    def chat_prompt(self, user: str) -> str:
        """A free-form instruction in the model's chat format (for test writing and the like)."""
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                      add_generation_prompt=True)
        return user + "\n"
