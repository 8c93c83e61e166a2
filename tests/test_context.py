"""The cross-file context index (agent/context.py) on real files: what it finds, what it never
reads, what it costs, and that a request never waits for it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

import agent.context as context_mod
from agent.context import ContextConfig, ContextIndex, python_symbols, query_text
from agent.models.prompts import Context, RepoContext
from agent.privacy import DEFAULT_EXCLUDE

AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"  # the shape the scrubber recognises (split so no scanner flags this file)

HELPERS = '''"""Helpers for the shop."""

TAX_RATE = 0.2


def parse_config(path: str, *, strict: bool = False) -> dict:
    """Read the settings file at ``path``.

    Unknown keys raise when ``strict``.
    """
    with open(path) as fh:
        return {"secret_body_marker": fh.read()}


class Basket:
    """Items a customer is buying."""

    def __init__(self, owner: str):
        self.owner = owner
        self.items = []

    def add_item(self, name: str, price: float) -> None:
        self.items.append((name, price))

    def _private(self):
        pass
'''

MAIN = '''from shop.helpers import Basket, parse_config


def checkout(path):
    settings = parse_config(path)
    basket = Basket(settings["owner"])
    basket.'''


def workspace(tmp_path: Path, files: dict[str, str | bytes]) -> Path:
    root = tmp_path / "ws"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return root


def index_of(root: Path, **config) -> ContextIndex:
    index = ContextIndex(ContextConfig(**config), list(DEFAULT_EXCLUDE), [root])
    index.scan(nice=False)
    return index


@pytest.fixture
def shop(tmp_path) -> Path:
    return workspace(tmp_path, {"shop/__init__.py": "", "shop/helpers.py": HELPERS, "shop/main.py": MAIN + "\n"})


def test_symbols_the_prefix_names_come_as_signatures_and_docstrings(shop):
    index = index_of(shop)
    repo = index.retrieve("shop/main.py", MAIN)
    symbols = [c for c in repo.chunks if c.source == "symbol"]
    by_start = {c.start: c.text for c in symbols}
    assert set(by_start) == {5, 14}  # parse_config and Basket, both named before the cursor
    assert by_start[5].startswith("def parse_config(path: str, *, strict: bool = False) -> dict:")
    assert "Read the settings file" in by_start[5]
    assert "secret_body_marker" not in by_start[5]  # never the body
    assert "def add_item(self, name: str, price: float) -> None: ..." in by_start[14]
    assert "_private" not in by_start[14]
    assert repo.name == "ws" and repo.path == "shop/main.py"


def test_symbols_rank_before_windows(shop, tmp_path):
    index = index_of(shop)
    index.update_open("shop/helpers.py", HELPERS)
    scored = sorted(index.candidates("shop/main.py", MAIN), key=lambda sp: -sp[0])
    sources = [p.source for _, p in scored]
    assert sources[:2] == ["symbol", "symbol"] and set(sources[2:]) <= {"open", "import"}


def test_definitions_the_file_imports_come_even_when_not_named_near_the_cursor(shop):
    index = index_of(shop)
    far = "from shop.helpers import Basket, TAX_RATE\n" + "x = 1\n" * 40 + "def pay(total):\n    return "
    index.update_open("shop/pay.py", far)
    repo = index.retrieve("shop/pay.py", far)
    assert {c.text.split("\n")[0] for c in repo.chunks if c.source == "symbol"} == {"class Basket:", "TAX_RATE = 0.2"}


def test_a_name_in_a_string_or_comment_is_not_a_use(shop):
    index = index_of(shop)
    prose = 'def report():\n    # parse_config is slow\n    return "see Basket docs"\n'
    assert index.retrieve("shop/report.py", prose).chunks == ()
    assert index.retrieve("shop/report.py", prose + "cfg = parse_config(").chunks


def test_files_the_current_file_imports_are_context(shop):
    index = index_of(shop, symbols=False)  # (the symbols would rank first and cover the same lines)
    index.update_open("shop/main.py", MAIN)  # the editor opened it: its imports are read now
    assert "shop/helpers.py" in index.imported
    repo = index.retrieve("shop/main.py", MAIN + "add_item(")
    assert any(c.source == "import" and c.path == "shop/helpers.py" for c in repo.chunks)


def test_files_opened_in_the_editor_are_context_with_unsaved_edits(shop):
    index = index_of(shop, symbols=False)
    unsaved = "def apply_discount(basket, percent):\n    return [(n, p * (1 - percent)) for n, p in basket.items]\n"
    index.update_open("shop/discounts.py", unsaved)  # never saved: only the editor has it
    repo = index.retrieve("shop/main.py", "def total(basket, percent):\n    items = apply_discount(basket, percent)\n")
    assert any(c.source == "open" and "apply_discount" in c.text for c in repo.chunks)


def test_relative_imports_resolve(tmp_path):
    root = workspace(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from .b import helper\nfrom . import c\n",
                                "pkg/b.py": "def helper():\n    pass\n", "pkg/c.py": "X = 1\n"})
    index = index_of(root)
    assert set(index.imports_of("pkg/a.py")) == {"pkg/b.py", "pkg/c.py", "pkg/__init__.py"}


def test_a_package_workspace_resolves_imports_by_its_own_name(tmp_path):
    root = workspace(tmp_path, {"__init__.py": "", "console.py": "from rich.text import Text\n", "text.py": "class Text:\n    pass\n"})
    root = root.rename(root.parent / "rich")
    index = index_of(root)
    assert index.imports_of("console.py") == ["text.py"]


@pytest.mark.parametrize("off, source", [("symbols", "symbol"), ("imports", "import"), ("open_files", "open")])
def test_each_source_can_be_turned_off(shop, off, source):
    index = index_of(shop, **{off: False})
    index.update_open("shop/main.py", MAIN)
    index.update_open("shop/helpers.py", HELPERS)
    repo = index.retrieve("shop/main.py", MAIN + "add_item(")
    assert repo.chunks and all(c.source != source for c in repo.chunks)


def test_context_turned_off_means_none(shop):
    assert index_of(shop, enabled=False).retrieve("shop/main.py", MAIN) is None


def test_packing_keeps_to_the_budget_and_the_chunk_count(shop):
    estimate = lambda c: len(f"{c.path}\n{c.text}\n") // 3 + 1  # noqa: E731 - the count without a tokenizer
    everything = index_of(shop, budget_tokens=10_000).retrieve("shop/main.py", MAIN)
    assert len(everything.chunks) >= 2
    smallest = min(estimate(c) for c in everything.chunks)
    tight = index_of(shop, budget_tokens=smallest).retrieve("shop/main.py", MAIN)
    assert len(tight.chunks) == 1 and estimate(tight.chunks[0]) <= smallest
    assert len(index_of(shop, max_chunks=1).retrieve("shop/main.py", MAIN).chunks) == 1
    assert index_of(shop, budget_tokens=smallest - 1).retrieve("shop/main.py", MAIN).chunks == ()


def test_prompt_order_is_stable_while_a_name_is_typed(shop):
    index = index_of(shop)
    index.update_open("shop/helpers.py", HELPERS)
    first = index.retrieve("shop/main.py", MAIN + "add")
    assert index.retrieve("shop/main.py", MAIN + "add_it") == first
    assert [(c.path, c.start) for c in first.chunks] == sorted((c.path, c.start) for c in first.chunks)
    assert query_text("x = 1\nbasket.add_it") == "x = 1\nbasket."


@pytest.mark.parametrize("name, content, reason", [
    ("blob.py", b"\x00\x01binary" * 10, "binary"),
    ("latin.py", "caf\xe9 = 1\n".encode("latin-1"), "undecodable"),
    ("gen_pb2.py", b"# Generated by the protocol buffer compiler.  DO NOT EDIT!\nX = 1\n", "generated"),
    ("minified.py", b"x = [" + b"1, " * 2000 + b"]\n", "generated"),
    ("big.py", b"# big\n" + b"y = 1\n" * 200_000, "huge"),
    ("my_secret_things.py", b"def f():\n    pass\n", "excluded"),
    ("settings.py", f'AWS = "{AWS_KEY}"\n'.encode(), "secrets"),
])
def test_bad_files_are_skipped_with_a_counted_reason(tmp_path, name, content, reason):
    root = workspace(tmp_path, {name: content, "ok.py": "def fine():\n    pass\n"})
    stats = index_of(root).stats()
    assert stats.skipped == {reason: 1}
    assert stats.files == 1


def test_a_file_vanishing_between_listing_and_reading_is_counted(tmp_path):
    root = workspace(tmp_path, {"ok.py": "X = 1\n"})
    (root / "gone.py").symlink_to(root / "deleted-before-read.py")  # listed, then not there to read
    (root / "pipe.py").parent.mkdir(exist_ok=True)
    import os

    os.mkfifo(root / "pipe.py")  # reading a pipe would block the scan forever
    stats = index_of(root).stats()
    assert stats.skipped == {"vanished": 1, "unreadable": 1}


def test_a_secret_in_a_neighbour_never_enters_the_context(tmp_path):
    leaky = f'API = "{AWS_KEY}"\n\n\ndef parse_config(path):\n    """Reads it."""\n'
    root = workspace(tmp_path, {"leaky.py": leaky, "main.py": MAIN})
    index = index_of(root)
    index.update_open("leaky.py", leaky)  # open in the editor too
    index.update_open("main.py", MAIN)
    repo = index.retrieve("main.py", MAIN + "\nAPI = ")
    assert all(c.path != "leaky.py" for c in repo.chunks)
    assert AWS_KEY not in repo.to_json()
    assert index.stats().skipped == {"secrets": 1}


def test_the_index_is_bounded_by_max_files(tmp_path):
    files = {f"m{i:04d}.py": f"def func_{i}(x):\n    \"\"\"Doc {i}.\"\"\"\n    return x\n" for i in range(1200)}
    index = index_of(workspace(tmp_path, files), max_files=300)
    stats = index.stats()
    assert stats.files == 300 and stats.skipped == {"limit": 900}
    assert stats.symbols == 300 and stats.symbol_chars <= context_mod.SYMBOL_TEXT_MAX


def test_total_signature_text_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(context_mod, "SYMBOL_TEXT_MAX", 500)
    files = {f"m{i}.py": f"def func_{i}(x):\n    \"\"\"{'words ' * 10}\"\"\"\n" for i in range(20)}
    stats = index_of(workspace(tmp_path, files)).stats()
    assert stats.symbol_chars <= 500 and stats.skipped.get("limit", 0) > 0


def test_open_files_are_a_ring(tmp_path):
    index = index_of(workspace(tmp_path, {"x.py": ""}))
    for i in range(context_mod.OPEN_FILES + 5):
        index.update_open(f"f{i}.py", f"def f{i}():\n    pass\n")
    assert len(index.open) == context_mod.OPEN_FILES and "f0.py" not in index.open


def test_disk_changes_update_the_index(shop):
    index = index_of(shop)
    (shop / "shop/helpers.py").write_text("def renamed_helper():\n    pass\n")
    index.update_file(shop / "shop/helpers.py")
    assert "renamed_helper" in index.by_name and "parse_config" not in index.by_name
    (shop / "shop/helpers.py").unlink()
    index.update_file(shop / "shop/helpers.py")
    assert "renamed_helper" not in index.by_name and "shop/helpers.py" not in index.files


def test_a_request_never_waits_for_the_scan(shop, monkeypatch):
    """A slow disk holds the scan inside a read; a request still ranks and packs what is indexed."""
    reading, release = threading.Event(), threading.Event()
    real = context_mod.read_source

    def slow_disk(path, relpath, exclude):
        reading.set()
        release.wait(30)
        return real(path, relpath, exclude)

    monkeypatch.setattr(context_mod, "read_source", slow_disk)
    index = ContextIndex(ContextConfig(), [], [shop])
    scan = threading.Thread(target=index.scan, kwargs={"nice": False})
    scan.start()
    try:
        assert reading.wait(30)
        index.update_open("shop/other.py", "def add_item_twice(basket, name, price):\n    basket.add_item(name, price)\n")
        repo = index.retrieve("shop/main.py", MAIN + "add_item(")
        assert index.stats().scanning
        assert any("add_item_twice" in c.text for c in repo.chunks)
    finally:
        release.set()
        scan.join(30)


def test_python_symbols_survive_a_file_that_does_not_parse():
    text = 'def ok(a, b):\n    """Fine."""\n    return a +\n\nclass Half(\n    Base,\n):\n    x = (\n'
    names = [p.name for p in python_symbols("x.py", text)]
    assert names == ["ok", "Half"]


def test_stored_context_round_trips(shop):
    repo = index_of(shop).retrieve("shop/main.py", MAIN)
    assert RepoContext.from_data(json.loads(repo.to_json())) == repo
    assert Context("x", repo=repo).chunks == repo.chunks


def test_a_stopped_scan_indexes_nothing_more(shop):
    stop = threading.Event()
    stop.set()
    index = ContextIndex(ContextConfig(), [], [shop])
    assert index.scan(stop=stop, nice=False).files == 0 and not index.stats().scanning


def test_plumline_complete_uses_the_files_workspace(shop, tiny_env):
    """The CLI's one completion carries the context the server would choose, and logs it."""
    import os
    import subprocess
    import sys

    from agent.store import Store

    (shop / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    main = shop / "shop" / "main.py"
    line = MAIN.count("\n") + 1
    out = subprocess.run([sys.executable, "-m", "agent.cli", "complete", str(main), "--line", str(line),
                          "--col", str(len(MAIN.rsplit("\n", 1)[-1]) + 1), "--json"],
                         capture_output=True, text=True, env=dict(os.environ), cwd=shop, timeout=300)
    assert out.returncode == 0, out.stderr
    store = Store(tiny_env / "plumline.db")
    [row] = list(store.rows("select prompt, context from completions"))
    assert "def parse_config(path: str, *, strict: bool = False) -> dict:" in row["prompt"]
    assert {c["path"] for c in json.loads(row["context"])["chunks"]} == {"shop/helpers.py"}


def test_a_deleted_module_no_longer_resolves(shop):
    index = index_of(shop)
    assert index.imports_of("shop/main.py") == ["shop/helpers.py"]
    (shop / "shop/helpers.py").unlink()
    index.update_file(shop / "shop/helpers.py")
    assert index.imports_of("shop/main.py") == []


def test_context_bench_draws_first_uses_of_imported_names_and_never_import_lines(tmp_path):
    """bench/context.py's cross-file positions: the file's first use of a name imported from another
    file of the codebase (RepoBench's cross-file-first), or with ``any`` every use; lines of an
    import statement, multi-line ones too, are never positions."""
    from agent.context import ContextConfig, ContextIndex
    from bench.context import positions

    (tmp_path / "helpers.py").write_text("class Helper:\n    def run(self, x):\n        return x\n\n\nLIMIT = 3\n")
    body = "".join(f"value_{i} = {i}  # filler line number {i}\n" for i in range(12))
    (tmp_path / "main.py").write_text(  # the import after line 10, where positions may be drawn
        body + "from helpers import (\n    Helper,             # the helper class\n    LIMIT,  # and its limit\n)\n\n"
        + "first = Helper().run(value_1)\nsecond = Helper().run(value_2)\nlimit_value = LIMIT * 2\n")
    index = ContextIndex(ContextConfig(), [], [tmp_path])
    index.scan(nice=False)
    firsts = [p for p in positions(index, tmp_path, 10, 0, 0, "first") if p.kind == "cross"]
    anys = [p for p in positions(index, tmp_path, 10, 0, 0, "any") if p.kind == "cross"]
    assert sorted(p.truth for p in firsts) == ["first = Helper().run(value_1)", "limit_value = LIMIT * 2"]
    assert sorted(p.truth for p in anys) == ["first = Helper().run(value_1)", "limit_value = LIMIT * 2",
                                             "second = Helper().run(value_2)"]
    everything = positions(index, tmp_path, 10, 100, 0, "any")
    assert not any(p.truth.startswith(("Helper,", "LIMIT,", ")")) for p in everything)
