"""The store: one SQLite file (via sqlite-utils) that every part of the loop reads and writes.

What lives here, table by table (the schema is created by the migrations below):

* ``completions`` – every suggestion served: the context as sent (scrubbed; ``context`` holds the
  cross-file chunks), the text, model, ``adapter_id``, latency, where it was asked for, and its
  current ``status``.
* ``events`` – what happened to a suggestion: shown, accepted, partial, dismissed, superseded,
  persistence checks. Each event repeats the ``adapter_id`` so per-adapter figures need no join.
* ``tasks`` / ``tests`` – self-contained coding tasks and their synthesized tests (with source and
  validation result).
* ``samples`` / ``verdicts`` – on-policy candidates (with the adapter, base model fingerprint and
  decoding that made them) and their per-test sandbox verdicts.
* ``pairs`` – preference pairs built from pass rates.
* ``adapters`` / ``train_runs`` / ``gate_decisions`` – the trainer's registry and history.
* ``state`` – small key/value watermarks (e.g. how far `collect` has read).

Guarantees: WAL mode so the language server and the trainer can write at the same time; a busy
timeout instead of "database is locked" failures; file mode 0600; schema changes only through
``MIGRATIONS``, applied under the write lock (processes that open the store at once, e.g. the ranks
of `accelerate launch`, never apply one twice); multi-row writes inside ``store.atomic()`` so a
crash or a full disk loses nothing that was already committed. ``atomic()`` takes the write lock
up front (``BEGIN IMMEDIATE``): a deferred transaction that reads first and writes later cannot
wait for another process's write lock in WAL mode (SQLite answers "database is locked" at once),
so two writers would fail.

Privacy (design rule 7): every value bound to a statement passes through ``agent.privacy.scrub``
on its way in, whatever module writes it (tasks, tests, samples, verdicts, pairs, completions,
events, training runs), through ``store.write``, ``store.db[...]`` (sqlite-utils) or a raw
``store.db.execute``: the connection's cursors scrub their parameters (``ScrubbingConnection``). Reads
bind scrubbed parameters too, so a lookup finds what was stored. Not covered: text spliced into the
SQL itself instead of bound (nothing here does that; keep it so), another program writing the file,
and rows written before this guard existed. ``Store(path, scrub=False)`` (``privacy.scrub = false``)
turns it off. Excluded paths are kept out where files are read (``agent.tasks``, ``agent.synth``,
``agent.completion``), not here: the store never sees where a text came from.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils
from sqlite_utils.migrations import Migrations

from agent.privacy import scrub

BUSY_TIMEOUT_MS = 30_000

MIGRATIONS = Migrations("plumline")


@MIGRATIONS()
def m0001_initial(db: sqlite_utils.Database) -> None:
    db["completions"].create(
        {
            "id": str, "created_at": float, "source": str, "uri": str, "relpath": str, "language": str,
            "line": int, "col": int, "mode": str, "prefix": str, "suffix": str, "prompt": str,
            "text": str, "model": str, "adapter_id": str, "decoding": str, "latency_ms": float,
            "status": str,
        },
        pk="id",
        not_null={"created_at", "adapter_id", "model"},
        defaults={"status": "served"},
    )
    db["completions"].create_index(["adapter_id", "created_at"])
    db["events"].create(
        {"id": int, "completion_id": str, "kind": str, "value": float, "adapter_id": str,
         "created_at": float, "detail": str},
        pk="id",
        not_null={"completion_id", "kind", "created_at"},
    )
    db["events"].create_index(["completion_id"])
    db["events"].create_index(["adapter_id", "kind"])
    db["tasks"].create(
        {"id": str, "created_at": float, "source": str, "origin": str, "relpath": str,
         "prompt": str, "entry_point": str, "context": str, "oracle": str, "oracle_source": str,
         "split": str, "status": str, "skip_reason": str, "hash": str, "meta": str},
        pk="id",
    )
    db["tasks"].create_index(["hash"], unique=True)
    db["tests"].create(
        {"id": int, "task_id": str, "source": str, "code": str, "valid": int, "reason": str,
         "weight": float, "created_at": float},
        pk="id",
    )
    db["tests"].create_index(["task_id", "code"], unique=True)
    db["samples"].create(
        {"id": str, "task_id": str, "adapter_id": str, "model": str, "completion": str,
         "program": str, "decoding": str, "pass_rate": float, "n_tests": int, "created_at": float},
        pk="id",
    )
    db["samples"].create_index(["task_id", "adapter_id"])
    db["verdicts"].create(
        {"id": int, "sample_id": str, "test_id": int, "status": str, "duration_s": float,
         "detail": str, "backend": str, "created_at": float},
        pk="id",
    )
    db["verdicts"].create_index(["sample_id", "test_id"], unique=True)
    db["pairs"].create(
        {"id": int, "task_id": str, "chosen_id": str, "rejected_id": str, "chosen_rate": float,
         "rejected_rate": float, "adapter_id": str, "created_at": float, "used_by": str},
        pk="id",
    )
    db["pairs"].create_index(["chosen_id", "rejected_id"], unique=True)
    db["adapters"].create(
        {"id": str, "parent": str, "method": str, "path": str, "base_model": str, "status": str,
         "created_at": float, "promoted_at": float, "metrics": str, "data_window": str},
        pk="id",
    )
    db["train_runs"].create(
        {"id": str, "method": str, "adapter_id": str, "parent_adapter": str, "started_at": float,
         "finished_at": float, "status": str, "config": str, "metrics": str},
        pk="id",
    )
    db["gate_decisions"].create(
        {"id": int, "candidate": str, "current": str, "decision": str, "reason": str,
         "metrics": str, "created_at": float},
        pk="id",
    )
    db["state"].create({"key": str, "value": str}, pk="key")


@MIGRATIONS()
def m0002_base_fingerprint(db: sqlite_utils.Database) -> None:
    """Samples and completions record their base model by ``agent.adapters.base_fingerprint``, not
    only by ``model`` (a path): when the model cache moves, the data still belongs to its base.
    Earlier rows get the fingerprint of their model folder where it still exists."""
    from agent.adapters import base_fingerprint

    for table in ("samples", "completions"):
        db[table].add_column("base_fingerprint", str)
        for (model,) in db.execute(f"select distinct model from {table} where model is not null").fetchall():
            if (Path(model) / "config.json").is_file():
                db.execute(f"update {table} set base_fingerprint = ? where model = ?", [base_fingerprint(model), model])


@MIGRATIONS()
def m0003_completion_context(db: sqlite_utils.Database) -> None:
    """Completions record the cross-file context their prompt carried (``agent.context``; JSON of
    ``RepoContext.to_dict``, null when the prompt had none), so tasks made from them, and the
    training that follows, rebuild exactly the serving prompt."""
    db["completions"].add_column("context", str)


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says why and what to do."""


def _explain(exc: sqlite3.Error, path: Path | str) -> StoreError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(
            f"the store {path} stayed locked for {BUSY_TIMEOUT_MS // 1000}s by another process "
            "(a long `plumline collect` or `train`?). Nothing was lost; try again when it finishes."
        )
    if "disk is full" in text or "disk I/O" in text:
        return StoreError(
            f"cannot write to the store {path}: the disk is full or failing ({text}). "
            "Nothing already stored was lost; free some space and try again."
        )
    if "not a database" in text or "malformed" in text:
        return StoreError(
            f"the store {path} is damaged ({text}). Move it aside (plumline will start a new one) "
            "and keep the old file for recovery with `sqlite3 {path} .recover`."
        )
    return StoreError(f"store {path}: {text}")


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


def _scrubbed(parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return {k: scrub(v) if isinstance(v, str) else v for k, v in parameters.items()}
    return [scrub(v) if isinstance(v, str) else v for v in parameters]


class ScrubbingCursor(sqlite3.Cursor):
    """A cursor that scrubs secrets out of every string it binds."""

    def execute(self, sql: str, parameters: Any = (), /) -> "ScrubbingCursor":
        return super().execute(sql, _scrubbed(parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> "ScrubbingCursor":
        return super().executemany(sql, (_scrubbed(p) for p in seq_of_parameters))


class ScrubbingConnection(sqlite3.Connection):
    """The store's connection: every statement runs on a ``ScrubbingCursor``, the one place all
    writes go through (``Connection.execute`` is a shortcut that does not call ``cursor()``, so it
    is routed here too)."""

    def cursor(self, factory: Any = None) -> ScrubbingCursor:  # a caller's factory would skip the scrubber
        return super().cursor(ScrubbingCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> ScrubbingCursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> ScrubbingCursor:
        return self.cursor().executemany(sql, seq_of_parameters)


class Store:
    """A thin, typed face over the SQLite file. Other modules may use ``store.db`` directly."""

    def __init__(self, path: Path | str | None = None, *, memory: bool = False, scrub: bool = True):
        self.path = Path(path) if path else None
        self.scrubs = scrub
        factory = ScrubbingConnection if scrub else sqlite3.Connection
        try:
            if memory or self.path is None:
                self.db = sqlite_utils.Database(sqlite3.connect(":memory:", factory=factory, check_same_thread=False))
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():
                    # Create the file private to the user before SQLite opens it (rule 7).
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
                os.chmod(self.path, 0o600)
                conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False,
                                       factory=factory)
                self.db = sqlite_utils.Database(conn)
                self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                if self.db.journal_mode != "wal":
                    self.db.enable_wal()
                self.db.execute("PRAGMA synchronous = NORMAL")
            if MIGRATIONS.pending(self.db):
                with self.atomic():  # one process migrates; one opening at the same time waits, then finds none pending
                    MIGRATIONS.apply(self.db)
        except sqlite3.Error as exc:
            raise _explain(exc, self.path or ":memory:") from None
        except OSError as exc:
            raise StoreError(f"cannot open the store {self.path}: {exc.strerror}. Check PLUMLINE_HOME.") from None

    # -- writing -----------------------------------------------------------------------------

    def clean(self, text: str | None) -> str | None:
        """``text`` as this store will keep it (scrubbed unless scrubbing is off): for values
        derived from a text before it is written, such as a hash."""
        return scrub(text) if self.scrubs else text

    @contextlib.contextmanager
    def atomic(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction that holds the write lock from its start (nested: a savepoint)."""
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.rollback()
            raise
        else:
            try:
                self.db.execute("COMMIT")
            except BaseException:
                self.db.rollback()
                raise

    def write(self, table: str, row: dict[str, Any], *, pk: str = "id", replace: bool = False) -> Any:
        """Insert one row (JSON-encoding dict/list values), turning SQLite errors into StoreError."""
        row = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()}
        try:
            with self.atomic():
                tbl = self.db[table]
                if replace:
                    tbl.upsert(row, pk=pk)
                else:
                    tbl.insert(row)
                return row.get(pk, tbl.last_pk)
        except sqlite3.Error as exc:
            raise _explain(exc, self.path or ":memory:") from None

    def update(self, table: str, pk: Any, values: dict[str, Any]) -> None:
        values = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in values.items()}
        try:
            with self.atomic():
                self.db[table].update(pk, values)
        except sqlite3.Error as exc:
            raise _explain(exc, self.path or ":memory:") from None

    def record_completion(self, **fields: Any) -> str:
        """Store one served suggestion. Needs at least text, model and adapter_id; returns its id."""
        fields.setdefault("id", new_id())
        fields.setdefault("created_at", now())
        fields.setdefault("status", "served")
        for required in ("model", "adapter_id"):
            if not fields.get(required):
                raise ValueError(f"record_completion needs {required!r}: every record carries the policy that made it")
        return self.write("completions", fields)

    def record_event(self, completion_id: str, kind: str, value: float | None = None, **detail: Any) -> int:
        """Store what happened to a suggestion; copies its adapter_id and updates its status."""
        row = self.db.execute("select adapter_id from completions where id = ?", [completion_id]).fetchone()
        if row is None:
            raise KeyError(f"no completion {completion_id!r} in the store")
        try:
            with self.atomic():
                self.db["events"].insert({
                    "completion_id": completion_id, "kind": kind, "value": value, "adapter_id": row[0],
                    "created_at": now(), "detail": json.dumps(detail) if detail else None,
                })
                event_id = self.db["events"].last_pk
                if kind in ("shown", "accepted", "partial", "dismissed", "superseded"):
                    self.db["completions"].update(completion_id, {"status": kind})
            return event_id
        except sqlite3.Error as exc:
            raise _explain(exc, self.path or ":memory:") from None

    # -- reading -----------------------------------------------------------------------------

    def rows(self, sql: str, params: list | tuple | dict = ()) -> Iterator[dict[str, Any]]:
        try:
            yield from self.db.query(sql, params)
        except sqlite3.Error as exc:
            raise _explain(exc, self.path or ":memory:") from None

    def get(self, table: str, pk: Any) -> dict[str, Any] | None:
        try:
            return self.db[table].get(pk)
        except sqlite_utils.db.NotFoundError:
            return None

    def get_state(self, key: str, default: str | None = None) -> str | None:
        row = self.get("state", key)
        return row["value"] if row else default

    def set_state(self, key: str, value: str) -> None:
        self.write("state", {"key": key, "value": value}, pk="key", replace=True)

    def close(self) -> None:
        self.db.close()


def open_store(config) -> Store:
    """The user's store under the data home (see agent.config), scrubbing unless ``privacy.scrub`` is off."""
    return Store(config.store_path, scrub=config.privacy.scrub)
