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
    teacher_api_key_env: str = field(default="", metadata={"help": "name of the environment variable holding the teacher's API key (the key itself is never stored)"})
    teacher_timeout_s: float = field(default=60.0, metadata={"help": "seconds to wait for one teacher reply before recording it as failed"})
    test_writer: str = field(default="auto", metadata={"help": "who writes asserts: auto (teacher if teacher_url is set, else policy), policy, teacher, or none (docstring and workspace tests only)"})
    asserts_per_task: int = field(default=20, metadata={"help": "asserts asked of the test writer per task (ACECODER asks for about 20)"})
    test_tokens: int = field(default=256, metadata={"help": "max new tokens for each of the policy's replies when it writes tests"})
    test_replies: int = field(default=8, metadata={"help": "replies sampled per task when the policy writes tests (a small model writes a few asserts per reply; they are pooled)"})
    test_temperature: float = field(default=0.8, metadata={"help": "sampling temperature of those replies (0 = one greedy reply)"})
    mutants_per_task: int = field(default=12, metadata={"help": "tests added per task with an oracle by mutating the inputs of its valid tests, the oracle giving the expected value (0 = off)"})
    test_timeout_s: float = field(default=2.0, metadata={"help": "a test slower than this on the oracle is rejected as too slow"})
    rejected_min: float = field(default=0.0, metadata={"help": "a rejected candidate's pass rate must be above this (ACECODER: > 0)"})
    max_pairs_per_task: int = field(default=8, metadata={"help": "at most this many pairs per task and adapter"})
    heldout_fraction: float = field(default=0.2, metadata={"help": "fraction of new tasks put in the held-out split (for the gate; never used for pairs)"})
    split_seed: int = field(default=0, metadata={"help": "seed of the train/held-out split (fixed so splits are stable)"})
    oracle_stable_s: float = field(default=600.0, metadata={"help": "an accepted suggestion's function becomes the oracle once its file has not changed for this long"})
    batch_rows: int = field(default=32, metadata={"help": "sequences generated per batch when sampling candidates"})

    @property
    def writer(self) -> str:
        """Who writes asserts after resolving 'auto'."""
        if self.test_writer == "auto":
            return "teacher" if self.teacher_url else "policy"
        return self.test_writer

    def __post_init__(self) -> None:
        if self.samples_per_task < 2:
            raise ValueError(f"collect.samples_per_task must be >= 2 (pairs need two candidates), got {self.samples_per_task}")
        if not 0 <= self.chosen_min <= 1 or not 0 <= self.gap_min <= 1:
            raise ValueError("collect.chosen_min and collect.gap_min must lie in [0, 1]")
        if self.min_valid_tests < 1:
            raise ValueError(f"collect.min_valid_tests must be >= 1, got {self.min_valid_tests}")
        if self.test_writer not in ("auto", "policy", "teacher", "none"):
            raise ValueError(f"collect.test_writer = {self.test_writer!r}; allowed: auto, policy, teacher, none")
        if self.test_writer == "teacher" and not self.teacher_url:
            raise ValueError("collect.test_writer = 'teacher' needs collect.teacher_url")
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"collect.heldout_fraction must lie in [0, 1), got {self.heldout_fraction}")
        if self.rejected_min < 0 or self.rejected_min >= 1:
            raise ValueError(f"collect.rejected_min must lie in [0, 1), got {self.rejected_min}")
        if self.mutants_per_task < 0:
            raise ValueError(f"collect.mutants_per_task must be >= 0, got {self.mutants_per_task}")
        if min(self.asserts_per_task, self.test_tokens, self.test_replies, self.max_pairs_per_task, self.batch_rows) < 1:
            raise ValueError("collect.asserts_per_task, test_tokens, test_replies, max_pairs_per_task and batch_rows must be >= 1")
        if self.test_timeout_s <= 0 or self.teacher_timeout_s <= 0 or self.oracle_stable_s < 0:
            raise ValueError("collect.test_timeout_s and teacher_timeout_s must be > 0, oracle_stable_s >= 0")
        if self.temperature < 0:
            raise ValueError(f"collect.temperature must be >= 0, got {self.temperature}")
