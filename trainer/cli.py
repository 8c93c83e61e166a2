"""The trainer's commands, registered on the `plumline` app (a thin shell over the library):

    plumline train [--method dpo|plum|rpo|rft|grpo|offpolicy|rm|kto] [--max-steps N]   a candidate adapter
    plumline eval ADAPTER [--promote]                             the gate: candidate vs current
    plumline adapters list|promote|rollback|check                 the registry
    plumline nightly                                              collect -> train -> gate -> promote
    plumline schedule install|remove|show                         the nightly scheduler entry
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def _config():
    from agent.cli import config_or_exit

    return config_or_exit()


def _store(config):
    from agent.cli import fail
    from agent.store import Store, StoreError

    try:
        return Store(config.store_path)
    except StoreError as exc:
        fail(str(exc))


def _fingerprint(config) -> str | None:
    from agent.adapters import base_fingerprint
    from agent.models import resolve_model_path

    try:
        return base_fingerprint(resolve_model_path(config.model, config.cache_dir, say=lambda m: console.print(m)))
    except Exception:  # noqa: BLE001 - model missing: checked again where it is loaded
        return None


def train_cmd(
    method: str = typer.Option(None, "--method", "-m", help="update rule (default: train.method): dpo (ACECODER pairs), "
                               "plum (PLUM pairs), rpo (PLUM pairs + NLL), rft (SFT on passing samples), grpo, "
                               "offpolicy (the control: reference solution as chosen), rm or kto"),
    max_steps: int = typer.Option(None, "--max-steps", help="stop after N optimizer steps (overrides train.max_steps)"),
    all_data: bool = typer.Option(False, "--all-data", help="also use data sampled from earlier adapters (off-policy)"),
) -> None:
    """Train a candidate LoRA adapter on the store's data (not promoted: see `plumline eval`).

    Every update rule learns only from tasks whose samples have mixed outcomes (some pass every
    valid test, some do not); with too little data for the rule it says so and trains nothing.
    Uses only data sampled from the adapter serving now unless --all-data. An interrupted run
    (Ctrl-C, a kill) resumes from its last checkpoint the next time. Several GPUs: the same command
    under `accelerate launch --multi_gpu --num_processes N -m agent.cli train ...`; the main
    process writes the store and the adapter and reports.

    Example:
        plumline train --method rpo --max-steps 50
    """
    from agent.cli import fail
    from trainer.config import METHODS
    from trainer.runs import is_main_process, train

    quiet = not is_main_process()  # under accelerate launch, one process reports; all exit alike
    config = _config()
    if method and method not in METHODS:
        fail(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if method:
        config.train.method = method  # the run's resolved config, as recorded, names the rule it used
    if all_data:
        config.train.on_policy_only = False
    store = _store(config)
    try:
        result = train(config, store, method=method, max_steps=max_steps, say=lambda m: console.print(m))
    except KeyboardInterrupt:
        if not quiet:
            console.print("interrupted: run `plumline train` again to resume from the last checkpoint")
        raise typer.Exit(130)
    if result.status == "empty":
        if not quiet:
            console.print(f"[yellow]not trained:[/yellow] {result.message}")
        raise typer.Exit(0)
    if not result.ok:
        if quiet:
            raise typer.Exit(1)
        fail(result.message, 1)
    if quiet:
        return
    m = result.metrics
    console.print(f"[green]{result.adapter_id}[/green] ({result.method}, parent {result.parent}): "
                  f"{m.get('steps')} steps, loss {m.get('loss_first', float('nan')):.4f} -> {m.get('loss_last', float('nan')):.4f}, "
                  f"{m.get('train_seconds')} s. Next: plumline eval {result.adapter_id}")


def _print_decision(d) -> None:
    table = Table(title=f"gate: {d.candidate} vs {d.current}")
    for col in ("suite", "tasks", "current pass@1", "candidate pass@1", "change (95% CI)", "won/lost", "p better", "p worse"):
        table.add_column(col, justify="right")
    for c in (d.heldout, d.guard):
        if c is None:
            continue
        table.add_row(c.suite, str(c.tasks), f"{c.current_pass1:.1%}", f"{c.candidate_pass1:.1%}",
                      f"{c.delta:+.1%} ({c.ci95[0]:+.1%}, {c.ci95[1]:+.1%})", f"{c.wins}/{c.losses}",
                      f"{c.p_improve:.3g}", f"{c.p_regress:.3g}")
        for k, v in c.extra.items():
            if isinstance(v, float):
                console.print(f"  {c.suite} {k}: {v:.1%}")
    Console().print(table)
    left = (d.suites.get("heldout") or {}).get("left_out") or {}
    if left:
        console.print("  held-out tasks that could not judge: " + "; ".join(f"{n} {why}" for why, n in left.items()))
    guard = d.suites.get("guard") or {}
    if guard.get("problems"):
        ids = [p.split("/")[-1] for p in guard["problems"]]
        console.print(f"  HumanEval guard: problems {', '.join(ids)}" + (f" ({guard['note']})" if guard.get("note") else ""))
    elif guard.get("note"):
        console.print(f"  HumanEval guard: none ({guard['note']})")
    colour = "green" if d.decision == "promote" else "yellow"
    console.print(f"[{colour}]{d.decision}[/{colour}]: {d.reason}")


def eval_cmd(
    adapter: str = typer.Argument(None, help="candidate adapter id (default: the newest candidate)"),
    promote_: bool = typer.Option(False, "--promote", help="promote it if the gate says so"),
    as_json: bool = typer.Option(False, "--json", help="print the decision and figures as JSON"),
) -> None:
    """Gate a candidate adapter against the serving one: held-out tasks + HumanEval guard.

    Greedy pass@1 and sampled pass@k per suite, a paired exact McNemar test and a bootstrap
    interval; promote only if held-out improves beyond noise and HumanEval does not regress.
    Every decision and its figures are stored (gate_decisions).

    Example:
        plumline eval dpo-20250101-030000-ab12cd --promote
    """
    from agent.adapters import AdapterError, promote
    from agent.cli import fail
    from trainer.gate import run_gate

    config = _config()
    store = _store(config)
    if adapter is None:
        row = next(store.rows("select id from adapters where status = 'candidate' and method != 'rm' "
                              "order by created_at desc limit 1"), None)
        if row is None:
            fail("no candidate adapter: run `plumline train` first")
        adapter = row["id"]
    fp = _fingerprint(config)
    decision = run_gate(config, store, adapter, fingerprint=fp, say=lambda m: console.print(m))
    if as_json:
        print(json.dumps({"decision": decision.decision, "reason": decision.reason, **decision.figures()}, default=str))
    else:
        _print_decision(decision)
    if promote_ and decision.decision == "promote":
        try:
            promote(config.adapters_dir, adapter, store=store, fingerprint=fp)
        except AdapterError as exc:
            fail(str(exc), 1)
        console.print(f"promoted {adapter}: running language servers switch without restart")


adapters_app = typer.Typer(help="The adapter registry: list, promote, roll back.\n\nExample: plumline adapters list",
                           no_args_is_help=True, rich_markup_mode=None)


@adapters_app.command("list")
def adapters_list(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List adapters on disk with status, parent, method, data and figures.

    Example:
        plumline adapters list
    """
    from agent.adapters import AdapterError, check_adapter_dir, current_adapter, list_adapters

    config = _config()
    store = _store(config)
    current = current_adapter(config.adapters_dir).id
    rows = []
    for a in list_adapters(config.adapters_dir):
        meta = a.meta
        db = store.get("adapters", a.id) or {}
        try:
            check_adapter_dir(a.path)
            status = "current" if a.id == current else (db.get("status") or "candidate")
        except AdapterError:
            status = "broken"
        window = meta.get("data_window") or {}
        metrics = meta.get("metrics") or {}
        rows.append({"id": a.id, "status": status, "method": meta.get("method"), "parent": meta.get("parent"),
                     "examples": window.get("rows"), "loss": metrics.get("loss_last"),
                     "created_at": meta.get("created_at")})
    if as_json:
        print(json.dumps({"current": current, "adapters": rows}, default=str))
        return
    table = Table(title=f"adapters in {config.adapters_dir} (serving: {current})")
    for col in ("id", "status", "method", "parent", "examples", "last loss"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["id"], r["status"], str(r["method"]), str(r["parent"]), str(r["examples"]),
                      f"{r['loss']:.4f}" if isinstance(r["loss"], float) else "-")
    Console().print(table)


@adapters_app.command("promote")
def adapters_promote(adapter: str = typer.Argument(..., help="adapter id, or 'base' for no adapter")) -> None:
    """Make ADAPTER the serving one now, without the gate (atomic; servers switch at once).

    Refused for a corrupt folder or an adapter trained on another base model.

    Example:
        plumline adapters promote dpo-20250101-030000-ab12cd
    """
    from agent.adapters import AdapterError, promote
    from agent.cli import fail

    config = _config()
    store = _store(config)
    try:
        previous = promote(config.adapters_dir, adapter, store=store, fingerprint=_fingerprint(config), why="manual")
    except AdapterError as exc:
        fail(f"not promoted, still serving the current adapter: {exc}", 1)
    console.print(f"serving {adapter} (was {previous})")


@adapters_app.command("rollback")
def adapters_rollback() -> None:
    """Return to the adapter that served before the current one.

    Example:
        plumline adapters rollback
    """
    from agent.adapters import AdapterError, rollback
    from agent.cli import fail

    config = _config()
    store = _store(config)
    try:
        gone, back = rollback(config.adapters_dir, store=store, fingerprint=_fingerprint(config))
    except AdapterError as exc:
        fail(str(exc), 1)
    console.print(f"rolled back: serving {back} (was {gone})")


@adapters_app.command("check")
def adapters_check() -> None:
    """Compare live acceptance/persistence of the current adapter with the previous one; roll back
    automatically if it is significantly worse (after train.rollback_min_events suggestions each).

    Example:
        plumline adapters check
    """
    from trainer.live import check_and_rollback

    config = _config()
    result = check_and_rollback(config, _store(config), fingerprint=_fingerprint(config))
    console.print(("[red]rolled back:[/red] " if result.regressed else "") + result.reason)


def nightly_cmd(
    force: bool = typer.Option(False, "--force", help="run even on battery power"),
    method: str = typer.Option(None, "--method", "-m", help="update rule for tonight (default: train.method); see `plumline train --help`"),
) -> None:
    """One unattended cycle: collect -> train -> gate -> promote (or discard), then a live check.

    Low priority; skipped on battery or when busy (train.max_load); never two at once (a lock);
    every run is logged to the store. Install it nightly with `plumline schedule install`.

    Example:
        plumline nightly
    """
    from agent.cli import fail
    from trainer.config import METHODS
    from trainer.nightly import run_nightly

    config = _config()
    if method and method not in METHODS:
        fail(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    if method:
        config.train.method = method
    result = run_nightly(config, _store(config), check_power=not force, say=lambda m: console.print(m))
    raise typer.Exit(1 if result.status == "failed" else 0)


schedule_app = typer.Typer(help="The nightly scheduler entry (systemd user timer, else crontab).\n\n"
                           "Example: plumline schedule install", no_args_is_help=True, rich_markup_mode=None)


@schedule_app.command("install")
def schedule_install(
    at: str = typer.Option(None, "--at", help="HH:MM local time (default train.nightly_at)"),
    backend: str = typer.Option("auto", "--backend", help="auto, systemd or cron"),
) -> None:
    """Install (or replace) the nightly `plumline nightly` entry.

    Example:
        plumline schedule install --at 03:30
    """
    from agent.cli import fail
    from trainer import schedule

    config = _config()
    try:
        console.print(schedule.install(at or config.train.nightly_at, config.home, backend=backend))
    except (RuntimeError, OSError) as exc:
        fail(str(exc), 1)


@schedule_app.command("remove")
def schedule_remove() -> None:
    """Remove the nightly entry.

    Example:
        plumline schedule remove
    """
    from trainer import schedule

    console.print(schedule.remove())


@schedule_app.command("show")
def schedule_show() -> None:
    """Show the installed nightly entry.

    Example:
        plumline schedule show
    """
    from trainer import schedule

    print(schedule.show())


def register(app: typer.Typer) -> None:
    app.command("train")(train_cmd)
    app.command("eval")(eval_cmd)
    app.command("nightly")(nightly_cmd)
    app.add_typer(adapters_app, name="adapters")
    app.add_typer(schedule_app, name="schedule")
