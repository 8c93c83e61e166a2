"""Prompt formats and trimming: what the model sees and what the editor gets."""

import pytest

from agent.models.prompts import (Context, build_prompt, decide_mode, detect_format, extract_reply, heal, postprocess,
                                  split_indent, trim)


@pytest.mark.parametrize(
    "prefix, suffix, mode",
    [
        ("def f(x):\n", "\n", "block"),
        ("def f(x):\n    ", "", "block"),
        ('def f(x):\n    """Doc."""\n    ', "", "block"),
        ("x = fo", "\n", "line"),
        ("    return a +", " b\n", "line"),
        ("def f(x):\n", "    return x\n", "line"),
    ],
)
def test_mode_follows_the_position(prefix, suffix, mode):
    assert decide_mode(prefix, suffix) == mode


def test_line_mode_stops_at_end_of_line():
    text, done = trim("a + b\nprint(1)\n", Context("    return ", "\n", mode="line"))
    assert (text, done) == ("a + b", True)


def test_block_mode_stops_when_the_block_ends():
    ctx = Context("def f(x):\n    ", "", mode="block")
    text, done = trim("y = x * 2\n    return y\n\ndef g():\n    pass\n", ctx)
    assert text == "y = x * 2\n    return y"
    assert done


def test_block_from_column_zero_needs_indentation():
    ctx = Context('def f(x):\n    """Doc."""\n', "", mode="block")
    text, _ = trim("    return x\nprint(f(1))\n", ctx)
    assert text == "    return x"


def test_closing_fence_ends_the_suggestion():
    assert trim("a + b\n```\nThis code adds.", Context("    return ", "", mode="block"))[0] == "a + b"


def test_suffix_is_not_repeated():
    ctx = Context("print(", ")\nx = 1\n", mode="line")
    assert trim('"hi")', ctx)[0] == '"hi"'
    ctx = Context("def f():\n    ", "\n    return y\n", mode="block")
    assert trim("y = 1\n    return y\n", ctx)[0] == "y = 1"


def test_incomplete_line_is_not_judged_early():
    ctx = Context("def f(x):\n    ", "", mode="block")
    _, done = trim("y = 1\n  ", ctx, final=False)
    assert not done


def test_token_healing_round_trip():
    prefix, ws = split_indent("def f():\n    ")
    assert (prefix, ws) == ("def f():\n", "    ")
    assert heal("    return 1", ws) == "return 1"
    assert heal(" return 1", ws) == "return 1"


def test_prompt_formats(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert detect_format(tok) == "chat"
    line = build_prompt(Context("x = f(", "", mode="line"), tok, "chat")
    assert line.endswith("```python\nx = f(")
    block = build_prompt(Context("def f():\n    ", "", mode="block"), tok, "chat")
    assert "```python\ndef f():\n```" in block
    assert block.endswith("assistant\n")
    assert build_prompt(Context("x = 1", ""), tok, "plain") == "x = 1"


FN = 'def area(w, h):\n    """Area of a w-by-h rectangle."""\n'


def test_reply_is_aligned_with_the_prefix():
    reply = ('Sure:\n```python\ndef area(w, h):\n    """Area of a w-by-h rectangle."""\n    return w * h\n```\n'
             "This multiplies.")
    assert extract_reply(reply, Context(FN, "", mode="block")) == ("    return w * h\n", True)
    assert postprocess(reply, Context(FN, "", mode="block"), "chat") == ("    return w * h", True)


def test_reply_from_the_cursor_indent_is_not_indented_twice():
    reply = '```python\ndef area(w, h):\n    """Area of a w-by-h rectangle."""\n    return w * h\n```'
    assert postprocess(reply, Context(FN + "    ", "", mode="block"), "chat")[0] == "return w * h"


def test_prose_reply_suggests_nothing():
    assert postprocess("I cannot help with that.", Context(FN, "", mode="block"), "chat")[0] == ""


def test_reply_about_another_function_suggests_nothing():
    reply = "```python\ndef volume(a):\n    return a ** 3\n```"
    assert postprocess(reply, Context(FN, "", mode="block"), "chat")[0] == ""


def test_reworded_docstring_is_not_repeated():
    reply = '```python\ndef area(w, h):\n    """Area of a rectangle w by h."""\n    return w * h\n```'
    assert postprocess(reply, Context(FN, "", mode="block"), "chat")[0] == "    return w * h"


class _Vocab:
    """A tokenizer stand-in with Qwen2.5-Coder's special tokens (FIM and chat), for format choice."""

    chat_template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    eos_token_id = 7

    def get_vocab(self):
        return {"<|fim_prefix|>": 1, "<|fim_suffix|>": 2, "<|fim_middle|>": 3, "<|endoftext|>": 4,
                "<|im_end|>": 7, "<|file_sep|>": 8}


def test_a_model_with_fim_and_chat_gets_the_measured_format():
    from agent.models.prompts import MIXED_DEFAULT, format_for

    fmt = detect_format(_Vocab())
    assert fmt == MIXED_DEFAULT
    assert format_for(fmt, "line") == "prefill"  # measured: bench/results/formats.json, humaneval.json
    assert format_for(fmt, "block") == "prefill"
    assert format_for("line=fim;block=chat", "line") == "fim"
    assert format_for("line=fim;block=chat", "block") == "chat"
    assert detect_format(_Vocab(), "chat") == "chat"  # model.prompt_format wins over auto
    with pytest.raises(ValueError, match="prompt_format"):
        detect_format(_Vocab(), "line=fim;block=nonsense")


def test_generation_stops_at_every_end_token_the_vocab_has():
    from agent.models.prompts import stop_token_ids

    # <|endoftext|> ends a FIM answer, <|im_end|> a chat turn; a FIM marker or file separator starts no code
    assert stop_token_ids(_Vocab()) == {1, 2, 3, 4, 7, 8}


def test_prefilled_block_continues_after_the_docstring(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    prefix = 'def f(x):\n    """Double x."""\n    '
    ctx = Context(prefix, "", mode="block")
    prompt = build_prompt(ctx, tok, "prefill")
    assert prompt.endswith('```python\ndef f(x):\n    """Double x."""\n')  # the body is next: nothing to rewrite
    assert "Complete the following python function" not in prompt
    text, done = postprocess("    return 2 * x\n```\nThat doubles it.", ctx, "prefill")
    assert (text, done) == ("return 2 * x", True)


def test_chat_reply_that_starts_with_imports_is_not_cut_before_the_function():
    ctx = Context('from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    """Sum."""\n', "", mode="block")
    partial = "```python\nfrom typing import List\n\n\n"
    assert postprocess(partial, ctx, "chat", final=False) == ("", False)  # keep decoding
    whole = partial + 'def f(xs: List[int]) -> int:\n    """Sum."""\n    return sum(xs)\n```'
    assert postprocess(whole, ctx, "chat")[0].strip() == "return sum(xs)"
