"""Which engine does which job on this machine, decided by a measurement that is recorded.

Two jobs, which may use different engines as long as both serve the same policy (same weights,
adapter and prompt format; every engine builds prompts with ``agent.models.prompts``):

* ``serve``: one editor suggestion at a time, typing along (latency; prefix-cache reuse);
* ``sample``: the loop's N candidates per task (throughput).

``model.backend`` / ``model.sample_backend = "auto"`` picks the faster of llama.cpp and transformers
for the job, from a short fixed workload run once per machine, model and engine versions
(``$PLUMLINE_HOME/cache/engines.json``; ``plumline doctor`` prints it). vLLM is never picked
automatically: it is a server someone has to start.

Where llama.cpp cannot run (not installed, the build failed, a CPU without AVX2, a model that is
not a GGUF) the choice is transformers, with the reason, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

JOBS = ("serve", "sample")
WORKLOAD_VERSION = 2  # part of the record's key: a changed workload measures again

# A fixed, realistic editing workload: a module being typed line by line (serve), and function
# bodies to fill (sample). The same text for every engine in one measurement.
_FILE = '''import json
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Inventory:
    """Items in a warehouse, by SKU, with their counts and locations."""

    items: dict[str, int] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)

    def add(self, sku: str, count: int, location: str) -> None:
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")
        self.items[sku] = self.items.get(sku, 0) + count
        self.locations[sku] = location

    def remove(self, sku: str, count: int) -> None:
        have = self.items.get(sku, 0)
        if count > have:
            raise ValueError(f"only {have} of {sku} in stock")
        self.items[sku] = have - count
        if self.items[sku] == 0:
            del self.items[sku]
            del self.locations[sku]

    def total(self) -> int:
        return sum(self.items.values())

    def save(self, path: Path) -> None:
        data = {"items": self.items, "locations": self.locations}
        path.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: Path) -> "Inventory":
        data = json.loads(path.read_text())
'''
_BODIES = [
    'def running_max(numbers: list[int]) -> list[int]:\n    """Return the running maximum of the list: element i is max(numbers[:i+1]).\n    >>> running_max([1, 3, 2, 5])\n    [1, 3, 3, 5]\n    """\n',
    'def count_vowels(text: str) -> int:\n    """Count the vowels (a, e, i, o, u, either case) in text.\n    >>> count_vowels("Hello World")\n    3\n    """\n',
]


@dataclass
class EngineChoice:
    engine: str
    reason: str
    figures: dict = field(default_factory=dict)


def record_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / "engines.json"


def machine_key(model_key: str) -> str:
    """What a measurement depends on: the model, the CPU (flags, cores) and the engine versions."""
    from agent.models.hardware import cpu_flags

    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except (ImportError, OSError):
        llama_version = "none"
    import torch

    flags = hashlib.sha1(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:10]
    return (f"{model_key}|cpu {flags}x{os.cpu_count()}|llama.cpp {llama_version}|torch {torch.__version__}"
            f"|workload {WORKLOAD_VERSION}")


def _read(cache_dir: Path) -> dict:
    try:
        return json.loads(record_path(cache_dir).read_text())
    except (OSError, ValueError):
        return {}


def recorded(cache_dir: Path, model_key: str, job: str) -> EngineChoice | None:
    entry = _read(cache_dir).get(machine_key(model_key), {}).get(job)
    return EngineChoice(**entry) if entry else None


def _write(cache_dir: Path, model_key: str, job: str, choice: EngineChoice) -> None:
    data = _read(cache_dir)
    data.setdefault(machine_key(model_key), {})[job] = asdict(choice)
    path = record_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


def llamacpp_blocker(config, cache_dir: Path) -> str | None:
    """Why llama.cpp cannot serve this configuration here, or None if it can."""
    from agent.models.embedded import EmbeddedModelMissing, lookup, part_paths
    from agent.models.hardware import cpu_flags
    from agent.models.llamacpp_backend import LlamaCppUnavailable, import_llama

    model = lookup(config.name)
    if model is None:
        return "llama.cpp serves a GGUF; model.name is a folder or hub id (only the embedded models ship as GGUF)"
    if config.device == "cuda":
        return "model.device = cuda: llama.cpp here is a CPU build"
    if "avx2" not in cpu_flags():
        return "this CPU has no AVX2, which the llama.cpp build needs"
    try:
        import_llama()
        part_paths(model)
    except (LlamaCppUnavailable, EmbeddedModelMissing) as exc:
        return str(exc)
    return None


def choose_engine(config, cache_dir: Path, job: str, say=print) -> EngineChoice:
    """The engine for ``job`` under ``config`` (a ModelConfig); measures once where auto must decide."""
    requested = config.backend if job == "serve" else config.sample_backend
    key = "model.backend" if job == "serve" else "model.sample_backend"
    if requested != "auto":
        return EngineChoice(requested, f"{key} = {requested!r}")
    import torch

    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return EngineChoice("transformers", "CUDA device: transformers (or start a vLLM server and set model.backend = vllm)")
    blocker = llamacpp_blocker(config, cache_dir)
    if blocker:
        return EngineChoice("transformers", f"llama.cpp unavailable: {blocker}")
    from agent.models.embedded import lookup

    model_key = lookup(config.name).key
    known = recorded(cache_dir, model_key, job)
    if known:
        return known
    say(f"Measuring llama.cpp against transformers for the {job} job on this machine (once, about a minute)...")
    figures = measure(config, cache_dir, job)
    faster = min(("llamacpp", "transformers"), key=lambda e: figures[e]["cost"])
    other = "transformers" if faster == "llamacpp" else "llamacpp"
    ratio = figures[other]["cost"] / max(figures[faster]["cost"], 1e-9)
    choice = EngineChoice(faster, f"measured here: {faster} {ratio:.2f}x faster than {other} on the {job} workload",
                          {"job": job, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures})
    _write(cache_dir, model_key, job, choice)
    say(f"{job}: {choice.reason}")
    return choice


def _serve_workload(backend) -> dict:
    """Type the module's last lines one keystroke-burst at a time; ask for a line after each."""
    from agent.models.prompts import Context

    lines = _FILE.rstrip("\n").split("\n")
    start = time.perf_counter()
    for cut in range(len(lines) - 4, len(lines)):
        prefix = "\n".join(lines[:cut]) + "\n" + " " * 8
        backend.complete(Context(prefix=prefix, suffix="", mode="line"), max_new_tokens=24)
    seconds = time.perf_counter() - start
    return {"cost": seconds, "seconds": seconds, "requests": 4}


def _sample_workload(backend) -> dict:
    """The loop's shape: 8 candidates per task at T=0.8 up to the block limit, stopping at the end of
    the block as the loop's samples do. (A short fixed length hid what decides this job: a batched
    engine waits for the batch's longest candidate, while llama.cpp's candidates end one by one.)"""
    from agent.models.prompts import Context

    contexts = [Context(prefix=b, suffix="", mode="block") for b in _BODIES]
    start = time.perf_counter()
    out = backend.sample(contexts, 8, temperature=0.8, max_new_tokens=None)
    seconds = time.perf_counter() - start
    tokens = sum(len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) for row in out for t in row)
    return {"cost": seconds / max(tokens, 1), "seconds": seconds, "candidate_tokens": tokens,
            "tokens_per_s": tokens / max(seconds, 1e-9)}


def measure(config, cache_dir: Path, job: str) -> dict:
    """Run the job's workload on each CPU engine, one after the other (never side by side: two
    model processes on 2 cores slow each other far more than 2x)."""
    import dataclasses

    from agent.models import load_backend

    workload = _serve_workload if job == "serve" else _sample_workload
    figures = {}
    for engine in ("llamacpp", "transformers"):
        cfg = dataclasses.replace(config, backend=engine, sample_backend=engine)
        backend = load_backend(cfg, cache_dir, say=lambda _m: None, job=job)
        backend.generate(["def warm_up():\n"], max_new_tokens=8)  # first-call allocations, page cache
        figures[engine] = workload(backend)
        del backend
    return figures
