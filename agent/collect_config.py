"""CollectConfig: how logged prompts become scored on-policy data. Table ``[collect]`` in config.toml."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CollectConfig:
    samples_per_task: int = field(default=8, metadata={"help": "on-policy candidates sampled per task (N)"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature for candidates"})
    min_valid_tests: int = field(default=5, metadata={"help": "tasks with fewer valid tests are skipped (design rule 2)"})
    chosen_min: float = field(default=0.8, metadata={"help": "a chosen candidate's pass rate must be at least this (ACECODER)"})
    gap_min: float = field(default=0.4, metadata={"help": "chosen minus rejected pass rate must be at least this (ACECODER)"})
    teacher_url: str = field(default="", metadata={"help": "OpenAI-compatible endpoint of a teacher model that writes tests (empty = the policy writes them)"})
    teacher_model: str = field(default="", metadata={"help": "model name to ask the teacher endpoint for"})

    def __post_init__(self) -> None:
        if self.samples_per_task < 2:
            raise ValueError(f"collect.samples_per_task must be >= 2 (pairs need two candidates), got {self.samples_per_task}")
        if not 0 <= self.chosen_min <= 1 or not 0 <= self.gap_min <= 1:
            raise ValueError("collect.chosen_min and collect.gap_min must lie in [0, 1]")
        if self.min_valid_tests < 1:
            raise ValueError(f"collect.min_valid_tests must be >= 1, got {self.min_valid_tests}")
        if self.temperature < 0:
            raise ValueError(f"collect.temperature must be >= 0, got {self.temperature}")
