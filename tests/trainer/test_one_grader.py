"""One grader: pairs (collect's pass rates), RFT selection, the GRPO reward and the gate score a
candidate identically, on real sandbox verdicts.

The task is a user's function without an oracle, so its tests were validated by agreement and
carry CodeT weights (below 1), beside a test the oracle-less validation dropped. That is where the
data loop and the trainer used to part ways: collect weighted the tests, the trainer's grader
counted each as 1.0.
"""

from __future__ import annotations

import asyncio

from agent.collect import execute
from agent.models.prompts import Context
from agent.pairs import passes_all, rft_examples, training_samples
from tests.trainer.conftest import FakePolicy, add_sample, add_task
from trainer.data import response_for
from trainer.gate import score_suite
from trainer.rewards import Grader, make_execution_reward

PROMPT = 'def clip(x):\n    """Clip x to [0, 10]."""\n'
TESTS = ["assert clip(5) == 5", "assert clip(-1) == 0", "assert clip(11) == 10", "assert clip(0) == 0",
         "assert clip(10) == 10", "assert clip(3) == 3"]
WEIGHTS = [1.0, 0.5, 0.5, 0.75, 0.25, 1.0]
CANDIDATES = {
    "right": "    return max(0, min(10, x))",
    "no_upper": "    return max(0, x)",        # fails clip(11)
    "no_lower": "    return min(10, x)",       # fails clip(-1)
    "wrong": "    return -x",                  # passes clip(0) only
}


def test_pairs_rft_grpo_and_gate_score_a_candidate_alike(train_env, model_name, sandbox):
    config, store = train_env
    tid = add_task(store, "clip", PROMPT, TESTS, weights=WEIGHTS)
    store.write("tests", {"task_id": tid, "source": "policy", "code": "assert clip(2) == 3", "valid": 0, "weight": 0.0})
    ids = {name: add_sample(store, tid, body, None, adapter_id="base", model=model_name)
           for name, body in CANDIDATES.items()}

    # 1. the data loop: collect's execute stage scores the samples that pairs and RFT are chosen from
    execute(store, config, lambda: sandbox)
    collected = {name: store.get("samples", sid)["pass_rate"] for name, sid in ids.items()}
    assert collected["wrong"] == 0.75 / sum(WEIGHTS)  # weighted: clip(0) alone
    rft = {s["id"] for s in rft_examples(training_samples(store, "base"), max_per_task=4)[0]}

    # 2. the GRPO reward, on completions as the policy would have generated them
    ctx = Context(prefix=PROMPT, mode="block")
    raw = [response_for(ctx, body, "chat") for body in CANDIDATES.values()]
    grader = Grader(store, sandbox, fmt="chat", training=True)
    kwargs = dict(prompts=["p"] * len(raw), completions=raw, task_id=[tid] * len(raw))
    dense = asyncio.run(make_execution_reward(grader, "pass_rate")(**kwargs))
    binary = asyncio.run(make_execution_reward(grader, "all_pass")(**kwargs))

    # 3. the gate: its grader's rates and its greedy pass@1 outcome per candidate
    gate_grader = Grader(store, sandbox, fmt="chat")
    gate_rates = gate_grader.score([tid] * len(CANDIDATES), list(CANDIDATES.values()))
    task = store.get("tasks", tid)
    gate_pass = {name: score_suite(FakePolicy({"base": {"clip": body}}), gate_grader, [task], samples=0,
                                   temperature=0.0).greedy[0] for name, body in CANDIDATES.items()}

    for i, name in enumerate(CANDIDATES):
        assert collected[name] == dense[i] == gate_rates[i], name
        assert (ids[name] in rft) == bool(binary[i]) == bool(gate_pass[name]) == passes_all(collected[name]), name
    assert sorted(n for n in CANDIDATES if gate_pass[n]) == ["right"]
