"""Execution rewards: completions → the sandbox → verdicts against each task's validated tests.

What: ``Grader.score(task_ids, suggestions)`` is THE grader: one pass rate per suggestion, every
program of a batch sent to the warm sandbox pool at once. The gate scores adapters with it, and
the GRPO reward functions below are thin TRL-signature wrappers over it, so what training rewards
is exactly what promotion measures (STYLE 7). Its tests and weights are the data loop's
(``agent.execute.valid_tests``: valid synthesized tests, weighted by ``test_weight``), so it
scores a candidate as ``plumline collect`` scored the samples that pairs and RFT are chosen from;
only a task with a benchmark's own tests (HumanEval's) is judged by those instead, and only for
evaluation. "Passes" is ``agent.pairs.passes_all`` everywhere.

The reward functions have TRL's signature ``(prompts, completions, **kwargs) -> list[float | None]``
and are ``async``: TRL runs them on its own event loop while the sandbox threads work, and the
whole generation batch goes to the pool in one call so every worker stays busy.

* ``pass_rate``: fraction of the task's tests passed (dense; ACECODER-style);
* ``all_pass``: 1.0 only if every test passes (binary; what pass@1 counts).

A completion of a task without tests gets ``None`` (TRL treats it as missing, not as zero).
Groups whose members all got the same reward carry no signal (rule 3): their share is logged as
``zero_variance_groups``; training data is pre-filtered in ``trainer.data.grpo_dataset``.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from agent.execute import valid_tests
from agent.pairs import passes_all
from trainer.data import has_signal, suggestion_from, task_context


class Grader:
    """Scores suggestions for tasks in the sandbox. Holds the sandbox pool and the tests it needs."""

    def __init__(self, store, sandbox, *, fmt: str = "chat", ground_truth: bool | None = None,
                 training: bool = False):
        self.store = store
        self.training = training  # training rewards never see eval-only (HumanEval's own) tests
        self.sandbox = sandbox
        self.fmt = fmt
        self.ground_truth = ground_truth  # True: a benchmark's own tests only (the guard); None: where a task has them
        self._tasks: dict[str, dict] = {}
        self._tests: dict[str, list[dict]] = {}

    def task(self, task_id: str) -> dict:
        if task_id not in self._tasks:
            row = self.store.get("tasks", task_id)
            if row is None:
                raise KeyError(f"no task {task_id!r} in the store")
            self._tasks[task_id] = row
        return self._tasks[task_id]

    def tests(self, task_id: str) -> list[dict]:
        """The test rows (code, weight) a suggestion for ``task_id`` is scored with."""
        if task_id not in self._tests:
            synthesized = valid_tests(self.store, [task_id])[task_id]
            if self.training:
                tests = synthesized
            elif self.ground_truth:
                tests = valid_tests(self.store, [task_id], ground_truth=True)[task_id]
            else:  # evaluation: ground truth (a benchmark's own tests) when the task has it
                tests = valid_tests(self.store, [task_id], ground_truth=True)[task_id] or synthesized
            self._tests[task_id] = tests
        return self._tests[task_id]

    def score(self, task_ids: list[str], suggestions: list[str]) -> list[float | None]:
        """Pass rate of each suggestion (None when its task has no validated tests), scored in one
        batch by the data loop's ``score_candidates`` (the same scoring the pairs came from)."""
        from agent.execute import score_candidates

        order = list(dict.fromkeys(task_ids))
        slots = {t: [i for i, x in enumerate(task_ids) if x == t] for t in order}
        rates = score_candidates(self.sandbox, [self.task(t) for t in order],
                                 [[suggestions[i] for i in slots[t]] for t in order],
                                 {t: self.tests(t) for t in order})
        out: list[float | None] = [None] * len(task_ids)
        for t, rs in zip(order, rates):
            for i, r in zip(slots[t], rs):
                out[i] = float(r) if self.tests(t) else None
        return out


def _groups(prompts: list[str]) -> list[list[int]]:
    """Indices of consecutive completions of the same prompt (TRL's group layout)."""
    groups: list[list[int]] = []
    for i, p in enumerate(prompts):
        if groups and prompts[groups[-1][0]] == p:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def make_execution_reward(grader: Grader, kind: str = "pass_rate") -> Callable:
    """The GRPO reward function for ``kind`` ('pass_rate' or 'all_pass'), bound to ``grader``."""

    async def execution_reward(prompts: list[str], completions: list[str], task_id: list[str] | None = None,
                               **kwargs) -> list[float | None]:
        """Run each completion (trimmed as serving trims it) against its task's validated tests."""
        if task_id is None:
            raise ValueError("the execution reward needs a 'task_id' column in the dataset")
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        suggestions = [suggestion_from(t, task_context(grader.task(tid)), grader.fmt) for t, tid in zip(texts, task_id)]
        rates = await asyncio.to_thread(grader.score, list(task_id), suggestions)
        rewards = [None if r is None else (float(passes_all(r)) if kind == "all_pass" else float(r)) for r in rates]
        groups = _groups(list(prompts))
        flat = [[rewards[i] for i in g if rewards[i] is not None] for g in groups]
        if kwargs.get("log_metric") and groups:
            kwargs["log_metric"]("zero_variance_groups", sum(not has_signal(g) for g in flat) / len(groups))
        return rewards

    execution_reward.__name__ = f"{kind}_reward"
    return execution_reward
