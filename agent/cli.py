"""The `plumline` command: a thin shell over the library. Each command's docstring is its help.

    plumline complete FILE --line L --col C    one suggestion at a position, logged to the store
    plumline doctor                            what this machine has and what plumline will use
    plumline config                            every option, its value and where it came from
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from agent.config import ConfigError, load_config

app = typer.Typer(
    name="plumline",
    help="A code-completion agent that gets better at your code while you use it.\n\n"
    "Example: plumline complete examples/fib.py --line 6 --col 5",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def config_or_exit():
    try:
        return load_config()
    except ConfigError as exc:
        fail(str(exc))


@app.command()
def complete(
    file: Path = typer.Argument(..., help="the source file"),
    line: int = typer.Option(..., "--line", "-l", help="1-based line of the cursor"),
    col: int = typer.Option(..., "--col", "-c", help="1-based column of the cursor (1 = start of line)"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object instead of the bare text"),
    no_log: bool = typer.Option(False, "--no-log", help="do not record this completion in the store"),
) -> None:
    """Complete the code at FILE:LINE:COL with the serving policy and record it.

    Prints the suggestion (the text to insert at the cursor). The record in the store carries the
    adapter that produced it ('base' until an adapter is promoted).

    Example:
        plumline complete examples/fib.py --line 6 --col 5
    """
    from agent.completion import PositionError, language_of, load_serving_policy, log_completion, split_at
    from agent.models import Context
    from agent.models.embedded import EmbeddedModelMissing
    from agent.privacy import is_excluded
    from agent.store import Store, StoreError

    config = config_or_exit()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail(f"{file} does not exist")
    except IsADirectoryError:
        fail(f"{file} is a folder; give a source file")
    except PermissionError:
        fail(f"{file} is not readable (permission denied)")
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
    try:
        prefix, suffix = split_at(text, line - 1, col - 1)
    except PositionError as exc:
        fail(f"{file}: {exc}")
    try:
        store = None if no_log else Store(config.store_path)
    except StoreError as exc:
        fail(str(exc))
    try:
        with console.status("loading the model..."):
            policy = load_serving_policy(config, say=lambda m: console.print(m))
    except (EmbeddedModelMissing, FileNotFoundError, RuntimeError, OSError) as exc:
        fail(f"cannot load the model: {exc}")
    from agent.context import context_for_file

    tokenizer = getattr(policy, "tokenizer", None)
    count = (lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"])) if tokenizer is not None else None
    repo = context_for_file(config.context, config.privacy.exclude, file, prefix, suffix, count_tokens=count)
    result = policy.complete(Context(prefix, suffix, language=language_of(file),
                                     repo=repo if repo is not None and repo.chunks else None))
    try:
        relpath = str(file.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        relpath = str(file.resolve())
    try:
        completion_id = log_completion(store, config.privacy, result, source="cli", relpath=relpath,
                                       uri=file.resolve().as_uri(), line=line - 1, col=col - 1,
                                       language=language_of(file))
    except StoreError as exc:
        console.print(f"[yellow]warning:[/yellow] the completion was not recorded: {exc}")
        completion_id = None
    if store is not None and completion_id is None and is_excluded(relpath, config.privacy.exclude):
        console.print("[dim]not recorded: the file matches privacy.exclude[/dim]")
    if as_json:
        print(json.dumps({"text": result.text, "id": completion_id, "model": result.model,
                          "adapter_id": result.adapter_id, "mode": result.mode,
                          "latency_ms": round(result.latency_ms, 1)}))
    else:
        print(result.text)
        console.print(f"[dim]{result.mode} completion, {result.latency_ms:.0f} ms, adapter {result.adapter_id}"
                      + (f", recorded as {completion_id}" if completion_id else "") + "[/dim]")


@app.command()
def doctor() -> None:
    """Check this machine: model, sandbox backends, store, GPU, editors; say what to install.

    Exit status is 1 when something required is missing.

    Example:
        plumline doctor
    """
    from agent.doctor import run_checks

    config = config_or_exit()
    table = Table(title="plumline doctor")
    for col in ("check", "status", "detail", "what to do"):
        table.add_column(col, overflow="fold")
    checks = run_checks(config)
    for c in checks:
        mark = {True: "[green]ok[/green]", False: "[red]missing[/red]", None: "[yellow]optional[/yellow]"}[c.ok]
        table.add_row(c.name, mark, c.detail, c.fix if c.ok is not True else "")
    Console().print(table)
    if any(c.ok is False for c in checks):
        raise typer.Exit(1)


@app.command()
def prepare(check: bool = typer.Option(False, "--check", help="change nothing: exit 0 if the model is ready, 1 if not")) -> None:
    """Assemble and convert the configured embedded model now (once, about 2 minutes), instead of
    during the first command that needs it. A local folder or hub id needs nothing.

    The `./plumline` launcher runs this as its "model" install step.

    Example:
        plumline prepare
    """
    from agent.models import resolve_model_path
    from agent.models.embedded import EmbeddedModelMissing, cache_folder, is_converted, lookup

    config = config_or_exit()
    model = lookup(config.model.name)
    if check:
        raise typer.Exit(0 if model is None or is_converted(cache_folder(config.cache_dir, model)) else 1)
    try:
        path = resolve_model_path(config.model, config.cache_dir, say=lambda m: console.print(m))
    except (EmbeddedModelMissing, OSError) as exc:
        fail(f"cannot prepare the model: {exc}", code=1)
    console.print(f"model ready: {path}")


@app.command("config")
def show_config(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Print every option, its value and where it came from (default, file or env).

    The file is $PLUMLINE_CONFIG or ~/.config/plumline/config.toml; each option can be overridden
    by PLUMLINE_<TABLE>_<KEY>.

    Example:
        PLUMLINE_SANDBOX_BACKEND=process plumline config
    """
    from agent.config import config_path, describe

    config = config_or_exit()
    rows = describe(config)
    if as_json:
        print(json.dumps({key: value for key, value, _src, _help in rows}, default=str, indent=2))
        return
    table = Table(title=f"config: {config_path()}   data: {config.home}")
    for col in ("key", "value", "from", "help"):
        table.add_column(col, overflow="fold")
    for key, value, src, help_text in rows:
        env = "PLUMLINE_" + key.replace(".", "_").upper()
        table.add_row(key, repr(value), src, f"{help_text} [{env}]")
    Console().print(table)


# Each package adds its own commands: a module here exposes `register(app)` (or a Typer `app`,
# mounted under the given group name). Missing modules are skipped; import errors are not hidden.
COMMAND_MODULES = [
    ("sandbox.cli", "sandbox"),
    ("lsp_server.cli", None),
    ("agent.loop_cli", None),
    ("trainer.cli", None),
    ("agent.stats", None),
    ("agent.demo", None),
]


def _register_commands() -> None:
    import importlib
    import importlib.util

    for module_name, group in COMMAND_MODULES:
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        if hasattr(module, "register"):
            module.register(app)
        else:
            app.add_typer(module.app, name=group)


_register_commands()


def main() -> None:
    from agent.models.quiet import quiet_libraries

    quiet_libraries()  # first: the libraries read their switches when imported (PLUMLINE_VERBOSE=1 keeps all)
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted; everything already recorded is kept.")
        sys.exit(130)


if __name__ == "__main__":
    main()
