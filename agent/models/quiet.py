"""Keep the libraries' own progress bars and advice out of plumline's output.

transformers and huggingface_hub draw tqdm bars for GGUF dequantization and weight loading, and
log advice a user cannot act on; plumline shows its own rich progress instead. Call
``quiet_libraries()`` before loading a model. ``PLUMLINE_VERBOSE=1`` keeps everything.
"""

from __future__ import annotations

import os
import warnings


def quiet_libraries() -> None:
    if os.environ.get("PLUMLINE_VERBOSE"):
        return
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF dequantization draws a bare tqdm bar
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # transformers not installed: nothing to quiet
        pass
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
