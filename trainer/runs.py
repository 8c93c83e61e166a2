"""``train()``: one entry point for every update rule (dpo, plum, rpo, rft, grpo, the off-policy
control), the reward model and KTO.

The stages, each a plain function: ``build_dataset`` (store → rows in the serving format) →
``BUILDERS[method]`` (model + TRL trainer, ``trainer/methods.py``) → ``fit`` (train with progress,
NaN guard, checkpoints, resume) → ``save_adapter`` (registry folder + metadata, as a *candidate*;
only the gate promotes). Every run is a ``train_runs`` row: method, parent, resolved config, data
window, loss summary, status (running / interrupted / finished / failed / empty).

Seeds: ``train.seed`` seeds the LoRA initialization (``set_seed`` before the trainer wraps the model
in its adapter; TRL's own trainers also seed with ``args.seed``, which is the same) and the data order (the Trainer's ``seed`` and ``data_seed``); the loop's
sampling draws from it too (``agent.collect.sampling_seed``). Every run records them
(``train_runs.config.seeds``), and so does its adapter's metadata.

Resume: checkpoints go to ``<home>/runs/<run id>/checkpoint-N`` every ``train.save_steps`` steps.
A run that was interrupted (Ctrl-C, a kill, a reboot) with the same method and parent is picked up
by the next ``train()`` from its last checkpoint, on exactly the examples it started with: their ids
are stored with the run when it starts (``train_runs.config["examples"]``), and the dataset is
rebuilt from those ids, not from what the store holds now. If they cannot all be rebuilt (rows
deleted, or now held-out), or the run predates the snapshot, it is marked failed with the reason and
a new run starts.

No repeat of a rejection: a run whose adapter the gate rejected is not trained again while nothing
has changed (``rejected_twin``: the same rule, parent, base, training settings and examples would
make the same adapter, since the seeds are fixed). The run is recorded as empty with the reason, so
a ``plumline nightly`` with nothing new to learn from spends no night on it.

Several processes (``accelerate launch``, one per GPU): every process runs this same code and
trains its share of each batch; only the main process writes to the store and the registry and
says things. The run id (so the checkpoint folder all of them write to), the checkpoint to resume
from and the adapter id are the main process's, broadcast to the others. Alone, none of that
applies: no distributed state is created and nothing waits on a collective.

Run alone::

    plumline train                      # method from train.method (plum by default)
    plumline train --method grpo --max-steps 20
    accelerate launch --multi_gpu --num_processes 4 -m agent.cli train   # the same on 4 GPUs
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from transformers.trainer_callback import PrinterCallback

from agent.adapters import AdapterError, write_meta
from agent.store import new_id, now
from trainer.data import (DataWindow, EmptyDataset, SnapshotChanged, grpo_dataset, kto_dataset, mark_used,
                          offpolicy_dataset, preference_dataset, rft_dataset)
from trainer.methods import BUILDERS, common_args
from trainer.model import Base, device_for, load_base, parent_adapter
from trainer.progress import LossCurve, NaNLoss, ProgressBar


@dataclass
class TrainResult:
    """What a training run produced. ``status`` is finished, empty, failed or interrupted."""

    run_id: str
    method: str
    status: str
    message: str = ""
    adapter_id: str | None = None
    parent: str = "base"
    metrics: dict = field(default_factory=dict)
    window: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "finished"


class TrainingFailed(RuntimeError):
    pass


def build_dataset(config, store, base: Base, method: str, parent_id: str, sandbox=None, only: list | None = None):
    """(dataset, DataWindow, reward_funcs) for ``method``; raises EmptyDataset. ``only``: a run's
    snapshot of example ids, to rebuild exactly that dataset (raises SnapshotChanged if it cannot)."""
    from agent.pairs import PairRule

    t = config.train
    common = dict(adapter_id=parent_id, min_examples=t.min_examples, only=only)
    sampled = dict(base=base.fingerprint, on_policy_only=t.on_policy_only, **common)
    if method in ("dpo", "plum", "rpo", "rm"):
        rule = PairRule.from_config(config.collect, "plum" if method in ("plum", "rpo") else "acecoder")
        ds, window = preference_dataset(store, base.tokenizer, base.fmt, method=method, margin=(method == "rm" and t.rm_margin),
                                        rule=rule, **sampled)
        return ds, window, None
    if method == "rft":
        return (*rft_dataset(store, base.tokenizer, base.fmt, max_per_task=t.rft_max_per_task, **sampled), None)
    if method == "offpolicy":
        return (*offpolicy_dataset(store, base.tokenizer, base.fmt, max_per_task=config.collect.max_pairs_per_task,
                                   **sampled), None)
    if method == "kto":
        ds, window = kto_dataset(store, base.tokenizer, base.fmt, base=base.fingerprint,
                                 on_policy_only=t.on_policy_only, **common)
        return ds, window, None
    ds, window = grpo_dataset(store, base.tokenizer, base.fmt, min_tests=config.collect.min_valid_tests,
                              base=base.fingerprint, **common)
    from trainer.rewards import Grader, make_execution_reward

    grader = Grader(store, sandbox, fmt=base.fmt, training=True)
    return ds, window, [make_execution_reward(grader, t.grpo_reward)]


def seeds_of(config, parent_id: str) -> dict:
    """The seeds a run draws from, as recorded with it: the LoRA initialization and the data order
    (``train.seed``), and the seed its training samples were drawn with from ``parent_id``."""
    from agent.collect import sampling_seed

    s = config.train.seed
    return {"train.seed": s, "lora_init": s, "data_order": s, "sampling": sampling_seed(s, parent_id)}


NOT_SHAPING = ("nightly_at", "max_load", "save_steps")  # train.* keys that act after (or beside) training


def shaping_settings(config, base: Base, max_steps: int | None) -> dict:
    """What decides the adapter a run makes, besides its examples: the base, the training settings
    (not the gate's, the rollback's or the schedule's, which act after training) and the steps."""
    t = dataclasses.asdict(config.train)
    train = {k: v for k, v in t.items() if not k.startswith(("gate_", "rollback_")) and k not in NOT_SHAPING}
    return {"base_fingerprint": base.fingerprint, "train": train,
            "max_steps": config.train.max_steps if max_steps is None else max_steps}


def rejected_twin(store, method: str, parent_id: str, settings: dict, examples: list) -> dict | None:
    """An earlier run that would make this run's adapter again and whose adapter the gate rejected:
    the same rule from the same parent, the same settings (``shaping_settings``) and the same
    examples. The seeds are fixed, so training again makes the same adapter, and the gate, on the
    same held-out tasks, the same decision: a night with nothing new to learn from would be spent
    repeating a rejection."""
    want = sorted(map(str, examples))
    for row in store.rows("select r.id, r.adapter_id, r.config from train_runs r join adapters a on a.id = r.adapter_id "
                          "where r.method = ? and r.parent_adapter = ? and r.status = 'finished' and a.status = 'rejected' "
                          "order by r.finished_at desc", [method, parent_id]):
        recorded = json.loads(row["config"] or "{}")
        then = {"base_fingerprint": recorded.get("base_fingerprint"), "max_steps": recorded.get("max_steps"),
                "train": {k: v for k, v in (recorded.get("train") or {}).items() if k in settings["train"]}}
        if then == settings and sorted(map(str, recorded.get("examples") or [])) == want:
            return row
    return None


# -- several processes (`accelerate launch`) ---------------------------------------------------------

def is_main_process() -> bool:
    """Whether this process reports and writes: the only one, or rank 0 under ``accelerate launch``
    (torchrun sets RANK in every process before any distributed state exists)."""
    return int(os.environ.get("RANK", "0")) == 0


def processes(config):
    """accelerate's process state when launched as several processes (WORLD_SIZE > 1), else None:
    a single process never initialises distributed state nor waits on a collective."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=device_for(config) == "cpu")


def from_main(procs, value):
    """The main process's ``value``, in every process (a broadcast; ``value`` itself when alone)."""
    if procs is None:
        return value
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


def _main_first(procs):
    """The main process does the block first (e.g. converting the embedded model), then the others."""
    return procs.main_process_first() if procs is not None else contextlib.nullcontext()


def _wait_for_everyone(procs) -> None:
    if procs is not None:
        procs.wait_for_everyone()


def _pid_alive(pid: int | None) -> bool:
    if not pid or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def find_resumable(store, runs_dir: Path, method: str, parent_id: str) -> tuple[str, str, list | None] | None:
    """(run id, checkpoint folder, example ids) of an unfinished run of this method and parent, if
    any. The example ids are the snapshot the run stored when it started (None: it stored none)."""
    from transformers.trainer_utils import get_last_checkpoint

    for row in store.rows("select * from train_runs where method = ? and parent_adapter = ? and status in "
                          "('running', 'interrupted') order by started_at desc", [method, parent_id]):
        meta = json.loads(row["metrics"] or "{}")
        if _pid_alive(meta.get("pid")):
            continue  # still training in another process
        out = runs_dir / row["id"]
        ckpt = get_last_checkpoint(str(out)) if out.is_dir() else None
        if ckpt:
            return row["id"], ckpt, json.loads(row["config"] or "{}").get("examples")
    return None


def _explain_oom(config, exc: BaseException) -> TrainingFailed:
    t = config.train
    return TrainingFailed(
        f"out of memory while training ({str(exc).splitlines()[0][:200]}). Lower train.batch_size (now {t.batch_size}; "
        f"raise train.grad_accum to keep the effective batch), or train.max_length (now {t.max_length})"
        + (f", or train.grpo_generations (now {t.grpo_generations})" if t.method == "grpo" else "") + "."
    )


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)) or "out of memory" in str(exc).lower()


def fit(trainer, *, resume_from: str | None, config) -> None:
    """Train, turning OOM into a message that names the setting to lower."""
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except NaNLoss:
        raise
    except (RuntimeError, MemoryError) as exc:
        if _is_oom(exc):
            raise _explain_oom(config, exc) from None
        raise


def adapter_id_for(method: str) -> str:
    return f"{method}-{time.strftime('%Y%m%d-%H%M%S')}-{new_id()[:6]}"


def save_adapter(trainer, config, store, *, adapter_id: str, method: str, base: Base, parent_id: str,
                 window: DataWindow, run_id: str, metrics: dict) -> Path:
    """Write the trained adapter into the registry as a candidate: save to a hidden temp folder,
    add metadata, then rename (a reader never sees a half-written adapter under a real id)."""
    registry = config.adapters_dir
    registry.mkdir(parents=True, exist_ok=True)
    tmp = registry / f".tmp-{adapter_id}"
    shutil.rmtree(tmp, ignore_errors=True)
    model = trainer.model
    if hasattr(model, "peft_config") and "default" in getattr(model, "peft_config", {}):
        model.save_pretrained(str(tmp), selected_adapters=["default"])
    else:
        model.save_pretrained(str(tmp))
    meta = {"id": adapter_id, "parent": parent_id, "method": method, "base_model": base.name,
            "base_fingerprint": base.fingerprint, "created_at": now(), "train_run": run_id,
            "data_window": window.summary(), "metrics": metrics}
    write_meta(tmp, meta)
    final = registry / adapter_id
    os.replace(tmp, final)
    store.write("adapters", {"id": adapter_id, "parent": parent_id, "method": method, "path": str(final),
                             "base_model": base.name, "status": "candidate", "created_at": meta["created_at"],
                             "metrics": metrics, "data_window": window.summary()}, replace=True)
    return final


def _left_out(window: DataWindow) -> str:
    parts = [f"{n} {why}" for why, n in window.dropped.items()]
    o = window.outcomes
    if o.get("all_pass") or o.get("all_fail"):
        parts.append(f"{o.get('all_pass', 0)} tasks whose samples all pass and {o.get('all_fail', 0)} whose samples all fail")
    return ("; left out " + ", ".join(parts)) if parts else ""


def train(config, store, *, method: str | None = None, max_steps: int | None = None, callbacks: list | None = None,
          sandbox=None, progress: bool = True, say=print) -> TrainResult:
    """Train one adapter with ``method`` (default ``config.train.method``) on the store's data.

    Returns a TrainResult; "empty" when there is too little data (nothing trained), "failed" with
    the reason (NaN loss, out of memory, adapter from another base). KeyboardInterrupt marks the run
    interrupted (resumable) and propagates. Under ``accelerate launch`` every process calls this and
    gets the same result; only the main process writes to the store and the registry, and says things."""
    method = method or config.train.method
    procs = processes(config)
    main = procs is None or procs.is_main_process
    if not main:
        say, progress = (lambda _m: None), False
    with _main_first(procs):
        base = load_base(config, say=say)
    parent = None
    if method != "rm":
        try:
            parent = parent_adapter(config, base)
        except AdapterError as exc:
            return TrainResult(new_id(), method, "failed", f"cannot continue from the current adapter: {exc}")
    parent_id = parent.id if parent else "base"
    settings = shaping_settings(config, base, max_steps)
    runs_dir = config.home / "runs"
    resumable = find_resumable(store, runs_dir, method, parent_id) if main else None
    run_id, resume_from, snapshot = from_main(procs, resumable if resumable else (new_id(), None, None))

    own_sandbox = None
    if method == "grpo" and sandbox is None:
        from sandbox import open_sandbox

        sandbox = own_sandbox = open_sandbox(config.sandbox)
    try:
        try:
            if resume_from:
                try:
                    if snapshot is None:
                        raise SnapshotChanged("it started before runs stored their examples")
                    dataset, window, reward_funcs = build_dataset(config, store, base, method, parent_id, sandbox,
                                                                  only=snapshot)
                except SnapshotChanged as exc:
                    if main:
                        store.update("train_runs", run_id, {"status": "failed", "finished_at": now(), "metrics": {
                            "message": f"not resumed: it cannot train on the examples it started with: {exc}"}})
                    say(f"{method}: run {run_id[:8]} cannot resume on the examples it started with ({exc}); "
                        "starting a new run")
                    run_id, resume_from = from_main(procs, (new_id(), None))
            if not resume_from:
                dataset, window, reward_funcs = build_dataset(config, store, base, method, parent_id, sandbox)
                twin = rejected_twin(store, method, parent_id, settings, window.ids)
                if twin is not None:
                    raise EmptyDataset(
                        f"nothing new to learn from: these {window.rows} examples trained {twin['adapter_id']} from "
                        f"{parent_id} with the same settings, and the gate rejected it; training them again would make "
                        "the same adapter. Collect more (use the editor, or `plumline tasks import` then `plumline "
                        f"collect`); `plumline eval {twin['adapter_id']}` gates it again, `plumline adapters promote "
                        f"{twin['adapter_id']}` serves it anyway.", window=window.summary())
        except EmptyDataset as exc:
            if main:
                store.write("train_runs", {"id": run_id, "method": method, "parent_adapter": parent_id,
                                           "started_at": now(), "finished_at": now(), "status": "empty",
                                           "config": dataclasses.asdict(config.train), "metrics": {"message": str(exc)}},
                            replace=True)
            return TrainResult(run_id, method, "empty", str(exc), parent=parent_id, window=exc.window)
        say(f"{method}: {window.rows} examples from {window.tasks} tasks, continuing from {parent_id}"
            + _left_out(window)
            + (f"; resuming run {run_id[:8]} from {Path(resume_from).name} on the examples it started with"
               if resume_from else ""))
        started = now()
        if main and not resume_from:
            # the run's inputs, written once: the resolved config and the examples it trains on (a
            # resumed run rebuilds its dataset from exactly these ids)
            store.write("train_runs", {"id": run_id, "method": method, "parent_adapter": parent_id,
                                       "started_at": started, "status": "running",
                                       "config": {"train": dataclasses.asdict(config.train), "model": config.model.name,
                                                  "base_fingerprint": base.fingerprint, "max_steps": settings["max_steps"],
                                                  "seeds": seeds_of(config, parent_id),
                                                  "processes": procs.num_processes if procs else 1,
                                                  "examples": list(window.ids)},
                                       "metrics": {"pid": os.getpid(), "window": window.summary()}})
        elif main:
            store.update("train_runs", run_id, {"status": "running", "metrics": {"pid": os.getpid(), "window": window.summary()}})
        curve = LossCurve(config.train.learning_rate)
        cbs = [curve] + list(callbacks or [])
        bar = ProgressBar(f"{method} training") if progress else None
        if bar:
            cbs.append(bar)
        args = common_args(config, base, str(runs_dir / run_id), max_steps=max_steps)
        t0 = time.perf_counter()
        try:
            from transformers import set_seed

            set_seed(config.train.seed)  # the LoRA initialization, whichever trainer wraps the model
            trainer = BUILDERS[method](config, base, parent, dataset, args, cbs, reward_funcs=reward_funcs, method=method)
            trainer.remove_callback(PrinterCallback)  # our bar shows the loss; no raw log dicts on stdout
            fit(trainer, resume_from=resume_from, config=config)
        except KeyboardInterrupt:
            if main:
                store.update("train_runs", run_id, {"status": "interrupted", "finished_at": now()})
            raise
        except (NaNLoss, TrainingFailed, AdapterError) as exc:
            if main:
                store.update("train_runs", run_id, {"status": "failed", "finished_at": now(),
                                                    "metrics": {"message": str(exc), **curve.summary()}})
            return TrainResult(run_id, method, "failed", str(exc), parent=parent_id, window=window.summary())
        finally:
            if bar:
                bar.close()
        _wait_for_everyone(procs)  # every process is done with the checkpoint folder before it goes
        state = trainer.state
        elapsed = time.perf_counter() - t0
        resumed_step = int(Path(resume_from).name.split("-")[-1]) if resume_from else 0
        metrics = {"steps": state.global_step, "resumed_from_step": resumed_step, "train_seconds": round(elapsed, 2),
                   "examples": window.rows, "seed": config.train.seed, **curve.summary()}
        adapter_id = from_main(procs, adapter_id_for(method))
        if main:
            save_adapter(trainer, config, store, adapter_id=adapter_id, method=method, base=base, parent_id=parent_id,
                         window=window, run_id=run_id, metrics={k: v for k, v in metrics.items() if k != "loss_curve"})
            mark_used(store, window, run_id)
            store.update("train_runs", run_id, {"status": "finished", "finished_at": now(), "adapter_id": adapter_id,
                                                "metrics": metrics})
            shutil.rmtree(runs_dir / run_id, ignore_errors=True)  # checkpoints are only for resuming
        _wait_for_everyone(procs)  # the adapter is in the registry when any process returns
        return TrainResult(run_id, method, "finished", f"trained {adapter_id} in {state.global_step} steps",
                           adapter_id, parent_id, metrics, window.summary())
    finally:
        if own_sandbox is not None:
            own_sandbox.close()


if __name__ == "__main__":  # `accelerate launch -m trainer.runs`: `plumline train` without its options
    from agent.config import load_config
    from agent.store import open_store

    cfg = load_config()
    result = train(cfg, open_store(cfg))
    if is_main_process():
        print(f"{result.status}: {result.message}")
