"""The VS Code extension (editors/vscode): it builds, and its protocol module talks to the server.

No VS Code desktop can be downloaded here, so the extension's logic lives in src/protocol.ts (no
`vscode` import) and editors/vscode/test/protocol.test.mjs drives it with node's test runner over
a real stdio JSON-RPC connection:

* test_extension_builds_and_speaks_protocol: `npm ci && npm run compile && node --test` against
  tests/editors/fake_server.py, checking the exact notifications.
* test_extension_protocol_with_real_server_is_stored: the same node test against `plumline serve`
  with the tiny model, then the store holds the completion and its shown/accepted events.

Needs node and npm (skipped without them unless PLUMLINE_TEST_REQUIRE names `node`).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.editors.conftest import REPO, missing

VSCODE = REPO / "editors" / "vscode"


def run(cmd: list[str], env: dict | None = None, timeout: int = 600, cwd: Path = VSCODE) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def built_extension() -> Path:
    """`npm ci && npm run compile` once per module."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not (npm and node):
        missing("node", "node/npm not found")
    run([npm, "ci", "--no-audit", "--no-fund"])
    run([npm, "run", "compile"])
    assert (VSCODE / "out" / "protocol.js").exists()
    return VSCODE


def node_test(server_cmd: list[str], report: Path, workspace: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PLUMLINE_SERVER_CMD=json.dumps(server_cmd), PLUMLINE_TEST_REPORT=str(report),
               PLUMLINE_TEST_WORKSPACE=str(workspace))
    proc = run([shutil.which("node"), "--test", "test/"], env=env)
    assert "# fail 0" in proc.stdout and "# skipped 0" in proc.stdout, proc.stdout[-3000:]
    return proc


def test_extension_builds_and_speaks_protocol(built_extension, fake_server_cmd, tmp_path):
    log = tmp_path / "messages.jsonl"
    node_test(fake_server_cmd + [str(log)], tmp_path / "report.json", tmp_path)
    methods = [json.loads(line)["method"] for line in log.read_text().splitlines()]
    assert methods == [
        "textDocument/inlineCompletion",
        "textDocument/didShowCompletion",
        "workspace/executeCommand",
        "plumline/telemetry",  # asked
        "plumline/telemetry",  # off
        "plumline/telemetry",  # on
    ]


def test_extension_protocol_with_real_server_is_stored(built_extension, plumline_cmd, tiny_env, tmp_path):
    report_path = tmp_path / "report.json"
    node_test(plumline_cmd, report_path, tmp_path)
    report = json.loads(report_path.read_text())
    assert report["exitCode"] == 0
    db = sqlite3.connect(tiny_env / "plumline.db")
    db.row_factory = sqlite3.Row
    row = db.execute("SELECT * FROM completions WHERE id = ?", (report["completionId"],)).fetchone()
    assert row is not None and row["text"] == report["text"]
    kinds = [r["kind"] for r in db.execute(
        "SELECT kind FROM events WHERE completion_id = ? ORDER BY id", (report["completionId"],))]
    assert "shown" in kinds and "accepted" in kinds, kinds
    assert kinds.index("shown") < kinds.index("accepted")


def test_npm_run_package_makes_plumline_vsix_from_a_fresh_clone(built_extension, tmp_path):
    """As in CI's fresh clone (no out/ yet): `npm run package` compiles first (vscode:prepublish) and
    writes plumline.vsix, whose manifest and package.json name the extension, its version and its
    VS Code engine, and which holds the compiled code and its runtime dependencies, not the sources."""
    import xml.etree.ElementTree as ET
    import zipfile

    clone = tmp_path / "vscode"
    shutil.copytree(VSCODE, clone, ignore=shutil.ignore_patterns("node_modules", "out", "*.vsix"))
    (clone / "node_modules").symlink_to(VSCODE / "node_modules")  # what `npm ci` made, not rebuilt
    run([shutil.which("npm"), "run", "package"], cwd=clone)
    package = json.loads((VSCODE / "package.json").read_text())
    with zipfile.ZipFile(clone / "plumline.vsix") as vsix:
        names = set(vsix.namelist())
        manifest = ET.fromstring(vsix.read("extension.vsixmanifest"))
        shipped = json.loads(vsix.read("extension/package.json"))
    ns = {"m": "http://schemas.microsoft.com/developer/vsx-schema/2011"}
    identity = manifest.find("m:Metadata/m:Identity", ns).attrib
    assert (identity["Id"], identity["Publisher"], identity["Version"]) == ("plumline", "plumline", package["version"])
    engine = manifest.find("m:Metadata/m:Properties/m:Property[@Id='Microsoft.VisualStudio.Code.Engine']", ns)
    assert engine.attrib["Value"] == package["engines"]["vscode"]
    assert shipped["main"] == "./out/extension.js" and "extension/out/extension.js" in names
    assert "extension/out/protocol.js" in names
    assert "extension/node_modules/vscode-languageclient/package.json" in names  # runtime dependency
    assert {c["command"] for c in shipped["contributes"]["commands"]} >= {"plumline.toggleCompletions", "plumline.showStatus"}
    assert not [n for n in names if n.startswith(("extension/src/", "extension/test/", "extension/node_modules/typescript/"))]
