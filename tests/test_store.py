"""The store: schema, privacy of the file, concurrent writers, clear errors."""

import multiprocessing
import os
import stat

import pytest

from agent.store import Store, StoreError

TABLES = {"completions", "events", "tasks", "tests", "samples", "verdicts", "pairs", "adapters",
          "train_runs", "gate_decisions", "state"}


def test_schema_has_every_table(tmp_path):
    store = Store(tmp_path / "p.db")
    assert TABLES <= set(store.db.table_names())


def test_file_is_private_and_wal(tmp_path):
    path = tmp_path / "p.db"
    store = Store(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.db.journal_mode == "wal"


def test_migrations_are_idempotent(tmp_path):
    Store(tmp_path / "p.db").record_completion(text="x", model="m", adapter_id="base")
    store = Store(tmp_path / "p.db")
    assert store.db["completions"].count == 1


def test_every_completion_carries_an_adapter(tmp_path):
    store = Store(tmp_path / "p.db")
    with pytest.raises(ValueError, match="adapter_id"):
        store.record_completion(text="x", model="m", adapter_id="")


def test_events_copy_the_adapter_and_update_status(tmp_path):
    store = Store(tmp_path / "p.db")
    cid = store.record_completion(text="x", model="m", adapter_id="a1")
    store.record_event(cid, "shown")
    store.record_event(cid, "accepted", 1.0)
    events = list(store.rows("select kind, adapter_id from events order by id"))
    assert events == [{"kind": "shown", "adapter_id": "a1"}, {"kind": "accepted", "adapter_id": "a1"}]
    assert store.get("completions", cid)["status"] == "accepted"


def test_event_for_unknown_completion_is_refused(tmp_path):
    store = Store(tmp_path / "p.db")
    with pytest.raises(KeyError):
        store.record_event("nope", "shown")


def _writer(path, n, tag):
    store = Store(path)
    for i in range(n):
        store.record_completion(text=f"{tag}-{i}", model="m", adapter_id=tag)


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "p.db"
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 200, f"w{k}")) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert all(p.exitcode == 0 for p in procs)
    store = Store(path)
    assert store.db["completions"].count == 600
    assert store.db.execute("pragma integrity_check").fetchone()[0] == "ok"


def test_corrupt_file_gives_clear_error(tmp_path):
    path = tmp_path / "p.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="damaged"):
        Store(path)


def test_locked_database_gives_clear_error_and_keeps_rows(tmp_path, monkeypatch):
    import agent.store as store_mod

    path = tmp_path / "p.db"
    store = Store(path)
    store.record_completion(text="kept", model="m", adapter_id="base")
    other = Store(path)
    other.db.execute("BEGIN EXCLUSIVE")
    store.db.execute("PRAGMA busy_timeout = 100")
    with pytest.raises(StoreError, match="locked"):
        store.record_completion(text="y", model="m", adapter_id="base")
    other.db.execute("ROLLBACK")
    assert [r["text"] for r in store.rows("select text from completions")] == ["kept"]


def test_full_disk_gives_clear_error_and_keeps_rows(tmp_path):
    path = tmp_path / "p.db"
    store = Store(path)
    store.record_completion(text="kept", model="m", adapter_id="base")
    page = store.db.execute("pragma page_count").fetchone()[0]
    store.db.execute(f"pragma max_page_count = {page}")  # the file may not grow: a full disk
    with pytest.raises(StoreError, match="full"):
        store.write("completions", {"id": "big", "text": "x" * 200_000, "model": "m", "adapter_id": "base",
                                    "created_at": 0.0})
    assert [r["text"] for r in store.rows("select text from completions")] == ["kept"]
