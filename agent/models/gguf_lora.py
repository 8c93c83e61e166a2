"""Export a PEFT LoRA adapter folder to a GGUF LoRA adapter that llama.cpp loads.

What: ``export_lora_gguf(adapter_dir, base_gguf, out)`` writes the file llama.cpp's own
``convert_lora_to_gguf.py`` would write (``general.type = "adapter"``, ``adapter.type = "lora"``,
``adapter.lora.alpha``, the base's ``general.architecture``, and one F32 pair
``blk.{i}.<tensor>.weight.lora_a`` / ``.lora_b`` per adapted matrix). ``adapter_gguf(adapter_dir,
base_gguf)`` returns the cached export inside the adapter folder (``adapter.gguf``), exporting only
when it is missing or older than the adapter or the base, so promotion and hot-swap can call it on
every swap.

Why: the trainer writes PEFT folders (``trainer/model.py``), llama.cpp serves GGUF. Exporting the
adapter, not merging it into the base, keeps the one quantized base on disk and lets llama.cpp swap
adapters without reloading the model.

How the format maps (checked against ``convert_lora_to_gguf.py`` and ``src/llama-adapter.cpp``):

* names: ``base_model.model.<module>.lora_A.weight`` → gguf's tensor name map for the base's
  architecture and block count (``model.layers.3.self_attn.q_proj`` → ``blk.3.attn_q``), then
  ``.weight.lora_a`` / ``.weight.lora_b``.
* orientation: PEFT's A is (r, in) and B is (out, r) in torch order; written as they are, GGUF sees
  A as ne = [in, r] and B as ne = [r, out], which is what llama.cpp checks against the base tensor
  (ne = [in, out]) and multiplies as ``B @ (A @ x)``.
* rope layout: ``convert_hf_to_gguf`` permutes the rows of ``q_proj``/``k_proj`` for ``llama``
  (not for ``qwen2``); B's rows get the same permutation, or the delta lands on the wrong rows.
* scale: llama.cpp applies ``lora_scale * adapter.lora.alpha / rank`` with rank = B's ne[0]
  (``llama_adapter_lora_weight::get_scale``; alpha 0 means "no alpha/r factor"), and
  llama-cpp-python passes ``Llama(lora_scale=1.0)`` as ``lora_scale``. PEFT applies
  ``lora_alpha / r``, or ``lora_alpha / sqrt(r)`` with ``use_rslora``: for rsLoRA we write
  ``alpha = lora_alpha * sqrt(r)`` so that alpha/r is PEFT's scale.

Run by hand::

    python -m agent.models.gguf_lora ADAPTER_DIR BASE.gguf [OUT.gguf]

Not supported (refused with ``LoraExportError``, naming the adapter and the reason): anything
other than plain LoRA on linear layers — ``modules_to_save`` (e.g. a reward head), DoRA, per-module
``rank_pattern``/``alpha_pattern``, trained biases, embedding LoRA, aLoRA, ``fan_in_fan_out``;
architectures whose q/k layout is not verified here (only ``llama`` and ``qwen2`` are); an adapter
whose modules or shapes do not match the base GGUF; a folder without ``adapter_config.json`` or
``adapter_model.safetensors`` (a ``.bin`` adapter must be re-saved with safetensors).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ADAPTER_GGUF = "adapter.gguf"
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"

# Architectures whose tensor layout is verified against llama.cpp by tests/test_gguf_lora.py, and
# whether convert_hf_to_gguf permutes their q/k rows for rope (LlamaModel.permute).
ROPE_PERMUTED = {"llama": True, "qwen2": False}

# adapter_config.json keys that change what the adapter computes in ways a GGUF LoRA cannot express.
_REFUSED = {
    "use_dora": "DoRA (use_dora) rescales the merged weight by a learned magnitude; llama.cpp applies plain B·A",
    "modules_to_save": "modules_to_save holds fully trained modules (e.g. a head), which a GGUF LoRA cannot carry",
    "rank_pattern": "per-module rank_pattern is not exported (llama.cpp has one alpha for all tensors)",
    "alpha_pattern": "per-module alpha_pattern is not exported (llama.cpp has one alpha for all tensors)",
    "lora_bias": "lora_bias adds a trained bias, which a GGUF LoRA cannot carry",
    "fan_in_fan_out": "fan_in_fan_out (Conv1D layers) is not exported",
    "alora_invocation_tokens": "activated LoRA (aLoRA) is not exported",
    "trainable_token_indices": "trainable token embeddings are not exported",
    "target_parameters": "LoRA on raw parameters (target_parameters) is not exported",
    "layer_replication": "layer_replication changes the model's layers; not exported",
}
_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<ab>[AB])\.weight$")


class LoraExportError(RuntimeError):
    """The adapter cannot be exported to a GGUF LoRA; the message names the adapter and the reason."""


@dataclass(frozen=True)
class BaseGGUF:
    """What the exporter needs from the base model's GGUF header."""

    arch: str
    n_blocks: int
    n_head: int
    n_head_kv: int
    shapes: dict[str, tuple[int, int]]  # tensor name → (out, in), torch order


def read_base(base_gguf: Path) -> BaseGGUF:
    """Architecture, block and head counts, and 2-D tensor shapes of a base GGUF (header only)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(base_gguf), "r")
    except (OSError, ValueError) as exc:
        raise LoraExportError(f"cannot read the base GGUF {base_gguf}: {exc}") from None

    def field(key: str):
        f = reader.fields.get(key)
        if f is None:
            raise LoraExportError(f"the base GGUF {base_gguf} has no {key}: not a model GGUF")
        return f.contents()

    arch = field("general.architecture")
    n_head = int(field(f"{arch}.attention.head_count"))
    kv = reader.fields.get(f"{arch}.attention.head_count_kv")
    shapes = {t.name: (int(t.shape[1]), int(t.shape[0])) for t in reader.tensors if len(t.shape) == 2}
    return BaseGGUF(arch=arch, n_blocks=int(field(f"{arch}.block_count")), n_head=n_head,
                    n_head_kv=int(kv.contents()) if kv is not None else n_head, shapes=shapes)


def _rope_permute_rows(b, n_head: int):
    """The row order convert_hf_to_gguf gives llama's q/k weights: within each head, the two rotary
    halves are interleaved (HF [h, 2, d/2] → GGUF [h, d/2, 2])."""
    out, r = b.shape
    return b.reshape(n_head, 2, out // n_head // 2, r).swapaxes(1, 2).reshape(out, r)


def _adapter_config(adapter_dir: Path) -> dict:
    who = f"adapter {adapter_dir}"
    if not (adapter_dir / CONFIG).is_file():
        raise LoraExportError(f"{who}: {CONFIG} is missing (not a PEFT adapter folder, or an interrupted save)")
    if not (adapter_dir / WEIGHTS).is_file():
        legacy = (adapter_dir / "adapter_model.bin").exists()
        hint = " (re-save it with save_pretrained(safe_serialization=True))" if legacy else ""
        raise LoraExportError(f"{who}: {WEIGHTS} is missing{hint}")
    try:
        cfg = json.loads((adapter_dir / CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise LoraExportError(f"{who}: {CONFIG} is unreadable ({exc}); the adapter is corrupt") from None
    if cfg.get("peft_type") != "LORA":
        raise LoraExportError(f"{who}: peft_type is {cfg.get('peft_type')!r}; only LoRA adapters are exported")
    for key, reason in _REFUSED.items():
        if cfg.get(key):
            raise LoraExportError(f"{who}: {reason}. Train without {key} to serve it with llama.cpp, "
                                  "or serve it with the transformers engine")
    if cfg.get("bias", "none") != "none":
        raise LoraExportError(f"{who}: bias={cfg['bias']!r} trains base-layer biases, which a GGUF LoRA cannot "
                              "carry; train with bias='none' or serve it with the transformers engine")
    if not cfg.get("lora_alpha") or not cfg.get("r"):
        raise LoraExportError(f"{who}: adapter_config.json needs a positive r and lora_alpha")
    return cfg


def export_lora_gguf(adapter_dir: Path, base_gguf: Path, out: Path) -> Path:
    """Write ``adapter_dir`` (a PEFT LoRA folder) as a GGUF LoRA for ``base_gguf`` at ``out``,
    atomically (a temporary file in the same folder, renamed into place). Returns ``out``."""
    import gguf
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    adapter_dir, out = Path(adapter_dir), Path(out)
    who = f"adapter {adapter_dir}"
    cfg = _adapter_config(adapter_dir)
    base = read_base(Path(base_gguf))
    if base.arch not in ROPE_PERMUTED:
        raise LoraExportError(f"{who}: the base {base_gguf} is {base.arch!r}; exporting LoRA is verified only for "
                              f"{', '.join(sorted(ROPE_PERMUTED))}. Serve it with the transformers engine")
    arch = {name: a for a, name in gguf.MODEL_ARCH_NAMES.items()}[base.arch]
    names = gguf.get_tensor_name_map(arch, base.n_blocks)
    try:
        weights = load_file(str(adapter_dir / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise LoraExportError(f"{who}: cannot read {WEIGHTS} ({exc}); the adapter is corrupt") from None

    pairs: dict[str, dict[str, object]] = {}
    for key, tensor in weights.items():
        m = _KEY.match(key)
        if m is None:
            raise LoraExportError(f"{who}: tensor {key} is not a LoRA A/B matrix of a linear layer; not exportable")
        pairs.setdefault(m["module"], {})[m["ab"]] = tensor
    if not pairs:
        raise LoraExportError(f"{who}: {WEIGHTS} holds no LoRA tensors")

    rank = int(cfg["r"])
    tensors: list[tuple[str, np.ndarray]] = []
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            raise LoraExportError(f"{who}: module {module} has lora_{''.join(ab)} only; the adapter is corrupt")
        gname = names.get_name(module)
        if gname is None or f"{gname}.weight" not in base.shapes:
            raise LoraExportError(f"{who}: module {module} has no matching weight in the base {base_gguf} "
                                  f"({base.arch}, {base.n_blocks} blocks): the adapter was trained on another base; "
                                  "export it against that base's GGUF")
        a = ab["A"].float().numpy()
        b = ab["B"].float().numpy()
        want = base.shapes[f"{gname}.weight"]
        if a.ndim != 2 or b.ndim != 2 or (b.shape[0], a.shape[1]) != want or a.shape[0] != rank or b.shape[1] != rank:
            raise LoraExportError(f"{who}: {module} has A {tuple(a.shape)} and B {tuple(b.shape)} (r={rank}), but the "
                                  f"base {base_gguf} has {gname} of shape (out, in) = {want}: the adapter was trained "
                                  "on another base; export it against that base's GGUF")
        if ROPE_PERMUTED[base.arch] and gname.endswith(("attn_q", "attn_k")):
            b = _rope_permute_rows(b, base.n_head if gname.endswith("attn_q") else base.n_head_kv)
        tensors.append((f"{gname}.weight.lora_a", np.ascontiguousarray(a, dtype=np.float32)))
        tensors.append((f"{gname}.weight.lora_b", np.ascontiguousarray(b, dtype=np.float32)))

    alpha = float(cfg["lora_alpha"]) * (math.sqrt(rank) if cfg.get("use_rslora") else 1.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(tmp, base.arch)
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_name(adapter_dir.name)
        for name, array in tensors:
            writer.add_tensor(name, array)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except OSError as exc:
        raise LoraExportError(f"{who}: cannot write {out}: {exc.strerror or exc}. Free disk space or make the "
                              "folder writable, then run again") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def adapter_gguf(adapter_dir: Path, base_gguf: Path) -> Path:
    """The adapter's GGUF LoRA (``adapter_dir / adapter.gguf``), exported now only if it is missing or
    older than the adapter's weights or config or the base GGUF; otherwise a few ``stat`` calls."""
    adapter_dir = Path(adapter_dir)
    out = adapter_dir / ADAPTER_GGUF
    sources = [adapter_dir / WEIGHTS, adapter_dir / CONFIG, Path(base_gguf)]
    try:
        newest = max(p.stat().st_mtime_ns for p in sources)
        if out.stat().st_mtime_ns >= newest:
            return out
    except FileNotFoundError:
        pass  # no export yet, or a source is missing: export_lora_gguf says which
    return export_lora_gguf(adapter_dir, Path(base_gguf), out)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m agent.models.gguf_lora ADAPTER_DIR BASE.gguf [OUT.gguf]")
    adapter, base_file = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        print(export_lora_gguf(adapter, base_file, Path(sys.argv[3])) if len(sys.argv) == 4
              else adapter_gguf(adapter, base_file))
    except LoraExportError as err:
        sys.exit(str(err))
