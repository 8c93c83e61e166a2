"""Cross-file context benchmark: do suggestions get better with code from other files, on a real
codebase nobody here wrote, and what does choosing that code cost per request?

    python bench/context.py                           # rich (from PyPI), 60 cross-file + 60 random lines, llama.cpp
    python bench/context.py --codebase PATH --cross 60 --random 60 --engine llamacpp
    python bench/context.py --quick                   # a smoke run of every part (any model, few positions)

Positions, drawn with a fixed seed from the codebase's Python files (not in strings or comments, not
import lines): next-line completion, the cursor after the line's indentation, the truth the rest of
the line (the suffix, the rest of the file, goes in as serving sends it).
* cross-file: the true line is the file's first use (outside strings, comments and imports) of a
  name the file imports from another file of the codebase: RepoBench's cross-file-first setting,
  where the file itself cannot show how the name is used (``--cross-kind any``: any use of one);
* random: any such line, as the control.

Each position is completed twice by the same loaded model, engine and total token budget
(``model.context_tokens``, greedy): without cross-file context, and with the context the server
would choose (``agent.context``: the codebase indexed, the current file open in the editor, no other
file open). Metrics as RepoBench and CrossCodeEval define them, per condition: exact match after
whitespace normalisation, edit similarity (difflib's ratio, bench/formats.py), identifier exact match
(the line's identifiers in order); per-position pairs give the McNemar test (trainer/gate.py) and a
paired bootstrap interval of the edit-similarity difference. Also time per request (model) and
prompt tokens.

Cost, without the model: retrieval + packing per request (what the server adds to a request, off
the event loop), p50/p95, on a 500-file codebase (the first 500 files of --timing-codebase,
networkx from PyPI by default) with 8 files open and the model's tokenizer counting tokens; the
background scan's time; and on a synthetic 50,000-file workspace the index's memory (tracemalloc),
files skipped by reason and retrieval time.

Positions alternate cross-file and random, and no new one starts after --minutes (the figures say
how many were done), so a slow machine shortens the run instead of stretching it.

Targets: cross-file exact match with context ≥ 1.3× without; random positions no loss beyond noise
(McNemar one-sided p of a loss ≥ 0.05); retrieval p95 ≤ 20 ms on 500 files.
Writes bench/results/context.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import random
import shutil
import sys
import tempfile
import time
import tokenize
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.config import load_config  # noqa: E402
from agent.context import _NAME_USE, ContextConfig, ContextIndex, code_only  # noqa: E402
from agent.models import load_backend  # noqa: E402
from agent.models.prompts import Context  # noqa: E402
from bench.formats import edit_similarity, normalise  # noqa: E402 - the measures bench/formats.py reports
from bench.report import percentile, print_table, write_result  # noqa: E402
from trainer.gate import bootstrap_ci, mcnemar_exact  # noqa: E402

def package_dir(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed; give --codebase PATH")
    return Path(list(spec.submodule_search_locations)[0])


# -- positions --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Position:
    relpath: str
    line: int
    prefix: str
    suffix: str
    truth: str
    kind: str  # "cross" or "random"
    names: list[str]  # the cross-file names the true line uses


def string_lines(text: str) -> set[int]:
    """0-based lines inside strings (docstrings), comments, or that do not tokenize."""
    out: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                out.update(range(tok.start[0] - 1, tok.end[0]))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return set(range(len(text.split("\n"))))
    return out


def import_lines(text: str) -> set[int]:
    """0-based lines of import statements, the continuation lines of ``from x import (...)`` too."""
    import ast

    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    return {i for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
            for i in range(node.lineno - 1, (node.end_lineno or node.lineno))}


def positions(index: ContextIndex, root: Path, n_cross: int, n_random: int, seed: int,
              cross_kind: str = "first") -> list[Position]:
    """``n_cross`` cross-file and ``n_random`` random positions, drawn with ``seed``. Cross-file
    (RepoBench's two settings): ``first``, the line is the file's first use of a name it imports
    from another file of the codebase (the model cannot have seen how it is used: "XF-F");
    ``any``, any line that uses one ("XF-F" and "XF-R")."""
    cross, plain = [], []
    for relpath in sorted(index.files):
        if not relpath.endswith(".py"):
            continue
        text = (root / relpath).read_text(encoding="utf-8")
        lines = text.split("\n")
        imported = {n: files for n, files in index.imported_names(relpath).items() if files}
        skip = string_lines(text) | import_lines(text)
        seen: set[str] = set()  # names used in code lines so far (imports, strings, comments not counted)
        for i, line in enumerate(lines):
            body = line.strip()
            used = set() if i in skip else set(_NAME_USE.findall(code_only(body)))
            if i < 10 or i in skip or not 8 <= len(body) <= 120 or body.startswith(("#", "@")):
                seen |= used
                continue
            col = len(line) - len(line.lstrip())
            pos = Position(relpath, i, "\n".join(lines[:i] + [line[:col]]), "\n" + "\n".join(lines[i + 1:]), body,
                           "random", [])
            pos.names = sorted(n for n in used if n in imported)
            plain.append(pos)
            if pos.names and (cross_kind == "any" or any(n not in seen for n in pos.names)):
                cross.append(pos)
            seen |= used
    rng = random.Random(seed)
    chosen_cross = rng.sample(cross, min(n_cross, len(cross)))
    taken = {(p.relpath, p.line) for p in chosen_cross}
    rest = [p for p in plain if (p.relpath, p.line) not in taken]
    chosen_random = [dataclasses.replace(p, kind="random") for p in rng.sample(rest, min(n_random, len(rest)))]
    chosen_cross = [dataclasses.replace(p, kind="cross") for p in chosen_cross]
    mixed = []  # alternating, so a run stopped at its deadline keeps both kinds
    for i in range(max(len(chosen_cross), len(chosen_random))):
        mixed += chosen_cross[i:i + 1] + chosen_random[i:i + 1]
    return mixed


# -- metrics ----------------------------------------------------------------------------------------

def identifiers_in_order(text: str) -> list[str]:
    import keyword
    import re

    return [t for t in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text) if not keyword.iskeyword(t)]


def score(got: str, truth: str) -> dict:
    return {"em": normalise(got) == normalise(truth),
            "es": edit_similarity(normalise(got), normalise(truth)),
            "id_em": identifiers_in_order(got) == identifiers_in_order(truth)}


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    if not n:
        return {"n": 0}
    lat = [r["ms"] for r in rows]
    return {"n": n, "exact_match": sum(r["em"] for r in rows) / n, "edit_similarity": sum(r["es"] for r in rows) / n,
            "identifier_exact_match": sum(r["id_em"] for r in rows) / n,
            "model_ms_p50": percentile(lat, 0.5), "model_ms_p95": percentile(lat, 0.95),
            "prompt_tokens_mean": sum(r["prompt_tokens"] for r in rows) / n,
            "chunks_mean": sum(r.get("chunks", 0) for r in rows) / n,
            "needed_name_in_context": sum(r.get("found", False) for r in rows) / n}


def compare(without: list[dict], with_: list[dict]) -> dict:
    wins = sum(1 for a, b in zip(without, with_) if b["em"] and not a["em"])
    losses = sum(1 for a, b in zip(without, with_) if a["em"] and not b["em"])
    p_better, p_worse = mcnemar_exact(wins, losses)
    a, b = summary(without), summary(with_)
    ratio = (b["exact_match"] / a["exact_match"]) if a.get("exact_match") else None
    lo, hi = bootstrap_ci([y["es"] - x["es"] for x, y in zip(without, with_)])
    return {"em_ratio": ratio, "em_wins": wins, "em_losses": losses, "p_better": p_better, "p_worse": p_worse,
            "edit_similarity_diff_ci95": [lo, hi]}


# -- the quality run --------------------------------------------------------------------------------

def run_quality(backend, index: ContextIndex, pos: list[Position], say, deadline: float) -> dict[str, list[dict]]:
    tok = backend.tokenizer
    index.count_tokens = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])
    results: dict[str, list[dict]] = {"without": [], "with": []}
    for k, p in enumerate(pos):
        if time.monotonic() > deadline:
            say(f"deadline reached after {k} positions")
            break
        index.close_all()  # only the current file is open in the editor
        index.update_open(p.relpath, p.prefix + p.suffix)
        t0 = time.perf_counter()
        repo = index.retrieve(p.relpath, p.prefix, p.suffix)
        retrieve_ms = (time.perf_counter() - t0) * 1000
        for label, ctx in (("without", Context(p.prefix, p.suffix, "python", "line")),
                           ("with", Context(p.prefix, p.suffix, "python", "line",
                                            repo=repo if repo is not None and repo.chunks else None))):
            c = backend.complete(ctx)
            row = score(c.text, p.truth)
            row.update(ms=c.latency_ms, prompt_tokens=len(tok(c.prompt, add_special_tokens=False)["input_ids"]),
                       kind=p.kind, relpath=p.relpath, line=p.line, truth=p.truth, got=c.text,
                       chunks=len(c.context.chunks) if c.context is not None else 0, retrieve_ms=retrieve_ms,
                       found=bool(p.names) and any(n in ch.text for ch in c.context.chunks for n in p.names)
                       if c.context is not None else False)
            results[label].append(row)
        if (k + 1) % 10 == 0:
            say(f"{k + 1}/{len(pos)} positions")
    return results


# -- the cost runs -----------------------------------------------------------------------------------

def copy_first(root: Path, n: int, dest: Path) -> Path:
    """The first ``n`` Python files of a codebase (sorted paths), copied with their folders."""
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)[:n]
    out = dest / root.name
    for f in files:
        target = out / f.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
    return out


def time_retrieval(index: ContextIndex, n_open: int, n_requests: int, seed: int) -> dict:
    rng = random.Random(seed)
    files = sorted(f for f in index.files if f.endswith(".py"))
    opened = rng.sample(files, min(n_open, len(files)))
    for rel in opened:
        index.update_open(rel, index.path_of(rel).read_text(encoding="utf-8"))
    times, chunks = [], []
    for _ in range(n_requests):
        rel = rng.choice(opened)
        lines = index.path_of(rel).read_text(encoding="utf-8").split("\n")
        cut = rng.randrange(1, max(2, len(lines)))
        t0 = time.perf_counter()
        repo = index.retrieve(rel, "\n".join(lines[:cut]) + "\n")
        times.append((time.perf_counter() - t0) * 1000)
        chunks.append(len(repo.chunks))
    return {"requests": n_requests, "open_files": len(opened), "retrieve_ms_p50": percentile(times, 0.5),
            "retrieve_ms_p95": percentile(times, 0.95), "retrieve_ms_max": max(times),
            "chunks_mean": sum(chunks) / len(chunks)}


def synthetic_workspace(dest: Path, n_files: int) -> Path:
    """``n_files`` small modules in folders of 100, each defining a class and three functions and
    importing a neighbour: a large monorepo's shape, cheap to write."""
    root = dest / "mono"
    for i in range(n_files):
        folder = root / f"pkg{i // 100:04d}"
        if i % 100 == 0:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "__init__.py").write_text("")
        j = (i + 1) % n_files
        (folder / f"mod{i:05d}.py").write_text(
            f"from pkg{j // 100:04d}.mod{j:05d} import Widget{j}\n\n\n"
            f"class Widget{i}:\n    \"\"\"Widget number {i}.\"\"\"\n\n    def __init__(self, size: int):\n"
            f"        self.size = size\n\n    def grow(self, by: int) -> 'Widget{i}':\n        return Widget{i}(self.size + by)\n\n\n"
            + "".join(f"def helper_{i}_{k}(value, scale={k}):\n    \"\"\"Scale value by {k}.\"\"\"\n"
                      f"    return Widget{j}(value * scale)\n\n\n" for k in range(3)))
    return root


def index_cost(root: Path, tok, n_open: int, n_requests: int, seed: int, *, memory: bool) -> dict:
    if memory:
        tracemalloc.start()
    index = ContextIndex(ContextConfig(), [], [root],
                         count_tokens=lambda s: len(tok(s, add_special_tokens=False)["input_ids"]))
    stats = index.scan(nice=False)
    out = {"files_indexed": stats.files, "symbols": stats.symbols, "symbol_chars": stats.symbol_chars,
           "skipped": stats.skipped, "scan_s": stats.scan_s}
    if memory:
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out.update(index_mb=round(current / 2**20, 1), scan_peak_mb=round(peak / 2**20, 1))
    out.update(time_retrieval(index, n_open, n_requests, seed))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--codebase", type=Path, default=None, help="a folder of Python code (default: the installed rich)")
    ap.add_argument("--cross", type=int, default=60, help="cross-file positions")
    ap.add_argument("--random", type=int, default=60, help="random positions (the control)")
    ap.add_argument("--engine", default="llamacpp")
    ap.add_argument("--model", default=None, help="model.name (default: the configured one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cross-kind", choices=("first", "any"), default="first",
                    help="cross-file positions: the file's first use of an imported name (RepoBench XF-F), or any use")
    ap.add_argument("--timing-codebase", type=Path, default=None, help="default: the installed networkx")
    ap.add_argument("--timing-files", type=int, default=500)
    ap.add_argument("--workspace-files", type=int, default=50_000, help="synthetic workspace size for the memory bound")
    ap.add_argument("--minutes", type=float, default=22.0, help="stop starting new positions after this long")
    ap.add_argument("--quick", action="store_true", help="4 + 4 positions, 100 timing files, 2,000 synthetic files")
    args = ap.parse_args()
    if args.quick:
        args.cross, args.random, args.timing_files, args.workspace_files = 4, 4, 100, 2000
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    config = load_config()
    codebase = (args.codebase or package_dir("rich")).resolve()
    model = dataclasses.replace(config.model, backend=args.engine, **({"name": args.model} if args.model else {}))
    backend = load_backend(model, config.cache_dir, say=say)
    figures: dict = {"codebase": str(codebase), "engine": getattr(backend, "engine", args.engine),
                     "model": backend.model_name, "format": backend.prompt_format, "seed": args.seed, "cross_kind": args.cross_kind,
                     "context_tokens": model.context_tokens, "threads": getattr(backend, "threads", None),
                     "context": dataclasses.asdict(config.context)}

    index = ContextIndex(config.context, config.privacy.exclude, [codebase])
    stats = index.scan(nice=False)
    figures["codebase_index"] = {"files": stats.files, "symbols": stats.symbols, "skipped": stats.skipped,
                                 "scan_s": stats.scan_s}
    pos = positions(index, codebase, args.cross, args.random, args.seed, args.cross_kind)
    say(f"{sum(p.kind == 'cross' for p in pos)} cross-file + {sum(p.kind == 'random' for p in pos)} random positions "
        f"in {codebase.name}")
    start = time.perf_counter()
    results = run_quality(backend, index, pos, say, time.monotonic() + args.minutes * 60)
    figures["quality_wall_s"] = round(time.perf_counter() - start, 1)
    figures["positions_planned"] = len(pos)
    figures["positions_done"] = len(results["with"])
    rows = [("positions / condition", "n", "exact match", "edit sim", "ident EM", "p50 ms", "prompt tok", "chunks")]
    for kind in ("cross", "random"):
        per = {label: [r for r in results[label] if r["kind"] == kind] for label in ("without", "with")}
        figures[kind] = {label: summary(rs) for label, rs in per.items()}
        figures[kind]["compare"] = compare(per["without"], per["with"])
        for label in ("without", "with"):
            s = figures[kind][label]
            if s["n"]:
                rows.append((f"{kind} / {label}", s["n"], s["exact_match"], s["edit_similarity"],
                             s["identifier_exact_match"], s["model_ms_p50"], s["prompt_tokens_mean"], s["chunks_mean"]))
    retrieve = [r["retrieve_ms"] for r in results["with"]]
    figures["codebase_retrieve_ms"] = {"p50": percentile(retrieve, 0.5), "p95": percentile(retrieve, 0.95)}
    figures["examples"] = [{k: r[k] for k in ("kind", "relpath", "line", "truth", "got", "em")} | {"got_without": a["got"]}
                           for a, r in zip(results["without"], results["with"]) if r["em"] != a["em"]][:12]
    print_table(f"next-line completion on {codebase.name}, with and without cross-file context "
                f"(same model, {model.context_tokens} tokens in all)", rows)

    with tempfile.TemporaryDirectory(prefix="plumline-context-bench-") as tmp:
        timing_root = copy_first((args.timing_codebase or package_dir("networkx")).resolve(), args.timing_files,
                                 Path(tmp))
        figures["timing_500"] = index_cost(timing_root, backend.tokenizer, 8, 300, args.seed, memory=False)
        figures["timing_500"]["codebase"] = f"first {args.timing_files} files of {timing_root.name}"
        say("writing the synthetic workspace")
        mono = synthetic_workspace(Path(tmp), args.workspace_files)
        figures["workspace_50k"] = index_cost(mono, backend.tokenizer, 8, 100, args.seed, memory=True)
        figures["workspace_50k"]["files_on_disk"] = args.workspace_files
    t5, w = figures["timing_500"], figures["workspace_50k"]
    cross = figures["cross"]["compare"]
    figures["targets"] = {
        "cross_em_ratio_ge_1_3": cross["em_ratio"] is not None and cross["em_ratio"] >= 1.3,
        "random_no_loss_beyond_noise": figures["random"]["compare"]["p_worse"] >= 0.05,
        "retrieve_p95_le_20ms_500_files": t5["retrieve_ms_p95"] <= 20,
    }
    print_table("cost of choosing the context (no model)", [
        ("what", "value"),
        (f"retrieve p50 / p95 ms, {t5['codebase']}, 8 open", f"{t5['retrieve_ms_p50']:.2f} / {t5['retrieve_ms_p95']:.2f}"),
        ("background scan of those files, s", t5["scan_s"]),
        (f"{w['files_on_disk']} files: indexed / skipped", f"{w['files_indexed']} / {w['skipped']}"),
        (f"{w['files_on_disk']} files: index memory MB (scan peak)", f"{w.get('index_mb')} ({w.get('scan_peak_mb')})"),
        (f"{w['files_on_disk']} files: scan s, retrieve p95 ms", f"{w['scan_s']} / {w['retrieve_ms_p95']:.2f}"),
        ("cross-file EM ratio (target ≥ 1.3)", cross["em_ratio"]),
        ("random: p of a loss (McNemar; ≥ 0.05 = none beyond noise)", figures["random"]["compare"]["p_worse"]),
    ])
    print(f"targets: {figures['targets']}")
    print(f"wrote {write_result('context', figures)}")


if __name__ == "__main__":
    main()
