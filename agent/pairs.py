"""What each update rule learns from, chosen from scored on-policy samples (DESIGN rule 3).

Every sample's ``pass_rate`` comes from the one grader (``agent.execute``: the valid synthesized
tests of ``valid_tests``, weighted by ``test_weight``; never HumanEval's own tests, which are for
evaluation). A sample *passes* when it passes every one of them (``passes_all``): that is what the
gate's pass@1 counts, what RFT keeps and what GRPO's all-pass reward pays.

**Mixed outcomes only.** Samples are grouped by (task, adapter), so nothing mixes adapters (rule
1). A group whose samples all pass, or all fail, carries no signal for any rule: ``outcomes``
sorts the groups, and every selector below keeps the mixed ones only and reports the others'
counts (``Outcomes.left_out``).

* ``build_pairs`` with ``PairRule(kind="acecoder")``: ACECODER's rule, chosen pass rate >=
  ``chosen_min`` (0.8), chosen minus rejected >= ``gap_min`` (0.4), rejected > ``rejected_min`` (0);
* ``build_pairs`` with ``PairRule(kind="plum")``: PLUM's rule, chosen passes all, rejected fails at
  least one (pass rate 0 included);
* ``rft_examples``: the passing samples, deduplicated, at most ``max_per_task`` per task
  (rejection-sampling fine-tuning, ReST-EM);
* ``failing_samples``: the failing samples, deduplicated and capped, for the off-policy control
  (chosen = the task's reference solution, ``trainer.data.offpolicy_dataset``);
* ``grpo_groups``: the mixed groups with their rewards.

KTO's unpaired labels come straight from the editor's records (``trainer.data.kto_dataset``).

    from agent.pairs import PairRule, build_pairs
    pairs = build_pairs(samples, PairRule(kind="plum"))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.store import Store, now

PAIR_RULES = ("acecoder", "plum")
ALL_PASS = "tasks whose samples all pass"
ALL_FAIL = "tasks whose samples all fail"


def passes_all(rate: float | None) -> bool:
    """Whether a pass rate means every valid test passed (the one definition of "passes")."""
    return rate is not None and rate >= 1.0 - 1e-9


@dataclass
class Outcomes:
    """(task, adapter) groups sorted by the outcomes of their samples."""

    mixed: set = field(default_factory=set)      # (task_id, adapter_id) with a passing and a failing sample
    all_pass: set = field(default_factory=set)
    all_fail: set = field(default_factory=set)

    def left_out(self) -> dict[str, int]:
        """The groups no rule learns from, by reason (counted as tasks)."""
        return {ALL_PASS: len(self.all_pass), ALL_FAIL: len(self.all_fail)}

    def counts(self) -> dict[str, int]:
        return {"mixed": len(self.mixed), "all_pass": len(self.all_pass), "all_fail": len(self.all_fail)}


def _groups(samples: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for s in samples:
        if s.get("pass_rate") is None:
            continue
        out.setdefault((s["task_id"], s["adapter_id"]), []).append(s)
    return out


def outcomes(samples: list[dict]) -> Outcomes:
    """Sort the (task, adapter) groups of scored ``samples`` by outcome."""
    out = Outcomes()
    for key, group in _groups(samples).items():
        passed = sum(passes_all(s["pass_rate"]) for s in group)
        (out.all_fail if passed == 0 else out.all_pass if passed == len(group) else out.mixed).add(key)
    return out


def mixed_groups(samples: list[dict]) -> tuple[dict[tuple[str, str], list[dict]], Outcomes]:
    """The mixed-outcome groups of ``samples`` (each in a stable order), and the outcome counts."""
    sorted_out = outcomes(samples)
    groups = {k: sorted(g, key=lambda s: s["id"]) for k, g in _groups(samples).items() if k in sorted_out.mixed}
    return groups, sorted_out


@dataclass
class PairRule:
    """Which two samples of a group make a preference pair."""

    chosen_min: float = 0.8
    gap_min: float = 0.4
    rejected_min: float = 0.0   # rejected must score strictly more than this (ACECODER)
    max_per_task: int = 8
    kind: str = "acecoder"      # or "plum": chosen passes all, rejected fails at least one

    def __post_init__(self) -> None:
        if self.kind not in PAIR_RULES:
            raise ValueError(f"pair rule {self.kind!r}; allowed: {', '.join(PAIR_RULES)}")

    @classmethod
    def from_config(cls, collect, kind: str = "acecoder") -> "PairRule":
        return cls(collect.chosen_min, collect.gap_min, collect.rejected_min, collect.max_pairs_per_task, kind)

    def can_choose(self, rate: float) -> bool:
        return passes_all(rate) if self.kind == "plum" else rate >= self.chosen_min

    def can_reject(self, rate: float) -> bool:
        return not passes_all(rate) if self.kind == "plum" else rate > self.rejected_min

    def admits(self, chosen_rate: float, rejected_rate: float) -> bool:
        """Whether a stored pair follows this rule (a pair made under another rule does not)."""
        if not (self.can_choose(chosen_rate) and self.can_reject(rejected_rate)):
            return False
        return self.kind == "plum" or chosen_rate - rejected_rate >= self.gap_min - 1e-12


def pair_rule_for(config) -> PairRule:
    """The pair rule of the configured update rule: PLUM's for ``plum`` and ``rpo``, else ACECODER's
    (what ``dpo`` and the reward model train on, and what ``plumline collect`` has always made)."""
    kind = "plum" if config.train.method in ("plum", "rpo") else "acecoder"
    return PairRule.from_config(config.collect, kind)


@dataclass
class Pair:
    task_id: str
    chosen_id: str
    rejected_id: str
    chosen_rate: float
    rejected_rate: float
    adapter_id: str


def build_pairs(samples: list[dict], rule: PairRule | None = None) -> list[Pair]:
    """Preference pairs per mixed-outcome (task, adapter) group. Each sample is chosen at most once
    and rejected at most once; the widest gaps come first; identical completions never pair."""
    rule = rule or PairRule()
    pairs: list[Pair] = []
    for (task_id, adapter_id), group in mixed_groups(samples)[0].items():
        chosen = sorted((s for s in group if rule.can_choose(s["pass_rate"])), key=lambda s: (-s["pass_rate"], s["id"]))
        rejected = sorted((s for s in group if rule.can_reject(s["pass_rate"])), key=lambda s: (s["pass_rate"], s["id"]))
        used_r: set[str] = set()
        count = 0
        for c in chosen:
            for r in rejected:
                if count >= rule.max_per_task:
                    break
                if r["id"] in used_r or r["id"] == c["id"] or not rule.admits(c["pass_rate"], r["pass_rate"]):
                    continue
                if _same_code(c.get("completion"), r.get("completion")):
                    continue
                pairs.append(Pair(task_id, c["id"], r["id"], c["pass_rate"], r["pass_rate"], adapter_id))
                used_r.add(r["id"])
                count += 1
                break
    return pairs


def _code_key(text: str | None) -> str:
    """Completions that differ only in trailing spaces or blank lines at the ends are one answer."""
    return "\n".join(line.rstrip() for line in (text or "").strip("\n").splitlines())


def _same_code(a: str | None, b: str | None) -> bool:
    return _code_key(a) == _code_key(b)


def _distinct(group: list[dict], cap: int) -> list[dict]:
    seen: set[str] = set()
    out = []
    for s in group:
        key = _code_key(s.get("completion"))
        if key and key not in seen:
            seen.add(key)
            out.append(s)
        if len(out) >= cap:
            break
    return out


def rft_examples(samples: list[dict], max_per_task: int) -> tuple[list[dict], Outcomes]:
    """RFT's training set: the samples that pass every valid test, from mixed-outcome groups,
    deduplicated, at most ``max_per_task`` per group. Returns (samples, outcomes)."""
    groups, sorted_out = mixed_groups(samples)
    out = []
    for group in groups.values():
        out += _distinct([s for s in group if passes_all(s["pass_rate"])], max_per_task)
    return out, sorted_out


def failing_samples(samples: list[dict], max_per_task: int) -> tuple[list[dict], Outcomes]:
    """The off-policy control's rejected side: failing samples of mixed-outcome groups, distinct,
    lowest pass rate first, at most ``max_per_task`` per group. Returns (samples, outcomes)."""
    groups, sorted_out = mixed_groups(samples)
    out = []
    for group in groups.values():
        failing = sorted((s for s in group if not passes_all(s["pass_rate"])), key=lambda s: (s["pass_rate"], s["id"]))
        out += _distinct(failing, max_per_task)
    return out, sorted_out


@dataclass
class Group:
    task_id: str
    adapter_id: str
    sample_ids: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)


def grpo_groups(samples: list[dict]) -> list[Group]:
    """The mixed-outcome groups, with their pass rates as rewards (the others carry no signal)."""
    return [Group(t, a, [s["id"] for s in g], [s["pass_rate"] for s in g]) for (t, a), g in mixed_groups(samples)[0].items()]


def write_pairs(store: Store, pairs: list[Pair]) -> int:
    """Store new pairs (a pair already stored is left alone); returns how many were new."""
    before = store.db["pairs"].count
    with store.atomic():
        for p in pairs:
            store.db["pairs"].insert({"task_id": p.task_id, "chosen_id": p.chosen_id, "rejected_id": p.rejected_id,
                                      "chosen_rate": p.chosen_rate, "rejected_rate": p.rejected_rate,
                                      "adapter_id": p.adapter_id, "created_at": now(), "used_by": None}, ignore=True)
    return store.db["pairs"].count - before


def training_samples(store: Store, adapter_id: str | None = None) -> list[dict]:
    """Scored samples of training-split tasks that are ready (not skipped), optionally of one adapter."""
    sql = ("select s.id, s.task_id, s.adapter_id, s.completion, s.pass_rate, s.model, s.base_fingerprint, "
           "s.created_at from samples s join tasks t on t.id = s.task_id "
           "where s.pass_rate is not null and t.split = 'train' and t.status = 'ready'")
    params: list = []
    if adapter_id is not None:
        sql += " and s.adapter_id = ?"
        params.append(adapter_id)
    return list(store.rows(sql + " order by s.id", params))


@dataclass
class TrainSetFigures:
    """The loop's own reward curve: how the samples of one adapter fare on the training tasks."""

    adapter_id: str
    samples: int
    pass_rate: float | None          # share of samples passing every valid test (the on-policy pass@1)
    mean_test_pass_rate: float | None  # mean share of valid tests passed
    tasks: dict = field(default_factory=dict)  # mixed / all_pass / all_fail


def train_set_figures(store: Store, adapter_id: str) -> TrainSetFigures:
    rows = training_samples(store, adapter_id)
    rates = [r["pass_rate"] for r in rows]
    return TrainSetFigures(adapter_id, len(rows),
                           sum(passes_all(r) for r in rates) / len(rates) if rates else None,
                           sum(rates) / len(rates) if rates else None, outcomes(rows).counts())
