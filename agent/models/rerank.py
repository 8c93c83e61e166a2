"""Best-of-N serving: N candidates per request, the reward model picks one (ACECODER's RM at work).

Opt-in (``model.rerank_n`` > 1): each suggestion is the policy's usual answer (greedy at the
serving temperature) plus ``rerank_n - 1`` samples at ``model.rerank_temperature``, scored by the
newest reward model trained on this base (``plumline train --method rm``); the highest score is
served. It costs the extra samples and one scoring pass per request, so it suits a GPU or a
patient user more than 2 CPU cores.

The served record says how it was chosen: ``decoding.rerank = {"n", "rm", "scores", "picked"}``
(``picked`` 0 = the usual answer won). Without a reward model the policy serves as it would
alone, and ``load_reranker`` says why. The reward model is loaded once, when serving starts; a
newer one is used from the next start.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from agent.models import Completion, Context


class Reranked:
    """A policy backend whose ``complete`` is best-of-N under a reward model; everything else
    (sampling for the loop, raw generation, adapter swaps) goes to the policy unchanged."""

    def __init__(self, policy, reward_model, rm_id: str, *, n: int, temperature: float):
        if n < 2:
            raise ValueError(f"best-of-N needs n >= 2, got {n}")
        self.policy = policy
        self.reward_model = reward_model
        self.rm_id = rm_id
        self.n = n
        self.temperature = temperature

    def __getattr__(self, name):  # model_name, adapter_id, sample, generate, set_adapter, ...
        return getattr(self.policy, name)

    def complete(self, ctx: Context, *, cancel: threading.Event | None = None,
                 max_new_tokens: int | None = None) -> Completion:
        start = time.perf_counter()
        first = self.policy.complete(ctx, cancel=cancel, max_new_tokens=max_new_tokens)
        if first.cancelled or (cancel is not None and cancel.is_set()):
            return first
        window = first.context or ctx
        limit = first.decoding.get("max_new_tokens") or max_new_tokens
        more = self.policy.sample([window], self.n - 1, temperature=self.temperature, max_new_tokens=limit)[0]
        texts = [first.text, *more]
        scores = self.reward_model.score([first.prompt] * len(texts), texts)
        picked = max(range(len(texts)), key=lambda i: (scores[i], -i))  # ties: the usual answer
        decoding = dict(first.decoding, rerank={"n": self.n, "rm": self.rm_id, "temperature": self.temperature,
                                               "scores": [round(s, 4) for s in scores], "picked": picked})
        return dataclasses.replace(first, text=texts[picked], decoding=decoding,
                                   latency_ms=(time.perf_counter() - start) * 1000)


def load_reranker(policy, config, adapters_dir, say=print):
    """``policy`` wrapped for best-of-N when ``model.rerank_n`` > 1 and a reward model for its base
    exists; else ``policy`` itself (saying why when reranking was asked for)."""
    n = config.model.rerank_n
    if n < 2:
        return policy
    from trainer.rm import RewardModel, latest_reward_model

    rm = latest_reward_model(adapters_dir, getattr(policy, "base_fingerprint", None))
    if rm is None:
        say(f"model.rerank_n = {n} but no reward model was trained on this base: serving without best-of-N. "
            "Train one with `plumline train --method rm` (it needs preference pairs: `plumline collect`).")
        return policy
    from agent.models import resolve_model_path

    base_path = resolve_model_path(config.model, config.cache_dir, say=say)
    say(f"best-of-{n} serving: reward model {rm.id} picks each suggestion")
    return Reranked(policy, RewardModel(base_path, rm.path), rm.id, n=n, temperature=config.model.rerank_temperature)
