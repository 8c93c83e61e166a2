"""The teacher endpoint: failures are recorded and skipped; privacy rules hold for what is sent."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.collect import collect
from agent.privacy import PrivacyConfig
from agent.synth import teacher_tests
from agent.tasks import import_path
from tests.loop.conftest import ADD_ASSERTS, ADD_CANDIDATES, ADD_PROMPT, FakePolicy, add_task_row, make_config, write_jsonl

TASK = {"id": "t", "prompt": ADD_PROMPT, "entry_point": "add", "relpath": "m.py"}


def _chat(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


class Teacher(BaseHTTPRequestHandler):
    mode = "good"
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        Teacher.seen.append((self.path, json.loads(body)))
        mode = Teacher.mode
        if mode == "slow":
            time.sleep(3)
        status, payload = {
            "good": (200, _chat(ADD_ASSERTS)),
            "error": (500, b"internal error"),
            "garbage": (200, b"\x00not json{{"),
            "prose": (200, _chat("I am sorry, I cannot write tests for this function.")),
            "huge": (200, _chat("assert add(1, 1) == 2\n" * 40000)),
            "slow": (200, _chat(ADD_ASSERTS)),
        }[mode]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture(scope="module")
def teacher_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Teacher)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_teacher_asserts_are_parsed(teacher_url):
    Teacher.mode = "good"
    got = teacher_tests(TASK, url=teacher_url, model="big", privacy=PrivacyConfig())
    assert got.source == "teacher" and "assert add(2, 3) == 5" in got.tests and not got.error
    assert Teacher.seen[-1][0] == "/v1/chat/completions" and Teacher.seen[-1][1]["model"] == "big"


@pytest.mark.parametrize("mode, error", [("error", "HTTP 500"), ("garbage", "not an OpenAI"), ("prose", "no well-formed"),
                                         ("huge", "larger than"), ("slow", "no answer within")])
def test_teacher_failure_is_recorded_not_raised(teacher_url, mode, error):
    Teacher.mode = mode
    got = teacher_tests(TASK, url=teacher_url, model="m", privacy=PrivacyConfig(), timeout_s=1.0)
    assert got.tests == [] and error in got.error


def test_teacher_down_is_recorded_and_skipped(store, tmp_path, sandbox):
    import_path(store, write_jsonl(tmp_path / "t.jsonl", [add_task_row()]), heldout_fraction=0.0)
    config = make_config(teacher_url=f"http://127.0.0.1:{_free_port()}", teacher_timeout_s=2.0, mutants_per_task=0)
    counts = collect(store, config, policy=FakePolicy({"add": ADD_CANDIDATES}), sandbox=sandbox)
    assert not counts.interrupted and not counts.error
    task = next(store.rows("select * from tasks"))
    assert json.loads(task["meta"])["synth"]["teacher"]["error"].startswith("unreachable")
    assert task["status"] == "skipped" and task["skip_reason"] == "too_few_valid_tests"  # one docstring test only


def test_teacher_never_sees_excluded_files_or_secrets(teacher_url):
    Teacher.mode = "good"
    Teacher.seen.clear()
    excluded = teacher_tests({**TASK, "relpath": "config/secrets.py"}, url=teacher_url, model="m", privacy=PrivacyConfig())
    assert "privacy.exclude" in excluded.error and Teacher.seen == []
    token = "ghp_" + "a" * 36
    secret = {**TASK, "prompt": ADD_PROMPT.replace("Add two numbers.", f"Add two numbers. token {token}")}
    teacher_tests(secret, url=teacher_url, model="m", privacy=PrivacyConfig())
    sent = json.dumps(Teacher.seen[-1][1])
    assert token not in sent and "redacted" in sent


def test_teacher_writes_the_tests_when_configured(store, tmp_path, sandbox, teacher_url):
    Teacher.mode = "good"
    import_path(store, write_jsonl(tmp_path / "t.jsonl", [add_task_row()]), heldout_fraction=0.0)
    policy = FakePolicy({"add": ADD_CANDIDATES})
    collect(store, make_config(teacher_url=teacher_url, teacher_model="big"), policy=policy, sandbox=sandbox)
    sources = {r["source"] for r in store.rows("select source from tests where valid = 1")}
    assert "teacher" in sources and "policy" not in sources and policy.generate_calls == 0
    assert next(store.rows("select status from tasks"))["status"] == "ready"
