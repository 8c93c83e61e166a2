"""Pairs and rewards: ACECODER's rule, adapters never mixed, GRPO groups."""

from __future__ import annotations

from agent.pairs import PairRule, build_pairs, grpo_groups


def _s(sid, rate, task="t", adapter="base", text=None):
    return {"id": sid, "task_id": task, "adapter_id": adapter, "pass_rate": rate, "completion": text or sid}


def test_pairs_follow_acecoder_rule():
    samples = [_s("a", 1.0), _s("b", 0.85), _s("c", 0.5), _s("d", 0.0), _s("e", 0.7), _s("f", 0.3)]
    pairs = build_pairs(samples, PairRule(0.8, 0.4))
    assert pairs
    for p in pairs:
        assert p.chosen_rate >= 0.8 and p.chosen_rate - p.rejected_rate >= 0.4 - 1e-9 and p.rejected_rate > 0
    assert "d" not in {p.rejected_id for p in pairs}  # rejected must have passed something


def test_pair_rule_is_configurable():
    samples = [_s("a", 0.7), _s("b", 0.2)]
    assert build_pairs(samples, PairRule(0.8, 0.4)) == []
    assert len(build_pairs(samples, PairRule(0.6, 0.4))) == 1


def test_pairs_never_mix_adapters():
    samples = [_s("a", 1.0, adapter="A"), _s("b", 0.2, adapter="B"), _s("c", 0.9, adapter="B"), _s("d", 0.1, adapter="A")]
    pairs = build_pairs(samples)
    by_id = {s["id"]: s for s in samples}
    assert len(pairs) == 2
    for p in pairs:
        assert by_id[p.chosen_id]["adapter_id"] == by_id[p.rejected_id]["adapter_id"] == p.adapter_id


def test_identical_completions_are_not_paired():
    assert build_pairs([_s("a", 1.0, text="x"), _s("b", 0.5, text="x")]) == []


def test_grpo_groups_skip_flat_groups():
    samples = [_s("a", 1.0), _s("b", 1.0), _s("c", 0.5, task="u"), _s("d", 0.0, task="u")]
    groups = grpo_groups(samples)
    assert [g.task_id for g in groups] == ["u"] and groups[0].rewards == [0.5, 0.0]

