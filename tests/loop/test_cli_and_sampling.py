"""The CLI (help, --json) and real on-policy sampling with the tiny model."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from agent.cli import app
from agent.sample import program_for, sample_candidates, task_context
from agent.store import Store
from tests.loop.conftest import ADD_PROMPT, add_task_row, write_jsonl

runner = CliRunner()


def test_every_loop_command_has_help():
    for args in (["tasks", "--help"], ["tasks", "import", "--help"], ["tasks", "list", "--help"], ["collect", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Example" in result.output, args


def test_tasks_import_json_summary(plumline_home, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [add_task_row(), {"task_id": "bad"}])
    result = runner.invoke(app, ["tasks", "import", str(path), "--json", "--heldout-fraction", "0"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["added"] == 1 and data["skipped"] == {"bad_record": 1} and data["splits"] == {"train": 1}


def test_collect_json_tasks_only(plumline_home, tmp_path):
    result = runner.invoke(app, ["collect", "--tasks-only", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["run"]["completions_read"] == 0 and "skipped_by_reason" in data["store"]["tasks"]


def test_context_and_program_follow_the_serving_format():
    task = {"prompt": ADD_PROMPT, "entry_point": "add"}
    ctx = task_context(task)
    assert (ctx.prefix, ctx.suffix, ctx.mode, ctx.language) == (ADD_PROMPT, "", "block", "python")
    assert program_for(task, "    return a + b") == ADD_PROMPT + "    return a + b\n"


def test_sampling_with_the_tiny_policy_records_every_sample(tiny_model_dir, tmp_path):
    from agent.models import ModelConfig
    from agent.models.transformers_backend import TransformersBackend

    policy = TransformersBackend(ModelConfig(name=str(tiny_model_dir), block_tokens=16), str(tiny_model_dir))
    store = Store(tmp_path / "s.db")
    tasks = [{"id": "t1", "prompt": ADD_PROMPT}, {"id": "t2", "prompt": ADD_PROMPT.replace("add", "plus")}]
    got = sample_candidates(policy, tasks, n=3, temperature=0.8, store=store, batch_rows=4)
    assert [len(x) for x in got] == [3, 3]
    rows = list(store.rows("select * from samples"))
    assert len(rows) == 6 and {r["adapter_id"] for r in rows} == {"base"}
    assert all(json.loads(r["decoding"])["temperature"] == 0.8 for r in rows)
    assert all(r["program"].startswith(ADD_PROMPT) or r["program"].startswith(ADD_PROMPT.replace("add", "plus")) for r in rows)


def test_tasks_list_shows_skip_reasons(plumline_home, tmp_path):
    path = write_jsonl(tmp_path / "t.jsonl", [add_task_row(), {"task_id": "bad"}])
    runner.invoke(app, ["tasks", "import", str(path), "--json"])
    result = runner.invoke(app, ["tasks", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout.strip().splitlines()[-1])
    assert {r["status"] for r in rows} == {"new", "skipped"}
    assert [r["skip_reason"] for r in rows if r["status"] == "skipped"] == ["bad_record"]


def test_tasks_import_of_a_folder_with_no_importable_function_says_why(plumline_home, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "shapes.py").write_text('class Square:\n    def area(self):\n        """The area."""\n        return 1\n')
    (src / "bare.py").write_text("def f(x):\n    return x\n")
    result = runner.invoke(app, ["tasks", "import", str(src)])
    assert result.exit_code == 1
    assert "no importable functions" in result.output and "method" in result.output and "no_docstring" in result.output
    assert "tasks list --status skipped" in result.output
