"""Trainer callbacks shared by every method: a progress bar with ETA, the loss curve, the NaN guard."""

from __future__ import annotations

import math

from transformers import TrainerCallback


class NaNLoss(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to lower."""


class LossCurve(TrainerCallback):
    """Keeps (step, loss) for the run record; raises NaNLoss the first time the loss is not finite."""

    def __init__(self, learning_rate: float):
        self.points: list[tuple[int, float]] = []
        self.learning_rate = learning_rate
        self.last_logs: dict = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        self.last_logs = dict(logs)
        loss = float(logs["loss"])
        if not math.isfinite(loss) or (logs.get("grad_norm") is not None and not math.isfinite(float(logs["grad_norm"]))):
            raise NaNLoss(
                f"the loss became {loss} at step {state.global_step}: training stopped and no adapter was saved. "
                f"Lower train.learning_rate (now {self.learning_rate:g}), or check the data for empty responses."
            )
        self.points.append((state.global_step, loss))

    def summary(self) -> dict:
        if not self.points:
            return {}
        losses = [p[1] for p in self.points]
        stride = max(1, len(self.points) // 50)
        return {"loss_first": losses[0], "loss_last": losses[-1], "loss_min": min(losses),
                "loss_curve": self.points[::stride], "last_logs": self.last_logs}


class ProgressBar(TrainerCallback):
    """One rich progress bar with steps, loss and ETA (stderr)."""

    def __init__(self, description: str):
        self.description = description
        self.progress = None
        self.task = None

    def on_train_begin(self, args, state, control, **kwargs):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=state.max_steps, completed=state.global_step, loss="-")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is not None and logs and "loss" in logs:
            self.progress.update(self.task, loss=f"{float(logs['loss']):.4f}")

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        self.close()

    def close(self):
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
