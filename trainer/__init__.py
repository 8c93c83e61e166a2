"""plumline's trainer: LoRA adapters from the loop's on-policy data, gated before they serve.

    config.py    TrainConfig, table [train]
    data.py      store -> datasets in the serving prompt format, per update rule (pairs, RFT examples,
                 the off-policy control, GRPO prompts, KTO signals), from mixed-outcome tasks only
    model.py     base model, device/dtype, LoRA config, continuing from the serving adapter
    methods.py   one small builder per method on TRL: DPO (dpo, plum, offpolicy), RPO, RFT (SFT), GRPO, RM, KTO
    rewards.py   the grader (the data loop's tests and weights) and the GRPO execution rewards built on it
    progress.py  callbacks: progress bar with ETA, loss curve, NaN guard
    runs.py      train(): dataset -> trainer -> fit (checkpoints, resume) -> candidate in the registry
    gate.py      candidate vs current on held-out + a fixed HumanEval guard: paired test, stored decision
    live.py      automatic rollback on a live drop in acceptance / persistence
    rm.py        use a trained reward model: score, rank (best-of-N), GRPO reward
    nightly.py   live check -> collect -> train -> gate -> promote, with lock, low priority, power/load checks
    schedule.py  systemd user timer or crontab entry for the nightly run
    cli.py       plumline train | eval | adapters | nightly | schedule

The registry itself (folders, metadata, promotion, rollback) is ``agent/adapters.py``; see
docs/trainer.md.
"""
