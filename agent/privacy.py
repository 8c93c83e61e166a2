"""Privacy: which files are never logged, and scrubbing secrets out of text before any write.

Rule 7 of the design: excluded paths are never stored, secrets are scrubbed before anything is
written, logging can be switched off, the store is private to the user (0600, see store.py).

Why not detect-secrets: its line scanner is built to *flag* secrets, not to redact them. Asked for
the matched value it returns only part of some tokens (the ``ghp`` prefix of a GitHub token), and in
ad-hoc mode its entropy plugins flag ordinary words (``url``, ``PRIVATE``), which would mangle code.
The patterns below are the provider formats those plugins also know, matched whole.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import PurePath

DEFAULT_EXCLUDE = [".env*", "*.pem", "*secret*", "id_*", "*.key", "*.p12", "*credentials*"]

# (name, pattern); the whole match, or group "s" when present, is replaced.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("private-key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY( BLOCK)?-----.*?(-----END [A-Z ]*PRIVATE KEY( BLOCK)?-----|\Z)", re.S)),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b")),
    ("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    ("gitlab-token", re.compile(r"\bglpat-[A-Za-z0-9_\-]{20,}\b")),
    ("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
    ("stripe-key", re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b")),
    ("openai-style-key", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}\b")),
    ("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b")),
    ("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b")),
    ("url-credentials", re.compile(r"(?<=://)(?P<s>[^:/\s@]+:[^@/\s]+)(?=@)")),
    (
        "assigned-secret",
        re.compile(
            r"""(?ix)
            \b[\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|private[_-]?key|client[_-]?secret)[\w.-]*
            (?:\\?["'])?                                # a dict or JSON key's closing quote
            \s*(?:=|:|:=|=>)\s*
            (?P<q>\\?["'])                               # the value's quote, JSON-escaped (\") in stored JSON
            (?!<redacted:)                                # already scrubbed: scrubbing twice changes nothing
            (?P<s>(?:[^"'\s\\]|\\(?!["'])){6,})(?P=q)
            """
        ),
    ),
]


@dataclass
class PrivacyConfig:
    logging: bool = field(default=True, metadata={"help": "record suggestions and their fate; false = log nothing"})
    exclude: list[str] = field(
        default_factory=lambda: list(DEFAULT_EXCLUDE),
        metadata={"help": "glob patterns (matched on file name and relative path) whose files are never read into the store"},
    )
    scrub: bool = field(default=True, metadata={"help": "replace secrets (API keys, tokens, private keys) with <redacted:KIND> before writing"})

    def __post_init__(self) -> None:
        if not all(isinstance(p, str) and p for p in self.exclude):
            raise ValueError(f"privacy.exclude must be a list of non-empty glob strings, got {self.exclude!r}")


def is_excluded(path: str | PurePath | None, patterns: list[str]) -> bool:
    """True when the file name, or any suffix of its path, matches one of the globs."""
    if not path:
        return False
    p = PurePath(str(path))
    parts = p.parts
    candidates = {p.name, str(p)} | {str(PurePath(*parts[i:])) for i in range(len(parts))}
    return any(fnmatch.fnmatch(c, pat) for c in candidates for pat in patterns) or any(
        fnmatch.fnmatch(part, pat) for part in parts for pat in patterns
    )


def scrub(text: str | None) -> str | None:
    """Replace every secret the patterns recognise with ``<redacted:KIND>``."""
    if not text:
        return text
    for kind, pattern in _PATTERNS:
        def _sub(m: re.Match[str], kind: str = kind) -> str:
            if "s" in pattern.groupindex and m.group("s") is not None:
                start, end = m.span("s")
                whole = m.group(0)
                off = m.start()
                return whole[: start - off] + f"<redacted:{kind}>" + whole[end - off :]
            return f"<redacted:{kind}>"

        text = pattern.sub(_sub, text)
    return text
