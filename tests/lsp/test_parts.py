"""The server's pure parts, in process: post-filters, the suggestion cache, persistence regions."""

from __future__ import annotations

import pytest

from lsp_server.cache import Entry, SuggestionCache
from lsp_server.filters import post_filter
from lsp_server.persistence import Region, map_through_diff, similarity


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_whitespace_only_suggestions_are_dropped(text):
    assert post_filter(text, "x = ", "\n", "line") is None


def test_suggestion_repeating_the_suffix_is_dropped():
    assert post_filter("return a", "def f(a):\n    ", "return a\n", "line") is None


def test_suggestion_repeating_the_line_above_is_dropped():
    assert post_filter("y = 2", "y = 2\n", "\n", "line") is None


def test_suggestion_repeating_itself_is_cut():
    assert post_filter("name name name name", "if", "\n", "line") == "name"
    assert post_filter("a = 1\na = 1\na = 1", "def f():\n    ", "\n", "block") == "a = 1"


def test_line_suggestion_never_spans_lines():
    assert post_filter("x + 1\nprint(x)", "y = ", "\n", "line") == "x + 1"


def test_brackets_are_balanced():
    assert post_filter("f(a, b))", "y = ", "\n", "line") == "f(a, b)"
    assert post_filter("f(a, [b", "y = ", "\n", "line") == "f(a, [b])"
    assert post_filter("a, b", "y = f(", ")\n", "line") == "a, b"


def test_indentation_follows_the_file():
    text = post_filter("x = 1\n\treturn x", "def f():\n    pass\n\ndef g():\n    ", "\n", "block")
    assert text == "x = 1\n    return x"


def _entry(prefix, suffix, text, cid="c1", uri="u"):
    return Entry(uri, len(prefix), hash(prefix), hash(suffix), text, cid, len(prefix))


def test_cache_serves_the_remainder_when_typing_along():
    cache = SuggestionCache(4)
    cache.put(_entry("x = ", "\n", "foo(bar)"))
    hit = cache.get("u", "x = fo", "\n")
    assert hit.remainder == "o(bar)" and hit.entry.completion_id == "c1"
    assert cache.get("u", "x = fx", "\n") is None
    assert cache.get("u", "x = ", "\n").remainder == "foo(bar)"


def test_cache_is_bounded():
    cache = SuggestionCache(2)
    for i in range(3):
        cache.put(_entry(f"p{i}", "", "t", f"c{i}"))
    assert len(cache) == 2 and cache.get("u", "p0", "") is None and cache.get("u", "p2", "") is not None


def test_cache_never_serves_another_documents_suggestion():
    cache = SuggestionCache(4)
    cache.put(_entry("x = ", "\n", "foo(bar)", "from-a", uri="file:///a.py"))
    assert cache.get("file:///b.py", "x = ", "\n") is None      # same text around the cursor, other file
    assert cache.get("file:///b.py", "x = fo", "\n") is None    # nor typing along it there
    cache.put(_entry("x = ", "\n", "foo(bar)", "from-b", uri="file:///b.py"))
    assert cache.get("file:///a.py", "x = ", "\n").entry.completion_id == "from-a"
    assert cache.get("file:///b.py", "x = ", "\n").entry.completion_id == "from-b"


def test_region_follows_edits():
    region = Region(10, 20)
    region.apply_edit(0, 0, 5)  # typed before it
    assert (region.start, region.end) == (15, 25)
    region.apply_edit(17, 19, 0)  # deleted inside it
    assert (region.start, region.end) == (15, 23)
    region.apply_edit(23, 23, 4)  # typed right after it
    assert (region.start, region.end) == (15, 23)
    region.apply_edit(0, 30, 1)  # all of it replaced
    assert region.end - region.start == 0


def test_region_is_carried_through_a_disk_rewrite():
    old = "a = 1\nb = suggestion()\nc = 3\n"
    new = "# header\na = 1\nb = suggestion()\nc = 3\n"
    start = old.index("suggestion")
    region = map_through_diff(old, new, Region(start, start + len("suggestion()")))
    assert new[region.start:region.end] == "suggestion()"


def test_similarity_is_one_when_untouched_and_zero_when_gone():
    assert similarity("return x", "return x") == 1.0
    assert similarity("return x", "") == 0.0
