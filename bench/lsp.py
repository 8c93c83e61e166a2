"""Language-server benchmark: a real LSP client over stdio replays a developer typing through
standard-library files, against `plumline serve` on each engine in turn (never two at once).

    python bench/lsp.py                      # the new default and the previous one (about 12 min on 2 cores)
    python bench/lsp.py --files 2 --lines 4  # shorter
    python bench/lsp.py --plan               # print the replay's requests and exit (no server)
    python bench/lsp.py --engines qwen-llamacpp,smollm2-transformers,qwen-transformers

The replay, per file (``plan_file``):

1. open the file's first lines, up to a function header, with a hole of --lines lines cut out at
   an earlier function header (at least JUMP_LINES above, so in another prompt window);
2. type the next --lines lines at the end of the file, keystroke by keystroke (one ``didChange``
   each; Enter and the indentation as one change, as editors insert them), in bursts of a word and
   the spaces after it. After each burst: a pause of --pause-ms (the editor's debounce), then an
   inline completion request at the cursor, answered before typing goes on (the developer looks
   at it). Also at the start of each new line; there the server suggests a block when the line
   starts an empty function body (``empty_function_body``). No request is made at the start of
   other ``:`` bodies, nor with the cursor right after a ``:`` (a block for every ``if`` would
   dominate the run);
3. jump to the hole and type its lines the same way, now with code after the cursor (a FIM suffix).

Cold: the first request in a newly opened file and the first after the jump. Warm: the rest. A
warm request answered from the server's suggestion cache (the word typed was the start of the
suggestion shown) is a cache hit, reported apart. "single line" and "block" are the model's
answers to warm requests: the targets' figures. "line right after a block" are the warm line
requests that follow a block request: where lines and blocks use different prompt formats
(``model.prompt_format = "line=fim;block=chat"``), a block evicts the line prompt from the engine's
prefix cache, and these show it.

Per request: wall time at the client; the model time, the prompt's tokens and how many of them the
model processed (the rest came from its prefix cache), from ``plumline/status`` counters read after
each request (only llama.cpp reports token counts). Per engine also: the time to the first
suggestion after start (model load included), the server's overhead (wall - model time), fast
typing (a request per keystroke every 40 ms in a newly opened file, each superseding the one
before; the wait after the burst against the same request made by a slow typist, ``fast_typing``), and how many line suggestions were exactly the rest of
the line being typed.

Engines (``ENGINES``), each in its own temporary PLUMLINE_HOME whose model cache is a link to
``$PLUMLINE_BENCH_MODELS`` or else the data home's ``cache/models`` (nothing is converted twice; a
model is converted there on first use). ``model.backend`` is set explicitly, so no engine
measurement runs. Cross-file context is off unless --cross-file: the replay's workspace is
unrelated stdlib files, and issue 10's targets are for the current file's 500-token window.

Baseline: SmolLM2-135M-Instruct on transformers, the previous default; ratios are engine /
baseline (< 1: faster). Targets (issue 10; 2 cores; model.context_tokens = 512): warm single line
p50 <= 400 ms, block p50 <= 2.5 s. Other jobs share the cores: the load average at start and end
is recorded with the figures.

Writes bench/results/lsp.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lsprotocol import types as T  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

from agent.models.prompts import decide_mode  # noqa: E402
from bench.report import percentile, print_table, write_result  # noqa: E402
from lsp_server.server import plain  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# In this order; code-dense files first (a docstring's prose is typed too, word by word).
FILES = ["shlex.py", "heapq.py", "string.py", "csv.py", "glob.py", "calendar.py", "pprint.py", "textwrap.py",
         "json/encoder.py", "functools.py", "tokenize.py", "gettext.py"]
JUMP_LINES = 64       # the hole lies at least this far above where typing starts: two 32-line windows
MIN_PREFIX_CHARS = 2400  # text above each typing place: more than a 512-token window holds
TARGETS = {"single_line_p50_ms": 400, "block_p50_ms": 2500}
COUNTERS = ("model_ms", "cache_hits", "completed", "prompt_tokens", "prompt_tokens_processed",
            "requests_with_token_counts")


@dataclass(frozen=True)
class Engine:
    key: str
    model: str    # model.name
    backend: str  # model.backend
    label: str
    dtype: str = "auto"  # model.dtype (transformers only; llama.cpp runs the GGUF's Q4_K_M)


ENGINES = {e.key: e for e in (
    Engine("qwen-llamacpp", "embedded", "llamacpp", "Qwen2.5-Coder-0.5B-Instruct, llama.cpp (the new default)"),
    Engine("smollm2-transformers", "smollm2", "transformers", "SmolLM2-135M-Instruct, transformers (the previous default)"),
    Engine("qwen-transformers", "embedded", "transformers", "Qwen2.5-Coder-0.5B-Instruct, transformers"),
    Engine("smollm2-transformers-fp32", "smollm2", "transformers", "SmolLM2-135M-Instruct, transformers, fp32",
           "float32"),
)}
BASELINE = "smollm2-transformers"


def bench_home(prefix: str) -> Path:
    """A temporary PLUMLINE_HOME whose model cache is the shared one (linked, converted at most once)."""
    from agent.config import data_home

    source = Path(os.environ.get("PLUMLINE_BENCH_MODELS") or data_home() / "cache" / "models")
    source.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix=prefix))
    (home / "cache").mkdir()
    (home / "cache" / "models").symlink_to(source.resolve())
    return home


def engine_env(engine: Engine, home: Path, *, context_tokens: int, cross_file: bool) -> dict:
    """The environment of one engine's server: the user's PLUMLINE_* settings left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUMLINE_")}
    env.update(PLUMLINE_HOME=str(home), PLUMLINE_CONFIG=str(home / "none.toml"), PLUMLINE_MODEL_NAME=engine.model,
               PLUMLINE_MODEL_BACKEND=engine.backend, PLUMLINE_MODEL_DTYPE=engine.dtype,
               PLUMLINE_MODEL_CONTEXT_TOKENS=str(context_tokens),
               PLUMLINE_CONTEXT_ENABLED="true" if cross_file else "false")
    return env


# -- the replay's plan (no server) ----------------------------------------------------------------

DEF = re.compile(r"\s*(async\s+)?def\s")
# A burst: Enter(s) with the new line's indentation, or a word and the spaces after it.
BURST = re.compile(r"(?:\n[ \t]*)+|[^\S\n]*\S+[^\S\n]*")


@dataclass(frozen=True)
class FilePlan:
    name: str
    opened: list[str]    # the lines the file is opened with (the hole already cut out)
    at_end: list[str]    # typed at the end of the file
    hole_at: int         # where the jump goes: the hole's first line, in ``opened``
    in_hole: list[str]   # typed there


def plan_file(name: str, source: str, n_lines: int) -> FilePlan | None:
    """Typing places at two function headers JUMP_LINES apart, each with a full window above it."""
    lines = source.split("\n")
    headers = [i for i, line in enumerate(lines) if DEF.match(line)]
    enough = [i for i in headers if len("\n".join(lines[:i])) >= MIN_PREFIX_CHARS]
    for hole in enough:
        for end in enough:
            if end - (hole + n_lines) >= JUMP_LINES and end + n_lines <= len(lines):
                return FilePlan(name, lines[:hole] + lines[hole + n_lines:end], lines[end:end + n_lines], hole,
                                lines[hole:hole + n_lines])
    return None


def bursts(typed: list[str]) -> list[str]:
    """The keystroke bursts that type ``typed`` after the end of a line."""
    text = "\n" + "\n".join(typed)
    out = BURST.findall(text)
    assert "".join(out) == text, "bursts must cover the text"
    return out


def empty_function_body(prefix: str) -> bool:
    """The cursor is on a blank line that starts a function's body: right after its ``def ...:``
    header (which may span lines) or after its docstring."""
    *above, current = prefix.split("\n")
    above = [line for line in above if line.strip()]
    if current.strip() or not above:
        return False
    last = above[-1].rstrip()
    if last.endswith(('"""', "'''")):
        return True
    if not last.endswith(":"):
        return False
    for k, line in enumerate(reversed(above[-6:])):
        if DEF.match(line):
            return True
        if k and line.rstrip().endswith(":"):
            return False
    return False


def asks(prefix: str, suffix: str) -> str | None:
    """The mode of the request the developer's pause makes here, or None for no request."""
    mode = decide_mode(prefix, suffix)  # as the server decides it
    if mode == "block" and not empty_function_body(prefix):
        return None
    return mode


# -- the client -----------------------------------------------------------------------------------

@dataclass
class Doc:
    uri: str
    lines: list[str]
    line: int = 0
    col: int = 0
    version: int = 1

    def prefix_suffix(self) -> tuple[str, str]:
        prefix = "\n".join(self.lines[: self.line] + [self.lines[self.line][: self.col]])
        suffix = "\n".join([self.lines[self.line][self.col:]] + self.lines[self.line + 1:])
        return prefix, suffix


@dataclass
class Request:
    file: str
    mode: str            # line | block
    cold: bool
    wall_ms: float
    model_ms: float      # 0 when the suggestion cache answered
    cache_hit: bool
    prompt_tokens: int | None   # None: the engine reports no token counts
    processed: int | None
    shown: bool
    chars: int           # the suggestion's length
    exact: bool          # a line suggestion that is exactly the rest of the line being typed
    after_block: bool    # the request before it was a block request (another prompt format)


@dataclass
class Editor:
    """One editor session: the documents as lines, a cursor, keystrokes as didChange, requests."""

    client: LanguageClient
    workspace: Path
    pause_s: float
    last: dict = field(default_factory=dict)     # the counters after the previous request
    requests: list[Request] = field(default_factory=list)

    def open(self, name: str, lines: list[str]) -> Doc:
        doc = Doc((self.workspace / name).as_uri(), list(lines))
        self.client.text_document_did_open(T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=doc.uri, language_id="python", version=1, text="\n".join(lines))))
        doc.line, doc.col = len(lines) - 1, len(lines[-1])
        return doc

    def key(self, doc: Doc, text: str) -> None:
        """Insert ``text`` (a character, or Enter and an indentation) at the cursor."""
        doc.version += 1
        at = T.Position(line=doc.line, character=doc.col)
        self.client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
            content_changes=[T.TextDocumentContentChangePartial(range=T.Range(start=at, end=at), text=text)]))
        head, tail = doc.lines[doc.line][: doc.col], doc.lines[doc.line][doc.col:]
        if text.startswith("\n"):
            doc.lines[doc.line: doc.line + 1] = [head, text[1:] + tail]
            doc.line, doc.col = doc.line + 1, len(text) - 1
        else:
            doc.lines[doc.line] = head + text + tail
            doc.col += len(text)

    def ask(self, doc: Doc):
        return self.client.protocol.send_request_async("textDocument/inlineCompletion", T.InlineCompletionParams(
            text_document=T.TextDocumentIdentifier(uri=doc.uri), position=T.Position(line=doc.line, character=doc.col),
            context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Automatic)))

    async def status(self) -> dict:
        return plain(await self.client.protocol.send_request_async("plumline/status", {}))

    async def measured(self, doc: Doc, file: str, mode: str, cold: bool, rest: str) -> Request:
        if not self.last:
            self.last = (await self.status())["stats"]
        t0 = time.perf_counter()
        result = await self.ask(doc)
        wall = (time.perf_counter() - t0) * 1000
        now = (await self.status())["stats"]
        d = {k: now.get(k, 0) - self.last.get(k, 0) for k in COUNTERS}
        self.last = now
        counted = d["requests_with_token_counts"] > 0
        text = result.items[0].insert_text if result.items else ""
        request = Request(file, mode, cold, wall, d["model_ms"], d["cache_hits"] > 0,
                          d["prompt_tokens"] if counted else None, d["prompt_tokens_processed"] if counted else None,
                          bool(text), len(text), mode == "line" and bool(text.strip()) and text.rstrip() == rest.rstrip(),
                          bool(self.requests) and self.requests[-1].mode == "block")
        self.requests.append(request)
        return request

    async def type_lines(self, doc: Doc, file: str, typed: list[str], *, cold: bool) -> None:
        """Type ``typed`` after the cursor's line end, asking at each pause; the first ask is ``cold``."""
        row = -1  # index in ``typed`` of the line the cursor is on
        for burst in bursts(typed):
            if burst.startswith("\n"):
                for enter in re.findall(r"\n[ \t]*", burst):
                    self.key(doc, enter)
                    row += 1
            else:
                for ch in burst:
                    self.key(doc, ch)
            mode = asks(*doc.prefix_suffix())
            if mode is None:
                continue
            await asyncio.sleep(self.pause_s)
            await self.measured(doc, file, mode, cold, typed[row][doc.col:])
            cold = False


async def replay(editor: Editor, plan: FilePlan) -> None:
    doc = editor.open(plan.name.replace("/", "_"), plan.opened)
    await editor.type_lines(doc, plan.name, plan.at_end, cold=True)
    doc.line, doc.col = plan.hole_at - 1, len(doc.lines[plan.hole_at - 1])  # the jump
    await editor.type_lines(doc, plan.name, plan.in_hole, cold=True)


async def fast_typing(editor: Editor, plan: FilePlan) -> dict:
    """A request per keystroke every 40 ms in a newly opened file, nobody waiting for the answers;
    then, for the ratio, the last of them as a slow typist makes it: the request one keystroke
    earlier answered first, so the engine's prefix cache is warm (in a new document each time, so
    the suggestion cache does not answer). The burst's first request is cold, and an engine that
    cannot stop while it processes a prompt makes the last one wait for it."""
    body = next(line for line in plan.at_end[1:] if line.strip())
    doc = editor.open("burst.py", plan.opened + plan.at_end[:1])
    editor.key(doc, "\n" + body[: len(body) - len(body.lstrip())])
    before = (await editor.status())["stats"]
    futures = []
    for ch in body.lstrip()[:30]:
        editor.key(doc, ch)
        futures.append(asyncio.ensure_future(editor.ask(doc)))
        await asyncio.sleep(0.04)
    t0 = time.perf_counter()
    await asyncio.gather(*futures, return_exceptions=True)
    after_burst = (time.perf_counter() - t0) * 1000
    after = (await editor.status())["stats"]
    assert (doc.line, doc.col) == (len(doc.lines) - 1, len(doc.lines[-1])), "the burst types at the end"
    await editor.ask(editor.open("slow-1.py", doc.lines[:-1] + [doc.lines[-1][:-1]]))  # one keystroke earlier
    alone = editor.open("slow-2.py", doc.lines)  # (open puts the cursor at the end)
    t0 = time.perf_counter()
    await editor.ask(alone)
    alone_ms = (time.perf_counter() - t0) * 1000
    editor.last = (await editor.status())["stats"]
    return {"keystrokes": len(futures), "cancelled": after["cancelled"] - before["cancelled"],
            "completed": after["completed"] - before["completed"],
            "wait_after_last_keystroke_ms": after_burst, "alone_ms": alone_ms,
            "after_burst_over_alone": after_burst / alone_ms if alone_ms else None}


# -- one engine -----------------------------------------------------------------------------------

async def run_engine(engine: Engine, plans: list[FilePlan], args) -> dict:
    home = bench_home(f"plumline-bench-{engine.key}-")
    workspace = home / "ws"
    workspace.mkdir()
    env = engine_env(engine, home, context_tokens=args.context_tokens, cross_file=args.cross_file)
    client = LanguageClient("plumline-bench", "1")
    exe = shutil.which("plumline") or str(Path(sys.executable).with_name("plumline"))
    log_path = home / "server.log"

    async def drain():  # the server logs to stderr; a full pipe would block it
        with open(log_path, "ab") as fh:
            while chunk := await client._server.stderr.read(65536):
                fh.write(chunk)

    t0 = time.perf_counter()
    await client.start_io(exe, "serve", env=env, cwd=str(workspace))
    drainer = asyncio.ensure_future(drain())
    try:
        await client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities(),
                                                         root_uri=workspace.as_uri()))
        client.initialized(T.InitializedParams())
        editor = Editor(client, workspace, args.pause_ms / 1000)
        warm = editor.open("warm.py", ["import os", "", "", "def main():", "    path = "])
        await editor.ask(warm)  # waits for the model to load
        first_s = time.perf_counter() - t0
        status = await editor.status()
        if status.get("error"):
            raise SystemExit(f"{engine.key}: the server could not load the model: {status['error']} (log: {log_path})")
        if status.get("backend") != engine.backend:
            raise SystemExit(f"{engine.key}: asked for backend {engine.backend}, the server uses {status.get('backend')}")
        for i, plan in enumerate(plans):
            print(f"  {engine.key}: file {i + 1}/{len(plans)} {plan.name}", flush=True)
            await replay(editor, plan)
        burst = await fast_typing(editor, plans[0])
        await client.shutdown_async(None)
        client.exit(None)
    except BaseException:
        print(f"server log: {log_path}", file=sys.stderr)
        raise
    finally:
        await client.stop()
        drainer.cancel()
    formats = prompt_formats(home)
    shutil.rmtree(home, ignore_errors=True)
    return {"label": engine.label, "model": status["model"], "backend": status["backend"],
            "dtype": dtype_of(engine), "prompt_formats": formats, "first_suggestion_s": first_s, **summarize(editor.requests), "fast_typing": burst}


def prompt_formats(home: Path) -> list[str]:
    """The prompt formats the server used (``model.prompt_format`` resolved), from its store."""
    from agent.store import Store

    store = Store(home / "plumline.db")
    try:
        return sorted({json.loads(r["decoding"]).get("format", "?") for r in store.rows("select decoding from completions")})
    finally:
        store.close()


def dtype_of(engine: Engine) -> str:
    """What the engine computes in on this CPU (``model.dtype = auto`` follows the CPU's flags)."""
    if engine.backend == "llamacpp":
        return "GGUF quantized"
    from agent.models.hardware import choose_dtype

    return choose_dtype(engine.dtype, "cpu").name


# -- figures --------------------------------------------------------------------------------------

def spread(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 0.5), "p95": percentile(values, 0.95)}


def tokens(group: list[Request]) -> dict | None:
    counted = [r for r in group if r.prompt_tokens is not None]
    if not counted:
        return None
    return {"prompt_p50": percentile([r.prompt_tokens for r in counted], 0.5),
            "processed_p50": percentile([r.processed for r in counted], 0.5),
            "processed_p95": percentile([r.processed for r in counted], 0.95),
            "processed_share": sum(r.processed for r in counted) / max(1, sum(r.prompt_tokens for r in counted))}


def summarize(requests: list[Request]) -> dict:
    """One definition of each group: warm requests the model answered, by mode; cold; cache hits."""
    model = [r for r in requests if not r.cache_hit]
    groups = {
        "single_line": [r for r in model if r.mode == "line" and not r.cold],
        "block": [r for r in model if r.mode == "block" and not r.cold],
        "cold": [r for r in model if r.cold],
        "cache_hit": [r for r in requests if r.cache_hit],
        "line_with_cache_hits": [r for r in requests if r.mode == "line" and not r.cold],
        "line_after_block": [r for r in model if r.mode == "line" and not r.cold and r.after_block],
    }
    out = {name: {**spread([r.wall_ms for r in group]), "model_p50": percentile([r.model_ms for r in group], 0.5),
                  "shown": sum(r.shown for r in group),
                  "chars_p50": percentile([r.chars for r in group if r.shown], 0.5),
                  "tokens": tokens(group)} for name, group in groups.items()}
    lines = [r for r in requests if r.mode == "line"]
    out["server_overhead_ms"] = spread([r.wall_ms - r.model_ms for r in model if r.model_ms > 0])
    out["requests"] = len(requests)
    out["line_suggestions_shown"] = sum(r.shown for r in lines)
    out["line_suggestions_exact"] = sum(r.exact for r in lines)
    return out


def ratio(a, b):
    return a / b if a == a and b == b and b else None  # NaN-safe


def ratios(figures: dict, baseline: str) -> dict:
    base = figures.get(baseline)
    out = {}
    for key, f in figures.items():
        if key == baseline or base is None:
            continue
        out[f"{key}/{baseline}"] = {
            f"{group}_{q}": ratio(f[group][q], base[group][q])
            for group in ("single_line", "block", "cold", "line_with_cache_hits") for q in ("p50", "p95")}
    return out


def table(figures: dict, rat: dict) -> list[tuple]:
    keys = list(figures)

    def ms(group, key):
        g = figures[key][group]
        return f"{g['p50']:.0f} / {g['p95']:.0f} (n={g['n']})"

    def tok(group, key):
        t = figures[key][group]["tokens"]
        return f"{t['prompt_p50']:.0f} / {t['processed_p50']:.0f}" if t else "not reported"

    rows = [("metric", *keys, *(f"ratio {r}" for r in rat), "target"),
            ("prompt format; dtype", *(f"{','.join(figures[k]['prompt_formats'])}; {figures[k]['dtype']}" for k in keys),
             *([""] * len(rat)), "")]
    spec = [
        ("single line, warm: ms p50 / p95", "single_line", "p50 <= 400"),
        ("block, warm: ms p50 / p95", "block", "p50 <= 2500"),
        ("cold (new file, jump): ms", "cold", ""),
        ("cache hit: ms", "cache_hit", ""),
        ("line incl. cache hits: ms", "line_with_cache_hits", ""),
    ]
    for label, group, target in spec:
        cells = [ms(group, k) for k in keys]
        rcells = [f"{v[f'{group}_p50']:.2f} / {v[f'{group}_p95']:.2f}" if group in ("single_line", "block", "cold",
                  "line_with_cache_hits") and v[f"{group}_p50"] is not None else "" for v in rat.values()]
        rows.append((label, *cells, *rcells, target))
    rows.append(("shown / chars p50: line, block",
                 *(f"{figures[k]['single_line']['shown']} / {figures[k]['single_line']['chars_p50']:.0f}, "
                   f"{figures[k]['block']['shown']} / {figures[k]['block']['chars_p50']:.0f}" for k in keys),
                 *([""] * len(rat)), ""))
    rows.append(("line right after a block: ms", *(ms("line_after_block", k) for k in keys),
                 *([""] * len(rat)), ""))
    for label, group in (("tokens, warm line: prompt / processed", "single_line"),
                         ("tokens, block: prompt / processed", "block"),
                         ("tokens, cold: prompt / processed", "cold"),
                         ("tokens, line after a block", "line_after_block")):
        rows.append((label, *(tok(group, k) for k in keys), *([""] * len(rat)), ""))
    blank = [""] * len(rat)
    rows.append(("server overhead: ms p50 / p95",
                 *(f"{figures[k]['server_overhead_ms']['p50']:.1f} / {figures[k]['server_overhead_ms']['p95']:.1f}"
                   for k in keys), *blank, ""))
    rows.append(("first suggestion after start (s)", *(f"{figures[k]['first_suggestion_s']:.1f}" for k in keys),
                 *blank, ""))
    rows.append(("line suggestions exact / shown", *(f"{figures[k]['line_suggestions_exact']} / "
                                                     f"{figures[k]['line_suggestions_shown']}" for k in keys), *blank, ""))
    rows.append(("fast typing: cancelled / completed", *(f"{figures[k]['fast_typing']['cancelled']} / "
                                                         f"{figures[k]['fast_typing']['completed']}" for k in keys),
                 *blank, ""))
    rows.append(("fast typing: wait after / slow typist", *(f"{figures[k]['fast_typing']['after_burst_over_alone']:.2f}" for k in keys),
                 *blank, "≈ 1"))
    return rows


def plans_for(n_files: int, n_lines: int) -> list[FilePlan]:
    plans = []
    for name in FILES:
        plan = plan_file(name, (STDLIB / name).read_text(), n_lines)
        if plan is not None:
            plans.append(plan)
        if len(plans) == n_files:
            return plans
    raise SystemExit(f"only {len(plans)} of the stdlib files suit a replay of {n_lines} lines; use fewer --files")


def count_asks(plan: FilePlan) -> dict:
    """The requests one file's replay makes, by mode (the plan alone, no server)."""
    counts = {"line": 0, "block": 0}
    for typed, start in ((plan.at_end, plan.opened), (plan.in_hole, plan.opened[: plan.hole_at])):
        text = "\n".join(start)
        for burst in bursts(typed):
            text += burst
            mode = asks(text, "")
            if mode:
                counts[mode] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=4, help="stdlib files to replay")
    parser.add_argument("--lines", type=int, default=4, help="lines typed at each of the two places in a file")
    parser.add_argument("--pause-ms", type=float, default=300, help="pause after each burst before the request")
    parser.add_argument("--context-tokens", type=int, default=512, help="model.context_tokens")
    parser.add_argument("--engines", default="qwen-llamacpp,smollm2-transformers",
                        help=f"comma-separated, run one after the other: {', '.join(ENGINES)}")
    parser.add_argument("--cross-file", action="store_true", help="leave cross-file context on (context.enabled)")
    parser.add_argument("--plan", action="store_true", help="print the replay's requests per file and exit")
    args = parser.parse_args()
    unknown = [e for e in args.engines.split(",") if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ENGINES)}")
    plans = plans_for(args.files, args.lines)
    if args.plan:
        for plan in plans:
            print(plan.name, count_asks(plan), f"typing at lines {len(plan.opened)} and {plan.hole_at}")
        return
    load_start = os.getloadavg()
    started = time.perf_counter()
    figures = {}
    for key in args.engines.split(","):
        print(f"{key}: {ENGINES[key].label}", flush=True)
        figures[key] = asyncio.run(run_engine(ENGINES[key], plans, args))
    rat = ratios(figures, BASELINE)
    result = {
        "replay": {"files": [p.name for p in plans], "lines_per_place": args.lines, "pause_ms": args.pause_ms,
                   "context_tokens": args.context_tokens, "cross_file": args.cross_file},
        "baseline": BASELINE, "targets": TARGETS, "engines": figures, "ratios": rat,
        "load_avg": {"start": load_start, "end": os.getloadavg()}, "wall_s": time.perf_counter() - started,
    }
    rows = table(figures, rat)
    os.environ.setdefault("COLUMNS", "150")  # rich wraps at 80 columns when writing to a file or pipe
    print_table(f"plumline serve: typing replay, {len(plans)} files, stdio LSP "
                f"(load {load_start[0]:.1f} -> {result['load_avg']['end'][0]:.1f})", rows)
    print(f"wrote {write_result('lsp', result)}")


if __name__ == "__main__":
    main()
