"""GRPO: the execution reward is the sandbox's verdicts; only tasks with mixed outcomes train."""

from __future__ import annotations

import asyncio

from agent.models.prompts import Context
from tests.trainer.conftest import TASKS, add_sample, add_task
from trainer.data import EmptyDataset, grpo_dataset, has_signal, response_for
from trainer.rewards import Grader, make_execution_reward


def test_grpo_reward_uses_sandbox_verdicts(train_env, sandbox):
    config, store = train_env
    name, prompt, good, bad, tests = TASKS[0]  # add(a, b); "a - b" passes 1 of 5 tests (add(0, 0))
    tid = add_task(store, name, prompt, tests)
    ctx = Context(prefix=prompt, mode="block")
    raw = [response_for(ctx, good, "chat"), response_for(ctx, bad, "chat"), "no code at all"]
    grader = Grader(store, sandbox, fmt="chat")
    kwargs = dict(prompts=["p"] * 3, completions=raw, task_id=[tid] * 3)
    assert asyncio.run(make_execution_reward(grader, "pass_rate")(**kwargs)) == [1.0, 0.2, 0.0]
    assert asyncio.run(make_execution_reward(grader, "all_pass")(**kwargs)) == [1.0, 0.0, 0.0]


def test_task_without_tests_gets_no_reward(train_env, sandbox):
    config, store = train_env
    tid = add_task(store, "f", "def f():\n", [])
    reward = make_execution_reward(Grader(store, sandbox, fmt="chat"))
    assert asyncio.run(reward(prompts=["p"], completions=["```python\ndef f():\n    return 1\n```"], task_id=[tid])) == [None]


def test_only_tasks_with_mixed_outcomes_become_prompts(train_env, model_name):
    config, store = train_env
    assert not has_signal([1.0, 1.0, 1.0]) and not has_signal([0.0] * 8) and has_signal([0.0, 0.2])
    ids = {}
    for name, prompt, good, bad, tests in TASKS:
        ids[name] = add_task(store, name, prompt, tests)
    # add: all pass; neg: all fail (0.2 passes a test, not all); sq: mixed; first: no samples yet
    for rates, name in (([1.0, 1.0], "add"), ([0.0, 0.2], "neg"), ([1.0, 0.2], "sq")):
        for r in rates:
            add_sample(store, ids[name], "    pass", r, adapter_id="base", model=model_name)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_name)
    ds, window = grpo_dataset(store, tok, "chat", adapter_id="base", min_examples=1)
    assert ds["task_id"] == [ids["sq"]]
    assert window.outcomes == {"mixed": 1, "all_pass": 1, "all_fail": 1}
    try:
        grpo_dataset(store, tok, "chat", adapter_id="base", min_examples=3)
    except EmptyDataset as exc:
        assert "1 whose samples all pass, 1 whose samples all fail" in str(exc) and "Nothing was trained" in str(exc)
    else:
        raise AssertionError("expected EmptyDataset")


def test_grpo_trains_with_execution_reward(train_env, model_name, sandbox, monkeypatch):
    monkeypatch.setenv("PLUMLINE_TRAIN_GRPO_GENERATIONS", "2")    # the smallest group
    monkeypatch.setenv("PLUMLINE_TRAIN_GRPO_MAX_NEW_TOKENS", "8")  # the tiny model writes nonsense anyway
    monkeypatch.setenv("PLUMLINE_TRAIN_MIN_EXAMPLES", "1")
    from agent.config import load_config
    from trainer import runs

    config, store = load_config(), train_env[1]
    for name, prompt, good, bad, tests in TASKS[:2]:
        tid = add_task(store, name, prompt, tests)
        for body, rate in ((good, 1.0), (bad, 0.2)):  # mixed outcomes: a group GRPO can learn from
            add_sample(store, tid, body, rate, adapter_id="base", model=config.model.name)
    seen = []
    real = Grader.score

    def spy(self, task_ids, suggestions):
        seen.append(list(task_ids))
        return real(self, task_ids, suggestions)

    monkeypatch.setattr(Grader, "score", spy)
    result = runs.train(config, store, method="grpo", max_steps=1, sandbox=sandbox, progress=False, say=lambda m: None)
    assert result.ok, result.message
    assert seen and len(seen[0]) == 2  # one group of 2 completions went through the sandbox


def test_training_rewards_never_see_eval_only_tests(tmp_path):
    from agent.store import Store
    from trainer.rewards import Grader

    store = Store(tmp_path / "p.db")
    store.write("tasks", {"id": "t", "source": "humaneval", "split": "train", "prompt": "def f(x):\n", "entry_point": "f"})
    store.write("tests", {"task_id": "t", "source": "policy", "code": "assert f(1) == 1", "valid": 1})
    store.write("tests", {"task_id": "t", "source": "humaneval", "code": "assert f(2) == 2", "valid": 1})
    assert [t["code"] for t in Grader(store, None, training=True).tests("t")] == ["assert f(1) == 1"]
    # evaluation prefers the ground truth
    assert [t["code"] for t in Grader(store, None).tests("t")] == ["assert f(2) == 2"]
