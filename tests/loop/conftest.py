"""Fixtures for the loop tests: a bubblewrap sandbox, a fake policy with known outputs, tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.collect_config import CollectConfig
from agent.config import Config
from agent.store import Store
from sandbox import SandboxConfig, open_sandbox

ADD_PROMPT = 'def add(a, b):\n    """Add two numbers.\n    >>> add(1, 2)\n    3\n    """\n'
ADD_TEST = "def check(candidate):\n    assert candidate(2, 2) == 4\n    assert candidate(-3, 3) == 0\n"
# What the fake policy "writes" as tests: five right, one wrong, prose, a call to another function.
ADD_ASSERTS = ("Here are the tests:\n```python\nassert add(1, 1) == 2\nassert add(2, 3) == 5\nassert add(0, 0) == 0\n"
               "assert add(-1, 1) == 0\nassert add(10, 5) == 15\nassert add(2, 2) == 5\nassert sub(1, 1) == 0\n```\n")


class FakePolicy:
    """Stands in for the serving policy: fixed completions per entry point, a fixed test reply."""

    prompt_format = "chat"
    model_name = "fake-model"

    def __init__(self, completions: dict[str, list[str]], test_reply: str = ADD_ASSERTS, adapter_id: str = "base"):
        self.completions = completions
        self.test_reply = test_reply
        self.adapter_id = adapter_id
        self.sample_calls = 0
        self.generate_calls = 0

    def chat_prompt(self, text: str) -> str:
        return text

    def generate(self, prompts, *, max_new_tokens, temperature=0.0, n=1, stop=()):
        self.generate_calls += 1
        return [[self.test_reply] * n for _ in prompts]

    def sample(self, contexts, n, *, temperature, max_new_tokens=None, top_p=0.95):
        self.sample_calls += 1
        out = []
        for ctx in contexts:
            name = ctx.prefix.split("def ")[-1].split("(")[0]
            pool = self.completions[name]
            out.append([pool[i % len(pool)] for i in range(n)])
        return out


ADD_CANDIDATES = ["    return a + b", "    return a - b", "    return a * b", "    return 3"]


@pytest.fixture(scope="session")
def sandbox():
    with open_sandbox(SandboxConfig(backend="process", workers=2)) as sb:
        yield sb


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "loop.db")


def make_config(**collect) -> Config:
    collect.setdefault("samples_per_task", 4)
    collect.setdefault("heldout_fraction", 0.0)
    collect.setdefault("oracle_stable_s", 0.0)
    return Config(collect=CollectConfig(**collect), sandbox=SandboxConfig(backend="process", workers=2))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def add_task_row(task_id: str = "Toy/0", **extra) -> dict:
    return {"task_id": task_id, "prompt": ADD_PROMPT, "entry_point": "add",
            "canonical_solution": "    return a + b\n", "test": ADD_TEST, **extra}
