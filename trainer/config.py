"""TrainConfig: how adapters are trained and gated. Table ``[train]`` in config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("dpo", "grpo", "rm", "kto")


@dataclass
class TrainConfig:
    method: str = field(default="dpo", metadata={"help": f"one of {', '.join(METHODS)}"})
    learning_rate: float = field(default=1e-4, metadata={"help": "LoRA learning rate"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the dataset"})
    batch_size: int = field(default=4, metadata={"help": "per-device batch size (lower it on out-of-memory)"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"train.method = {self.method!r}; allowed: {', '.join(METHODS)}")
        if self.learning_rate <= 0:
            raise ValueError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        if self.lora_r < 1 or self.batch_size < 1:
            raise ValueError("train.lora_r and train.batch_size must be >= 1")
