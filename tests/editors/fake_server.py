"""A stand-in for `plumline serve` that speaks the same protocol (docs/protocol.md) with a fixed
suggestion and writes every message it gets from the editor to a JSON-lines file.

Why: the editor tests check the exact notifications an editor sends (shown, partial, dismissed,
accept) without depending on what a model happens to generate. The end-to-end tests against the
real server and its store live beside it (test_nvim.py).

Run: `python tests/editors/fake_server.py LOG.jsonl` (stdio). The suggestion it offers is
FAKE_SUGGESTION, inserted at the cursor, after FAKE_PLUMLINE_DELAY_S seconds (default 0); a request
the editor cancels meanwhile is logged as "$/cancelRequest".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer

FAKE_SUGGESTION = "return a + b\n    # done"
DELAY_S = float(os.environ.get("FAKE_PLUMLINE_DELAY_S", "0"))


class FakePlumline(LanguageServer):
    """Answers every inline completion with FAKE_SUGGESTION and logs what the editor reports."""

    def __init__(self, log_path: str):
        super().__init__("fake-plumline", "0.0-test")
        self.log_path = log_path
        self.served = 0
        self.telemetry = True

    def log(self, method: str, params: Any) -> None:
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"method": method, "params": _plain(params)}) + "\n")


def _plain(value: Any) -> Any:
    """pygls hands custom params over as attribute objects; turn them back into JSON values."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        from lsprotocol.converters import get_converter

        return get_converter().unstructure(value)
    return value


server = FakePlumline(sys.argv[1] if len(sys.argv) > 1 else "/dev/null")


@server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: FakePlumline, params: types.InlineCompletionParams):
    ls.log("textDocument/inlineCompletion", params)
    if DELAY_S:
        try:
            await asyncio.sleep(DELAY_S)  # a slow model, so the editor has time to cancel
        except asyncio.CancelledError:
            ls.log("$/cancelRequest", {"position": _plain(params.position)})
            raise
    ls.served += 1
    pos = params.position
    return types.InlineCompletionList(items=[types.InlineCompletionItem(
        insert_text=FAKE_SUGGESTION,
        range=types.Range(start=pos, end=pos),
        command=types.Command(title="plumline: accepted", command="plumline.accept",
                              arguments=[f"fake-{ls.served}"]),
    )])


@server.command("plumline.accept")
def accept(ls: FakePlumline, *args: Any):
    ls.log("workspace/executeCommand", {"command": "plumline.accept", "arguments": _plain(list(args))})
    return None


@server.feature("textDocument/didShowCompletion")
def did_show(ls: FakePlumline, params: Any):
    ls.log("textDocument/didShowCompletion", params)


@server.feature("textDocument/didPartiallyAcceptCompletion")
def did_partial(ls: FakePlumline, params: Any):
    ls.log("textDocument/didPartiallyAcceptCompletion", params)


@server.feature("plumline/didDismissCompletion")
def did_dismiss(ls: FakePlumline, params: Any):
    ls.log("plumline/didDismissCompletion", params)


@server.feature("plumline/status")
def status(ls: FakePlumline, params: Any):
    return {"model": "fake", "adapter": "base", "backend": "fake", "queueDepth": 0,
            "telemetry": ls.telemetry, "version": "0.0-test"}


@server.feature("plumline/telemetry")
def telemetry(ls: FakePlumline, params: Any):
    enabled = _plain(params).get("enabled") if params is not None else None
    if isinstance(enabled, bool):  # as the real server: set when told, else only report
        ls.telemetry = enabled
    ls.log("plumline/telemetry", params)
    return {"enabled": ls.telemetry}


if __name__ == "__main__":
    server.start_io()
