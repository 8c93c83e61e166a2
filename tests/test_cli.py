"""The `plumline` command as a user runs it: a real subprocess, a real store file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import typer.main

from agent.cli import app
from agent.store import Store

STDLIB_FILE = Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py"


def plumline(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def _commands(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        yield (*prefix, name), cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*prefix, name))


def test_every_command_has_help_with_an_example():
    root = typer.main.get_command(app)
    missing = [" ".join(path) for path, cmd in _commands(root)
               if not hasattr(cmd, "commands") and "Example" not in (cmd.help or "")]
    assert missing == []


def test_complete_prints_a_suggestion_and_records_it(tiny_env):
    line = next(i for i, text in enumerate(STDLIB_FILE.read_text().split("\n")) if text.startswith("def dedent("))
    result = plumline("complete", str(STDLIB_FILE), "--line", str(line + 2), "--col", "5", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    store = Store(tiny_env / "plumline.db")
    row = store.get("completions", out["id"])
    assert row["adapter_id"] == "base"
    assert row["text"] == out["text"]
    assert row["source"] == "cli"
    assert row["prefix"].endswith(STDLIB_FILE.read_text().split("\n")[line] + "\n    ")


def test_excluded_file_is_completed_but_not_recorded(tiny_env, tmp_path):
    secret = tmp_path / "my_secret.py"
    secret.write_text("TOKEN = 1\ndef f():\n    return \n")
    result = plumline("complete", str(secret), "--line", "3", "--col", "12")
    assert result.returncode == 0, result.stderr
    assert Store(tiny_env / "plumline.db").db["completions"].count == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["complete", "/nonexistent/file.py", "--line", "1", "--col", "1"], "does not exist"),
        (["complete", str(STDLIB_FILE), "--line", "999999", "--col", "1"], "outside the file"),
        (["complete", str(STDLIB_FILE), "--line", "1", "--col", "999"], "outside line 1"),
    ],
)
def test_bad_input_gives_a_clear_error(tiny_env, args, message):
    result = plumline(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_corrupt_config_names_the_problem(tiny_env, tmp_path):
    (tmp_path / "config.toml").write_text("[sandbox]\nbackend = 'chroot'\n")
    result = plumline("doctor")
    assert result.returncode == 2
    assert "sandbox.backend" in result.stderr and "allowed" in result.stderr


def test_missing_model_folder_says_what_to_do(plumline_home, tmp_path):
    (tmp_path / "model").mkdir()
    result = plumline("complete", str(STDLIB_FILE), "--line", "1", "--col", "1",
                      env={"PLUMLINE_MODEL_NAME": str(tmp_path / "model")})
    assert result.returncode == 2
    assert "config.json" in result.stderr


def test_doctor_reports_each_part(tiny_env):
    result = plumline("doctor")
    assert result.returncode == 0, result.stdout + result.stderr  # nothing required is missing here (CI has bwrap)
    for name in ("python", "torch", "model", "bubblewrap", "sandbox", "store"):
        assert name in result.stdout


def test_doctor_exits_1_when_something_required_is_missing(tiny_env, tmp_path):
    (tmp_path / "not-a-model").mkdir()
    result = plumline("doctor", env={"PLUMLINE_MODEL_NAME": str(tmp_path / "not-a-model"), "COLUMNS": "250"})  # one line a row
    assert result.returncode == 1, result.stdout + result.stderr
    assert "config.json" in result.stdout  # the row says what to do


def test_prepare_check_says_whether_the_model_is_ready_without_changing_anything(plumline_home, tiny_model_dir):
    """The launcher's "model" step asks `plumline prepare --check` first: 1 while the embedded model
    is not converted (and nothing is written), 0 for a model folder, which needs no preparing."""
    assert plumline("prepare", "--check", env={"PLUMLINE_MODEL_NAME": "embedded"}).returncode == 1
    assert not (plumline_home / "cache").exists()
    assert plumline("prepare", "--check", env={"PLUMLINE_MODEL_NAME": str(tiny_model_dir)}).returncode == 0
    ready = plumline("prepare", env={"PLUMLINE_MODEL_NAME": str(tiny_model_dir)})
    assert ready.returncode == 0 and str(tiny_model_dir) in ready.stderr
