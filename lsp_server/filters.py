"""Post-filters: the last word on what the editor is shown.

The backend's ``prompts.trim`` already cuts a generation at the end of the line or block and drops
an overlap with the suffix. These checks run on its result, on the server side, because they are
about the editor position rather than the model:

* empty or whitespace-only suggestions are dropped;
* single line vs block follows the position (``Context.resolved_mode``): a line suggestion never
  spans lines;
* a suggestion that repeats the suffix or the line above is dropped; one that repeats itself is
  cut at the first repetition;
* brackets are balanced: a closer the suggestion did not open (and the line before the cursor did
  not leave open) ends the suggestion; brackets a line suggestion opens are closed at its end
  unless the rest of the line closes them;
* indentation fits the cursor: leading tabs follow the file's style, and block lines are never
  dedented past the cursor's block.

Each check is a small function so a test can name the guarantee it checks.
"""

from __future__ import annotations

import re

OPEN, CLOSE = "([{", ")]}"
PAIR = dict(zip(CLOSE, OPEN))
MATCH = dict(zip(OPEN, CLOSE))
_STRING = re.compile(r"""("(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?)""")


def _current_line(prefix: str) -> str:
    return prefix.rsplit("\n", 1)[-1]


def _line_above(prefix: str) -> str:
    lines = prefix.split("\n")[:-1]
    for line in reversed(lines):
        if line.strip():
            return line
    return ""


def fit_mode(text: str, mode: str) -> str:
    """A line suggestion ends at the first newline."""
    if mode == "line":
        return text.split("\n", 1)[0]
    return text


def repeats_suffix(text: str, suffix: str) -> bool:
    """True when the suggestion only re-types what already follows the cursor."""
    body = text.strip()
    if not body:
        return False
    rest = suffix.lstrip()
    return rest.startswith(body)


def repeats_line_above(text: str, prefix: str) -> bool:
    """True when the cursor's line would become a copy of the line above."""
    first = text.split("\n", 1)[0]
    above = _line_above(prefix).strip()
    return bool(above) and (_current_line(prefix) + first).strip() == above


def cut_self_repetition(text: str) -> str:
    """Stop at the first line that repeats the line before it, and collapse a first line that is
    one chunk repeated (3 times for a word, 8 for punctuation, so `# ====` rulers survive)."""
    lines = text.split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() and lines[i].strip() == lines[i - 1].strip():
            text = "\n".join(lines[:i]).rstrip()
            break
    first, sep, rest = text.partition("\n")
    n = len(first)
    for period in range(1, n // 3 + 1):
        chunk = first[:period]
        times = 3 if any(c.isalnum() for c in chunk) else 8
        if chunk.strip() and first.startswith(chunk * times):
            return chunk.rstrip()
    return text


def _scan(code: str, stack: list[str]) -> int | None:
    """Push/pop brackets of ``code`` (strings skipped) onto ``stack``; return the index of the first
    closer that matches nothing on the stack, or None."""
    i = 0
    while i < len(code):
        m = _STRING.match(code, i)
        if m and m.end() > i:
            i = m.end()
            continue
        ch = code[i]
        if ch == "#":  # a comment runs to the end of the line
            nl = code.find("\n", i)
            if nl < 0:
                return None
            i = nl
            continue
        if ch in OPEN:
            stack.append(ch)
        elif ch in CLOSE:
            if not stack or stack[-1] != PAIR[ch]:
                return i
            stack.pop()
        i += 1
    return None


def balance_brackets(text: str, prefix: str, suffix: str, mode: str) -> str:
    """Cut at a closer nothing opened; in line mode, close what the suggestion left open unless the
    rest of the line does."""
    stack: list[str] = []
    _scan(_current_line(prefix), stack)
    base = len(stack)
    bad = _scan(text, stack)
    if bad is not None:
        text = text[:bad].rstrip()
        stack = []
        _scan(_current_line(prefix), stack)
        _scan(text, stack)
    if mode == "line" and len(stack) > base:
        rest = suffix.split("\n", 1)[0]
        opened = stack[base:]
        closers = "".join(MATCH[c] for c in reversed(opened))
        if not rest.strip().startswith(closers[:1] or "\0") and text.strip():
            text = text + closers
    return text


def fit_indentation(text: str, prefix: str) -> str:
    """Follow the file's indentation style (tabs vs spaces) in the suggestion's leading whitespace."""
    uses_tabs = bool(re.search(r"^\t", prefix, re.M))
    uses_spaces = bool(re.search(r"^ {2,}\S", prefix, re.M))
    lines = text.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        lead = line[: len(line) - len(line.lstrip(" \t"))]
        if uses_spaces and not uses_tabs and "\t" in lead:
            line = lead.replace("\t", "    ") + line[len(lead):]
        elif uses_tabs and not uses_spaces and lead.startswith("    "):
            line = lead.replace("    ", "\t") + line[len(lead):]
        out.append(line)
    return "\n".join(out)


def post_filter(text: str, prefix: str, suffix: str, mode: str) -> str | None:
    """The suggestion to show, or None when nothing worth showing is left."""
    text = fit_mode(text, mode).rstrip()
    text = cut_self_repetition(text)
    text = balance_brackets(text, prefix, suffix, mode)
    text = fit_indentation(text, prefix)
    if not text.strip():
        return None
    if repeats_suffix(text, suffix) or repeats_line_above(text, prefix):
        return None
    return text
