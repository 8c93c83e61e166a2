"""Language-server benchmark: a real LSP client over stdio replays typing on standard-library files
against `plumline serve` with the embedded model.

What it measures (targets on 2 CPU cores in brackets):

* server overhead excluding model time, p50/p95 [p95 ≤ 10 ms]: wall time of a request seen by the
  client minus the model time the server reports for it;
* time to a suggestion with the embedded model, p50/p95, single line [p50 ≤ 600 ms] and block;
* cache-hit latency, p50/p95 [p95 ≤ 5 ms]: typing the first character of a shown suggestion;
* fast typing: one request per keystroke every 40 ms, each superseding the one before; requests
  cancelled vs completed, and the latency of the request after the burst relative to a request
  made alone (≈ 1 means no request waits behind a cancelled one).

Baselines in the same run (ratios): overhead / model time, cache hit / model time, after-burst /
alone.

Run: python bench/lsp.py [--files N]   (writes bench/results/lsp.json)
The model is converted once into PLUMLINE_HOME/cache; an existing conversion in /tmp/plcache/models
(or $PLUMLINE_BENCH_MODELS) is linked instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsprotocol import types as T  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from bench.report import percentile, print_table, write_result  # noqa: E402
from lsp_server.server import plain  # noqa: E402

FILES = ["textwrap.py", "json/encoder.py", "functools.py", "shlex.py", "fnmatch.py", "glob.py", "bisect.py",
         "heapq.py", "calendar.py", "string.py", "colorsys.py", "difflib.py"]


class Bench:
    def __init__(self, client: LanguageClient, workspace: Path):
        self.client = client
        self.workspace = workspace
        self.version = 0

    def open(self, name: str, text: str) -> str:
        uri = (self.workspace / name).as_uri()
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
        return uri

    def type(self, uri: str, line: int, col: int, text: str) -> None:
        self.version += 1
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=self.version + 1),
            content_changes=[T.TextDocumentContentChangePartial(
                range=T.Range(start=T.Position(line=line, character=col), end=T.Position(line=line, character=col)),
                text=text)]))

    def ask(self, uri: str, line: int, col: int):
        return self.client.protocol.send_request_async("textDocument/inlineCompletion", T.InlineCompletionParams(
            text_document=T.TextDocumentIdentifier(uri=uri), position=T.Position(line=line, character=col),
            context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Automatic)))

    async def status(self) -> dict:
        return plain(await self.client.protocol.send_request_async("plumline/status", {}))

    async def timed(self, uri: str, line: int, col: int):
        """(items, wall ms, model ms) for one request made alone."""
        before = (await self.status())["stats"]["model_ms"]
        t0 = time.perf_counter()
        result = await self.ask(uri, line, col)
        wall = (time.perf_counter() - t0) * 1000
        model = (await self.status())["stats"]["model_ms"] - before
        return list(result.items), wall, model


def positions(text: str, *, block: bool, limit: int) -> list[tuple[int, int]]:
    """Cursor positions: the end of a statement's first word (line) or an empty function body (block)."""
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines[:-1]):
        stripped = line.strip()
        if block and stripped.startswith("def ") and stripped.endswith(":"):
            out.append((i, -1))
        elif not block and stripped and not stripped.startswith(("#", '"', "'", "def ", "class ", "@")) and " = " in stripped:
            out.append((i, line.index(" = ") + 3))
        if len(out) >= limit:
            break
    return out


async def run(n_files: int) -> dict:
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    home = Path(tempfile.mkdtemp(prefix="plumline-bench-"))
    models = Path(os.environ.get("PLUMLINE_BENCH_MODELS", "/tmp/plcache/models"))
    if models.exists():
        (home / "cache").mkdir(parents=True)
        (home / "cache" / "models").symlink_to(models)
    workspace = home / "ws"
    workspace.mkdir()
    env = dict(os.environ, PLUMLINE_HOME=str(home), PLUMLINE_CONFIG=str(home / "none.toml"), PLUMLINE_MODEL_NAME="embedded")
    client = LanguageClient("plumline-bench", "1")
    exe = shutil.which("plumline") or str(Path(sys.executable).with_name("plumline"))
    await client.start_io(exe, "serve", env=env, cwd=str(workspace))

    async def drain():  # the server logs to stderr; a full pipe would block it
        while await client._server.stderr.read(65536):
            pass

    drainer = asyncio.ensure_future(drain())
    await client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities(), root_uri=workspace.as_uri()))
    client.initialized(T.InitializedParams())
    b = Bench(client, workspace)

    line_ms, block_ms, overhead_ms, model_ms, hit_ms = [], [], [], [], []
    warm = b.open("warm.py", "import os\n\n\ndef main():\n    path = \n")
    await b.ask(warm, 4, 11)  # loads the model
    shown = []
    for name in FILES[:n_files]:
        text = (stdlib / name).read_text()
        for block in (False, True):
            for line, col in positions(text, block=block, limit=3 if block else 5):
                lines = text.split("\n")
                if block:  # cut the file after the def line: an empty body, cursor indented
                    indent = " " * (len(lines[line]) - len(lines[line].lstrip()) + 4)
                    doc = "\n".join(lines[: line + 1]) + "\n" + indent + "\n" + "\n".join(lines[line + 1:])
                    line, col = line + 1, len(indent)
                else:
                    doc = "\n".join(lines[:line] + [lines[line][:col]] + lines[line + 1:])
                uri = b.open(f"{name.replace('/', '_')}-{line}-{int(block)}.py", doc)
                items, wall, model = await b.timed(uri, line, col)
                (block_ms if block else line_ms).append(wall)
                if model > 0:
                    overhead_ms.append(wall - model)
                    model_ms.append(model)
                if items and not block and len(items[0].insert_text) > 1:
                    shown.append((uri, line, col, items[0].insert_text))
    # cache hits: type the first character of a shown suggestion
    for uri, line, col, text in shown:
        b.type(uri, line, col, text[0])
        t0 = time.perf_counter()
        result = await b.ask(uri, line, col + 1)
        hit_ms.append((time.perf_counter() - t0) * 1000)
        assert result.items and result.items[0].insert_text == text[1:], "typing along was not served from cache"
    # fast typing: a keystroke every 40 ms, a request per keystroke, nobody waits for answers
    text = (stdlib / "textwrap.py").read_text()
    lines = text.split("\n")
    target = next(i for i, ln in enumerate(lines) if ln.strip().startswith("def ") and i > 50)
    body = lines[target + 1]
    doc = "\n".join(lines[: target + 1] + [""] + lines[target + 2:])
    uri = b.open("burst.py", doc)
    before = (await b.status())["stats"]
    futures, col = [], 0
    for ch in body[:30]:
        b.type(uri, target + 1, col, ch)
        col += 1
        futures.append(asyncio.ensure_future(b.ask(uri, target + 1, col)))
        await asyncio.sleep(0.04)
    t0 = time.perf_counter()
    results = await asyncio.gather(*futures, return_exceptions=True)
    last_after_burst = (time.perf_counter() - t0) * 1000
    after = (await b.status())["stats"]
    answered = sum(1 for r in results if not isinstance(r, Exception) and r.items)
    # the same request made alone (new document, same text) for the ratio
    uri2 = b.open("alone.py", doc[:0] + "\n".join(lines[: target + 1] + [body[:30]] + lines[target + 2:]))
    _, alone_ms, _ = await b.timed(uri2, target + 1, min(30, len(body)))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    drainer.cancel()
    shutil.rmtree(home, ignore_errors=True)

    model_p50 = percentile(model_ms, 0.5)
    return {
        "requests": {"single_line": len(line_ms), "block": len(block_ms), "cache_hits": len(hit_ms)},
        "server_overhead_ms": {"p50": percentile(overhead_ms, 0.5), "p95": percentile(overhead_ms, 0.95)},
        "model_ms": {"p50": model_p50, "p95": percentile(model_ms, 0.95)},
        "single_line_ms": {"p50": percentile(line_ms, 0.5), "p95": percentile(line_ms, 0.95)},
        "block_ms": {"p50": percentile(block_ms, 0.5), "p95": percentile(block_ms, 0.95)},
        "cache_hit_ms": {"p50": percentile(hit_ms, 0.5), "p95": percentile(hit_ms, 0.95)},
        "fast_typing": {
            "keystrokes": len(futures),
            "cancelled": after["cancelled"] - before["cancelled"],
            "completed": after["completed"] - before["completed"],
            "answered_with_items": answered,
            "wait_after_last_keystroke_ms": last_after_burst,
            "alone_ms": alone_ms,
        },
        "ratios": {
            "overhead_p95_over_model_p50": percentile(overhead_ms, 0.95) / model_p50 if model_p50 else None,
            "cache_hit_p95_over_model_p50": percentile(hit_ms, 0.95) / model_p50 if model_p50 else None,
            "after_burst_over_alone": last_after_burst / alone_ms if alone_ms else None,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=6, help="how many stdlib files to replay")
    args = parser.parse_args()
    figures = asyncio.run(run(args.files))
    f = figures
    rows = [
        ("server overhead p50 / p95 (ms)", f["server_overhead_ms"]["p50"], f["server_overhead_ms"]["p95"], "p95 ≤ 10"),
        ("single line p50 / p95 (ms)", f["single_line_ms"]["p50"], f["single_line_ms"]["p95"], "p50 ≤ 600"),
        ("block p50 / p95 (ms)", f["block_ms"]["p50"], f["block_ms"]["p95"], ""),
        ("model time p50 / p95 (ms)", f["model_ms"]["p50"], f["model_ms"]["p95"], ""),
        ("cache hit p50 / p95 (ms)", f["cache_hit_ms"]["p50"], f["cache_hit_ms"]["p95"], "p95 ≤ 5"),
        ("fast typing: cancelled / completed", f["fast_typing"]["cancelled"], f["fast_typing"]["completed"],
         f"{f['fast_typing']['keystrokes']} keystrokes"),
        ("after burst / alone (ms)", f["fast_typing"]["wait_after_last_keystroke_ms"], f["fast_typing"]["alone_ms"],
         "ratio ≈ 1: no wait behind cancelled"),
    ]
    print_table("plumline serve (embedded model, stdio)", [(a, b, c, d) for a, b, c, d in rows])
    print(f"wrote {write_result('lsp', figures)}")


if __name__ == "__main__":
    main()
