"""What this machine's processor can do fast, and the dtype that follows from it.

CPUs of the same kind of machine differ: with AMX or AVX-512-BF16 a bf16 matmul ran 2.4–6.7× faster
than fp32 (1024², 2 threads, measured here), while on an AVX2-only CPU bf16 ran 2–3× *slower*
(it is emulated). So ``model.dtype = "auto"`` reads the CPU's flags rather than a constant:

* CUDA with bf16 support → bfloat16;
* a CPU with ``amx_bf16`` or ``avx512_bf16`` → bfloat16;
* any other CPU → float32.

The same choice serves, samples and trains (``trainer.model`` asks here too).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The flags line of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


@dataclass(frozen=True)
class DtypeChoice:
    name: str    # "bfloat16" | "float32" | "float16"
    reason: str  # one line, for `plumline doctor` and the run logs


def choose_dtype(requested: str, device: str, flags: frozenset[str] | None = None) -> DtypeChoice:
    """Resolve ``model.dtype`` for ``device`` ("cpu" or "cuda")."""
    if requested != "auto":
        return DtypeChoice(requested, f"model.dtype = {requested!r} (set in config)")
    if device == "cuda":
        import torch

        if torch.cuda.is_bf16_supported():
            return DtypeChoice("bfloat16", "CUDA device with bf16 support")
        return DtypeChoice("float16", "CUDA device without bf16 support")
    flags = cpu_flags() if flags is None else flags
    have = [f for f in BF16_FLAGS if f in flags]
    if have:
        return DtypeChoice("bfloat16", f"CPU has {', '.join(have)}: bf16 matmuls run natively")
    if "avx2" in flags:
        return DtypeChoice("float32", "CPU has AVX2 but no AMX/AVX-512-BF16: bf16 would be emulated (2–3× slower)")
    return DtypeChoice("float32", "CPU without bf16 units")
