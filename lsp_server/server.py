"""The plumline language server (pygls): inline suggestions, and what became of each of them.

What it does, in the order a suggestion lives (the wire format is docs/protocol.md):

1. ``textDocument/inlineCompletion`` (and ``textDocument/completion`` for older clients): the
   document's text around the cursor becomes a ``Context``; the LRU cache answers at once when the
   user asks again at the same place or types along a suggestion still shown; otherwise the model
   runs on one worker thread, off the event loop. A newer request for the same document, or
   ``$/cancelRequest``, sets the older request's cancel event and the model stops within a token;
   a request cancelled while queued never reaches the model. The result goes through
   ``filters.post_filter`` and is logged with ``agent.completion.log_completion`` (privacy rules).
2. ``textDocument/didShowCompletion``, ``plumline.accept`` (the item's command),
   ``textDocument/didPartiallyAcceptCompletion``, ``plumline/didDismissCompletion`` become events;
   an unaccepted suggestion replaced by a newer request becomes ``superseded``.
3. After acceptance, ``persistence.Tracker`` follows the text through ``didChange`` and on-disk
   changes (watchdog) and stores ``persist`` events at ``server.persistence_checks`` seconds.

Also: the adapter registry is watched (watchdog) and a newly promoted adapter is loaded on a side
thread and swapped in between requests; ``plumline/status`` and ``plumline/telemetry`` requests.

Cross-file context (``agent.context``, table ``[context]``): once the workspace is known, a niced
background thread scans it; files the editor opens, changes (batched, CHANGE_BATCH_S) or saves are
indexed on the ``plumline-index`` thread, and watchdog reports on-disk changes to workspace source
files. A request only ranks and packs what is indexed, on the model thread just before the model
runs (never waiting for the scan); the chunks it chose are part of the prompt and of the logged
completion. ``plumline/status`` reports the index (files, symbols, skipped files by reason,
retrieval time p50/p95). Without a workspace folder there is no cross-file context.

Suggestions are cached per document (``cache.SuggestionCache``): two files with the same text
around the cursor never share a completion id, so an accept is recorded against its own file.

Exit: store writes are queued on one thread. However the editor goes away (``exit``, its pipes
closing when it crashes, SIGTERM or SIGHUP), ``close`` first records what is queued, waiting at
most ``STORE_DRAIN_S`` seconds; only what is still queued after that is dropped (and logged).

Privacy: a file matching ``privacy.exclude`` still gets suggestions (the model is local and nothing
leaves the machine), but nothing about it is stored: no completion row, no events, no persistence
tracking, and its file is never read from disk by the server. With telemetry off (config
``privacy.logging = false`` or ``plumline/telemetry`` with ``"enabled": false``) nothing at all is
stored. ``plumline/telemetry`` changes the switch only when told a value: without one it reports
the state, so a query can never turn logging back on (or off).

Run it with ``plumline serve`` (stdio) or ``plumline serve --tcp 127.0.0.1:2087``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from agent.config import Config
from agent.models import BASE_ADAPTER, Context
from lsp_server.cache import Entry, SuggestionCache
from lsp_server.filters import post_filter
from lsp_server.persistence import Region, Tracker, map_through_diff, similarity

log = logging.getLogger("plumline.lsp")

VERSION = "0.1.0"
ACCEPT_COMMAND = "plumline.accept"
CHANGE_BATCH_S = 0.5  # edits to a document within this long are indexed once, after the last
SERVED_MEMORY = 2048  # suggestions remembered for their events (ids beyond this are ignored)
STORE_DRAIN_S = 10.0  # at exit, how long queued store writes may take before the rest is dropped


def plain(value: Any) -> Any:
    """pygls hands params of custom methods over as attribute objects; turn them into JSON values."""
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        from lsprotocol.converters import get_converter

        return get_converter().unstructure(value)
    return value


def completion_id_of(params: Any) -> str | None:
    """The completion id carried by a notification: ``{"item": {"command": {"arguments": [id]}}}``."""
    data = plain(params) or {}
    item = data.get("item", data) if isinstance(data, dict) else {}
    command = item.get("command") if isinstance(item, dict) else None
    args = command.get("arguments") if isinstance(command, dict) else None
    if args and isinstance(args[0], str):
        return args[0]
    return None


@dataclass
class Served:
    """A suggestion the server handed out, remembered for the events that follow it."""

    id: str
    uri: str
    text: str
    offset: int
    logged: bool
    relpath: str | None
    status: str = "served"


@dataclass
class Pending:
    """A request being answered: its cancel event (set by a newer request or $/cancelRequest)."""

    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class Stats:
    requests: int = 0
    completed: int = 0
    cancelled: int = 0
    cache_hits: int = 0
    empty: int = 0
    swaps: int = 0
    adapter_changes: int = 0  # changes of the registry's CURRENT, seen by the watcher and handled
    adapters_refused: int = 0  # adapters that could not be loaded (the previous one kept serving)
    model_ms: float = 0.0
    context_ms: float = 0.0  # choosing cross-file context (rank + pack), all requests together
    # Prompt tokens of completed generations, as the engine reports them (llama.cpp does; transformers
    # does not, and then these stay 0): all of them, and those the model processed (not prefix-cached).
    prompt_tokens: int = 0
    prompt_tokens_processed: int = 0
    requests_with_token_counts: int = 0


class PlumlineProtocol(LanguageServerProtocol):
    """Document sync that tolerates out-of-order messages and lets persistence trackers see each
    edit before it is applied."""

    _server: "PlumlineServer"

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        uri = params.text_document.uri
        if unquote(uri) not in self.workspace.text_documents:
            log.warning("didChange for %s, which was never opened: ignored", uri)
            return
        doc = self.workspace.get_text_document(uri)
        for change in params.content_changes:
            before = doc.source
            self._server.before_change(uri, doc, change)
            self.workspace.update_text_document(params.text_document, change)
            self._server.after_change(uri, before, doc.source, change)
        self._server.document_changed(uri)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        if unquote(uri) in self.workspace.text_documents:
            self.workspace.remove_text_document(uri)
        # the file on disk is what is left now (unsaved edits are gone); a disk write that
        # watchdog reported while the buffer was still open was skipped, so read it now
        self._server.sync_from_disk(uri=uri)


class PlumlineServer(LanguageServer):
    """All state of one editor session. Handlers below take it as ``ls``."""

    def __init__(self, config: Config, *, backend=None, store=None):
        super().__init__("plumline", VERSION, protocol_cls=PlumlineProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.config = config
        self.store = store
        self.telemetry = config.privacy.logging
        self.cache = SuggestionCache(config.server.cache_entries)
        self.stats = Stats()
        self.checks = sorted(float(x) for x in config.server.persistence_checks)
        # One model thread: requests run one at a time, in order; a cancelled one is skipped.
        self.model_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="plumline-model")
        # Store writes on their own thread, in order, so SQLite never blocks the event loop.
        self.store_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="plumline-store")
        # Adapter loading (merge + quantize) on a side thread: requests keep being served meanwhile.
        self.swap_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="plumline-swap")
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._store_queued = 0  # writes submitted to store_pool and not finished
        self._closed = False
        self.pending: dict[str, Pending] = {}
        self.last_served: dict[str, str] = {}  # uri -> id of the suggestion shown last
        self.served: OrderedDict[str, Served] = OrderedDict()
        self.trackers: dict[str, Tracker] = {}
        self.backend = backend
        self.load_error: str | None = None
        self._load_error_told = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.observer = None  # watchdog Observer, started in `initialized`
        self._watched_dirs: dict[str, Any] = {}
        self._swap_lock = threading.Lock()
        # Cross-file context: the index (built in `initialized`, when the workspace is known), its
        # own thread for editor documents, and a stop signal for the background scan.
        self.context = None  # agent.context.ContextIndex
        self.index_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="plumline-index")
        self._scan_stop = threading.Event()
        self._dirty: set[str] = set()
        self._dirty_timer: asyncio.TimerHandle | None = None
        self.ready = self.model_pool.submit(self._load) if backend is None else None  # last: uses the above

    # -- model ------------------------------------------------------------------------------------

    def _load(self) -> None:
        """The base model, then the current adapter (a corrupt one is skipped with a warning, as in
        a hot swap: the base keeps serving)."""
        from agent.models import load_backend
        from agent.models.rerank import load_reranker

        try:
            say = lambda m: log.info("%s", m)  # noqa: E731
            self.backend = load_reranker(load_backend(self.config.model, self.config.cache_dir, say=say),
                                         self.config, self.config.adapters_dir, say=say)
        except Exception as exc:  # reported by plumline/status and on every request
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("cannot load the model: %s", self.load_error)
            if self.loop is not None:  # else `initialized` tells, once the client listens
                self.loop.call_soon_threadsafe(self.explain_load_error)
            return
        self._swap()
        log.info("serving %s, adapter %s", self.backend.model_name, self.backend.adapter_id)

    def _dequeued(self, _future) -> None:
        with self._queued_lock:
            self._queued -= 1

    def _generate(self, ctx: Context, pending: Pending, uri: str | None = None):
        """Runs on the model thread: the cross-file context, then the model."""
        if pending.cancel.is_set() or self.backend is None:
            return None
        if uri is not None:
            ctx = self.with_context(ctx, uri)
        return self.backend.complete(ctx, cancel=pending.cancel)

    # -- cross-file context ---------------------------------------------------------------------------

    def start_context(self) -> None:
        """Build the index for the workspace folders: a background scan, then a watch on them."""
        if not self.config.context.enabled or self.context is not None:
            return
        from agent.context import ContextIndex

        roots = [to_fs_path(f.uri) for f in self.workspace.folders.values()] if self.workspace.folders else []
        if not roots and self.workspace.root_path:
            roots = [self.workspace.root_path]
        roots = [r for r in roots if r and Path(r).is_dir()]
        if not roots:
            log.info("no workspace folder: suggestions use the current file only")
            return
        self.context = ContextIndex(self.config.context, self.config.privacy.exclude, [Path(r) for r in roots])
        threading.Thread(target=self._scan, name="plumline-scan", daemon=True).start()
        for uri in list(self.workspace.text_documents):  # opened before the index existed
            self.document_changed(uri, now=True)

    def _scan(self) -> None:
        index = self.context
        # Watch first, then scan: a file written between the end of the scan and the start of the
        # watch would otherwise be missed (an event during the scan only indexes that file again).
        if self.config.server.watch_workspace and self.observer is not None and not self._scan_stop.is_set():
            from lsp_server.watch import watch_workspace

            watch_workspace(self, index.roots)
        try:
            stats = index.scan(stop=self._scan_stop)
            log.info("context index: %d files, %d symbols in %.1fs; skipped %s", stats.files, stats.symbols,
                     stats.scan_s or 0, stats.skipped or "none")
        except Exception:  # the index is a help, never a reason to stop serving
            log.exception("the workspace scan for cross-file context failed")

    def document_changed(self, uri: str, *, now: bool = False) -> None:
        """The editor opened, changed or saved a document: index it, at once (open, save) or once
        edits pause for CHANGE_BATCH_S."""
        if self.context is None or self._closed:
            return
        self._dirty.add(unquote(uri))
        if now:
            self._index_dirty()
        elif self._dirty_timer is None and self.loop is not None:
            self._dirty_timer = self.loop.call_later(CHANGE_BATCH_S, self._index_dirty)

    def _index_dirty(self) -> None:
        self._dirty_timer = None
        dirty, self._dirty = self._dirty, set()
        for uri in dirty:
            if uri not in self.workspace.text_documents:
                continue
            path = to_fs_path(uri)
            relpath = self.context.relpath(Path(path)) if path else None
            if relpath is None:
                continue
            text = self.workspace.get_text_document(uri).source  # read here, on the event loop
            self.index_pool.submit(self._index_call, self.context.update_open, relpath, text)

    def disk_file_changed(self, path: str) -> None:
        """A workspace file changed on disk (watchdog); the editor's buffer wins while it is open."""
        if self.context is None or self._closed:
            return
        if any(to_fs_path(u) == path for u in self.workspace.text_documents):
            return
        self.index_pool.submit(self._index_call, self.context.update_file, Path(path))

    @staticmethod
    def _index_call(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("indexing for cross-file context failed")

    def with_context(self, ctx: Context, uri: str) -> Context:
        """``ctx`` with the cross-file context chosen for it (unchanged when there is none)."""
        index = self.context
        if index is None:
            return ctx
        start = time.perf_counter()
        try:
            if index.count_tokens is None and getattr(self.backend, "tokenizer", None) is not None:
                tokenizer = self.backend.tokenizer
                index.count_tokens = lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"])
            path = to_fs_path(uri)
            repo = index.retrieve(index.relpath(Path(path)) if path else None, ctx.prefix, ctx.suffix)
        except Exception:
            log.exception("choosing cross-file context failed; this suggestion uses the current file only")
            return ctx
        finally:
            self.stats.context_ms += (time.perf_counter() - start) * 1000
        return dataclasses.replace(ctx, repo=repo) if repo is not None and repo.chunks else ctx

    # -- documents ----------------------------------------------------------------------------------

    def relpath(self, uri: str) -> str | None:
        path = to_fs_path(uri)
        if path is None:
            return unquote(uri)
        roots = [to_fs_path(f.uri) for f in self.workspace.folders.values()] if self.workspace.folders else []
        if self.workspace.root_path:
            roots.append(self.workspace.root_path)
        for root in roots:
            if root:
                try:
                    return str(Path(path).resolve().relative_to(Path(root).resolve()))
                except ValueError:
                    continue
        return path

    def excluded(self, relpath: str | None) -> bool:
        from agent.privacy import is_excluded

        return is_excluded(relpath, self.config.privacy.exclude)

    def split(self, uri: str, position: types.Position) -> tuple[str, str] | None:
        """(prefix, suffix) at a client position, or None when the document is not open or the
        position lies outside it."""
        if unquote(uri) not in self.workspace.text_documents:
            return None
        doc = self.workspace.get_text_document(uri)
        source = doc.source
        lines = source.split("\n")
        if position.line < 0 or position.line >= len(lines) or position.character < 0:
            return None
        line = lines[position.line]
        if doc.position_codec.client_num_units(line) < position.character:
            return None
        # (a copy: pygls's codec clamps the position it is given in place)
        col = doc.position_codec.position_from_client_units(
            doc.lines, types.Position(line=position.line, character=position.character)).character
        offset = sum(len(x) + 1 for x in lines[: position.line]) + col
        return source[:offset], source[offset:]

    # -- suggestions --------------------------------------------------------------------------------

    async def suggest(self, uri: str, position: types.Position) -> tuple[Served, str] | None:
        """The suggestion at a position: (what it is, the text to insert now) or None."""
        self.stats.requests += 1
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        previous = self.pending.pop(uri, None)
        if previous is not None:
            previous.cancel.set()  # a newer request for the same document supersedes it
        parts = self.split(uri, position)
        result: tuple[Served, str] | None = None
        try:
            if parts is not None:
                result = await self._suggest(uri, *parts)
        finally:
            self._supersede(uri, result[0].id if result else None)
        if result is None:
            self.stats.empty += 1
        return result

    async def _suggest(self, uri: str, prefix: str, suffix: str) -> tuple[Served, str] | None:
        hit = self.cache.get(uri, prefix, suffix)
        if hit is not None and hit.entry.completion_id in self.served:
            self.stats.cache_hits += 1
            return self.served[hit.entry.completion_id], hit.remainder
        if self.ready is not None and not self.ready.done():
            await asyncio.wrap_future(self.ready)
        if self.backend is None:
            raise RuntimeError(f"plumline cannot serve: the model did not load ({self.load_error})")
        pending = Pending()
        self.pending[uri] = pending
        try:
            if self.config.server.debounce_ms:
                await asyncio.sleep(self.config.server.debounce_ms / 1000)
                if pending.cancel.is_set():
                    self.stats.cancelled += 1
                    return None
            relpath = self.relpath(uri)
            language = language_for(uri, self.workspace.get_text_document(uri).language_id)
            ctx = Context(prefix, suffix, language=language)
            with self._queued_lock:
                self._queued += 1
            future = self.model_pool.submit(self._generate, ctx, pending, uri)
            future.add_done_callback(self._dequeued)
            try:
                completion = await asyncio.wrap_future(future)
            except asyncio.CancelledError:  # $/cancelRequest: pygls cancelled this coroutine
                pending.cancel.set()
                self.stats.cancelled += 1
                raise
        finally:
            if self.pending.get(uri) is pending:
                del self.pending[uri]
        if completion is None or completion.cancelled or pending.cancel.is_set():
            self.stats.cancelled += 1
            return None
        self.stats.completed += 1
        self.stats.model_ms += completion.latency_ms
        if "prompt_tokens" in completion.decoding:
            self.stats.requests_with_token_counts += 1
            self.stats.prompt_tokens += completion.decoding["prompt_tokens"]
            self.stats.prompt_tokens_processed += completion.decoding.get("prompt_tokens_processed",
                                                                          completion.decoding["prompt_tokens"])
        text = post_filter(completion.text, prefix, suffix, completion.mode)
        if text is None:
            return None
        completion = dataclasses.replace(completion, text=text)
        completion_id = await self._log(completion, uri, relpath, prefix, language)
        served = Served(completion_id or f"unlogged-{uuid.uuid4().hex}", uri, text, len(prefix),
                        completion_id is not None, relpath)
        self.remember(served)
        self.cache.put(Entry(uri, len(prefix), hash(prefix), hash(suffix), text, served.id, len(prefix)))
        return served, text

    async def _log(self, completion, uri: str, relpath: str | None, prefix: str, language: str) -> str | None:
        if self.store is None or not self.telemetry or self.excluded(relpath):
            return None  # excluded files: nothing about them reaches the store
        from agent.completion import log_completion

        line = prefix.count("\n")
        col = len(prefix) - (prefix.rfind("\n") + 1)
        call = lambda: log_completion(self.store, self.config.privacy, completion, source="lsp",  # noqa: E731
                                      relpath=relpath, uri=uri, line=line, col=col, language=language)
        try:
            return await asyncio.wrap_future(self.store_write(call))
        except Exception as exc:  # a full disk must not stop suggestions
            log.warning("suggestion not recorded: %s", exc)
            return None

    def remember(self, served: Served) -> None:
        self.served[served.id] = served
        self.served.move_to_end(served.id)
        while len(self.served) > SERVED_MEMORY:
            self.served.popitem(last=False)

    def _supersede(self, uri: str, new_id: str | None) -> None:
        old_id = self.last_served.get(uri)
        if new_id is not None:
            self.last_served[uri] = new_id
        else:
            self.last_served.pop(uri, None)
        if old_id and old_id != new_id:
            old = self.served.get(old_id)
            if old is not None and old.status in ("served", "shown"):
                self.event(old_id, "superseded")

    # -- events -------------------------------------------------------------------------------------

    def event(self, completion_id: str | None, kind: str, value: float | None = None, **detail: Any) -> bool:
        """Record what happened to a suggestion (on the store thread). False when not recorded."""
        served = self.served.get(completion_id or "")
        if served is None:
            log.info("%s for unknown suggestion %r: ignored", kind, completion_id)
            return False
        if kind in ("shown", "accepted", "partial", "dismissed", "superseded"):
            served.status = kind
        if not served.logged or not self.telemetry or self.store is None or self._closed:
            return False

        def write():
            try:
                self.store.record_event(served.id, kind, value, **detail)
            except Exception as exc:
                log.warning("event %s for %s not recorded: %s", kind, served.id, exc)

        self.store_write(write)
        return True

    def store_write(self, fn) -> concurrent.futures.Future:
        """Queue a store write on the store thread (in order), counted until it is done."""
        with self._queued_lock:
            self._store_queued += 1
        future = self.store_pool.submit(fn)
        future.add_done_callback(self._store_done)
        return future

    def _store_done(self, _future) -> None:
        with self._queued_lock:
            self._store_queued -= 1

    def accepted(self, completion_id: str | None) -> None:
        served = self.served.get(completion_id or "")
        if not self.event(completion_id, "accepted", float(len(served.text)) if served else None):
            return
        self.track(served)

    # -- persistence --------------------------------------------------------------------------------

    def track(self, served: Served) -> None:
        tracker = Tracker(served.id, served.uri, to_fs_path(served.uri), served.text, served.offset,
                          checks_left=list(self.checks))
        if unquote(served.uri) in self.workspace.text_documents:
            tracker.try_locate(self.workspace.get_text_document(served.uri).source)
        self.trackers[served.id] = tracker
        loop = self.loop or asyncio.get_event_loop()
        for after in self.checks:
            loop.call_later(after, self.check_persistence, served.id, after)
        self.watch_file(tracker.path)

    def before_change(self, uri: str, doc, change) -> None:
        """Move tracked regions for an incremental edit (positions read in the old text)."""
        if not isinstance(change, types.TextDocumentContentChangePartial):
            return
        trackers = [t for t in self.trackers.values() if t.uri == uri and t.region is not None]
        if not trackers:
            return
        a = doc.offset_at_position(change.range.start)
        b = doc.offset_at_position(change.range.end)
        for t in trackers:
            t.region.apply_edit(a, b, len(change.text))

    def after_change(self, uri: str, before: str, after: str, change) -> None:
        for t in self.trackers.values():
            if t.uri != uri:
                continue
            if t.region is not None and not isinstance(change, types.TextDocumentContentChangePartial):
                t.region = map_through_diff(before, after, t.region)
            if t.region is None:
                t.try_locate(after)
            else:
                t.known = after

    def check_persistence(self, completion_id: str, after: float) -> None:
        tracker = self.trackers.get(completion_id)
        if tracker is None:
            return
        source = None
        if unquote(tracker.uri) in self.workspace.text_documents:
            source = self.workspace.get_text_document(tracker.uri).source
            if tracker.region is None:
                tracker.try_locate(source)
        else:  # closed: the disk is the truth, whether or not watchdog has reported the last write
            self.sync_from_disk(uri=tracker.uri)
        now = tracker.current_text(source)
        value = similarity(tracker.text, now) if now is not None else 0.0
        detail = {"after_s": after} if tracker.region is not None else {"after_s": after, "located": False}
        self.event(completion_id, "persist", round(value, 4), **detail)
        if after >= self.checks[-1]:
            self.trackers.pop(completion_id, None)
            self.unwatch_unused()

    def disk_changed(self, path: str) -> None:
        """A tracked file changed on disk (watchdog)."""
        self.sync_from_disk(path=path)

    def sync_from_disk(self, *, path: str | None = None, uri: str | None = None) -> None:
        """Carry tracked regions over to the file's text on disk, unless the editor has it open
        (then the editor's buffer is what the user sees, and didChange follows)."""
        for t in self.trackers.values():
            if path is not None and (t.path is None or Path(t.path) != Path(path)):
                continue
            if uri is not None and t.uri != uri:
                continue
            if t.path is None or t.region is None or t.known is None:
                continue
            if unquote(t.uri) in self.workspace.text_documents:
                continue
            try:
                new = Path(t.path).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                new = ""
            if new == t.known:
                continue
            t.region = map_through_diff(t.known, new, t.region)
            t.known = new

    def watch_file(self, path: str | None) -> None:
        if not path or self.observer is None or not self.config.server.watch_workspace:
            return
        folder = str(Path(path).parent)
        if folder in self._watched_dirs:
            return
        from lsp_server.watch import FileChanges

        try:
            self._watched_dirs[folder] = self.observer.schedule(FileChanges(self), folder, recursive=False)
        except OSError as exc:
            log.warning("cannot watch %s: %s", folder, exc)

    def unwatch_unused(self) -> None:
        needed = {str(Path(t.path).parent) for t in self.trackers.values() if t.path}
        for folder in list(self._watched_dirs):
            if folder not in needed and self.observer is not None:
                self.observer.unschedule(self._watched_dirs.pop(folder))

    def tracked_paths(self) -> set[str]:
        return {str(Path(t.path)) for t in self.trackers.values() if t.path}

    # -- adapters ------------------------------------------------------------------------------------

    def adapter_changed(self, *, watched: bool = True) -> None:
        """CURRENT changed (``watched``: the watcher saw it; else a check at start): load the
        promoted adapter on the side thread, then swap."""
        self.swap_pool.submit(self._swap, watched)

    def _swap(self, watched: bool = False) -> None:
        try:
            self._swap_now()
        finally:
            if watched:
                self.stats.adapter_changes += 1

    def _swap_now(self) -> None:
        from agent.adapters import AdapterError, check_adapter_dir, current_adapter

        if self.ready is not None and threading.current_thread().name.startswith("plumline-swap"):
            self.ready.result()
        if self.backend is None:
            return
        with self._swap_lock:
            adapter = current_adapter(self.config.adapters_dir)
            if adapter.id == self.backend.adapter_id:
                return
            try:
                if adapter.path is not None:
                    check_adapter_dir(adapter.path)
                self.backend.set_adapter(adapter.path, adapter.id)
            except (AdapterError, OSError, ValueError, RuntimeError) as exc:
                log.warning("adapter %s not loaded, still serving %s: %s", adapter.id,
                            self.backend.adapter_id, exc)
                self.stats.adapters_refused += 1
                if self.loop is not None:
                    self.loop.call_soon_threadsafe(self._tell, f"plumline: adapter {adapter.id} not loaded: {exc}")
                return
            self.stats.swaps += 1
            log.info("now serving adapter %s", adapter.id)
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.cache.clear)

    def explain_load_error(self) -> None:
        """The model did not load: say so where the user looks, the editor (a popup and its LSP
        log), with what to install; stderr alone is out of sight when the editor starts the server."""
        if self.load_error is None or self._load_error_told:
            return
        self._load_error_told = True
        message = (f"plumline cannot serve suggestions: the model did not load ({self.load_error}). "
                   "Install the embedded model with pip install 'plumline[embedded]', or set model.name "
                   "(PLUMLINE_MODEL_NAME) to a local model folder; `plumline doctor` in a terminal says what "
                   "else is missing. Then restart the language server.")
        try:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Error, message=message))
        except Exception:  # noqa: BLE001 - the client went away; stderr has the error already
            pass

    def _tell(self, message: str) -> None:
        try:
            self.window_log_message(types.LogMessageParams(type=types.MessageType.Warning, message=message))
        except Exception:  # no client connected yet
            pass

    # -- status ---------------------------------------------------------------------------------------

    def status(self) -> dict:
        backend = self.backend
        return {
            "model": backend.model_name if backend else ("loading" if self.load_error is None else "unavailable"),
            "adapter": backend.adapter_id if backend else BASE_ADAPTER,
            "backend": getattr(backend, "engine", None) or self.config.model.backend,  # what `auto` chose
            "queueDepth": self._queued,
            "telemetry": self.telemetry,
            "version": VERSION,
            "error": self.load_error,
            "stats": dataclasses.asdict(self.stats),
            "tracking": len(self.trackers),
            "context": dataclasses.asdict(self.context.stats()) if self.context is not None else None,
        }

    def close(self, drain_s: float = STORE_DRAIN_S) -> bool:
        """Stop; first record the queued store writes, waiting at most ``drain_s`` seconds (an
        accept the editor sent just before it went away is kept). False if some were dropped."""
        if self._closed:
            return True
        self._closed = True
        self._scan_stop.set()
        if self.observer is not None:
            self.observer.stop()
        for pool in (self.model_pool, self.swap_pool, self.index_pool):
            pool.shutdown(wait=False, cancel_futures=True)
        log.info("exiting: recording %d queued store write(s), waiting up to %.0fs", self._store_queued, drain_s)
        last = self.store_pool.submit(lambda: None)  # one thread, in order: done when all before it are
        self.store_pool.shutdown(wait=False)
        try:
            last.result(timeout=drain_s)
            return True
        except concurrent.futures.TimeoutError:
            log.warning("exiting: %d store write(s) not recorded after %.0fs, dropped", self._store_queued, drain_s)
            self.store_pool.shutdown(wait=False, cancel_futures=True)
            return False


def language_for(uri: str, language_id: str | None) -> str:
    from agent.completion import language_of

    by_path = language_of(unquote(uri))
    if by_path != "plaintext" or not language_id:
        return by_path
    return language_id


def item_for(served: Served, text: str, position: types.Position) -> types.InlineCompletionItem:
    return types.InlineCompletionItem(
        insert_text=text,
        range=types.Range(start=position, end=position),
        command=types.Command(title="plumline: accepted", command=ACCEPT_COMMAND, arguments=[served.id]),
    )


def build_server(config: Config, *, backend=None, store=None) -> PlumlineServer:
    """A server with every feature registered (a new one per call, so tests can build several)."""
    server = PlumlineServer(config, backend=backend, store=store)

    @server.feature(types.INITIALIZED)
    def initialized(ls: PlumlineServer, params: types.InitializedParams) -> None:
        from lsp_server.watch import start_observer

        ls.loop = asyncio.get_running_loop()
        ls.observer = start_observer(ls)
        ls.start_context()
        ls.explain_load_error()  # the model may have failed before the client was listening

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: PlumlineServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.document_changed(params.text_document.uri, now=True)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: PlumlineServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.document_changed(params.text_document.uri, now=True)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(ls: PlumlineServer, params: types.InlineCompletionParams):
        result = await ls.suggest(params.text_document.uri, params.position)
        if result is None:
            return types.InlineCompletionList(items=[])
        return types.InlineCompletionList(items=[item_for(*result, params.position)])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=None))
    async def completion(ls: PlumlineServer, params: types.CompletionParams):
        result = await ls.suggest(params.text_document.uri, params.position)
        if result is None:
            return types.CompletionList(is_incomplete=True, items=[])
        served, text = result
        pos = params.position
        return types.CompletionList(is_incomplete=True, items=[types.CompletionItem(
            label=text.strip().split("\n", 1)[0][:80] or text,
            kind=types.CompletionItemKind.Text,
            detail="plumline",
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(start=pos, end=pos), new_text=text),
            command=types.Command(title="plumline: accepted", command=ACCEPT_COMMAND, arguments=[served.id]),
        )])

    @server.command(ACCEPT_COMMAND)
    def accept(ls: PlumlineServer, *args: Any) -> None:
        ls.accepted(args[0] if args and isinstance(args[0], str) else None)

    @server.feature("textDocument/didShowCompletion")
    def did_show(ls: PlumlineServer, params: Any) -> None:
        ls.event(completion_id_of(params), "shown")

    @server.feature("textDocument/didPartiallyAcceptCompletion")
    def did_partially_accept(ls: PlumlineServer, params: Any) -> None:
        data = plain(params) or {}
        length = data.get("acceptedLength") if isinstance(data, dict) else None
        ls.event(completion_id_of(params), "partial", float(length) if isinstance(length, (int, float)) else None)

    @server.feature("plumline/didDismissCompletion")
    def did_dismiss(ls: PlumlineServer, params: Any) -> None:
        data = plain(params) or {}
        reason = data.get("reason") if isinstance(data, dict) else None
        ls.event(completion_id_of(params), "dismissed", reason=reason or "unknown")

    @server.feature("plumline/status")
    def status(ls: PlumlineServer, params: Any) -> dict:
        return ls.status()

    @server.feature("plumline/telemetry")
    def telemetry(ls: PlumlineServer, params: Any) -> dict:
        """``{"enabled": true|false}`` sets logging; without a value it only reports it."""
        data = plain(params) or {}
        enabled = data.get("enabled") if isinstance(data, dict) else None
        if enabled is not None and not isinstance(enabled, bool):
            raise JsonRpcInvalidParams(f"plumline/telemetry: enabled must be true, false or absent (to ask), "
                                       f"got {enabled!r}")
        if enabled is not None and enabled != ls.telemetry:
            ls.telemetry = enabled
            log.info("telemetry %s", "on" if enabled else "off")
        return {"enabled": ls.telemetry}

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: PlumlineServer, params: Any) -> None:
        for pending in ls.pending.values():
            pending.cancel.set()
        if ls.observer is not None:
            ls.observer.stop()

    return server
