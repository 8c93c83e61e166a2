"""One completion, end to end: a file position → the policy → a suggestion → a store record.

Shared by ``plumline complete`` and the language server, so both log exactly the same way: the
privacy rules are applied here (excluded paths are never stored, secrets scrubbed before the
write, nothing at all when logging is off). The cross-file context the prompt carried is stored
with it (``context``), as the prompt itself is.
"""

from __future__ import annotations

import json
from pathlib import Path

from agent.config import Config
from agent.models import Completion, Context, ModelBackend, load_backend
from agent.adapters import current_adapter
from agent.privacy import PrivacyConfig, is_excluded, scrub
from agent.store import Store

LANGUAGES = {".py": "python", ".pyi": "python", ".js": "javascript", ".ts": "typescript", ".lua": "lua",
             ".rs": "rust", ".go": "go", ".c": "c", ".h": "c", ".cpp": "cpp", ".java": "java", ".sh": "shell"}


class PositionError(ValueError):
    pass


def language_of(path: str | Path) -> str:
    return LANGUAGES.get(Path(str(path)).suffix.lower(), "plaintext")


def split_at(text: str, line: int, col: int) -> tuple[str, str]:
    """Split ``text`` at a 0-based (line, column); raise PositionError if it lies outside."""
    lines = text.split("\n")
    if line < 0 or line >= len(lines):
        raise PositionError(f"line {line + 1} is outside the file, which has {len(lines)} line(s)")
    if col < 0 or col > len(lines[line]):
        raise PositionError(f"column {col + 1} is outside line {line + 1}, which has {len(lines[line])} character(s)")
    offset = sum(len(x) + 1 for x in lines[:line]) + col
    return text[:offset], text[offset:]


def load_policy(config: Config, say=print, *, job: str = "sample") -> ModelBackend:
    """The policy: the configured base model plus the current adapter, if one was promoted, on the
    engine chosen for ``job`` ("sample" for the loop, "serve" for the editor)."""
    backend = load_backend(config.model, config.cache_dir, say=say, job=job)
    adapter = current_adapter(config.adapters_dir)
    if adapter.path is not None:
        backend.set_adapter(adapter.path, adapter.id)
    return backend


def load_serving_policy(config: Config, say=print) -> ModelBackend:
    """What serves suggestions (``plumline complete``, the language server): the policy, wrapped for
    best-of-N under the reward model when ``model.rerank_n`` > 1 (``agent.models.rerank``)."""
    from agent.models.rerank import load_reranker

    return load_reranker(load_policy(config, say=say, job="serve"), config, config.adapters_dir, say=say)


def log_completion(store: Store | None, privacy: PrivacyConfig, completion: Completion, *, source: str,
                   relpath: str | None, uri: str | None = None, line: int | None = None,
                   col: int | None = None, language: str = "python") -> str | None:
    """Store a served suggestion under the privacy rules; returns its id, or None if not logged."""
    if store is None or not privacy.logging or is_excluded(relpath or uri, privacy.exclude):
        return None
    clean = scrub if privacy.scrub else (lambda s: s)
    ctx = completion.context or Context("")
    return store.record_completion(
        source=source, uri=uri, relpath=relpath, language=language, line=line, col=col,
        mode=completion.mode, prefix=clean(str(ctx.prefix)), suffix=clean(ctx.suffix),
        prompt=clean(completion.prompt), text=clean(completion.text), model=completion.model,
        base_fingerprint=completion.base_fingerprint,
        adapter_id=completion.adapter_id, decoding=json.dumps(completion.decoding),
        latency_ms=completion.latency_ms, context=clean(ctx.repo.to_json()) if ctx.chunks else None,
    )
