"""Limits: what one test may use inside the sandbox (wall time, memory, output, files)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """Per-test resource limits. The wall deadline is enforced from outside the test process."""

    timeout_s: float = 5.0          # wall-clock deadline per test (CPU limit = this + 1 s)
    memory_mb: int = 512            # address space of the test process
    output_bytes: int = 1 << 20     # stdout+stderr beyond this fails the test
    result_bytes: int = 8 << 20     # serialized result beyond this fails the test
    fsize_mb: int = 8               # largest file the test may write (scratch tmpfs is small too)
    nofile: int = 64                # open files

    def __post_init__(self) -> None:
        if self.timeout_s <= 0:
            raise ValueError(f"Limits.timeout_s must be > 0, got {self.timeout_s}")
        if self.memory_mb < 64:
            raise ValueError(f"Limits.memory_mb must be >= 64, got {self.memory_mb}")
        if min(self.output_bytes, self.result_bytes, self.fsize_mb, self.nofile) <= 0:
            raise ValueError("Limits: output_bytes, result_bytes, fsize_mb and nofile must be > 0")

    @classmethod
    def from_config(cls, config) -> "Limits":
        return cls(timeout_s=config.timeout_s, memory_mb=config.memory_mb)

    def to_wire(self) -> dict:
        return asdict(self)
