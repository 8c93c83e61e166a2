"""Privacy: excluded paths and secret scrubbing (design rule 7)."""

import json

import pytest

from agent.config import Config
from agent.privacy import DEFAULT_EXCLUDE, PrivacyConfig, is_excluded, scrub
from agent.store import Store, open_store

SECRETS = [
    ('API_KEY = "sk-proj-abcdefghijklmnop1234567890ABCDEF"', "sk-proj-abcdefghijklmnop1234567890ABCDEF"),
    ('aws = "AKIAIOSFODNN7EXAMPLE"', "AKIAIOSFODNN7EXAMPLE"),
    ('gh = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"', "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ("slack = 'xoxb-123456789012-abcdefghijkl'", "xoxb-123456789012-abcdefghijkl"),
    ('password = "hunter2hunter2"', "hunter2hunter2"),
    ('db = "postgres://admin:pa55word@db.local/app"', "pa55word"),
    ("k = '''-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----'''", "MIIEowIBAAKCAQEA"),
    ('hf = "hf_abcdefghijklmnopqrstuvwxyzABCDEF12"', "hf_abcdefghijklmnopqrstuvwxyzABCDEF12"),
]


@pytest.mark.parametrize("text, secret", SECRETS)
def test_secrets_are_scrubbed(text, secret):
    out = scrub(text)
    assert secret not in out
    assert "<redacted:" in out


@pytest.mark.parametrize("code", ["def add(a, b):\n    return a + b\n", "token_count = len(tokens)\n", "url = 'https://example.org/a'\n"])
def test_ordinary_code_is_untouched(code):
    assert scrub(code) == code


@pytest.mark.parametrize("path", [".env", "app/.env.local", "certs/server.pem", "config/my_secret.py", "/home/u/.ssh/id_ed25519"])
def test_default_excludes_match(path):
    assert is_excluded(path, DEFAULT_EXCLUDE)


@pytest.mark.parametrize("path", ["src/app.py", "tests/test_env.py", "README.md"])
def test_ordinary_paths_are_not_excluded(path):
    assert not is_excluded(path, DEFAULT_EXCLUDE)


def test_scrubbing_twice_changes_nothing():
    for text, _secret in SECRETS:
        once = scrub(text)
        assert scrub(once) == once


@pytest.mark.parametrize("text", ['{"api_key": "abcdefgh12"}', "conf = {'client_secret': 'abc123xyz'}",
                                  json.dumps({"code": 'x = 1\npassword = "hunter2hunter2"\n'})])
def test_secrets_in_dict_literals_and_stored_json_are_scrubbed(text):
    out = scrub(text)
    assert "abcdefgh12" not in out and "abc123xyz" not in out and "hunter2hunter2" not in out
    assert "<redacted:assigned-secret>" in out


# ---------------------------------------------------------------- the store's one gate

TOKEN = "ghp_" + "Zq9Xw8Vu7T" * 4   # the shape of a GitHub token; random-looking, not a real one


def _insert_with_store_write(store, text):
    store.write("tasks", {"id": "t1", "prompt": text, "meta": {"context": text}})


def _insert_with_sqlite_utils(store, text):
    store.db["tests"].insert({"task_id": "t1", "code": text})


def _update_with_sqlite_utils(store, text):
    store.db["tasks"].insert({"id": "t2", "prompt": "x"})
    store.db["tasks"].update("t2", {"oracle": text})


def _raw_execute(store, text):
    store.db.execute("insert into samples (id, completion) values (?, ?)", ["s1", text])


def _named_parameters(store, text):
    store.db.execute("insert into samples (id, program) values (:id, :p)", {"id": "s2", "p": text})


def _executemany(store, text):
    store.db.conn.executemany("insert into state (key, value) values (?, ?)", [("a", text), ("b", text)])
    store.db.conn.commit()


@pytest.mark.parametrize("write", [_insert_with_store_write, _insert_with_sqlite_utils, _update_with_sqlite_utils,
                                   _raw_execute, _named_parameters, _executemany])
def test_nothing_written_to_the_store_file_holds_a_secret(tmp_path, write):
    store = Store(tmp_path / "p.db")
    write(store, f'API_TOKEN = "{TOKEN}"\npassword = "hunter2hunter2"\n')
    files = [p for p in (tmp_path / "p.db", tmp_path / "p.db-wal") if p.exists()]
    raw = b"".join(p.read_bytes() for p in files)
    assert TOKEN.encode() not in raw and b"hunter2hunter2" not in raw
    assert b"<redacted:github-token>" in raw
    store.close()


def test_a_lookup_finds_what_was_stored_scrubbed(tmp_path):
    store = Store(tmp_path / "p.db")
    code = f'assert f("{TOKEN}") == 1'
    store.db["tests"].insert({"task_id": "t1", "code": code})
    assert store.db.execute("select count(*) from tests where code = ?", [code]).fetchone()[0] == 1


def test_privacy_scrub_off_keeps_text_as_written(tmp_path):
    config = Config(home=tmp_path, privacy=PrivacyConfig(scrub=False))
    store = open_store(config)
    store.write("tasks", {"id": "t1", "prompt": f'T = "{TOKEN}"'})
    assert TOKEN in store.get("tasks", "t1")["prompt"]
