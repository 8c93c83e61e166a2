"""Training benchmark: DPO and GRPO throughput and peak memory, and one nightly cycle, with the
embedded model (SmolLM2-135M-Instruct) on this machine.

    python bench/train.py                   # CPU, small fixed budgets (~5-8 minutes on 2 cores)
    PLUMLINE_BENCH_CACHE=/tmp/plcache python bench/train.py   # reuse a converted embedded model
    python bench/train.py --nightly-tasks 50 --nightly-samples 8  # the full nightly size (long on CPU)

Each phase runs in its own process so its peak RSS is its own. Figures: steps/s and
samples/s (pairs/s for DPO, completions/s for GRPO), peak RSS, and the GRPO/DPO step-time ratio (the
in-run baseline). The nightly cycle (collect samples → execute → pairs → DPO → gate) is measured at
a small size and extrapolated linearly to 50 tasks × 8 samples *only as an estimate* (it says so).
On a GPU: the same script; GRPO uses vLLM when ``train.use_vllm`` and vllm is installed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_table, write_result  # noqa: E402

CACHE = os.environ.get("PLUMLINE_BENCH_CACHE", "/tmp/plcache")


def _env(home: Path, **train) -> None:
    os.environ.update(PLUMLINE_HOME=str(home), PLUMLINE_CONFIG=str(home / "none.toml"))
    for k, v in train.items():
        os.environ[f"PLUMLINE_TRAIN_{k.upper()}"] = str(v)


def _setup(home: Path, n_pairs: int, heldout: int = 0):
    from agent.config import load_config
    from agent.models.embedded import ensure_embedded
    from agent.store import Store
    from tests.trainer.conftest import TASKS, add_task, fill_pairs

    model = ensure_embedded(Path(CACHE), say=lambda m: None)
    os.environ["PLUMLINE_MODEL_NAME"] = str(model)
    config = load_config()
    store = Store(config.store_path)
    fill_pairs(store, n=n_pairs, model=str(model))
    for i in range(heldout):
        name, prompt, good, bad, tests = TASKS[i % len(TASKS)]
        add_task(store, name, prompt, tests, split="heldout")
    return config, store, model


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_dpo(q, steps: int, batch: int) -> None:
    from trainer.runs import train

    home = Path(tempfile.mkdtemp(prefix="bench-dpo-"))
    _env(home, batch_size=batch, min_examples=2, max_length=512)
    config, store, _ = _setup(home, n_pairs=steps * batch)
    t0 = time.perf_counter()
    r = train(config, store, method="dpo", max_steps=steps, progress=False, say=lambda m: None)
    wall = time.perf_counter() - t0
    secs = r.metrics.get("train_seconds", wall)
    q.put({"phase": "dpo", "status": r.status, "steps": steps, "batch": batch, "train_s": secs, "wall_s": wall,
           "steps_per_s": steps / secs, "samples_per_s": steps * batch / secs, "peak_rss_mb": _peak_mb()})


def phase_grpo(q, steps: int, generations: int, new_tokens: int) -> None:
    from sandbox import SandboxConfig, open_sandbox
    from trainer.runs import train

    home = Path(tempfile.mkdtemp(prefix="bench-grpo-"))
    _env(home, grpo_generations=generations, grpo_max_new_tokens=new_tokens, min_examples=1, batch_size=generations)
    config, store, _ = _setup(home, n_pairs=0)
    from tests.trainer.conftest import TASKS, add_task

    for name, prompt, good, bad, tests in TASKS:
        add_task(store, name, prompt, tests)
    with open_sandbox(SandboxConfig(backend="auto", workers=2)) as sb:
        t0 = time.perf_counter()
        r = train(config, store, method="grpo", max_steps=steps, sandbox=sb, progress=False, say=lambda m: None)
        wall = time.perf_counter() - t0
    secs = r.metrics.get("train_seconds", wall)
    q.put({"phase": "grpo", "status": r.status, "message": r.message[:200], "steps": steps, "generations": generations,
           "max_new_tokens": new_tokens, "train_s": secs, "wall_s": wall, "steps_per_s": steps / secs,
           "samples_per_s": steps * generations / secs, "peak_rss_mb": _peak_mb()})


def phase_nightly(q, tasks: int, samples: int, steps: int) -> None:
    from agent.completion import load_policy
    from agent.store import Store
    from sandbox import SandboxConfig, open_sandbox
    from tests.trainer.conftest import TASKS, add_task
    from trainer.nightly import run_nightly

    home = Path(tempfile.mkdtemp(prefix="bench-nightly-"))
    _env(home, min_examples=1, gate_samples=0, gate_humaneval=0, batch_size=2, max_length=512)
    os.environ["PLUMLINE_COLLECT_SAMPLES_PER_TASK"] = str(samples)
    os.environ["PLUMLINE_MODEL_BLOCK_TOKENS"] = "96"
    config, store, _ = _setup(home, n_pairs=0, heldout=4)
    for i in range(tasks):
        name, prompt, good, bad, tests = TASKS[i % len(TASKS)]
        add_task(store, name, prompt, tests)
    store.close()
    store = Store(config.store_path)
    policy = load_policy(config, say=lambda m: None)
    with open_sandbox(SandboxConfig(backend="auto", workers=2)) as sb:
        t0 = time.perf_counter()
        r = run_nightly(config, store, policy=policy, sandbox=sb, check_power=False,
                        train_kwargs={"max_steps": steps}, say=lambda m: None)
        wall = time.perf_counter() - t0
    q.put({"phase": "nightly", "status": r.status, "message": r.message[:300], "tasks": tasks, "samples": samples,
           "train_steps": steps, "wall_s": wall, "stages": {k: (v if k != "collect" else {kk: vv for kk, vv in v.items() if vv})
                                                             for k, v in r.stages.items()},
           "peak_rss_mb": _peak_mb()})


def run_phase(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(q, *args))
    p.start()
    p.join()
    return q.get() if not q.empty() else {"phase": target.__name__, "status": f"crashed (exit {p.exitcode})"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dpo-steps", type=int, default=3)
    ap.add_argument("--grpo-steps", type=int, default=2)
    ap.add_argument("--grpo-generations", type=int, default=4)
    ap.add_argument("--grpo-new-tokens", type=int, default=64)
    ap.add_argument("--nightly-tasks", type=int, default=4)
    ap.add_argument("--nightly-samples", type=int, default=4)
    args = ap.parse_args()
    dpo = run_phase(phase_dpo, args.dpo_steps, 2)
    grpo = run_phase(phase_grpo, args.grpo_steps, args.grpo_generations, args.grpo_new_tokens)
    nightly = run_phase(phase_nightly, args.nightly_tasks, args.nightly_samples, 2)
    figures = {"dpo": dpo, "grpo": grpo, "nightly": nightly, "device": "cpu (no GPU lent to this run)"}
    if "steps_per_s" in dpo and "steps_per_s" in grpo:
        figures["grpo_over_dpo_step_time"] = dpo["steps_per_s"] / grpo["steps_per_s"]
    if nightly.get("wall_s"):
        scale = (50 * 8) / (args.nightly_tasks * args.nightly_samples)
        figures["nightly_50x8_estimate_s"] = {
            "value": nightly["wall_s"] * scale,
            "note": f"ESTIMATE: measured {args.nightly_tasks} tasks x {args.nightly_samples} samples, scaled linearly by {scale:.1f}; "
                    "sampling dominates and scales with tasks x samples, training steps do not"}
    rows = [("DPO steps/s", dpo.get("steps_per_s", "-")), ("DPO pairs/s", dpo.get("samples_per_s", "-")),
            ("DPO peak RSS MB", dpo.get("peak_rss_mb", "-")),
            ("GRPO steps/s", grpo.get("steps_per_s", "-")), ("GRPO completions/s", grpo.get("samples_per_s", "-")),
            ("GRPO peak RSS MB", grpo.get("peak_rss_mb", "-")),
            ("GRPO/DPO step time", figures.get("grpo_over_dpo_step_time", "-")),
            (f"nightly {args.nightly_tasks}x{args.nightly_samples} s", nightly.get("wall_s", nightly.get("status"))),
            ("nightly 50x8 s (linear estimate)", figures.get("nightly_50x8_estimate_s", {}).get("value", "-")),
            ("nightly peak RSS MB", nightly.get("peak_rss_mb", "-"))]
    print_table("plumline training (embedded model)", rows)
    print("written to", write_result("train", figures))


if __name__ == "__main__":
    main()
