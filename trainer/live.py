"""Automatic rollback on a live regression (design rule 6).

What: after a promotion, the editor keeps logging what happens to suggestions, each event tagged
with the adapter that served it. Once both the current adapter and the one it replaced have at
least ``train.rollback_min_events`` suggestions shown, compare their figures as ``plumline stats``
counts them (``agent.stats.adapter_figures``, the one definition: every suggestion counts once per
kind, however often its notification was sent):

* acceptance = accepted / shown (/ served, for an editor that reports no ``shown``), and
* persistence = the mean share of accepted text still there at the latest check both adapters have
  (e.g. "600s"), over the suggestions checked then,

with a one-sided two-proportion z-test. For persistence the "successes" are the summed shares; a
value in [0, 1] with mean p has a variance of at most p(1 - p), so the test is conservative there.
If either is lower for the current adapter with p < ``train.rollback_alpha``, roll back to the
previous adapter (``agent.adapters.rollback``) and record the decision in ``gate_decisions``.

Runs every night, first, whatever training then does (``trainer.nightly``), and alone:
``plumline adapters check``. Not covered: a regression the editor never reports (no events), and
adapters older than the one just replaced (only the last promotion is compared).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from agent.adapters import current_adapter, history, rollback


def two_proportion_p(x1: float, n1: int, x2: float, n2: int) -> float:
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
    """One adapter's live figures, as ``plumline stats`` counts them."""

    adapter_id: str
    shown: int
    accepted: int
    persistence: dict[str, float] = field(default_factory=dict)         # "600s" -> mean share kept
    persistence_checks: dict[str, int] = field(default_factory=dict)    # "600s" -> suggestions checked

    @property
    def acceptance(self) -> float | None:
        return self.accepted / self.shown if self.shown else None


@dataclass
class LiveCheck:
    current: LiveFigures | None
    previous: LiveFigures | None
    regressed: bool
    reason: str
    p_values: dict = field(default_factory=dict)
    rolled_back_to: str | None = None  # set by check_and_rollback when it rolled back


def live_figures(store, adapter_id: str) -> LiveFigures:
    """``adapter_id``'s figures from ``agent.stats.adapter_figures`` (shown: its acceptance base)."""
    from agent.stats import adapter_figures

    figs = adapter_figures(store, adapter=adapter_id)
    if not figs:
        return LiveFigures(adapter_id, 0, 0)
    a = figs[0]
    return LiveFigures(adapter_id, a.shown or a.served, a.accepted, dict(a.persistence), dict(a.persistence_checks))


def latest_common_check(cur: LiveFigures, prev: LiveFigures) -> str | None:
    """The latest persistence check (e.g. "600s") that both adapters have figures for."""
    common = set(cur.persistence_checks) & set(prev.persistence_checks)
    return max(common, key=lambda label: float(label[:-1])) if common else None


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
    label = latest_common_check(cur, prev)
    p_per = 1.0
    if label is not None:
        n1, n2 = cur.persistence_checks[label], prev.persistence_checks[label]
        p_per = two_proportion_p(cur.persistence[label] * n1, n1, prev.persistence[label] * n2, n2)
    ps = {"acceptance": p_acc, "persistence": p_per}
    figures = (f"acceptance {cur.acceptance:.1%} vs {prev.acceptance:.1%}, p = {p_acc:.3g}; "
               + (f"persistence at {label} {cur.persistence[label]:.1%} vs {prev.persistence[label]:.1%}, p = {p_per:.3g}"
                  if label is not None else "no persistence check common to both"))
    worse = [k for k, p in ps.items() if p < alpha]
    if worse:
        return LiveCheck(cur, prev, True, f"{current} is worse than {previous} on {', '.join(worse)} "
                                          f"({figures}; train.rollback_alpha {alpha})", ps)
    return LiveCheck(cur, prev, False, f"no significant live regression of {current} against {previous} ({figures})", ps)


def check_and_rollback(config, store, *, fingerprint: str | None = None) -> LiveCheck:
    """``live_check``; roll back when it finds a regression, and log the decision in gate_decisions."""
    from agent.store import now

    t = config.train
    check = live_check(store, config.adapters_dir, min_events=t.rollback_min_events, alpha=t.rollback_alpha)
    if check.regressed:
        gone, back = rollback(config.adapters_dir, store=store, fingerprint=fingerprint)
        check.rolled_back_to = back
        store.write("gate_decisions", {"candidate": gone, "current": back, "decision": "rollback",
                                       "reason": "live regression: " + check.reason,
                                       "metrics": {"p_values": check.p_values,
                                                   "current": vars(check.current), "previous": vars(check.previous)},
                                       "created_at": now()})
    return check
