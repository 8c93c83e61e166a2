"""Configuration: one TOML file, every option overridable from the environment.

Where things live (XDG base directories):

* config file: ``$PLUMLINE_CONFIG`` or ``$XDG_CONFIG_HOME/plumline/config.toml``
  (``~/.config/plumline/config.toml``);
* data (store, adapters, model cache): ``$PLUMLINE_HOME`` or ``$XDG_DATA_HOME/plumline``
  (``~/.local/share/plumline``).

The file has one table per part of the loop, and each table maps onto a dataclass that lives
beside the code it configures (``ModelConfig`` in ``agent/models``, ``SandboxConfig`` in
``sandbox/``, ...). Every field can be overridden with ``PLUMLINE_<TABLE>_<FIELD>``, e.g.
``PLUMLINE_MODEL_NAME=/path/to/model`` or ``PLUMLINE_SANDBOX_BACKEND=process``.

Example ``config.toml``::

    [model]
    name = "embedded"          # or a local path, or a Hugging Face id
    backend = "transformers"   # or "vllm"

    [privacy]
    logging = true
    exclude = [".env*", "*.pem", "*secret*", "id_*"]

    [sandbox]
    backend = "auto"           # "docker" | "process" | "auto"

Run ``plumline config`` to print the resolved configuration and where each value came from.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from agent.collect_config import CollectConfig
from agent.context import ContextConfig
from agent.models.config import ModelConfig
from agent.privacy import PrivacyConfig
from lsp_server.config import ServerConfig
from sandbox.config import SandboxConfig
from trainer.config import TrainConfig

ENV_PREFIX = "PLUMLINE_"


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and what is allowed."""


def config_path() -> Path:
    """The config file in force: ``$PLUMLINE_CONFIG``, else the XDG config location."""
    if os.environ.get("PLUMLINE_CONFIG"):
        return Path(os.environ["PLUMLINE_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "plumline" / "config.toml"


def data_home() -> Path:
    """Where plumline keeps its store, adapters and model cache."""
    if os.environ.get("PLUMLINE_HOME"):
        return Path(os.environ["PLUMLINE_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "plumline"


@dataclass
class Config:
    """The whole configuration; one attribute per TOML table."""

    model: ModelConfig = field(default_factory=ModelConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    home: Path = field(default_factory=data_home)
    # Where each value came from ("default", "file", "env"), keyed "table.field"; for `plumline config`.
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def store_path(self) -> Path:
        return self.home / "plumline.db"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"


def _coerce(key: str, raw: object, typ: object, default: object) -> object:
    """Turn a TOML or environment value into the field's type, or raise ConfigError."""
    origin = typing.get_origin(typ)
    try:
        if typ is bool or isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int or (isinstance(default, int) and not isinstance(default, bool)):
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        if typ is float or isinstance(default, float):
            return float(raw)
        if origin in (list, tuple) or isinstance(default, (list, tuple)):
            if isinstance(raw, str):
                items = [part.strip() for part in raw.split(",") if part.strip()]
            elif isinstance(raw, (list, tuple)):
                items = [str(x) for x in raw]
            else:
                raise ValueError
            return type(default)(items) if isinstance(default, tuple) else items
        if isinstance(raw, (dict, list)):
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        kind = type(default).__name__ if default is not None else "string"
        raise ConfigError(f"config key '{key}': {raw!r} is not a valid {kind}") from None


def _build(section: str, cls: type, table: dict, sources: dict[str, str]):
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(
            f"config table [{section}] has unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}"
        )
    hints = typing.get_type_hints(cls)
    defaults = cls()
    values: dict[str, object] = {}
    for name, f in known.items():
        key = f"{section}.{name}"
        default = getattr(defaults, name)
        env_name = f"{ENV_PREFIX}{section.upper()}_{name.upper()}"
        if env_name in os.environ:
            values[name] = _coerce(env_name, os.environ[env_name], hints.get(name), default)
            sources[key] = "env"
        elif name in table:
            values[name] = _coerce(key, table[name], hints.get(name), default)
            sources[key] = "file"
        else:
            sources[key] = "default"
    try:
        return cls(**values)
    except ConfigError:
        raise
    except ValueError as exc:  # __post_init__ checks name the key themselves
        raise ConfigError(f"config table [{section}]: {exc}") from None


def load_config(path: Path | None = None) -> Config:
    """Read the TOML file (if any) and the environment into a validated Config."""
    path = path or config_path()
    data: dict = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot parse config file {path}: {exc}. Fix it or move it aside.") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    sections = {f.name: typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config)
                if f.name not in ("home", "sources")}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown table(s) {', '.join(unknown)}; "
            f"known tables: {', '.join(sorted(sections))}"
        )
    sources: dict[str, str] = {}
    built = {}
    for name, cls in sections.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"config key '{name}' must be a table ([{name}]), got {table!r}")
        built[name] = _build(name, cls, table, sources)
    return Config(**built, sources=sources)


def describe(config: Config) -> list[tuple[str, object, str, str]]:
    """Rows of (key, value, source, help) for every option, for `plumline config`."""
    rows = []
    for section in dataclasses.fields(Config):
        if section.name in ("home", "sources"):
            continue
        obj = getattr(config, section.name)
        for f in dataclasses.fields(obj):
            key = f"{section.name}.{f.name}"
            rows.append((key, getattr(obj, f.name), config.sources.get(key, "default"), f.metadata.get("help", "")))
    return rows
