"""Automatic rollback on a live regression (design rule 6).

What: after a promotion, the editor keeps logging what happens to suggestions, each event tagged
with the adapter that served it. Once both the current adapter and the one it replaced have at
least ``train.rollback_min_events`` suggestions shown, compare

* acceptance = accepted / shown, and
* persistence = accepted suggestions still (mostly, value >= 0.5) there at the persistence check /
  accepted suggestions checked,

with a one-sided two-proportion z-test. If either is lower for the current adapter with
p < ``train.rollback_alpha``, roll back to the previous adapter (``agent.adapters.rollback``).

Run alone: ``plumline adapters check`` (``live_check`` + rollback when warranted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agent.adapters import current_adapter, history, rollback


def two_proportion_p(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided p-value that proportion 1 is *lower* than proportion 2 (pooled z-test)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (x1 / n1 - x2 / n2) / se
    return 0.5 * math.erfc(-z / math.sqrt(2))  # P(Z <= z)


@dataclass
class LiveFigures:
    adapter_id: str
    shown: int
    accepted: int
    persist_checked: int
    persisted: int

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.shown if self.shown else None

    @property
    def persistence(self) -> float | None:
        return self.persisted / self.persist_checked if self.persist_checked else None


@dataclass
class LiveCheck:
    current: LiveFigures | None
    previous: LiveFigures | None
    regressed: bool
    reason: str
    p_values: dict = field(default_factory=dict)


def live_figures(store, adapter_id: str) -> LiveFigures:
    row = next(store.rows(
        """select sum(kind = 'shown') as shown, sum(kind = 'accepted') as accepted,
                  sum(kind = 'persist') as checked, sum(kind = 'persist' and value >= 0.5) as kept
           from events where adapter_id = ?""", [adapter_id]))
    return LiveFigures(adapter_id, row["shown"] or 0, row["accepted"] or 0, row["checked"] or 0, row["kept"] or 0)


def live_check(store, adapters_dir, *, min_events: int, alpha: float) -> LiveCheck:
    """Is the current adapter doing significantly worse live than the one it replaced?"""
    current = current_adapter(adapters_dir).id
    promoted = [h for h in history(adapters_dir) if h.get("id") == current and h.get("why") != "rollback"]
    if not promoted:
        return LiveCheck(None, None, False, f"{current} was not promoted over another adapter: nothing to compare")
    previous = promoted[-1].get("from")
    cur, prev = live_figures(store, current), live_figures(store, previous)
    if cur.shown < min_events or prev.shown < min_events:
        return LiveCheck(cur, prev, False, f"not enough events yet ({cur.shown} and {prev.shown} shown; "
                                           f"{min_events} needed each, train.rollback_min_events)")
    p_acc = two_proportion_p(cur.accepted, cur.shown, prev.accepted, prev.shown)
    p_per = two_proportion_p(cur.persisted, cur.persist_checked, prev.persisted, prev.persist_checked)
    ps = {"acceptance": p_acc, "persistence": p_per}
    worse = [k for k, p in ps.items() if p < alpha]
    if worse:
        return LiveCheck(cur, prev, True, f"{current} is worse than {previous} on {', '.join(worse)} "
                                          f"(acceptance {cur.acceptance:.1%} vs {prev.acceptance:.1%}, p = {p_acc:.3g}; "
                                          f"persistence p = {p_per:.3g})", ps)
    return LiveCheck(cur, prev, False, "no significant live regression", ps)


def check_and_rollback(config, store, *, fingerprint: str | None = None) -> LiveCheck:
    """``live_check``; roll back when it finds a regression, and log the decision in gate_decisions."""
    from agent.store import now

    t = config.train
    check = live_check(store, config.adapters_dir, min_events=t.rollback_min_events, alpha=t.rollback_alpha)
    if check.regressed:
        gone, back = rollback(config.adapters_dir, store=store, fingerprint=fingerprint)
        store.write("gate_decisions", {"candidate": gone, "current": back, "decision": "rollback",
                                       "reason": "live regression: " + check.reason,
                                       "metrics": {"p_values": check.p_values,
                                                   "current": vars(check.current), "previous": vars(check.previous)},
                                       "created_at": now()})
    return check
