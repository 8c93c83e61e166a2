"""The first run is quiet: libraries draw no progress bars and print no warnings a user cannot act on.

Each check runs a fresh Python, because the libraries read their switches when first imported.
The same script with PLUMLINE_VERBOSE=1 shows the noise, which proves the check can see it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# What a plumline command does, in the order it does it: the CLI quiets the libraries before any of
# them is imported, then loads a model (transformers' weight-loading bar), maps a dataset (the bar
# TRL's trainers draw while tokenizing) and meets a library's UserWarning / FutureWarning.
SCRIPT = """
import sys, warnings
from agent.models.quiet import quiet_libraries
quiet_libraries()
import datasets, transformers
transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1])
datasets.Dataset.from_dict({"a": list(range(300))}).map(lambda row: row)
import peft.tuners.lora.layer as lib  # any library module: its warnings are attributed to it
exec("import warnings; warnings.warn('library advice', UserWarning); warnings.warn('soon', FutureWarning)", lib.__dict__)
transformers.utils.logging.get_logger("transformers.modeling_utils").warning("library log advice")
print("done")
"""


def run(tiny_model_dir, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PLUMLINE_VERBOSE", "TQDM_", "HF_", "TRANSFORMERS_", "DATASETS_"))}
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_model_dir)], capture_output=True, text=True,
                          env={**clean, **env}, timeout=300)


@pytest.fixture(scope="module")
def runs(tiny_model_dir):
    return run(tiny_model_dir), run(tiny_model_dir, PLUMLINE_VERBOSE="1")


def test_library_progress_bars_are_hidden(runs):
    quiet, verbose = runs
    assert quiet.returncode == 0 and "done" in quiet.stdout, quiet.stderr
    assert "%|" in verbose.stderr  # tqdm's bar, as the user would see it without plumline's switch
    assert "%|" not in quiet.stderr, quiet.stderr


def test_library_warnings_and_advice_are_hidden(runs):
    quiet, verbose = runs
    assert "library advice" in verbose.stderr and "library log advice" in verbose.stderr
    assert "library advice" not in quiet.stderr and "soon" not in quiet.stderr
    assert "library log advice" not in quiet.stderr
    assert quiet.stderr.strip() == "", quiet.stderr
