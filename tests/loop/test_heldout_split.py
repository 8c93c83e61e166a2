"""Held-out tasks are the ones that can judge: a task without an oracle is never held out.

Its tests could only be validated by agreement among the serving policy's own candidates, and held-out
tasks are never sampled, so it would sit in the held-out split judging nothing (issue 11, item 9).
"""

from __future__ import annotations

import json

from agent.collect import NO_ORACLE_TO_TRAIN, collect
from agent.tasks import import_path
from tests.loop.conftest import FakePolicy, add_task_row, make_config, write_jsonl

RIGHT_AND_WRONG = ["    return a + b", "    return a + b ", "    return b + a", "    return a - b"]


def test_oracle_less_heldout_task_moves_to_train_and_is_validated(store, tmp_path, sandbox):
    row = add_task_row(test="")  # no canonical solution, no benchmark tests: nothing could judge with it
    row.pop("canonical_solution")
    import_path(store, write_jsonl(tmp_path / "t.jsonl", [row]), heldout_fraction=0.999)
    assert next(store.rows("select split from tasks"))["split"] == "heldout"

    counts = collect(store, make_config(), policy=FakePolicy({"add": RIGHT_AND_WRONG}), sandbox=sandbox)
    task = next(store.rows("select * from tasks"))
    assert counts.heldout_to_train == 1
    assert task["split"] == "train" and json.loads(task["meta"])["split_moved"] == NO_ORACLE_TO_TRAIN
    # as a training task it is sampled, and its tests are validated by agreement
    assert store.db["samples"].count == 4
    assert store.db.execute("select count(*) from tests where valid is null").fetchone()[0] == 0
    assert store.db.execute("select count(*) from tests where valid = 1").fetchone()[0] >= 5


def test_heldout_task_with_an_oracle_stays_held_out(store, tmp_path, sandbox):
    import_path(store, write_jsonl(tmp_path / "t.jsonl", [add_task_row(test="")]), heldout_fraction=0.999)
    counts = collect(store, make_config(), policy=FakePolicy({"add": RIGHT_AND_WRONG}), sandbox=sandbox)
    task = next(store.rows("select * from tasks"))
    assert counts.heldout_to_train == 0
    assert task["split"] == "heldout" and task["status"] == "ready" and store.db["samples"].count == 0
