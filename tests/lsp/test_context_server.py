"""Cross-file context as the editor sees it: a real `plumline serve` on the tiny model, a real
client over stdio, a real workspace on disk. The chunks a suggestion used are in its logged
prompt and its ``context`` column; secrets in a neighbour never are; ``[context]`` turns it off."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.lsp.conftest import completion_id, start_session, stop_session

AWS_KEY = "AKIA" + "ZXCVBNMLKJHGFDSA"  # a made-up key of the shape the scrubber knows

HELPERS = '''def parse_config(path, strict=False):
    """Read the settings file at path; unknown keys raise when strict."""
    return {}
'''
LEAKY = f'''DEPLOY_KEY = "{AWS_KEY}"


def parse_config(path, strict=False):
    """Read the settings file at path, signed with the deploy key."""
    return {{"key": DEPLOY_KEY}}
'''
HEADER = "from helpers import parse_config\n\nsettings = parse_config('app.toml')\n"


async def indexed(session, *, files: int = 1) -> dict:
    """The server's context index once its workspace scan is done."""
    status = await session.wait_status(lambda s: s.get("context") and not s["context"]["scanning"]
                                       and s["context"]["files"] >= files)
    return status["context"]


async def logged(session, item) -> dict:
    cid = completion_id(item)
    rows = await session.wait_rows("select * from completions where id = ?", [cid])
    assert rows, "the suggestion was not recorded"
    return rows[0]


@pytest.fixture
def workspace_files(tmp_path):
    def write(files: dict[str, str]):
        root = tmp_path / "ws"
        root.mkdir(exist_ok=True)
        for name, text in files.items():
            (root / name).write_text(text)
        return root
    return write


async def test_a_neighbour_definition_is_in_the_logged_prompt(server_env, tmp_path, workspace_files):
    workspace_files({"helpers.py": HELPERS})
    session = await start_session(server_env, tmp_path / "ws")
    try:
        await indexed(session)
        _, _, _, item = await session.suggestion(name="main.py", header=HEADER)
        row = await logged(session, item)
        assert "def parse_config(path, strict=False):" in row["prompt"]
        assert "Read the settings file at path" in row["prompt"]
        assert row["prompt"].index("parse_config(path, strict") < row["prompt"].index("settings = parse_config")
        stored = json.loads(row["context"])
        assert [c["path"] for c in stored["chunks"]] == ["helpers.py"] and stored["path"].endswith("main.py")
        status = await session.status()
        assert status["stats"]["context_ms"] > 0 and status["context"]["requests"] >= 1
    finally:
        await stop_session(session)


async def test_unsaved_edits_of_an_open_file_reach_the_prompt(server_env, tmp_path, workspace_files):
    workspace_files({})
    session = await start_session(server_env, tmp_path / "ws")
    try:
        await indexed(session, files=0)
        uri = session.open("notes.py", "def first_draft(x):\n    return x\n")
        session.edit(uri, 2, 0, "\n\ndef renamed_for_review(order, reviewer):\n    \"\"\"Ask for a review.\"\"\"\n")
        header = "def send(order):\n    renamed_for_review(order, 'ana')\n"
        deadline = time.monotonic() + 30
        while True:  # the edit is indexed once typing pauses (CHANGE_BATCH_S), off the request path
            _, _, _, item = await session.suggestion(name=f"use{int(time.monotonic() * 1000)}.py", header=header)
            row = await logged(session, item)
            if "def renamed_for_review(order, reviewer):" in row["prompt"]:
                break
            assert time.monotonic() < deadline, "the unsaved edit never reached a prompt"
            await asyncio.sleep(0.2)
        assert "notes.py" in row["context"]
    finally:
        await stop_session(session)


async def test_a_secret_in_a_neighbour_is_in_no_prompt_and_no_store_row(server_env, tmp_path, workspace_files):
    root = workspace_files({"leaky.py": LEAKY, "helpers_secret.py": HELPERS})  # a secret, and an excluded name
    session = await start_session(server_env, tmp_path / "ws")
    try:
        context = await indexed(session, files=0)
        session.open("leaky.py", LEAKY)  # open in the editor as well
        await session.wait_status(lambda s: s["context"]["skipped"].get("secrets", 0) >= 1)
        _, _, _, item = await session.suggestion(name="main.py", header=HEADER)
        row = await logged(session, item)
        assert "DEPLOY_KEY" not in row["prompt"] and "redacted" not in row["prompt"]
        assert "leaky.py" not in (row["context"] or "") and "helpers_secret" not in row["prompt"]
        status = await session.status()
        assert status["context"]["skipped"] == {"secrets": 1, "excluded": 1}, context
    finally:
        await stop_session(session)
    for path in (server_env / "plumline.db").parent.rglob("*"):
        if path.is_file():
            assert AWS_KEY.encode() not in path.read_bytes(), path
    assert root.exists()


async def test_context_turned_off_serves_the_current_file_only(server_env, tmp_path, workspace_files, monkeypatch):
    monkeypatch.setenv("PLUMLINE_CONTEXT_ENABLED", "false")
    workspace_files({"helpers.py": HELPERS})
    session = await start_session(server_env, tmp_path / "ws")
    try:
        _, _, _, item = await session.suggestion(name="main.py", header=HEADER)
        row = await logged(session, item)
        assert row["context"] is None and "Read the settings file" not in row["prompt"]
        assert (await session.status())["context"] is None
    finally:
        await stop_session(session)


async def test_a_file_written_outside_the_editor_is_indexed(server_env, tmp_path, workspace_files):
    root = workspace_files({"helpers.py": HELPERS})
    session = await start_session(server_env, tmp_path / "ws")
    try:
        before = await indexed(session)
        (root / "pricing.py").write_text('def price_with_tax(amount, rate):\n    """Gross price."""\n    return 0\n')
        await session.wait_status(lambda s: s["context"]["symbols"] > before["symbols"])  # watchdog saw it
        header = "from pricing import price_with_tax\n\ngross = price_with_tax(10, 0.2)\n"
        _, _, _, item = await session.suggestion(name="main.py", header=header)
        row = await logged(session, item)
        assert "def price_with_tax(amount, rate):" in row["prompt"]
    finally:
        await stop_session(session)


async def test_a_large_workspace_is_bounded_and_the_server_keeps_serving(server_env, tmp_path, workspace_files,
                                                                        monkeypatch):
    monkeypatch.setenv("PLUMLINE_CONTEXT_MAX_FILES", "200")
    workspace_files({f"m{i:04d}.py": f"def helper_{i}(x):\n    return x + {i}\n" for i in range(1500)})
    session = await start_session(server_env, tmp_path / "ws")
    try:
        _, _, _, item = await session.suggestion(name="main.py")  # whether or not the scan is done
        assert item.insert_text
        context = await indexed(session, files=1)
        assert context["files"] == 200 and set(context["skipped"]) == {"limit"}
        assert context["skipped"]["limit"] >= 1300  # (and the candidate documents opened after the bound)
    finally:
        await stop_session(session)
