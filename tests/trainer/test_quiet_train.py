"""`plumline train` shows plumline's own progress only: no library bars or warnings on the terminal.

TRL's trainers tokenize with `datasets.map` (a tqdm bar per stage) and the libraries warn about
their internals; the user reads plumline's bar and its result line instead (issue 13).
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.trainer.conftest import fill_pairs


def test_train_draws_no_library_bars_or_warnings(train_env, model_name):
    config, store = train_env
    fill_pairs(store, n=4, model=model_name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "HF_", "TRANSFORMERS_", "DATASETS_"))}
    out = subprocess.run([sys.executable, "-m", "agent.cli", "train"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    both = out.stdout + out.stderr
    assert "%|" not in both, both                      # a tqdm bar ("Map: 100%|███| 4/4")
    assert "Warning" not in both and "warn" not in both.lower(), both
