"""score_candidates: the grader collect, the gate and the GRPO reward share."""

from __future__ import annotations

from agent.execute import score_candidates
from sandbox import Limits
from agent.store import Store
from tests.loop.conftest import ADD_PROMPT

TASK = {"id": "t", "prompt": ADD_PROMPT, "entry_point": "add"}
TESTS = ["assert add(1, 1) == 2", "assert add(2, 3) == 5", "assert add(0, 0) == 0", "assert add(5, 5) == 10"]


def test_score_candidates_gives_pass_rates(sandbox):
    rates = score_candidates(sandbox, [TASK], [["    return a + b", "    return a * b", "    while True: pass",
                                                "    import os; os._exit(0)"]], [TESTS], limits=Limits(timeout_s=0.5))
    assert rates == [[1.0, 0.25, 0.0, 0.0]]  # a*b passes only add(0, 0); a hang and an exit pass nothing


def test_score_candidates_stores_one_verdict_per_sample_and_test(sandbox, tmp_path):
    store = Store(tmp_path / "e.db")
    store.write("tasks", {"id": "t", "prompt": ADD_PROMPT, "entry_point": "add", "hash": "h"})
    rows = []
    for code in TESTS:
        tid = store.write("tests", {"task_id": "t", "source": "policy", "code": code, "valid": 1, "weight": 1.0})
        rows.append({"id": tid, "code": code, "weight": 1.0})
    store.write("samples", {"id": "s1", "task_id": "t", "adapter_id": "base", "model": "m", "completion": "    return a - b"})
    rates = score_candidates(sandbox, [TASK], [["    return a - b"]], {"t": rows}, store=store, sample_ids=[["s1"]])
    assert rates == [[0.25]]
    assert store.db["verdicts"].count == 4 and store.get("samples", "s1")["pass_rate"] == 0.25


def test_valid_tests_separates_synthesized_from_ground_truth(tmp_path):
    from agent.execute import valid_tests

    store = Store(tmp_path / "v.db")
    for source, code, valid in [("policy", "assert add(1, 1) == 2", 1), ("policy", "assert add(1, 1) == 3", 0),
                                ("humaneval", "assert add(2, 2) == 4", 1), ("docstring", "assert add(1, 2) == 3", 1)]:
        store.write("tests", {"task_id": "t", "source": source, "code": code, "valid": valid, "weight": 1.0})
    assert [r["code"] for r in valid_tests(store, ["t"])["t"]] == ["assert add(1, 1) == 2", "assert add(1, 2) == 3"]
    assert [r["code"] for r in valid_tests(store, ["t"], ground_truth=True)["t"]] == ["assert add(2, 2) == 4"]
