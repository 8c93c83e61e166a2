"""`plumline stats`: is the model getting better at your code? Figures per adapter, from the store.

Per adapter (and the base model): suggestions served and shown, acceptance (also split by whether
the prompt carried cross-file context, ``agent.context``), partial acceptance,
characters accepted, persistence of accepted text at each check (30 s, 2 min, 10 min by
default), latency p50/p95. For the loop: tasks, tests kept/dropped by source, the candidates'
pass-rate distribution, pairs, training runs and gate decisions, sandbox verdicts by backend.

    plumline stats                    tables for everything in the store
    plumline stats --since 7d --json  machine-readable, last week only
    plumline stats --plot stats.png   acceptance and held-out pass@1 per adapter, pass-rate histogram
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from agent.store import Store


@dataclass
class AdapterFigures:
    adapter_id: str
    first_seen: float
    served: int
    shown: int
    accepted: int
    partial: int
    dismissed: int
    superseded: int
    chars_accepted: int
    acceptance_rate: float | None
    partial_rate: float | None
    persistence: dict[str, float] = field(default_factory=dict)  # "30s" -> mean similarity
    persistence_checks: dict[str, int] = field(default_factory=dict)  # "30s" -> completions checked (once each)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    # "with" / "without" cross-file context in the prompt -> served, shown, accepted, acceptance_rate
    context: dict[str, dict] = field(default_factory=dict)


@dataclass
class LoopFigures:
    tasks_by_status: dict[str, int]
    tasks_skipped_by_reason: dict[str, int]
    tests_by_source: dict[str, dict[str, int]]  # source -> {"kept": n, "dropped": n, "unchecked": n}
    candidates: int
    pass_rate_histogram: list[int]  # 10 buckets over [0, 1]
    pairs: int
    train_runs: list[dict]
    gate_decisions: list[dict]
    verdicts_by_backend: dict[str, dict[str, float]]


def parse_since(text: str | None) -> float:
    """'7d', '12h', '30m' or an ISO date → a unix time; None → 0."""
    if not text:
        return 0.0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if m:
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
        return time.time() - float(m.group(1)) * seconds
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%d"))
    except ValueError:
        raise ValueError(f"--since {text!r}: use a duration like 7d, 12h, 30m or a date like 2026-11-01") from None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return round(s[lo] + (s[hi] - s[lo]) * (k - lo), 1)


def acceptance(accepted: int, shown: int, served: int) -> float | None:
    """The acceptance rate: accepted over shown suggestions (over served ones when the editor reports
    no "shown"). The one definition, for every figure that reports it."""
    base = shown or served
    return round(accepted / base, 4) if base else None


def context_split(store: Store, since: float = 0.0, adapter: str | None = None) -> dict[str, dict[str, dict]]:
    """Per adapter, acceptance of suggestions whose prompt carried cross-file context ("with": the
    completion's ``context`` is set) and of the others ("without"), so a user sees its effect."""
    where, params = "c.created_at >= ?", [since]
    if adapter:
        where += " and c.adapter_id = ?"
        params.append(adapter)
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for r in store.rows(f"select c.adapter_id, c.context is not null as ctx, count(*) as n from completions c "
                        f"where {where} group by 1, 2", params):
        counts.setdefault(r["adapter_id"], {}).setdefault("with" if r["ctx"] else "without", {})["served"] = r["n"]
    for r in store.rows(f"select c.adapter_id, c.context is not null as ctx, e.kind, count(distinct e.completion_id) as n "
                        f"from events e join completions c on c.id = e.completion_id "
                        f"where {where} and e.kind in ('shown', 'accepted') group by 1, 2, 3", params):
        counts.setdefault(r["adapter_id"], {}).setdefault("with" if r["ctx"] else "without", {})[r["kind"]] = r["n"]
    return {a: {label: {"served": c.get("served", 0), "shown": c.get("shown", 0), "accepted": c.get("accepted", 0),
                        "acceptance_rate": acceptance(c.get("accepted", 0), c.get("shown", 0), c.get("served", 0))}
                for label, c in sorted(by.items())} for a, by in counts.items()}


def adapter_figures(store: Store, since: float = 0.0, adapter: str | None = None) -> list[AdapterFigures]:
    where, params = "created_at >= ?", [since]
    if adapter:
        where += " and adapter_id = ?"
        params.append(adapter)
    served = {r["adapter_id"]: r for r in store.rows(
        f"select adapter_id, count(*) as n, min(created_at) as first from completions where {where} group by adapter_id",
        params)}
    latencies: dict[str, list[float]] = {}
    for r in store.rows(f"select adapter_id, latency_ms from completions where {where} and latency_ms is not null", params):
        latencies.setdefault(r["adapter_id"], []).append(r["latency_ms"])
    # distinct completions per event kind, so a re-sent notification is not counted twice
    kinds: dict[str, dict[str, int]] = {}
    chars: dict[str, float] = {}
    for r in store.rows(
        f"select adapter_id, kind, count(distinct completion_id) as n, sum(value) as v from events "
        f"where {where} group by adapter_id, kind", params):
        kinds.setdefault(r["adapter_id"], {})[r["kind"]] = r["n"]
        if r["kind"] == "accepted":
            chars[r["adapter_id"]] = r["v"] or 0
    # one check per completion and label (the last one), so a re-sent notification is not counted twice
    persistence: dict[str, dict[str, dict[str, float]]] = {}
    for r in store.rows(f"select adapter_id, completion_id, value, detail from events where {where} and kind = 'persist' "
                        "order by id", params):
        try:
            after = json.loads(r["detail"] or "{}").get("after_s")
        except ValueError:
            after = None
        if after is None or r["value"] is None:
            continue
        label = f"{int(float(after))}s"
        persistence.setdefault(r["adapter_id"], {}).setdefault(label, {})[r["completion_id"]] = r["value"]
    split = context_split(store, since, adapter)
    out = []
    for adapter_id, row in sorted(served.items(), key=lambda kv: kv[1]["first"]):
        k = kinds.get(adapter_id, {})
        shown = k.get("shown", 0)
        base = shown or row["n"]
        out.append(AdapterFigures(
            adapter_id=adapter_id, first_seen=row["first"], served=row["n"], shown=shown,
            accepted=k.get("accepted", 0), partial=k.get("partial", 0), dismissed=k.get("dismissed", 0),
            superseded=k.get("superseded", 0), chars_accepted=int(chars.get(adapter_id, 0)),
            acceptance_rate=acceptance(k.get("accepted", 0), shown, row["n"]),
            partial_rate=round(k.get("partial", 0) / base, 4) if base else None,
            persistence={lbl: round(sum(v.values()) / len(v), 4) for lbl, v in
                         sorted(persistence.get(adapter_id, {}).items(), key=lambda kv: float(kv[0][:-1]))},
            persistence_checks={lbl: len(v) for lbl, v in
                                sorted(persistence.get(adapter_id, {}).items(), key=lambda kv: float(kv[0][:-1]))},
            latency_p50_ms=_percentile(latencies.get(adapter_id, []), 0.5),
            latency_p95_ms=_percentile(latencies.get(adapter_id, []), 0.95),
            context=split.get(adapter_id, {}),
        ))
    return out


def _decode(value):
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def loop_figures(store: Store, since: float = 0.0) -> LoopFigures:
    tasks = {r["status"] or "new": r["n"] for r in store.rows(
        "select status, count(*) as n from tasks where created_at >= ? group by status", [since])}
    skipped = {r["skip_reason"]: r["n"] for r in store.rows(
        "select skip_reason, count(*) as n from tasks where created_at >= ? and skip_reason is not null "
        "group by skip_reason order by n desc", [since])}
    tests: dict[str, dict[str, int]] = {}
    for r in store.rows("select source, valid, count(*) as n from tests where created_at >= ? group by source, valid", [since]):
        label = {1: "kept", 0: "dropped"}.get(r["valid"], "unchecked")
        tests.setdefault(r["source"] or "?", {"kept": 0, "dropped": 0, "unchecked": 0})[label] += r["n"]
    histogram = [0] * 10
    candidates = 0
    for r in store.rows("select pass_rate from samples where created_at >= ?", [since]):
        candidates += 1
        if r["pass_rate"] is not None:
            histogram[min(int(r["pass_rate"] * 10), 9)] += 1
    pairs = next(store.rows("select count(*) as n from pairs where created_at >= ?", [since]))["n"]
    runs = [{k: _decode(v) for k, v in r.items()} for r in store.rows(
        "select id, method, adapter_id, parent_adapter, status, started_at, finished_at, metrics from train_runs "
        "where started_at >= ? order by started_at", [since])]
    gates = [{k: _decode(v) for k, v in r.items()} for r in store.rows(
        "select candidate, current, decision, reason, metrics, created_at from gate_decisions where created_at >= ? "
        "order by created_at", [since])]
    backends = {r["backend"] or "?": {"verdicts": r["n"], "mean_test_s": round(r["d"] or 0, 4)} for r in store.rows(
        "select backend, count(*) as n, avg(duration_s) as d from verdicts where created_at >= ? group by backend", [since])}
    return LoopFigures(tasks, skipped, tests, candidates, histogram, pairs, runs, gates, backends)


def _heldout_pass1(gate: dict) -> tuple[float | None, float | None]:
    """(current, candidate) held-out greedy pass@1 from a stored gate decision's metrics."""
    m = gate.get("metrics") if isinstance(gate.get("metrics"), dict) else {}
    held = m.get("heldout") if isinstance(m.get("heldout"), dict) else m
    cur = held.get("current_pass1", held.get("current"))
    cand = held.get("candidate_pass1", held.get("candidate"))
    return (cur if isinstance(cur, (int, float)) else None, cand if isinstance(cand, (int, float)) else None)


def plot(path: Path, adapters: list[AdapterFigures], loop: LoopFigures) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    names = [a.adapter_id[:12] for a in adapters]
    ax = axes[0]
    acc = [100 * (a.acceptance_rate or 0) for a in adapters]
    ax.bar(names, acc, color="#4c72b0")
    for i, a in enumerate(adapters):
        ax.annotate(f"{a.accepted}/{a.shown or a.served}", (i, acc[i]), ha="center", va="bottom", fontsize=8)
    ax.set_title("Acceptance per adapter (in serving order)")
    ax.set_ylabel("% of shown suggestions accepted")
    ax.tick_params(axis="x", rotation=30)
    ax = axes[1]
    xs, cur, cand = [], [], []
    for g in loop.gate_decisions:
        c0, c1 = _heldout_pass1(g)
        if c0 is None or c1 is None:
            continue
        xs.append(str(g["candidate"])[:12])
        cur.append(100 * c0)
        cand.append(100 * c1)
    if xs:
        idx = range(len(xs))
        ax.plot(idx, cur, "o-", label="current adapter", color="#888888")
        ax.plot(idx, cand, "s-", label="candidate", color="#dd8452")
        for i, g in enumerate(g for g in loop.gate_decisions if _heldout_pass1(g)[0] is not None):
            ax.annotate(str(g["decision"]), (i, cand[i]), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.set_xticks(list(idx), xs, rotation=30)
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no gate decisions yet\n(plumline train / nightly)", ha="center", va="center")
    ax.set_title("Held-out pass@1 at each gate")
    ax.set_ylabel("%")
    ax = axes[2]
    ax.bar([f"{i / 10:.1f}" for i in range(10)], loop.pass_rate_histogram, color="#55a868")
    ax.set_title(f"Candidate pass rates ({loop.candidates} candidates)")
    ax.set_xlabel("pass rate bucket (lower edge)")
    ax.set_ylabel("candidates")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(v, pct=False):
    if v is None:
        return "-"
    return f"{100 * v:.1f}%" if pct else str(v)


def render(console: Console, adapters: list[AdapterFigures], loop: LoopFigures) -> None:
    t = Table(title="Suggestions per adapter", title_justify="left")
    for col in ("adapter", "served", "shown", "accept", "with/without context", "partial", "chars", "persist",
                "p50/p95 ms"):
        t.add_column(col, justify="left" if col == "adapter" else "right", overflow="fold")
    for a in adapters:
        persist = " ".join(f"{k}:{100 * v:.0f}%" for k, v in a.persistence.items()) or "-"
        split = "/".join(_fmt(a.context.get(k, {}).get("acceptance_rate"), True) for k in ("with", "without"))
        t.add_row(a.adapter_id[:14], str(a.served), str(a.shown), _fmt(a.acceptance_rate, True), split,
                  _fmt(a.partial_rate, True), str(a.chars_accepted), persist,
                  "/".join("-" if v is None else f"{v:.0f}" for v in (a.latency_p50_ms, a.latency_p95_ms)))
    console.print(t)
    t = Table(title="The loop", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("figures", overflow="fold")
    t.add_row("tasks", ", ".join(f"{k} {v}" for k, v in loop.tasks_by_status.items()) or "-")
    if loop.tasks_skipped_by_reason:
        t.add_row("skipped because", ", ".join(f"{k} {v}" for k, v in list(loop.tasks_skipped_by_reason.items())[:5]))
    t.add_row("tests", "; ".join(f"{s}: kept {c['kept']}, dropped {c['dropped']}" for s, c in loop.tests_by_source.items()) or "-")
    t.add_row("candidates", f"{loop.candidates}; pass-rate deciles {loop.pass_rate_histogram}")
    t.add_row("pairs", str(loop.pairs))
    t.add_row("sandbox", ", ".join(f"{b}: {v['verdicts']} verdicts, {v['mean_test_s']} s/test" for b, v in loop.verdicts_by_backend.items()) or "-")
    console.print(t)
    if loop.train_runs or loop.gate_decisions:
        t = Table(title="Training runs and gate decisions", title_justify="left")
        for col in ("when", "what", "adapter", "result"):
            t.add_column(col, overflow="fold")
        for r in loop.train_runs:
            t.add_row(time.strftime("%m-%d %H:%M", time.localtime(r["started_at"] or 0)), f"train {r['method']}",
                      str(r["adapter_id"])[:14], str(r["status"]))
        for g in loop.gate_decisions:
            c0, c1 = _heldout_pass1(g)
            figs = f" (held-out {_fmt(c0, True)} → {_fmt(c1, True)})" if c0 is not None and c1 is not None else ""
            t.add_row(time.strftime("%m-%d %H:%M", time.localtime(g["created_at"] or 0)), "gate",
                      str(g["candidate"])[:14], f"{g['decision']}{figs}: {g.get('reason') or ''}")
        console.print(t)


START_HINT = "Use `plumline serve` from your editor (see docs/editors.md), or run `plumline demo`."


def empty_loop() -> LoopFigures:
    """The loop's figures for a store that holds nothing: every count zero."""
    return LoopFigures({}, {}, {}, 0, [0] * 10, 0, [], [], {})


def is_empty(adapters: list[AdapterFigures], loop: LoopFigures) -> bool:
    return not adapters and not loop.tasks_by_status and not loop.train_runs


def _json(config, adapters: list[AdapterFigures], loop: LoopFigures, message: str | None) -> dict:
    """`plumline stats --json`: the same keys whether or not anything was recorded; ``message`` says
    what to do when ``empty`` is true (else null)."""
    return {"adapters": [asdict(a) for a in adapters], "loop": asdict(loop), "empty": is_empty(adapters, loop),
            "message": message,
            "store": str(config.store_path)}


def stats(
    since: str = typer.Option(None, "--since", help="only records newer than this: 7d, 12h, 30m or 2026-11-01"),
    adapter: str = typer.Option(None, "--adapter", help="only this adapter id ('base' for the base model)"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON object instead of tables"),
    plot_path: Path = typer.Option(None, "--plot", help="also write a PNG with acceptance, held-out pass@1 and pass rates"),
) -> None:
    """Acceptance, persistence, latency per adapter; tasks, tests, pass rates, runs and gates.

    Example:
        plumline stats --since 7d --plot stats.png
    """
    from agent.cli import config_or_exit, fail

    config = config_or_exit()
    try:
        start = parse_since(since)
    except ValueError as exc:
        fail(str(exc))
    console = Console()
    if not config.store_path.exists():
        if as_json:  # a script reading the figures gets figures: all zero, and the advice as a field
            print(json.dumps(_json(config, [], empty_loop(), f"nothing recorded yet ({config.store_path} does not "
                                   f"exist). {START_HINT}"), default=str))
            return
        fail(f"nothing recorded yet ({config.store_path} does not exist). Use `plumline serve` from your editor, "
             "or run `plumline demo` to fill the store with one learning cycle.", code=1)
    store = Store(config.store_path)
    adapters = adapter_figures(store, start, adapter)
    loop = loop_figures(store, start)
    empty = is_empty(adapters, loop)
    message = ("Nothing recorded yet" + (" in that window" if since or adapter else "") + ". " + START_HINT
               if empty else None)
    if as_json:
        print(json.dumps(_json(config, adapters, loop, message), default=str))
        return
    if empty:
        console.print(message)
        return
    render(console, adapters, loop)
    if plot_path:
        console.print(f"plot written to {plot(plot_path, adapters, loop)}")


def register(app: typer.Typer) -> None:
    app.command("stats")(stats)
