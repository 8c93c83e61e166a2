"""Design rule 7 end to end: secrets planted in a project never reach the store's files.

A project holds secrets where they really sit: a module constant a function uses (it goes into the
task's prompt), a key in a function body (the oracle), a key in a function whose accepted
suggestion makes the file on disk the oracle, a token in a workspace test, a `.env` file and a
`*secret*` module (excluded paths; the latter's secret has no known shape, so only the exclude
globs can keep it out). The model also "writes" secrets: one in a test it writes, one in a
candidate. Then the loop runs as a user runs it: `plumline tasks import`, `plumline complete`
(logged, accepted), `collect`, and `train` on the tiny model. The bytes of every file under the
data home (the SQLite file, its WAL, adapters, checkpoints) are searched for each secret.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.adapters import base_fingerprint
from agent.collect import collect
from agent.config import load_config
from tests.loop.conftest import FakePolicy
from tests.trainer.conftest import train_env  # noqa: F401  (the tiny model's training budget)

# Shapes of real credentials, made up here (none of them is a live key).
MODULE_TOKEN = "ghp_" + "Mq4Tz8Wc2Lp6" * 3                 # a constant the task's prompt needs
BODY_KEY = "sk-proj-" + "Vb7Nd3Kx9Rf1" * 2                 # inside the body: the oracle
DISK_KEY = "AKIA" + "QX7T2ZP4MLC9WB6E"                     # read from disk as a kept oracle
WORKSPACE_TOKEN = "xoxp-" + "83746519203-Ghq7Lm2Ns8Tv"     # in the project's own tests
ENV_KEY = "glpat-" + "Hs8Kd2Mf6Qw1Zx4Cv7Bn"                # in .env (excluded, never read)
UNSHAPED = "correct-horse-battery-staple-4417"           # in my_secret.py: no pattern knows it
WRITTEN_TOKEN = "hf_" + "Pz3Wq8Lr5Tx1Kc7Vm2Yb9Nd4Gs6Jh0Fa"  # in a test the model writes
CANDIDATE_KEY = "sk_live_" + "Rt5Yu8Io2Pa4Sd6F"            # in a candidate the model writes
SECRETS = [MODULE_TOKEN, BODY_KEY, DISK_KEY, WORKSPACE_TOKEN, ENV_KEY, UNSHAPED, WRITTEN_TOKEN, CANDIDATE_KEY]

BILLING = textwrap.dedent(f'''\
    API_TOKEN = "{MODULE_TOKEN}"


    def add(a, b):
        """Add two numbers (or join two strings).

        >>> add(1, 2)
        3
        """
        assert API_TOKEN
        salt = "{BODY_KEY}"
        return a + b if salt else None
    ''')
# written after the import, then completed in and accepted: its task comes from the logged suggestion
DEPLOY = textwrap.dedent(f'''\
    def sign(message):
        """Sign a message with the deploy key."""
        key = "{DISK_KEY}"
        return message + key[:2]
    ''')
TEST_BILLING = f'from billing import add\n\n\ndef test_join():\n    assert add("{WORKSPACE_TOKEN}", "") == "{WORKSPACE_TOKEN}"\n'
MY_SECRET = f'def pepper(x):\n    """Season x."""\n    return x + "{UNSHAPED}"\n'
TEST_REPLY = ("```python\nassert add(1, 1) == 2\nassert add(2, 3) == 5\nassert add(0, 0) == 0\nassert add(-1, 1) == 0\n"
              f'assert add(10, 5) == 15\nassert add("{WRITTEN_TOKEN}", "") == "{WRITTEN_TOKEN}"\n```\n')
CANDIDATES = {"add": [f'    key = "{CANDIDATE_KEY}"\n    return a + b', "    return a - b", "    return a * b", "    return 3"],
              "sign": ["    return message"]}


def plumline(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ), timeout=300)


def project(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'billing'\n")
    (root / "billing.py").write_text(BILLING)
    (root / "tests" / "test_billing.py").write_text(TEST_BILLING)
    (root / ".env").write_text(f"GITLAB_TOKEN={ENV_KEY}\n")
    (root / "my_secret.py").write_text(MY_SECRET)
    return root


def found_in_files(home: Path) -> dict[str, list[str]]:
    """Each planted secret -> the files under ``home`` whose bytes hold it."""
    files = {p: p.read_bytes() for p in home.rglob("*") if p.is_file()}
    return {s: [str(p.relative_to(home)) for p, data in files.items() if s.encode() in data] for s in SECRETS}


@pytest.fixture
def sandbox():
    from sandbox import SandboxConfig, open_sandbox

    with open_sandbox(SandboxConfig(backend="process", workers=1, timeout_s=5.0)) as sb:
        yield sb


# (named without "secret": its tmp_path would match the *secret* exclude glob, and nothing be read)
def test_planted_keys_never_reach_the_store_files(train_env, tmp_path, monkeypatch, sandbox):
    from trainer.runs import train

    monkeypatch.setenv("PLUMLINE_COLLECT_HELDOUT_FRACTION", "0")    # every task trains
    monkeypatch.setenv("PLUMLINE_COLLECT_ORACLE_STABLE_S", "0")     # the accepted file is the oracle at once
    monkeypatch.setenv("PLUMLINE_COLLECT_SAMPLES_PER_TASK", "4")    # one per fake candidate
    monkeypatch.setenv("PLUMLINE_TRAIN_MIN_EXAMPLES", "1")          # the one pair the fake candidates make
    _, store = train_env
    config = load_config()  # with the settings above
    home = config.home
    root = project(tmp_path / "project")

    imported = plumline("tasks", "import", str(root), cwd=root)
    assert imported.returncode == 0, imported.stderr
    (root / "deploy.py").write_text(DEPLOY)
    line = DEPLOY.split("\n").index('    key = "' + DISK_KEY + '"') + 1
    completed = plumline("complete", "deploy.py", "--line", str(line), "--col", "5", "--json", cwd=root)
    assert completed.returncode == 0, completed.stderr
    completion_id = json.loads(completed.stdout.strip().splitlines()[-1])["id"]
    store.record_event(completion_id, "accepted")

    policy = FakePolicy(CANDIDATES, test_reply=TEST_REPLY)
    policy.model_name = str(config.model.name)  # samples as if from the tiny model, which then trains on them
    policy.base_fingerprint = base_fingerprint(config.model.name)
    counts = collect(store, config, policy=policy, sandbox=sandbox)
    assert not counts.error and counts.samples and counts.pairs, counts
    result = train(config, store, progress=False, say=lambda _m: None)
    assert result.status == "finished", result.message

    # the loop did carry each planted text into the store, scrubbed
    add = next(store.rows("select prompt, oracle from tasks where entry_point = 'add'"))
    assert "<redacted:github-token>" in add["prompt"] and "<redacted:openai-style-key>" in add["oracle"]
    sign = next(store.rows("select oracle, oracle_source from tasks where entry_point = 'sign'"))
    assert sign["oracle_source"] == "kept" and "<redacted:aws-access-key>" in sign["oracle"]
    tests = " ".join(r["code"] for r in store.rows("select code from tests"))
    assert "<redacted:slack-token>" in tests and "<redacted:huggingface-token>" in tests
    assert any("<redacted:stripe-key>" in r["completion"] for r in store.rows("select completion from samples"))
    assert next(store.rows("select skip_reason from tasks where relpath = 'my_secret.py'"))["skip_reason"] == "excluded"
    assert (home / "plumline.db-wal").exists()
    assert found_in_files(home) == {s: [] for s in SECRETS}  # the store open: the file and its WAL
    store.close()
    assert found_in_files(home) == {s: [] for s in SECRETS}  # closed: checkpointed into the file
