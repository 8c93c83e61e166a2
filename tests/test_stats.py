"""`plumline stats` on a real store file: figures per adapter, loop figures, plot, empty store."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from agent.stats import adapter_figures, loop_figures
from agent.store import Store


def plumline(*args):
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True,
                          env=dict(os.environ), timeout=120)


def fill(store: Store) -> None:
    for i in range(4):
        cid = store.record_completion(text="return x" + "!" * i, model="m", adapter_id="base", latency_ms=100.0 + i)
        store.record_event(cid, "shown")
        store.record_event(cid, "shown")  # a re-sent notification counts once
        if i == 0:
            store.record_event(cid, "accepted", 8.0)
            store.record_event(cid, "persist", 1.0, after_s=30)
            store.record_event(cid, "persist", 0.5, after_s=120)
    for i in range(2):
        cid = store.record_completion(text="y", model="m", adapter_id="a1", latency_ms=50.0)
        store.record_event(cid, "shown")
        store.record_event(cid, "accepted", 1.0)
    store.write("tasks", {"id": "t1", "status": "ready", "created_at": 1.0e9 * 2})
    store.write("tests", {"task_id": "t1", "source": "policy", "code": "assert f(1) == 1", "valid": 1, "created_at": 2e9})
    store.write("tests", {"task_id": "t1", "source": "policy", "code": "assert f(2) == 9", "valid": 0, "created_at": 2e9})
    store.write("samples", {"id": "s1", "task_id": "t1", "adapter_id": "base", "pass_rate": 0.95, "created_at": 2e9})
    store.write("samples", {"id": "s2", "task_id": "t1", "adapter_id": "base", "pass_rate": 0.1, "created_at": 2e9})
    store.write("gate_decisions", {"candidate": "a1", "current": "base", "decision": "promote", "reason": "better",
                                   "metrics": {"heldout": {"current_pass1": 0.1, "candidate_pass1": 0.3}}, "created_at": 2e9})


def test_acceptance_and_persistence_per_adapter(tmp_path):
    store = Store(tmp_path / "p.db")
    fill(store)
    figs = {a.adapter_id: a for a in adapter_figures(store)}
    assert figs["base"].shown == 4 and figs["base"].accepted == 1
    assert figs["base"].acceptance_rate == 0.25
    assert figs["base"].persistence == {"30s": 1.0, "120s": 0.5}
    assert figs["a1"].acceptance_rate == 1.0
    assert figs["base"].latency_p50_ms == 101.5


def test_loop_figures_count_kept_and_dropped_tests(tmp_path):
    store = Store(tmp_path / "p.db")
    fill(store)
    loop = loop_figures(store)
    assert loop.tests_by_source["policy"] == {"kept": 1, "dropped": 1, "unchecked": 0}
    assert loop.pass_rate_histogram[9] == 1 and loop.pass_rate_histogram[1] == 1
    assert loop.gate_decisions[0]["decision"] == "promote"


def test_stats_json_and_plot(plumline_home, tmp_path):
    fill(Store(plumline_home / "plumline.db"))
    out = plumline("stats", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {a["adapter_id"] for a in data["adapters"]} == {"base", "a1"}
    png = tmp_path / "stats.png"
    out = plumline("stats", "--plot", str(png))
    assert out.returncode == 0, out.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_store_says_how_to_get_data(plumline_home):
    out = plumline("stats")
    assert out.returncode == 1
    assert "plumline demo" in out.stderr
    Store(plumline_home / "plumline.db").close()
    out = plumline("stats")
    assert out.returncode == 0
    assert "Nothing recorded yet" in out.stdout


def test_bad_since_is_explained(plumline_home):
    out = plumline("stats", "--since", "last tuesday")
    assert out.returncode == 2
    assert "7d" in out.stderr


def test_json_on_an_empty_store_is_valid_json_with_zero_counts(plumline_home):
    """A script that reads `plumline stats --json` works before anything is recorded: no store file
    yet, then an empty one. Exit 0, zero counts, and a message saying how to get data."""
    for _ in ("no file", "empty file"):
        out = plumline("stats", "--json")
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        assert data["empty"] is True and data["adapters"] == []
        assert data["loop"]["candidates"] == 0 and data["loop"]["pairs"] == 0
        assert sum(data["loop"]["pass_rate_histogram"]) == 0
        assert "plumline demo" in data["message"]
        Store(plumline_home / "plumline.db").close()
