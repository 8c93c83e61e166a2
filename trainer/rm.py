"""Using a trained reward model (ACECODER's Bradley-Terry RM): score, rank, reward.

* ``RewardModel.score(prompts, responses)``: one scalar per (prompt, response), higher = better;
* ``RewardModel.rank(prompt, candidates)``: best-of-N reranking order (serving can pick the first);
* ``make_rm_reward(rm)``: a TRL-signature reward function, to add to (or replace) the execution
  reward in GRPO.

Reward models live in the registry like policy adapters, with ``method = "rm"``; they are never
promoted to serve. ``latest_reward_model`` finds the newest one trained on the serving base.
"""

from __future__ import annotations

from pathlib import Path

from agent.adapters import Adapter, check_adapter_dir, list_adapters, same_base


def latest_reward_model(adapters_dir: Path, fingerprint: str | None = None) -> Adapter | None:
    for a in reversed(list_adapters(adapters_dir)):
        meta = a.meta
        if meta.get("method") == "rm" and (fingerprint is None or same_base(meta.get("base_fingerprint"), fingerprint)):
            try:
                check_adapter_dir(a.path)
                return a
            except Exception:  # noqa: BLE001 - a broken one is skipped
                continue
    return None


class RewardModel:
    def __init__(self, base_path: str, adapter_path: Path, *, device: str = "cpu", batch_size: int = 8):
        import torch
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(base_path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        model = AutoModelForSequenceClassification.from_pretrained(base_path, num_labels=1, dtype=torch.float32)
        model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = PeftModel.from_pretrained(model, str(adapter_path)).to(device).eval()
        self.device = device
        self.batch_size = batch_size

    def score(self, prompts: list[str], responses: list[str]) -> list[float]:
        """Scalar reward of each prompt+response (the text the RM was trained on: prompt + response + EOS)."""
        import torch

        eos = self.tokenizer.eos_token or ""
        texts = [p + r + eos for p, r in zip(prompts, responses)]
        out: list[float] = []
        for i in range(0, len(texts), self.batch_size):
            # tokenized as TRL's RewardTrainer tokenizes (tokenizer defaults), so scores match training
            enc = self.tokenizer(texts[i:i + self.batch_size], return_tensors="pt", padding=True).to(self.device)
            with torch.inference_mode():
                out.extend(self.model(**enc).logits[:, 0].float().tolist())
        return out

    def rank(self, prompt: str, candidates: list[str]) -> list[int]:
        """Indices of ``candidates``, best first."""
        scores = self.score([prompt] * len(candidates), candidates)
        return sorted(range(len(candidates)), key=lambda i: -scores[i])


def make_rm_reward(rm: RewardModel):
    def rm_reward(prompts: list[str], completions: list[str], **kwargs) -> list[float | None]:
        """The reward model's score of each completion (dense, learned; no sandbox run)."""
        return rm.score(list(prompts), [c if isinstance(c, str) else c[-1]["content"] for c in completions])

    return rm_reward
