"""The same prompt everywhere (design rule 1) with cross-file context: a logged completion's context
goes into the task made from it, on-policy sampling and the trainer's datasets rebuild exactly the
serving prompt from it, and `plumline stats` splits acceptance by it. Real store files."""

from __future__ import annotations

import json

import pytest

from agent.models.prompts import Chunk, Context, RepoContext, build_prompt, fit_window
from agent.privacy import PrivacyConfig
from agent.sample import sample_candidates, task_context
from agent.stats import adapter_figures
from agent.store import Store, now
from agent.tasks import store_draft, task_from_completion

REPO = RepoContext("shop", "shop/orders.py", (
    Chunk("shop/money.py", 'def round_cents(amount: float) -> float:\n    """Round to whole cents."""', 0, "symbol", 1.3),))
PREFIX = "def total(prices):\n    \"\"\"Sum of the prices, rounded to cents.\"\"\"\n    "


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "plumline.db")


def logged_completion(store: Store, repo: RepoContext | None = REPO) -> dict:
    cid = store.record_completion(
        source="lsp", uri="file:///nowhere/shop/orders.py", relpath="shop/orders.py", language="python",
        mode="block", prefix=PREFIX, suffix="\n", prompt="(the served prompt)", text="return round(sum(prices), 2)",
        model="m", adapter_id="base", context=repo.to_json() if repo else None)
    return next(store.rows("select * from completions where id = ?", [cid]))


def stored_task(store: Store) -> dict:
    draft = task_from_completion(logged_completion(store), False, PrivacyConfig(), stable_s=60)
    outcome, tid = store_draft(store, draft, heldout_fraction=0.0)
    assert outcome == "added"
    return store.get("tasks", tid)


def test_a_task_made_from_a_completion_carries_its_context(store):
    task = stored_task(store)
    assert json.loads(task["meta"])["context"] == REPO.to_dict()
    ctx = task_context(task)
    assert ctx.repo == REPO and ctx.mode == "block"


def test_a_task_from_a_context_free_completion_has_none(store):
    draft = task_from_completion(logged_completion(store, None), False, PrivacyConfig(), stable_s=60)
    assert "context" not in draft.meta
    assert task_context({"prompt": draft.prompt, "meta": json.dumps(draft.meta)}).repo is None


class Recorder:
    """A policy that records the contexts it is asked to sample from."""

    adapter_id, model_name, base_fingerprint, prompt_format = "base", "m", None, "chat"

    def __init__(self):
        self.contexts: list[Context] = []

    def sample(self, contexts, n, *, temperature, max_new_tokens=None, top_p=0.95):
        self.contexts.extend(contexts)
        return [["    return 0"] * n for _ in contexts]


def test_on_policy_sampling_gets_the_context(store):
    task = stored_task(store)
    policy = Recorder()
    sample_candidates(policy, [task], n=2, temperature=0.8, store=store)
    assert policy.contexts[0].repo == REPO


def test_training_prompts_are_the_serving_prompts_with_context(store, tiny_model_dir):
    """The trainer's DPO and GRPO datasets hold the very prompt an engine builds for the task
    (engines rebuild the Context from its four fields, then fit it): context included."""
    from transformers import AutoTokenizer

    from trainer.data import preference_dataset, prompt_for

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    task = stored_task(store)
    for completion, rate in (("    return round_cents(sum(prices))", 1.0), ("    return 0", 0.0)):
        store.write("samples", {"id": f"s{rate}", "task_id": task["id"], "adapter_id": "base", "model": "m",
                                "completion": completion, "pass_rate": rate, "n_tests": 5, "created_at": now()})
    store.write("pairs", {"task_id": task["id"], "chosen_id": "s1.0", "rejected_id": "s0.0", "chosen_rate": 1.0,
                          "rejected_rate": 0.0, "adapter_id": "base", "created_at": now()})
    ds, _ = preference_dataset(store, tok, "chat", method="dpo", adapter_id="base", base=None, on_policy_only=False,
                               min_examples=1)
    c = task_context(task)
    engine = build_prompt(fit_window(c.resolved(), tok, 512), tok, "chat")
    assert "def round_cents(amount: float) -> float:" in engine
    assert ds[0]["prompt"] == engine == prompt_for(task, tok, "chat")


def test_stats_split_acceptance_by_context(store):
    for i in range(4):  # with context: 4 shown, 3 accepted
        cid = store.record_completion(text="x", model="m", adapter_id="base", context=REPO.to_json())
        store.record_event(cid, "shown")
        if i:
            store.record_event(cid, "accepted", 1.0)
    for i in range(2):  # without: 2 shown, 1 accepted
        cid = store.record_completion(text="y", model="m", adapter_id="base")
        store.record_event(cid, "shown")
        if i:
            store.record_event(cid, "accepted", 1.0)
    cid = store.record_completion(text="z", model="m", adapter_id="a1", context=REPO.to_json())
    [base] = [a for a in adapter_figures(store) if a.adapter_id == "base"]
    assert base.context == {"with": {"served": 4, "shown": 4, "accepted": 3, "acceptance_rate": 0.75},
                            "without": {"served": 2, "shown": 2, "accepted": 1, "acceptance_rate": 0.5}}
    assert base.acceptance_rate == round(4 / 6, 4)
    [a1] = [a for a in adapter_figures(store) if a.adapter_id == "a1"]
    assert a1.context == {"with": {"served": 1, "shown": 0, "accepted": 0, "acceptance_rate": 0.0}}


def test_stats_json_carries_the_split(tmp_path):
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    s = Store(home / "plumline.db")
    cid = s.record_completion(text="x", model="m", adapter_id="base", context=REPO.to_json())
    s.record_event(cid, "shown")
    s.record_event(cid, "accepted", 1.0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUMLINE_")}
    env.update(PLUMLINE_HOME=str(home), PLUMLINE_CONFIG=str(tmp_path / "none.toml"))
    out = subprocess.run([sys.executable, "-m", "agent.cli", "stats", "--json"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    [adapter] = json.loads(out.stdout)["adapters"]
    assert adapter["context"]["with"]["acceptance_rate"] == 1.0
