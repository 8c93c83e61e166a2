"""The judge: split asserts with ``ast``, send only the calls in, compare plain data outside.

What: ``parse_tests(text)`` turns a file of ``assert`` statements into ``TestCase`` objects. Each
assert's expression is split into *glue* - constants, comparisons, ``not``/``and``/``or``,
arithmetic, displays, subscripts and calls to a whitelist of pure builtins (``len``, ``sorted``,
``abs``, ``isinstance``, ``math.isclose``, ...) - and *leaves*: the maximal sub-expressions that
need the candidate (``f(a)``, ``Solution().run(x)``). Only the leaves go into the sandbox. The
runner returns their values as type-tagged plain data; here we rebuild them (exact built-in
types only) and evaluate the glue with the real builtins. So ``assert f(a) == b``,
``assert f(a)``, ``assert not f(a)``, ``assert f(a) is None``, ``assert math.isclose(f(a), b)``
and ``assert abs(f(a) - b) < eps`` are all judged outside, and ``b`` never enters the sandbox.

Helpers are inlined first. HumanEval's shape - ``def check(candidate): assert candidate(x) == y``
followed by ``check(f)`` - becomes one split test per assert in ``check`` (the parameter replaced
by the argument, the helper's earlier statements kept as that test's prelude), and a helper that
only returns an expression (``def ok(g): return g(5) == 25`` then ``assert ok(f)``) is replaced
by that expression.

A test is *split* when every leaf is the candidate's own answer: a call, attribute or subscript
chain rooted at a name the test file does not define (``f``, ``Solution``, or a name imported
from ``solution``). Whatever value a split test's leaves report - returned honestly, or written by
a candidate that impersonates the runner - is a value some candidate could return, and it is
judged here against an expected value that never entered the sandbox. Everything else is
*unsplittable* (``TestCase.unsplittable`` says why): a leaf that is test code (a comprehension,
a lambda, an assert in a loop of the helper), a call of a helper the test file defines that
could not be inlined, a value the test file computes, a library call (``hash(f(1))``). Its value
would be a verdict computed next to the candidate, which can rewrite anything in its own process,
so it is never evaluated: ``judge`` and the pool give it the status ``unsplittable`` (never a
pass, never a reward: ``agent.execute.pass_rate`` leaves it out, ``score_candidates`` and the
CLI say how many).

Why (DESIGN rule 4): an always-equal object, a subclass of ``int`` with a lying ``__eq__``, a
monkeypatched ``isinstance`` or ``math.isclose``, a frame walk looking for the expected value,
a fake "PASSED" print, a forged result line or ``os._exit(0)`` cannot pass, because the
comparison happens in this process on values the candidate could only *describe*, never *be*.

Equality is Python equality with a float tolerance (rel 1e-9, abs 1e-12), applied through
lists, tuples and dict values. Anything that is not plain data fails. A missing result fails.

Not protected: the test file's own statements (imports, helpers, module-level values, a helper's
statements before an inlined assert) run inside, before each test, and the candidate can read
them - keep expected values in the asserts. Tests whose operands are not plain data
(``assert f(1) == Point(1, 2)``) fail for every candidate, so test validation drops them.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import math
import sys
from dataclasses import dataclass, field

STATUSES = ("passed", "failed", "error", "timeout", "crashed", "rejected", "unsplittable")
REL_TOL, ABS_TOL = 1e-9, 1e-12
MAX_SEQ = 1_000_000          # longest sequence the glue may build (``[0] * n``)
MAX_INT_BITS = 1_000_000     # largest int the glue may build (``2 ** n``)
MAX_INLINE_DEPTH = 8         # helpers calling helpers, inlined this deep at most

_GLUE_BUILTINS = ("len", "sorted", "set", "list", "tuple", "dict", "abs", "round", "sum", "min", "max",
                  "all", "any", "isinstance", "str", "int", "float", "bool", "bytes", "frozenset", "type",
                  "reversed", "zip", "enumerate", "map", "repr", "divmod", "chr", "ord")
_GLUE_MATH = ("isclose", "inf", "nan", "pi", "e", "tau", "sqrt", "floor", "ceil", "fabs", "isnan",
              "isinf", "isfinite", "log", "exp")
_OPAQUE = (ast.Lambda, ast.GeneratorExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.NamedExpr,
           ast.Await, ast.Yield, ast.YieldFrom, ast.Starred, ast.JoinedStr)
_BUILTIN_NAMES = frozenset(dir(builtins))


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
    unsplittable: str = ""  # why this test is never evaluated ("" for a split test)
    names: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # glue name -> "builtins.x"/"math.x"

    @property
    def split(self) -> bool:
        """Every leaf is the candidate's own answer: the only kind of test that is ever run."""
        return not self.unsplittable

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
        else:
            prelude_stmts = prelude
        return _build(src, mod.body[0], prelude_stmts, _helpers(prelude_stmts))


def parse_tests(text: str) -> list[TestCase]:
    """A file of assert statements (imports and helpers allowed) -> one TestCase per assert.

    A bare call of a helper that asserts (``check(f)``) is inlined: one test per assert in it.
    Every other statement that is not an ``assert`` is part of the prelude that each test runs
    first, inside the sandbox (failing imports in it are ignored, e.g. ``from solution import f``),
    except statements that would run asserts there (a loop of asserts): those asserts become
    unsplittable tests.
    """
    try:
        mod = ast.parse(text)
    except SyntaxError as exc:
        raise ValueError(f"tests are not valid Python (line {exc.lineno}): {exc.msg}") from None
    helpers = _helpers(mod.body)
    prelude, plan = [], []
    for stmt in mod.body:
        if isinstance(stmt, ast.Assert):
            plan.append(("assert", stmt))
        elif _helper_call(stmt, helpers):
            plan.append(("inline", stmt))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Import, ast.ImportFrom)):
            prelude.append(stmt)
        elif _reached(stmt, helpers):
            plan.append(("runs asserts", stmt))
        else:
            prelude.append(stmt)
    tests = []
    for kind, stmt in plan:
        if kind == "assert":
            tests.append(_build(ast.get_source_segment(text, stmt) or ast.unparse(stmt), stmt, prelude, helpers))
        elif kind == "inline":
            tests += _inline(stmt.value, helpers, prelude, 0)
        else:
            why = f"it runs inside a `{_kind(stmt)}` statement of the test file, so it cannot be split"
            tests += [_unsplit(a, why) for a in _reached(stmt, helpers)]
    return tests


# ---------------------------------------------------------------- inlining helpers

def _helpers(stmts: list[ast.stmt]) -> dict[str, ast.FunctionDef]:
    return {s.name: s for s in stmts if isinstance(s, ast.FunctionDef)}


def _kind(stmt: ast.stmt) -> str:
    return {"For": "for", "AsyncFor": "for", "While": "while", "If": "if", "With": "with", "AsyncWith": "with",
            "Try": "try", "TryStar": "try", "Match": "match", "ClassDef": "class"}.get(type(stmt).__name__,
                                                                                      type(stmt).__name__.lower())


def _reached(node: ast.AST, helpers: dict, seen: tuple[str, ...] = ()) -> list[ast.Assert]:
    """The assert statements that running ``node`` may execute: its own and its helpers', in order."""
    out: list[ast.Assert] = []
    if isinstance(node, ast.Assert):
        out.append(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers \
            and node.func.id not in seen:
        for s in helpers[node.func.id].body:
            out += _reached(s, helpers, (*seen, node.func.id))
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):  # defining runs nothing
            out += _reached(child, helpers, seen)
    return out


def _helper_call(stmt: ast.stmt, helpers: dict) -> bool:
    """``check(f)`` as a statement, where ``check`` is a helper of the test file that asserts."""
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and isinstance(stmt.value.func, ast.Name)
            and stmt.value.func.id in helpers and bool(_reached(stmt.value, helpers)))


def _bind(fn: ast.FunctionDef, call: ast.Call) -> dict[str, ast.expr] | str:
    """Parameter -> argument expression for ``call`` of ``fn``, or why they cannot be bound."""
    a = fn.args
    if a.vararg or a.kwarg:
        return f"{fn.name}() takes *args or **kwargs"
    if any(isinstance(x, ast.Starred) for x in call.args) or any(k.arg is None for k in call.keywords):
        return f"the call of {fn.name}() unpacks its arguments"
    positional = [p.arg for p in a.posonlyargs + a.args]
    if len(call.args) > len(positional):
        return f"{fn.name}() is called with too many arguments"
    bound = dict(zip(positional, call.args))
    by_keyword = [p.arg for p in a.args + a.kwonlyargs]
    for k in call.keywords:
        if k.arg in bound or k.arg not in by_keyword:
            return f"{fn.name}() cannot take {k.arg}="
        bound[k.arg] = k.value
    defaults = dict(zip(positional[len(positional) - len(a.defaults):], a.defaults))
    defaults.update({p.arg: d for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None})
    for name in positional + [p.arg for p in a.kwonlyargs]:
        if name not in bound:
            if name not in defaults:
                return f"{fn.name}() is called without {name!r}"
            bound[name] = defaults[name]
    rebound = {n.id for s in fn.body for n in ast.walk(s) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    rebound |= {n.arg for s in fn.body for n in ast.walk(s) if isinstance(n, ast.arg)}
    if rebound & set(bound):
        return f"{fn.name}() rebinds its parameter {sorted(rebound & set(bound))[0]!r}"
    return bound


class _Subst(ast.NodeTransformer):
    def __init__(self, bound: dict[str, ast.expr]):
        self.bound = bound

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id in self.bound:
            return ast.copy_location(copy.deepcopy(self.bound[node.id]), node)
        return node


def _substituted(node, bound: dict[str, ast.expr]):
    return ast.fix_missing_locations(_Subst(bound).visit(copy.deepcopy(node)))


def _single_return(fn: ast.FunctionDef) -> ast.expr | None:
    body = fn.body[1:] if fn.body and _is_docstring(fn.body[0]) else fn.body
    if len(body) == 1 and isinstance(body[0], ast.Return) and body[0].value is not None:
        return body[0].value
    return None


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


class _InlineReturns(ast.NodeTransformer):
    """``ok(f)`` -> ``ok``'s returned expression with ``f`` for its parameter, when ``ok`` only returns."""

    def __init__(self, helpers: dict, depth: int = 0):
        self.helpers, self.depth = helpers, depth

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        fn = self.helpers.get(node.func.id) if isinstance(node.func, ast.Name) else None
        ret = _single_return(fn) if fn is not None and self.depth < MAX_INLINE_DEPTH else None
        bound = _bind(fn, node) if ret is not None else ""
        if isinstance(bound, dict):
            return _InlineReturns(self.helpers, self.depth + 1).visit(_substituted(ret, bound))
        return node


def _module_level(stmt: ast.stmt) -> bool:
    """Can a helper's statement run as a statement of the test prelude (no return, yield, nonlocal)?"""
    try:
        compile(ast.fix_missing_locations(ast.Module([stmt], [])), "<prelude>", "exec")
    except SyntaxError:
        return False
    return not any(isinstance(n, (ast.Yield, ast.YieldFrom, ast.Await)) for n in ast.walk(stmt))


def _inline(call: ast.Call, helpers: dict, prelude: list[ast.stmt], depth: int) -> list[TestCase]:
    """One test per assert a helper call runs: split where it can be, unsplittable where not."""
    fn = helpers[call.func.id]
    bound = _bind(fn, call) if depth < MAX_INLINE_DEPTH else f"helpers nest deeper than {MAX_INLINE_DEPTH}"
    if isinstance(bound, str):
        return [_unsplit(a, f"{bound}, so its asserts cannot be inlined") for s in fn.body for a in _reached(s, helpers)]
    tests: list[TestCase] = []
    local: list[ast.stmt] = []
    body = fn.body[1:] if fn.body and _is_docstring(fn.body[0]) else fn.body
    for k, stmt in enumerate(body):
        if isinstance(stmt, ast.Return):
            break  # what follows never runs
        new = _substituted(stmt, bound)
        if isinstance(new, ast.Assert):
            if any(isinstance(n, ast.Name) for n in ast.walk(new.test)):  # `assert True, "..."` tests nothing
                tests.append(_build(ast.unparse(ast.Assert(test=new.test, msg=None)), new, prelude + local, helpers))
        elif _helper_call(new, helpers):
            tests += _inline(new.value, helpers, prelude + local, depth + 1)
        elif _reached(new, helpers):
            why = f"it runs inside a `{_kind(stmt)}` statement of {fn.name}(), so it cannot be split"
            tests += [_unsplit(a, why) for a in _reached(new, helpers)]
        elif not _module_level(new):
            why = f"it follows a statement of {fn.name}() that can only run inside a function"
            tests += [_unsplit(a, why) for s in body[k:] for a in _reached(_substituted(s, bound), helpers)]
            break
        elif not isinstance(stmt, ast.Pass):
            local.append(new)
    return tests


def _unsplit(stmt: ast.Assert, why: str) -> TestCase:
    return TestCase(source=ast.unparse(ast.Assert(test=stmt.test, msg=None)), unsplittable=why)


# ---------------------------------------------------------------- splitting

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


def _test_side(prelude: list[ast.stmt], glue_names: dict[str, str]) -> dict[str, str]:
    """Names whose value the test file (or the standard library), not the candidate, provides."""
    side = {n: "module" for n, target in glue_names.items() if target == "math"}
    for stmt in prelude:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            module = stmt.module if isinstance(stmt, ast.ImportFrom) else None
            for a in stmt.names:
                name = a.asname or a.name.split(".")[0]
                top = (module or a.name).split(".")[0]
                stdlib = top in sys.stdlib_module_names and not getattr(stmt, "level", 0)
                if stdlib:
                    side[name] = "module"
                else:  # `from solution import f`, or a module of the user's that is not in the sandbox
                    side.pop(name, None)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            side[stmt.name] = "helper"
        else:
            for n in _defined(stmt):
                side[n] = "value"
    return side


def _why_unsplittable(leaves: list[ast.expr], side: dict[str, str]) -> str:
    """"" when every leaf is the candidate's answer, else why one of them is not."""
    for leaf in leaves:
        root = leaf
        while isinstance(root, (ast.Call, ast.Attribute, ast.Subscript)):
            root = root.func if isinstance(root, ast.Call) else root.value
        text = ast.unparse(leaf)
        text = text if len(text) <= 60 else text[:57] + "..."
        kind = "" if not isinstance(root, ast.Name) else side.get(root.id) or (
            "builtin" if root.id in _BUILTIN_NAMES else "")
        if not isinstance(root, ast.Name) or (kind and any(isinstance(n, _OPAQUE) for n in ast.walk(leaf))):
            return f"`{text}` is test code (a comprehension, lambda or expression) that would run next to the candidate"
        if kind == "helper":
            return f"`{text}` calls {root.id}(), which the test file defines and which could not be inlined"
        if kind == "value":
            return f"`{text}` is a value the test file computes next to the candidate"
        if kind:
            return f"`{text}` uses {root.id}, which the judge does not evaluate outside"
    return ""


class _Splitter(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]):
        self.names = names
        self.leaves: list[ast.expr] = []

    def _leaf(self, node: ast.expr) -> ast.expr:
        self.leaves.append(node)
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


def _build(src: str, stmt: ast.Assert, prelude: list[ast.stmt], helpers: dict) -> TestCase:
    names = _glue_names(prelude)
    expr = _InlineReturns(helpers).visit(ast.parse(ast.unparse(stmt.test), mode="eval").body)
    splitter = _Splitter(names)
    glue = splitter.visit(ast.fix_missing_locations(expr))
    used = {n.id for n in ast.walk(glue) if isinstance(n, ast.Name) and not n.id.startswith("_leaf")}
    why = _why_unsplittable(splitter.leaves, _test_side(prelude, names))
    pre = tuple((ast.unparse(s), isinstance(s, (ast.Import, ast.ImportFrom))) for s in prelude)
    return TestCase(source=src, exprs=tuple(ast.unparse(leaf) for leaf in splitter.leaves), glue=ast.unparse(glue),
                    prelude=pre, unsplittable=why, names=tuple(sorted((n, names[n]) for n in used if n in names)))


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


def unsplittable_verdict(test: TestCase) -> Verdict:
    """The verdict of a test that is never evaluated: never a pass, never a reward."""
    return Verdict(test.source, "unsplittable", 0.0, f"Unsplittable: {test.unsplittable}; not evaluated")


def judge(test: TestCase, report: dict) -> Verdict:
    """Turn one runner report into a verdict. Only this function ever says "passed"."""
    if not test.split:
        return unsplittable_verdict(test)
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
