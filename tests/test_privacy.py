"""Privacy: excluded paths and secret scrubbing (design rule 7)."""

import pytest

from agent.privacy import DEFAULT_EXCLUDE, is_excluded, scrub

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
