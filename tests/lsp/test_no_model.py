"""`plumline serve` without a usable model tells the editor what to do, in the editor's own log.

An editor starts the server itself, so its stderr is out of sight (Neovim's LSP log, VS Code's
output panel if one looks). When the model does not load, the server says so with
``window/showMessage`` (a popup) and ``window/logMessage`` (the editor's LSP log): the load error,
which names what to install, and `plumline doctor`. A real server subprocess, a real pygls client.
"""

from __future__ import annotations

import asyncio
import os
import time

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

from tests.lsp.conftest import drain_stderr, server_command


async def test_a_server_without_a_model_says_what_to_install_in_the_editor(plumline_home, tmp_path, monkeypatch):
    not_a_model = tmp_path / "not-a-model"  # a folder, but no model in it
    not_a_model.mkdir()
    monkeypatch.setenv("PLUMLINE_MODEL_NAME", str(not_a_model))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    client = LanguageClient("plumline-tests", "1")
    shown: list[T.ShowMessageParams] = []
    logged: list[T.LogMessageParams] = []
    client.feature(T.WINDOW_SHOW_MESSAGE)(lambda params: shown.append(params))
    client.feature(T.WINDOW_LOG_MESSAGE)(lambda params: logged.append(params))
    cmd = server_command()
    await client.start_io(cmd[0], *cmd[1:], env=dict(os.environ), cwd=str(workspace))
    drain_stderr(client, tmp_path / "server.log")
    try:
        await asyncio.wait_for(client.initialize_async(T.InitializeParams(
            capabilities=T.ClientCapabilities(), root_uri=workspace.as_uri())), 120)
        client.initialized(T.InitializedParams())
        deadline = time.monotonic() + 60
        while not (shown and logged) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert shown and logged, f"no message reached the editor; server log:\n{(tmp_path / 'server.log').read_text()}"
        for message in (shown[0], logged[0]):
            assert message.type == T.MessageType.Error
            assert "config.json" in message.message          # the load error itself: what is wrong
            assert "plumline doctor" in message.message      # and where to learn what to install
            assert "pip install 'plumline[embedded]'" in message.message
    finally:
        try:
            await asyncio.wait_for(client.shutdown_async(None), 30)
            client.exit(None)
        finally:
            await client.stop()
