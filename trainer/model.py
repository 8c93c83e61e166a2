"""The model side every training method shares: which base, which device and dtype, the LoRA
config, and continuing from the adapter serving now.

* dtype: ``model.dtype`` as the server resolves it (``agent.models.hardware.choose_dtype``): bf16 on
  CUDA and on CPUs with AMX/AVX-512-BF16, fp32 elsewhere, so training runs in the serving dtype.
* Multi-GPU: the same code under ``accelerate launch`` (the Trainer reads the distributed state; we
  never place the model ourselves then).
* Continuing: the current adapter is loaded *trainable* (``is_trainable=True``). TRL then keeps a
  frozen copy of it as the DPO/KTO reference, i.e. the reference is the policy that sampled the
  data (on-policy), with no second copy of the base weights. From the base model, TRL's reference
  is the base with the adapter disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agent.adapters import Adapter, AdapterError, base_fingerprint, check_adapter_dir, check_base_model, current_adapter
from agent.models import resolve_model_path
from agent.models.hardware import choose_dtype
from agent.models.prompts import detect_format

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class Base:
    """The base model as training sees it."""

    path: str          # local folder (or hub id) the weights load from
    name: str          # the model as configured (its path), recorded for people to read
    fingerprint: str   # what data and adapters are matched on (agent.adapters.base_fingerprint)
    fmt: str           # serving prompt format: fim / chat / plain, or per mode (line=fim;block=chat)
    tokenizer: object
    device: str
    dtype: str = "float32"  # torch dtype name, resolved from model.dtype and the hardware


def load_base(config, say=print) -> Base:
    from transformers import AutoTokenizer

    path = resolve_model_path(config.model, config.cache_dir, say=say)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = device_for(config)
    return Base(path=path, name=path, fingerprint=base_fingerprint(path), fmt=detect_format(tok, config.model.prompt_format), tokenizer=tok,
                device=device, dtype=choose_dtype(config.model.dtype, device).name)


def device_for(config) -> str:
    import torch

    want = config.model.device
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return want


def use_bf16(base: Base) -> bool:
    return base.dtype == "bfloat16"


def lora_config(train, *, task_type: str = "CAUSAL_LM", modules_to_save: list[str] | None = None):
    from peft import LoraConfig

    return LoraConfig(r=train.lora_r, lora_alpha=train.lora_alpha, lora_dropout=0.0, target_modules=LORA_TARGETS,
                      task_type=task_type, modules_to_save=modules_to_save)


def parent_adapter(config, base: Base) -> Adapter | None:
    """The adapter to continue from (the serving one), or None to start from the base. Refuses an
    adapter trained on another base or a corrupt one, with the reason."""
    current = current_adapter(config.adapters_dir)
    if current.path is None:
        return None
    check_adapter_dir(current.path)
    check_base_model(current, base.fingerprint)
    return current


def policy_model(config, base: Base, parent: Adapter | None):
    """The trainable policy: the base (fresh LoRA comes from ``peft_config``) or base + parent adapter."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, base.dtype)
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=dtype)
    if parent is None:
        return model, lora_config(config.train)
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(parent.path), is_trainable=True), None
    except (OSError, ValueError, RuntimeError) as exc:
        raise AdapterError(f"cannot continue from adapter {parent.id}: {exc}") from None


def reward_model(config, base: Base):
    """A sequence-classification head on the base (num_labels=1) + LoRA; the head is trained in full."""
    import torch
    from transformers import AutoModelForSequenceClassification

    dtype = getattr(torch, base.dtype)
    model = AutoModelForSequenceClassification.from_pretrained(base.path, num_labels=1, dtype=dtype)
    model.config.pad_token_id = base.tokenizer.pad_token_id
    return model, lora_config(config.train, task_type="SEQ_CLS", modules_to_save=["score"])


def lora_state(model) -> dict:
    """LoRA parameter name → tensor copy (for tests and sanity checks)."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def is_adapter_folder(path: Path) -> bool:
    try:
        check_adapter_dir(path)
        return True
    except AdapterError:
        return False
