"""Datasets from the store, in the *serving* prompt format (design rule 1).

What: one builder per update rule, all sharing the same row selection and formatting:

* ``dpo`` / ``rm`` (ACECODER's pairs), ``plum`` / ``rpo`` (PLUM's pairs): preference pairs
  (``pairs`` → ``samples``) that follow the method's pair rule (``agent.pairs.pair_rule_for``), as
  ``prompt``/``chosen``/``rejected`` strings (plus ``margin`` = pass-rate gap for the reward model);
* ``rft``: ``prompt``/``completion``: the on-policy samples that pass every valid test,
  deduplicated, capped per task (``agent.pairs.rft_examples``);
* ``offpolicy`` (the control): ``prompt``/``chosen``/``rejected`` with the task's reference
  solution as chosen and a failing on-policy sample as rejected (``agent.pairs.failing_samples``);
* ``grpo``: prompts of training tasks with validated tests, with their ``task_id`` so the execution
  reward can find the tests;
* ``kto``: unpaired IDE signals: an accepted suggestion that persisted is desirable, a dismissed one
  is not.

Every rule learns only from tasks with mixed outcomes (DESIGN rule 3): a task whose samples all
pass, or all fail, is left out, and the counts go with the run (``DataWindow.outcomes``) and with
the message when there is too little to train on.

Why the formatting matters: the prompt is exactly what ``build_prompt`` gives the serving model for a
task (``Context(prefix=task prompt, mode="block")``), and the response is exactly what the model
would have *generated* to produce the stored suggestion (``response_for``): for a chat model asked
for a block, that is the fenced function, not the trimmed body. Training on anything else teaches
a format the server never uses.

Which rows: only train-split tasks (never ``heldout`` nor HumanEval, which the gate uses), only
samples from the configured base model, and by default only data sampled from the adapter serving
now. Anything dropped is counted and said, never silently mixed.

A resumed run passes ``only``, the example ids its run stored when it started (``DataWindow.ids``):
the dataset is then exactly those rows, in that order, whatever the store gained since. The rules
that protect the gate and the base (held-out tasks, other base models) still apply; if they now drop
a snapshot row, or it is gone, ``SnapshotChanged`` says so and the run cannot resume.

The base model is compared by fingerprint (``agent.adapters.base_fingerprint``), never by path: the
same model in a moved cache is the same base, and a different model at the same path is not. Rows
logged before fingerprints were stored are identified by the folder their ``model`` names.

Run alone: ``python -m trainer.data`` prints what each method would train on.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.adapters import base_fingerprint, same_base
from agent.execute import valid_tests
from agent.models.prompts import Context, build_prompt, postprocess
from agent.pairs import PairRule, failing_samples, mixed_groups, outcomes, rft_examples, training_samples
from agent.sample import program_for, task_context  # the data loop's definitions, shared
from agent.tasks import EVAL_SOURCES

# Tests from these sources are ground truth for evaluation only (HumanEval's own tests): they never
# score anything that is trained on. Tasks are kept out of training by their split ("heldout"), not
# by where they came from: HumanEval's train-split tasks are fair training data with plumline's own
# synthesized tests, exactly like a user's functions.
EVAL_ONLY_SOURCES = EVAL_SOURCES


class EmptyDataset(RuntimeError):
    """Too little data to train on; the message says how much there is and how to get more, and
    ``window`` holds the same counts (rows, dropped, the serving adapter's tasks by outcome)."""

    def __init__(self, message: str, window: dict | None = None):
        super().__init__(message)
        self.window = window or {}


class SnapshotChanged(RuntimeError):
    """A run's examples (``only``, its snapshot) can no longer all be rebuilt from the store."""


def _restrict(rows: list[dict], id_key: str, only: list) -> list[dict]:
    """The rows of a run's snapshot ``only``, in the snapshot's order; SnapshotChanged if any is gone."""
    by_id = {r[id_key]: r for r in rows}
    gone = [i for i in only if i not in by_id]
    if gone:
        raise SnapshotChanged(f"{len(gone)} of its {len(only)} examples are gone from the store or may no "
                              "longer be trained on (held-out, or from another base model)")
    return [by_id[i] for i in only]


@dataclass
class DataWindow:
    """Which data a run trained on; stored with the adapter and the run."""

    method: str
    adapter_id: str
    rows: int
    tasks: int
    first_at: float | None = None
    last_at: float | None = None
    ids: list = field(default_factory=list, repr=False)  # pair ids / sample ids / task ids / completion ids
    dropped: dict = field(default_factory=dict)
    outcomes: dict = field(default_factory=dict)  # the serving adapter's tasks: mixed / all_pass / all_fail

    def summary(self) -> dict:
        d = asdict(self)
        d["ids"] = [min(self.ids), max(self.ids)] if self.ids and all(isinstance(i, int) for i in self.ids) else len(self.ids)
        return d


# -- formatting (shared with the gate and the GRPO reward) -------------------------------------------

__all__ = ["program_for", "task_context", "response_for", "suggestion_from", "prompt_for"]


def response_for(ctx: Context, completion: str, fmt: str) -> str:
    """The raw generation that serving would trim into ``completion``: the training target.

    For a chat model asked for a block, the model answers with the whole function in a fence, and
    ``extract_reply`` keeps what follows the prefix; so the target is the fenced prefix + suggestion.
    Elsewhere the suggestion is the continuation itself."""
    if fmt == "chat" and ctx.resolved_mode() == "block":
        fence = {"python": "python"}.get(ctx.language, ctx.language or "")
        code = (ctx.prefix + completion).strip("\n")
        return f"```{fence}\n{code}\n```"
    return completion


def suggestion_from(raw: str, ctx: Context, fmt: str) -> str:
    """Serving's trimming of a raw generation (what the GRPO reward grades)."""
    return postprocess(raw, ctx, fmt)[0]


def prompt_for(task: dict, tokenizer, fmt: str) -> str:
    return build_prompt(task_context(task), tokenizer, fmt)


# -- row selection ---------------------------------------------------------------------------------

def _say_empty(method: str, got: int, need: int, dropped: dict, hint: str, tasks: dict | None = None) -> EmptyDataset:
    why = ", ".join(f"{n} {reason}" for reason, n in dropped.items() if n) or "nothing was dropped"
    left = ""
    if tasks:
        left = (f"; tasks with mixed outcomes: {tasks.get('mixed', 0)} (left out of every rule: "
                f"{tasks.get('all_pass', 0)} whose samples all pass, {tasks.get('all_fail', 0)} whose samples all fail)")
    return EmptyDataset(f"{method}: {got} usable example(s), at least {need} needed (train.min_examples); "
                        f"dropped: {why}{left}. Nothing was trained. {hint}",
                        {"method": method, "rows": got, "needed": need, "dropped": {k: v for k, v in dropped.items() if v},
                         "outcomes": dict(tasks or {})})


OTHER_BASE = "from another base model"
GONE_BASE = "from a model folder that no longer exists (logged before base fingerprints were stored)"


class BaseFilter:
    """Tells whether stored rows come from the base model being trained (``base``, a fingerprint;
    None keeps everything), and if not, why. A row carries its base's fingerprint; an older row
    only its ``model`` path, whose folder is fingerprinted if it still exists (once per path)."""

    def __init__(self, base: str | None):
        self.base = base
        self._of_path: dict[str, str] = {}

    def reason(self, fingerprint: str | None, model: str | None) -> str | None:
        """None when the row may be used, else the reason it is left out."""
        if self.base is None:
            return None
        if not fingerprint:
            if not model:
                return None  # nothing recorded: as before fingerprints, kept
            if model not in self._of_path:
                self._of_path[model] = base_fingerprint(model)
            fingerprint = self._of_path[model]
        if same_base(fingerprint, self.base):
            return None
        if fingerprint.startswith("unknown:") and os.path.isabs(model or "") and not Path(model).exists():
            return GONE_BASE
        return OTHER_BASE


NOT_MIXED = "from tasks whose samples all pass or all fail"
OTHER_RULE = "made under another pair rule"
OTHER_ADAPTER = "from another adapter (train.on_policy_only)"


def preference_rows(store, *, adapter_id: str, base: str | None, on_policy_only: bool = True,
                    only: list | None = None, rule: PairRule | None = None) -> tuple[list[dict], dict]:
    """Pairs joined with their samples and tasks, filtered by the rules above; ``base`` is the
    fingerprint of the base model (None: any); ``only``: a run's snapshot of pair ids; ``rule``:
    keep only pairs that follow it, from mixed-outcome tasks. Returns (rows, dropped)."""
    rows = list(store.rows(
        """select p.id as pair_id, p.task_id, p.chosen_rate, p.rejected_rate, p.adapter_id, p.created_at,
                  c.completion as chosen, r.completion as rejected, c.model as model,
                  c.base_fingerprint as chosen_base, r.model as rejected_model, r.base_fingerprint as rejected_base,
                  c.adapter_id as chosen_adapter, r.adapter_id as rejected_adapter,
                  t.prompt, t.context, t.split, t.source, t.entry_point, t.meta
           from pairs p join samples c on c.id = p.chosen_id join samples r on r.id = p.rejected_id
                join tasks t on t.id = p.task_id
           order by p.id"""))
    dropped = {"from held-out tasks": 0, OTHER_BASE: 0, GONE_BASE: 0, OTHER_ADAPTER: 0, OTHER_RULE: 0, NOT_MIXED: 0}
    bases = BaseFilter(base)
    kept = []
    wanted = set(only) if only is not None else None
    mixed = outcomes(training_samples(store)).mixed if rule is not None and wanted is None else set()
    for row in rows:
        if wanted is not None and row["pair_id"] not in wanted:
            continue
        foreign = (bases.reason(row["chosen_base"], row["model"])
                   or bases.reason(row["rejected_base"], row["rejected_model"]))
        selecting = wanted is None  # a snapshot was selected when its run started: only the hard rules apply
        if row["split"] == "heldout":
            dropped["from held-out tasks"] += 1
        elif foreign:
            dropped[foreign] += 1
        elif selecting and on_policy_only and (row["adapter_id"] or row["chosen_adapter"]) != adapter_id:
            dropped[OTHER_ADAPTER] += 1
        elif selecting and rule is not None and not rule.admits(row["chosen_rate"], row["rejected_rate"]):
            dropped[OTHER_RULE] += 1
        elif selecting and rule is not None and (row["task_id"], row["chosen_adapter"]) not in mixed:
            dropped[NOT_MIXED] += 1
        else:
            kept.append(row)
    return (kept if only is None else _restrict(kept, "pair_id", only)), dropped


def _window(method: str, adapter_id: str, rows: list[dict], id_key: str, dropped: dict,
            tasks: dict | None = None) -> DataWindow:
    times = [r["created_at"] for r in rows if r.get("created_at")]
    return DataWindow(method, adapter_id, len(rows), len({r.get("task_id") for r in rows}),
                      min(times) if times else None, max(times) if times else None,
                      [r[id_key] for r in rows], {k: v for k, v in dropped.items() if v}, dict(tasks or {}))


def task_outcomes(store, adapter_id: str) -> dict:
    """The serving adapter's training tasks by outcome of their samples (mixed / all_pass / all_fail)."""
    return outcomes(training_samples(store, adapter_id)).counts()


PAIR_METHODS = ("dpo", "plum", "rpo", "rm")  # the methods that train on stored pairs
COLLECT_HINT = "Use the editor for a while, or run `plumline tasks import` and `plumline collect`."


def preference_dataset(store, tokenizer, fmt: str, *, method: str, adapter_id: str, base: str | None,
                       on_policy_only: bool, min_examples: int, margin: bool = False, only: list | None = None,
                       rule: PairRule | None = None):
    """DPO / RPO / reward-model dataset: prompt, chosen, rejected (+ margin), from the pairs that
    follow ``rule``. Raises EmptyDataset (SnapshotChanged when ``only`` cannot be rebuilt)."""
    from datasets import Dataset

    rows, dropped = preference_rows(store, adapter_id=adapter_id, base=base, on_policy_only=on_policy_only, only=only,
                                    rule=rule)
    tasks = task_outcomes(store, adapter_id)
    if len(rows) < min_examples:
        raise _say_empty(method, len(rows), min_examples, dropped, COLLECT_HINT, tasks)
    records = []
    for r in rows:
        ctx = task_context(r)
        rec = {"prompt": build_prompt(ctx, tokenizer, fmt), "chosen": response_for(ctx, r["chosen"], fmt),
               "rejected": response_for(ctx, r["rejected"], fmt)}
        if margin:
            rec["margin"] = float(r["chosen_rate"] - r["rejected_rate"])
        records.append(rec)
    return Dataset.from_list(records), _window(method, adapter_id, rows, "pair_id", dropped, tasks)


def policy_samples(store, *, adapter_id: str, base: str | None, on_policy_only: bool = True,
                   only: list | None = None) -> tuple[list[dict], dict]:
    """Scored samples of ready train tasks that may be trained on: from this base model, and (when
    selecting, with ``on_policy_only``) from the adapter serving now; ``only``: a run's snapshot of
    sample ids. Returns (samples, dropped)."""
    dropped = {OTHER_BASE: 0, GONE_BASE: 0, OTHER_ADAPTER: 0}
    bases = BaseFilter(base)
    wanted = set(only) if only is not None else None
    kept = []
    for s in training_samples(store, None if (wanted is not None or not on_policy_only) else adapter_id):
        if wanted is not None and s["id"] not in wanted:
            continue
        foreign = bases.reason(s["base_fingerprint"], s["model"])
        if foreign:
            dropped[foreign] += 1
        else:
            kept.append(s)
    return kept, dropped


def _tasks_of(store, samples: list[dict]) -> dict[str, dict]:
    return {tid: store.get("tasks", tid) for tid in dict.fromkeys(s["task_id"] for s in samples)}


def rft_dataset(store, tokenizer, fmt: str, *, adapter_id: str, base: str | None, on_policy_only: bool,
                min_examples: int, max_per_task: int, only: list | None = None):
    """RFT (rejection-sampling fine-tuning): prompt, completion = an on-policy sample that passes
    every valid test (``agent.pairs.rft_examples``). Raises EmptyDataset (SnapshotChanged when
    ``only``, a run's sample ids, cannot be rebuilt)."""
    from datasets import Dataset

    samples, dropped = policy_samples(store, adapter_id=adapter_id, base=base, on_policy_only=on_policy_only, only=only)
    tasks = task_outcomes(store, adapter_id)
    chosen = _restrict(samples, "id", only) if only is not None else rft_examples(samples, max_per_task)[0]
    if len(chosen) < min_examples:
        raise _say_empty("rft", len(chosen), min_examples, dropped, COLLECT_HINT, tasks)
    by_task = _tasks_of(store, chosen)
    records = []
    for s in chosen:
        ctx = task_context(by_task[s["task_id"]])
        records.append({"prompt": build_prompt(ctx, tokenizer, fmt), "completion": response_for(ctx, s["completion"], fmt)})
    return Dataset.from_list(records), _window("rft", adapter_id, chosen, "id", dropped, tasks)


def reference_body(task: dict) -> str | None:
    """The task's reference solution as a completion (its oracle after the prompt), or None."""
    oracle, prefix = task.get("oracle") or "", task_context(task).prefix
    if not oracle.startswith(prefix) or not oracle[len(prefix):].strip():
        return None
    return oracle[len(prefix):].rstrip("\n")


def offpolicy_dataset(store, tokenizer, fmt: str, *, adapter_id: str, base: str | None, on_policy_only: bool,
                      min_examples: int, max_per_task: int, only: list | None = None):
    """The off-policy control (PLUM's comparison): prompt, chosen = the task's reference solution
    (never sampled from any policy), rejected = a failing on-policy sample
    (``agent.pairs.failing_samples``), on the same mixed-outcome tasks the other rules use. Raises
    EmptyDataset (SnapshotChanged when ``only``, a run's rejected sample ids, cannot be rebuilt)."""
    from datasets import Dataset

    samples, dropped = policy_samples(store, adapter_id=adapter_id, base=base, on_policy_only=on_policy_only, only=only)
    tasks = task_outcomes(store, adapter_id)
    rejected = _restrict(samples, "id", only) if only is not None else failing_samples(samples, max_per_task)[0]
    by_task = _tasks_of(store, rejected)
    no_reference = [s for s in rejected if reference_body(by_task[s["task_id"]]) is None]
    if no_reference and only is not None:
        raise SnapshotChanged(f"{len(no_reference)} of its examples' tasks lost their reference solution")
    dropped["from tasks without a reference solution"] = len(no_reference)
    rejected = [s for s in rejected if s not in no_reference]
    if len(rejected) < min_examples:
        raise _say_empty("offpolicy", len(rejected), min_examples, dropped, COLLECT_HINT, tasks)
    records = []
    for s in rejected:
        task = by_task[s["task_id"]]
        ctx = task_context(task)
        records.append({"prompt": build_prompt(ctx, tokenizer, fmt), "chosen": response_for(ctx, reference_body(task), fmt),
                        "rejected": response_for(ctx, s["completion"], fmt)})
    return Dataset.from_list(records), _window("offpolicy", adapter_id, rejected, "id", dropped, tasks)


def has_signal(rates: list[float]) -> bool:
    """A group carries a GRPO learning signal only when its members did not all score the same."""
    return len(rates) >= 2 and max(rates) - min(rates) > 1e-9


def task_tests(store, task_id: str, *, sources: tuple[str, ...] | None = None) -> list[str]:
    """The validated tests of a task (code of each assert)."""
    sql = "select code, source from tests where task_id = ? and valid = 1 order by id"
    return [r["code"] for r in store.rows(sql, [task_id]) if sources is None or r["source"] in sources]


def grpo_dataset(store, tokenizer, fmt: str, *, adapter_id: str, min_examples: int, min_tests: int = 5,
                 base: str | None = None, only: list | None = None):
    """GRPO prompts: train tasks with ≥ ``min_tests`` valid synthesized tests (the ones the reward
    runs, ``agent.execute.valid_tests``) whose samples from the serving adapter have mixed outcomes
    (``agent.pairs.mixed_groups``): GRPO's group advantage is zero on the others. Raises
    EmptyDataset (SnapshotChanged when ``only``, a run's task ids, cannot be rebuilt)."""
    from datasets import Dataset

    few = f"with < {min_tests} valid tests"
    dropped = {few: 0}
    tasks = task_outcomes(store, adapter_id)
    if only is not None:
        candidates = [t for t in (store.get("tasks", tid) for tid in only) if t and t.get("split") == "train"]
    else:
        samples, dropped_samples = policy_samples(store, adapter_id=adapter_id, base=base)
        dropped.update(dropped_samples)
        groups = mixed_groups(samples)[0]
        candidates = [store.get("tasks", tid) for tid in dict.fromkeys(t for t, _a in groups)]
    kept = []
    for t in candidates:
        if len(valid_tests(store, [t["id"]])[t["id"]]) < min_tests:
            dropped[few] += 1
        else:
            kept.append({**t, "task_id": t["id"]})
    if only is not None:
        kept = _restrict(kept, "task_id", only)
    if len(kept) < min_examples:
        raise _say_empty("grpo", len(kept), min_examples, dropped,
                         "GRPO needs tasks with validated tests and mixed outcomes; run `plumline collect` first.", tasks)
    ds = Dataset.from_list([{"prompt": prompt_for(t, tokenizer, fmt), "task_id": t["id"]} for t in kept])
    return ds, _window("grpo", adapter_id, kept, "task_id", dropped, tasks)


def kto_dataset(store, tokenizer, fmt: str, *, adapter_id: str, base: str | None, on_policy_only: bool,
                min_examples: int, persist_min: float = 0.5, only: list | None = None):
    """KTO: accepted-and-persisted suggestions (desirable) vs dismissed ones (undesirable), with the
    prompt string the server actually sent (stored with each completion). Raises EmptyDataset
    (SnapshotChanged when ``only``, a run's completion ids, cannot be rebuilt)."""
    from datasets import Dataset

    rows = list(store.rows(
        """select c.id, c.created_at, c.prompt, c.text, c.prefix, c.suffix, c.language, c.mode, c.model,
                  c.base_fingerprint, c.adapter_id, c.status,
                  (select max(value) from events e where e.completion_id = c.id and e.kind = 'persist') as persisted
           from completions c where c.status in ('accepted', 'dismissed') order by c.created_at"""))
    dropped = {OTHER_BASE: 0, GONE_BASE: 0, "from another adapter (train.on_policy_only)": 0,
               "accepted but not (yet) persisted": 0, "without a stored prompt": 0}
    bases = BaseFilter(base)
    kept = []
    wanted = set(only) if only is not None else None
    for r in rows:
        if wanted is not None and r["id"] not in wanted:
            continue
        foreign = bases.reason(r["base_fingerprint"], r["model"])
        selecting = wanted is None  # a snapshot was selected when its run started: only the hard rules apply
        if foreign:
            dropped[foreign] += 1
        elif selecting and on_policy_only and r["adapter_id"] != adapter_id:
            dropped["from another adapter (train.on_policy_only)"] += 1
        elif not r["prompt"]:
            dropped["without a stored prompt"] += 1
        elif selecting and r["status"] == "accepted" and (r["persisted"] is None or r["persisted"] < persist_min):
            dropped["accepted but not (yet) persisted"] += 1
        else:
            kept.append({**r, "task_id": r["id"]})
    if only is not None:
        kept = _restrict(kept, "id", only)
    labels = {r["status"] for r in kept}
    if len(kept) < min_examples or len(labels) < 2:
        raise _say_empty("kto", len(kept), min_examples, dropped,
                         "KTO needs both kept and dismissed suggestions from the editor.")
    records = []
    for r in kept:
        ctx = Context(r["prefix"] or "", r["suffix"] or "", r["language"] or "python", r["mode"] or "auto")
        records.append({"prompt": r["prompt"], "completion": response_for(ctx, r["text"] or "", fmt),
                        "label": r["status"] == "accepted"})
    return Dataset.from_list(records), _window("kto", adapter_id, kept, "id", dropped)


def mark_used(store, window: DataWindow, run_id: str) -> None:
    """Record which run consumed which pairs (pairs.used_by)."""
    if window.method not in PAIR_METHODS or not window.ids:
        return
    with store.atomic():
        for pid in window.ids:
            row = store.get("pairs", pid)
            used = json.loads(row["used_by"]) if row and row.get("used_by") else []
            store.db["pairs"].update(pid, {"used_by": json.dumps(used + [run_id])})


if __name__ == "__main__":  # pragma: no cover - a look at the data, by hand
    from agent.adapters import current_adapter
    from agent.config import load_config
    from agent.store import open_store

    cfg = load_config()
    st = open_store(cfg)
    current = current_adapter(cfg.adapters_dir).id
    for label, sql in (("pairs", "select count(*) from pairs"), ("tasks", "select count(*) from tasks"),
                       ("samples", "select count(*) from samples")):
        print(label, st.db.execute(sql).fetchone()[0])
    rows, dropped = preference_rows(st, adapter_id=current, base=None, on_policy_only=cfg.train.on_policy_only)
    print(f"usable pairs for {current}: {len(rows)}; dropped {dropped}")
