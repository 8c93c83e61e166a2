"""Pairs and rewards from pass rates (DESIGN rule 3).

What, from scored samples (pass rates over *synthesized* valid tests only - never HumanEval's
ground-truth tests, which are for evaluation):

* ``build_pairs`` - ACECODER's rule: chosen pass rate >= ``chosen_min`` (0.8), chosen minus
  rejected >= ``gap_min`` (0.4), rejected > ``rejected_min`` (0). Samples are grouped by
  (task, adapter): a pair never mixes adapters (rule 1), and each pair records its adapter.
* ``grpo_groups`` - per (task, adapter), the samples and their rewards, only where they do not
  all score the same (a flat group carries no signal).

KTO's unpaired labels come straight from the editor's records, with the prompt the server sent:
``trainer.data.kto_dataset`` (accepted and still there vs dismissed).

    from agent.pairs import PairRule, build_pairs
    pairs = build_pairs(samples, PairRule(chosen_min=0.8, gap_min=0.4))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.store import Store, now


@dataclass
class PairRule:
    chosen_min: float = 0.8
    gap_min: float = 0.4
    rejected_min: float = 0.0   # rejected must score strictly more than this
    max_per_task: int = 8

    @classmethod
    def from_config(cls, collect) -> "PairRule":
        return cls(collect.chosen_min, collect.gap_min, collect.rejected_min, collect.max_pairs_per_task)


@dataclass
class Pair:
    task_id: str
    chosen_id: str
    rejected_id: str
    chosen_rate: float
    rejected_rate: float
    adapter_id: str


@dataclass
class Group:
    task_id: str
    adapter_id: str
    sample_ids: list[str] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)


def _groups(samples: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = {}
    for s in samples:
        if s.get("pass_rate") is None:
            continue
        out.setdefault((s["task_id"], s["adapter_id"]), []).append(s)
    return out


def build_pairs(samples: list[dict], rule: PairRule | None = None) -> list[Pair]:
    """Preference pairs per (task, adapter). Each sample is chosen at most once and rejected at
    most once; the widest gaps come first; identical completions never pair with each other."""
    rule = rule or PairRule()
    pairs: list[Pair] = []
    for (task_id, adapter_id), group in _groups(samples).items():
        chosen = sorted((s for s in group if s["pass_rate"] >= rule.chosen_min), key=lambda s: (-s["pass_rate"], s["id"]))
        rejected = sorted((s for s in group if s["pass_rate"] > rule.rejected_min), key=lambda s: (s["pass_rate"], s["id"]))
        used_r: set[str] = set()
        count = 0
        for c in chosen:
            for r in rejected:
                if count >= rule.max_per_task:
                    break
                if r["id"] in used_r or c["pass_rate"] - r["pass_rate"] < rule.gap_min - 1e-12:
                    continue
                if (c.get("completion") or "").strip() == (r.get("completion") or "").strip():
                    continue
                pairs.append(Pair(task_id, c["id"], r["id"], c["pass_rate"], r["pass_rate"], adapter_id))
                used_r.add(r["id"])
                count += 1
                break
    return pairs


def grpo_groups(samples: list[dict]) -> list[Group]:
    """Groups whose samples do not all score the same (the others carry no signal for GRPO)."""
    out = []
    for (task_id, adapter_id), group in _groups(samples).items():
        rates = [s["pass_rate"] for s in group]
        if len(group) >= 2 and max(rates) - min(rates) > 1e-9:
            out.append(Group(task_id, adapter_id, [s["id"] for s in group], rates))
    return out


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
    sql = ("select s.id, s.task_id, s.adapter_id, s.completion, s.pass_rate from samples s join tasks t on t.id = s.task_id "
           "where s.pass_rate is not null and t.split = 'train' and t.status = 'ready'")
    params: list = []
    if adapter_id is not None:
        sql += " and s.adapter_id = ?"
        params.append(adapter_id)
    return list(store.rows(sql, params))

