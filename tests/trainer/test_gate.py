"""The gate promotes only beyond noise, scores with real sandbox verdicts, and stores decisions."""

from __future__ import annotations

import json

from agent.adapters import base_fingerprint
from tests.trainer.conftest import TASKS, FakePolicy, add_task, make_adapter
from trainer.gate import SuiteScore, compare, decide, mcnemar_exact, run_gate


def _score(adapter, outcomes):
    return SuiteScore(adapter, [f"t{i}" for i in range(len(outcomes))], list(outcomes))


def test_gate_rejects_noise():
    # 40 tasks; the candidate wins 3 and loses 1: a +5% pass@1 that a paired test calls noise
    current = [1] * 10 + [0] * 30
    candidate = list(current)
    candidate[10] = candidate[11] = candidate[12] = 1
    candidate[0] = 0
    cmp_ = compare("heldout", _score("cur", current), _score("cand", candidate))
    assert cmp_.delta > 0
    verdict, reason = decide(cmp_, None, alpha=0.05, min_delta=0.0)
    assert verdict == "reject" and "noise" in reason


def test_gate_promotes_a_clear_gain_and_guards_regression():
    current = [0] * 40
    candidate = [1] * 12 + [0] * 28  # 12 wins, 0 losses: p = 2**-12
    held = compare("heldout", _score("cur", current), _score("cand", candidate))
    assert decide(held, None, alpha=0.05, min_delta=0.0)[0] == "promote"
    guard = compare("humaneval", _score("cur", [1] * 10 + [0] * 10), _score("cand", [0] * 20))
    verdict, reason = decide(held, guard, alpha=0.05, min_delta=0.0)
    assert verdict == "reject" and "HumanEval" in reason
    assert mcnemar_exact(0, 0) == (1.0, 1.0)


def test_gate_scores_with_sandbox_and_stores_decision(train_env, sandbox, monkeypatch):
    monkeypatch.setattr("trainer.gate.guard_tasks", lambda store, limit: [])  # no HumanEval in this store
    config, store = train_env
    config.train.gate_samples = 2  # two samples per task are enough to exercise pass@k
    for name, prompt, good, bad, tests in TASKS:
        add_task(store, name, prompt, tests, split="heldout")
    fp = base_fingerprint(config.model.name)
    make_adapter(config, "cand", fingerprint=fp)
    policy = FakePolicy({"base": {t[0]: t[3] for t in TASKS}, "cand": {t[0]: t[2] for t in TASKS}})
    decision = run_gate(config, store, "cand", policy=policy, sandbox=sandbox, fingerprint=fp, say=lambda m: None)
    assert decision.heldout.current_pass1 == 0.0 and decision.heldout.candidate_pass1 == 1.0
    assert decision.heldout.wins == 4
    # 4 of 4 tasks won is still p = 1/16 > 0.05: too few tasks to call it, and the gate says so
    assert decision.decision == "reject"
    row = store.get("gate_decisions", decision.id)
    assert json.loads(row["metrics"])["heldout"]["wins"] == 4


def test_corrupt_candidate_is_rejected_by_the_gate(train_env, sandbox):
    config, store = train_env
    (config.adapters_dir / "broken").mkdir(parents=True)
    decision = run_gate(config, store, "broken", policy=FakePolicy({}), sandbox=sandbox, say=lambda m: None)
    assert decision.decision == "reject" and "not loadable" in decision.reason
    assert store.get("adapters", "broken")["status"] == "broken"
