"""``plumline/status`` counts the prompt tokens the engine saw and processed, over a real stdio
client, so bench/lsp.py can show that typing along costs only the new tokens.

Counters report what an engine reports (llama.cpp does, transformers does not): never a guess."""

from __future__ import annotations

import pytest

from tests.lsp.conftest import start_session, stop_session

COUNTS = ("prompt_tokens", "prompt_tokens_processed", "requests_with_token_counts")


async def test_token_counters_stay_zero_for_an_engine_that_reports_none(session):
    uri, line, col, item = await session.suggestion()  # the tiny model on transformers
    stats = (await session.status())["stats"]
    assert stats["completed"] >= 1
    assert {k: stats[k] for k in COUNTS} == dict.fromkeys(COUNTS, 0)


@pytest.mark.embedded
async def test_typing_further_processes_only_the_new_tokens(embedded_model_dir, plumline_home, tmp_path, monkeypatch):
    pytest.importorskip("llama_cpp")
    (plumline_home / "cache").mkdir(parents=True)
    (plumline_home / "cache" / "models").symlink_to(embedded_model_dir.parent)
    monkeypatch.setenv("PLUMLINE_MODEL_NAME", "embedded")
    monkeypatch.setenv("PLUMLINE_MODEL_BACKEND", "llamacpp")
    monkeypatch.setenv("PLUMLINE_CONTEXT_ENABLED", "false")  # the current file only: a stable prompt start
    session = await start_session(plumline_home, tmp_path / "ws")
    try:
        lines = open(__file__).read()[:1500].split("\n")
        uri = session.open("mod.py", "\n".join(lines))
        line, col = len(lines) - 1, len(lines[-1])
        items = await session.ask(uri, line, col)
        first = (await session.status())["stats"]
        shown = items[0].insert_text if items else ""
        typed = next(t for t in ("zq_1", "xw_2") if not shown.startswith(t))  # not along it: no cache hit
        session.edit(uri, line, col, typed)
        await session.ask(uri, line, col + len(typed))
        second = (await session.status())["stats"]
    finally:
        await stop_session(session)
    assert first["requests_with_token_counts"] == 1 and second["requests_with_token_counts"] == 2
    assert first["prompt_tokens_processed"] == first["prompt_tokens"] > 200  # cold: all of it
    grew = second["prompt_tokens"] - first["prompt_tokens"]
    processed = second["prompt_tokens_processed"] - first["prompt_tokens_processed"]
    assert grew > 200 and processed <= 8, (grew, processed)
