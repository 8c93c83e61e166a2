"""`collect` end to end with a fake policy (known candidates) and the bubblewrap sandbox."""

from __future__ import annotations

import ast

from agent.collect import Reporter, collect, summary
from agent.tasks import import_path
from tests.loop.conftest import ADD_CANDIDATES, ADD_PROMPT, FakePolicy, add_task_row, make_config, write_jsonl


def _import(store, tmp_path, rows=None):
    import_path(store, write_jsonl(tmp_path / "t.jsonl", rows or [add_task_row()]), heldout_fraction=0.0)


def _policy(**kw):
    return FakePolicy({"add": ADD_CANDIDATES}, **kw)


def test_collect_builds_tests_samples_verdicts_and_pairs(store, tmp_path, sandbox):
    _import(store, tmp_path)
    counts = collect(store, make_config(), policy=_policy(), sandbox=sandbox)
    assert not counts.interrupted and counts.samples == 4 and counts.scored == 4
    task = next(store.rows("select * from tasks"))
    assert task["status"] == "ready"
    tests = {r["code"]: r for r in store.rows("select * from tests")}
    assert tests["assert add(2, 2) == 5"]["valid"] == 0  # the oracle disagrees
    assert tests["assert add(1, 2) == 3"]["source"] == "docstring"
    rates = {r["completion"]: r["pass_rate"] for r in store.rows("select * from samples")}
    assert rates["    return a + b"] == 1.0 and rates["    return a * b"] < 1.0
    n_tests = store.db.execute("select count(*) from tests where task_id = ? and valid = 1", [task["id"]]).fetchone()[0]
    assert store.db["verdicts"].count == 4 * n_tests  # synthesized and ground-truth tests, per candidate
    pairs = list(store.rows("select * from pairs"))
    assert pairs and all(p["chosen_rate"] >= 0.8 and p["adapter_id"] == "base" for p in pairs)
    assert summary(store)["pairs"]["total"] == len(pairs)


def test_every_sample_records_adapter_and_decoding(store, tmp_path, sandbox):
    _import(store, tmp_path)
    collect(store, make_config(temperature=0.7), policy=_policy(adapter_id="lora-7"), sandbox=sandbox)
    rows = list(store.rows("select adapter_id, model, decoding from samples"))
    assert rows and all(r["adapter_id"] == "lora-7" and r["model"] == "fake-model" for r in rows)
    assert all('"temperature": 0.7' in r["decoding"] for r in rows)


def test_task_with_too_few_tests_is_skipped(store, tmp_path, sandbox):
    _import(store, tmp_path)
    policy = _policy(test_reply="assert add(1, 1) == 2\nassert add(9, 9) == 0\n")
    collect(store, make_config(mutants_per_task=0), policy=policy, sandbox=sandbox)
    task = next(store.rows("select * from tasks"))
    assert task["status"] == "skipped" and task["skip_reason"] == "too_few_valid_tests"
    assert store.db["samples"].count == 0 and policy.sample_calls == 0


def test_mutated_inputs_answered_by_the_oracle_fill_up_a_task(store, tmp_path, sandbox):
    _import(store, tmp_path)
    policy = _policy(test_reply="assert add(1, 1) == 2\nassert add(9, 9) == 0\n")
    collect(store, make_config(mutants_per_task=6), policy=policy, sandbox=sandbox)
    assert next(store.rows("select status from tasks"))["status"] == "ready"
    mutated = list(store.rows("select code, valid, reason from tests where source = 'mutated'"))
    assert len(mutated) == 6 and all(r["valid"] == 1 and "oracle" in r["reason"] for r in mutated)
    for r in mutated:  # the oracle is a + b: every expected value is its answer
        call = ast.parse(r["code"]).body[0].test
        a, b = (ast.literal_eval(x) for x in call.left.args)
        assert ast.literal_eval(call.comparators[0]) == a + b
    assert not list(store.rows("select id from tests where code like '%== ...'"))  # probes are never stored


def test_inputs_the_oracle_rejects_seed_no_mutants(store, tmp_path, sandbox):
    _import(store, tmp_path)
    policy = _policy(test_reply="assert add(1, 'x') == 2\n")
    collect(store, make_config(mutants_per_task=6), policy=policy, sandbox=sandbox)
    codes = [r["code"] for r in store.rows("select code from tests where source = 'mutated'")]
    assert codes and not any("'" in c for c in codes)  # seeded by the docstring's add(2, 3) only


def test_humaneval_tests_never_used_for_pairs(store, tmp_path, sandbox):
    # Ground truth says a*b is wrong on add(2, 2)? No: 2*2 == 4 passes it; only synthesized tests decide.
    row = add_task_row(test="def check(candidate):\n" + "".join(f"    assert candidate({i}, 0) == {i}\n" for i in range(6)))
    _import(store, tmp_path, [row])
    # candidates that pass every ground-truth test (b = 0) but differ on the synthesized ones
    policy = FakePolicy({"add": ["    return a + b", "    return a"]})
    collect(store, make_config(), policy=policy, sandbox=sandbox)
    rates = {r["completion"]: r["pass_rate"] for r in store.rows("select * from samples")}
    assert rates["    return a"] < 1.0  # only synthesized tests count toward the rate
    gt = store.db.execute("select count(*) from verdicts v join tests t on t.id = v.test_id join samples s on s.id = v.sample_id "
                          "where t.source = 'humaneval' and s.completion = '    return a' and v.status != 'passed'").fetchone()[0]
    assert gt == 0  # ...although it passes all of HumanEval's own tests
    n = store.db.execute("select count(*) from tests where source = 'humaneval' and valid = 1").fetchone()[0]
    assert n == 6


def test_collect_is_idempotent(store, tmp_path, sandbox):
    _import(store, tmp_path)
    policy = _policy()
    collect(store, make_config(), policy=policy, sandbox=sandbox)
    before = {t: store.db[t].count for t in ("tasks", "tests", "samples", "verdicts", "pairs")}
    again = collect(store, make_config(), policy=policy, sandbox=sandbox)
    assert (again.samples, again.scored, again.pairs, again.tests_written) == (0, 0, 0, 0)
    assert {t: store.db[t].count for t in before} == before
    assert policy.sample_calls == 1 and policy.generate_calls == 1


def test_collect_resumes_after_interrupt(store, tmp_path, sandbox):
    _import(store, tmp_path, [add_task_row(f"Toy/{i}", prompt=add_task_row()["prompt"].replace("Add", f"Add ({i})"))
                              for i in range(3)])

    class Interrupt(Reporter):
        def stage(self, name, total):
            def tick(done, total):
                if name.startswith("running") and done:
                    raise KeyboardInterrupt
            return tick

    first = collect(store, make_config(), policy=_policy(), sandbox=sandbox, reporter=Interrupt())
    assert first.interrupted
    scored_before = store.db.execute("select count(*) from samples where pass_rate is not null").fetchone()[0]
    assert store.db["samples"].count == 12 and scored_before < 12
    policy = _policy()
    second = collect(store, make_config(), policy=policy, sandbox=sandbox)
    assert not second.interrupted and policy.sample_calls == 0  # nothing sampled twice
    assert store.db.execute("select count(*) from samples where pass_rate is null").fetchone()[0] == 0
    assert second.scored == 12 - scored_before  # nothing scored twice
    dup = store.db.execute("select count(*) from (select sample_id, test_id, count(*) c from verdicts "
                           "group by 1, 2 having c > 1)").fetchone()[0]
    assert dup == 0


def test_oracle_less_task_is_validated_by_agreement(store, tmp_path, sandbox):
    row = add_task_row()
    row.pop("canonical_solution")
    _import(store, tmp_path, [row])
    policy = FakePolicy({"add": ["    return a + b", "    return a + b ", "    return b + a", "    return a - b"]})
    collect(store, make_config(), policy=policy, sandbox=sandbox)
    tests = {r["code"]: r for r in store.rows("select * from tests where source != 'humaneval'")}
    assert tests["assert add(2, 2) == 5"]["valid"] == 0
    assert tests["assert add(2, 2) == 5"]["reason"] == "no_candidate_passes"
    assert tests["assert add(1, 1) == 2"]["valid"] == 1 and tests["assert add(1, 1) == 2"]["weight"] == 1.0


def test_heldout_tasks_get_tests_but_no_samples(store, tmp_path, sandbox):
    import_path(store, write_jsonl(tmp_path / "t.jsonl", [add_task_row()]), heldout_fraction=0.999)
    collect(store, make_config(), policy=_policy(), sandbox=sandbox)
    task = next(store.rows("select * from tasks"))
    assert task["split"] == "heldout" and task["status"] == "ready" and store.db["samples"].count == 0


def test_heldout_tasks_judged_by_ground_truth_get_no_written_tests(store, tmp_path, sandbox):
    rows = [add_task_row(), add_task_row("Toy/1", prompt=ADD_PROMPT.replace("Add two", "Sum two"), test="")]
    import_path(store, write_jsonl(tmp_path / "t.jsonl", rows), heldout_fraction=0.999)
    policy = _policy()
    collect(store, make_config(), policy=policy, sandbox=sandbox)
    by_origin = {t["origin"]: t["id"] for t in store.rows("select id, origin from tasks")}
    written = {o: store.db.execute("select count(*) from tests where task_id = ? and source = 'policy'", [tid]).fetchone()[0]
               for o, tid in by_origin.items()}
    assert written == {"Toy/0": 0, "Toy/1": 6}  # HumanEval's own tests judge Toy/0; Toy/1 has none, so it needs them
    assert policy.generate_calls == 1


def test_sandbox_unavailable_is_reported_and_work_kept(store, tmp_path):
    from sandbox import SandboxUnavailable

    _import(store, tmp_path)

    def no_sandbox():
        raise SandboxUnavailable("bubblewrap is not installed")

    counts = collect(store, make_config(), policy=_policy(), sandbox=no_sandbox)
    assert "bubblewrap" in counts.error and counts.tests_written > 0
    task = next(store.rows("select * from tasks"))
    assert task["status"] == "tested"  # the tests it wrote are kept; validation resumes next run


def test_wrong_expected_values_become_oracle_tests(store, tmp_path, sandbox):
    _import(store, tmp_path)
    policy = _policy(test_reply="".join(f"assert add({i}, {i}) == -1\n" for i in range(6)))
    collect(store, make_config(), policy=policy, sandbox=sandbox)
    repaired = {r["code"]: r for r in store.rows("select * from tests where source = 'oracle'")}
    assert repaired["assert add(3, 3) == 6"]["valid"] == 1
    assert next(store.rows("select status from tasks"))["status"] == "ready"
    assert store.db.execute("select count(*) from tests where source = 'policy' and valid = 1").fetchone()[0] == 0
