"""The judge: split asserts with ``ast``, send only the calls in, compare plain data outside.

What: ``parse_tests(text)`` turns a file of ``assert`` statements into ``TestCase`` objects. Each
assert's expression is split into *glue* - constants, comparisons, ``not``/``and``/``or``,
arithmetic, displays, subscripts and calls to a whitelist of pure builtins (``len``, ``sorted``,
``abs``, ``isinstance``, ``math.isclose``, ...) - and *leaves*: the maximal sub-expressions that
need the candidate (``f(a)``, ``Solution().run(x)``, a comprehension, a helper call). Only the
leaves go into the sandbox. The runner returns their values as type-tagged plain data; here we
rebuild them (exact built-in types only) and evaluate the glue with the real builtins. So
``assert f(a) == b``, ``assert f(a)``, ``assert not f(a)``, ``assert f(a) is None``,
``assert math.isclose(f(a), b)`` and ``assert abs(f(a) - b) < eps`` are all judged outside, and
the expected value ``b`` never enters the sandbox.

Why (DESIGN rule 4): an always-equal object, a subclass of ``int`` with a lying ``__eq__``, a
monkeypatched ``isinstance`` or ``math.isclose``, a frame walk looking for the expected value,
a fake "PASSED" print or ``os._exit(0)`` cannot pass, because the comparison happens in this
process on values the candidate could only *describe*, never *be*.

Equality is Python equality with a float tolerance (rel 1e-9, abs 1e-12), applied through
lists, tuples and dict values. Anything that is not plain data fails. A missing result fails.

Not protected: when a leaf calls a helper defined in the test file (``assert check(f)``), that
helper runs inside, next to the candidate, which could tamper with it; at worst the whole
assert is evaluated inside. Its value is still plain data judged here. ``TestCase.split`` is
False for those; prefer splittable tests when synthesizing. Tests whose operands are not plain
data (``assert f(1) == Point(1, 2)``) fail for every candidate, so test validation drops them.
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
from dataclasses import dataclass, field

STATUSES = ("passed", "failed", "error", "timeout", "crashed", "rejected")
REL_TOL, ABS_TOL = 1e-9, 1e-12
MAX_SEQ = 1_000_000          # longest sequence the glue may build (``[0] * n``)
MAX_INT_BITS = 1_000_000     # largest int the glue may build (``2 ** n``)

_GLUE_BUILTINS = ("len", "sorted", "set", "list", "tuple", "dict", "abs", "round", "sum", "min", "max",
                  "all", "any", "isinstance", "str", "int", "float", "bool", "bytes", "frozenset", "type",
                  "reversed", "zip", "enumerate", "map", "repr", "divmod", "chr", "ord")
_GLUE_MATH = ("isclose", "inf", "nan", "pi", "e", "tau", "sqrt", "floor", "ceil", "fabs", "isnan",
              "isinf", "isfinite", "log", "exp")
_OPAQUE = (ast.Lambda, ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.NamedExpr,
           ast.Await, ast.Yield, ast.YieldFrom, ast.Starred, ast.JoinedStr)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one test for one candidate. ``detail`` is "" or "Type: short message"."""

    test: str
    status: str
    duration_s: float = 0.0
    detail: str = ""
    values: tuple = ()  # what the calls returned (plain data), when the runner reported them

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return {"test": self.test, "status": self.status, "duration_s": round(self.duration_s, 6),
                "detail": self.detail}


@dataclass(frozen=True)
class TestCase:
    """One assert. ``source`` is its identity; ``exprs`` go inside; ``glue`` stays outside."""

    __test__ = False  # not a pytest class

    source: str
    exprs: tuple[str, ...] = ()
    glue: str = ""
    prelude: tuple[tuple[str, bool], ...] = ()  # (statement source, is an import) from the test file
    split: bool = True  # False: a leaf uses a helper defined in the test file, evaluated next to the candidate
    names: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # glue name -> "builtins.x"/"math.x"

    @classmethod
    def from_assert(cls, src: str, prelude: str | list[ast.stmt] = "") -> "TestCase":
        """Build a test from one ``assert`` statement (``prelude``: imports/helpers it needs)."""
        src = src.strip()
        try:
            mod = ast.parse(src)
        except SyntaxError as exc:
            raise ValueError(f"test is not valid Python: {exc.msg} in {src!r}") from None
        if len(mod.body) != 1 or not isinstance(mod.body[0], ast.Assert):
            raise ValueError(f"a test must be a single assert statement, got {src!r}")
        if isinstance(prelude, str):
            try:
                prelude_stmts = ast.parse(prelude).body if prelude.strip() else []
            except SyntaxError as exc:
                raise ValueError(f"test prelude is not valid Python: {exc.msg}") from None
            prelude_src = prelude
        else:
            prelude_stmts, prelude_src = prelude, None
        return _build(src, mod.body[0], prelude_stmts, prelude_src)


def parse_tests(text: str) -> list[TestCase]:
    """A file of assert statements (imports and helpers allowed) -> one TestCase per assert.

    Every statement that is not an ``assert`` is part of the prelude that each test runs first,
    inside the sandbox (failing imports in it are ignored, e.g. ``from solution import f``).
    """
    try:
        mod = ast.parse(text)
    except SyntaxError as exc:
        raise ValueError(f"tests are not valid Python (line {exc.lineno}): {exc.msg}") from None
    prelude = [s for s in mod.body if not isinstance(s, ast.Assert)]
    prelude_src = "\n".join(ast.get_source_segment(text, s) or ast.unparse(s) for s in prelude)
    tests = []
    for stmt in mod.body:
        if isinstance(stmt, ast.Assert):
            src = ast.get_source_segment(text, stmt) or ast.unparse(stmt)
            tests.append(_build(src, stmt, prelude, prelude_src))
    return tests


def _glue_names(prelude: list[ast.stmt]) -> dict[str, str]:
    """Names the glue may use: whitelisted builtins and math, under the prelude's aliases."""
    names = {n: f"builtins.{n}" for n in _GLUE_BUILTINS}
    shadowed: set[str] = set()
    for stmt in prelude:
        if isinstance(stmt, ast.Import):
            for a in stmt.names:
                if a.name == "math":
                    names[a.asname or "math"] = "math"
                else:
                    shadowed.add((a.asname or a.name).split(".")[0])
        elif isinstance(stmt, ast.ImportFrom):
            for a in stmt.names:
                if stmt.module == "math" and a.name in _GLUE_MATH:
                    names[a.asname or a.name] = f"math.{a.name}"
                else:
                    shadowed.add(a.asname or a.name)
        else:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    shadowed.add(node.id)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    shadowed.add(node.name)
    for n in shadowed:
        if names.get(n, "").startswith("builtins.") or names.get(n) == "math":
            names.pop(n)
    names.setdefault("math", "math")  # `math.isclose` works even when the file forgot `import math`
    return names


class _Splitter(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names
        self.leaves: list[str] = []

    def _leaf(self, node: ast.expr) -> ast.expr:
        self.leaves.append(ast.unparse(node))
        return ast.copy_location(ast.Name(id=f"_leaf{len(self.leaves) - 1}", ctx=ast.Load()), node)

    def _resolve(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if self.names.get(node.value.id) == "math" and node.attr in _GLUE_MATH:
                return f"math.{node.attr}"
        return None

    def visit(self, node):  # noqa: C901 - one switch over node kinds
        if isinstance(node, ast.Constant):
            return node
        if isinstance(node, (ast.Name, ast.Attribute)):
            return node if self._resolve(node) else self._leaf(node)
        if isinstance(node, ast.Call):
            opaque = any(isinstance(n, _OPAQUE) for a in node.args + [k.value for k in node.keywords]
                         for n in ast.walk(a))
            if not self._resolve(node.func) or opaque or any(k.arg is None for k in node.keywords):
                return self._leaf(node)
            node.args = [self.visit(a) for a in node.args]
            for k in node.keywords:
                k.value = self.visit(k.value)
            return node
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
            if any(isinstance(n, ast.Starred) for n in ast.iter_child_nodes(node)) or (
                    isinstance(node, ast.Dict) and None in node.keys):
                return self._leaf(node)
            return self.generic_visit(node)
        if isinstance(node, (ast.UnaryOp, ast.BinOp, ast.BoolOp, ast.Compare, ast.Subscript, ast.Slice,
                             ast.IfExp)):
            return self.generic_visit(node)
        if isinstance(node, ast.expr):
            return self._leaf(node)
        return self.generic_visit(node)


def _defined(stmt: ast.stmt) -> set[str]:
    names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        names.add(stmt.name)
    return names


def _build(src: str, stmt: ast.Assert, prelude: list[ast.stmt], prelude_src: str | None) -> TestCase:
    names = _glue_names(prelude)
    splitter = _Splitter(names)
    glue = splitter.visit(ast.parse(ast.unparse(stmt.test), mode="eval").body)
    used = {n.id for n in ast.walk(glue) if isinstance(n, ast.Name) and not n.id.startswith("_leaf")}
    helpers = {n for s in prelude if not isinstance(s, (ast.Import, ast.ImportFrom)) for n in _defined(s)}
    split = not any(isinstance(n, ast.Name) and n.id in helpers
                    for leaf in splitter.leaves for n in ast.walk(ast.parse(leaf, mode="eval")))
    pre = tuple((ast.unparse(s), isinstance(s, (ast.Import, ast.ImportFrom))) for s in prelude)
    return TestCase(source=src, exprs=tuple(splitter.leaves), glue=ast.unparse(glue), prelude=pre,
                    split=split, names=tuple(sorted((n, names[n]) for n in used if n in names)))


# ---------------------------------------------------------------- plain data, rebuilt outside

class BadResult(ValueError):
    """The runner's answer is not well-formed type-tagged plain data."""


def decode(x, depth: int = 0):
    """Rebuild a value from the runner's type tags, accepting only exact built-in types."""
    if depth > 200:
        raise BadResult("result nested too deeply")
    if x is None:
        return None
    if type(x) is not list or len(x) != 2 or type(x[0]) is not str:
        raise BadResult(f"malformed value {str(x)[:60]!r}")
    tag, v = x
    try:
        if tag == "b" and type(v) is bool:
            return v
        if tag == "i" and type(v) is str and len(v) <= MAX_INT_BITS // 4:
            return int(v, 16)
        if tag == "f" and type(v) is str:
            return float.fromhex(v)
        if tag == "s" and type(v) is str:
            return v
        if tag == "y" and type(v) is str:
            return bytes.fromhex(v)
        if tag in ("l", "t", "S", "F") and type(v) is list:
            items = [decode(i, depth + 1) for i in v]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and type(v) is list:
            out = {}
            for pair in v:
                if type(pair) is not list or len(pair) != 2:
                    raise BadResult("malformed dict item")
                out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
            return out
    except (TypeError, ValueError, OverflowError) as exc:  # unhashable set member, bad hex
        raise BadResult(f"malformed value: {exc}") from None
    raise BadResult(f"unknown value tag {str(tag)[:20]!r}")


def plain_eq(a, b) -> bool:
    """Python equality on plain data, with a tolerance where a float is involved."""
    num = (int, float)
    if (type(a) is float or type(b) is float) and isinstance(a, num) and isinstance(b, num):
        return a == b or math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    if type(a) in (list, tuple) and type(b) is type(a):
        return len(a) == len(b) and all(plain_eq(x, y) for x, y in zip(a, b))
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(plain_eq(a[k], b[k]) for k in a)
    return bool(a == b)


def _contains(item, container) -> bool:
    if type(container) in (list, tuple):
        return any(plain_eq(item, x) for x in container)
    return item in container


def _compare(ops: tuple[str, ...], *operands) -> bool:
    for op, a, b in zip(ops, operands, operands[1:]):
        ok = {"Eq": lambda: plain_eq(a, b), "NotEq": lambda: not plain_eq(a, b),
              "Lt": lambda: a < b, "LtE": lambda: a <= b, "Gt": lambda: a > b, "GtE": lambda: a >= b,
              "Is": lambda: a is b,
              "IsNot": lambda: not (a is b), "In": lambda: _contains(a, b),
              "NotIn": lambda: not _contains(a, b)}[op]()
        if not ok:
            return False
    return True


def _size(x) -> int:
    return len(x) if isinstance(x, (str, bytes, list, tuple)) else 1


def _binop(op: str, a, b):
    if op == "Mult":
        n = (b if isinstance(b, int) else 1) * _size(a) if isinstance(a, (str, bytes, list, tuple)) else \
            (a if isinstance(a, int) else 1) * _size(b)
        if n > MAX_SEQ:
            raise OverflowError("sequence too long for the judge")
    if op == "Pow" and isinstance(a, int) and isinstance(b, int) and b > 0:
        if abs(a).bit_length() * b > MAX_INT_BITS:
            raise OverflowError("power too large for the judge")
    if op == "LShift" and isinstance(b, int) and b > MAX_INT_BITS:
        raise OverflowError("shift too large for the judge")
    import operator
    fn = {"Add": operator.add, "Sub": operator.sub, "Mult": operator.mul, "Div": operator.truediv,
          "FloorDiv": operator.floordiv, "Mod": operator.mod, "Pow": operator.pow,
          "LShift": operator.lshift, "RShift": operator.rshift, "BitAnd": operator.and_,
          "BitOr": operator.or_, "BitXor": operator.xor, "MatMult": operator.matmul}[op]
    return fn(a, b)


class _Safe(ast.NodeTransformer):
    """Route comparisons and size-changing arithmetic through the checked helpers above."""

    def visit_Compare(self, node):
        self.generic_visit(node)
        ops = ast.Tuple([ast.Constant(type(o).__name__) for o in node.ops], ast.Load())
        return ast.Call(ast.Name("_compare", ast.Load()), [ops, node.left, *node.comparators], [])

    def visit_BinOp(self, node):
        self.generic_visit(node)
        return ast.Call(ast.Name("_binop", ast.Load()), [ast.Constant(type(node.op).__name__), node.left,
                                                          node.right], [])


@functools.lru_cache(maxsize=4096)
def _compiled_glue(glue: str):
    tree = ast.fix_missing_locations(_Safe().visit(ast.parse(glue, mode="eval")))
    return compile(tree, "<judge>", "eval")


def evaluate_glue(test: TestCase, values: list):
    """Evaluate the test's glue with the leaf values (plain data); returns the assert's value."""
    env: dict = {"__builtins__": {}, "_compare": _compare, "_binop": _binop}
    for name, target in test.names:
        mod, _, attr = target.partition(".")
        env[name] = math if target == "math" else getattr(builtins if mod == "builtins" else math, attr)
    for i, v in enumerate(values):
        env[f"_leaf{i}"] = v
    return eval(_compiled_glue(test.glue), env)  # noqa: S307 - glue grammar is whitelisted


def _short_repr(values: list) -> str:
    text = ", ".join(repr(v) if not isinstance(v, int) or v.bit_length() < 2000 else f"<int of {v.bit_length()} bits>"
                     for v in values)
    return text if len(text) <= 200 else text[:197] + "..."


def judge(test: TestCase, report: dict) -> Verdict:
    """Turn one runner report into a verdict. Only this function ever says "passed"."""
    dur = float(report.get("duration") or 0.0)
    status = report.get("status")
    where = "at import: " if report.get("at_import") else ""
    detail = str(report.get("detail") or "")[:300]
    if status == "timeout":
        return Verdict(test.source, "timeout", dur, where + (detail or "wall or CPU time limit exceeded"))
    if status == "output_limit":
        return Verdict(test.source, "failed", dur, "OutputLimit: stdout/stderr exceeded the cap")
    if status == "result_limit":
        return Verdict(test.source, "failed", dur, "ResultLimit: result exceeded the cap")
    if status in ("crashed", "rejected"):
        return Verdict(test.source, status, dur, where + detail)
    if status != "reported" or not isinstance(report.get("payload"), dict):
        return Verdict(test.source, "crashed", dur, "no result from the runner")
    payload = report["payload"]
    if "e" in payload:
        err = payload["e"]
        text = ": ".join(str(x) for x in err[:2]) if isinstance(err, list) else str(err)
        prefix = {"import": "at import: ", "prelude": "in test prelude: ", "setup": "sandbox setup: "}.get(
            payload.get("w"), "")
        return Verdict(test.source, "error", dur, (prefix + text)[:300])
    if "u" in payload:
        return Verdict(test.source, "failed", dur, f"NotPlainData: {str(payload['u'])[:200]}")
    raw = payload.get("v")
    if not isinstance(raw, list) or len(raw) != len(test.exprs):
        return Verdict(test.source, "failed", dur, "MissingResult: the runner returned no value")
    try:
        values = [decode(v) for v in raw]
    except BadResult as exc:
        return Verdict(test.source, "failed", dur, f"BadResult: {exc}")
    try:
        ok = evaluate_glue(test, values)
    except Exception as exc:  # the assert itself raises on these values (e.g. None < 3)
        return Verdict(test.source, "failed", dur, f"{type(exc).__name__}: {str(exc)[:150]} (got {_short_repr(values)})")
    if bool(ok):  # ok is built from plain data and whitelisted builtins only
        return Verdict(test.source, "passed", dur, values=tuple(values))
    return Verdict(test.source, "failed", dur, f"AssertionError: got {_short_repr(values)}", values=tuple(values))
