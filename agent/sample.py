"""On-policy sampling: N candidates per task from the policy that is serving now (DESIGN rule 1).

What: a task's prompt becomes exactly the editor context the serving policy would get for a cursor
at the start of the function body - ``Context(prefix=<imports + helpers + signature + docstring>,
suffix="", mode="block")`` - and ``policy.sample`` produces N trimmed completions per task in the
serving prompt format, batched across tasks. The candidate program is prefix + completion.

Why: pairs and rewards only teach the policy something about its own behaviour when the
candidates come from that policy, in the format it serves in. Every stored sample records the
adapter that produced it and the decoding settings, so stale samples can be told apart later.

    from agent.sample import sample_candidates
    completions = sample_candidates(policy, tasks, n=8, temperature=0.8, store=store)
"""

from __future__ import annotations

import json
from typing import Callable

from agent.models.prompts import Context, RepoContext
from agent.store import Store, new_id, now

DEFAULT_BATCH_ROWS = 32  # sequences generated at once (~124 tok/s on 2 CPU cores at this size)


def task_context(task: dict) -> Context:
    """The serving context for a task: the cursor at the start of the function body, with the
    cross-file context that served the completion it was made from (``meta["context"]``, see
    ``agent.tasks.task_from_completion``), so sampling and training build the serving prompt."""
    prefix = task["prompt"] if task["prompt"].endswith("\n") else task["prompt"] + "\n"
    meta = task.get("meta")
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            meta = None
    repo = RepoContext.from_data(meta.get("context")) if isinstance(meta, dict) else None
    return Context(prefix=prefix, suffix="", language="python", mode="block", repo=repo)


def program_for(task: dict, completion: str) -> str:
    """The whole candidate program: the task's prefix followed by the completion."""
    return task_context(task).prefix + completion + "\n"


def decoding_of(policy, n: int, temperature: float, max_new_tokens: int | None, top_p: float = 0.95) -> dict:
    config = getattr(policy, "config", None)
    return {"temperature": temperature, "top_p": top_p, "n": n,
            "max_new_tokens": max_new_tokens or getattr(config, "block_tokens", None),
            "format": getattr(policy, "prompt_format", None), "mode": "block",
            "context_tokens": getattr(config, "context_tokens", None)}


def sample_candidates(policy, tasks: list[dict], n: int, temperature: float, *, store: Store | None = None,
                      progress: Callable[[int, int], None] | None = None, batch_rows: int = DEFAULT_BATCH_ROWS,
                      max_new_tokens: int | None = None) -> list[list[str]]:
    """N completions per task, batched (about ``batch_rows`` sequences per generate call).

    With a store, each batch's ``samples`` rows (adapter_id, model and base fingerprint, decoding,
    program) are written in one transaction as soon as the batch is done, so an interrupted run
    keeps finished batches.
    Returns the completions, ``[task][candidate]``."""
    per_batch = max(1, batch_rows // max(1, n))
    out: list[list[str]] = []
    adapter_id, model = policy.adapter_id, policy.model_name
    fingerprint = getattr(policy, "base_fingerprint", None)
    decoding = decoding_of(policy, n, temperature, max_new_tokens)
    for start in range(0, len(tasks), per_batch):
        chunk = tasks[start:start + per_batch]
        got = policy.sample([task_context(t) for t in chunk], n, temperature=temperature, max_new_tokens=max_new_tokens)
        if policy.adapter_id != adapter_id:  # swapped under us: these samples are not from one policy
            raise RuntimeError(f"the policy changed from {adapter_id} to {policy.adapter_id} while sampling")
        if store is not None:
            with store.atomic():
                for task, comps in zip(chunk, got):
                    for c in comps:
                        store.db["samples"].insert({
                            "id": new_id(), "task_id": task["id"], "adapter_id": adapter_id, "model": model,
                            "base_fingerprint": fingerprint,
                            "completion": c, "program": program_for(task, c), "decoding": json.dumps(decoding),
                            "pass_rate": None, "n_tests": None, "created_at": now()})
        out.extend(got)
        if progress:
            progress(len(out), len(tasks))
    return out
