"""TrainConfig: how adapters are trained, gated, rolled back and scheduled. Table ``[train]`` in
config.toml; every field also reads ``PLUMLINE_TRAIN_<FIELD>``.

Only knobs someone actually turns live here; everything else is a TRL default (see
``trainer/methods.py`` for the few TRL defaults we change, and why).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The update rules the learning benchmark compares (DESIGN rule 3), then the off-policy control, then
# the two that are not policy updates from execution feedback (a reward model; KTO on IDE signals).
UPDATE_RULES = ("dpo", "plum", "rpo", "rft", "grpo")
METHODS = UPDATE_RULES + ("offpolicy", "rm", "kto")
METHOD_HELP = {
    "dpo": "DPO on ACECODER's pairs (chosen >= collect.chosen_min, gap >= collect.gap_min, rejected > collect.rejected_min)",
    "plum": "DPO on PLUM's pairs (chosen passes every valid test, rejected fails at least one)",
    "rpo": "PLUM's pairs, DPO plus train.rpo_alpha x NLL on the chosen answer (iterative RPO)",
    "rft": "SFT on the samples that pass every valid test, deduplicated, train.rft_max_per_task per task (ReST-EM)",
    "grpo": "GRPO with the execution reward (train.grpo_reward) on mixed-outcome tasks",
    "offpolicy": "the off-policy control: DPO with the task's reference solution as chosen, a failing sample as rejected",
    "rm": "a Bradley-Terry reward model on ACECODER's pairs (never serves)",
    "kto": "KTO on the editor's kept vs dismissed suggestions",
}
GRPO_REWARDS = ("pass_rate", "all_pass")


@dataclass
class TrainConfig:
    method: str = field(default="plum", metadata={"help": f"update rule, one of {', '.join(METHODS)} (docs/trainer.md); "
                                                           "plum is the learning benchmark's choice (docs/loop.md)"})
    seed: int = field(default=0, metadata={"help": "seed of the loop's sampling, the LoRA initialization and the data order (recorded with each run)"})
    learning_rate: float = field(default=1e-4, metadata={"help": "LoRA learning rate"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    epochs: float = field(default=1.0, metadata={"help": "passes over the dataset"})
    batch_size: int = field(default=4, metadata={"help": "per-device batch size (lower it on out-of-memory)"})
    # -- training ---------------------------------------------------------------------------------
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    max_steps: int = field(default=0, metadata={"help": "stop after this many optimizer steps; 0 = use epochs"})
    grad_accum: int = field(default=1, metadata={"help": "gradient accumulation steps (effective batch = batch_size x this x GPUs)"})
    max_length: int = field(default=1024, metadata={"help": "longest prompt+response in tokens (lower it on out-of-memory)"})
    beta: float = field(default=0.1, metadata={"help": "DPO/KTO beta: how far the adapter may move from the reference"})
    min_examples: int = field(default=8, metadata={"help": "fewer pairs/prompts/examples than this: say so and do not train"})
    rpo_alpha: float = field(default=1.0, metadata={"help": "rpo: weight of the NLL term on the chosen answer (TRL loss_type sigmoid+sft)"})
    rft_max_per_task: int = field(default=4, metadata={"help": "rft: most distinct passing samples kept per task"})
    on_policy_only: bool = field(default=True, metadata={"help": "train only on data sampled from the adapter serving now (design rule 1)"})
    save_steps: int = field(default=50, metadata={"help": "checkpoint every this many steps (an interrupted run resumes from the last one)"})
    rm_margin: bool = field(default=True, metadata={"help": "reward model: use the pass-rate gap as the Bradley-Terry margin"})
    rm_center_coef: float = field(default=0.01, metadata={"help": "reward model: center_rewards_coefficient (0 = off)"})
    grpo_generations: int = field(default=8, metadata={"help": "GRPO: completions sampled per prompt (the group)"})
    grpo_reward: str = field(default="all_pass", metadata={"help": f"GRPO execution reward: one of {', '.join(GRPO_REWARDS)} (all_pass: 1 when every valid test passes)"})
    grpo_max_new_tokens: int = field(default=256, metadata={"help": "GRPO: longest completion sampled, tokens"})
    use_vllm: bool = field(default=False, metadata={"help": "GRPO: generate with vLLM (colocate) when a GPU and vllm are present"})
    # -- gate ---------------------------------------------------------------------------------------
    gate_alpha: float = field(default=0.05, metadata={"help": "gate: significance level of the paired test (exact McNemar, one-sided)"})
    gate_min_delta: float = field(default=0.0, metadata={"help": "gate: held-out pass@1 must also rise by at least this (absolute)"})
    gate_samples: int = field(default=4, metadata={"help": "gate: samples per task for pass@k (0 = greedy pass@1 only)"})
    gate_humaneval: int = field(default=40, metadata={"help": "gate: HumanEval tasks in the general-ability guard (0 = skip the guard)"})
    gate_max_heldout: int = field(default=200, metadata={"help": "gate: most held-out tasks scored"})
    # -- live rollback ------------------------------------------------------------------------------
    rollback_min_events: int = field(default=100, metadata={"help": "auto-rollback: suggestions shown under each adapter before live figures are compared"})
    rollback_alpha: float = field(default=0.01, metadata={"help": "auto-rollback: significance level of the drop in acceptance/persistence"})
    # -- schedule -----------------------------------------------------------------------------------
    nightly_at: str = field(default="03:00", metadata={"help": "time of day (HH:MM, local) of `plumline nightly`"})
    max_load: float = field(default=0.0, metadata={"help": "nightly: skip when the 1-minute load per core is above this (0 = never skip for load)"})

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"train.method = {self.method!r}; allowed: {', '.join(METHODS)}")
        if self.learning_rate <= 0:
            raise ValueError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        if self.lora_r < 1 or self.batch_size < 1:
            raise ValueError("train.lora_r and train.batch_size must be >= 1")
        if self.grpo_reward not in GRPO_REWARDS:
            raise ValueError(f"train.grpo_reward = {self.grpo_reward!r}; allowed: {', '.join(GRPO_REWARDS)}")
        if self.grpo_generations < 2:
            raise ValueError(f"train.grpo_generations must be >= 2 (a group needs two completions), got {self.grpo_generations}")
        if not 0 < self.gate_alpha < 1 or not 0 < self.rollback_alpha < 1:
            raise ValueError("train.gate_alpha and train.rollback_alpha must lie in (0, 1)")
        if self.max_steps < 0 or self.save_steps < 1 or self.grad_accum < 1:
            raise ValueError("train.max_steps must be >= 0; save_steps and grad_accum >= 1")
        if self.min_examples < 1:
            raise ValueError(f"train.min_examples must be >= 1, got {self.min_examples}")
        if self.rpo_alpha < 0 or self.rft_max_per_task < 1:
            raise ValueError("train.rpo_alpha must be >= 0 and train.rft_max_per_task >= 1")
        hh, _, mm = self.nightly_at.partition(":")
        if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
            raise ValueError(f"train.nightly_at must be HH:MM, got {self.nightly_at!r}")
