"""What each update rule learns from: ACECODER's and PLUM's pairs, RFT's examples, the control's
rejected side and GRPO's groups; mixed-outcome tasks only; adapters never mixed."""

from __future__ import annotations

from agent.pairs import PairRule, build_pairs, failing_samples, grpo_groups, outcomes, passes_all, rft_examples


def _s(sid, rate, task="t", adapter="base", text=None):
    return {"id": sid, "task_id": task, "adapter_id": adapter, "pass_rate": rate, "completion": text or sid}


def test_pairs_follow_acecoder_rule():
    samples = [_s("a", 1.0), _s("b", 0.85), _s("c", 0.5), _s("d", 0.0), _s("e", 0.7), _s("f", 0.3)]
    pairs = build_pairs(samples, PairRule(0.8, 0.4))
    assert pairs
    for p in pairs:
        assert p.chosen_rate >= 0.8 and p.chosen_rate - p.rejected_rate >= 0.4 - 1e-9 and p.rejected_rate > 0
    assert "d" not in {p.rejected_id for p in pairs}  # rejected must have passed something


def test_pairs_follow_plum_rule():
    samples = [_s("a", 1.0), _s("b", 1.0), _s("c", 0.9), _s("d", 0.0), _s("e", 0.5)]
    pairs = build_pairs(samples, PairRule(kind="plum"))
    assert {p.chosen_id for p in pairs} == {"a", "b"}  # only what passes every test is chosen
    assert {p.rejected_id for p in pairs} == {"d", "e"}  # pass rate 0 included, lowest first
    assert build_pairs(samples, PairRule(kind="acecoder")) != pairs


def test_pair_rule_is_configurable():
    samples = [_s("a", 0.7), _s("b", 0.2), _s("c", 1.0), _s("d", 0.1)]
    assert [(p.chosen_id, p.rejected_id) for p in build_pairs(samples, PairRule(0.8, 0.4))] == [("c", "d")]
    assert len(build_pairs(samples, PairRule(0.6, 0.4))) == 2


def test_pairs_never_mix_adapters():
    samples = [_s("a", 1.0, adapter="A"), _s("b", 0.2, adapter="B"), _s("c", 1.0, adapter="B"), _s("d", 0.1, adapter="A")]
    pairs = build_pairs(samples)
    by_id = {s["id"]: s for s in samples}
    assert len(pairs) == 2
    for p in pairs:
        assert by_id[p.chosen_id]["adapter_id"] == by_id[p.rejected_id]["adapter_id"] == p.adapter_id


def test_identical_completions_are_not_paired():
    assert build_pairs([_s("a", 1.0, text="x"), _s("b", 0.5, text="x\n")]) == []


def test_tasks_whose_samples_all_pass_or_all_fail_feed_no_rule():
    samples = ([_s(f"p{i}", 1.0, task="easy", text=f"ok{i}") for i in range(3)]       # all pass
               + [_s(f"f{i}", r, task="hard") for i, r in enumerate((0.9, 0.5, 0.0))]  # none passes all
               + [_s("m1", 1.0, task="mixed"), _s("m2", 0.0, task="mixed")])
    sorted_out = outcomes(samples)
    assert sorted_out.counts() == {"mixed": 1, "all_pass": 1, "all_fail": 1}
    assert sorted_out.left_out() == {"tasks whose samples all pass": 1, "tasks whose samples all fail": 1}
    for kind in ("acecoder", "plum"):
        assert {p.task_id for p in build_pairs(samples, PairRule(kind=kind))} <= {"mixed"}
    assert {s["task_id"] for s in rft_examples(samples, 4)[0]} == {"mixed"}
    assert {s["task_id"] for s in failing_samples(samples, 4)[0]} == {"mixed"}
    assert [g.task_id for g in grpo_groups(samples)] == ["mixed"]


def test_rft_keeps_distinct_passing_samples_capped_per_task():
    samples = [_s("a", 1.0, text="    return x"), _s("b", 1.0, text="    return x  \n"), _s("c", 1.0, text="    return +x"),
               _s("d", 1.0, text="    return x + 0"), _s("e", 0.0, text="    pass")]
    kept, _ = rft_examples(samples, max_per_task=2)
    assert [s["id"] for s in kept] == ["a", "c"]  # b is a's answer again; the cap stops at two


def test_one_definition_of_passing():
    assert passes_all(1.0) and not passes_all(0.999) and not passes_all(None)


def test_grpo_groups_are_the_mixed_outcome_groups():
    samples = [_s("a", 1.0), _s("b", 1.0), _s("c", 1.0, task="u"), _s("d", 0.5, task="u"), _s("e", 0.5, task="v"),
               _s("f", 0.0, task="v")]
    groups = grpo_groups(samples)
    assert [g.task_id for g in groups] == ["u"] and groups[0].rewards == [1.0, 0.5]
