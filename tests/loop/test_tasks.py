"""Tasks: HumanEval and folder imports, tasks from logged completions, skips with reasons."""

from __future__ import annotations

import hashlib
import os
import textwrap
import time

from agent.privacy import PrivacyConfig
from agent.tasks import (assign_split, function_task, humaneval_asserts, humaneval_path, import_path,
                         store_draft, task_from_completion, Skip, TaskDraft)
from tests.loop.conftest import ADD_PROMPT, add_task_row, write_jsonl

GOOD = textwrap.dedent('''
    import math
    import re
    from collections import Counter

    SCALE = 3


    def _helper(x):
        return math.floor(x) * SCALE


    def unrelated():
        return 1


    def scaled_floor(x: float) -> int:
        """Floor x and multiply by SCALE.

        >>> scaled_floor(2.5)
        6
        """
        return _helper(x)


    def todo(x):
        """Not written yet."""
        pass


    def reads(path):
        """Read a file."""
        with open(path) as fh:
            return fh.read()


    def nodoc(x):
        return x


    def fetch(url):
        """Fetch a page."""
        import requests
        return requests.get(url).text


    def uses_np(x):
        """Sum with numpy."""
        return np.sum(x)


    class Box:
        def size(self, k):
            """Size."""
            return k
''')


def test_tasks_import_humaneval_keeps_canonical_oracle_and_ground_truth(store):
    summary = import_path(store, humaneval_path(), heldout_fraction=0.2, limit=5)
    assert summary.added == 5
    tasks = list(store.rows("select * from tasks"))
    assert {t["source"] for t in tasks} == {"humaneval"}
    assert all(t["oracle"].startswith(t["prompt"]) and t["oracle_source"] == "canonical" for t in tasks)
    tests = list(store.rows("select * from tests"))
    assert tests and {t["source"] for t in tests} == {"humaneval"}
    assert all("candidate" not in t["code"] and t["code"].startswith("assert ") for t in tests)
    again = import_path(store, humaneval_path(), heldout_fraction=0.2, limit=5)  # the same first five, not the next
    assert (again.added, again.duplicates) == (0, 5) and store.db["tasks"].count == 5


def test_tasks_import_twice_adds_nothing(store, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [add_task_row()])
    assert import_path(store, path).added == 1
    again = import_path(store, path)
    assert (again.added, again.duplicates) == (0, 1)


def test_humaneval_check_becomes_asserts_on_entry_point():
    asserts = humaneval_asserts("def check(candidate):\n    assert candidate(1) == 2, 'msg'\n    assert True\n"
                                "    for x in range(3):\n        assert candidate(x)\n", "inc")
    assert asserts == ["assert inc(1) == 2"]


def test_split_is_fixed_by_seed_and_fraction():
    keys = [f"k{i}" for i in range(400)]
    first = [assign_split(k, 0.25, seed=7) for k in keys]
    assert first == [assign_split(k, 0.25, seed=7) for k in keys]
    assert 60 < first.count("heldout") < 140
    assert all(assign_split(k, 0.0) == "train" for k in keys)


def test_tasks_import_folder(store, tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(GOOD)
    (tmp_path / "pkg" / "broken.py").write_text("def f(:\n")
    (tmp_path / "pkg" / "secrets_util.py").write_text('def f(x):\n    """x"""\n    return x\n')
    summary = import_path(store, tmp_path, heldout_fraction=0.0, privacy=PrivacyConfig())
    tasks = {t["entry_point"]: t for t in store.rows("select * from tasks where status != 'skipped'")}
    assert set(tasks) == {"scaled_floor", "todo"}
    assert tasks["scaled_floor"]["oracle"] and tasks["todo"]["oracle"] is None
    reasons = {t["origin"].split("::")[-1]: t["skip_reason"] for t in store.rows("select * from tasks where status = 'skipped'")}
    assert reasons["pkg/broken.py"] == "syntax_error"
    assert reasons["pkg/secrets_util.py"] == "excluded"
    assert reasons["reads"] == "uses_io" and reasons["nodoc"] == "no_docstring"
    assert reasons["fetch"] in ("third_party_import", "uses_io") and reasons["uses_np"] == "undefined_name"
    assert reasons["unrelated"] == "no_parameters" and reasons["Box.size"] == "method"
    assert summary.added == 2


def test_task_prompt_has_only_what_the_function_needs():
    draft = function_task(GOOD, name="scaled_floor", relpath="m.py")
    assert isinstance(draft, TaskDraft)
    assert "import math" in draft.prompt and "SCALE = 3" in draft.prompt and "def _helper" in draft.prompt
    assert "import re" not in draft.prompt and "Counter" not in draft.prompt and "def unrelated" not in draft.prompt
    assert draft.prompt.rstrip().endswith('"""') and draft.oracle == draft.prompt + "    return _helper(x)\n"
    compile(draft.oracle, "oracle", "exec")


def _completion(prefix, suffix="", **kw):
    row = {"id": "c1", "relpath": "m.py", "language": "python", "prefix": prefix, "suffix": suffix,
           "text": "    return a + b", "adapter_id": "base", "uri": None}
    row.update(kw)
    return row


def test_task_from_logged_completion_inside_a_body():
    draft = task_from_completion(_completion(ADD_PROMPT), False, PrivacyConfig(), 0)
    assert isinstance(draft, TaskDraft) and draft.entry_point == "add" and draft.oracle is None
    assert draft.prompt == ADD_PROMPT and draft.meta["completion_ids"] == ["c1"]


def test_logged_completion_that_cannot_stand_alone_is_skipped_with_reason():
    cases = {
        "not_python": _completion("let x = 1;\n", relpath="a.js", language="javascript"),
        "not_in_function": _completion("import os\nx = 1\n"),
        "excluded": _completion(ADD_PROMPT, relpath=".env.py"),
        "method": _completion("class A:\n    def f(self, x):\n        \"\"\"Doc.\"\"\"\n        "),
    }
    for reason, row in cases.items():
        got = task_from_completion(row, False, PrivacyConfig(), 0)
        assert isinstance(got, Skip) and got.reason == reason, (reason, got)


def test_kept_function_becomes_the_oracle_once_stable(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(ADD_PROMPT + "    total = a + b\n    return total\n")
    row = _completion(ADD_PROMPT, uri=path.as_uri())
    old = time.time() - 1000
    os.utime(path, (old, old))
    kept = task_from_completion(row, True, PrivacyConfig(), stable_s=600)
    assert kept.oracle_source == "kept" and "return total" in kept.oracle
    fresh = task_from_completion(row, True, PrivacyConfig(), stable_s=600, clock=old + 10)
    assert fresh.oracle is None and "oracle_pending" in fresh.meta
    dismissed = task_from_completion(row, False, PrivacyConfig(), stable_s=600)
    assert dismissed.oracle is None


TOKEN = "ghp_" + "Zq9Xw8Vu7T" * 4  # the shape of a GitHub token; not a real one
WITH_SECRETS = textwrap.dedent(f'''
    API_TOKEN = "{TOKEN}"


    def header(user):
        """The auth header for user."""
        salt = "sk-proj-{'Q' * 24}"
        return user + ":" + API_TOKEN[:4] + salt[:2]
''')


def _stored_text(store) -> str:
    return "\n".join(str(v) for t in ("tasks", "tests") for row in store.rows(f"select * from {t}") for v in row.values())


def test_imported_task_stores_no_secret_from_its_module(store, tmp_path):
    (tmp_path / "auth.py").write_text(WITH_SECRETS)
    assert import_path(store, tmp_path, heldout_fraction=0.0).added == 1
    task = next(store.rows("select * from tasks"))
    assert 'API_TOKEN = "<redacted:github-token>"' in task["prompt"]  # the constant the function needs, scrubbed
    assert "<redacted:openai-style-key>" in task["oracle"]             # the body, scrubbed
    stored = _stored_text(store)
    assert TOKEN not in stored and "Q" * 24 not in stored
    assert task["hash"] == hashlib.sha256(f"header\0{task['prompt']}".encode()).hexdigest()  # of what is stored


def test_kept_oracle_read_from_disk_is_stored_scrubbed(store, tmp_path):
    path = tmp_path / "auth.py"
    path.write_text(WITH_SECRETS)
    old = time.time() - 1000
    os.utime(path, (old, old))
    prefix = WITH_SECRETS.split("    salt")[0].replace(TOKEN, "<redacted:github-token>")  # as logged: scrubbed
    row = _completion(prefix + "    ", relpath="auth.py", uri=path.as_uri(), text='salt = "x"')
    draft = task_from_completion(row, True, PrivacyConfig(), stable_s=600)
    assert draft.oracle_source == "kept"
    outcome, tid = store_draft(store, draft, heldout_fraction=0.0)
    assert outcome == "added" and "<redacted:github-token>" in store.get("tasks", tid)["oracle"]
    assert TOKEN not in _stored_text(store)
