"""Which prompt format suits which suggestion, on the embedded model: FIM (prefix + suffix with the
model's FIM tokens), the chat turn prefilled with the code (``prefill``), and for blocks the chat
request that has the model rewrite the function (``chat``), for single lines and for function bodies, on held-out
code from real Python files (the standard library: nobody here wrote it).

    python bench/formats.py                          # 40 lines and 20 bodies per format, llama.cpp
    python bench/formats.py --lines 80 --blocks 40 --engine transformers --files textwrap.py,csv.py

Positions are drawn with a fixed seed:
* line: the cursor after a real line's indentation; the truth is the rest of that line;
* block: the cursor at the start of a real function's body (after its docstring when it has one);
  the truth is the body, up to 12 lines.
Metrics, as RepoBench and CrossCodeEval define them: exact match after whitespace normalisation, and
edit similarity (difflib's ratio, 0..1), averaged over positions; plus p50 latency. Both formats
see the same positions, model, engine and token budget in one run. The winner per mode becomes
``prompts.MIXED_DEFAULT``. Writes bench/results/formats.json.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import random
import sys
import sysconfig
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.config import load_config  # noqa: E402
from agent.models import load_backend  # noqa: E402
from agent.models.prompts import Context  # noqa: E402
from bench.report import percentile, print_table, write_result  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
FILES = "textwrap.py,shlex.py,argparse.py,csv.py,json/decoder.py,ftplib.py,gettext.py,pprint.py,configparser.py,tarfile.py"


def normalise(text: str) -> str:
    return " ".join(text.split())


def edit_similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def line_positions(sources: list[str], n: int, rng: random.Random) -> list[tuple[Context, str]]:
    out = []
    while len(out) < n:
        lines = rng.choice(sources).split("\n")
        i = rng.randrange(20, len(lines) - 5)
        line = lines[i]
        body = line.strip()
        if len(body) < 12 or body.startswith(("#", '"', "'")):
            continue
        col = len(line) - len(line.lstrip())
        ctx = Context("\n".join(lines[:i] + [line[:col]]), "\n" + "\n".join(lines[i + 1:]), mode="line")
        out.append((ctx, body))
    return out


def block_positions(sources: list[str], n: int, rng: random.Random) -> list[tuple[Context, str]]:
    found = []
    for text in sources:
        lines = text.split("\n")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or len(node.body) < 2:
                continue
            first = node.body[0]
            has_doc = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant) \
                and isinstance(first.value.value, str)
            start = (first.end_lineno if has_doc else node.body[0].lineno - 1)  # 0-based index of the body's first line
            end = node.end_lineno
            body = lines[start:end]
            if not 2 <= len(body) <= 12 or not body[0].strip():
                continue
            ctx = Context("\n".join(lines[:start]) + "\n", "\n".join(lines[end:]), mode="block")
            found.append((ctx, "\n".join(body)))
    rng.shuffle(found)
    return found[:n]


def run(backend, positions: list[tuple[Context, str]], mode: str) -> dict:
    exact, sims, times = [], [], []
    for ctx, truth in positions:
        c = backend.complete(ctx)
        got = c.text
        if mode == "block":
            cur = ctx.prefix.rsplit("\n", 1)[-1]
            got = cur + got  # the suggestion continues the cursor's line
        exact.append(normalise(got) == normalise(truth))
        sims.append(edit_similarity(normalise(got), normalise(truth)))
        times.append(c.latency_ms)
    return {"exact_match": sum(exact) / len(exact), "edit_similarity": sum(sims) / len(sims),
            "p50_ms": percentile(times, 0.5), "n": len(positions)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=40)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--engine", default="llamacpp")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--files", default=FILES)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    config = load_config()
    sources = [(STDLIB / f).read_text() for f in args.files.split(",")]
    rng = random.Random(args.seed)
    positions = {"line": line_positions(sources, args.lines, rng), "block": block_positions(sources, args.blocks, rng)}
    base = dataclasses.replace(config.model, name=args.model, backend=args.engine)  # [model] settings and env apply
    backend = load_backend(base, config.cache_dir, say=lambda m: print(m, file=sys.stderr))
    figures: dict = {"engine": backend.engine, "model": args.model, "seed": args.seed, "files": args.files}
    rows = []
    for fmt in ("fim", "prefill", "chat"):
        backend.prompt_format = fmt  # same loaded model; only the prompt changes
        backend.config = dataclasses.replace(backend.config, prompt_format=fmt)
        for mode, pos in positions.items():
            if not pos:
                continue
            if mode == "line" and fmt == "chat":
                continue  # for a line, chat is the prefilled turn: the same prompt as prefill
            r = run(backend, pos, mode)
            figures[f"{mode}_{fmt}"] = r
            rows.append((f"{mode} / {fmt}", r["n"], r["exact_match"], r["edit_similarity"], r["p50_ms"]))
    for mode in ("line", "block"):
        tried = [f for f in ("fim", "prefill", "chat") if f"{mode}_{f}" in figures]
        if not tried:
            continue
        figures[f"{mode}_winner"] = max(tried, key=lambda f: (figures[f"{mode}_{f}"]["exact_match"],
                                                             figures[f"{mode}_{f}"]["edit_similarity"]))
    figures["chosen"] = ";".join(f"{m}={figures[m + '_winner']}" for m in ("line", "block") if m + "_winner" in figures)
    print_table("prompt formats on held-out standard-library code",
                [("mode / format", "n", "exact match", "edit sim", "p50 ms"), *rows])
    print(f"winner: {figures['chosen']}")
    print(f"wrote {write_result('formats', figures)}")


if __name__ == "__main__":
    main()
