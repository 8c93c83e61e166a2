"""`plumline collect`: logged prompts and imported tasks → tests → on-policy candidates → verdicts → pairs.

Stages, each a function you can run alone, each committing as it goes:

1. ``ingest``     new logged completions (older than ``collect.oracle_stable_s``) → tasks or
                  skipped records with a reason (watermark ``collect.completions``);
2. ``synthesize`` tasks with status ``new`` → tests from the docstring, the workspace and the
                  test writer (policy or teacher), one transaction per task → status ``tested``;
3. ``validate``   tasks with an oracle: drop tests the oracle fails, that time out or flip
                  between two runs; a wrong expected value is repaired from the oracle, and
                  mutated inputs of the valid tests become more tests (``agent.mutate``); fewer
                  than ``min_valid_tests`` left → ``skipped``; else ``ready``. Oracle-less tasks become ``ready`` and are validated by agreement
                  once their candidates have run (stage 5). An oracle-less task is never held
                  out: it moves to the train split before its tests are written
                  (``release_oracle_less_heldout``);
4. ``sample``     ready training tasks with no samples from the serving adapter → N candidates
                  each (batched; every row records adapter and decoding);
5. ``execute``    unscored samples × tests through the sandbox batch API; verdicts, agreement
                  validation (oracle-less tasks) and pass rates written per task in one transaction;
6. ``pair``       preference pairs per (task, adapter) from synthesized-test pass rates, under
                  the pair rule of ``train.method`` (``agent.pairs.pair_rule_for``: PLUM's for
                  plum and rpo, else ACECODER's), from mixed-outcome tasks only.

Pass rates come from the one grader the GRPO reward and the gate use too: the valid synthesized
tests of ``agent.execute.valid_tests``, weighted by ``agent.execute.test_weight``.

Sampling is seeded (``train.seed`` and the serving adapter, ``sampling_seed``), so a rerun on the
same machine and engine draws the same candidates; the seed is in ``RunCounts.sample_seed``.

Why it is safe to interrupt: every stage picks its work from what the store says is not done
(task status, missing samples for this adapter, ``pass_rate IS NULL``), and writes each unit of
work atomically; rerunning does the rest and never samples or scores anything twice.

    from agent.collect import collect
    summary = collect(store, config)          # loads the policy and the sandbox only if needed
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Callable

from agent.execute import as_test_case, pass_rate, test_weight, valid_tests
from agent.pairs import build_pairs, grpo_groups, pair_rule_for, training_samples, write_pairs
from agent.sample import program_for, sample_candidates
from agent.store import Store
from agent.synth import (Synthesized, dedupe, docstring_tests, policy_tests, teacher_tests,
                         validate_by_agreement, validate_with_oracles, workspace_tests)
from agent.mutate import mutant_probes
from agent.tasks import EVAL_SOURCES, SYNTH_SOURCES, store_draft, task_from_completion

WATERMARK = "collect.completions"
SYNTH_CHUNK = 8      # tasks whose tests are written per policy batch
EXEC_CHUNK = 8       # tasks executed per sandbox batch


class Reporter:
    """Progress callbacks; the CLI shows them with rich, the library stays quiet."""

    def stage(self, name: str, total: int) -> Callable[[int, int], None]:
        return lambda done, total: None

    def note(self, message: str) -> None:
        pass


@dataclass
class RunCounts:
    """What this run did."""

    completions_read: int = 0
    tasks_added: int = 0
    tasks_tested: int = 0
    tasks_ready: int = 0
    tasks_skipped: int = 0
    tests_written: int = 0
    heldout_to_train: int = 0
    samples: int = 0
    scored: int = 0
    verdicts: int = 0
    pairs: int = 0
    sample_seed: int | None = None
    interrupted: bool = False
    error: str = ""
    seconds: float = 0.0


def _lazy(getter):
    box: list = []

    def get():
        if not box:
            box.append(getter())
        return box[0]

    get.loaded = lambda: bool(box)  # type: ignore[attr-defined]
    get.peek = lambda: box[0] if box else None  # type: ignore[attr-defined]
    return get


# ---------------------------------------------------------------- 1. ingest

def ingest(store: Store, config, *, clock: float | None = None, limit: int | None = None) -> tuple[int, int, int]:
    """Logged completions → tasks. Returns (completions read, tasks added, skipped)."""
    c = config.collect
    clock = clock or time.time()
    mark = json.loads(store.get_state(WATERMARK) or '{"t": 0, "id": ""}')
    rows = list(store.rows(
        "select * from completions where created_at <= ? and (created_at > ? or (created_at = ? and id > ?)) "
        "order by created_at, id" + (f" limit {int(limit)}" if limit else ""),
        [clock - c.oracle_stable_s, mark["t"], mark["t"], mark["id"]]))
    read = added = skipped = 0
    for row in rows:
        kinds = {e["kind"] for e in store.rows("select kind from events where completion_id = ?", [row["id"]])}
        accepted = bool(kinds & {"accepted", "partial"}) or row.get("status") in ("accepted", "partial")
        draft = task_from_completion(row, accepted, config.privacy, c.oracle_stable_s, clock=clock)
        outcome, _ = store_draft(store, draft, heldout_fraction=c.heldout_fraction, seed=c.split_seed)
        added += outcome == "added"
        skipped += outcome == "skipped"
        read += 1
        store.set_state(WATERMARK, json.dumps({"t": row["created_at"], "id": row["id"]}))
    return read, added, skipped


# ---------------------------------------------------------------- 2. synthesize

def _writer_examples(docstring: list[str], entry_point: str) -> str:
    return docstring[0] if docstring else f"assert {entry_point}(...) == ..."


def synthesize(store: Store, config, policy_get, *, limit: int | None = None, reporter: Reporter | None = None) -> tuple[int, int]:
    """Tests for every ``new`` task. Returns (tasks, tests written)."""
    c = config.collect
    reporter = reporter or Reporter()
    tasks = list(store.rows("select * from tasks where status = 'new' order by created_at, id"
                            + (f" limit {int(limit)}" if limit else "")))
    tick = reporter.stage("writing tests", len(tasks))
    done = written = 0
    marks = ",".join("?" * len(EVAL_SOURCES))
    judged_by_ground_truth = {r["task_id"] for r in store.rows(
        f"select distinct task_id from tests where source in ({marks})", list(EVAL_SOURCES))}
    api_key = os.environ.get(c.teacher_api_key_env) if c.teacher_api_key_env else None
    step = max(1, min(SYNTH_CHUNK, c.batch_rows // max(1, c.test_replies)))  # ~batch_rows sequences per generate call
    for start in range(0, len(tasks), step):
        chunk = tasks[start:start + step]
        per_task: list[list[Synthesized]] = []
        for t in chunk:
            meta = json.loads(t["meta"] or "{}")
            found = [Synthesized("docstring", docstring_tests(t["prompt"], t["entry_point"]))]
            if meta.get("root"):
                found.append(Synthesized("workspace", workspace_tests(meta["root"], t["entry_point"], config.privacy)))
            per_task.append(found)
        # a held-out task with a benchmark's own tests is judged by those alone (agent.execute):
        # asking the writer for more would only cost time
        write = [i for i, t in enumerate(chunk) if not (t["split"] == "heldout" and t["id"] in judged_by_ground_truth)]
        if c.writer == "policy" and write:
            examples = [_writer_examples(per_task[i][0].tests, chunk[i]["entry_point"]) for i in write]
            got = policy_tests(policy_get(), [chunk[i] for i in write], k=c.asserts_per_task, max_new_tokens=c.test_tokens,
                               examples=examples, replies=c.test_replies if c.test_temperature > 0 else 1,
                               temperature=c.test_temperature)
            for i, g in zip(write, got):
                per_task[i].append(g)
        elif c.writer == "teacher":
            for t, found in ((chunk[i], per_task[i]) for i in write):
                found.append(teacher_tests(t, url=c.teacher_url, model=c.teacher_model, privacy=config.privacy,
                                           k=c.asserts_per_task, timeout_s=c.teacher_timeout_s, api_key=api_key,
                                           example=_writer_examples(found[0].tests, t["entry_point"])))
        for t, found in zip(chunk, per_task):
            meta = json.loads(t["meta"] or "{}")
            meta["synth"] = {f.source: {"asserts": len(f.tests), "rejected": f.rejected, "error": f.error} for f in found}
            with store.atomic():
                for f in found:
                    for code in dedupe(f.tests):
                        before = store.db["tests"].count_where("task_id = ? and code = ?", [t["id"], code])
                        if not before:
                            store.db["tests"].insert({"task_id": t["id"], "source": f.source, "code": code,
                                                      "valid": None, "weight": 1.0, "created_at": time.time()})
                            written += 1
                store.db["tasks"].update(t["id"], {"status": "tested", "meta": json.dumps(meta)})
            done += 1
            tick(done, len(tasks))
    return done, written


# ---------------------------------------------------------------- 3. validate (oracle)

def _skip(store: Store, task_id: str, reason: str, detail: str) -> None:
    row = store.get("tasks", task_id)
    meta = json.loads(row["meta"] or "{}")
    meta["detail"] = detail
    store.db["tasks"].update(task_id, {"status": "skipped", "skip_reason": reason, "meta": json.dumps(meta)})


NO_ORACLE_TO_TRAIN = "held out, but without an oracle its tests could only be validated by agreement: moved to train"


def release_oracle_less_heldout(store: Store) -> int:
    """Held-out tasks without an oracle → the train split. Returns how many moved.

    Why: the gate judges held-out tasks only with tests an oracle validated, or a benchmark's own.
    Without an oracle, tests are validated by agreement among the serving policy's own candidates
    (stage 5), and a gate on such tests would score a candidate adapter by how well it agrees with
    the current one. Such a task has never judged anything (none of its tests is valid), so it is
    fair training data. Moved before its tests are written, so the test writer serves it as any
    training task; an oracle that arrives later (``agent.tasks.store_draft``) leaves it in train."""
    rows = list(store.rows(
        "select id, meta from tasks t where split = 'heldout' and coalesce(oracle, '') = '' "
        "and status in ('new', 'tested', 'ready') and not exists (select 1 from tests s where s.task_id = t.id and s.valid = 1)"))
    with store.atomic():
        for r in rows:
            meta = json.loads(r["meta"] or "{}")
            meta["split_moved"] = NO_ORACLE_TO_TRAIN
            store.db["tasks"].update(r["id"], {"split": "train", "meta": json.dumps(meta)})
    return len(rows)


def validate(store: Store, config, sandbox_get, *, reporter: Reporter | None = None) -> tuple[int, int]:
    """Oracle validation for every ``tested`` task. Returns (ready, skipped)."""
    c = config.collect
    reporter = reporter or Reporter()
    tasks = list(store.rows("select * from tasks where status = 'tested' order by created_at, id"))
    ready = skipped = 0
    tick = reporter.stage("validating tests", len(tasks))
    for start in range(0, len(tasks), EXEC_CHUNK):
        chunk = tasks[start:start + EXEC_CHUNK]
        tests = {t["id"]: list(store.rows("select id, source, code from tests where task_id = ? order by id", [t["id"]]))
                 for t in chunk}
        with_oracle = [t for t in chunk if t["oracle"]]
        checks = validate_with_oracles(sandbox_get(), [(t["oracle"], [r["code"] for r in tests[t["id"]]]) for t in with_oracle],
                                       timeout_s=c.test_timeout_s) if with_oracle else []
        by_task = {t["id"]: ch for t, ch in zip(with_oracle, checks)}
        mutants = _mutants(sandbox_get, c, with_oracle, tests, by_task)
        for t in chunk:
            rows = tests[t["id"]]
            with store.atomic():
                if t["id"] in by_task:
                    added = 0
                    derived = [(r["source"], "oracle", chk.repaired) for r, chk in zip(rows, by_task[t["id"]])
                               if chk.repaired and r["source"] in SYNTH_SOURCES]
                    derived += [("a mutation of a valid test's input", "mutated", code) for code in mutants.get(t["id"], [])]
                    for r, chk in zip(rows, by_task[t["id"]]):
                        store.db["tests"].update(r["id"], {"valid": int(chk.valid), "reason": chk.reason or None, "weight": 1.0})
                    for origin, source, code in derived:
                        before = store.db["tests"].count_where("task_id = ? and code = ?", [t["id"], code])
                        if not before:
                            store.db["tests"].insert({"task_id": t["id"], "source": source, "code": code, "valid": 1,
                                                      "reason": f"input from {origin}, expected value from the oracle",
                                                      "weight": 1.0, "created_at": time.time()})
                            added += 1
                    n_valid = added + sum(chk.valid and r["source"] in SYNTH_SOURCES for r, chk in zip(rows, by_task[t["id"]]))
                    n_synth = added + sum(r["source"] in SYNTH_SOURCES for r in rows)
                else:
                    n_valid = n_synth = sum(r["source"] in SYNTH_SOURCES for r in rows)  # upper bound until agreement
                if n_valid < c.min_valid_tests:
                    what = "valid " if t["id"] in by_task else ""
                    _skip(store, t["id"], "too_few_valid_tests" if t["id"] in by_task else "too_few_tests",
                          f"{n_valid} {what}synthesized tests of {n_synth} (need {c.min_valid_tests})")
                    skipped += 1
                else:
                    store.db["tasks"].update(t["id"], {"status": "ready"})
                    ready += 1
        tick(start + len(chunk), len(tasks))
    return ready, skipped


def _mutants(sandbox_get, c, with_oracle: list[dict], tests: dict, by_task: dict) -> dict[str, list[str]]:
    """task id → oracle-answered tests on mutated inputs of its valid (or repaired) tests."""
    if c.mutants_per_task <= 0 or not with_oracle:
        return {}
    jobs = []
    for t in with_oracle:
        good = [chk.repaired or r["code"] for r, chk in zip(tests[t["id"]], by_task[t["id"]])
                if r["source"] in SYNTH_SOURCES and (chk.valid or chk.repaired)]
        jobs.append(mutant_probes(t["id"], t["entry_point"], good, c.mutants_per_task,
                                  avoid=[r["code"] for r in tests[t["id"]]]))
    if not any(jobs):
        return {}
    checks = validate_with_oracles(sandbox_get(), [(t["oracle"], probes) for t, probes in zip(with_oracle, jobs)],
                                   timeout_s=c.test_timeout_s)
    return {t["id"]: [chk.repaired for chk in ch if chk.repaired] for t, ch in zip(with_oracle, checks)}


# ---------------------------------------------------------------- 4. sample

def sampling_seed(seed: int, adapter_id: str) -> int:
    """The seed candidates of ``adapter_id`` are drawn with: fixed by ``train.seed``, different per
    adapter (so each cycle's policy gets fresh draws, and a rerun the same ones)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{adapter_id}".encode()).digest()[:4], "big") % 2**31


def seed_sampling(seed: int) -> None:
    """Seed every random source an in-process engine samples from (Python's and, once loaded,
    torch's on every device). Engines in another process (vLLM) draw from their own seeds."""
    import random
    import sys

    random.seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def sample(store: Store, config, policy, *, limit: int | None = None, reporter: Reporter | None = None) -> int:
    """Candidates for ready training tasks that have none from the serving adapter yet."""
    c = config.collect
    reporter = reporter or Reporter()
    tasks = list(store.rows(
        "select * from tasks t where status = 'ready' and split = 'train' and not exists "
        "(select 1 from samples s where s.task_id = t.id and s.adapter_id = ?) order by created_at, id"
        + (f" limit {int(limit)}" if limit else ""), [policy.adapter_id]))
    if not tasks:
        return 0
    seed_sampling(sampling_seed(config.train.seed, policy.adapter_id))
    tick = reporter.stage(f"sampling {c.samples_per_task} candidates per task", len(tasks))
    sample_candidates(policy, tasks, c.samples_per_task, c.temperature, store=store, progress=tick,
                      batch_rows=c.batch_rows)
    return len(tasks) * c.samples_per_task


def pending_sample_tasks(store: Store) -> list[str]:
    return [r["task_id"] for r in store.rows(
        "select distinct s.task_id from samples s join tasks t on t.id = s.task_id "
        "where s.pass_rate is null and t.status = 'ready'")]


# ---------------------------------------------------------------- 5. execute

def execute(store: Store, config, sandbox_get, *, reporter: Reporter | None = None) -> tuple[int, int, int]:
    """Run unscored samples; validate oracle-less tests by agreement; store verdicts and pass
    rates. Returns (samples scored, verdicts written, tasks skipped)."""
    c = config.collect
    reporter = reporter or Reporter()
    task_ids = pending_sample_tasks(store)
    if not task_ids:
        return 0, 0, 0
    total = store.db.execute("select count(*) from samples where pass_rate is null and task_id in (%s)"
                             % ",".join("?" * len(task_ids)), task_ids).fetchone()[0]
    tick = reporter.stage("running candidates in the sandbox", total)
    scored = verdicts_n = skipped = 0
    for start in range(0, len(task_ids), EXEC_CHUNK):
        chunk = [store.get("tasks", tid) for tid in task_ids[start:start + EXEC_CHUNK]]
        items, index = [], []
        plan = {}
        for t in chunk:
            oracle_less = not t["oracle"]
            tests = list(store.rows(
                "select id, source, code, valid, weight from tests where task_id = ? and "
                + ("(valid is null or valid = 1)" if oracle_less else "valid = 1") + " order by id", [t["id"]]))
            tests = [r for r in tests if as_test_case(r) is not None]
            cases = [as_test_case(r) for r in tests]
            samples = list(store.rows("select id, completion, program from samples where task_id = ? and pass_rate is null "
                                      "order by id", [t["id"]]))
            plan[t["id"]] = (tests, samples)
            for s in samples:
                for run in range(2 if oracle_less else 1):  # oracle-less: run twice to catch flaky tests
                    items.append((s["program"] or program_for(t, s["completion"]), cases))
                    index.append((t["id"], s["id"], run))
        done0, in_chunk = scored, sum(len(plan[t["id"]][1]) for t in chunk)
        results = sandbox_get().run_batch(
            items, None, progress=lambda d, n: tick(min(total, done0 + d * in_chunk // max(n, 1)), total)) if items else []
        got: dict[tuple[str, str, int], list] = {key: res for key, res in zip(index, results)}
        for t in chunk:
            tests, samples = plan[t["id"]]
            first = {s["id"]: got[(t["id"], s["id"], 0)] for s in samples}
            synth = [i for i, r in enumerate(tests) if r["source"] in SYNTH_SOURCES]
            with store.atomic():
                if not t["oracle"]:
                    pending = [i for i in synth if tests[i]["valid"] is None]
                    if pending:
                        matrix = [[first[s["id"]][i].passed for i in pending] for s in samples]
                        flaky = [any(first[s["id"]][i].status != got[(t["id"], s["id"], 1)][i].status for s in samples)
                                 for i in pending]
                        for i, chk in zip(pending, validate_by_agreement(matrix, flaky)):
                            tests[i] = {**tests[i], "valid": int(chk.valid), "weight": chk.weight}
                            store.db["tests"].update(tests[i]["id"], {"valid": int(chk.valid), "reason": chk.reason or None,
                                                                      "weight": chk.weight})
                # the one grader: the tests and weights valid_tests gives, as the gate and GRPO use
                scoring = valid_tests(store, [t["id"]])[t["id"]]
                position = {r["id"]: i for i, r in enumerate(tests)}
                valid = [position[r["id"]] for r in scoring if r["id"] in position]
                for s in samples:
                    vs = first[s["id"]]
                    for r, v in zip(tests, vs):
                        store.db["verdicts"].insert({"sample_id": s["id"], "test_id": r["id"], "status": v.status,
                                                     "duration_s": v.duration_s, "detail": (v.detail or "")[:500],
                                                     "backend": getattr(sandbox_get(), "name", None),
                                                     "created_at": time.time()}, ignore=True)
                        verdicts_n += 1
                    rate = pass_rate([vs[i] for i in valid], [test_weight(r) for r in scoring if r["id"] in position])
                    store.db["samples"].update(s["id"], {"pass_rate": rate, "n_tests": len(valid)})
                    scored += 1
                if len(valid) < c.min_valid_tests:
                    _skip(store, t["id"], "too_few_valid_tests",
                          f"{len(valid)} synthesized tests passed by at least one candidate (need {c.min_valid_tests})")
                    skipped += 1
            tick(scored, total)
    return scored, verdicts_n, skipped


# ---------------------------------------------------------------- 6. pair

def pair(store: Store, config, adapter_id: str | None = None) -> int:
    """Pairs under the configured rule (``pair_rule_for``) from the scored samples of ready training
    tasks with mixed outcomes; returns how many are new."""
    return write_pairs(store, build_pairs(training_samples(store, adapter_id), pair_rule_for(config)))


# ---------------------------------------------------------------- the whole run

def collect(store: Store, config, *, policy=None, sandbox=None, limit: int | None = None, tasks_only: bool = False,
            reporter: Reporter | None = None, clock: float | None = None) -> RunCounts:
    """Run every stage over what is not done yet. ``policy``/``sandbox`` may be objects or
    zero-argument callables (loaded only when a stage needs them). Never raises on interrupt:
    the counts say ``interrupted`` and everything finished so far is stored."""
    from agent.completion import load_policy
    from agent.store import StoreError
    from sandbox import SandboxUnavailable, open_sandbox

    reporter = reporter or Reporter()
    counts = RunCounts()
    t0 = time.perf_counter()
    policy_get = _lazy(policy if callable(policy) and not hasattr(policy, "sample") else
                       (lambda: policy) if policy is not None else (lambda: load_policy(config, say=reporter.note)))
    own_sandbox = sandbox is None
    sandbox_get = _lazy(sandbox if callable(sandbox) and not hasattr(sandbox, "run_batch") else
                        (lambda: sandbox) if sandbox is not None else (lambda: open_sandbox(config.sandbox)))
    try:
        counts.completions_read, added, sk = ingest(store, config, clock=clock, limit=limit)
        counts.tasks_added += added
        counts.tasks_skipped += sk
        if not tasks_only:
            counts.heldout_to_train = release_oracle_less_heldout(store)
            counts.tasks_tested, counts.tests_written = synthesize(store, config, policy_get, limit=limit, reporter=reporter)
            counts.tasks_ready, sk = validate(store, config, sandbox_get, reporter=reporter)
            counts.tasks_skipped += sk
            if store.db.execute("select count(*) from tasks where status = 'ready' and split = 'train'").fetchone()[0]:
                counts.samples = sample(store, config, policy_get(), limit=limit, reporter=reporter)
                counts.sample_seed = sampling_seed(config.train.seed, policy_get().adapter_id) if counts.samples else None
            counts.scored, counts.verdicts, sk = execute(store, config, sandbox_get, reporter=reporter)
            counts.tasks_skipped += sk
            counts.pairs = pair(store, config)
    except KeyboardInterrupt:
        counts.interrupted = True
    except (SandboxUnavailable, StoreError, OSError, RuntimeError) as exc:
        # the sandbox or the model cannot start, the disk is full...: what was committed stays
        counts.error = f"{type(exc).__name__}: {exc}"
    finally:
        if own_sandbox and sandbox_get.loaded():
            sandbox_get.peek().close()
        counts.seconds = time.perf_counter() - t0
    return counts


# ---------------------------------------------------------------- the summary

HISTOGRAM = [(0.0, 0.0, "0"), (0.0, 0.2, "(0, .2]"), (0.2, 0.4, "(.2, .4]"), (0.4, 0.6, "(.4, .6]"),
             (0.6, 0.8, "(.6, .8)"), (0.8, 1.0, "[.8, 1)"), (1.0, 1.0, "1")]


def _bucket(rate: float) -> str:
    if rate <= 0:
        return "0"
    if rate >= 1:
        return "1"
    if rate >= 0.8:
        return "[.8, 1)"
    for lo, hi, label in HISTOGRAM[1:5]:
        if lo < rate <= hi:
            return label
    return "(.6, .8)"


def summary(store: Store, adapter_id: str | None = None) -> dict:
    """Everything stored so far, in the shape the summary table and ``--json`` print."""
    q = lambda sql, p=(): list(store.rows(sql, p))  # noqa: E731
    tasks = {r["status"]: r["n"] for r in q("select status, count(*) n from tasks group by status")}
    skipped = {r["skip_reason"]: r["n"] for r in q(
        "select skip_reason, count(*) n from tasks where status = 'skipped' group by skip_reason order by n desc")}
    by_source = {r["source"]: r["n"] for r in q("select source, count(*) n from tasks where status != 'skipped' group by source")}
    tests: dict[str, dict] = {}
    for r in q("select source, valid, reason from tests"):
        d = tests.setdefault(r["source"], {"kept": 0, "dropped": 0, "pending": 0, "dropped_by": {}})
        if r["valid"] == 1:
            d["kept"] += 1
        elif r["valid"] == 0:
            d["dropped"] += 1
            why = (r["reason"] or "dropped").split(":")[0]
            d["dropped_by"][why] = d["dropped_by"].get(why, 0) + 1
        else:
            d["pending"] += 1
    writer_errors: dict[str, int] = {}
    for r in q("select meta from tasks where meta like '%\"synth\"%'"):
        for src, info in json.loads(r["meta"]).get("synth", {}).items():
            if info.get("error"):
                key = f"{src}: {info['error'].split(':')[0][:60]}"
                writer_errors[key] = writer_errors.get(key, 0) + 1
    samples = {r["adapter_id"]: {"candidates": r["n"], "scored": r["scored"]} for r in q(
        "select adapter_id, count(*) n, sum(pass_rate is not null) scored from samples group by adapter_id")}
    hist = {label: 0 for _, _, label in HISTOGRAM}
    for r in q("select pass_rate from samples where pass_rate is not null" + (" and adapter_id = ?" if adapter_id else ""),
               [adapter_id] if adapter_id else []):
        hist[_bucket(r["pass_rate"])] += 1
    scored = training_samples(store, adapter_id)
    groups = grpo_groups(scored)
    pairs = {r["adapter_id"]: r["n"] for r in q("select adapter_id, count(*) n from pairs group by adapter_id")}
    ready_train = store.db.execute("select count(*) from tasks where status='ready' and split='train'").fetchone()[0]
    return {"tasks": {"by_status": tasks, "by_source": by_source, "skipped_by_reason": skipped,
                      "splits": {r["split"]: r["n"] for r in q(
                          "select split, count(*) n from tasks where status != 'skipped' group by split")}},
            "tests": tests, "test_writer_errors": writer_errors, "samples": samples,
            "pass_rate_histogram": hist, "grpo_groups": len(groups),
            "tasks_with_mixed_outcomes": len({g.task_id for g in groups}),
            "pairs": {"total": sum(pairs.values()), "by_adapter": pairs,
                      "per_ready_train_task": round(sum(pairs.values()) / ready_train, 3) if ready_train else 0.0}}
