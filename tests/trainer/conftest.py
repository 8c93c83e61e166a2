"""Fixtures for the trainer: a store filled with tasks, tests, samples and pairs as the data loop
would leave them, and a config that trains the tiny model in a step or two."""

from __future__ import annotations

import os

import pytest

from agent.config import load_config
from agent.store import Store, new_id, now

TASKS = [
    ("add", "def add(a, b):\n    \"\"\"Return a + b.\"\"\"\n", "    return a + b", "    return a - b",
     ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0", "assert add(2, 2) == 4",
      "assert add(10, 5) == 15"]),
    ("neg", "def neg(x):\n    \"\"\"Return -x.\"\"\"\n", "    return -x", "    return x",
     ["assert neg(1) == -1", "assert neg(0) == 0", "assert neg(-3) == 3", "assert neg(2) == -2",
      "assert neg(7) == -7"]),
    ("sq", "def sq(x):\n    \"\"\"Return x squared.\"\"\"\n", "    return x * x", "    return x + x",
     ["assert sq(2) == 4", "assert sq(3) == 9", "assert sq(0) == 0", "assert sq(1) == 1", "assert sq(-2) == 4"]),
    ("first", "def first(xs):\n    \"\"\"Return the first item.\"\"\"\n", "    return xs[0]", "    return xs[-1]",
     ["assert first([1, 2]) == 1", "assert first([3]) == 3", "assert first('ab') == 'a'",
      "assert first([0, 1, 1]) == 0", "assert first([5, 4]) == 5"]),
]


def add_task(store: Store, name: str, prompt: str, tests: list[str], *, split: str = "train",
             source: str = "workspace", test_source: str = "policy", oracle: str | None = None,
             weights: list[float] | None = None) -> str:
    """A ready task with valid tests (``weights``: their CodeT weights, as agreement leaves them)."""
    tid = f"{source}-{split}-{name}-{new_id()[:6]}"
    store.write("tasks", {"id": tid, "created_at": now(), "source": source, "prompt": prompt, "entry_point": name,
                          "split": split, "status": "ready", "hash": new_id(), "oracle": oracle})
    for i, code in enumerate(tests):
        store.write("tests", {"task_id": tid, "source": test_source, "code": code, "valid": 1, "created_at": now(),
                              "weight": weights[i] if weights else 1.0})
    return tid


def fill_mixed(store: Store, *, n: int, model: str, adapter_id: str = "base", oracle: bool = True) -> list[str]:
    """``n`` train tasks (cycling through TASKS), each with mixed on-policy outcomes: two distinct
    right bodies (1.0) and two wrong ones (0.2 and 0.0), as ``collect`` would have scored them; with
    ``oracle`` the task's reference solution is the right body."""
    task_ids = []
    for i in range(n):
        name, prompt, good, bad, tests = TASKS[i % len(TASKS)]
        tid = add_task(store, name, prompt, tests, oracle=prompt + good + "\n" if oracle else None)
        for body, rate in ((good, 1.0), (good + "  # same", 1.0), (bad, 0.2), ("    return None", 0.0)):
            add_sample(store, tid, body, rate, adapter_id=adapter_id, model=model)
        task_ids.append(tid)
    return task_ids


def add_sample(store: Store, task_id: str, completion: str, rate: float, *, adapter_id: str, model: str,
               base: str | None = None) -> str:
    """A scored sample; ``base`` is the base model's fingerprint (None: a row from before they were stored)."""
    sid = new_id()
    store.write("samples", {"id": sid, "task_id": task_id, "adapter_id": adapter_id, "model": model,
                            "base_fingerprint": base, "completion": completion, "pass_rate": rate, "n_tests": 5,
                            "created_at": now()})
    return sid


def fill_pairs(store: Store, *, n: int, adapter_id: str = "base", model: str, split: str = "train",
               source: str = "workspace", base: str | None = None) -> list[str]:
    """``n`` preference pairs (cycling through TASKS): a right body (1.0) over a wrong one (0.2)."""
    task_ids = []
    for i in range(n):
        name, prompt, good, bad, tests = TASKS[i % len(TASKS)]
        tid = add_task(store, name, prompt, tests, split=split, source=source)
        c = add_sample(store, tid, good, 1.0, adapter_id=adapter_id, model=model, base=base)
        r = add_sample(store, tid, bad, 0.2, adapter_id=adapter_id, model=model, base=base)
        store.write("pairs", {"task_id": tid, "chosen_id": c, "rejected_id": r, "chosen_rate": 1.0,
                              "rejected_rate": 0.2, "adapter_id": adapter_id, "created_at": now()})
        task_ids.append(tid)
    return task_ids


@pytest.fixture
def train_env(tiny_env, monkeypatch):
    """Config for the tiny model with every training budget shrunk to seconds."""
    monkeypatch.setenv("PLUMLINE_TRAIN_MAX_STEPS", "2")       # two optimizer steps are enough to move LoRA weights
    monkeypatch.setenv("PLUMLINE_TRAIN_BATCH_SIZE", "2")      # tiny batches: the tiny model, 2 CPU cores
    monkeypatch.setenv("PLUMLINE_TRAIN_MIN_EXAMPLES", "4")    # the fixtures hold 4-8 pairs
    monkeypatch.setenv("PLUMLINE_TRAIN_MAX_LENGTH", "256")    # prompts + responses here are < 100 tokens
    monkeypatch.setenv("PLUMLINE_TRAIN_LORA_R", "4")          # rank 4 on a width-64 model
    monkeypatch.setenv("PLUMLINE_TRAIN_LEARNING_RATE", "0.01")  # large, so 2 steps visibly move the weights
    monkeypatch.setenv("PLUMLINE_MODEL_THREADS", "1")         # share the 2 cores politely
    config = load_config()
    store = Store(config.store_path)
    yield config, store
    store.close()


@pytest.fixture
def model_name(train_env):
    config, _ = train_env
    return str(config.model.name)


@pytest.fixture(scope="module")
def sandbox():
    """One warm process-backend pool (bubblewrap) for the module; 1 worker on 2 shared cores."""
    from sandbox import SandboxConfig, open_sandbox

    with open_sandbox(SandboxConfig(backend="process", workers=1, timeout_s=5.0)) as sb:
        yield sb


def make_adapter(config, adapter_id: str, *, fingerprint: str | None, method: str = "dpo", seed: int = 0):
    """A real (tiny) PEFT LoRA folder in the registry with plumline metadata."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from agent.adapters import write_meta

    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(config.model.name),
                           LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    path = config.adapters_dir / adapter_id
    model.save_pretrained(str(path))
    write_meta(path, {"id": adapter_id, "method": method, "parent": "base", "base_model": config.model.name,
                      "base_fingerprint": fingerprint, "created_at": now()})
    return path


def weight_snapshot():
    """A TrainerCallback that copies every parameter of the model being trained as training starts
    (its ``before`` dict), for ``moved_weights``."""
    from transformers import TrainerCallback

    class WeightSnapshot(TrainerCallback):
        def __init__(self):
            self.before: dict = {}

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.before = {n: p.detach().clone() for n, p in model.named_parameters()}

    return WeightSnapshot()


def moved_weights(before: dict, model_name: str, adapter_dir) -> tuple[list[str], list[str]]:
    """(LoRA weights that changed, base weights that changed) between ``before`` and the saved
    adapter loaded on a fresh copy of its base (compared in the dtype training used)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    trained = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_name), str(adapter_dir))
    after = dict(trained.named_parameters())
    changed = [n for n, p in before.items() if not torch.equal(p, after[n].detach().to(p.dtype))]
    return [n for n in changed if "lora_B" in n], [n for n in changed if "lora_" not in n]


class FakePolicy:
    """A policy whose answers depend on the adapter it serves: ``answers[adapter_id][entry_point]``.
    Lets the gate be tested on real sandbox verdicts without waiting for a model."""

    prompt_format = "chat"
    model_name = "fake"

    def __init__(self, answers: dict[str, dict[str, str]]):
        self.answers = answers
        self.adapter_id = "base"

    def set_adapter(self, path, adapter_id="base"):
        self.adapter_id = adapter_id if path is not None else "base"

    def sample(self, contexts, n, *, temperature, max_new_tokens=None, top_p=0.95):
        import re

        out = []
        for ctx in contexts:
            name = re.search(r"def (\w+)\(", ctx.prefix).group(1)
            out.append([self.answers.get(self.adapter_id, {}).get(name, "    pass")] * n)
        return out


def promote_two_adapters(config, store) -> str:
    """A real registry where "second" replaced "first", which replaced the base model (so a rollback
    has somewhere to go). Returns the base model's fingerprint."""
    from agent.adapters import base_fingerprint, promote

    fp = base_fingerprint(config.model.name)
    for seed, adapter_id in enumerate(("first", "second"), 1):
        make_adapter(config, adapter_id, fingerprint=fp, seed=seed)
        promote(config.adapters_dir, adapter_id, store=store, fingerprint=fp)
    return fp


def serve(store: Store, adapter_id: str, *, shown: int, accepted: int, kept: float | None = None,
          shown_sent: int = 1) -> None:
    """``shown`` suggestions served by ``adapter_id`` and shown, the first ``accepted`` of them accepted
    (with ``kept`` of the text still there at the 600 s persistence check, when given). Each shown
    notification is sent ``shown_sent`` times, as an editor that re-sends it when the view redraws."""
    for i in range(shown):
        cid = store.record_completion(model="tiny", adapter_id=adapter_id, text=f"x{i}", prefix="", language="python")
        for _ in range(shown_sent):
            store.record_event(cid, "shown")
        if i < accepted:
            store.record_event(cid, "accepted", 3.0)
            if kept is not None:
                store.record_event(cid, "persist", kept, after_s=600)
