"""Completion latency with the embedded model on this machine.

    python bench/complete.py [--requests 30] [--files textwrap.py,shlex.py,...]

Measures, on real standard-library files:
* cold start: loading the converted model (and the first completion);
* warm single-line completions at fresh positions (cursor a few characters into a real line);
* "typing along": the same line with the cursor advanced one character per request, where the
  prefix KV cache applies;
* baseline in the same run: the same fresh-position requests with the KV cache dropped before
  each one, so the cache's effect is a ratio measured on the same machine at the same time.
Writes bench/results/complete.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.config import load_config  # noqa: E402
from agent.models import ModelConfig, load_backend  # noqa: E402
from agent.models.embedded import ensure_embedded  # noqa: E402
from agent.models.prompts import Context  # noqa: E402
from bench.report import percentile, print_table, write_result  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def positions(files: list[str], n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    sources = [(STDLIB / f).read_text() for f in files]
    while len(out) < n:
        lines = rng.choice(sources).split("\n")
        i = rng.randrange(20, len(lines) - 5)
        line = lines[i]
        body = line.strip()
        if len(body) < 12 or body.startswith(("#", '"', "'")):
            continue
        col = len(line) - len(line.lstrip()) + 4
        out.append(("\n".join(lines[:i] + [line[:col]]), "\n" + "\n".join(lines[i + 1:])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--files", default="textwrap.py,shlex.py,argparse.py,json/decoder.py,csv.py")
    args = ap.parse_args()
    config = load_config()
    folder = ensure_embedded(config.cache_dir)

    t0 = time.perf_counter()
    backend = load_backend(ModelConfig(name=str(folder)), config.cache_dir)
    load_s = time.perf_counter() - t0
    reqs = positions(args.files.split(","), args.requests)
    t1 = time.perf_counter()
    backend.complete(Context(*reqs[0]))
    first_s = time.perf_counter() - t1

    fresh, tokens, gen_s = [], 0, 0.0
    for prefix, suffix in reqs:
        c = backend.complete(Context(prefix, suffix))
        fresh.append(c.latency_ms)
        tokens += c.new_tokens
        gen_s += c.latency_ms / 1000
    nocache = []
    for prefix, suffix in reqs:
        backend._cache = None  # baseline: no prefix reuse
        nocache.append(backend.complete(Context(prefix, suffix)).latency_ms)
    typing = []
    source = (STDLIB / "textwrap.py").read_text().split("\n")
    i = next(k for k, line in enumerate(source) if line.strip().startswith("chunks = self._split_chunks(text)"))
    head, line, tail = "\n".join(source[:i]) + "\n", source[i], "\n" + "\n".join(source[i + 1:])
    start = len(line) - len(line.lstrip())
    for col in range(start + 1, min(len(line), start + 1 + args.requests)):
        typing.append(backend.complete(Context(head + line[:col], tail)).latency_ms)  # one keystroke further

    figures = {
        "model": "SmolLM2-135M-Instruct (embedded), fp32, CPU",
        "requests": len(reqs),
        "cold_load_s": round(load_s, 3),
        "cold_first_completion_s": round(first_s, 3),
        "warm_line_p50_ms": round(percentile(fresh, 0.5), 1),
        "warm_line_p95_ms": round(percentile(fresh, 0.95), 1),
        "no_cache_line_p50_ms": round(percentile(nocache, 0.5), 1),
        "no_cache_line_p95_ms": round(percentile(nocache, 0.95), 1),
        "typing_p50_ms": round(percentile(typing, 0.5), 1),
        "typing_p95_ms": round(percentile(typing, 0.95), 1),
        "cache_speedup_p50": round(percentile(nocache, 0.5) / percentile(fresh, 0.5), 2),
        "tokens_per_s_including_prompt": round(tokens / gen_s, 1) if gen_s else None,
        "context_tokens": backend.config.context_tokens,
        "target_warm_line_p50_ms": 600,
    }
    print_table("plumline complete: embedded model latency", list(figures.items()))
    print(f"wrote {write_result('complete', figures)}")


if __name__ == "__main__":
    main()
