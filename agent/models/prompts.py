"""Prompt formats and trimming: how an editor position becomes model input, and model output
becomes a suggestion.

Three formats, picked by what the tokenizer offers (``detect_format``), or one per mode
(``line=fim;block=chat`` for a model that has both, like the embedded Qwen2.5-Coder-Instruct):

* ``fim`` – the model has fill-in-the-middle tokens (StarCoder/Qwen/DeepSeek/CodeLlama styles):
  prefix and suffix both go in.
* ``chat`` – an instruct model with a chat template (SmolLM2; Qwen2.5-Coder-Instruct for blocks).
  For a line, the assistant turn is *prefilled* with an opening code fence and the prefix, so the
  model continues the line. For a block (a function body), the model is asked to complete the
  code and answers with the whole function; ``extract_reply`` aligns its answer with the prefix
  and keeps what comes after it. (Measured on SmolLM2-135M: prefilled block prompts end the fence
  or start a new ``def`` almost every time; asked plainly, it writes a body.)
* ``plain`` – a base model: the prefix as it is.

``trim`` is applied to every raw generation (and doubles as the early-stop test while decoding):
it cuts at a closing fence, at the end of the line in line mode, at the end of the block in block
mode, and never repeats what already follows the cursor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIM_STYLES = [
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, SantaCoder
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder
    ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),  # DeepSeek-Coder
    ("<PRE>", "<SUF>", "<MID>"),  # CodeLlama
]

CHAT_INSTRUCTION = "Complete the following {language} code. Reply with the code only."
BLOCK_INSTRUCTION = "Complete the following {language} function:\n```{fence}\n{code}\n```"

_LANG_FENCE = {"python": "python", "javascript": "javascript", "typescript": "typescript", "lua": "lua",
               "rust": "rust", "go": "go", "c": "c", "cpp": "cpp", "java": "java", "shell": "bash"}


@dataclass
class Context:
    """What the editor gives us: the text before and after the cursor."""

    prefix: str
    suffix: str = ""
    language: str = "python"
    mode: str = "auto"  # "line", "block" or "auto" (decided from the position)

    def resolved_mode(self) -> str:
        return self.mode if self.mode in ("line", "block") else decide_mode(self.prefix, self.suffix)


WINDOW_STEP_LINES = 32  # the prompt window's first line moves in steps of this many lines


def fit_window(ctx: Context, tokenizer, budget: int) -> Context:
    """Fit prefix + suffix into the token budget: the end of the prefix (≥ 3/4 of the budget),
    starting on a line whose number is a multiple of WINDOW_STEP_LINES so the window (and every
    engine's prefix KV cache) stays put while the user types; the start of the suffix. Every engine
    calls this, so they all build the same prompt for the same position."""
    count = lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]) if s else 0  # noqa: E731
    suffix = ctx.suffix
    suf_budget = budget // 4
    if count(suffix) > suf_budget:
        lines = suffix.split("\n")
        while len(lines) > 1 and count("\n".join(lines)) > suf_budget:
            lines = lines[: max(1, len(lines) // 2)]
        suffix = "\n".join(lines)
    pre_budget = budget - count(suffix)
    prefix = ctx.prefix
    if count(prefix) > pre_budget:
        lines = prefix.split("\n")
        sizes = [len(ids) for ids in tokenizer([ln + "\n" for ln in lines], add_special_tokens=False)["input_ids"]]
        total, fit = 0, len(lines)
        while fit > 0 and total + sizes[fit - 1] <= pre_budget:
            fit -= 1
            total += sizes[fit]
        snapped = -(-fit // WINDOW_STEP_LINES) * WINDOW_STEP_LINES
        start = snapped if snapped < len(lines) and sum(sizes[snapped:]) >= pre_budget // 2 else fit
        prefix = "\n".join(lines[start:])
        while count(prefix) > pre_budget:  # a line longer than the budget, or merges differ: keep the end
            ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
            prefix = tokenizer.decode(ids[-(pre_budget - 1):])
    return Context(prefix=prefix, suffix=suffix, language=ctx.language, mode=ctx.mode)


def decide_mode(prefix: str, suffix: str) -> str:
    """Block when the cursor starts an empty body (after a line ending in ':' or an empty def),
    line otherwise."""
    current = prefix.rsplit("\n", 1)[-1]
    before = prefix[: len(prefix) - len(current)].rstrip("\n").rsplit("\n", 1)[-1]
    rest_of_line = suffix.split("\n", 1)[0]
    if current.strip() == "" and rest_of_line.strip() == "" and before.rstrip().endswith(":"):
        return "block"
    if current.rstrip().endswith(":") and rest_of_line.strip() == "":
        return "block"
    if current.strip() == "" and rest_of_line.strip() == "" and _in_empty_docstring_body(prefix):
        return "block"
    return "line"


def _in_empty_docstring_body(prefix: str) -> bool:
    lines = prefix.rstrip().split("\n")
    if not lines:
        return False
    last = lines[-1].strip()
    return last.endswith('"""') or last.endswith("'''")


# A model with both FIM tokens and a chat template (Qwen2.5-Coder-Instruct) gets FIM for lines and
# the chat format for blocks: bench/formats.py measured each format on each mode (see docs/loop.md).
MIXED_DEFAULT = "line=fim;block=chat"
FORMATS = ("fim", "chat", "plain")


def detect_format(tokenizer, requested: str = "auto") -> str:
    """The prompt format for this tokenizer: ``fim``, ``chat``, ``plain``, or one per mode written
    ``line=fim;block=chat``. ``requested`` (``model.prompt_format``) wins unless it is ``auto``."""
    if requested and requested != "auto":
        for mode in ("line", "block"):
            if format_for(requested, mode) not in FORMATS:
                raise ValueError(f"model.prompt_format = {requested!r}; use auto, fim, chat, plain or "
                                 "'line=FORMAT;block=FORMAT'")
        return requested
    vocab = tokenizer.get_vocab() if tokenizer is not None else {}
    has_fim = any(all(tok in vocab for tok in style) for style in FIM_STYLES)
    has_chat = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
    if has_fim and has_chat:
        return MIXED_DEFAULT
    if has_fim:
        return "fim"
    if has_chat:
        return "chat"
    return "plain"


def format_for(fmt: str, mode: str) -> str:
    """The format one mode uses: ``fmt`` itself, or its ``mode=...`` entry."""
    if "=" not in fmt:
        return fmt
    table = dict(part.split("=", 1) for part in fmt.split(";") if "=" in part)
    return table.get(mode, table.get("line", "plain"))


# Tokens after which no code follows: end of text, end of a chat turn, FIM and repository markers.
STOP_TOKENS = ("<|endoftext|>", "<|im_end|>", "<|file_sep|>", "<|fim_pad|>", "<|repo_name|>",
               "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")


def stop_token_ids(tokenizer) -> set[int]:
    """Token ids that end a generation, in every engine: the tokenizer's EOS plus STOP_TOKENS it has.
    (Qwen's generation config names only ``<|im_end|>``; a FIM answer ends with ``<|endoftext|>``.)"""
    vocab = tokenizer.get_vocab()
    ids = {vocab[t] for t in STOP_TOKENS if t in vocab}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def fim_tokens(tokenizer) -> tuple[str, str, str] | None:
    vocab = tokenizer.get_vocab()
    for style in FIM_STYLES:
        if all(tok in vocab for tok in style):
            return style
    return None


def split_indent(prefix: str) -> tuple[str, str]:
    """Split trailing spaces/tabs off the cursor's line. Tokenizers merge whitespace with the next
    word (" return"), so a prompt that ends in whitespace makes models emit a stray extra space;
    the prompt leaves it out and ``heal`` takes it back out of the generation ("token healing")."""
    stripped = prefix.rstrip(" \t")
    return stripped, prefix[len(stripped):]


def heal(raw: str, ws: str) -> str:
    """Remove from the generation the whitespace that was left out of the prompt."""
    if not ws:
        return raw
    if raw.startswith(ws):
        return raw[len(ws):]
    return raw.lstrip(" \t") if not raw.startswith("\n") else raw


def build_prompt(ctx: Context, tokenizer, fmt: str) -> str:
    """The exact string the model sees for this context (stored with every completion).
    The prefix's trailing whitespace is left out (see ``split_indent``)."""
    ctx = Context(split_indent(ctx.prefix)[0], ctx.suffix, ctx.language, ctx.mode)
    fmt = format_for(fmt, ctx.resolved_mode())
    if fmt == "fim":
        pre, suf, mid = fim_tokens(tokenizer)
        return f"{pre}{ctx.prefix}{suf}{ctx.suffix}{mid}"
    if fmt == "chat":
        fence = _LANG_FENCE.get(ctx.language, "")
        if ctx.resolved_mode() == "block":
            ask = BLOCK_INSTRUCTION.format(language=ctx.language or "", fence=fence, code=ctx.prefix.rstrip("\n"))
            return tokenizer.apply_chat_template([{"role": "user", "content": ask}], tokenize=False,
                                                 add_generation_prompt=True)
        messages = [{"role": "user", "content": CHAT_INSTRUCTION.format(language=ctx.language or "")}]
        head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{head}```{fence}\n{ctx.prefix}"
    return ctx.prefix


def postprocess(raw: str, ctx: Context, fmt: str, *, final: bool = True) -> tuple[str, bool]:
    """Raw generation → suggestion, for the format the prompt was built in. Returns (text, complete)."""
    fmt = format_for(fmt, ctx.resolved_mode())
    if fmt == "chat" and ctx.resolved_mode() == "block":
        raw, replied = extract_reply(raw, ctx, final=final)
        text, done = trim(raw, ctx, final=final or replied)
        return text, done or replied
    return trim(raw, ctx, final=final)


_HEADER = re.compile(r"^\s*(async\s+def|def|class)\s+(\w+)")


def _skip_docstring(lines: list[str], i: int) -> int:
    """If lines[i] (after blanks) opens a docstring, the index after it closes; else i."""
    k = i
    while k < len(lines) and not lines[k].strip():
        k += 1
    if k >= len(lines):
        return i
    first = lines[k].strip()
    quote = first[:3]
    if quote not in ('"""', "'''"):
        return i
    if first.count(quote) >= 2 and len(first) >= 6:
        return k + 1
    for m in range(k + 1, len(lines)):
        if quote in lines[m]:
            return m + 1
    return len(lines)  # unterminated so far


def extract_reply(raw: str, ctx: Context, *, final: bool = True) -> tuple[str, bool]:
    """From a chat answer that rewrites the function, the part that follows the prefix.
    Returns (code after the prefix, whether the answer's code block is finished)."""
    start = raw.find("```")
    if start < 0:
        return "", final  # prose so far: nothing to suggest (yet)
    body_start = raw.find("\n", start)
    if body_start < 0:
        return "", False
    end = raw.find("```", body_start)
    code = raw[body_start + 1:end if end >= 0 else len(raw)]
    finished = end >= 0
    if not finished and not final:
        code = code[: code.rfind("\n") + 1]  # only whole lines
    lines = code.split("\n")
    prefix_lines = ctx.prefix.rstrip().split("\n")
    header_idx = max((i for i, ln in enumerate(prefix_lines) if _HEADER.match(ln)), default=None)
    if header_idx is None:
        return code, finished
    name = _HEADER.match(prefix_lines[header_idx]).group(2)
    at = next((i for i, ln in enumerate(lines) if (m := _HEADER.match(ln)) and m.group(2) == name), None)
    if at is None:
        if not finished and not final:
            return "", False  # the reply has not reached the function yet (imports come first): wait
        return ("" if any(_HEADER.match(ln) for ln in lines) else code), finished
    # skip what the prefix already has after its header (signature continuation, docstring)
    i, j = at + 1, header_idx + 1
    while i < len(lines) and j < len(prefix_lines):
        if not prefix_lines[j].strip():
            j += 1
        elif not lines[i].strip():
            i += 1
        elif lines[i].strip() == prefix_lines[j].strip():
            i, j = i + 1, j + 1
        else:
            break
    prefix_has_doc = any(ln.strip().startswith(('"""', "'''")) for ln in prefix_lines[header_idx + 1:])
    if prefix_has_doc:
        i = _skip_docstring(lines, i)  # the model reworded the docstring the prefix already has
    body = "\n".join(lines[i:])
    current = ctx.prefix.rsplit("\n", 1)[-1]
    if current and not current.strip() and body.startswith(current):
        body = body[len(current):]
    return body, finished


_FENCE = re.compile(r"^\s*```", re.M)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def trim(raw: str, ctx: Context, *, final: bool = True) -> tuple[str, bool]:
    """Cut a raw generation down to the suggestion. Returns (text, complete).

    ``complete`` is True once the text reached a natural end (so decoding can stop early); with
    ``final=False`` a half-written last line is kept pending instead of judged.
    """
    text = heal(raw, split_indent(ctx.prefix)[1])
    done = False
    fence = _FENCE.search(text)
    if fence:
        text, done = text[: fence.start()], True
    mode = ctx.resolved_mode()
    current = ctx.prefix.rsplit("\n", 1)[-1]
    if mode == "line":
        if current.strip() == "":
            text = text.lstrip("\n") if not ctx.suffix.startswith("\n") or current else text
        nl = text.find("\n")
        if nl >= 0 and text[:nl].strip():
            text, done = text[:nl], True
        elif nl >= 0 and not text[:nl].strip() and text[nl + 1 :].strip() and current.strip():
            # the line was already complete; a suggestion would start a new line: stop
            text, done = "", True
    else:
        text, block_done = _cut_block(text, ctx, final=final)
        done = done or block_done
    text = _drop_suffix_overlap(text, ctx.suffix)
    return text.rstrip() if (done or final) else text, done


def _block_base(prefix: str) -> int:
    """The least indentation a line of the block at the cursor may have: deeper than a header
    line ending in ':', else level with the last non-blank line."""
    lines = prefix.split("\n")
    for line in reversed(lines):
        if line.strip():
            return _indent(line) + 1 if line.rstrip().endswith(":") else _indent(line)
    return 0


def _cut_block(text: str, ctx: Context, *, final: bool) -> tuple[str, bool]:
    """Keep lines while they stay inside the block that starts at the cursor."""
    current = ctx.prefix.rsplit("\n", 1)[-1]
    in_indent = not current.strip()
    if in_indent and not current:
        text = text.lstrip("\n")
    base = _block_base(ctx.prefix)
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if i == 0 and not in_indent:
            kept.append(line)  # the rest of the cursor's own line
            continue
        if not line.strip():
            kept.append(line)
            continue
        if i == len(lines) - 1 and not final:
            break  # may still grow; judge it when complete
        indent = _indent(line) + (len(current) if i == 0 else 0)
        if indent < base:
            while kept and not kept[-1].strip():
                kept.pop()
            return "\n".join(kept), True
        kept.append(line)
    return "\n".join(kept), False


def _drop_suffix_overlap(text: str, suffix: str) -> str:
    """Never suggest what already follows the cursor: cut where the suffix's next non-empty
    line starts being repeated, and drop a trailing overlap with the rest of the current line."""
    rest_of_line = suffix.split("\n", 1)[0]
    if rest_of_line.strip() and text.endswith(rest_of_line):
        text = text[: len(text) - len(rest_of_line)]
    following = [ln.strip() for ln in suffix.split("\n")[1:] if ln.strip()]
    if following:
        lines = text.split("\n")
        for i, line in enumerate(lines):
            if i > 0 and line.strip() and line.strip() == following[0]:
                return "\n".join(lines[:i]).rstrip()
    return text
