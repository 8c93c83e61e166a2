"""Logged completions → tasks inside `collect` (watermark, oracle from the kept function, skips)."""

from __future__ import annotations

import json
import os
import time

from agent.collect import collect
from tests.loop.conftest import ADD_PROMPT, make_config


def test_collect_turns_logged_completions_into_tasks_once(store, tmp_path):
    path = tmp_path / "m.py"
    path.write_text(ADD_PROMPT + "    result = a + b\n    return result\n")
    old = time.time() - 3600
    os.utime(path, (old, old))
    accepted = store.record_completion(text="    return a + b", model="m", adapter_id="base", prefix=ADD_PROMPT,
                                       suffix="", relpath="m.py", uri=path.as_uri(), language="python", mode="block")
    store.record_event(accepted, "accepted")
    store.record_completion(text="x", model="m", adapter_id="base", prefix="let a = ", suffix="", relpath="a.js",
                            language="javascript", mode="line")
    config = make_config(oracle_stable_s=60)
    first = collect(store, config, tasks_only=True, clock=time.time() + 120)
    assert (first.completions_read, first.tasks_added, first.tasks_skipped) == (2, 1, 1)
    task = next(store.rows("select * from tasks where status = 'new'"))
    assert task["source"] == "completion" and task["oracle_source"] == "kept" and "return result" in task["oracle"]
    assert json.loads(task["meta"])["completion_ids"] == [accepted]
    skipped = next(store.rows("select * from tasks where status = 'skipped'"))
    assert skipped["skip_reason"] == "not_python"
    again = collect(store, config, tasks_only=True, clock=time.time() + 120)
    assert again.completions_read == 0 and store.db["tasks"].count == 2


def test_recent_completions_wait_until_they_can_have_persisted(store):
    store.record_completion(text="    return a + b", model="m", adapter_id="base", prefix=ADD_PROMPT, relpath="m.py",
                            language="python")
    counts = collect(store, make_config(oracle_stable_s=600), tasks_only=True)
    assert counts.completions_read == 0 and store.db["tasks"].count == 0
