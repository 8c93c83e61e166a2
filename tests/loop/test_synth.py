"""Test synthesis and validation: sources, parsing, oracle and agreement filtering."""

from __future__ import annotations

from agent.synth import (dedupe, docstring_tests, parse_asserts, validate_by_agreement, validate_with_oracle,
                         workspace_tests)
from tests.loop.conftest import ADD_ASSERTS, ADD_PROMPT


def test_docstring_examples_become_tests():
    prompt = ('def f(x):\n    """Double.\n    >>> f(2)\n    4\n    f(3) -> 6\n    f(4) ==> 8.\n'
              '    Example: f(5) should return 10\n    >>> print(f(1))\n    2\n    """\n')
    assert docstring_tests(prompt, "f") == ["assert f(2) == 4", "assert f(3) == 6", "assert f(4) == 8",
                                            "assert f(5) == 10"]


def test_parse_asserts_keeps_only_well_formed_calls_of_the_entry_point():
    tests, rejected = parse_asserts(ADD_ASSERTS + "assert add(x, 1) == 2\nassert add(1, 1) == 2\nassert add(\n  1, 2) == 3\n"
                                    "1. assert add(4, 4) == 8\nassert add(1,\n", "add")
    assert tests == ["assert add(1, 1) == 2", "assert add(2, 3) == 5", "assert add(0, 0) == 0", "assert add(-1, 1) == 0",
                     "assert add(10, 5) == 15", "assert add(2, 2) == 5", "assert add(1, 2) == 3", "assert add(4, 4) == 8"]
    assert rejected >= 3  # sub(...), a variable argument, an unfinished call


def test_parse_asserts_survives_garbage():
    for junk in ["", "I cannot help with that.", "assert" * 10000, "```\n" + "x" * 100000, "\x00\x01assert add("]:
        tests, _ = parse_asserts(junk, "add")
        assert tests == []


def test_duplicate_tests_are_dropped():
    assert dedupe(["assert f(1) == 2", "assert f(1)==2", "assert  f(1) == 2", "assert f(2) == 3"]) == [
        "assert f(1) == 2", "assert f(2) == 3"]


def test_oracle_failing_test_is_dropped(sandbox):
    oracle = ADD_PROMPT + "    return a + b\n"
    checks = validate_with_oracle(sandbox, oracle, ["assert add(1, 1) == 2", "assert add(2, 2) == 5"])
    assert [c.valid for c in checks] == [True, False]
    assert checks[1].reason.startswith("oracle_fails")


def test_wrong_expected_value_is_repaired_from_the_oracle(sandbox):
    oracle = ADD_PROMPT + "    return a + b\n"
    checks = validate_with_oracle(sandbox, oracle, ["assert add(2, 2) == 5", "assert add('a', 'b') == 'x'"])
    assert not checks[0].valid and checks[0].repaired == "assert add(2, 2) == 4"
    assert checks[1].repaired == "assert add('a', 'b') == 'ab'"


def test_input_the_oracle_rejects_is_not_repaired(sandbox):
    oracle = ADD_PROMPT + "    return a + b\n"
    checks = validate_with_oracle(sandbox, oracle, ["assert add(1, 'x') == 3", "assert add(1, 1) > 5"])
    assert [c.repaired for c in checks] == ["", ""]  # the oracle raises; not an equality


def test_test_that_hangs_is_dropped_as_too_slow(sandbox):
    oracle = "def spin(n):\n    while n:\n        pass\n    return n\n"
    checks = validate_with_oracle(sandbox, oracle, ["assert spin(0) == 0", "assert spin(1) == 1"], timeout_s=0.5)
    assert checks[0].valid and not checks[1].valid and checks[1].reason.startswith("too_slow")


def test_agreement_drops_tests_nobody_passes_and_weights_the_rest():
    # 3 candidates agree on tests 0-1; one lone candidate passes test 2; nobody passes test 3.
    matrix = [[True, True, False, False]] * 3 + [[False, False, True, False]]
    checks = validate_by_agreement(matrix)
    assert [c.valid for c in checks] == [True, True, True, False]
    assert checks[3].reason == "no_candidate_passes"
    assert checks[0].weight == 1.0 and checks[2].weight < checks[0].weight


def test_flaky_test_is_dropped_without_oracle():
    checks = validate_by_agreement([[True, True], [True, True]], flaky=[False, True])
    assert checks[0].valid and not checks[1].valid and checks[1].reason.startswith("nondeterministic")


def test_workspace_tests_are_found(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_math.py").write_text(
        "from m import add\n\ndef test_add():\n    assert add(1, 2) == 3\n    x = 4\n    assert add(x, 1) == 5\n")
    (tmp_path / "tests" / "test_secret_stuff.py").write_text("def test_a():\n    assert add(9, 9) == 18\n")
    assert workspace_tests(tmp_path, "add") == ["assert add(1, 2) == 3"]
