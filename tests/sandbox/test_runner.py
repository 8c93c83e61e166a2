"""The runner's own guarantees, checked against the real kernel: it fails closed when it cannot
make itself non-dumpable, and a report counts only when it is bound to the call it answers."""

from __future__ import annotations

import sys

import pytest

from sandbox import runner
from sandbox.pool import RUNNER, PipeWorker, SandboxUnavailable

_X86_64 = runner.seccomp_supported()

# A launcher that denies prctl(PR_SET_DUMPABLE, ...) with EPERM through seccomp (kept across exec),
# then execs the real runner in unsafe mode: the kernel refuses exactly what the runner relies on.
_DENY_DUMPABLE = f"""
import ctypes, os, sys
sys.path.insert(0, {str(RUNNER.parent)!r})
import runner
LD, JEQ, RET = 0x20, 0x15, 0x06
ins = [(LD, 0, 0, 4), (JEQ, 1, 0, runner.AUDIT_ARCH_X86_64), (RET, 0, 0, runner._RET_ALLOW),
       (LD, 0, 0, 0), (JEQ, 0, 3, 157),                       # prctl
       (LD, 0, 0, 16), (JEQ, 0, 1, 4),                       # its first argument: PR_SET_DUMPABLE
       (RET, 0, 0, 0x00050000 | 1), (RET, 0, 0, runner._RET_ALLOW)]
arr = (runner._SockFilter * len(ins))(*[runner._SockFilter(*i) for i in ins])
prog = runner._SockFprog(len(ins), arr)
runner._libc.prctl(38, 1, 0, 0, 0)
runner._libc.prctl(22, 2, ctypes.addressof(prog), 0, 0)
os.execv(sys.executable, [sys.executable, "-I", "-S", "-B", {str(RUNNER)!r}, sys.argv[1]])
"""


@pytest.mark.skipif(not _X86_64, reason="the seccomp launcher is written for x86_64")
def test_runner_refuses_to_start_when_it_cannot_be_made_undumpable(tmp_path):
    worker = PipeWorker([sys.executable, "-c", _DENY_DUMPABLE, str(tmp_path)])
    worker.name = "unsafe"
    try:
        with pytest.raises(SandboxUnavailable, match="refused to start: cannot make the runner non-dumpable"):
            worker.ensure_started()
    finally:
        worker.kill()


def test_prctl_raises_when_the_kernel_refuses():
    with pytest.raises(OSError):
        runner.prctl(runner.PR_SET_DUMPABLE, 2)  # SUID_DUMP_ROOT: not settable through prctl (EINVAL)


NONCE = "ab" * 16
VALUE = b'{"n": "' + NONCE.encode() + b'", "v": [["i", "1"]]}'


@pytest.mark.parametrize("data, counts", [
    (b"I\nC\nR" + VALUE + b"\n", True),
    (b"I\nR" + VALUE + b"\n", False),                              # no call was announced
    (b"C\nR" + VALUE + b"\n", False),                              # a call before the import finished
    (b'I\nC\nR{"v": [["i", "1"]]}\n', False),                      # no nonce
    (b'I\nC\nR{"n": "' + b"0" * 32 + b'", "v": [["i", "1"]]}\n', False),  # someone else's nonce
    (b"I\nC\nR" + VALUE + b"\nR" + VALUE + b"\n", False),        # two reports
    (b"I\nC\nR" + VALUE, False),                                   # an unfinished report
    (b"I\nC\nI\nC\nR" + VALUE + b"\n", False),                     # a second handshake
])
def test_a_report_of_values_counts_only_when_bound_to_the_call(data, counts):
    imported, payload, why = runner.read_channel(data, NONCE)
    assert (payload is not None) == counts, why
    assert imported == data.startswith(b"I\n")


def test_a_report_of_values_never_counts_before_the_nonce_exists():
    assert runner.read_channel(b"I\nC\nR" + VALUE + b"\n", None)[1] is None


def test_errors_need_no_nonce_and_never_pass():
    _, payload, _ = runner.read_channel(b'R{"e": ["SyntaxError", "x"], "w": "import"}\n', None)
    assert payload == {"e": ["SyntaxError", "x"], "w": "import"}

