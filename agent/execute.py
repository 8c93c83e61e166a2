"""Execution: candidates × tests through the sandbox's batch API → per-test verdicts, pass rates.

What: ``score_candidates`` runs every candidate program of every task against that task's tests
(one ``run_batch`` over all of them, so the worker pool stays busy), optionally stores one
``verdicts`` row per (sample, test), and returns each candidate's pass rate. Tests can carry a
weight (CodeT agreement for oracle-less tasks); the pass rate is then the weighted fraction.
"passed" is the only pass (the judge lives outside the sandbox, DESIGN rule 4). Unsplittable tests
(``TestCase.split`` False: they would evaluate test code next to the candidate) are never run,
and ``pass_rate`` leaves them out; ``score_candidates`` logs how many it dropped.

The trainer's gate and the GRPO reward use this same function, so the grader that decides
promotion is the one that produced the training signal.

    from agent.execute import score_candidates
    rates = score_candidates(sandbox, tasks, [["    return a + b"]], [["assert add(1, 2) == 3"]])
"""

from __future__ import annotations

import json
import logging
from typing import Callable, Sequence

from agent.sample import program_for
from agent.store import Store, now
from sandbox import Limits, TestCase, Verdict


def as_test_case(test) -> TestCase | None:
    """A TestCase from a TestCase, an assert string, or a ``tests`` row (dict with ``code``)."""
    if isinstance(test, TestCase):
        return test
    code = test["code"] if isinstance(test, dict) else str(test)
    try:
        return TestCase.from_assert(code)
    except ValueError:
        return None


def pass_rate(verdicts: Sequence[Verdict], weights: Sequence[float] | None = None) -> float:
    """(Weighted) fraction of tests passed; 0.0 when there are no tests. Unsplittable tests were
    never evaluated (DESIGN rule 4): they count neither as passed nor as tests."""
    weights = list(weights) if weights is not None else [1.0] * len(verdicts)
    scored = [(v, w) for v, w in zip(verdicts, weights) if v.status != "unsplittable"]
    total = sum(w for _, w in scored)
    if not scored or total <= 0:
        return 0.0
    return sum(w for v, w in scored if v.status == "passed") / total


def test_weight(test) -> float:
    """A test's weight in a pass rate: its stored weight (CodeT agreement for an oracle-less task,
    1.0 once an oracle validated it), or 1.0 for a test given as an assert or without a weight.
    ``collect.execute`` (pass rates, hence pairs and RFT selection) and ``score_candidates`` (the
    GRPO reward and the gate) both weigh tests with this, so they score a candidate alike."""
    if isinstance(test, dict) and test.get("weight") is not None:
        return float(test["weight"])
    return 1.0


def run_verdicts(sandbox, items: list[tuple[str, list[TestCase]]], *, limits: Limits | None = None,
                 progress: Callable[[int, int], None] | None = None) -> list[list[Verdict]]:
    """``sandbox.run_batch``; a test that could not be parsed never reaches it."""
    return sandbox.run_batch(items, limits, progress=progress) if items else []


def score_candidates(sandbox, tasks: list[dict], candidates: list[list[str]], tests_by_task, *,
                     store: Store | None = None, progress: Callable[[int, int], None] | None = None,
                     sample_ids: list[list[str]] | None = None, limits: Limits | None = None,
                     programs: bool = False) -> list[list[float]]:
    """Pass rate of every candidate, ``[task][candidate]``.

    ``candidates`` are completions (programs are built with ``program_for``) unless ``programs``
    is True. ``tests_by_task`` is a list parallel to ``tasks`` (or a dict keyed by task id) of
    tests: assert strings, TestCase objects or ``tests`` rows (dicts with ``code`` and optionally
    ``id`` and ``weight``). With ``store`` and ``sample_ids``, one verdict row per (sample, test
    row) is written (tests need an ``id``) and ``samples.pass_rate``/``n_tests`` are updated."""
    if isinstance(tests_by_task, dict):
        tests_by_task = [tests_by_task.get(t["id"], []) for t in tasks]
    items, index = [], []
    parsed_by_task = []
    for ti, (task, comps, tests) in enumerate(zip(tasks, candidates, tests_by_task)):
        parsed = [(t, as_test_case(t)) for t in tests]
        parsed = [(t, c) for t, c in parsed if c is not None]
        parsed_by_task.append(parsed)
        for ci, comp in enumerate(comps):
            items.append((comp if programs else program_for(task, comp), [c for _, c in parsed]))
            index.append((ti, ci))
    unsplittable = sum(not c.split for parsed in parsed_by_task for _, c in parsed)
    if unsplittable:
        logging.getLogger("plumline.execute").warning(
            "%d unsplittable test(s) dropped from pass rates: never run, never scored (docs/sandbox.md)", unsplittable)
    results = run_verdicts(sandbox, items, limits=limits, progress=progress)
    rates: list[list[float]] = [[0.0] * len(c) for c in candidates]
    backend = getattr(sandbox, "name", None)
    for (ti, ci), verdicts in zip(index, results):
        parsed = parsed_by_task[ti]
        rates[ti][ci] = pass_rate(verdicts, [test_weight(t) for t, _ in parsed])
        if store is not None and sample_ids is not None:
            sid = sample_ids[ti][ci]
            with store.atomic():
                for (t, _), v in zip(parsed, verdicts):
                    if isinstance(t, dict) and t.get("id") is not None:
                        store.db["verdicts"].insert({
                            "sample_id": sid, "test_id": t["id"], "status": v.status, "duration_s": v.duration_s,
                            "detail": v.detail[:500], "backend": backend, "created_at": now()}, ignore=True)
                store.db["samples"].update(sid, {"pass_rate": rates[ti][ci],
                                                 "n_tests": sum(c.split for _, c in parsed)})
    return rates


def verdict_summary(verdicts: Sequence[Verdict]) -> str:
    return json.dumps({s: sum(v.status == s for v in verdicts) for s in {v.status for v in verdicts}})


def valid_tests(store: Store, task_ids: list[str], *, ground_truth: bool = False) -> dict[str, list[dict]]:
    """The tests to score a task with, keyed by task id: its valid synthesized tests (what pass
    rates and pairs use), or with ``ground_truth`` its valid HumanEval tests (evaluation only)."""
    from agent.tasks import EVAL_SOURCES, SYNTH_SOURCES

    sources = EVAL_SOURCES if ground_truth else SYNTH_SOURCES
    out: dict[str, list[dict]] = {tid: [] for tid in task_ids}
    for tid in task_ids:
        out[tid] = list(store.rows(
            "select id, source, code, weight from tests where task_id = ? and valid = 1 and source in (%s) order by id"
            % ",".join("?" * len(sources)), [tid, *sources]))
    return out
