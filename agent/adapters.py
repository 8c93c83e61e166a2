"""The adapter registry: versioned LoRA adapters on disk, and which one serves.

Layout under the data home::

    adapters/
      <adapter_id>/          a PEFT LoRA folder (adapter_config.json, adapter_model.safetensors)
        plumline.json        metadata: parent, method, base model, data window, figures
      CURRENT                the id serving now ("base" or absent = no adapter)

Promotion writes ``CURRENT`` atomically (temp file + ``os.replace``), so a reader sees the old id or
the new one, never half of either. The language server watches this folder (watchdog) and
hot-swaps. History (who was current when) lives in the store's ``adapters`` table.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agent.models import BASE_ADAPTER

CURRENT_FILE = "CURRENT"
META_FILE = "plumline.json"


class AdapterError(RuntimeError):
    pass


@dataclass
class Adapter:
    id: str
    path: Path | None  # None for the base model

    @property
    def meta(self) -> dict:
        if self.path is None:
            return {}
        try:
            return json.loads((self.path / META_FILE).read_text())
        except (OSError, ValueError):
            return {}


def check_adapter_dir(path: Path) -> None:
    """Raise AdapterError unless ``path`` is a loadable PEFT adapter folder."""
    if not path.is_dir():
        raise AdapterError(f"adapter folder {path} does not exist")
    cfg = path / "adapter_config.json"
    if not cfg.exists():
        raise AdapterError(f"{path} has no adapter_config.json: not a PEFT adapter (or an interrupted save)")
    try:
        json.loads(cfg.read_text())
    except ValueError as exc:
        raise AdapterError(f"{cfg} is not valid JSON ({exc}): the adapter is corrupt") from None
    if not any(path.glob("adapter_model.*")):
        raise AdapterError(f"{path} has no adapter_model weights: the adapter is corrupt")


def current_adapter(adapters_dir: Path) -> Adapter:
    """The adapter serving now; the base model when none was promoted."""
    try:
        adapter_id = (adapters_dir / CURRENT_FILE).read_text().strip()
    except OSError:
        return Adapter(BASE_ADAPTER, None)
    if not adapter_id or adapter_id == BASE_ADAPTER:
        return Adapter(BASE_ADAPTER, None)
    return Adapter(adapter_id, adapters_dir / adapter_id)


def set_current(adapters_dir: Path, adapter_id: str) -> None:
    """Atomically make ``adapter_id`` (or 'base') the serving adapter."""
    if adapter_id != BASE_ADAPTER:
        check_adapter_dir(adapters_dir / adapter_id)
    adapters_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=adapters_dir, prefix=".CURRENT-")
    with os.fdopen(fd, "w") as fh:
        fh.write(adapter_id + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, adapters_dir / CURRENT_FILE)


# -- the registry: metadata, history, promotion, rollback ------------------------------------------
#
# Metadata (``plumline.json``) is written by the trainer beside the PEFT files: id, parent, method,
# base_model, base_fingerprint, data_window, metrics, created_at. ``HISTORY`` (JSON lines) records
# every change of CURRENT, so rollback works from the folder alone; the store's ``adapters`` table
# mirrors statuses (candidate / current / retired / rejected / broken) for `plumline stats`.

HISTORY_FILE = "HISTORY"

WEIGHT_READS = 16         # small reads spread over each weight file (see base_fingerprint)
WEIGHT_READ_BYTES = 4096


def base_fingerprint(model_path: str | Path) -> str:
    """A short id of a base model, so an adapter (or training data) from one base is never used
    with another. Two parts, ``<layout>-<weights>``: layout hashes the config and the names and sizes
    of the weight and tokenizer files; weights hashes 16 reads of 4 KiB spread over each weight file,
    so two bases with the same architecture but different weights differ too (a few reads, not the
    whole file: fast for any size). Neither part depends on where the folder is: moving or copying
    it keeps the id. A model that is not a local folder (a hub id) is ``unknown:<name>``."""
    import hashlib

    folder = Path(model_path)
    layout, weights = hashlib.sha256(), hashlib.sha256()
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return "unknown:" + str(model_path)
    for key in ("_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache"):
        cfg.pop(key, None)
    layout.update(json.dumps(cfg, sort_keys=True).encode())
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        size = f.stat().st_size
        layout.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            for i in range(WEIGHT_READS):
                fh.seek(max(0, size - WEIGHT_READ_BYTES) * i // (WEIGHT_READS - 1))
                weights.update(fh.read(WEIGHT_READ_BYTES))
    for name in ("tokenizer.json", "vocab.json"):
        if (folder / name).exists():
            layout.update(f"{name}:{(folder / name).stat().st_size}".encode())
    return f"{layout.hexdigest()[:16]}-{weights.hexdigest()[:8]}"


def same_base(a: str | None, b: str | None) -> bool:
    """Whether two fingerprints name the same base model. Older versions recorded the layout part
    only (no ``-<weights>``); such a record matches any base with the same layout, as it did then."""
    if not a or not b:
        return False
    if a == b:
        return True
    if a.startswith("unknown:") or b.startswith("unknown:"):
        return False
    layout_a, _, weights_a = a.partition("-")
    layout_b, _, weights_b = b.partition("-")
    return layout_a == layout_b and not (weights_a and weights_b)


def _write_json_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_meta(path: Path, meta: dict) -> None:
    """Write (atomically) an adapter folder's plumline.json."""
    _write_json_atomic(path / META_FILE, meta)


def list_adapters(adapters_dir: Path) -> list[Adapter]:
    """Every adapter folder in the registry (oldest first), including broken ones."""
    if not adapters_dir.is_dir():
        return []
    found = [Adapter(p.name, p) for p in adapters_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(found, key=lambda a: (a.meta.get("created_at") or 0, a.id))


def check_base_model(adapter: Adapter, fingerprint: str | None) -> None:
    """Raise AdapterError if the adapter was trained on another base model than ``fingerprint``."""
    if fingerprint is None or adapter.path is None:
        return
    meta = adapter.meta
    trained_on = meta.get("base_fingerprint")
    if trained_on is None:
        raise AdapterError(f"adapter {adapter.id} has no base-model record ({META_FILE} missing or unreadable): "
                           "refusing to serve it on a base it may not belong to")
    if not same_base(trained_on, fingerprint):
        raise AdapterError(
            f"adapter {adapter.id} was trained on base model {meta.get('base_model')!r} "
            f"(fingerprint {trained_on}), but the configured base has fingerprint {fingerprint}: an adapter only "
            "works on the base it was trained on. Switch model.name back, or train a new adapter."
        )


def history(adapters_dir: Path) -> list[dict]:
    """Every change of CURRENT, oldest first: {"at", "id", "from", "why"}."""
    try:
        lines = (adapters_dir / HISTORY_FILE).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a torn last line after a crash: skip it
    return out


def _mark(store, adapter_id: str, **values) -> None:
    if store is None or adapter_id == BASE_ADAPTER:
        return
    store.write("adapters", {"id": adapter_id, **values}, replace=True)


def promote(adapters_dir: Path, adapter_id: str, *, store=None, fingerprint: str | None = None,
            why: str = "promote") -> str:
    """Make ``adapter_id`` current, atomically, after checking it loads and fits the base model.
    Returns the id that was current before. A corrupt folder is marked broken and refused; the
    serving adapter does not change."""
    import time

    previous = current_adapter(adapters_dir).id
    if adapter_id != BASE_ADAPTER:
        adapter = Adapter(adapter_id, adapters_dir / adapter_id)
        meta = adapter.meta
        if meta.get("method") == "rm":
            raise AdapterError(f"{adapter_id} is a reward model: it ranks candidates and cannot serve")
        try:
            check_adapter_dir(adapter.path)
        except AdapterError:
            if adapter.path.is_dir():
                _mark(store, adapter_id, status="broken")
            raise
        check_base_model(adapter, fingerprint)
    set_current(adapters_dir, adapter_id)
    now = time.time()
    with open(adapters_dir / HISTORY_FILE, "a") as fh:
        fh.write(json.dumps({"at": now, "id": adapter_id, "from": previous, "why": why}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    if previous != adapter_id:
        _mark(store, previous, status="rejected" if why == "rollback" else "retired")
    _mark(store, adapter_id, status="current", promoted_at=now)
    return previous


def rollback(adapters_dir: Path, *, store=None, fingerprint: str | None = None) -> tuple[str, str]:
    """Return to the adapter that was current before the current one (skipping any that no longer
    load). The rolled-back adapter is marked rejected. Returns (from_id, to_id)."""
    current = current_adapter(adapters_dir).id
    entries = history(adapters_dir)
    seen = {current}
    candidates: list[str] = []
    for entry in reversed(entries):  # walk back through the promotions that led here
        prev = entry.get("from")
        if entry.get("id") in seen and prev and prev not in seen and entry.get("why") != "rollback":
            candidates.append(prev)
            seen.add(prev)
    if not candidates:
        raise AdapterError(f"nothing to roll back to: {current!r} has no earlier adapter in {adapters_dir / HISTORY_FILE}")
    errors = []
    for target in candidates:
        try:
            promote(adapters_dir, target, store=store, fingerprint=fingerprint, why="rollback")
            return current, target
        except AdapterError as exc:
            errors.append(f"{target}: {exc}")
    raise AdapterError("no earlier adapter can serve: " + "; ".join(errors))
