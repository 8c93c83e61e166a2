"""``plumline sandbox``: run a program against a file of asserts, build the Docker image.

Mounted in ``agent/cli.py`` as ``app.add_typer(sandbox_app, name="sandbox")``; also runs alone
as ``python -m sandbox.cli``. Exit status: 0 whenever the program ran (whatever the verdicts),
non-zero only when it could not run (missing file, unparseable tests or none, no sandbox backend).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from sandbox.config import SandboxConfig

app = typer.Typer(help="Run candidate code in the sandbox and manage its Docker image.", no_args_is_help=True)

_COLOURS = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "crashed": "magenta",
            "rejected": "magenta", "unsplittable": "yellow"}


def _config(backend: Optional[str] = None, timeout: Optional[float] = None) -> SandboxConfig:
    try:
        from agent.config import load_config

        config = load_config().sandbox
    except ImportError:  # the sandbox also works without the rest of plumline
        config = SandboxConfig()
    changes = {}
    if backend:
        changes["backend"] = backend
    if timeout:
        changes["timeout_s"] = timeout
    return SandboxConfig(**{**config.__dict__, **changes}) if changes else config


@app.command("run")
def run_cmd(
    program: Path = typer.Argument(..., help="candidate source file"),
    tests: Path = typer.Argument(..., help="file of assert statements (imports/helpers allowed at the top)"),
    backend: Optional[str] = typer.Option(None, "--backend", help="docker | process | unsafe (default: config)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per test, then a summary line"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="wall-clock seconds per test"),
) -> None:
    """Run PROGRAM against every assert in TESTS and print one verdict per test.

    Helpers that assert are inlined: HumanEval's ``def check(candidate): ...`` followed by
    ``check(f)`` gives one verdict per assert in ``check``. Asserts that cannot be split into a
    call of the candidate and a comparison outside (loops, comprehensions, helpers that cannot be
    inlined) are reported as "unsplittable" and never run.

    Example:

        plumline sandbox run solution.py tests.py --backend process --json
    """
    from rich.console import Console

    from sandbox import SandboxUnavailable, open_sandbox, parse_tests

    err = Console(stderr=True)
    try:
        source = program.read_text(encoding="utf-8")
        cases = parse_tests(tests.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        err.print(f"[red]cannot read input:[/red] {exc}")
        raise typer.Exit(2)
    if not cases:
        err.print(f"[red]no tests in {tests}:[/red] it has no assert statements and no call of a helper that asserts. "
                  "A HumanEval test defines check(candidate) without calling it: add a line such as `check(f)`.")
        raise typer.Exit(2)
    try:
        config = _config(backend, timeout)
    except ValueError as exc:
        err.print(f"[red]bad configuration:[/red] {exc}")
        raise typer.Exit(2)
    config = SandboxConfig(**{**config.__dict__, "workers": 1})
    t0 = time.monotonic()
    try:
        with err.status(f"starting the {config.backend} sandbox..."):
            sb = open_sandbox(config)
        with sb:
            verdicts = sb.run(source, cases)
    except SandboxUnavailable as exc:
        err.print(f"[red]cannot run:[/red] {exc}")
        raise typer.Exit(3)
    counts = Counter(v.status for v in verdicts)
    summary = {"total": len(verdicts), **{s: counts.get(s, 0) for s in _COLOURS}, "backend": sb.name,
               "wall_s": round(time.monotonic() - t0, 3)}
    if as_json:
        for v in verdicts:
            typer.echo(json.dumps(v.to_dict()))
        typer.echo(json.dumps({"summary": summary}))
        return
    out = Console()
    for v in verdicts:
        colour = _COLOURS[v.status]
        out.print(f"[{colour}]{v.status:12}[/{colour}] {v.duration_s * 1000:7.1f} ms  {v.test}"
                  + (f"  [dim]({v.detail})[/dim]" if v.detail else ""), highlight=False, markup=True)
    parts = ", ".join(f"{n} {s}" for s, n in summary.items() if s in _COLOURS and n)
    out.print(f"{summary['passed']}/{summary['total']} passed ({parts}) on the {sb.name} backend "
              f"in {summary['wall_s']:.2f} s")
    if summary["unsplittable"]:
        out.print(f"{summary['unsplittable']} unsplittable test(s) were not run: they would evaluate test code next to "
                  "the candidate (see docs/sandbox.md)", highlight=False)


@app.command("build-image")
def build_image_cmd(
    image: Optional[str] = typer.Option(None, "--image", help="tag to build (default: sandbox.image)"),
) -> None:
    """Build the Docker sandbox image locally from the host's Python (no registry is used).

    Example:

        plumline sandbox build-image --image plumline-sandbox:latest
    """
    from rich.console import Console

    from sandbox import docker_backend

    console = Console(stderr=True)
    config = _config()
    if image:
        config = SandboxConfig(**{**config.__dict__, "image": image})
    ok, why = docker_backend.engine_status()
    if not ok:
        console.print(f"[red]cannot build:[/red] {why}")
        raise typer.Exit(3)
    with console.status("building the sandbox image...") as status:
        tag = docker_backend.build_image(config, say=lambda m: (status.update(m), console.print(m)))
    typer.echo(tag)


if __name__ == "__main__":
    app()
