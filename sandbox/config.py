"""SandboxConfig: where and how candidate code runs. Table ``[sandbox]`` in config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("auto", "docker", "process", "unsafe")


@dataclass
class SandboxConfig:
    backend: str = field(
        default="auto",
        metadata={"help": "auto (Docker if an engine answers, else process), docker, process (bubblewrap + rlimits + seccomp), or unsafe (trusted code only)"},
    )
    workers: int = field(default=0, metadata={"help": "parallel sandbox workers; 0 = one per CPU core"})
    timeout_s: float = field(default=5.0, metadata={"help": "wall-clock limit for one test, seconds"})
    memory_mb: int = field(default=512, metadata={"help": "memory limit per worker, MiB"})
    image: str = field(default="plumline-sandbox:latest", metadata={"help": "Docker image the docker backend runs (built locally by `plumline sandbox build-image`)"})
    python: str = field(default="", metadata={"help": "interpreter for the process backend and the Docker image; empty = /usr/bin/python3 if present, else this Python"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"sandbox.backend = {self.backend!r}; allowed: {', '.join(BACKENDS)}")
        if self.workers < 0:
            raise ValueError(f"sandbox.workers must be >= 0, got {self.workers}")
        if self.timeout_s <= 0:
            raise ValueError(f"sandbox.timeout_s must be > 0, got {self.timeout_s}")
        if self.memory_mb < 64:
            raise ValueError(f"sandbox.memory_mb must be >= 64, got {self.memory_mb}")
