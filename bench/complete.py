"""Engine benchmark, in process (no language server): what one suggestion costs each engine, split
into the parts that explain bench/lsp.py's figures.

    python bench/complete.py [--requests 8] [--engines qwen-llamacpp,smollm2-transformers]

Why a second benchmark beside bench/lsp.py: the replay measures what the editor feels, with
caches and the server in the way; this one takes the engine apart, on the replay's own typing
places (``bench.lsp.plans_for``), one engine loaded at a time (``bench.lsp.ENGINES``, the same
model cache, linked):

* load: building the backend, which ``plumline complete`` pays on every call, and its first line
  suggestion;
* prompt processing (tok/s): a fresh window (``model.context_tokens`` = 512) at each place, one new
  token, nothing of it cached;
* decoding (ms/token): the same places again, the prompt now cached, a whole line suggestion;
* typing along: the cursor one character further per request (the prefix cache applies), with
  the prompt tokens the engine processed where it reports them (llama.cpp).

Baseline: SmolLM2-135M-Instruct on transformers, the previous default; ratios are engine /
baseline (< 1: less time). The load average at start and end is recorded: other jobs share the
cores. Writes bench/results/complete.json.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.models import ModelConfig, load_backend  # noqa: E402
from agent.models.prompts import Context  # noqa: E402
from bench.lsp import BASELINE, ENGINES, Engine, bench_home, dtype_of, plans_for, ratio  # noqa: E402
from bench.report import percentile, print_table, write_result  # noqa: E402

TYPED_CHARS = 6  # keystrokes of the typing-along run


def places(n: int) -> list[tuple[str, str]]:
    """(prefix, suffix) at the replay's typing places: after a function header's first word, at the
    end of a file (no suffix) and at the hole further up (the file's rest as suffix)."""
    out = []
    for plan in plans_for(max(1, -(-n // 2)), 6):
        def start(line: str) -> str:
            return line[: len(line) - len(line.lstrip())] + line.lstrip().split(" ", 1)[0] + " "

        out.append(("\n".join(plan.opened) + "\n" + start(plan.at_end[0]), ""))
        out.append(("\n".join(plan.opened[: plan.hole_at]) + "\n" + start(plan.in_hole[0]),
                    "\n" + "\n".join(plan.opened[plan.hole_at:])))
    return out[:n]


def measure(engine: Engine, n: int) -> dict:
    home = bench_home(f"plumline-complete-{engine.key}-")
    try:
        t0 = time.perf_counter()
        backend = load_backend(ModelConfig(name=engine.model, backend=engine.backend), home / "cache",
                               say=lambda m: print(f"  {m}", flush=True))
        load_s = time.perf_counter() - t0
        print(f"  loaded in {load_s:.1f}s", flush=True)
        if backend.engine != engine.backend:
            raise SystemExit(f"{engine.key}: asked for {engine.backend}, got {backend.engine}")
        at = places(n)
        first = backend.complete(Context(*at[0], mode="line"))
        count = lambda prompt: len(backend.tokenizer(prompt, add_special_tokens=False)["input_ids"])  # noqa: E731
        cold_tokens, cold_s = 0, 0.0
        for prefix, suffix in at:  # consecutive places share no prompt start: nothing cached
            c = backend.complete(Context(prefix, suffix, mode="line"), max_new_tokens=1)
            cold_tokens += c.decoding.get("prompt_tokens_processed", count(c.prompt))
            cold_s += c.latency_ms / 1000
        print(f"  prompt processing: {cold_tokens / cold_s:.0f} tok/s", flush=True)
        decoded, decode_ms, lines = 0, 0.0, []
        for prefix, suffix in at:
            backend.complete(Context(prefix, suffix, mode="line"), max_new_tokens=1)  # cache this prompt
            c = backend.complete(Context(prefix, suffix, mode="line"))  # the same prompt: only decoding
            lines.append(c.latency_ms)
            if c.new_tokens > 1:
                decoded += c.new_tokens
                decode_ms += c.latency_ms
        print(f"  decoding: {decode_ms / max(decoded, 1):.1f} ms/token", flush=True)
        plan = plans_for(1, 6)[0]
        head, line = "\n".join(plan.opened) + "\n", plan.at_end[1]
        indent = len(line) - len(line.lstrip())
        typing, processed = [], []
        for col in range(indent + 1, min(len(line), indent + 1 + TYPED_CHARS) + 1):
            c = backend.complete(Context(head + line[:col], "", mode="line"))
            typing.append(c.latency_ms)
            if "prompt_tokens_processed" in c.decoding:
                processed.append(c.decoding["prompt_tokens_processed"])
        figures = {
            "label": engine.label,
            "model": backend.model_name,
            "dtype": dtype_of(engine),
            "load_s": load_s,
            "first_line_ms": first.latency_ms,
            "places": len(at),
            "prompt_tokens_per_s": cold_tokens / cold_s if cold_s else None,
            "cold_prompt_tokens_mean": cold_tokens / len(at),
            "decode_ms_per_token": decode_ms / decoded if decoded else None,
            "cached_prompt_line_ms": {"p50": percentile(lines, 0.5), "p95": percentile(lines, 0.95)},
            "typing_along_ms": {"n": len(typing), "p50": percentile(typing, 0.5), "p95": percentile(typing, 0.95)},
            "typing_along_processed_tokens": {"p50": percentile(processed, 0.5), "max": max(processed)}
            if processed else None,
        }
        close = getattr(backend, "close", None)
        if close is not None:
            close()
        del backend
        gc.collect()
        return figures
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=4, help="typing places (two per stdlib file)")
    ap.add_argument("--engines", default="qwen-llamacpp,smollm2-transformers",
                    help=f"comma-separated, loaded one after the other: {', '.join(ENGINES)}")
    args = ap.parse_args()
    unknown = [e for e in args.engines.split(",") if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    load_start = os.getloadavg()
    figures = {}
    for key in args.engines.split(","):
        print(f"{key}: {ENGINES[key].label}", flush=True)
        figures[key] = measure(ENGINES[key], args.requests)
    base = figures.get(BASELINE)
    ratios = {f"{k}/{BASELINE}": {
        "load_s": ratio(f["load_s"], base["load_s"]),
        "prompt_s_per_token": ratio(1 / f["prompt_tokens_per_s"], 1 / base["prompt_tokens_per_s"]),
        "decode_ms_per_token": ratio(f["decode_ms_per_token"] or float("nan"), base["decode_ms_per_token"] or float("nan")),
        "typing_along_p50": ratio(f["typing_along_ms"]["p50"], base["typing_along_ms"]["p50"]),
    } for k, f in figures.items() if base is not None and k != BASELINE}
    result = {"baseline": BASELINE, "context_tokens": ModelConfig().context_tokens, "engines": figures,
              "ratios": ratios, "load_avg": {"start": load_start, "end": os.getloadavg()}}
    keys = list(figures)
    os.environ.setdefault("COLUMNS", "150")  # rich wraps at 80 columns when writing to a file or pipe

    def cell(v, fmt="{:.1f}"):
        return "n/a" if v is None else fmt.format(v)

    rows = [("metric", *keys, *(f"ratio {r}" for r in ratios))]
    spec = [("load (s)", lambda f: f["load_s"], "load_s"),
            ("first line suggestion (ms)", lambda f: f["first_line_ms"], None),
            ("prompt processing (tok/s)", lambda f: f["prompt_tokens_per_s"], "prompt_s_per_token"),
            ("decoding (ms/token)", lambda f: f["decode_ms_per_token"], "decode_ms_per_token"),
            ("line, prompt cached: p50 (ms)", lambda f: f["cached_prompt_line_ms"]["p50"], None),
            ("typing along: p50 (ms)", lambda f: f["typing_along_ms"]["p50"], "typing_along_p50"),
            ("typing along: tokens processed p50 / max",
             lambda f: (f"{f['typing_along_processed_tokens']['p50']:.0f} / {f['typing_along_processed_tokens']['max']}"
                        if f["typing_along_processed_tokens"] else None), None)]
    for label, get, rkey in spec:
        rows.append((label, *(cell(get(figures[k]), "{}" if isinstance(get(figures[k]), str) else "{:.1f}") for k in keys),
                     *(cell(r.get(rkey), "{:.2f}") if rkey else "" for r in ratios.values())))
    print_table(f"engines in process, {result['context_tokens']}-token window "
                f"(load {load_start[0]:.1f} -> {result['load_avg']['end'][0]:.1f})", rows)
    print(f"wrote {write_result('complete', result)}")


if __name__ == "__main__":
    main()
