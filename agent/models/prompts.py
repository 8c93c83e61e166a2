"""Prompt formats and trimming: how an editor position becomes model input, and model output
becomes a suggestion.

Formats, picked by what the tokenizer offers (``detect_format``; ``prefill`` for a model with a
chat template and FIM tokens, like the embedded Qwen2.5-Coder-Instruct, as measured), or one per
mode written ``line=fim;block=prefill`` (``model.prompt_format``):

* ``fim`` – the model has fill-in-the-middle tokens (StarCoder/Qwen/DeepSeek/CodeLlama styles):
  prefix and suffix both go in.
* ``chat`` – an instruct model with a chat template (SmolLM2; Qwen2.5-Coder-Instruct for blocks).
  For a line, the assistant turn is *prefilled* with an opening code fence and the prefix, so the
  model continues the line. For a block (a function body), the model is asked to complete the
  code and answers with the whole function; ``extract_reply`` aligns its answer with the prefix
  and keeps what comes after it. (Measured on SmolLM2-135M: prefilled block prompts end the fence
  or start a new ``def`` almost every time; asked plainly, it writes a body.)
* ``prefill`` – the chat template with the assistant's turn prefilled with an opening fence and
  the code up to the cursor, for blocks as for lines (``chat`` does this for lines): the model
  continues the body at once instead of rewriting the header and docstring first.
* ``plain`` – a base model: the prefix as it is.

``trim`` is applied to every raw generation (and doubles as the early-stop test while decoding):
it cuts at a closing fence, at the end of the line in line mode, at the end of the block in block
mode, and never repeats what already follows the cursor.

Cross-file context (``Context.repo``, chosen by ``agent.context``) comes *first* in every format,
so the stable part of the prompt is its start and an engine's prefix cache survives keystrokes:

* ``fim`` with repository tokens (Qwen2.5-Coder's ``<|repo_name|>``/``<|file_sep|>``, StarCoder2's
  ``<repo_name>``/``<file_sep>``): the repository-level format those models were trained on,
  ``<|repo_name|>NAME\n<|file_sep|>PATH\nCODE\n...<|file_sep|>CURRENT\n<|fim_prefix|>...``;
* ``chat``: in the user message, before the instruction (and, for a block, before the code);
* ``fim`` without repository tokens, and ``plain``: each file as a comment line naming it, then its
  code, before the prefix.

With no chunks the prompt is exactly the context-free one. ``fit_window`` spends one budget
(``model.context_tokens``) on both: see its docstring for the split.
"""

from __future__ import annotations

import dataclasses
import json
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


@dataclass(frozen=True)
class Chunk:
    """A piece of another file of the workspace, put in the prompt (``agent.context`` chose it)."""

    path: str            # relative to the workspace
    text: str            # already scrubbed of secrets
    start: int = 0       # its first line in that file (0-based)
    source: str = ""     # "open", "import" or "symbol": which context source found it
    score: float = 0.0   # its rank (higher = more similar to the text around the cursor)


@dataclass(frozen=True)
class RepoContext:
    """The cross-file context of one prompt: the workspace's name, the current file's path, and the
    chunks in prompt order. Stored with every completion (``to_json``) and carried into the tasks
    made from it, so training and sampling rebuild exactly the serving prompt."""

    name: str = ""
    path: str = ""
    chunks: tuple[Chunk, ...] = ()

    def keeping(self, chunks) -> "RepoContext":
        return RepoContext(self.name, self.path, tuple(chunks))

    def to_dict(self) -> dict:
        return {"name": self.name, "path": self.path, "chunks": [dataclasses.asdict(c) for c in self.chunks]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_data(cls, data) -> "RepoContext | None":
        """From ``to_dict``/``to_json`` output (a dict or its JSON text); None for nothing or junk."""
        if isinstance(data, str):
            try:
                data = json.loads(data) if data.strip() else None
            except ValueError:
                return None
        if not isinstance(data, dict):
            return None
        known = {f.name for f in dataclasses.fields(Chunk)}
        chunks = tuple(Chunk(**{k: v for k, v in c.items() if k in known}) for c in data.get("chunks") or []
                       if isinstance(c, dict) and isinstance(c.get("path"), str) and isinstance(c.get("text"), str))
        return cls(str(data.get("name") or ""), str(data.get("path") or ""), chunks)


@dataclass
class Context:
    """What the editor gives us: the text before and after the cursor, and the cross-file context
    chosen for it (``repo``; None or no chunks: the current file only)."""

    prefix: str
    suffix: str = ""
    language: str = "python"
    mode: str = "auto"  # "line", "block" or "auto" (decided from the position)
    repo: RepoContext | None = None

    @property
    def chunks(self) -> tuple[Chunk, ...]:
        return self.repo.chunks if self.repo is not None else ()

    def resolved_mode(self) -> str:
        return self.mode if self.mode in ("line", "block") else decide_mode(self.prefix, self.suffix)

    def resolved(self) -> "Context":
        """This context with its mode decided ("line" or "block"), everything else (the cross-file
        context too) kept: what every engine completes."""
        return dataclasses.replace(self, mode=self.resolved_mode())


WINDOW_STEP_LINES = 32  # the prompt window's first line moves in steps of this many lines


def keep_by_rank(scores: list[float], sizes: list[int], allow: int, max_n: int | None = None,
                 clash=None) -> set[int]:
    """Which items to keep: by score (ties: the earlier), each whole if it still fits in ``allow``
    (and ``clash(i, j)`` is false for every kept j), at most ``max_n``. The one packing rule, for
    ``agent.context`` and ``fit_window`` alike."""
    kept: list[int] = []
    used = 0
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if max_n is not None and len(kept) >= max_n:
            break
        if used + sizes[i] > allow or (clash is not None and any(clash(i, j) for j in kept)):
            continue
        kept.append(i)
        used += sizes[i]
    return set(kept)


LOCAL_SHARE = 2  # the current file's window keeps at least 1/LOCAL_SHARE of the budget (or all it needs)


def fit_window(ctx: Context, tokenizer, budget: int) -> Context:
    """Fit the cross-file context and prefix + suffix into one token budget (``model.context_tokens``).

    The split: the current file comes first. Its window keeps what it needs, up to half the budget
    (``LOCAL_SHARE``); the cross-file chunks get the rest (they arrive already packed to
    ``context.budget_tokens``); when they do not all fit, they are kept whole by rank while they fit.
    Whatever the chunks leave goes back to the current file. So a short file lends its unused tokens
    to the context, a long one never gets less than half, and with no chunks nothing changes.

    Then, in the current file's share: the end of the prefix (≥ 3/4 of it), starting on a line whose
    number is a multiple of WINDOW_STEP_LINES so the window (and every engine's prefix KV cache)
    stays put while the user types; the start of the suffix. Every engine calls this, so they all
    build the same prompt for the same position."""
    count = lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]) if s else 0  # noqa: E731
    repo = ctx.repo
    if repo is not None and repo.chunks:
        local_need = count(ctx.prefix) + min(count(ctx.suffix), budget // 4)
        allow = budget - min(local_need, budget // LOCAL_SHARE)
        sizes = [count(chunk_text(c)) for c in repo.chunks]
        kept = keep_by_rank([c.score for c in repo.chunks], sizes, allow)
        repo = repo.keeping(c for i, c in enumerate(repo.chunks) if i in kept)  # still in prompt order
        budget -= sum(sizes[i] for i in kept)
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
    return Context(prefix=str(prefix), suffix=suffix, language=ctx.language, mode=ctx.mode, repo=repo)


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


# A model with both FIM tokens and a chat template (Qwen2.5-Coder-Instruct) gets the prefilled chat
# turn for lines and blocks. Measured on Qwen2.5-Coder-0.5B (bench/results/humaneval.json,
# formats.json): blocks, HumanEval greedy through plumline's sandbox, all 164: prefill 73 (44.5%),
# chat 69 (42.1%) with 2.3x the generation time (it rewrites the header and docstring first);
# on HumanEval/0-19 fim 12/20 against prefill 16/20. Lines, 24 held-out stdlib lines: exact match
# 3/24 for both, edit similarity 0.52 prefill against 0.45 fim, p50 3.6 s against 4.3 s: FIM puts
# the suffix after the prefix, so every keystroke re-evaluates it, while a prefilled prompt ends
# at the cursor and typing along only extends the cached prefix.
MIXED_DEFAULT = "prefill"
FORMATS = ("fim", "chat", "prefill", "plain")


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


REPO_TOKENS = [("<|repo_name|>", "<|file_sep|>"), ("<repo_name>", "<file_sep>")]  # Qwen2.5-Coder, StarCoder2
CHAT_CONTEXT_HEADER = "Code from other files of this repository:"
_COMMENT = {"python": "#", "shell": "#", "lua": "--", "plaintext": "#"}  # else "//"


def chunk_text(chunk: Chunk) -> str:
    """What one chunk costs in a prompt, as ``fit_window`` counts it: its path line and its code."""
    return f"{chunk.path}\n{chunk.text}\n"


def repo_files(repo: RepoContext) -> list[tuple[str, str]]:
    """(path, code) per file, in prompt order: a file's chunks in line order, ``...`` where lines
    between them are left out."""
    by_path: dict[str, list[Chunk]] = {}
    for c in repo.chunks:
        by_path.setdefault(c.path, []).append(c)
    files = []
    for path, chunks in by_path.items():
        parts, end = [], None
        for c in sorted(chunks, key=lambda c: c.start):
            if end is not None and c.start > end:
                parts.append("...")
            parts.append(c.text.rstrip("\n"))
            end = c.start + c.text.rstrip("\n").count("\n") + 1
        files.append((path, "\n".join(parts)))
    return files


def repo_tokens(tokenizer) -> tuple[str, str] | None:
    vocab = tokenizer.get_vocab()
    return next((pair for pair in REPO_TOKENS if all(t in vocab for t in pair)), None)


def _repo_head(ctx: Context, tokenizer, fmt: str) -> str:
    """The cross-file part that precedes the current file, in format ``fmt`` ("" without chunks)."""
    if not ctx.chunks:
        return ""
    files = repo_files(ctx.repo)
    current = ctx.repo.path or "untitled"
    if fmt in ("chat", "prefill"):
        fence = _LANG_FENCE.get(ctx.language, "")
        body = "".join(f"{path}:\n```{fence}\n{code}\n```\n\n" for path, code in files)
        return f"{CHAT_CONTEXT_HEADER}\n\n{body}"
    tokens = repo_tokens(tokenizer) if fmt == "fim" else None
    if tokens:
        name, sep = tokens
        return f"{name}{ctx.repo.name}\n" + "".join(f"{sep}{p}\n{code}\n" for p, code in files) + f"{sep}{current}\n"
    mark = _COMMENT.get(ctx.language, "//")
    return "".join(f"{mark} {p}\n{code}\n\n" for p, code in files) + f"{mark} {current}\n"


def build_prompt(ctx: Context, tokenizer, fmt: str) -> str:
    """The exact string the model sees for this context (stored with every completion).
    The prefix's trailing whitespace is left out (see ``split_indent``); the cross-file context, if
    any, comes first (see the module docstring)."""
    ctx = dataclasses.replace(ctx, prefix=split_indent(ctx.prefix)[0])
    fmt = format_for(fmt, ctx.resolved_mode())
    head = _repo_head(ctx, tokenizer, fmt)
    if fmt == "fim":
        pre, suf, mid = fim_tokens(tokenizer)
        return f"{head}{pre}{ctx.prefix}{suf}{ctx.suffix}{mid}"
    if fmt in ("chat", "prefill"):
        fence = _LANG_FENCE.get(ctx.language, "")
        if fmt == "chat" and ctx.resolved_mode() == "block":
            ask = BLOCK_INSTRUCTION.format(language=ctx.language or "", fence=fence, code=ctx.prefix.rstrip("\n"))
            return tokenizer.apply_chat_template([{"role": "user", "content": head + ask}], tokenize=False,
                                                 add_generation_prompt=True)
        messages = [{"role": "user", "content": head + CHAT_INSTRUCTION.format(language=ctx.language or "")}]
        turn = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{turn}```{fence}\n{ctx.prefix}"
    return head + ctx.prefix


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
