"""The Neovim plugin (editors/nvim) driven headless, as a user would drive it.

* test_plugin_sends_every_report_per_protocol: against tests/editors/fake_server.py, every
  notification the plugin sends (shown, partial word/line, dismissed escape/typed-over/moved,
  executeCommand plumline.accept) arrives in order with the exact item.
* test_typing_cancels_the_request_in_flight: a slow fake server; typing sends $/cancelRequest and
  asks again at the new position.
* test_accept_with_real_server_is_stored: `plumline serve` with the tiny model; the ghost text
  appears, <Tab> inserts it, and the store holds the completion and its shown/accepted events.
* test_checkhealth_is_clean_and_commands_answer: `:checkhealth plumline` reports no error with a
  server attached; :PlumlineTelemetry, :PlumlineStatus and :PlumlineToggle answer.

Each run is `nvim --headless --clean -u tests/editors/minimal_init.lua FILE -c "luafile
tests/editors/nvim_driver.lua"`; the driver writes what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.editors.conftest import REPO

pytestmark = pytest.mark.nvim

HERE = Path(__file__).resolve().parent
SAMPLE = "def add(a, b):\n    "
# The tiny test model says nothing at the start of an empty block, but completes mid-line.
SAMPLE_REAL = "def add(a, b):\n    return a"


def run_nvim(nvim: str, cmd: list[str], tmp_path: Path, scenario: str, timeout: int = 240,
             extra_env: dict | None = None, text: str = SAMPLE, init: Path = HERE / "minimal_init.lua") -> dict:
    """Run one driver scenario on a fresh sample file; return the driver's JSON report."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / ".git").mkdir(exist_ok=True)  # a root marker: one server for this project
    sample = project / "sample.py"
    sample.write_text(text)
    out = tmp_path / f"{scenario}.json"
    env = dict(os.environ,
               PLUMLINE_NVIM_PLUGIN=str(REPO / "editors" / "nvim"),
               PLUMLINE_TEST_CMD=json.dumps(cmd),
               PLUMLINE_TEST_OUT=str(out),
               PLUMLINE_TEST_SCENARIO=scenario,
               XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_DATA_HOME=str(tmp_path / "data"),
               **(extra_env or {}))
    proc = subprocess.run(
        [nvim, "--headless", "--clean", "-u", str(init), str(sample),
         "-c", f"luafile {HERE / 'nvim_driver.lua'}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=timeout,
    )
    assert out.exists(), f"nvim wrote no report (rc={proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(out.read_text())
    assert "error" not in report, f"{report['error']}\nsteps: {json.dumps(report['steps'], indent=1)}"
    return report


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_plugin_sends_every_report_per_protocol(nvim, fake_server_cmd, tmp_path):
    log = tmp_path / "messages.jsonl"
    report = run_nvim(nvim, fake_server_cmd + [str(log)], tmp_path, "protocol")
    steps = {s["name"]: s for s in report["steps"]}

    # Ghost text: the first line inline at the cursor, the rest as virtual lines.
    assert steps["shown"]["ghost"] == {"row": 1, "col": 4, "text": "return a + b", "lines": ["    # done"]}
    assert steps["typed-through"]["ghost"]["text"] == "urn a + b"
    assert steps["accepted"]["lines"][-2:] == ["    zqreturn a + b", "    # done"]

    messages = [(m["method"], m["params"]) for m in read_log(log)]
    reports = [(method, p) for method, p in messages if method != "textDocument/inlineCompletion"]
    ids = [p["item"]["command"]["arguments"][0] if "item" in p else p["arguments"][0] for _, p in reports]
    summary = [
        (method.split("/")[-1], i, p.get("acceptedLength") or p.get("reason"))
        for (method, p), i in zip(reports, ids)
    ]
    assert summary == [
        ("didShowCompletion", "fake-1", None),
        ("didPartiallyAcceptCompletion", "fake-1", 6),   # "return"
        ("didPartiallyAcceptCompletion", "fake-1", 12),  # "return a + b"
        ("didDismissCompletion", "fake-1", "escape"),    # <C-]>
        ("didShowCompletion", "fake-2", None),
        ("didDismissCompletion", "fake-2", "typed-over"),
        ("didShowCompletion", "fake-3", None),
        ("executeCommand", "fake-3", None),              # <Tab>: full accept runs the command
        ("didShowCompletion", "fake-4", None),
        ("didDismissCompletion", "fake-4", "moved"),     # <Left>
        ("didShowCompletion", "fake-5", None),
        ("didDismissCompletion", "fake-5", "escape"),    # <Esc> leaves insert mode
    ]
    # Every notification carries the item exactly as served.
    first_item = next(p["item"] for m, p in reports if m == "textDocument/didShowCompletion")
    assert first_item["insertText"] == "return a + b\n    # done"
    assert first_item["command"]["command"] == "plumline.accept"
    requests = [p for m, p in messages if m == "textDocument/inlineCompletion"]
    assert requests[0]["position"] == {"line": 1, "character": 4}
    assert requests[0]["context"]["triggerKind"] == 2  # Automatic


def test_typing_cancels_the_request_in_flight(nvim, fake_server_cmd, tmp_path):
    log = tmp_path / "messages.jsonl"
    report = run_nvim(nvim, fake_server_cmd + [str(log)], tmp_path, "cancel",
                      extra_env={"FAKE_PLUMLINE_DELAY_S": "0.5"})
    messages = [(m["method"], m["params"]) for m in read_log(log)]
    assert [m for m, _ in messages] == [
        "textDocument/inlineCompletion",   # at "    |"
        "$/cancelRequest",                 # "x" typed while it was in flight
        "textDocument/inlineCompletion",   # at "    x|"
        "textDocument/didShowCompletion",
        "plumline/didDismissCompletion",   # <Esc>
    ]
    assert messages[2][1]["position"] == {"line": 1, "character": 5}
    assert report["steps"][0]["ghost"]["col"] == 5


def test_accept_with_real_server_is_stored(nvim, plumline_cmd, tiny_env, tmp_path):
    report = run_nvim(nvim, plumline_cmd, tmp_path, "accept", text=SAMPLE_REAL)
    shown, accepted = report["steps"][0], report["steps"][1]
    suggestion = shown["suggestion"]
    assert suggestion
    assert report["ghost"]["text"] == suggestion.split("\n")[0]
    assert "\n".join(accepted["lines"]) == SAMPLE_REAL + suggestion

    completion_id = report["item"]["command"]["arguments"][0]
    db = sqlite3.connect(tiny_env / "plumline.db")
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT * FROM completions WHERE id = ?", (completion_id,)).fetchone()
    assert row is not None, "the served completion is not in the store"
    assert row["text"] == suggestion
    assert row["adapter_id"]
    kinds = [r["kind"] for r in db.execute(
        "SELECT kind, adapter_id FROM events WHERE completion_id = ? ORDER BY id", (completion_id,))]
    assert "shown" in kinds and "accepted" in kinds, kinds
    assert kinds.index("shown") < kinds.index("accepted")
    adapters = {r[0] for r in db.execute("SELECT adapter_id FROM events WHERE completion_id = ?", (completion_id,))}
    assert adapters == {row["adapter_id"]}
    assert report["status"]["telemetry"] is True


def test_checkhealth_is_clean_and_commands_answer(nvim, fake_server_cmd, tmp_path):
    report = run_nvim(nvim, fake_server_cmd + [str(tmp_path / "log.jsonl")], tmp_path, "health")
    text = "\n".join(report["health"])
    assert "ERROR" not in text, text
    assert "OK Neovim" in text
    assert "advertises inlineCompletionProvider" in text
    assert "model fake, adapter base" in text
    assert report["messages"] == [
        "plumline: logging off",
        "plumline 0.0-test: model fake, adapter base, backend fake, queue 0, logging off;"
        " completions on (plugin ghost text)",
        "plumline: logging on",
        "plumline: completions off",
        "plumline: completions on",
    ]


# -- installing as docs/editors.md says --------------------------------------------------------------

# What each plugin manager does with the snippet, since neither can be downloaded here. lazy.nvim
# takes over plugin loading (`loadplugins` off: it sources plugin/ folders itself, only at a
# plugin's root), clones the repository into plugin.dir, puts that on the runtimepath and calls
# config(plugin, opts). packer clones it, puts <dir>/<rtp> on the runtimepath and runs config.
MANAGERS = {
    "lazy.nvim": """
vim.go.loadplugins = false
local spec = SNIPPET
local plugin = { dir = os.getenv("PLUMLINE_REPO"), name = "plumline" }
vim.opt.runtimepath:append(plugin.dir)
spec.config(plugin, {})
""",
    "packer": """
local function use(spec)
  vim.opt.runtimepath:append(os.getenv("PLUMLINE_REPO") .. "/" .. spec.rtp)
  spec.config()
end
SNIPPET
""",
}


def docs_snippet(manager: str) -> str:
    """The Lua block that follows ``<!-- snippet: MANAGER -->`` in docs/editors.md, verbatim."""
    text = (REPO / "docs" / "editors.md").read_text()
    marker = f"<!-- snippet: {manager} -->"
    assert marker in text, f"docs/editors.md lost its {manager} snippet"
    return text.split(marker, 1)[1].split("```lua\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("manager", sorted(MANAGERS))
def test_the_install_snippet_in_the_docs_works(manager, nvim, fake_server_cmd, tmp_path):
    """The docs' snippet, run as its plugin manager runs it, with `plumline` on PATH as the docs
    assume: the plugin starts the server, :checkhealth is clean and every command answers."""
    init = tmp_path / "init.lua"
    init.write_text('vim.opt.swapfile = false\nvim.opt.shadafile = "NONE"\n'
                    + MANAGERS[manager].replace("SNIPPET", docs_snippet(manager)))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    server = bin_dir / "plumline"  # `plumline serve` answers as the protocol stand-in
    server.write_text("#!/bin/sh\nexec " + " ".join(f"'{part}'" for part in fake_server_cmd)
                      + f" '{tmp_path / 'log.jsonl'}'\n")
    server.chmod(0o755)
    report = run_nvim(nvim, [], tmp_path, "health", init=init,
                      extra_env={"PLUMLINE_REPO": str(REPO), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    text = "\n".join(report["health"])
    assert "ERROR" not in text, text
    assert "advertises inlineCompletionProvider" in text
    assert report["messages"][0] == "plumline: logging off"  # :PlumlineTelemetry exists and answered
    assert len(report["messages"]) == 5
