"""A real `plumline serve` subprocess on the tiny model, driven by pygls's LanguageClient over stdio.

``session`` starts the server with the ``tiny_env`` home, short persistence checks (0.5 s, 1 s) and
a workspace folder; ``Session`` has the few editor actions the tests need (open, type, ask,
notify). The server works on its own threads, so tests wait for a state that proves something
happened, with a deadline, never for a time: ``wait_rows`` polls the store, ``wait_status`` the
server's ``plumline/status``, ``wait_log`` its log (stderr, copied to ``server.log``).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

from agent.store import Store

# Documents where the (random, greedy) tiny model makes a suggestion of a few characters that
# survives the post-filters; the helpers try them in order.
CANDIDATES = [
    "name = 'abc'\nif name",
    "import os\n\n\ndef f(x):\n    y = x +",
    "import os\nresult = {",
    "import os\nvalues = [",
]


def server_command() -> list[str]:
    exe = shutil.which("plumline") or str(Path(sys.executable).with_name("plumline"))
    return [exe, "serve"]


@dataclass
class Session:
    client: LanguageClient
    home: Path
    workspace: Path
    init: T.InitializeResult
    versions: dict
    texts: dict = field(default_factory=dict)  # uri -> the text it was opened with

    @property
    def log_path(self) -> Path:
        return self.workspace.parent / "server.log"

    @property
    def store(self) -> Store:
        return Store(self.home / "plumline.db")

    def uri(self, name: str) -> str:
        return (self.workspace / name).as_uri()

    def open(self, name: str, text: str, language: str = "python") -> str:
        uri = self.uri(name)
        self.versions[uri] = 1
        self.texts[uri] = text
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))
        return uri

    def edit(self, uri: str, line: int, col: int, text: str, end: tuple[int, int] | None = None) -> None:
        """Replace [line:col, end) (an insertion when end is None) with text, like a keystroke."""
        self.versions[uri] = self.versions.get(uri, 0) + 1
        end_line, end_col = end or (line, col)
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
            content_changes=[T.TextDocumentContentChangePartial(
                range=T.Range(start=T.Position(line=line, character=col), end=T.Position(line=end_line, character=end_col)),
                text=text)]))

    def params(self, uri: str, line: int, col: int) -> T.InlineCompletionParams:
        return T.InlineCompletionParams(
            text_document=T.TextDocumentIdentifier(uri=uri), position=T.Position(line=line, character=col),
            context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Automatic))

    async def ask(self, uri: str, line: int, col: int) -> list[T.InlineCompletionItem]:
        result = await self.client.text_document_inline_completion_async(self.params(uri, line, col))
        return list(result.items if isinstance(result, T.InlineCompletionList) else result or [])

    async def request(self, method: str, params=None):
        return await self.client.protocol.send_request_async(method, params)

    def notify(self, method: str, params) -> None:
        self.client.protocol.notify(method, params)

    async def status(self) -> dict:
        return _plain(await self.request("plumline/status", {}))

    async def suggestion(self, name: str = "mod.py", header: str = "") -> tuple[str, int, int, T.InlineCompletionItem]:
        """Open a candidate document (``header`` first) and return (uri, line, col, item) for the
        first candidate where the tiny model suggests at least 3 characters."""
        for i, text in enumerate(CANDIDATES):
            text = header + text
            uri = self.open(f"{i}-{name}", text + "\n")
            line = text.count("\n")
            col = len(text.rsplit("\n", 1)[-1])
            items = await self.ask(uri, line, col)
            if items and len(items[0].insert_text.strip()) >= 3:
                return uri, line, col, items[0]
        pytest.fail("the tiny model made no usable suggestion for any candidate document")

    async def wait_rows(self, sql: str, params=(), *, at_least: int = 1, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < deadline:
            store = self.store
            try:
                rows = list(store.rows(sql, params))
            finally:
                store.close()
            if len(rows) >= at_least:
                return rows
            await asyncio.sleep(0.1)
        return rows

    async def wait_status(self, ready, *, timeout: float = 30.0) -> dict:
        """The first ``plumline/status`` for which ``ready(status)`` holds; fails at the deadline."""
        deadline = time.monotonic() + timeout
        status = await self.status()
        while not ready(status):
            if time.monotonic() > deadline:
                pytest.fail(f"the server never reached the awaited state; last status: {status}")
            await asyncio.sleep(0.1)
            status = await self.status()
        return status

    async def wait_log(self, text: str, *, timeout: float = 30.0) -> None:
        """Until the server's log holds ``text``; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while text not in (self.log_path.read_text(errors="replace") if self.log_path.exists() else ""):
            if time.monotonic() > deadline:
                pytest.fail(f"the server never logged {text!r}")
            await asyncio.sleep(0.05)


def _plain(value):
    from lsp_server.server import plain

    return plain(value)


def completion_id(item: T.InlineCompletionItem) -> str:
    return item.command.arguments[0]


def item_json(item: T.InlineCompletionItem) -> dict:
    return {"insertText": item.insert_text, "command": {"command": item.command.command,
                                                        "arguments": list(item.command.arguments)}}


def drain_stderr(client: LanguageClient, log_path: Path) -> None:
    """Copy the server's stderr (its log) to a file, so a full pipe never blocks the server."""

    async def copy():
        with open(log_path, "ab") as fh:
            while chunk := await client._server.stderr.read(65536):
                fh.write(chunk)
                fh.flush()  # wait_log reads it while the server runs

    client._async_tasks.append(asyncio.ensure_future(copy()))


async def start_session(home: Path, workspace: Path) -> Session:
    workspace.mkdir(parents=True, exist_ok=True)
    client = LanguageClient("plumline-tests", "1")
    cmd = server_command()
    await client.start_io(cmd[0], *cmd[1:], env=dict(os.environ), cwd=str(workspace))
    drain_stderr(client, workspace.parent / "server.log")
    init = await asyncio.wait_for(client.initialize_async(T.InitializeParams(
        capabilities=T.ClientCapabilities(), root_uri=workspace.as_uri(),
        workspace_folders=[T.WorkspaceFolder(uri=workspace.as_uri(), name="ws")])), 120)
    client.initialized(T.InitializedParams())
    return Session(client, home, workspace, init, {})


async def stop_session(session: Session) -> None:
    try:
        await asyncio.wait_for(session.client.shutdown_async(None), 30)
        session.client.exit(None)
    finally:
        await session.client.stop()


@pytest.fixture
def server_env(tiny_env, monkeypatch) -> Path:
    """tiny_env plus persistence checks short enough for a test."""
    monkeypatch.setenv("PLUMLINE_SERVER_PERSISTENCE_CHECKS", "0.5,1")
    return tiny_env


@pytest_asyncio.fixture
async def session(server_env, tmp_path):
    s = await start_session(server_env, tmp_path / "ws")
    yield s
    await stop_session(s)
