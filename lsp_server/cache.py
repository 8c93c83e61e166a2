"""The suggestion cache: an LRU keyed on the document and the context (prefix and suffix), so that
asking again at the same place, or typing along a suggestion that is still shown, is answered
without the model.

The document is part of every key: two files with the same text around the cursor get a
suggestion each, under their own completion ids, so an event for one is never recorded (or its
persistence followed) in the other.

Typing along: the user was shown ``text`` after ``prefix`` and types its first characters. The new
prefix is ``prefix + typed`` with ``text.startswith(typed)`` and the same suffix; the server serves
``text[len(typed):]``, under the *same* completion id, so acceptance is counted against the
suggestion the model actually made.

Keys are hashes, not the texts, so a large file costs a few bytes per entry; comparing a prefix
with an entry means hashing ``prefix[:n]`` once per recent entry of that document (microseconds).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field


@dataclass
class Entry:
    uri: str
    prefix_len: int
    prefix_hash: int
    suffix_hash: int
    text: str
    completion_id: str
    offset: int  # character offset of the suggestion's start in the document when it was served
    meta: dict = field(default_factory=dict)


@dataclass
class Hit:
    entry: Entry
    remainder: str  # what is left to insert at the cursor
    typed: int  # characters of the suggestion the user already typed


class SuggestionCache:
    RECENT_PER_DOC = 8

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[tuple[str, int, int], Entry] = OrderedDict()
        self._recent: dict[str, deque[Entry]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._recent.clear()

    def put(self, entry: Entry) -> None:
        if self.size <= 0:
            return
        key = (entry.uri, entry.prefix_hash, entry.suffix_hash)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        recent = self._recent.setdefault(entry.uri, deque(maxlen=self.RECENT_PER_DOC))
        recent.append(entry)

    def get(self, uri: str, prefix: str, suffix: str) -> Hit | None:
        if self.size <= 0:
            return None
        suffix_hash = hash(suffix)
        key = (uri, hash(prefix), suffix_hash)
        exact = self._entries.get(key)
        if exact is not None:
            self._entries.move_to_end(key)
            return Hit(exact, exact.text, 0)
        for entry in reversed(self._recent.get(uri, ())):
            typed = len(prefix) - entry.prefix_len
            if entry.suffix_hash != suffix_hash or not 0 < typed < len(entry.text):
                continue
            if not entry.text.startswith(prefix[entry.prefix_len:]):
                continue
            if hash(prefix[: entry.prefix_len]) != entry.prefix_hash:
                continue
            remainder = entry.text[typed:]
            if remainder.strip():
                return Hit(entry, remainder, typed)
        return None
