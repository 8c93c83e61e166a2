"""Shared by every benchmark: print a table and write bench/results/NAME.json with machine info
and the git commit, so figures can be compared across runs."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=RESULTS.parent, check=False).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                                    cwd=RESULTS.parent, check=False).stdout.strip())
    except OSError:
        commit, dirty = None, None
    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch_version,
        "platform": platform.platform(),
        "commit": commit,
        "dirty": dirty,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_result(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), "figures": figures}, indent=2, default=str))
    return path


def print_table(title: str, rows: list[tuple]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, _ in enumerate(rows[0] if rows else []):
        table.add_column("" if i else "metric", justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[f"{c:.4g}" if isinstance(c, float) else str(c) for c in row])
    Console().print(table)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)
