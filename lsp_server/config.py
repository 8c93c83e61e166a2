"""ServerConfig: the language server's knobs. Table ``[server]`` in config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ServerConfig:
    debounce_ms: int = field(default=0, metadata={"help": "wait this long after a request before generating; a newer request for the same document cancels the wait (0 = off)"})
    cache_entries: int = field(default=256, metadata={"help": "LRU cache size for suggestions (typing along a shown suggestion is served from it)"})
    persistence_checks: list[str] = field(
        default_factory=lambda: ["30", "120", "600"],
        metadata={"help": "seconds after acceptance at which to measure how much of the suggestion survives"},
    )
    watch_workspace: bool = field(default=True, metadata={"help": "watch workspace files on disk (watchdog) to follow accepted text edited outside the editor"})

    def __post_init__(self) -> None:
        if self.debounce_ms < 0:
            raise ValueError(f"server.debounce_ms must be >= 0, got {self.debounce_ms}")
        if self.cache_entries < 0:
            raise ValueError(f"server.cache_entries must be >= 0, got {self.cache_entries}")
        try:
            checks = [float(x) for x in self.persistence_checks]
        except ValueError:
            raise ValueError(f"server.persistence_checks must be numbers of seconds, got {self.persistence_checks!r}") from None
        if any(c <= 0 for c in checks):
            raise ValueError("server.persistence_checks must be positive")
