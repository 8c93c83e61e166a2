"""Input mutation: more tests from the inputs of valid ones, expected values from the oracle."""

from __future__ import annotations

import ast
import random

from agent.mutate import mutant_probes, mutate_value, seed_inputs
from agent.synth import validate_with_oracles


def test_seeds_are_the_literal_calls_of_the_entry_point():
    tests = ["assert f(1, [2, 3]) == 5", "assert f(1, [2,3]) == 5", "assert f(x) == 1", "assert g(1) == 1",
             "assert f(2, b='x') > 0", "assert f(1) + f(2) == 3", "not python ("]
    assert seed_inputs(tests, "f") == [([1, [2, 3]], {}), ([2], {"b": "x"})]


def test_mutation_keeps_the_type_and_changes_the_value():
    rng = random.Random(0)
    for value in [3, 2.5, "abc", [1, 2, 3], (1, "a"), {"a": 1, "b": 2}, True]:
        changed = [mutate_value(value, rng) for _ in range(30)]
        assert all(type(v) is type(value) for v in changed), value
        assert any(v != value for v in changed), value
    assert mutate_value(None, rng) is None


def test_probes_are_new_calls_and_the_same_every_run():
    tests = ["assert add(1, 2) == 3", "assert add(5, 5) == 10"]
    probes = mutant_probes("task-1", "add", tests, 10)
    assert len(probes) == 10 and len(set(probes)) == 10
    assert probes == mutant_probes("task-1", "add", tests, 10)
    calls = {ast.unparse(ast.parse(p).body[0].test.left) for p in probes}
    assert not calls & {"add(1, 2)", "add(5, 5)"}
    assert all(p.endswith("== ...") for p in probes)
    assert mutant_probes("task-1", "add", ["assert add() == 0"], 5) == []
    assert mutant_probes("task-1", "add", [], 5) == []


def test_the_oracle_answers_mutants_and_rejects_bad_inputs(sandbox):
    oracle = ("def head_sum(xs, n):\n    if n < 0:\n        raise ValueError('n < 0')\n"
              "    return sum(xs[:n])\n")
    probes = mutant_probes("task-2", "head_sum", ["assert head_sum([1, 2, 3], 2) == 3"], 20)
    checks = validate_with_oracles(sandbox, [(oracle, probes)])[0]
    kept = [c.repaired for c in checks if c.repaired]
    assert len(probes) == 20 and 10 <= len(kept) < 20  # this seed draws a negative n, which the oracle rejects
    for test in kept:  # every kept test is the oracle's own answer
        call = ast.parse(test).body[0].test
        args = [ast.literal_eval(a) for a in call.left.args]
        assert ast.literal_eval(call.comparators[0]) == sum(args[0][:args[1]])
    dropped = [p for p, c in zip(probes, checks) if not c.repaired]
    for probe in dropped:  # only inputs the oracle raised on
        args = [ast.literal_eval(a) for a in ast.parse(probe).body[0].test.left.args]
        assert args[1] < 0 or not all(isinstance(x, int) for x in args[0])
