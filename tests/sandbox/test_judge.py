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


def test_whole_assert_with_helper_is_marked_unsplit():
    tests = parse_tests("def check(g):\n    return g(1) == 2\nassert check(f)\nassert f(1) == 2\n")
    assert [t.split for t in tests] == [False, True]
    assert tests[0].exprs == ("check(f)",)


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
