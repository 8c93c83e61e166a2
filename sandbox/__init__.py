"""plumline's sandbox: hostile candidate code in, honest per-test verdicts out.

    from sandbox import parse_tests, open_sandbox
    tests = parse_tests(open("tests.py").read())
    with open_sandbox() as sb:                      # Docker if an engine answers, else bubblewrap
        for v in sb.run(program, tests):
            print(v.status, v.test)

Modules: ``judge`` (split asserts, compare outside), ``runner`` (stdlib-only, runs inside),
``pool`` (warm workers, batch API, backend choice), ``docker_backend`` (image + containers),
``limits``, ``config``, ``cli``. See docs/sandbox.md for what is and is not protected.
"""

from sandbox.config import SandboxConfig
from sandbox.judge import STATUSES, TestCase, Verdict, parse_tests
from sandbox.limits import Limits
from sandbox.pool import Sandbox, SandboxUnavailable, describe_backend, open_sandbox, run, run_batch

__all__ = ["STATUSES", "Limits", "Sandbox", "SandboxConfig", "SandboxUnavailable", "TestCase", "Verdict",
           "describe_backend", "open_sandbox", "parse_tests", "run", "run_batch"]
