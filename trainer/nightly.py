"""``plumline nightly``: collect → train → gate → promote, unattended. Each stage is a function
you can run alone (``plumline collect``, ``plumline train``, ``plumline eval``,
``plumline adapters promote``); this module only strings them together, like a speedrun script:

    1. checks   skip on battery, or when the machine is busy (train.max_load), never overlap
    2. live     trainer.live.check_and_rollback: roll back if the current adapter does worse live
                than the one it replaced; every night, before anything samples from it, whatever
                training then does
    3. collect  agent.collect.collect: logged prompts → tasks → tests → on-policy samples → pairs
    4. train    trainer.runs.train: a candidate adapter (train.method) from the current one; with
                too little data for the rule it says so and trains nothing
    5. gate     trainer.gate.run_gate: candidate vs current on held-out + HumanEval, stored
    6. promote  agent.adapters.promote when the gate says so (the language server hot-swaps)

Each stage's record says what it did, its wall time and the process's peak memory so far
(``seconds``, ``peak_rss_mb``). A cycle stopped after training and before its gate decision
(a crash, a reboot) does not train again: the next run gates the candidate it left
(``ungated_candidate``), so no finished stage is lost.

It runs at low priority (nice 10), holds ``<home>/nightly.lock`` (an ``flock``, released by the
kernel if the process dies, so a crash never blocks the next night), and logs every run to the
store (``state`` keys ``nightly.last`` and ``nightly.history``).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.store import now


class NightlyLocked(RuntimeError):
    """Another nightly run holds the lock."""


class NightlyLock:
    """An exclusive, non-blocking flock on ``path``; the holder's pid is written inside."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def __enter__(self) -> "NightlyLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise NightlyLocked(f"another `plumline nightly` is running (pid {holder}, lock {self.path}); skipped") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def on_battery() -> bool:
    """True when a battery is present and no mains adapter is online (Linux sysfs; else False)."""
    root = Path("/sys/class/power_supply")
    if not root.is_dir():
        return False
    mains, battery = [], False
    for dev in root.iterdir():
        try:
            kind = (dev / "type").read_text().strip()
            if kind == "Mains":
                mains.append((dev / "online").read_text().strip() == "1")
            elif kind == "Battery":
                battery = True
        except OSError:
            continue
    return battery and bool(mains) and not any(mains)


def busy(max_load: float) -> str:
    """A reason to skip when the 1-minute load per core is above ``max_load`` (0 = never)."""
    if max_load <= 0:
        return ""
    load = os.getloadavg()[0] / (os.cpu_count() or 1)
    return f"the machine is busy (load {load:.2f} per core > train.max_load {max_load})" if load > max_load else ""


@dataclass
class NightlyResult:
    status: str                       # done | skipped | failed
    message: str
    stages: dict = field(default_factory=dict)
    started_at: float = field(default_factory=now)
    seconds: float = 0.0


def log_run(store, result: NightlyResult) -> None:
    data = asdict(result)
    store.set_state("nightly.last", json.dumps(data, default=str))
    hist = json.loads(store.get_state("nightly.history", "[]") or "[]")
    store.set_state("nightly.history", json.dumps((hist + [data])[-50:], default=str))


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (and its children's), in MB."""
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(kb / 1024, 1)


class _Timed:
    """Adds ``seconds`` and ``peak_rss_mb`` to a stage's record when the block ends."""

    def __init__(self, stages: dict, name: str):
        self.stages, self.name = stages, name

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        record = self.stages.setdefault(self.name, {})
        record.update(seconds=round(time.perf_counter() - self.t0, 2), peak_rss_mb=peak_rss_mb())


def return_freed_memory() -> None:
    """Give the memory a finished training run freed back to the system. Measured after 4 RFT steps
    on the embedded Qwen: 4.7 GB resident once ``train()`` returned, 4.1 GB after ``gc.collect()``,
    0.6 GB after glibc's ``malloc_trim``: the rest was freed heap glibc kept, not live objects."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim this way
        pass


def ungated_candidate(config, store, parent_id: str, method: str) -> str | None:
    """A candidate a stopped cycle trained from ``parent_id`` with ``method`` and never gated (the
    newest, when its folder is still in the registry), else None."""
    for row in store.rows("select a.id from adapters a where a.status = 'candidate' and a.parent = ? and a.method = ? "
                          "and not exists (select 1 from gate_decisions g where g.candidate = a.id) "
                          "order by a.created_at desc", [parent_id, method]):
        if (config.adapters_dir / row["id"]).is_dir():
            return row["id"]
    return None


def stage_train(config, store, sandbox, say=print, **train_kwargs) -> dict:
    """Stage 4: a candidate from the serving adapter (``trainer.runs.train``), or the one a stopped
    cycle left ungated. The record says how much data the rule had and what it left out."""
    from agent.adapters import Adapter, current_adapter
    from trainer.runs import train

    method = train_kwargs.get("method") or config.train.method
    left = ungated_candidate(config, store, current_adapter(config.adapters_dir).id, method)
    if left is not None:
        say(f"train: {left} was trained by a cycle that stopped before its gate; gating it instead of training again")
        meta = Adapter(left, config.adapters_dir / left).meta  # the stopped cycle's training: data, steps, time
        trained = next(store.rows("select id from train_runs where adapter_id = ?", [left]), {})
        return {"status": "finished", "message": f"{left}, left ungated by a stopped cycle", "adapter": left,
                "run": trained.get("id"), "method": method, "resumed": True, "window": meta.get("data_window", {}),
                "metrics": {k: v for k, v in meta.get("metrics", {}).items() if k != "loss_curve"}}
    res = train(config, store, sandbox=sandbox, progress=False, say=say, **train_kwargs)
    return_freed_memory()  # the gate comes next in this process
    metrics = {k: v for k, v in res.metrics.items() if k != "loss_curve"}
    return {"status": res.status, "message": res.message, "adapter": res.adapter_id, "run": res.run_id,
            "method": res.method, "window": res.window, "metrics": metrics}


def stage_collect(config, store, policy, sandbox, say=print, reporter=None) -> dict:
    """Stage 2: the data loop (``agent.collect.collect``) with the policy serving now."""
    from agent.collect import collect

    counts = collect(store, config, policy=policy, sandbox=sandbox, reporter=reporter)
    out = asdict(counts) if hasattr(counts, "__dataclass_fields__") else {"result": str(counts)}
    say("collect: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in out.items() if v not in (0, None, False, "")))
    return out


def stage_live(config, store, policy, fingerprint: str | None, say=print) -> dict:
    """Stage 2: the live check (``trainer.live.check_and_rollback``). After a rollback, a policy
    already loaded serves the restored adapter, so tonight's samples come from what serves."""
    from agent.adapters import AdapterError, current_adapter
    from trainer.live import check_and_rollback

    try:
        live = check_and_rollback(config, store, fingerprint=fingerprint)
    except AdapterError as exc:  # regressed, but nothing earlier can serve: keep serving, say why
        say(f"live: {exc}")
        return {"regressed": True, "error": str(exc)}
    out = {"regressed": live.regressed, "reason": live.reason}
    if live.rolled_back_to is not None:
        out["rolled_back_to"] = live.rolled_back_to
        if policy is not None:
            restored = current_adapter(config.adapters_dir)
            policy.set_adapter(restored.path, restored.id)
    say("live: " + ("rolled back to " + live.rolled_back_to + ": " if live.rolled_back_to else "") + live.reason)
    return out


def run_nightly(config, store, *, policy=None, sandbox=None, train_kwargs: dict | None = None, say=print,
                check_power: bool = True, reporter=None, low_priority: bool = True) -> NightlyResult:
    """One unattended cycle (see the module docstring). Never raises for expected conditions;
    the result (and the store) say what happened."""
    t0 = time.perf_counter()
    try:
        with NightlyLock(config.home / "nightly.lock"):
            result = _cycle(config, store, policy=policy, sandbox=sandbox, train_kwargs=train_kwargs or {}, say=say,
                            check_power=check_power, reporter=reporter, low_priority=low_priority)
    except NightlyLocked as exc:
        result = NightlyResult("skipped", str(exc))
    result.seconds = round(time.perf_counter() - t0, 2)
    log_run(store, result)
    say(f"nightly {result.status}: {result.message}")
    return result


def _cycle(config, store, *, policy, sandbox, train_kwargs, say, check_power, reporter=None,
           low_priority: bool = True) -> NightlyResult:
    from agent.adapters import AdapterError, base_fingerprint, promote
    from trainer.gate import run_gate

    if check_power and on_battery():
        return NightlyResult("skipped", "on battery power")
    reason = busy(config.train.max_load)
    if reason:
        return NightlyResult("skipped", reason)
    if low_priority:
        try:
            os.nice(10)  # low priority for the rest of this process
        except OSError:
            pass
    stages: dict = {}
    own_sandbox = None
    try:
        fingerprint = base_fingerprint(policy_path(config))
        with _Timed(stages, "live"):
            stages["live"] = stage_live(config, store, policy, fingerprint, say=say)
        with _Timed(stages, "collect"):
            if policy is None:
                from agent.completion import load_policy

                policy = load_policy(config, say=say)  # after the live check: the adapter serving now
            if sandbox is None:
                from sandbox import open_sandbox

                sandbox = own_sandbox = open_sandbox(config.sandbox)
            stages["collect"] = stage_collect(config, store, policy, sandbox, say=say, reporter=reporter)
        with _Timed(stages, "train"):
            stages["train"] = res = stage_train(config, store, sandbox, say=say, **train_kwargs)
        if res["status"] != "finished":
            why = "not trained: " if res["status"] == "empty" else ""
            return NightlyResult("done" if res["status"] == "empty" else "failed", f"train: {why}{res['message']}", stages)
        candidate = res["adapter"]
        with _Timed(stages, "gate"):
            decision = run_gate(config, store, candidate, policy=policy, sandbox=sandbox, fingerprint=fingerprint, say=say)
            stages["gate"] = {"decision": decision.decision, "reason": decision.reason, "id": decision.id}
        if decision.decision == "promote":
            with _Timed(stages, "promote"):
                try:
                    previous = promote(config.adapters_dir, candidate, store=store, fingerprint=fingerprint)
                    stages["promote"] = {"from": previous, "to": candidate}
                except AdapterError as exc:
                    stages["promote"] = {"error": str(exc)}
                    return NightlyResult("failed", f"promotion refused: {exc}", stages)
        return NightlyResult("done", f"{candidate}: {decision.decision} ({decision.reason})", stages)
    except Exception as exc:  # noqa: BLE001 - unattended: record what broke, keep serving what serves
        return NightlyResult("failed", f"{type(exc).__name__}: {exc}", stages)
    finally:
        if own_sandbox is not None:
            own_sandbox.close()


def policy_path(config) -> str:
    from agent.models import resolve_model_path

    return resolve_model_path(config.model, config.cache_dir, say=lambda _m: None)
