"""`plumline serve` as an editor sees it: a real stdio client, the tiny model, the store's rows.

One guarantee per test; no timing asserts (speed lives in bench/lsp.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess

import pytest
from lsprotocol import types as T
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound

from tests.lsp.conftest import completion_id, item_json, server_command, start_session, stop_session



async def test_capabilities_follow_the_protocol(session):
    caps = session.init.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert "plumline.accept" in caps.execute_command_provider.commands
    assert caps.text_document_sync.change == T.TextDocumentSyncKind.Incremental


async def test_suggestion_life_is_recorded_with_its_adapter(session):
    uri, line, col, item = await session.suggestion()
    cid = completion_id(item)
    assert item.range.start == T.Position(line=line, character=col)
    session.notify("textDocument/didShowCompletion", {"item": item_json(item)})
    # accept: the client inserts the text, then runs the item's command
    session.edit(uri, line, col, item.insert_text)
    await session.client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="plumline.accept", arguments=[cid]))
    # the user rewrites the last two characters of it
    end = col + len(item.insert_text)
    session.edit(uri, line, end - 2, "ZZ", end=(line, end))
    rows = await session.wait_rows("select * from events where completion_id = ? and kind = 'persist' order by id",
                                   [cid], at_least=2)
    row = next(session.store.rows("select * from completions where id = ?", [cid]))
    assert row["adapter_id"] == "base" and row["model"] and row["latency_ms"] > 0
    assert row["language"] == "python" and row["relpath"] == uri.rsplit("/", 1)[-1]
    assert row["text"] == item.insert_text and row["prefix"]
    kinds = [r["kind"] for r in session.store.rows("select kind from events where completion_id = ? order by id", [cid])]
    assert kinds[:2] == ["shown", "accepted"]
    assert [json.loads(r["detail"])["after_s"] for r in rows] == [0.5, 1.0]
    assert all(0 < r["value"] < 1 and r["adapter_id"] == "base" for r in rows)


async def test_cancel_request_is_answered_and_server_keeps_serving(server_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PLUMLINE_SERVER_DEBOUNCE_MS", "2000")  # the request is surely still waiting when its cancel arrives
    session = await start_session(server_env, tmp_path / "ws")
    try:
        uri = session.open("c.py", "def f(x):\n    \n")
        future = session.client.protocol.send_request("textDocument/inlineCompletion", session.params(uri, 1, 4),
                                                      msg_id=4242)
        session.client.cancel_request(T.CancelParams(id=4242))
        with pytest.raises(JsonRpcException) as cancelled:
            await asyncio.wrap_future(future)
        assert cancelled.value.code == -32800  # RequestCancelled
        assert isinstance(await session.ask(uri, 1, 4), list)
        assert (await session.status())["queueDepth"] == 0
    finally:
        await stop_session(session)


async def test_newer_request_supersedes_older_one(server_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PLUMLINE_SERVER_DEBOUNCE_MS", "500")
    session = await start_session(server_env, tmp_path / "ws")
    try:
        uri, line, col, item = await session.suggestion()
        first = asyncio.ensure_future(session.ask(uri, 0, 0))
        await asyncio.sleep(0.1)
        second = await session.ask(uri, line, col)
        assert await first == []  # replaced while it waited: answered empty
        assert second and completion_id(second[0]) == completion_id(item)
        # a suggestion replaced by a newer request for another place is marked superseded
        await session.ask(uri, 0, 0)
        rows = await session.wait_rows("select * from events where completion_id = ? and kind = 'superseded'",
                                       [completion_id(item)])
        assert len(rows) == 1
    finally:
        await stop_session(session)


async def test_typing_along_a_suggestion_is_served_from_cache(session):
    uri, line, col, item = await session.suggestion()
    typed = item.insert_text[:1]
    session.edit(uri, line, col, typed)
    items = await session.ask(uri, line, col + 1)
    assert items[0].insert_text == item.insert_text[1:]
    assert completion_id(items[0]) == completion_id(item)
    assert (await session.status())["stats"]["cache_hits"] == 1


def _write_adapter(model_dir, folder) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(folder)


async def test_promoted_adapter_serves_the_next_suggestions(session, tiny_model_dir):
    from agent.adapters import set_current

    await session.suggestion()
    adapters = session.home / "adapters"
    _write_adapter(tiny_model_dir, adapters / "a1")
    set_current(adapters, "a1")
    uri = session.open("after.py", "import os\nx = \n")
    for _ in range(200):
        if (await session.status())["adapter"] == "a1":
            break
        await asyncio.sleep(0.1)
    assert (await session.status())["adapter"] == "a1"
    for i, text in enumerate(["import os\nx = ", "values = [", "result = {", "print("]):
        uri = session.open(f"after{i}.py", text + "\n")
        if await session.ask(uri, text.count("\n"), len(text.rsplit("\n", 1)[-1])):
            break
    rows = await session.wait_rows("select adapter_id from completions order by created_at desc limit 1")
    assert rows[0]["adapter_id"] == "a1"


async def test_corrupt_adapter_is_refused_and_base_keeps_serving(session):
    await session.suggestion()  # the model is loaded and its start-up adapter check is done
    adapters = session.home / "adapters"
    bad = adapters / "broken"
    bad.mkdir(parents=True)
    (bad / "adapter_config.json").write_text("{not json")
    (adapters / ".CURRENT.new").write_text("broken\n")
    os.replace(adapters / ".CURRENT.new", adapters / "CURRENT")  # promoted as the registry does it
    # the watcher saw CURRENT change and the server handled it: only then does "base" prove anything
    status = await session.wait_status(lambda s: s["stats"]["adapter_changes"] >= 1)
    assert status["stats"]["adapters_refused"] >= 1 and status["adapter"] == "base"
    uri, line, col, item = await session.suggestion("after.py")
    rows = await session.wait_rows("select adapter_id from completions where id = ?", [completion_id(item)])
    assert rows[0]["adapter_id"] == "base"


async def test_excluded_file_is_never_stored(session):
    secret = "API_TOKEN = 'do-not-store-me'\n"
    for name in (".env", "my_secret.py"):
        uri = session.open(name, secret + "name = 'abc'\nif name\n")
        items = await session.ask(uri, 2, 7)
        if items:
            await session.client.workspace_execute_command_async(
                T.ExecuteCommandParams(command="plumline.accept", arguments=[completion_id(items[0])]))
    await session.suggestion()  # a normal file is stored, so the store is written to
    await session.wait_rows("select id from completions")
    dump = "\n".join(session.store.db.iterdump())
    assert "do-not-store-me" not in dump and ".env" not in dump and "my_secret" not in dump


async def test_secret_in_context_is_scrubbed(session):
    token = "ghp_" + "a1B2c3D4e5" * 4
    uri, *_ = await session.suggestion("keys.py", header=f"GITHUB = '{token}'\n")
    rows = await session.wait_rows("select prefix from completions where uri = ?", [uri])
    assert rows and "<redacted:github-token>" in rows[0]["prefix"]
    assert token not in "\n".join(session.store.db.iterdump())


async def test_position_past_end_gets_an_empty_answer(session):
    uri = session.open("short.py", "x = 1\n")
    assert await session.ask(uri, 40, 0) == []
    assert await session.ask(uri, 0, 99) == []
    assert (await session.status())["version"]


async def test_change_before_open_is_ignored(session):
    uri = session.uri("never_opened.py")
    session.edit(uri, 0, 0, "x")
    assert await session.ask(uri, 0, 0) == []
    assert (await session.status())["version"]


async def test_unknown_method_gets_method_not_found(session):
    with pytest.raises(JsonRpcMethodNotFound):
        await session.request("plumline/noSuchThing", {})
    session.notify("plumline/noSuchNotification", {"x": 1})
    session.notify("textDocument/didShowCompletion", {"item": {"command": {"arguments": ["no-such-id"]}}})
    session.notify("textDocument/didShowCompletion", {"bogus": True})
    assert (await session.status())["version"]


async def test_malformed_json_does_not_crash_the_server(session):
    body = b'{"jsonrpc": "2.0", "id": 7, "method": '
    session.client._server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    await asyncio.sleep(0.2)
    assert (await session.status())["version"]


async def test_telemetry_query_never_changes_the_switch(session):
    for params in ({}, {"enabled": None}, None):  # asked, as a request, three ways
        assert (await session.request("plumline/telemetry", params)).enabled is True
    session.notify("plumline/telemetry", {})  # asked as a notification
    assert (await session.status())["telemetry"] is True
    uri, *_ = await session.suggestion("still_on.py")
    assert await session.wait_rows("select id from completions where uri = ?", [uri])


async def test_telemetry_off_stores_nothing_until_turned_on(session):
    assert (await session.request("plumline/telemetry", {"enabled": False})).enabled is False
    await session.suggestion("off.py")
    assert (await session.request("plumline/telemetry", {"enabled": True})).enabled is True
    uri, *_ = await session.suggestion("on.py")
    await session.wait_rows("select id from completions where uri = ?", [uri])  # written again, in order...
    assert list(session.store.rows("select id from completions where uri like '%off.py'")) == []  # ...none while off


async def test_telemetry_value_that_is_not_a_boolean_is_refused(session):
    with pytest.raises(JsonRpcException) as refused:
        await session.request("plumline/telemetry", {"enabled": "off"})
    assert refused.value.code == -32602 and "true, false or absent" in refused.value.message
    assert (await session.status())["telemetry"] is True


async def test_same_context_in_two_files_gets_a_suggestion_each(session):
    uri_a, line, col, item_a = await session.suggestion("a.py")
    uri_b = session.open("b.py", session.texts[uri_a])
    items = await session.ask(uri_b, line, col)
    assert items and completion_id(items[0]) != completion_id(item_a)
    item_b = items[0]
    session.edit(uri_b, line, col, item_b.insert_text)
    await session.client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="plumline.accept", arguments=[completion_id(item_b)]))
    by_file = ("select c.relpath, e.completion_id from events e join completions c on c.id = e.completion_id "
               "where e.kind = ?")
    accepted = await session.wait_rows(by_file, ["accepted"])
    assert [(r["relpath"], r["completion_id"]) for r in accepted] == [("b.py", completion_id(item_b))]
    persisted = await session.wait_rows(by_file, ["persist"], at_least=2)
    assert {r["relpath"] for r in persisted} == {"b.py"}  # followed in the file it was accepted in


def _editor_dies(session, how: str) -> None:
    server = session.client._server
    if how == "pipes close":  # the editor crashed: its ends of the server's stdin and stdout are gone
        server.stdin.close()
        server._transport.get_pipe_transport(1).close()
    else:  # the editor quit without shutdown/exit and terminated its server
        server.send_signal(signal.SIGTERM)


@pytest.mark.parametrize("how", ["pipes close", "SIGTERM"])
async def test_accept_just_before_the_editor_dies_is_stored(server_env, tmp_path, how):
    session = await start_session(server_env, tmp_path / "ws")
    try:
        uri, line, col, item = await session.suggestion()
        cid = completion_id(item)
        await session.wait_rows("select id from completions where id = ?", [cid])
        # another process holds the store's write lock, so the server's writes queue up behind it
        blocker = sqlite3.connect(server_env / "plumline.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            session.notify("textDocument/didShowCompletion", {"item": item_json(item)})
            await session.client.workspace_execute_command_async(
                T.ExecuteCommandParams(command="plumline.accept", arguments=[cid]))
            _editor_dies(session, how)
            await session.wait_log("exiting: recording")  # the server is on its way out, the accept still queued
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await asyncio.wait_for(session.client._server.wait(), 60)
    finally:
        await session.client.stop()
    kinds = [r["kind"] for r in session.store.rows("select kind from events where completion_id = ? order by id", [cid])]
    assert kinds[-2:] == ["shown", "accepted"]


async def test_persistence_follows_the_file_on_disk(server_env, tmp_path, monkeypatch):
    monkeypatch.setenv("PLUMLINE_SERVER_PERSISTENCE_CHECKS", "3,4")  # room for the disk write under load
    session = await start_session(server_env, tmp_path / "ws")
    try:
        await _rewrite_on_disk(session)
    finally:
        await stop_session(session)


async def _rewrite_on_disk(session):
    uri, line, col, item = await session.suggestion()
    cid = completion_id(item)
    session.edit(uri, line, col, item.insert_text)
    await session.client.workspace_execute_command_async(
        T.ExecuteCommandParams(command="plumline.accept", arguments=[cid]))
    await session.status()  # the accept and the edit are handled
    session.client.text_document_did_close(T.DidCloseTextDocumentParams(text_document=T.TextDocumentIdentifier(uri=uri)))
    path = session.workspace / uri.rsplit("/", 1)[-1]
    text = path.read_text() if path.exists() else ""
    # outside the editor, the whole line holding the suggestion is deleted
    lines = (text or "").split("\n")
    path.write_text("\n".join(lines[:line]) + "\n# rewritten\n")
    rows = await session.wait_rows("select value from events where completion_id = ? and kind = 'persist'",
                                   [cid], at_least=2)
    assert rows[-1]["value"] < 0.5


def test_serve_check_prints_model_and_adapter(server_env):
    out = subprocess.run(server_command() + ["--check"], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["adapter"] == "base" and report["model"] and report["backend"] == "transformers"
