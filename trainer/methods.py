"""One small builder per method: a TRL config + trainer from the shared pieces (dataset, model,
LoRA config, common arguments). Nothing here trains; ``trainer.runs.train`` does, for all of them.

The update rules (``trainer.config.METHOD_HELP``) differ in their data (``trainer.data``) and their
loss, which is TRL's in every case:

* dpo, plum, offpolicy: DPO's sigmoid loss (``DPOTrainer``) on pairs;
* rpo: DPO plus ``train.rpo_alpha`` x the NLL of the chosen answer (TRL's ``loss_type=["sigmoid",
  "sft"]``, the iterative RPO objective of Pang et al.; TRL 1.x replaced ``rpo_alpha`` by this);
* rft: SFT (``SFTTrainer``) on prompt/completion, the loss on the completion only;
* grpo: ``GRPOTrainer``: TRL samples the group (the rollout), ``trainer.rewards`` scores it (the
  reward), TRL's clipped objective is the loss and its optimizer step the update;
* rm, kto: ``RewardTrainer`` and ``KTOTrainer``.

TRL defaults we change, and why:

* ``bf16`` where the base runs in bf16 (CUDA, or a CPU with AMX/AVX-512-BF16; see trainer.model);
* ``gradient_checkpointing`` only on CUDA (saves memory there; on CPU with small models it only
  costs time);
* ``logging_steps=1`` and ``logging_nan_inf_filter=False`` so the NaN guard sees every step's real
  loss (the filter would log a NaN loss as the running mean, 0.0 at step 1);
* ``disable_tqdm`` because ``trainer.progress`` draws one bar with ETA for every method;
* ``report_to=[]``: nothing leaves the machine;
* ``seed`` and ``data_seed`` = ``train.seed`` (the data order); ``trainer.runs`` seeds the LoRA
  initialization with it too, before the trainer wraps the model.
"""

from __future__ import annotations

from trainer.model import Base, policy_model, reward_model, use_bf16


def common_args(config, base: Base, output_dir: str, *, max_steps: int | None = None) -> dict:
    t = config.train
    steps = t.max_steps if max_steps is None else max_steps
    cuda = base.device == "cuda"
    return dict(
        output_dir=output_dir, learning_rate=t.learning_rate, per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, num_train_epochs=t.epochs, max_steps=steps or -1,
        save_strategy="steps", save_steps=t.save_steps, save_total_limit=2, logging_steps=1,
        report_to=[], disable_tqdm=True, bf16=use_bf16(base), gradient_checkpointing=cuda,
        use_cpu=not cuda, seed=t.seed, data_seed=t.seed, dataloader_num_workers=0, logging_nan_inf_filter=False,
    )


def dpo_loss(config, method: str) -> dict:
    """DPOConfig's loss settings for ``method``: the sigmoid loss, plus NLL on chosen for rpo."""
    if method == "rpo":
        return dict(loss_type=["sigmoid", "sft"], loss_weights=[1.0, config.train.rpo_alpha])
    return dict(loss_type=["sigmoid"])


def dpo_trainer(config, base: Base, parent, dataset, args: dict, callbacks: list, *, method: str = "dpo", **_):
    """DPO on (chosen, rejected) pairs, LoRA on the policy; rpo adds the NLL term (``dpo_loss``)."""
    from trl import DPOConfig, DPOTrainer

    model, peft_config = policy_model(config, base, parent)
    cfg = DPOConfig(**args, beta=config.train.beta, max_length=config.train.max_length, **dpo_loss(config, method))
    return DPOTrainer(model=model, args=cfg, train_dataset=dataset, processing_class=base.tokenizer,
                      peft_config=peft_config, callbacks=callbacks)


def rft_trainer(config, base: Base, parent, dataset, args: dict, callbacks: list, **_):
    """Rejection-sampling fine-tuning: SFT on the passing samples, the loss on the completion only."""
    from trl import SFTConfig, SFTTrainer

    model, peft_config = policy_model(config, base, parent)
    cfg = SFTConfig(**args, max_length=config.train.max_length, completion_only_loss=True, packing=False)
    return SFTTrainer(model=model, args=cfg, train_dataset=dataset, processing_class=base.tokenizer,
                      peft_config=peft_config, callbacks=callbacks)


def rm_trainer(config, base: Base, parent, dataset, args: dict, callbacks: list, **_):
    """ACECODER's reward model: Bradley-Terry on the same pairs, margin = pass-rate gap (optional)."""
    from trl import RewardConfig, RewardTrainer

    model, peft_config = reward_model(config, base)
    coef = config.train.rm_center_coef or None
    cfg = RewardConfig(**args, max_length=config.train.max_length, center_rewards_coefficient=coef)
    return RewardTrainer(model=model, args=cfg, train_dataset=dataset, processing_class=base.tokenizer,
                         peft_config=peft_config, callbacks=callbacks)


def kto_trainer(config, base: Base, parent, dataset, args: dict, callbacks: list, **_):
    """KTO on unpaired IDE signals (kept vs dismissed suggestions)."""
    from trl import KTOConfig, KTOTrainer

    model, peft_config = policy_model(config, base, parent)
    args = {**args, "per_device_train_batch_size": max(2, args["per_device_train_batch_size"])}  # KTO's KL term needs >= 2
    cfg = KTOConfig(**args, beta=config.train.beta, max_length=config.train.max_length)
    return KTOTrainer(model=model, args=cfg, train_dataset=dataset, processing_class=base.tokenizer,
                      peft_config=peft_config, callbacks=callbacks)


def vllm_available(device: str) -> bool:
    import importlib.util

    return device == "cuda" and importlib.util.find_spec("vllm") is not None


def grpo_trainer(config, base: Base, parent, dataset, args: dict, callbacks: list, *, reward_funcs=None, **_):
    """GRPO with the execution reward; sampling settings are the loop's (collect.temperature).
    ``use_vllm`` (colocate mode) only when asked for and a GPU and vLLM are both present."""
    from trl import GRPOConfig, GRPOTrainer

    t = config.train
    g = t.grpo_generations
    model, peft_config = policy_model(config, base, parent)
    per_device = g * max(1, args["per_device_train_batch_size"] // g)  # whole groups per device batch
    extra = {}
    if t.use_vllm and vllm_available(base.device):
        extra = dict(use_vllm=True, vllm_mode="colocate")
    cfg = GRPOConfig(**{**args, "per_device_train_batch_size": per_device}, num_generations=g,
                     max_completion_length=t.grpo_max_new_tokens, temperature=config.collect.temperature,
                     log_completions=False, **extra)
    return GRPOTrainer(model=model, reward_funcs=reward_funcs, args=cfg, train_dataset=dataset,
                       processing_class=base.tokenizer, peft_config=peft_config, callbacks=callbacks)


BUILDERS = {"dpo": dpo_trainer, "plum": dpo_trainer, "rpo": dpo_trainer, "offpolicy": dpo_trainer,
            "rft": rft_trainer, "grpo": grpo_trainer, "rm": rm_trainer, "kto": kto_trainer}
