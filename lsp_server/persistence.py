"""Persistence: how much of an accepted suggestion is still there 30 s, 2 min and 10 min later.

After ``plumline.accept`` the server finds the inserted text in the document and follows that
region through every later edit:

* incremental ``didChange`` edits move or resize it (``Region.apply_edit``): typing inside the
  region counts as part of it, text typed just before or after it does not, and deleted parts of it
  are gone;
* a full-text change, or a change on disk while the file is not open in the editor (watchdog),
  is mapped through a line diff of the old and new text (``map_through_diff``).

At each check the region's current text is compared with the accepted text
(``similarity``: ``difflib.SequenceMatcher`` ratio, 1.0 = untouched, 0.0 = gone).
"""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field


def similarity(original: str, now: str) -> float:
    if not original and not now:
        return 1.0
    return difflib.SequenceMatcher(None, original, now, autojunk=False).ratio()


def locate(text: str, source: str, expected: int) -> int | None:
    """The start of the occurrence of ``text`` in ``source`` closest to ``expected``."""
    if not text:
        return None
    best, pos = None, source.find(text)
    while pos >= 0:
        if best is None or abs(pos - expected) < abs(best - expected):
            best = pos
        if pos > expected:
            break
        pos = source.find(text, pos + 1)
    return best


@dataclass
class Region:
    start: int
    end: int

    def apply_edit(self, a: int, b: int, inserted: int) -> None:
        """The document's [a, b) was replaced by ``inserted`` characters."""
        delta = inserted - (b - a)
        if b <= self.start and not (a == b == self.start == self.end):
            self.start += delta
            self.end += delta
            return
        if a >= self.end:
            return
        start = self.start if a >= self.start else a + inserted
        end = self.end + delta if b <= self.end else (a if a >= self.start else a + inserted)
        self.start, self.end = start, max(start, end)


def map_through_diff(old: str, new: str, region: Region) -> Region:
    """Carry a region of ``old`` over to ``new`` through a line diff."""
    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    old_off = [0]
    for line in old_lines:
        old_off.append(old_off[-1] + len(line))
    new_off = [0]
    for line in new_lines:
        new_off.append(new_off[-1] + len(line))
    ops = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False).get_opcodes()

    def carry(pos: int, is_end: bool) -> int:
        for tag, i1, i2, j1, j2 in ops:
            lo, hi = old_off[i1], old_off[i2]
            if lo <= pos < hi or (pos == hi and i2 == len(old_lines)):
                if tag == "equal":
                    return new_off[j1] + (pos - lo)
                # inside a changed block: the region's edge goes to the block's edge in the new text
                return new_off[j2] if not is_end else new_off[j1] if pos == lo else new_off[j2]
        return len(new)

    start, end = carry(region.start, False), carry(region.end, True)
    if end < start:
        end = start
    return Region(start, end)


@dataclass
class Tracker:
    completion_id: str
    uri: str
    path: str | None
    text: str
    expected_offset: int
    accepted_at: float = field(default_factory=time.monotonic)
    region: Region | None = None
    known: str | None = None  # the document text the region refers to
    checks_left: list[float] = field(default_factory=list)

    def try_locate(self, source: str) -> bool:
        if self.region is None:
            start = locate(self.text, source, self.expected_offset)
            if start is not None:
                self.region = Region(start, start + len(self.text))
        if self.region is not None:
            self.known = source
        return self.region is not None

    def current_text(self, source: str | None) -> str | None:
        if self.region is None:
            return None
        source = source if source is not None else self.known
        if source is None:
            return None
        return source[self.region.start:self.region.end]
