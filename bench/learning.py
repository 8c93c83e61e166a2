"""Learning benchmark: does the loop make the embedded model better on problems it never trained on?

    python bench/learning.py                                  # 40 HumanEval problems, 3 cycles (long on CPU)
    python bench/learning.py --tasks 8 --cycles 1 --samples 4 --steps 2   # a smoke run, minutes

What it does, with plumline's own code at every step:

1. **split**: the first ``--tasks`` HumanEval problems, split train / held-out by ``assign_split``
   with a fixed ``--seed`` (recorded, with the task ids of each side);
2. **tests for training**: plumline synthesizes them itself for the *train* problems (docstring
   examples + asserts written by the policy), validated against each train problem's canonical
   solution as the oracle (the stand-in for "the code the developer kept"). Held-out problems get
   no synthesized tests: they are scored only with HumanEval's own tests, which never score
   anything that is trained on (``trainer.data.EVAL_ONLY_SOURCES``);
3. **base**: held-out greedy pass@1 and pass@k (``--eval-samples`` samples at the loop temperature)
   of the base model, once;
4. **on-policy arm**, ``--cycles`` times: sample ``--samples`` candidates per ready train task from
   the adapter serving now → sandbox → ACECODER pairs → LoRA DPO continuing from that adapter
   (``--steps`` steps) → promote it (unconditionally, for the curve; what the gate's paired test
   would say is recorded) → held-out evaluation;
5. **off-policy control**, same number of cycles, pairs and steps: in a separate home (a copy of
   the store after the first collect), pairs whose *chosen* side is the canonical solution (stored
   as a sample in the serving format) and whose *rejected* side is a failing sample of the *base*
   policy, tagged with the adapter serving in that home so the trainer's on-policy filter keeps
   them. This is PLUM's on-policy vs off-policy comparison, measured in the same run.

Per cycle: held-out greedy pass@1 with a paired bootstrap 95% interval of the change against the
base, pass@k from samples, train-set pass rate of the on-policy samples, mixed-outcome groups,
pairs used, wall time per stage. Writes ``bench/results/learning.json`` and ``learning.png``.
Nothing is tuned on the held-out split: it is only ever scored.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import RESULTS, print_table, write_result  # noqa: E402

CACHE = Path(os.environ.get("PLUMLINE_BENCH_CACHE", "/tmp/plcache"))
TARGET_POINTS = 0.05


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------- homes

def make_home(root: Path, name: str) -> Path:
    home = root / name
    home.mkdir(parents=True)
    if CACHE.exists():
        (home / "cache").symlink_to(CACHE)  # the converted embedded model: nothing reconverts
    return home


def home_config(base_config, home: Path):
    return dataclasses.replace(base_config, home=home)


def budget(config, args):
    """Apply the benchmark's budget to the knobs a user would turn (as `plumline demo` does)."""
    collect = dataclasses.replace(config.collect, samples_per_task=args.samples, heldout_fraction=args.heldout_fraction,
                                  split_seed=args.seed,
                                  **({"test_replies": args.test_replies} if args.test_replies else {}),
                                  **({"min_valid_tests": args.min_valid_tests} if args.min_valid_tests else {}))
    train = dataclasses.replace(config.train, method="dpo", max_steps=args.steps, min_examples=1,
                                on_policy_only=True, gate_samples=0, gate_humaneval=0)
    sandbox = dataclasses.replace(config.sandbox, backend="process")
    model = config.model
    if model.name == "embedded":
        # name the converted model by its real path, the same in both homes: samples record the model
        # name, and the trainer drops pairs whose samples came from "another base model" (a copied
        # store in another home would otherwise name it through that home's cache folder)
        from agent.models.embedded import ensure_embedded

        model = dataclasses.replace(model, name=str(ensure_embedded(CACHE, say=say).resolve()))
    return dataclasses.replace(config, collect=collect, train=train, sandbox=sandbox, model=model)


# ------------------------------------------------------------------------------------------ scoring

def evaluate(config, store, sandbox, tasks: list[dict], *, eval_samples: int, seed: int) -> tuple[object, float]:
    """Held-out score of the policy serving in ``config.home``: HumanEval's own tests only."""
    import torch

    from agent.completion import load_policy
    from trainer.gate import score_suite
    from trainer.rewards import Grader

    t0 = time.perf_counter()
    policy = load_policy(config, say=lambda m: None)
    grader = Grader(store, sandbox, fmt=policy.prompt_format)
    for t in tasks:
        assert grader.tests(t["id"]) and grader._tests[t["id"]] == _humaneval_tests(store, t["id"]), \
            "held-out tasks must be scored with HumanEval's own tests only"
    torch.manual_seed(seed)
    score = score_suite(policy, grader, tasks, samples=eval_samples, temperature=config.collect.temperature)
    del policy
    gc.collect()
    return score, time.perf_counter() - t0


def _humaneval_tests(store, task_id: str) -> list[str]:
    from trainer.data import task_tests

    return task_tests(store, task_id, sources=("humaneval",))


def score_figures(score, base) -> dict:
    from trainer.gate import bootstrap_ci, mcnemar_exact

    diffs = [b - a for a, b in zip(base.greedy, score.greedy)]
    wins = sum(d > 0 for d in diffs)
    losses = sum(d < 0 for d in diffs)
    lo, hi = bootstrap_ci(diffs)
    k = score.n
    return {"adapter": score.adapter_id, "greedy_pass1": score.pass1(), "solved": sum(score.greedy),
            "tasks": len(score.greedy),
            "sampled_pass1": score.pass_k(1) if k else None, f"pass@{k}": score.pass_k(k) if k else None,
            "delta_vs_base": score.pass1() - base.pass1(), "ci95_vs_base": [lo, hi],
            "wins_vs_base": wins, "losses_vs_base": losses, "p_improve_vs_base": mcnemar_exact(wins, losses)[0],
            "solved_task_ids": [t for t, g in zip(score.task_ids, score.greedy) if g]}


def gate_view(prev, cand, alpha: float) -> dict:
    """What the gate's held-out test would say about this promotion (greedy, paired McNemar)."""
    from trainer.gate import compare

    c = compare("heldout", prev, cand)
    return {"vs": prev.adapter_id, "wins": c.wins, "losses": c.losses, "p_improve": c.p_improve,
            "would_promote": c.p_improve < alpha and c.delta >= 0}


def train_set_figures(store, adapter_id: str) -> dict:
    """Pass rates (synthesized tests) of the on-policy samples of this adapter on train tasks."""
    from agent.pairs import grpo_groups, training_samples

    rows = training_samples(store, adapter_id)
    rates = [r["pass_rate"] for r in rows]
    by_task: dict[str, list[float]] = {}
    for r in rows:
        by_task.setdefault(r["task_id"], []).append(r["pass_rate"])
    groups = grpo_groups(rows)
    return {"samples": len(rows), "tasks": len(by_task),
            "mean_pass_rate": sum(rates) / len(rates) if rates else None,
            "all_pass_fraction": sum(r >= 1.0 for r in rates) / len(rates) if rates else None,
            "tasks_any_all_pass": sum(any(x >= 1.0 for x in v) for v in by_task.values()),
            "tasks_all_zero": sum(all(x <= 0 for x in v) for v in by_task.values()),
            "tasks_all_one": sum(all(x >= 1.0 for x in v) for v in by_task.values()),
            "mixed_outcome_groups": len(groups)}


# ------------------------------------------------------------------------------------- the two arms

def collect_stages(config, store, policy_get, sandbox) -> dict:
    """The collect stages one by one (same functions as ``agent.collect.collect``), timed."""
    from agent import collect as C

    sb = lambda: sandbox  # noqa: E731
    times, counts = {}, {}
    t = time.perf_counter()
    counts["tasks_tested"], counts["tests_written"] = C.synthesize(store, config, policy_get)
    times["synthesize_s"] = time.perf_counter() - t
    t = time.perf_counter()
    counts["tasks_ready"], counts["tasks_skipped"] = C.validate(store, config, sb)
    times["validate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    counts["samples"] = C.sample(store, config, policy_get())
    times["sample_s"] = time.perf_counter() - t
    t = time.perf_counter()
    counts["scored"], _, counts["skipped_after_execute"] = C.execute(store, config, sb)
    times["execute_s"] = time.perf_counter() - t
    t = time.perf_counter()
    counts["pairs_new"] = C.pair(store, config)
    times["pair_s"] = time.perf_counter() - t
    return {"times": times, "counts": counts}


def train_and_promote(config, store, sandbox, steps: int) -> tuple[dict, float]:
    from agent.adapters import promote
    from trainer.runs import train

    t0 = time.perf_counter()
    r = train(config, store, sandbox=sandbox, max_steps=steps, progress=False, say=say)
    out = {"status": r.status, "message": r.message[:300], "adapter": r.adapter_id,
           "examples": r.metrics.get("examples"), "steps": r.metrics.get("steps"),
           "loss_first": (r.metrics.get("loss_curve") or [None])[0] if isinstance(r.metrics.get("loss_curve"), list) else None,
           "metrics": {k: v for k, v in r.metrics.items() if k != "loss_curve"}}
    if r.ok:
        promote(config.adapters_dir, r.adapter_id, store=store, why="bench/learning (unconditional, for the curve)")
    gc.collect()
    return out, time.perf_counter() - t0


def control_pairs(store, *, serving: str, n_pairs: int, used_rejected: set, base_adapter: str) -> dict:
    """Off-policy pairs: chosen = canonical solution (as a sample in the serving format), rejected =
    a failing sample of the base policy; tagged with the adapter serving in this home."""
    from agent.store import new_id, now

    tasks = list(store.rows("select * from tasks where split = 'train' and status = 'ready' and oracle is not null "
                            "order by created_at, id"))
    failing = {}
    for t in tasks:
        failing[t["id"]] = [r for r in store.rows(
            "select id, completion, pass_rate, model from samples where task_id = ? and adapter_id = ? and pass_rate is not null "
            "and pass_rate < 1.0 order by pass_rate desc, id", [t["id"], base_adapter])
            if r["completion"].strip()]
    model = next((r["model"] for v in failing.values() for r in v), None)
    # round-robin over tasks with failing base samples, unused ones first
    queues = {tid: [r for r in v if r["id"] not in used_rejected] + [r for r in v if r["id"] in used_rejected]
              for tid, v in failing.items() if v}
    order = [t for t in tasks if t["id"] in queues]
    made, canon = [], {}
    i = 0
    while len(made) < n_pairs and order and any(queues.values()):
        t = order[i % len(order)]
        i += 1
        q = queues[t["id"]]
        if not q:
            continue
        rej = q.pop(0)
        if t["id"] not in canon:
            prefix = t["prompt"] if t["prompt"].endswith("\n") else t["prompt"] + "\n"
            body = t["oracle"][len(prefix):] if t["oracle"].startswith(prefix) else t["oracle"]
            sid = new_id()
            store.db["samples"].insert({
                "id": sid, "task_id": t["id"], "adapter_id": serving, "model": model, "completion": body.rstrip("\n"),
                "program": t["oracle"], "decoding": json.dumps({"source": "canonical (off-policy control)"}),
                "pass_rate": 1.0, "n_tests": None, "created_at": now()})
            canon[t["id"]] = sid
        store.db["pairs"].insert({"task_id": t["id"], "chosen_id": canon[t["id"]], "rejected_id": rej["id"],
                                  "chosen_rate": 1.0, "rejected_rate": rej["pass_rate"], "adapter_id": serving,
                                  "created_at": now(), "used_by": None})
        used_rejected.add(rej["id"])
        made.append(rej["id"])
    return {"pairs": len(made), "tasks": len({k for k in canon}),
            "rejected_zero_rate": sum(1 for t in failing.values() for r in t if r["id"] in made and r["pass_rate"] <= 0)}


# ----------------------------------------------------------------------------------------- the run

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=40, help="HumanEval problems (first N), split train / held-out")
    ap.add_argument("--heldout-fraction", type=float, default=0.5)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--samples", type=int, default=8, help="on-policy candidates per train task per cycle")
    ap.add_argument("--steps", type=int, default=12, help="DPO max steps per cycle")
    ap.add_argument("--seed", type=int, default=0, help="split seed (and evaluation sampling seed)")
    ap.add_argument("--eval-samples", type=int, default=5, help="held-out samples per task for pass@k")
    ap.add_argument("--test-replies", type=int, default=0, help="policy test-writer replies per task (0 = config default)")
    ap.add_argument("--min-valid-tests", type=int, default=0,
                    help="collect.min_valid_tests (0 = config default, 5: design rule 2); lower only to probe test yield")
    ap.add_argument("--no-control", action="store_true", help="skip the off-policy control arm")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default; 1 helps on a shared machine)")
    ap.add_argument("--replot", action="store_true", help="only redraw learning.png from learning.json")
    ap.add_argument("--keep", action="store_true", help="keep the temporary homes (printed)")
    args = ap.parse_args()
    if args.replot:
        print("plot:", plot(json.loads((RESULTS / "learning.json").read_text())["figures"], RESULTS / "learning.png"))
        return

    root = Path(tempfile.mkdtemp(prefix="bench-learning-"))
    on_home = make_home(root, "on")
    os.environ.update(PLUMLINE_HOME=str(on_home), PLUMLINE_CONFIG=str(root / "none.toml"),
                      PLUMLINE_SANDBOX_BACKEND="process")
    from agent.adapters import current_adapter
    from agent.completion import load_policy
    from agent.config import load_config
    from agent.models import BASE_ADAPTER
    from agent.store import Store
    from agent.tasks import humaneval_path, import_path
    from sandbox import open_sandbox

    config = budget(load_config(), args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, threads=args.threads))
    settings = {**vars(args), "model": config.model.name, "temperature": config.collect.temperature,
                "test_replies": config.collect.test_replies,
                "min_valid_tests": config.collect.min_valid_tests, "asserts_per_task": config.collect.asserts_per_task,
                "block_tokens": config.model.block_tokens, "learning_rate": config.train.learning_rate,
                "lora_r": config.train.lora_r, "beta": config.train.beta, "batch_size": config.train.batch_size,
                "pair_rule": {"chosen_min": config.collect.chosen_min, "gap_min": config.collect.gap_min,
                              "rejected_min": config.collect.rejected_min,
                              "max_per_task": config.collect.max_pairs_per_task},
                "sandbox": "process", "home": str(root)}
    say("settings: " + json.dumps({k: v for k, v in settings.items()}))
    t_all = time.perf_counter()
    figures: dict = {"settings": settings, "on_policy": [], "off_policy": [], "notes": []}

    store = Store(config.store_path)
    imp = import_path(store, humaneval_path(), heldout_fraction=args.heldout_fraction, seed=args.seed, limit=args.tasks)
    split = {s: [r["origin"] if "origin" in r else r["id"] for r in store.rows(
        "select * from tasks where split = ? order by created_at, id", [s])] for s in ("train", "heldout")}
    # held-out problems are only ever scored with HumanEval's own tests: no synthesized tests for them
    # (status 'tested' skips the synthesize stage; the validate stage then checks HumanEval's own
    # asserts against the canonical solution, as it does for every imported test, and the tasks are
    # kept out of the data loop: they never get samples, pairs or synthesized tests)
    store.db.execute("update tasks set status = 'tested' where split = 'heldout'")
    store.db.conn.commit()
    figures["split"] = {"seed": args.seed, "heldout_fraction": args.heldout_fraction, "imported": imp.added,
                        "train": split["train"], "heldout": split["heldout"]}
    say(f"split: {len(split['train'])} train, {len(split['heldout'])} held-out problems (seed {args.seed})")

    sandbox = open_sandbox(config.sandbox)
    try:
        from agent.collect import validate

        t0 = time.perf_counter()
        validate(store, config, lambda: sandbox)
        store.db.execute("update tasks set status = 'skipped', skip_reason = 'heldout_eval_only' where split = 'heldout'")
        store.db.conn.commit()
        heldout = [t for t in store.rows("select * from tasks where split = 'heldout' order by created_at, id")
                   if _humaneval_tests(store, t["id"])]
        figures["split"]["heldout_scored"] = len(heldout)
        figures["split"]["heldout_validate_s"] = time.perf_counter() - t0
        # ---- base
        base, t_eval = evaluate(config, store, sandbox, heldout, eval_samples=args.eval_samples, seed=args.seed)
        figures["base"] = {**score_figures(base, base), "eval_s": t_eval}
        say(f"base: held-out greedy pass@1 {base.pass1():.1%} ({sum(base.greedy)}/{len(base.greedy)}), "
            f"pass@{base.n} {base.pass_k(base.n) if base.n else float('nan'):.1%}  [{t_eval:.0f}s]")

        prev_on = base
        prev_off = base
        off_home = off_config = off_store = None
        used_rejected: set = set()
        for k in range(1, args.cycles + 1):
            # ---- on-policy cycle k
            say(f"cycle {k}: collect (on-policy)")
            serving = current_adapter(config.adapters_dir).id
            box: list = []

            def policy_get():
                if not box:
                    box.append(load_policy(config, say=lambda m: None))
                return box[0]

            col = collect_stages(config, store, policy_get, sandbox)
            box.clear()
            gc.collect()
            train_fig = train_set_figures(store, serving)
            say(f"cycle {k}: {col['counts']}, train-set {train_fig}")
            if k == 1 and not args.no_control:  # the control starts from the same tests and base samples
                off_home = make_home(root, "off")
                src = sqlite3.connect(config.store_path)
                dst = sqlite3.connect(off_home / "plumline.db")
                src.backup(dst)
                src.close()
                dst.close()
                off_config = home_config(config, off_home)
                off_store = Store(off_config.store_path)
                off_store.db.execute("delete from pairs")  # the control makes its own
                off_store.db.conn.commit()
            pairs_avail = store.db.execute("select count(*) from pairs where adapter_id = ?", [serving]).fetchone()[0]
            say(f"cycle {k}: train DPO on {pairs_avail} on-policy pairs from {serving}")
            tr, t_train = train_and_promote(config, store, sandbox, args.steps)
            say(f"cycle {k}: train {tr['status']}: {tr['message']} [{t_train:.0f}s]")
            if tr["status"] == "finished":
                score, t_eval = evaluate(config, store, sandbox, heldout, eval_samples=args.eval_samples, seed=args.seed)
            else:  # nothing trained: the serving policy is unchanged, and so is its score
                score, t_eval = prev_on, 0.0
            row = {"cycle": k, "serving_before": serving, "collect": col, "train_set": train_fig,
                   "pairs_available": pairs_avail, "train": tr,
                   "heldout": score_figures(score, base), "gate_view": gate_view(prev_on, score, config.train.gate_alpha),
                   "times": {**col["times"], "train_s": t_train, "eval_s": t_eval}}
            figures["on_policy"].append(row)
            prev_on = score
            write_result("learning", {**figures, "partial": True})
            say(f"cycle {k} on-policy: held-out pass@1 {score.pass1():.1%} (base {base.pass1():.1%}), "
                f"CI {row['heldout']['ci95_vs_base']}")

            # ---- off-policy control, cycle k: same pairs count and steps
            if off_store is not None:
                used = tr.get("examples") or 0
                off_serving = current_adapter(off_config.adapters_dir).id
                made = control_pairs(off_store, serving=off_serving, n_pairs=used, used_rejected=used_rejected,
                                     base_adapter=BASE_ADAPTER)
                say(f"cycle {k} control: {made} off-policy pairs (on-policy used {used}); train")
                if made["pairs"]:
                    otr, ot_train = train_and_promote(off_config, off_store, sandbox, args.steps)
                else:
                    otr, ot_train = {"status": "empty", "message": "no pairs"}, 0.0
                say(f"cycle {k} control: train {otr['status']}: {otr['message']} [{ot_train:.0f}s]")
                if otr["status"] == "finished":
                    oscore, ot_eval = evaluate(off_config, off_store, sandbox, heldout, eval_samples=args.eval_samples,
                                               seed=args.seed)
                else:
                    oscore, ot_eval = prev_off, 0.0
                orow = {"cycle": k, "serving_before": off_serving, "pairs": made, "train": otr,
                        "heldout": score_figures(oscore, base),
                        "gate_view": gate_view(prev_off, oscore, config.train.gate_alpha),
                        "on_minus_off_greedy": score.pass1() - oscore.pass1(),
                        "times": {"pairs_s": 0.0, "train_s": ot_train, "eval_s": ot_eval}}
                figures["off_policy"].append(orow)
                prev_off = oscore
                write_result("learning", {**figures, "partial": True})
                say(f"cycle {k} off-policy: held-out pass@1 {oscore.pass1():.1%}, CI {orow['heldout']['ci95_vs_base']}")
    finally:
        sandbox.close()

    figures["total_s"] = time.perf_counter() - t_all
    figures["diagnosis"] = diagnose(store)
    last = figures["on_policy"][-1]["heldout"] if figures["on_policy"] else None
    last_off = figures["off_policy"][-1]["heldout"] if figures["off_policy"] else None
    figures["target"] = {
        "rule": "held-out greedy pass@1 after the last cycle >= base + 5 points, CI excluding zero, on-policy >= off-policy",
        "cycles_run": len(figures["on_policy"]), "cycles_asked_by_spec": 3,
        "gain_points": last["delta_vs_base"] * 100 if last else None,
        "reached_gain": bool(last and last["delta_vs_base"] >= TARGET_POINTS and last["ci95_vs_base"][0] > 0),
        "on_policy_at_least_off_policy": (last["greedy_pass1"] >= last_off["greedy_pass1"]) if last and last_off else None}
    figures["device"] = "cpu (2 cores, shared)"
    rows = [("base", f"{base.pass1():.1%}", "-", f"{base.pass_k(base.n):.1%}" if base.n else "-", "-", "-", "-")]
    for row in figures["on_policy"]:
        h = row["heldout"]
        rows.append((f"on-policy c{row['cycle']}", f"{h['greedy_pass1']:.1%}",
                     f"[{h['ci95_vs_base'][0]:+.1%}, {h['ci95_vs_base'][1]:+.1%}]",
                     f"{h.get(f'pass@{args.eval_samples}') or 0:.1%}", row["train"].get("examples") or 0,
                     row["train_set"]["mixed_outcome_groups"],
                     f"{row['train_set']['mean_pass_rate'] or 0:.2f}"))
    for row in figures["off_policy"]:
        h = row["heldout"]
        rows.append((f"off-policy c{row['cycle']}", f"{h['greedy_pass1']:.1%}",
                     f"[{h['ci95_vs_base'][0]:+.1%}, {h['ci95_vs_base'][1]:+.1%}]",
                     f"{h.get(f'pass@{args.eval_samples}') or 0:.1%}", row["pairs"]["pairs"], "-", "-"))
    rows.insert(0, ("arm / cycle", "greedy pass@1", "95% CI vs base", f"pass@{args.eval_samples}", "pairs",
                    "mixed groups", "train pass rate"))
    print_table(f"plumline learning benchmark ({len(heldout)} held-out HumanEval problems)", rows)
    path = write_result("learning", figures)
    print("written to", path)
    png = plot(figures, RESULTS / "learning.png")
    print("plot:", png)
    if args.keep:
        print("homes kept under", root)
    else:
        shutil.rmtree(root, ignore_errors=True)


def diagnose(store) -> dict:
    """Why there is (or is not) a learning signal: tests kept per task and source, skip reasons,
    pass-rate histogram and mixed-outcome groups per adapter (``agent.collect.summary``)."""
    from agent.collect import summary

    out = summary(store)
    per_task = list(store.rows(
        "select t.origin, t.status, t.skip_reason, "
        "sum(s.valid = 1 and s.source != 'humaneval') valid_synth, sum(s.valid = 0 and s.source != 'humaneval') dropped_synth "
        "from tasks t left join tests s on s.task_id = t.id where t.split = 'train' group by t.id order by t.created_at"))
    out["train_tasks"] = per_task
    return out


def plot(figures: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    base = figures["base"]["greedy_pass1"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, key, marker in (("on-policy", "on_policy", "o"), ("off-policy control", "off_policy", "s")):
        rows = figures.get(key) or []
        if not rows:
            continue
        xs = [0] + [r["cycle"] for r in rows]
        ys = [base * 100] + [r["heldout"]["greedy_pass1"] * 100 for r in rows]
        lo = [0] + [max(0.0, r["heldout"]["greedy_pass1"] - (base + r["heldout"]["ci95_vs_base"][0])) * 100 for r in rows]
        hi = [0] + [max(0.0, (base + r["heldout"]["ci95_vs_base"][1]) - r["heldout"]["greedy_pass1"]) * 100 for r in rows]
        off = 0.05 if key == "off_policy" else -0.05
        ax.errorbar([x + off for x in xs], ys, yerr=[lo, hi], marker=marker, capsize=4, label=name)
        for r, x, y in zip(rows, xs[1:], ys[1:]):
            n = r["train"].get("examples") if key == "on_policy" else (r.get("pairs") or {}).get("pairs")
            trained = r["train"].get("status") == "finished"
            ax.annotate(f"{n or 0} pairs" + ("" if trained else ", not trained"), (x + off, y), fontsize=6,
                        textcoords="offset points", xytext=(4, 6 if key == "on_policy" else -10))
    ax.axhline(base * 100, color="grey", ls=":", lw=1, label="base")
    ax.axhline((base + TARGET_POINTS) * 100, color="red", ls="--", lw=1, label="target (base + 5 points)")
    n = figures["base"]["tasks"]
    ax.set_xlabel("cycle (0 = base)")
    ax.set_ylabel("held-out greedy pass@1 (%)")
    ax.set_title(f"HumanEval held-out ({n} problems), error bars: paired bootstrap 95% CI vs base", fontsize=8)
    ax.legend(fontsize=8)
    ax.set_xticks(range(0, len(figures.get("on_policy") or []) + 1))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    main()
