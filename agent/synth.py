"""Test synthesis and validation (ACECODER's recipe, DESIGN rule 2).

What: tests for a task come from four sources, each recorded per test:

* ``docstring`` - doctest ``>>>`` blocks and the common "f(x) -> y" / "f(x) ==> y" /
  "f(x) should return y" / "Example: f(x) = y" forms in the instruction;
* ``policy`` - the serving model asked for about 20 independent ``assert`` statements with
  constant arguments (short instruction, one example assert; replies parsed line by line);
* ``teacher`` - the same request to an OpenAI-compatible endpoint (``collect.teacher_url``): a
  local vLLM with a larger model or a hosted API. Only what the privacy rules allow is sent:
  excluded paths never, secrets scrubbed. A teacher that is down, slow or answers garbage is
  recorded in the task's ``meta.synth`` and the task goes on with its other sources;
* ``workspace`` - asserts in the workspace's pytest files that call the function with constant
  arguments.

Every candidate assert is parsed with ``ast`` and kept only when it is one ``assert`` that calls
the entry point with literal arguments; tests are deduplicated on their normalised source.

Validation (``validate_with_oracle`` / ``validate_by_agreement``): with an oracle, a test the
oracle fails is dropped, and so is one that times out or gives a different verdict on a second
run (non-deterministic). Without an oracle, a test no candidate passes is dropped and the rest
are weighted by CodeT-style dual agreement. A task with fewer than ``collect.min_valid_tests``
valid tests is skipped (the caller records that).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.privacy import PrivacyConfig, is_excluded, scrub

MAX_ASSERT_CHARS = 400
MAX_ASSERTS_PER_REPLY = 60
MAX_REPLY_BYTES = 64_000
MAX_PROMPT_CHARS = 4_000  # of the task shown to the test writer (small models have short contexts)

TEST_INSTRUCTION = (
    "Write {k} different assert statements that test the Python function `{name}` below. "
    "Use constant arguments. Reply with the asserts only, one per line, for example:\n"
    "{example}\n\n```python\n{code}```"
)


@dataclass
class Synthesized:
    """What one source produced for one task: kept asserts and, if nothing, why."""

    source: str
    tests: list[str] = field(default_factory=list)
    error: str = ""          # the source failed (teacher down, no asserts in the reply, ...)
    rejected: int = 0        # lines that looked like asserts but were not well-formed


# ---------------------------------------------------------------- parsing asserts

def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _calls_entry(node: ast.AST, entry_point: str) -> list[ast.Call]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            and n.func.id == entry_point]


def well_formed(src: str, entry_point: str) -> str | None:
    """The normalised assert if ``src`` is one assert calling ``entry_point`` with constant
    arguments (and nothing that needs other names than builtins); else None."""
    src = src.strip()
    if not src.startswith("assert") or len(src) > MAX_ASSERT_CHARS:
        return None
    try:
        mod = ast.parse(src)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if len(mod.body) != 1 or not isinstance(mod.body[0], ast.Assert):
        return None
    test = mod.body[0].test
    calls = _calls_entry(test, entry_point)
    if not calls:
        return None
    for call in calls:
        if not all(_is_literal(a) for a in call.args) or not all(_is_literal(k.value) for k in call.keywords):
            return None
    allowed = {entry_point, "math", "abs", "len", "sorted", "set", "list", "tuple", "round", "sum", "min", "max",
               "isinstance", "int", "float", "str", "bool", "dict", "frozenset", "True", "False", "None", "all", "any"}
    if any(isinstance(n, ast.Name) and n.id not in allowed for n in ast.walk(test)):
        return None
    if any(isinstance(n, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.ListComp, ast.GeneratorExp))
           for n in ast.walk(test)):
        return None
    return ast.unparse(ast.Assert(test=test, msg=None))


def parse_asserts(text: str, entry_point: str, limit: int = MAX_ASSERTS_PER_REPLY) -> tuple[list[str], int]:
    """Lenient, line-by-line: every line (or bracket-balanced run of lines) that starts with
    ``assert`` and is well formed. Returns (unique asserts in order, number rejected)."""
    text = text[:MAX_REPLY_BYTES]
    out: list[str] = []
    rejected = 0
    lines = text.split("\n")
    i = 0
    while i < len(lines) and len(out) < limit:
        line = lines[i].strip().lstrip("-*0123456789.) ").strip() if not lines[i].strip().startswith("assert") else lines[i].strip()
        i += 1
        if not line.startswith("assert"):
            continue
        src = line
        # join continuation lines while brackets are open (at most 8 lines)
        extra = 0
        while src.count("(") + src.count("[") + src.count("{") > src.count(")") + src.count("]") + src.count("}") \
                and i < len(lines) and extra < 8 and not lines[i].strip().startswith("assert"):
            src += " " + lines[i].strip()
            i += 1
            extra += 1
        src = src.split("  #")[0].rstrip().rstrip("`")
        norm = well_formed(src, entry_point)
        if norm is None:
            rejected += 1
        elif norm not in out:
            out.append(norm)
    return out, rejected


# ---------------------------------------------------------------- source 1: the docstring

_ARROWS = re.compile(r"^\s*(->|==>|=>|➞|→|==|=|returns?|should return|should be|gives|is)\s*", re.I)


def _balanced_call(text: str, start: int) -> int | None:
    """Index just past the call whose '(' is at ``start``; None if unbalanced."""
    depth, quote = 0, None
    for j in range(start, len(text)):
        ch = text[j]
        if quote:
            if ch == quote and text[j - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _leading_literal(text: str) -> str | None:
    """The longest prefix of ``text`` that is a Python literal."""
    text = text.strip()
    for end in range(len(text), 0, -1):
        piece = text[:end].rstrip().rstrip(".,;")
        if not piece:
            continue
        try:
            node = ast.parse(piece, mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        if _is_literal(node):
            return piece
    return None


def docstring_tests(prompt: str, entry_point: str) -> list[str]:
    """Examples in the instruction turned into asserts."""
    tests: list[str] = []
    lines = prompt.split("\n")
    i = 0
    while i < len(lines):
        s = lines[i].strip()
        if s.startswith(">>>"):
            expr = s[3:].strip()
            i += 1
            while i < len(lines) and lines[i].strip().startswith("..."):
                expr += "\n" + lines[i].strip()[3:].lstrip()
                i += 1
            want_at = i
            want = []
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(">>>") \
                    and not lines[i].strip().endswith(('"""', "'''")):
                want.append(lines[i].strip())
                i += 1
            if i < len(lines) and lines[i].strip().endswith(('"""', "'''")) and lines[i].strip() not in ('"""', "'''"):
                want.append(lines[i].strip()[:-3])
            norm = well_formed(f"assert {expr} == {' '.join(want).strip()}", entry_point) if want else None
            if norm is None and len(want) > 1:  # output is one line; what follows is prose or other examples
                norm = well_formed(f"assert {expr} == {want[0]}", entry_point)
                i = want_at + 1
            if norm and norm not in tests:
                tests.append(norm)
            continue
        # "f(x) -> y" and friends, anywhere on the line
        pos = s.find(entry_point + "(")
        while pos >= 0:
            if pos == 0 or not (s[pos - 1].isalnum() or s[pos - 1] == "_"):
                end = _balanced_call(s, pos + len(entry_point))
                if end is not None:
                    m = _ARROWS.match(s[end:])
                    if m:
                        exp = _leading_literal(s[end + m.end():])
                        if exp is not None:
                            norm = well_formed(f"assert {s[pos:end]} == {exp}", entry_point)
                            if norm and norm not in tests:
                                tests.append(norm)
            pos = s.find(entry_point + "(", pos + 1)
        i += 1
    return tests


# ---------------------------------------------------------------- source 2: a model writes asserts

def test_request(task: dict, k: int = 20, example: str | None = None) -> str:
    """The instruction given to the policy or the teacher."""
    example = example or f"assert {task['entry_point']}(...) == ..."
    code = task["prompt"]
    if len(code) > MAX_PROMPT_CHARS:  # keep the signature and docstring (the end), drop far helpers
        code = code[-MAX_PROMPT_CHARS:]
        code = code[code.find("\n") + 1:]
    return TEST_INSTRUCTION.format(k=k, name=task["entry_point"], example=example, code=code)


def policy_prefill(entry_point: str, example: str | None) -> str:
    """The start of the model's answer, written for it: a code fence, the example assert (when it
    is a real one) and the start of the next assert. A small model asked plainly rewrites the
    function instead; started on an assert, it keeps writing asserts."""
    first = example + "\n" if example and well_formed(example, entry_point) else ""
    return f"```python\n{first}assert {entry_point}("


def policy_tests(policy, tasks: list[dict], *, k: int = 20, max_new_tokens: int = 256,
                 examples: list[str | None] | None = None, replies: int = 8,
                 temperature: float = 0.8) -> list[Synthesized]:
    """Ask the serving model for asserts, batched over tasks. The answer is prefilled with the
    start of an assert; a small model then writes one to a few asserts and closes the block, so
    ``replies`` answers are sampled per task and their asserts pooled (greedy when replies = 1)."""
    if not tasks:
        return []
    examples = examples or [None] * len(tasks)
    prefills = [policy_prefill(t["entry_point"], ex) for t, ex in zip(tasks, examples)]
    prompts = [(policy.chat_prompt(test_request(t, k, ex)) if hasattr(policy, "chat_prompt") else test_request(t, k, ex) + "\n")
               + pre for t, ex, pre in zip(tasks, examples, prefills)]
    out = []
    try:
        got = policy.generate(prompts, max_new_tokens=max_new_tokens, temperature=temperature if replies > 1 else 0.0,
                              n=replies, stop=("```",))  # the prefilled block closes with a fence
    except Exception as exc:  # noqa: BLE001 - a model failure is recorded, never fatal
        return [Synthesized("policy", error=f"generation failed: {type(exc).__name__}: {exc}") for _ in tasks]
    for task, answers, pre in zip(tasks, got, prefills):
        tests, rejected = parse_asserts("\n".join(pre + a for a in answers), task["entry_point"])
        out.append(Synthesized("policy", tests, "" if tests else "no well-formed asserts in the reply", rejected))
    return out


# ---------------------------------------------------------------- source 3: a teacher endpoint

def _chat_url(url: str) -> str:
    url = url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return url + ("/chat/completions" if url.endswith("/v1") else "/v1/chat/completions")


def teacher_tests(task: dict, *, url: str, model: str, privacy: PrivacyConfig, k: int = 20,
                  timeout_s: float = 60.0, api_key: str | None = None, example: str | None = None,
                  max_tokens: int = 1024) -> Synthesized:
    """One request to an OpenAI-compatible endpoint. Never raises: failures become ``error``."""
    import requests

    if is_excluded(task.get("relpath"), privacy.exclude):
        return Synthesized("teacher", error="not sent: the task's file matches privacy.exclude")
    text = test_request(task, k, example)
    if privacy.scrub:
        text = scrub(text)
    body = {"model": model or "default", "messages": [{"role": "user", "content": text}],
            "temperature": 0.2, "max_tokens": max_tokens}
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        with requests.post(_chat_url(url), json=body, headers=headers, timeout=(min(10.0, timeout_s), timeout_s),
                           stream=True) as resp:
            raw = b""
            for chunk in resp.iter_content(16384):
                raw += chunk
                if len(raw) > 4 * MAX_REPLY_BYTES:
                    return Synthesized("teacher", error=f"reply larger than {4 * MAX_REPLY_BYTES} bytes: ignored")
            if resp.status_code != 200:
                return Synthesized("teacher", error=f"HTTP {resp.status_code}: {raw[:200].decode('utf-8', 'replace')}")
    except requests.Timeout:
        return Synthesized("teacher", error=f"no answer within {timeout_s:.0f}s")
    except requests.RequestException as exc:
        return Synthesized("teacher", error=f"unreachable: {type(exc).__name__}")
    try:
        data = json.loads(raw)
        content = data["choices"][0]["message"]["content"]
        if not isinstance(content, str):
            raise TypeError
    except (ValueError, KeyError, IndexError, TypeError):
        return Synthesized("teacher", error="reply is not an OpenAI chat completion")
    tests, rejected = parse_asserts(content, task["entry_point"])
    return Synthesized("teacher", tests, "" if tests else "no well-formed asserts in the reply", rejected)


# ---------------------------------------------------------------- source 4: workspace tests

def workspace_tests(root: str | Path | None, entry_point: str, privacy: PrivacyConfig | None = None,
                    max_files: int = 500) -> list[str]:
    """Asserts in pytest files under ``root`` that call the function with constant arguments."""
    if not root:
        return []
    root = Path(root)
    privacy = privacy or PrivacyConfig()
    found: list[str] = []
    files = [p for p in root.rglob("*.py") if (p.name.startswith("test_") or p.name.endswith("_test.py"))
             and not any(part.startswith(".") or part in ("site-packages", "node_modules") for part in p.relative_to(root).parts)]
    for path in sorted(files)[:max_files]:
        if is_excluded(str(path.relative_to(root)), privacy.exclude):
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if entry_point not in text:
                continue
            mod = ast.parse(text)
        except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
            continue
        for node in ast.walk(mod):
            if isinstance(node, ast.Assert):
                norm = well_formed(ast.unparse(ast.Assert(test=node.test, msg=None)), entry_point)
                if norm and norm not in found:
                    found.append(norm)
    return found


# ---------------------------------------------------------------- validation

@dataclass
class TestCheck:
    """The validation outcome of one test."""

    __test__ = False
    code: str
    valid: bool
    reason: str = ""
    weight: float = 1.0
    repaired: str = ""  # for an oracle failure on a good input: the assert with the oracle's value


def validate_with_oracle(sandbox, oracle: str, tests: list[str], *, timeout_s: float = 2.0, runs: int = 2) -> list[TestCheck]:
    """Run the oracle ``runs`` times against every test: keep what it passes every time."""
    return validate_with_oracles(sandbox, [(oracle, tests)], timeout_s=timeout_s, runs=runs)[0]


def validate_with_oracles(sandbox, jobs: list[tuple[str, list[str]]], *, timeout_s: float = 2.0,
                          runs: int = 2, progress=None) -> list[list[TestCheck]]:
    """Many tasks at once, ``[(oracle, tests)]`` → checks per task (one sandbox batch)."""
    from sandbox import Limits, TestCase

    limits = Limits(timeout_s=timeout_s, memory_mb=sandbox.default_limits.memory_mb)
    parsed: list[tuple[list[TestCase], dict[str, TestCheck]]] = []
    items = []
    for oracle, tests in jobs:
        cases, checks = [], {}
        for code in tests:
            try:
                cases.append(TestCase.from_assert(code))
            except ValueError as exc:
                checks[code] = TestCheck(code, False, f"unparseable: {exc}"[:300])
        parsed.append((cases, checks))
        items += [(oracle, cases)] * (runs if cases else 0)
    results = sandbox.run_batch(items, limits, progress=progress) if items else []
    out, k = [], 0
    for (oracle, tests), (cases, checks) in zip(jobs, parsed):
        mine = results[k:k + runs] if cases else []
        k += len(mine)
        for j, case in enumerate(cases):
            statuses = [r[j] for r in mine]
            first = statuses[0]
            if any(v.status == "timeout" for v in statuses):
                checks[case.source] = TestCheck(case.source, False, "too_slow: the oracle timed out")
            elif len({v.status for v in statuses}) > 1:
                checks[case.source] = TestCheck(case.source, False, "nondeterministic: verdicts differ between runs")
            elif first.status == "rejected":
                checks[case.source] = TestCheck(case.source, False, f"oracle_rejected: {first.detail}"[:300])
            elif not first.passed:
                checks[case.source] = TestCheck(case.source, False, f"oracle_fails: {first.status} {first.detail}".strip()[:300],
                                                repaired=repaired_from_oracle(case, statuses) or "")
            else:
                checks[case.source] = TestCheck(case.source, True)
        out.append([checks.get(c) or checks.get(c.strip()) or TestCheck(c, False, "unparseable") for c in tests])
    return out


def repaired_from_oracle(case, verdicts) -> str | None:
    """A model-written ``assert f(x) == y`` that the oracle fails only because ``y`` is wrong still
    carries a good input ``x``. Small models get expected values wrong far more often than inputs
    (SmolLM2-135M: 7% of its asserts were right), so instead of only dropping it (ACECODER), the
    test is rewritten with the value the oracle returns: what the code the developer kept does on
    that input (EvalPlus computes expected outputs from the ground truth the same way). Only when
    the oracle returned plain data with a faithful literal, the same in every run."""
    if len(case.exprs) != 1:
        return None
    try:
        glue = ast.parse(case.glue, mode="eval").body
        if not (isinstance(glue, ast.Compare) and len(glue.ops) == 1 and isinstance(glue.ops[0], ast.Eq)
                and isinstance(glue.left, ast.Name)):
            return None
        ast.literal_eval(glue.comparators[0])
    except (SyntaxError, ValueError, TypeError):
        return None
    if not verdicts or any(v.status != "failed" or len(v.values) != 1 for v in verdicts):
        return None  # errors, timeouts and crashes mean the input itself is bad
    value = verdicts[0].values[0]
    if any(v.values[0] != value for v in verdicts[1:]):
        return None
    text = repr(value)
    try:
        if len(text) > 300 or ast.literal_eval(text) != value:
            return None
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return f"assert {case.exprs[0]} == {text}"


def validate_by_agreement(pass_matrix: list[list[bool]], flaky: list[bool] | None = None) -> list[TestCheck]:
    """CodeT-style dual agreement, no oracle. ``pass_matrix[c][t]``: candidate c passed test t.

    Candidates that pass exactly the same tests form a consensus set S with score
    |S| × |tests S passes|. A test's weight is the best score among the sets that pass it,
    divided by the best score overall; a test no candidate passes is dropped."""
    n_tests = len(pass_matrix[0]) if pass_matrix else 0
    flaky = flaky or [False] * n_tests
    groups: dict[tuple[bool, ...], int] = {}
    for row in pass_matrix:
        groups[tuple(row)] = groups.get(tuple(row), 0) + 1
    scores = {key: count * sum(key) for key, count in groups.items()}
    best = max(scores.values(), default=0) or 1
    out = []
    for t in range(n_tests):
        if flaky[t]:
            out.append(TestCheck("", False, "nondeterministic: verdicts differ between runs"))
            continue
        support = [s for key, s in scores.items() if key[t]]
        if not support:
            out.append(TestCheck("", False, "no_candidate_passes"))
        else:
            out.append(TestCheck("", True, "", round(max(support) / best, 4)))
    return out


def dedupe(tests: list[str]) -> list[str]:
    seen, out = set(), []
    for t in tests:
        try:
            key = ast.unparse(ast.parse(t))
        except SyntaxError:
            key = t
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out
