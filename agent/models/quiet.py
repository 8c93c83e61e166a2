"""Keep the libraries' own progress bars, advice and warnings out of plumline's output.

transformers, huggingface_hub and datasets draw tqdm bars (GGUF dequantization, weight loading,
the `Map` bars TRL's trainers draw while tokenizing) and log advice a user cannot act on; torch,
TRL, PEFT and accelerate warn about their own internals. plumline shows its own rich progress
instead, and its own messages say what to do.

How: most libraries read their switches (``TQDM_DISABLE``, ``TRANSFORMERS_VERBOSITY``, ...) when
first imported, so ``quiet_libraries()`` sets them in the environment, which covers whatever is
imported later, and also turns down the loggers of libraries already imported. The `plumline`
command calls it before anything else; the model backends and the conversion call it again (it is
idempotent) for programs that use them as a library.

What is not hidden: plumline's own messages and errors, exceptions (a library's error still
reaches the user, with plumline's advice), and anything with ``PLUMLINE_VERBOSE=1``, which keeps
every bar, log line and warning. Output written by C code straight to the file descriptor (a
llama.cpp build log) is not Python's to filter: the backends turn it off at the source.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# Read by the libraries at import time; a value the user set already wins (setdefault).
ENVIRONMENT = {
    "TQDM_DISABLE": "1",                        # every bare tqdm bar (transformers' GGUF dequantization)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",   # datasets' `Map`/`Filter` bars (TRL tokenizing)
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
}

# Loggers of libraries whose warnings are about their internals. plumline's own loggers (plumline.*)
# are left alone.
LIBRARY_LOGGERS = ("transformers", "huggingface_hub", "datasets", "trl", "peft", "accelerate", "torch",
                   "tokenizers", "gguf", "llama_cpp", "matplotlib", "docker", "urllib3", "filelock")

# Warnings are attributed to the module that the library names (``stacklevel``): the library itself,
# or plumline's code that called it. plumline's code never warns (it prints or raises), so whatever
# is attributed to these modules is a library's.
WARNING_MODULES = r"(" + "|".join(LIBRARY_LOGGERS) + r"|agent|trainer|lsp_server|sandbox|bench)(\.|$)"


def verbose() -> bool:
    return bool(os.environ.get("PLUMLINE_VERBOSE"))


def quiet_libraries() -> None:
    """Silence library progress bars, advice and warnings (not with ``PLUMLINE_VERBOSE=1``)."""
    if verbose():
        return
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", module=WARNING_MODULES)
    for category in (FutureWarning, DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    _already_imported()


def _already_imported() -> None:
    """The switches above only reach libraries imported after them; these were imported before."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
