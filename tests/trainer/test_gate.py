"""The gate promotes only beyond noise, scores with real sandbox verdicts, and stores decisions with
the suites it judged on: a fixed HumanEval guard, disjoint from the held-out tasks."""

from __future__ import annotations

import json

from agent.adapters import base_fingerprint
from agent.store import Store
from agent.tasks import humaneval_path, import_path, read_humaneval
from tests.trainer.conftest import TASKS, FakePolicy, add_task, make_adapter
from trainer.data import task_tests
from trainer.gate import NO_ORACLE, SuiteScore, compare, decide, guard_suite, mcnemar_exact, run_gate, too_few


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


def test_gate_names_a_significant_loss_a_regression():
    # 4 won, 19 lost (the off-policy control's first cycle on HumanEval): not noise, a regression
    current = [1] * 19 + [0] * 21
    candidate = [0] * 19 + [1] * 4 + [0] * 17
    verdict, reason = decide(compare("heldout", _score("cur", current), _score("cand", candidate)), None,
                             alpha=0.05, min_delta=0.0)
    assert verdict == "reject" and "regressed" in reason and "noise" not in reason


def test_gate_promotes_a_clear_gain_and_guards_regression():
    current = [0] * 40
    candidate = [1] * 12 + [0] * 28  # 12 wins, 0 losses: p = 2**-12
    held = compare("heldout", _score("cur", current), _score("cand", candidate))
    assert decide(held, None, alpha=0.05, min_delta=0.0)[0] == "promote"
    guard = compare("humaneval", _score("cur", [1] * 10 + [0] * 10), _score("cand", [0] * 20))
    verdict, reason = decide(held, guard, alpha=0.05, min_delta=0.0)
    assert verdict == "reject" and "HumanEval" in reason
    assert mcnemar_exact(0, 0) == (1.0, 1.0)


def gate_on_tasks(config, store, *, samples: int, guard: int, candidates: tuple[str, ...] = ()) -> str:
    """TASKS as held-out tasks, the gate's sample count and guard size set, and candidate adapters
    made on the base model; returns the base's fingerprint."""
    config.train.gate_samples = samples
    config.train.gate_humaneval = guard
    for name, prompt, good, bad, tests in TASKS:
        add_task(store, name, prompt, tests, split="heldout")
    fp = base_fingerprint(config.model.name)
    for cand in candidates:
        make_adapter(config, cand, fingerprint=fp)
    return fp


def test_gate_scores_with_sandbox_and_stores_decision(train_env, sandbox):
    config, store = train_env
    # two samples per task exercise pass@k; the real guard, kept small: two HumanEval problems
    fp = gate_on_tasks(config, store, samples=2, guard=2, candidates=("cand",))
    policy = FakePolicy({"base": {t[0]: t[3] for t in TASKS}, "cand": {t[0]: t[2] for t in TASKS}})
    decision = run_gate(config, store, "cand", policy=policy, sandbox=sandbox, fingerprint=fp, say=lambda m: None)
    assert decision.heldout.current_pass1 == 0.0 and decision.heldout.candidate_pass1 == 1.0
    assert decision.heldout.wins == 4
    assert decision.guard is not None and decision.guard.tasks == 2
    # 4 of 4 tasks won is still p = 1/16 > 0.05: too few tasks to call it, and the gate says so
    assert decision.decision == "reject"
    row = store.get("gate_decisions", decision.id)
    assert json.loads(row["metrics"])["heldout"]["wins"] == 4


class CountingPolicy(FakePolicy):
    """FakePolicy that counts the completions it makes for each adapter."""

    def __init__(self, answers):
        super().__init__(answers)
        self.calls: dict[str, int] = {}

    def sample(self, contexts, n, **kw):
        self.calls[self.adapter_id] = self.calls.get(self.adapter_id, 0) + len(contexts) * n
        return super().sample(contexts, n, **kw)


def test_the_current_adapter_is_not_scored_again_while_nothing_it_depends_on_changed(train_env, sandbox):
    config, store = train_env
    fp = gate_on_tasks(config, store, samples=2, guard=0, candidates=("c1", "c2"))
    answers = {"base": {t[0]: t[3] for t in TASKS}, "c1": {t[0]: t[2] for t in TASKS}, "c2": {t[0]: t[2] for t in TASKS}}
    policy = CountingPolicy(answers)
    first = run_gate(config, store, "c1", policy=policy, sandbox=sandbox, fingerprint=fp, say=lambda m: None)
    per_suite = policy.calls["base"]
    assert per_suite == len(TASKS) * (1 + 2)  # greedy + 2 samples per task
    second = run_gate(config, store, "c2", policy=policy, sandbox=sandbox, fingerprint=fp, say=lambda m: None)
    assert policy.calls["base"] == per_suite  # the current adapter came from the store, not the model
    assert policy.calls["c2"] == per_suite
    assert second.heldout.current_pass1 == first.heldout.current_pass1 == 0.0
    assert second.heldout.wins == first.heldout.wins == len(TASKS)
    # anything the score depends on changes the key: here one held-out test's code
    test_id = next(store.rows("select id from tests where valid = 1 limit 1"))["id"]
    store.update("tests", test_id, {"code": store.get("tests", test_id)["code"] + "\n"})
    run_gate(config, store, "c2", policy=policy, sandbox=sandbox, fingerprint=fp, say=lambda m: None)
    assert policy.calls["base"] == 2 * per_suite and policy.calls["c2"] == 2 * per_suite
    # and so does the sampling seed
    config.train.seed += 1
    run_gate(config, store, "c2", policy=policy, sandbox=sandbox, fingerprint=fp, say=lambda m: None)
    assert policy.calls["base"] == 3 * per_suite


def test_decision_records_the_guard_and_the_heldout_tasks_left_out(train_env, sandbox):
    config, store = train_env
    fp = gate_on_tasks(config, store, samples=0, guard=2, candidates=("cand",))
    name, prompt, good, bad, tests = TASKS[0]
    no_oracle = add_task(store, name, prompt, tests, split="heldout")
    store.db.execute("update tests set valid = null where task_id = ?", [no_oracle])  # never validated
    few = add_task(store, name, prompt, tests[:2], split="heldout")
    store.update("tasks", few, {"oracle": prompt + good + "\n"})
    decision = run_gate(config, store, "cand", policy=FakePolicy({}), sandbox=sandbox, fingerprint=fp,
                        say=lambda m: None)
    assert decision.heldout.tasks == 4
    assert decision.suites["heldout"] == {"judged": 4, "left_out": {NO_ORACLE: 1, too_few(5): 1}}
    assert decision.suites["guard"]["problems"] == ["HumanEval/162", "HumanEval/163"]
    stored = json.loads(store.get("gate_decisions", decision.id)["metrics"])
    assert stored["suites"] == json.loads(json.dumps(decision.suites))


def _humaneval_jsonl(path, numbers):
    """A HumanEval-format file with the given problems of the installed benchmark, in that order."""
    rows = {r["task_id"]: r for r in read_humaneval(humaneval_path())}
    path.write_text("".join(json.dumps(rows[f"HumanEval/{n}"]) + "\n" for n in numbers))
    return path


def test_guard_is_disjoint_from_heldout_and_train(tmp_path, sandbox):
    store = Store(tmp_path / "s.db")
    # the top six problems are this store's own tasks: some train, some held-out (seed 0)
    summary = import_path(store, _humaneval_jsonl(tmp_path / "he.jsonl", range(158, 164)), heldout_fraction=0.5)
    assert set(summary.splits) == {"train", "heldout"}
    guard = guard_suite(store, sandbox, limit=3)
    own = {r["origin"]: r["split"] for r in store.rows("select origin, split from tasks where split != 'guard'")}
    assert guard.problems == ["HumanEval/155", "HumanEval/156", "HumanEval/157"]
    assert not set(guard.problems) & set(own)
    assert guard.passed_over == {"train tasks": summary.splits["train"], "heldout tasks": summary.splits["heldout"]}
    assert {t["split"] for t in guard.tasks} == {"guard"}
    assert all(task_tests(store, t["id"], sources=("humaneval",)) for t in guard.tasks)  # validated, ground truth


def test_guard_is_the_same_fixed_set_in_any_store(tmp_path, sandbox):
    # two stores holding the same problems, imported in opposite orders (other ids, other times)
    a, b = Store(tmp_path / "a.db"), Store(tmp_path / "b.db")
    import_path(a, _humaneval_jsonl(tmp_path / "up.jsonl", [160, 161, 163]), heldout_fraction=0.5)
    import_path(b, _humaneval_jsonl(tmp_path / "down.jsonl", [163, 161, 160]), heldout_fraction=0.5)
    first = guard_suite(a, sandbox, limit=3)
    assert first.problems == ["HumanEval/158", "HumanEval/159", "HumanEval/162"]
    assert guard_suite(b, sandbox, limit=3).problems == first.problems
    tasks_before = a.db["tasks"].count
    again = guard_suite(a, sandbox, limit=3)
    assert [t["id"] for t in again.tasks] == [t["id"] for t in first.tasks] and a.db["tasks"].count == tasks_before
    # a later import of a guard problem finds it stored: it stays in the guard, never trained on
    import_path(a, _humaneval_jsonl(tmp_path / "more.jsonl", [158]), heldout_fraction=0.0)
    assert guard_suite(a, sandbox, limit=3).problems == first.problems


def test_corrupt_candidate_is_rejected_by_the_gate(train_env, sandbox):
    config, store = train_env
    (config.adapters_dir / "broken").mkdir(parents=True)
    decision = run_gate(config, store, "broken", policy=FakePolicy({}), sandbox=sandbox, say=lambda m: None)
    assert decision.decision == "reject" and "not loadable" in decision.reason
    assert store.get("adapters", "broken")["status"] == "broken"
