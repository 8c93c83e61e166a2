"""Cross-file context: which parts of your other files go into a suggestion's prompt, and how.

Sources (each can be turned off in ``[context]``):

* ``open_files``: files the editor opened or changed since the server started, from the editor's
  buffer (unsaved edits included), cut into windows of WINDOW_LINES lines;
* ``imports``: workspace files that the current file and the open files import (``import a.b``,
  ``from .c import d``), read from disk and cut the same way;
* ``symbols``: definitions anywhere in the workspace (classes, functions, module constants) that
  the text before the cursor names, in the lines above the cursor or in the file's imports from the
  workspace: signatures and docstrings only (a class: its header, docstring and method
  signatures), never bodies.

Ranking. A candidate's score is the Jaccard similarity between its set of identifiers and the set
of identifiers in the QUERY_LINES lines before the cursor (the sparse retriever of RepoCoder, and
llama.vim's chunk picker, use the same kind of measure). Why this one: a cross-file completion
mostly needs *names*; identifier overlap finds code that uses the names around the cursor, costs
microseconds with no model, and needs no corpus statistics kept in step with every edit (BM25
would). A definition named in the query window gets SYMBOL_BONUS on top, one the file imports
from the workspace IMPORTED_BONUS (both when both), so definitions rank before windows
("signatures and docstrings first"); names inside strings and comments do not count. Windows
scoring under MIN_SCORE are left out: an unrelated chunk only takes tokens from the current file.

Packing. By score, whole chunks, until ``context.budget_tokens`` or ``context.max_chunks``; a chunk
overlapping one already taken is skipped. The chosen chunks go into the prompt in a *stable* order
(by path, then line), not by score: the same set gives the same prompt text, so the engines'
prefix caches survive keystrokes. The query leaves out a half-typed identifier at the cursor for
the same reason. ``agent.models.prompts.fit_window`` then fits chunks and current file into the
model's one budget.

Latency. Reading and parsing happen off the request path: ``scan`` walks the workspace once (a
background thread, niced); ``update_open`` runs when the editor opens, changes (batched) or saves
a file; ``update_file``/``remove_file`` when watchdog sees a change on disk. A request only ranks
and packs what is indexed (``retrieve``) and never waits for the scan.

Memory is bounded whatever the workspace size: at most ``context.max_files`` files are indexed
(the rest are counted as ``limit``), each kept as its imports and its symbols' signatures (at most
MAX_SYMBOLS_PER_FILE, SYMBOL_CHARS characters each), and at most SYMBOL_TEXT_MAX characters of
signatures in all. Windows (with their identifier sets) are kept only for the last OPEN_FILES open
files and IMPORT_FILES imported ones, at most MAX_WINDOWS_PER_FILE each. bench/context.py measures
the index of a 50,000-file workspace.

Skipped, counted by reason in ``IndexStats.skipped`` (each file once per reason), never a crash:
``excluded`` (``privacy.exclude``), ``secrets`` (any secret the scrubber recognises), ``huge``
(> MAX_FILE_BYTES), ``binary`` (a NUL byte), ``undecodable`` (not UTF-8), ``generated`` (a
generated-file marker in its first lines, or a line over MAX_LINE_CHARS: minified), ``vanished``
(gone between listing and reading), ``unreadable`` (other OS errors, or not a regular file: a
pipe could block the scan forever), ``limit`` (over ``context.max_files``; or indexed without its
signatures, which would pass SYMBOL_TEXT_MAX). Folders in SKIP_DIRS and hidden folders are not
entered.

Privacy (design rule 7): an excluded file is never opened; a file holding a secret is never used,
not one chunk of it; and every chunk is scrubbed (``agent.privacy.scrub``) before it is kept, so
what enters a prompt is clean. Not protected: a secret in a form the scrubber does not recognise.
"""

from __future__ import annotations

import keyword
import os
import re
import stat
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from agent.models.prompts import Chunk, RepoContext, keep_by_rank
from agent.privacy import is_excluded, scrub

WINDOW_LINES = 20            # lines per window of an open or imported file
QUERY_LINES = 24             # lines before the cursor that make the query
OPEN_FILES = 16              # open files whose windows are kept (least recently changed dropped first)
IMPORT_FILES = 32            # imported files whose windows are kept (least recently used dropped first)
MAX_WINDOWS_PER_FILE = 100   # windows kept per file (its first 2,000 lines)
MAX_SYMBOLS_PER_FILE = 100
SYMBOL_CHARS = 600           # a signature + docstring (a class: + method signatures), cut at a line
SYMBOL_TEXT_MAX = 8_000_000  # characters of signatures in the whole index
DOC_LINES = 4                # docstring lines kept in a signature
MAX_DEFS_PER_NAME = 8        # definitions of one name considered per request
MAX_FILE_BYTES = 1_000_000
MAX_LINE_CHARS = 3_000
SYMBOL_BONUS = 1.0
IMPORTED_BONUS = 0.5
MIN_SCORE = 0.1
CANDIDATES_COUNTED = 32      # the best this many candidates are measured in tokens and packed
SOURCE_SUFFIXES = (".py", ".pyi")  # what the workspace scan indexes (open buffers can be any text)
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", "venv", "env", "build", "dist", "target"}
SKIP_REASONS = ("excluded", "secrets", "huge", "binary", "undecodable", "generated", "vanished", "unreadable",
                "limit")

_GENERATED = re.compile(r"@generated|do not edit|generated by|auto-?generated", re.I)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_USE = re.compile(r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*")  # a name, not an attribute (x.name)
_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+def|def|class)[ \t]+(?P<name>[A-Za-z_]\w*)")
_ASSIGN = re.compile(r"^(?P<name>[A-Za-z_]\w*)[ \t]*(?::[^=\n]*)?=(?!=)")
_IMPORT = re.compile(r"^[ \t]*import[ \t]+(?P<mods>[\w., \t]+)")
_FROM = re.compile(r"^[ \t]*from[ \t]+(?P<dots>\.*)(?P<mod>[\w.]*)[ \t]+import[ \t]+(?P<names>\(?[\w., \t*]*)")
STOP_WORDS = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | {
    "self", "cls", "args", "kwargs", "print", "len", "str", "int", "float", "bool", "list", "dict", "set",
    "tuple", "range", "isinstance", "super", "object", "type", "None", "True", "False"}


@dataclass
class ContextConfig:
    """Table ``[context]``: the cross-file context put into prompts (``agent.context``)."""

    enabled: bool = field(default=True, metadata={"help": "put code from other files of the workspace into prompts (false: the current file only)"})
    budget_tokens: int = field(default=256, metadata={"help": "most tokens the cross-file context may take; it shares model.context_tokens with the current file, which keeps at least half"})
    max_chunks: int = field(default=8, metadata={"help": "most chunks of other files in one prompt"})
    open_files: bool = field(default=True, metadata={"help": "use files the editor opened or changed since the server started"})
    imports: bool = field(default=True, metadata={"help": "use workspace files that the current file and the open files import"})
    symbols: bool = field(default=True, metadata={"help": "use signatures and docstrings of workspace definitions that the text before the cursor names"})
    max_files: int = field(default=20_000, metadata={"help": "most workspace files indexed (bounds memory; the rest are skipped and counted)"})

    def __post_init__(self) -> None:
        for name in ("budget_tokens", "max_chunks", "max_files"):
            if getattr(self, name) < 1:
                raise ValueError(f"context.{name} must be >= 1, got {getattr(self, name)} "
                                 "(to use no cross-file context, set context.enabled = false)")


def identifiers(text: str) -> frozenset[str]:
    """The identifiers of a text that can tell code apart (keywords and everyday builtins left out)."""
    return frozenset(t for t in _IDENT.findall(text) if len(t) > 1 and t not in STOP_WORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter) if inter else 0.0


def query_text(prefix: str) -> str:
    """The text a request is ranked against: the last QUERY_LINES lines before the cursor, without a
    half-typed identifier at the cursor (so the ranking, and the prompt, stay put while it is typed)."""
    lines = prefix.rsplit("\n", QUERY_LINES)[-QUERY_LINES:]
    text = "\n".join(lines)
    return _IDENT_TAIL.sub("", text)


_IDENT_TAIL = re.compile(r"[A-Za-z0-9_]+\Z")
_STRING = re.compile(r"""(?s)[rRbBuUfF]{0,2}(\"\"\".*?\"\"\"|'\'\'.*?'\'\'|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')""")
_COMMENT = re.compile(r"#[^\n]*")


def code_only(text: str) -> str:
    """Python text without its string literals and comments (a name in prose is not a use)."""
    return _COMMENT.sub("", _STRING.sub('""', text))


# -- reading files -----------------------------------------------------------------------------------

def screen_text(text: str, relpath: str) -> str | None:
    """Why a text must not be used as context (a SKIP_REASONS entry), or None when it may."""
    if len(text) > MAX_FILE_BYTES:
        return "huge"
    if "\0" in text[:8192]:
        return "binary"
    head = text[:2000].split("\n", 5)[:5]
    if any(_GENERATED.search(line) for line in head):
        return "generated"
    if any(len(line) > MAX_LINE_CHARS for line in text.split("\n")):
        return "generated"
    if scrub(text) != text:
        return "secrets"
    return None


def read_source(path: Path, relpath: str, exclude: list[str]) -> tuple[str | None, str | None]:
    """(text, None) for a file that may be used as context, else (None, reason)."""
    if is_excluded(relpath, exclude):
        return None, "excluded"
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return None, "unreadable"  # a pipe or device: reading it could block forever
        if info.st_size > MAX_FILE_BYTES:
            return None, "huge"
        data = path.read_bytes()
    except FileNotFoundError:
        return None, "vanished"
    except OSError:
        return None, "unreadable"
    if b"\0" in data[:8192]:
        return None, "binary"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "undecodable"
    reason = screen_text(text, relpath)
    return (None, reason) if reason else (text, None)


# -- what is kept of a file --------------------------------------------------------------------------

class Piece:
    """A candidate chunk: a window of a file or a symbol's signature. Identifier sets and token
    counts are computed once, when first needed."""

    __slots__ = ("path", "start", "text", "source", "name", "_idents", "ntok")

    def __init__(self, path: str, start: int, text: str, source: str, name: str = ""):
        self.path, self.start, self.text, self.source, self.name = path, start, text, source, name
        self._idents: frozenset[str] | None = None
        self.ntok: int | None = None

    @property
    def idents(self) -> frozenset[str]:
        if self._idents is None:
            self._idents = identifiers(self.text)
        return self._idents

    @property
    def end(self) -> int:
        return self.start + self.text.count("\n") + 1


def windows(relpath: str, text: str, source: str) -> list[Piece]:
    """A file cut into windows of WINDOW_LINES lines (blank edges trimmed, blank windows dropped),
    each scrubbed, with its identifier set computed now (off the request path)."""
    lines = text.split("\n")
    out: list[Piece] = []
    for i in range(0, len(lines), WINDOW_LINES):
        part = lines[i:i + WINDOW_LINES]
        lead = next((k for k, ln in enumerate(part) if ln.strip()), None)
        if lead is None:
            continue
        while not part[-1].strip():
            part = part[:-1]
        piece = Piece(relpath, i + lead, scrub("\n".join(part[lead:])), source)
        piece.idents  # noqa: B018 - computed here, on the indexing thread
        out.append(piece)
        if len(out) >= MAX_WINDOWS_PER_FILE:
            break
    return out


def _header_end(lines: list[str], i: int) -> int:
    """The index after a def/class header that starts at line i (it may span lines)."""
    depth = 0
    for k in range(i, min(len(lines), i + 12)):
        code = lines[k].split("#", 1)[0]
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth <= 0 and code.rstrip().endswith(":"):
            return k + 1
    return i + 1


def _docstring(lines: list[str], i: int) -> list[str]:
    """The first DOC_LINES lines of a docstring opening at line i (after blanks), closed."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines):
        return []
    first = lines[i].strip().lstrip("rRbBuU")
    quote = first[:3]
    if quote not in ('"""', "'''"):
        return []
    if first.count(quote) >= 2 and len(first) >= 6:
        return [lines[i]]
    out = [lines[i]]
    for k in range(i + 1, min(len(lines), i + DOC_LINES)):
        out.append(lines[k])
        if quote in lines[k]:
            return out
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    return out + [f"{indent}{quote}"]


def _cap(lines: list[str], limit: int = SYMBOL_CHARS) -> str:
    out, size = [], 0
    for ln in lines:
        if out and size + len(ln) + 1 > limit:
            break
        out.append(ln[:limit])
        size += len(ln) + 1
    return "\n".join(out)


def python_symbols(relpath: str, text: str) -> list[Piece]:
    """Top-level definitions of a Python file as signature pieces (line-based: a file that does not
    parse still yields what can be read)."""
    lines = text.split("\n")
    out: list[Piece] = []
    in_string: str | None = None
    i = 0
    while i < len(lines) and len(out) < MAX_SYMBOLS_PER_FILE:
        line = lines[i]
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            i += 1
            continue
        m = _DEF.match(line)
        if m and not m.group("indent"):
            end = _header_end(lines, i)
            body = lines[i:end]
            doc = _docstring(lines, end)
            body += doc
            if line.lstrip().startswith("class"):  # + the signatures of its public methods and __init__
                k, method_indent = end, None
                while k < len(lines) and (not lines[k].strip() or lines[k][:1] in " \t"):
                    mm = _DEF.match(lines[k])
                    if mm and mm.group("indent"):
                        method_indent = method_indent or len(mm.group("indent"))
                        name = mm.group("name")
                        if len(mm.group("indent")) == method_indent and (not name.startswith("_") or name == "__init__"):
                            body.append("\n".join(lines[k:_header_end(lines, k)]) + " ...")
                    k += 1
            out.append(Piece(relpath, i, scrub(_cap(body)), "symbol", m.group("name")))
            i = end
            continue
        a = _ASSIGN.match(line)
        if a and any(c.isupper() for c in a.group("name")):
            out.append(Piece(relpath, i, scrub(line[:160]), "symbol", a.group("name")))
        for quote in ('"""', "'''"):
            if line.count(quote) % 2 == 1:
                in_string = quote
                break
        i += 1
    return out


def python_imports(text: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """The imports of a Python file: (leading dots, module, names imported from it)."""
    out = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _FROM.match(line)
        if m:
            names = m.group("names")
            k = i
            while "(" in names and ")" not in names and k + 1 < len(lines) and k < i + 50:
                k += 1
                names += " " + lines[k].split("#", 1)[0]  # a comment after a name is not a name
            out.append((len(m.group("dots")), m.group("mod"),
                        tuple(n.split(" as ")[0].strip() for n in names.strip("() \t").split(",") if n.strip())))
            continue
        m = _IMPORT.match(line)
        if m:
            for mod in m.group("mods").split(","):
                mod = mod.strip().split(" as ")[0].strip()
                if mod:
                    out.append((0, mod, ()))
    return out


def module_names(relpath: str, package_root: str | None) -> list[str]:
    """The dotted names a workspace file can be imported by: its path from the workspace root, that
    path without a leading ``src``, and, when the root itself is a package, under the root's name."""
    p = PurePosixPath(relpath)
    parts = list(p.parent.parts) + ([] if p.stem == "__init__" else [p.stem])
    names = [".".join(parts)] if parts else []
    if parts[:1] == ["src"] and len(parts) > 1:
        names.append(".".join(parts[1:]))
    if package_root:
        names.append(".".join([package_root, *parts]))
    return names


# -- the index ---------------------------------------------------------------------------------------

@dataclass
class FileEntry:
    """What the index keeps of one workspace file."""

    symbols: list[Piece]
    imports: list[tuple[int, str, tuple[str, ...]]]


@dataclass
class IndexStats:
    """The index's state, for ``plumline/status`` and the benchmark."""

    files: int = 0                 # workspace files indexed (symbols and imports)
    symbols: int = 0
    symbol_chars: int = 0
    open_files: int = 0            # open files whose windows are kept
    import_files: int = 0          # imported files whose windows are kept
    skipped: dict[str, int] = field(default_factory=dict)
    scanning: bool = False
    scan_s: float | None = None    # how long the last workspace scan took
    requests: int = 0
    retrieve_ms_p50: float | None = None
    retrieve_ms_p95: float | None = None


class ContextIndex:
    """The workspace as candidate context, kept up to date off the request path; ``retrieve`` is
    what a request calls. Thread-safe: the scan, the indexing thread and the model thread share it."""

    def __init__(self, config: ContextConfig, exclude: list[str], roots: list[Path],
                 count_tokens: Callable[[str], int] | None = None):
        self.config = config
        self.exclude = list(exclude)
        self.roots = [Path(r).resolve() for r in roots]
        self.name = self.roots[0].name if self.roots else ""
        # a workspace that is itself a package is imported by its folder's name ("import rich.text")
        self.package = self.name if self.roots and (self.roots[0] / "__init__.py").exists() else None
        self.count_tokens = count_tokens  # set when the model's tokenizer is loaded; else an estimate
        self._lock = threading.RLock()
        self.files: dict[str, FileEntry] = {}
        self.by_name: dict[str, list[Piece]] = {}
        self.modules: dict[str, str] = {}
        self.open: OrderedDict[str, tuple[list[Piece], list]] = OrderedDict()  # relpath -> (windows, imports)
        self.imported: OrderedDict[str, list[Piece]] = OrderedDict()
        self.symbol_chars = 0
        self.skipped: Counter[str] = Counter()
        self._skip_seen: set[tuple[str, str]] = set()
        self.scanning = False
        self.scan_s: float | None = None
        self.timings: deque[float] = deque(maxlen=512)
        self._generation = 0  # bumped by every change to files, modules or open files' imports
        self._resolved: dict[str, tuple[int, list[str], dict[str, set[str]]]] = {}
        self.requests = 0

    # -- bookkeeping ---------------------------------------------------------------------------

    def _skip(self, relpath: str, reason: str) -> None:
        with self._lock:
            if (relpath, reason) not in self._skip_seen:
                self._skip_seen.add((relpath, reason))
                self.skipped[reason] += 1

    def relpath(self, path: Path) -> str | None:
        path = Path(path)
        for root in self.roots:
            try:
                return path.resolve().relative_to(root).as_posix()
            except (ValueError, OSError):
                continue
        return None

    def path_of(self, relpath: str) -> Path | None:
        for root in self.roots:
            p = root / relpath
            if p.exists():
                return p
        return self.roots[0] / relpath if self.roots else None

    def stats(self) -> IndexStats:
        with self._lock:
            t = sorted(self.timings)
            pick = lambda q: round(t[min(len(t) - 1, int(q * len(t)))], 3) if t else None  # noqa: E731
            return IndexStats(len(self.files), sum(len(v) for v in self.by_name.values()), self.symbol_chars,
                              len(self.open), len(self.imported), dict(self.skipped), self.scanning, self.scan_s,
                              self.requests, pick(0.5), pick(0.95))

    # -- indexing (off the request path) ---------------------------------------------------------

    def _put_file(self, relpath: str, text: str) -> None:
        """(Re)index one Python file's symbols and imports."""
        symbols = python_symbols(relpath, text) if relpath.endswith(SOURCE_SUFFIXES) else []
        imports = python_imports(text) if relpath.endswith(SOURCE_SUFFIXES) else []
        names = module_names(relpath, self.package) if relpath.endswith(SOURCE_SUFFIXES) else []
        with self._lock:
            if relpath not in self.files and len(self.files) >= self.config.max_files:
                self._skip(relpath, "limit")
                return
            self._drop_file(relpath)
            self._generation += 1
            size = sum(len(p.text) for p in symbols)
            if self.symbol_chars + size > SYMBOL_TEXT_MAX:
                symbols, size = [], 0
                self._skip(relpath, "limit")
            self.files[relpath] = FileEntry(symbols, imports)
            self.symbol_chars += size
            for p in symbols:
                self.by_name.setdefault(p.name, []).append(p)
            for name in names:
                self.modules.setdefault(name, relpath)

    def _drop_file(self, relpath: str) -> None:
        old = self.files.pop(relpath, None)
        if old is None:
            return
        self._generation += 1
        for name in module_names(relpath, self.package):
            if self.modules.get(name) == relpath:
                del self.modules[name]
        self.symbol_chars -= sum(len(p.text) for p in old.symbols)
        for p in old.symbols:
            defs = self.by_name.get(p.name)
            if defs is not None:
                defs[:] = [d for d in defs if d is not p]
                if not defs:
                    del self.by_name[p.name]

    def scan(self, stop: threading.Event | None = None, nice: bool = True, first: Path | None = None) -> IndexStats:
        """Walk the workspace once and index every source file (in the background: the thread is
        niced, and requests are answered from what is indexed so far); ``first``, a folder inside
        it, is walked before the rest; ``stop`` ends the walk early."""
        if nice:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except (AttributeError, OSError):
                pass
        start = time.perf_counter()
        with self._lock:
            self.scanning = True
        try:
            for root in self.roots:
                stack = [root] + ([Path(first)] if first is not None and Path(first).is_relative_to(root) else [])
                while stack:
                    folder = stack.pop()
                    try:
                        entries = sorted(os.scandir(folder), key=lambda e: e.name)
                    except OSError:
                        continue
                    for entry in entries:
                        if stop is not None and stop.is_set():
                            return self.stats()
                        rel = Path(entry.path).relative_to(root).as_posix()
                        try:
                            is_dir = entry.is_dir(follow_symlinks=False)
                        except OSError:
                            continue
                        if is_dir:
                            if entry.name.startswith(".") or entry.name in SKIP_DIRS or entry.name.endswith(".egg-info"):
                                continue
                            if is_excluded(rel, self.exclude):
                                self._skip(rel, "excluded")
                                continue
                            stack.append(Path(entry.path))
                        elif entry.name.endswith(SOURCE_SUFFIXES):
                            self._scan_file(Path(entry.path), rel)
        finally:
            with self._lock:
                self.scanning = False
                self.scan_s = round(time.perf_counter() - start, 3)
        self.refresh_imports()
        return self.stats()

    def _scan_file(self, path: Path, relpath: str) -> None:
        with self._lock:
            if relpath in self.files or relpath in self.open:
                return  # the editor's buffer (or an earlier pass) already gave it
            if len(self.files) >= self.config.max_files:
                self._skip(relpath, "limit")
                return
        text, reason = read_source(path, relpath, self.exclude)
        if text is None:
            self._skip(relpath, reason)
            return
        self._put_file(relpath, text)

    def update_open(self, relpath: str, text: str) -> str | None:
        """The editor opened, changed or saved a file: index its buffer. Returns the skip reason
        when the file may not be used as context (it is then forgotten), else None."""
        reason = "excluded" if is_excluded(relpath, self.exclude) else screen_text(text, relpath)
        if reason:
            self._skip(relpath, reason)
            self.forget(relpath)
            return reason
        pieces = self._counted(windows(relpath, text, "open"))
        imports = python_imports(text) if relpath.endswith(SOURCE_SUFFIXES) else []
        self._put_file(relpath, text)
        with self._lock:
            self._generation += 1
            self.open[relpath] = (pieces, imports)
            self.open.move_to_end(relpath)
            while len(self.open) > OPEN_FILES:
                self.open.popitem(last=False)
        self.prefetch_imports(relpath)
        return None

    def update_file(self, path: Path) -> None:
        """A workspace file changed on disk (watchdog) and the editor does not have it open."""
        relpath = self.relpath(path)
        if relpath is None:
            return
        if not Path(path).exists():
            self.remove_file(path)
            return
        if not relpath.endswith(SOURCE_SUFFIXES) and relpath not in self.open and relpath not in self.imported:
            return
        text, reason = read_source(Path(path), relpath, self.exclude)
        if text is None:
            self._skip(relpath, reason)
            self.forget(relpath)
            return
        self._put_file(relpath, text)
        with self._lock:
            self._generation += 1
            if relpath in self.open:
                self.open[relpath] = (self._counted(windows(relpath, text, "open")), python_imports(text))
            if relpath in self.imported:
                self.imported[relpath] = self._counted(windows(relpath, text, "import"))

    def remove_file(self, path: Path) -> None:
        relpath = self.relpath(path) if Path(path).is_absolute() else str(path)
        if relpath is not None:
            self.forget(relpath)

    def close_all(self) -> None:
        """No file counts as open any more (the editor's session ended)."""
        with self._lock:
            self.open.clear()
            self._generation += 1

    def forget(self, relpath: str) -> None:
        """Nothing of this file is used any more."""
        with self._lock:
            self._drop_file(relpath)
            self._generation += 1
            self.open.pop(relpath, None)
            self.imported.pop(relpath, None)

    def resolve(self, importer: str, spec: tuple[int, str, tuple[str, ...]]) -> list[str]:
        """The workspace files an import names (a module, and submodules imported from a package)."""
        dots, mod, names = spec
        found = []
        if dots:
            base = PurePosixPath(importer).parent
            for _ in range(dots - 1):
                base = base.parent
            stem = base.joinpath(*mod.split(".")) if mod else base
            targets = [f"{stem}.py", f"{stem}/__init__.py"] + [f"{stem}/{n}.py" for n in names if n != "*"]
            with self._lock:
                found = [t for t in (str(PurePosixPath(t)) for t in targets) if t in self.files or t in self.open]
        else:
            with self._lock:
                for name in [mod] + [f"{mod}.{n}" for n in names if n != "*"]:
                    if name in self.modules:
                        found.append(self.modules[name])
        return [f for f in found if f != importer]

    def _resolution(self, relpath: str) -> tuple[list[str], dict[str, set[str]]]:
        """(the workspace files ``relpath`` imports, the names it imports -> the files they may come
        from), kept until the index changes."""
        with self._lock:
            generation = self._generation
            cached = self._resolved.get(relpath)
            if cached is not None and cached[0] == generation:
                return cached[1], cached[2]
            entry = self.open.get(relpath)
            specs = entry[1] if entry else (self.files[relpath].imports if relpath in self.files else [])
        files: list[str] = []
        names: dict[str, set[str]] = {}
        for spec in specs:
            targets = self.resolve(relpath, spec)
            files.extend(f for f in targets if f not in files)
            for n in spec[2]:
                if n != "*":
                    names.setdefault(n, set()).update(targets)
        with self._lock:
            if len(self._resolved) > 1024:
                self._resolved.clear()
            self._resolved[relpath] = (generation, files, names)
        return files, names

    def imports_of(self, relpath: str) -> list[str]:
        """The workspace files ``relpath`` imports."""
        return self._resolution(relpath)[0]

    def prefetch_imports(self, relpath: str) -> None:
        """Read and window the files ``relpath`` imports, so a request finds them ready."""
        if not self.config.imports:
            return
        for target in self.imports_of(relpath)[:IMPORT_FILES]:
            with self._lock:
                if target in self.imported:
                    self.imported.move_to_end(target)
                    continue
            path = self.path_of(target)
            if path is None:
                continue
            text, reason = read_source(path, target, self.exclude)
            if text is None:
                self._skip(target, reason)
                continue
            pieces = self._counted(windows(target, text, "import"))
            with self._lock:
                self.imported[target] = pieces
                while len(self.imported) > IMPORT_FILES:
                    self.imported.popitem(last=False)

    def refresh_imports(self) -> None:
        """After a scan: resolve the open files' imports again (modules found since)."""
        with self._lock:
            opened = list(self.open)
        for relpath in opened:
            self.prefetch_imports(relpath)

    # -- a request: rank and pack -----------------------------------------------------------------

    def _counted(self, pieces: list[Piece]) -> list[Piece]:
        """Windows with their token counts, counted now (on the indexing thread) when the model's
        tokenizer is known, so a request does not count them."""
        if self.count_tokens is not None:
            for p in pieces:
                self._tokens(p)
        return pieces

    def _tokens(self, piece: Piece) -> int:
        if piece.ntok is None:
            text = f"{piece.path}\n{piece.text}\n"
            piece.ntok = self.count_tokens(text) if self.count_tokens is not None else len(text) // 3 + 1
        return piece.ntok

    def imported_names(self, relpath: str) -> dict[str, set[str]]:
        """The names the file imports from workspace files: name -> the files it may come from."""
        return self._resolution(relpath)[1]

    def candidates(self, relpath: str | None, prefix: str) -> list[tuple[float, Piece]]:
        """Every candidate for a request at the end of ``prefix`` in ``relpath``, scored: windows by
        Jaccard similarity to the query; definitions the query names (SYMBOL_BONUS), or that the
        file imports from the workspace (IMPORTED_BONUS; both when both), plus their similarity."""
        cfg = self.config
        query = query_text(prefix)
        q = identifiers(query)
        named = {n for n in _NAME_USE.findall(code_only(query)) if len(n) > 1 and n not in STOP_WORDS}
        mine = self.imports_of(relpath) if relpath else []
        imported_names = self.imported_names(relpath) if relpath and cfg.symbols else {}
        with self._lock:
            opened = [pieces for path, (pieces, _) in self.open.items() if path != relpath] if cfg.open_files else []
            wanted = set(mine)
            for path in list(self.open):
                if path != relpath:
                    wanted.update(f for f in (self.imports_of(path) if cfg.imports else []) if f != relpath)
            imported = [pieces for path, pieces in self.imported.items() if path in wanted] if cfg.imports else []
            defs: dict[int, tuple[float, Piece]] = {}
            if cfg.symbols:
                for n in named:
                    for p in self.by_name.get(n, [])[:MAX_DEFS_PER_NAME]:
                        defs[id(p)] = (SYMBOL_BONUS, p)
                for n, files in imported_names.items():
                    for p in self.by_name.get(n, []):
                        if p.path in files:
                            bonus = defs.get(id(p), (0.0, p))[0]
                            defs[id(p)] = (bonus + IMPORTED_BONUS, p)
        scored: list[tuple[float, Piece]] = []
        for group in opened + imported:
            for p in group:
                s = jaccard(q, p.idents)
                if s >= MIN_SCORE:
                    scored.append((s, p))
        for bonus, p in defs.values():
            if p.path != relpath:
                scored.append((bonus + jaccard(q, p.idents), p))
        return scored

    def retrieve(self, relpath: str | None, prefix: str, suffix: str = "") -> RepoContext | None:
        """The cross-file context for a request: ranked, packed into ``context.budget_tokens`` and
        ``context.max_chunks``, in prompt order. None when context is off; no chunks when nothing
        fits or matches. Reads only what is indexed."""
        if not self.config.enabled:
            return None
        start = time.perf_counter()
        scored = self.candidates(relpath, prefix)
        scored.sort(key=lambda sp: (-sp[0], sp[1].path, sp[1].start))  # ties: a stable order
        scored = scored[:CANDIDATES_COUNTED]
        pieces = [p for _, p in scored]
        overlap = lambda i, j: (pieces[i].path == pieces[j].path and pieces[i].start < pieces[j].end  # noqa: E731
                                and pieces[j].start < pieces[i].end)
        kept = keep_by_rank([s for s, _ in scored], [self._tokens(p) for p in pieces], self.config.budget_tokens,
                            self.config.max_chunks, clash=overlap)
        taken = sorted((scored[i] for i in kept), key=lambda sp: (sp[1].path, sp[1].start))
        chunks = tuple(Chunk(p.path, p.text, p.start, p.source, round(s, 4)) for s, p in taken)
        with self._lock:
            self.requests += 1
            self.timings.append((time.perf_counter() - start) * 1000)
        return RepoContext(self.name, relpath or "", chunks)


WORKSPACE_MARKERS = (".git", "pyproject.toml", "setup.py", "setup.cfg")
CLI_SCAN_S = 1.0  # how long `plumline complete` may spend indexing the workspace


def workspace_of(path: Path) -> Path:
    """The workspace a file belongs to: the nearest folder above it with a project marker
    (WORKSPACE_MARKERS), else its own folder."""
    path = Path(path).resolve()
    for parent in path.parents:
        if any((parent / m).exists() for m in WORKSPACE_MARKERS):
            return parent
    return path.parent


def context_for_file(config: ContextConfig, exclude: list[str], path: Path, prefix: str, suffix: str = "",
                     count_tokens: Callable[[str], int] | None = None, scan_s: float = CLI_SCAN_S) -> RepoContext | None:
    """One-off retrieval for a file position (``plumline complete``): index its workspace now, for at
    most ``scan_s`` seconds (a file far down a large tree must not make one completion slow), with
    the file's current text as the open file, then rank and pack as the server does."""
    if not config.enabled:
        return None
    path = Path(path).resolve()
    index = ContextIndex(config, exclude, [workspace_of(path)], count_tokens=count_tokens)
    stop = threading.Event()
    timer = threading.Timer(scan_s, stop.set)
    timer.start()
    try:
        index.scan(stop=stop, nice=False, first=path.parent)  # the file's own folder first
    finally:
        timer.cancel()
    relpath = index.relpath(path)
    if relpath is not None:
        index.update_open(relpath, prefix + suffix)
    return index.retrieve(relpath, prefix, suffix)
