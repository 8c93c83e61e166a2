"""Cross-file context in the prompt (agent/models/prompts.py): first, in the model's own repository
format, inside one token budget, and carried through every engine's rebuild of the context."""

from __future__ import annotations

import pytest

from agent.models.prompts import (Chunk, Context, RepoContext, build_prompt, chunk_text, fit_window, postprocess)

HELPER = Chunk("pkg/helpers.py", 'def parse_config(path: str) -> dict:\n    """Read the settings file."""', 3,
               "symbol", 1.4)
OTHER = Chunk("pkg/other.py", "def unrelated():\n    return 42", 0, "open", 0.12)
REPO = RepoContext("shop", "pkg/main.py", (HELPER, OTHER))


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def fim_tokenizer(tiny_model_dir):
    """The tiny tokenizer plus Qwen2.5-Coder's FIM and repository tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.add_special_tokens({"additional_special_tokens": [
        "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|repo_name|>", "<|file_sep|>"]})
    return tok


def count(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


def test_fim_prompt_uses_the_repository_format_with_context_first(fim_tokenizer):
    ctx = Context("from pkg.helpers import parse_config\ncfg = ", "\n", mode="line", repo=REPO)
    prompt = build_prompt(ctx, fim_tokenizer, "fim")
    assert prompt == ("<|repo_name|>shop\n"
                      f"<|file_sep|>pkg/helpers.py\n{HELPER.text}\n"
                      f"<|file_sep|>pkg/other.py\n{OTHER.text}\n"
                      "<|file_sep|>pkg/main.py\n"
                      "<|fim_prefix|>from pkg.helpers import parse_config\ncfg =<|fim_suffix|>\n<|fim_middle|>")


def test_chat_prompt_puts_context_in_the_user_message_before_the_code(tokenizer):
    line = build_prompt(Context("cfg = ", "\n", mode="line", repo=REPO), tokenizer, "chat")
    user = line.split("<|im_start|>user\n", 1)[1].split("<|im_end|>", 1)[0]
    assert user.index("def parse_config(path: str) -> dict:") < user.index("Complete the following")
    block = build_prompt(Context("def main():\n", "", mode="block", repo=REPO), tokenizer, "chat")
    user = block.split("<|im_start|>user\n", 1)[1]
    assert user.index("pkg/helpers.py") < user.index("def main():")


@pytest.mark.parametrize("fmt", ["fim", "chat", "plain"])
def test_without_chunks_the_prompt_is_the_context_free_one(fmt, fim_tokenizer, tokenizer):
    tok = fim_tokenizer if fmt == "fim" else tokenizer
    plain = Context("x = 1\ny = ", "\n", mode="line")
    empty = Context("x = 1\ny = ", "\n", mode="line", repo=RepoContext("shop", "a.py", ()))
    assert build_prompt(empty, tok, fmt) == build_prompt(plain, tok, fmt)


def test_context_survives_deciding_the_mode():
    ctx = Context("cfg = ", "\n", repo=REPO)
    resolved = ctx.resolved()  # what every engine completes
    assert resolved.repo == REPO and resolved.mode == "line" and resolved.prefix == ctx.prefix


def test_context_and_current_file_share_one_budget(tokenizer):
    prefix = "".join(f"value_{i} = compute_{i}(value_{i - 1})\n" for i in range(1, 200))
    ctx = Context(prefix, "\nprint(value_1)\n", mode="line", repo=REPO)
    budget = 200
    fitted = fit_window(ctx, tokenizer, budget)
    used = count(tokenizer, fitted.prefix) + count(tokenizer, fitted.suffix) + sum(
        count(tokenizer, chunk_text(c)) for c in fitted.chunks)
    assert used <= budget
    assert count(tokenizer, fitted.prefix) + count(tokenizer, fitted.suffix) >= budget // 2  # the file keeps half


def test_chunks_that_do_not_fit_are_dropped_whole_by_rank(tokenizer):
    big = Chunk("pkg/big.py", "\n".join(f"def helper_{i}(): pass" for i in range(40)), 0, "open", 0.2)
    repo = RepoContext("shop", "pkg/main.py", (big, HELPER, OTHER))
    prefix = "".join(f"v{i} = w{i}\n" for i in range(200))
    fitted = fit_window(Context(prefix, "", mode="line", repo=repo), tokenizer, 160)
    assert fitted.chunks == (HELPER, OTHER)  # the best first; the big one never fits; prompt order kept


def test_short_file_lends_its_budget_to_the_context(tokenizer):
    fitted = fit_window(Context("cfg = ", "", mode="line", repo=REPO), tokenizer, 200)
    assert fitted.chunks == REPO.chunks
    assert fitted.prefix == "cfg = "


def test_repo_context_round_trips_through_json():
    assert RepoContext.from_data(REPO.to_json()) == REPO
    assert RepoContext.from_data(REPO.to_dict()) == REPO
    assert RepoContext.from_data("not json") is None
    assert RepoContext.from_data(None) is None


def test_a_real_engine_serves_and_samples_with_the_context(tiny_model_dir):
    """TransformersBackend rebuilds the Context from its fields before fitting it: the chunks must
    still be in the prompt it serves, in the context it reports, and in what it samples from."""
    from agent.models import ModelConfig
    from agent.models.transformers_backend import TransformersBackend

    backend = TransformersBackend(ModelConfig(name=str(tiny_model_dir), context_tokens=256), str(tiny_model_dir))
    ctx = Context("import os\ncfg = ", "\n", repo=REPO)
    result = backend.complete(ctx, max_new_tokens=4)
    assert "def parse_config(path: str) -> dict:" in result.prompt
    assert result.context.repo is not None and HELPER in result.context.chunks
    fitted = fit_window(ctx.resolved(), backend.tokenizer, 256)
    assert build_prompt(fitted, backend.tokenizer, backend.prompt_format) == result.prompt
    assert postprocess("x", fitted, backend.prompt_format)[0] == "x"
