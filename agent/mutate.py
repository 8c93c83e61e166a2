"""More tests from a trusted solution: type-aware input mutation (EvalPlus's idea).

Why: a small policy writes few asserts with good inputs (SmolLM2-135M: one or two per task), so
most tasks never reach ``collect.min_valid_tests`` and a candidate's pass rate over three tests
tells the loop little. Where a task has an oracle (the code the developer kept, or a canonical
solution), every *input* the oracle accepts is a test once the oracle supplies the expected value.

What: the inputs of the task's valid synthesized tests are the seeds. Each mutant changes one
argument of one seed by a type-aware edit (ints and floats nudged, flipped, zeroed; strings and
lists shortened, extended, reversed, emptied, one element mutated; dicts lose or change an entry).
Mutants are written as ``assert f(args) == ...`` probes; ``validate_with_oracles`` runs them on the
oracle twice and ``repaired_from_oracle`` turns each deterministic, literal-valued answer into
``assert f(args) == value`` (source ``mutated``). A mutant the oracle raises on, times out on, or
answers with something that is not plain data is dropped, as is every probe itself.

Mutants are drawn with a seed derived from the task id, so a task gets the same tests every run.
Inputs the oracle accepts but the instruction rules out (a negative n where it says positive)
can get through; they are rare from one-step edits of valid inputs and the oracle's answer on
them is still what the kept code does.
"""

from __future__ import annotations

import ast
import hashlib
import random
from typing import Any

MAX_LITERAL_CHARS = 200  # a mutant whose arguments print longer than this is not kept
_ALPHABET = "abcxyzAB 019_-"


def seed_inputs(tests: list[str], entry_point: str) -> list[tuple[list[Any], dict[str, Any]]]:
    """(args, kwargs) of every ``assert entry_point(literals...) <op> ...`` in ``tests``."""
    seeds, seen = [], set()
    for src in tests:
        try:
            node = ast.parse(src.strip()).body[0]
        except (SyntaxError, IndexError):
            continue
        if not isinstance(node, ast.Assert):
            continue
        calls = [n for n in ast.walk(node.test) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id == entry_point]
        if len(calls) != 1 or any(isinstance(a, ast.Starred) for a in calls[0].args) \
                or any(k.arg is None for k in calls[0].keywords):
            continue
        try:
            args = [ast.literal_eval(a) for a in calls[0].args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in calls[0].keywords}
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        key = repr((args, sorted(kwargs.items())))
        if key not in seen:
            seen.add(key)
            seeds.append((args, kwargs))
    return seeds


def mutate_value(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """One type-aware edit of a literal value (the value itself when it has no mutation)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return rng.choice([value + 1, value - 1, -value, 0, value * 2, value + rng.randint(2, 10),
                           rng.randint(-5, 50)])
    if isinstance(value, float):
        return rng.choice([value + 0.5, value - 1.0, -value, 0.0, value * 2, round(rng.uniform(-10, 10), 2)])
    if isinstance(value, str):
        edits = ["", value[::-1], value + (value[:1] or rng.choice(_ALPHABET)), value.upper(), value.lower(),
                 value[1:], value[:-1], _insert(value, rng.choice(_ALPHABET), rng), value + value]
        return rng.choice(edits)
    if isinstance(value, (list, tuple)):
        items = list(value)
        edits = ["empty", "drop", "reverse", "swap", "dup"]
        if items and depth < 3:
            edits += ["mutate", "mutate", "extend"]
        edit = rng.choice(edits)
        if edit == "empty":
            items = []
        elif edit == "drop" and items:
            del items[rng.randrange(len(items))]
        elif edit == "reverse":
            items.reverse()
        elif edit == "swap" and len(items) > 1:
            i, j = rng.sample(range(len(items)), 2)
            items[i], items[j] = items[j], items[i]
        elif edit == "dup" and items:
            items.insert(rng.randrange(len(items) + 1), rng.choice(items))
        elif edit == "mutate":
            i = rng.randrange(len(items))
            items[i] = mutate_value(items[i], rng, depth + 1)
        elif edit == "extend":
            items.append(mutate_value(rng.choice(items), rng, depth + 1))
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict) and value:
        out = dict(value)
        key = rng.choice(list(out))
        if rng.random() < 0.5:
            del out[key]
        else:
            out[key] = mutate_value(out[key], rng, depth + 1)
        return out
    return value


def _insert(s: str, ch: str, rng: random.Random) -> str:
    i = rng.randrange(len(s) + 1)
    return s[:i] + ch + s[i:]


def _call(entry_point: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{entry_point}({', '.join(parts)})"


def mutant_probes(task_id: str, entry_point: str, tests: list[str], k: int, *, avoid: list[str] = (),
                  tries_per_mutant: int = 8) -> list[str]:
    """Up to ``k`` probe asserts ``assert f(mutated args) == ...`` from the inputs of ``tests``,
    none calling the function as a seed, a test in ``avoid`` or another probe does; the same list
    for the same task every run."""
    seeds = seed_inputs(tests, entry_point)
    if not seeds or k <= 0:
        return []
    rng = random.Random(int(hashlib.sha256(task_id.encode()).hexdigest()[:16], 16))
    seen = {_call(entry_point, a, kw) for a, kw in seeds + seed_inputs(list(avoid), entry_point)}
    probes: list[str] = []
    for _ in range(k * tries_per_mutant):
        if len(probes) >= k:
            break
        args, kwargs = rng.choice(seeds)
        args, kwargs = list(args), dict(kwargs)
        slots = [("a", i) for i in range(len(args))] + [("k", name) for name in kwargs]
        if not slots:
            break  # a function without arguments has no inputs to vary
        kind, where = rng.choice(slots)
        if kind == "a":
            args[where] = mutate_value(args[where], rng)
        else:
            kwargs[where] = mutate_value(kwargs[where], rng)
        call = _call(entry_point, args, kwargs)
        if call in seen or len(call) - len(entry_point) > MAX_LITERAL_CHARS:
            continue
        seen.add(call)
        probes.append(f"assert {call} == ...")
    return probes
