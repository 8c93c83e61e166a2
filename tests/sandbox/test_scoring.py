"""The loop's grader on the sandbox: unsplittable tests never score, and the count is reported."""

from __future__ import annotations

import logging

from agent.execute import pass_rate, score_candidates
from sandbox import Verdict
from tests.sandbox.conftest import LIMITS

TASK = {"id": "t", "prompt": "def add(a, b):\n", "entry_point": "add"}
TESTS = ["assert add(1, 1) == 2", "assert add(2, 2) == 5",
         "assert all(add(x, 0) == x for x in range(3))"]  # a comparison inside: unsplittable


def test_unsplittable_tests_are_left_out_of_pass_rates_and_counted(pool, caplog):
    with caplog.at_level(logging.WARNING, logger="plumline.execute"):
        rates = score_candidates(pool, [TASK], [["    return a + b"]], [TESTS], limits=LIMITS)
    assert rates == [[0.5]]  # 1 of the 2 split tests; the comprehension is neither run nor counted
    assert "1 unsplittable test(s) dropped" in caplog.text


def test_pass_rate_never_counts_an_unsplittable_verdict():
    verdicts = [Verdict("a", "passed"), Verdict("b", "unsplittable"), Verdict("c", "failed")]
    assert pass_rate(verdicts) == 0.5
    assert pass_rate([Verdict("b", "unsplittable")]) == 0.0
