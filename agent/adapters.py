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
