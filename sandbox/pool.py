"""The host side: warm workers, a pool, and the public ``run`` / ``run_batch`` entry points.

What: a *worker* is one sandbox (a bubblewrap process tree or a Docker container) with a
persistent runner (``sandbox/runner.py``) that we talk to over pipes, one JSON line per
message. A ``Sandbox`` holds one worker per core and hands candidates to free workers; tests
of a candidate run one after another in that worker, candidates run in parallel.

Why: interpreter and container start-up are paid once per worker, not once per candidate.
Between candidates the runner wipes its scratch directories and reports whether they are
empty; a worker that is not clean, stops answering, or breaks the protocol is killed and
replaced, so nothing leaks from one candidate to the next.

How to run::

    from sandbox import open_sandbox, parse_tests
    with open_sandbox() as sb:
        verdicts = sb.run("def f(x):\\n    return x + 1\\n", parse_tests("assert f(1) == 2"))

Every deadline is enforced twice: by the runner (per test, SIGKILL) and here (test deadline
plus a grace period; on expiry the whole worker is killed). Exit codes never mean pass.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable

from sandbox.config import SandboxConfig
from sandbox.judge import TestCase, Verdict, judge, unsplittable_verdict
from sandbox.limits import Limits

RUNNER = Path(__file__).resolve().parent / "runner.py"
MAX_PROGRAM_BYTES = 1 << 20
GRACE_S = 3.0           # host deadline = test timeout + this
START_TIMEOUT_S = 60.0  # first hello from a fresh worker


# bubblewrap's --die-with-parent (PR_SET_PDEATHSIG) fires when the *thread* that spawned it exits,
# so every worker process is spawned from this one long-lived thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plumline-sandbox-spawn")


class SandboxUnavailable(RuntimeError):
    """No sandbox backend can run here; the message says what to install or start."""


class WorkerDied(RuntimeError):
    pass


class Worker:
    """One sandbox with a persistent runner. Subclasses provide ``_start``, ``_send``, ``_recv_chunk``, ``_kill``."""

    name = "?"

    def __init__(self) -> None:
        self._buf = b""
        self.alive = False
        self.info: dict = {}
        self.jobs = 0
        self.expires_at: float | None = None  # wall-clock end of a lease (Docker), None: no lease
        self.need_s = 0.0                     # how long the job about to start may take at most

    # -- transport (subclasses)
    def _start(self) -> None: ...
    def _send(self, data: bytes) -> None: ...
    def _recv_chunk(self, timeout: float) -> bytes | None: ...  # b"" on EOF, None on timeout
    def _kill(self) -> None: ...

    # -- protocol
    def _recv_line(self, deadline: float) -> dict:
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("runner did not answer in time")
            chunk = self._recv_chunk(left)
            if chunk is None:
                continue
            if not chunk:
                raise WorkerDied("runner closed its channel")
            self._buf += chunk
            if len(self._buf) > (64 << 20):
                raise WorkerDied("runner sent an oversized message")
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError:
            raise WorkerDied("runner sent malformed data") from None
        if not isinstance(msg, dict):
            raise WorkerDied("runner sent malformed data")
        return msg

    def ensure_started(self) -> None:
        if self.alive:
            return
        self._buf = b""
        self._start()
        self.alive = True
        try:
            hello = self._recv_line(time.monotonic() + START_TIMEOUT_S)
        except (TimeoutError, WorkerDied) as exc:
            self.kill()
            raise SandboxUnavailable(f"{self.name} sandbox worker did not start: {exc}") from None
        if hello.get("op") == "refused":
            self.kill()
            raise SandboxUnavailable(f"{self.name} sandbox runner refused to start: {str(hello.get('detail'))[:300]}")
        if hello.get("op") != "hello":
            self.kill()
            raise SandboxUnavailable(f"{self.name} sandbox worker sent {str(hello)[:200]} instead of hello")
        self.info = hello

    def kill(self) -> None:
        self.alive = False
        try:
            self._kill()
        except Exception:  # noqa: BLE001 - best effort; the process may already be gone
            pass

    def run(self, program: str, tests: list[TestCase], limits: Limits) -> list[Verdict]:
        """One verdict per test, in order. Unsplittable tests never reach the runner."""
        out: list[Verdict | None] = [None if t.split else unsplittable_verdict(t) for t in tests]
        todo = [i for i, v in enumerate(out) if v is None]
        if todo:
            for i, v in zip(todo, self._run(program, [tests[i] for i in todo], limits)):
                out[i] = v
        return out  # type: ignore[return-value]

    def _run(self, program: str, tests: list[TestCase], limits: Limits) -> list[Verdict]:
        rejected = _precheck(program)
        if rejected:
            return [Verdict(t.source, "rejected", 0.0, rejected) for t in tests]
        if not tests:
            return []
        self.need_s = len(tests) * (limits.timeout_s + GRACE_S) + GRACE_S + 10
        if self.alive and self.expires_at is not None and self.expires_at - time.time() < self.need_s:
            self.kill()  # its lease could end in the middle of this job: start a fresh one
        self.ensure_started()
        preludes: list = []
        index: dict = {}
        wire_tests = []
        for t in tests:
            key = t.prelude
            if key not in index:
                index[key] = len(preludes)
                preludes.append([{"src": s, "import": imp} for s, imp in key])
            wire_tests.append({"p": index[key], "exprs": list(t.exprs)})
        self.jobs += 1
        job = {"op": "job", "job": self.jobs, "program": program, "preludes": preludes, "tests": wire_tests,
               "limits": limits.to_wire()}
        verdicts: list[Verdict | None] = [None] * len(tests)
        try:
            self._send((json.dumps(job) + "\n").encode())
            got = 0
            while got < len(tests):
                msg = self._recv_line(time.monotonic() + limits.timeout_s + GRACE_S)
                if msg.get("op") != "test" or msg.get("job") != self.jobs:
                    raise WorkerDied(f"unexpected message {str(msg)[:80]}")
                i = msg.get("i")
                if i == -1:  # the program does not compile
                    verdicts = [Verdict(t.source, "rejected", 0.0, str(msg.get("detail", ""))[:300]) for t in tests]
                    got = len(tests)
                    break
                if not isinstance(i, int) or not 0 <= i < len(tests) or verdicts[i] is not None:
                    raise WorkerDied("runner reported an unknown test")
                verdicts[i] = judge(tests[i], msg)
                got += 1
            done = self._recv_line(time.monotonic() + GRACE_S + 10)
            if done.get("op") != "done" or done.get("job") != self.jobs or done.get("clean") is not True:
                self.kill()  # recycle: scratch space could not be wiped
        except TimeoutError:
            self.kill()
            return [v or Verdict(t.source, "timeout", limits.timeout_s, "the sandbox worker stopped answering")
                    for v, t in zip(verdicts, tests)]
        except (WorkerDied, OSError) as exc:
            self.kill()
            return [v or Verdict(t.source, "crashed", 0.0, f"sandbox worker died: {exc}")
                    for v, t in zip(verdicts, tests)]
        return [v for v in verdicts]  # type: ignore[misc]


def _precheck(program: str) -> str:
    if not isinstance(program, str):
        return "TypeError: program must be a string"
    if len(program.encode("utf-8", "surrogatepass")) > MAX_PROGRAM_BYTES:
        return "ProgramTooLarge: program exceeds 1 MiB"
    try:
        ast.parse(program)
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}: program cannot be parsed"
    return ""


class PipeWorker(Worker):
    """A runner in a local subprocess (bubblewrap or, for trusted code, nothing)."""

    def __init__(self, argv: list[str], env: dict | None = None) -> None:
        super().__init__()
        self.argv = argv
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        self.proc = _SPAWNER.submit(subprocess.Popen, self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=self.env, start_new_session=True,
                                    close_fds=True).result()

    def _send(self, data: bytes) -> None:
        assert self.proc and self.proc.stdin
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _recv_chunk(self, timeout: float) -> bytes | None:
        assert self.proc and self.proc.stdout
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 1 << 16) if ready else None

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.kill()
        for f in (proc.stdin, proc.stdout):
            try:
                f and f.close()
            except OSError:
                pass
        proc.wait()


# ---------------------------------------------------------------- process backend (bubblewrap)

def _python_for_sandbox(config: SandboxConfig) -> str:
    if getattr(config, "python", ""):
        return config.python
    for cand in ("/usr/bin/python3",):
        if os.path.exists(cand):
            return cand
    return os.path.realpath(sys.executable)


def bwrap_argv(config: SandboxConfig) -> list[str]:
    """The bubblewrap command line for one process-backend worker."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise SandboxUnavailable("the process backend needs bubblewrap (apt-get install bubblewrap); "
                                 "refusing to run untrusted code unsandboxed")
    python = _python_for_sandbox(config)
    real = os.path.realpath(python)
    # --as-pid-1: the runner is the namespace's pid 1, so no bwrap helper inside holds the host pipe
    # (a child could otherwise write forged messages to /proc/1/fd/1).
    argv = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--as-pid-1",
            "--clearenv", "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    prefix = str(Path(real).parent.parent)
    if not real.startswith("/usr/"):
        argv += ["--ro-bind", prefix, prefix]
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", str(16 << 20), "--tmpfs", "/tmp",
             "--ro-bind", str(RUNNER), "/opt/plumline/runner.py", "--chdir", "/tmp",
             "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
             "--", real, "-I", "-S", "-B", "/opt/plumline/runner.py"]
    return argv


def process_worker_factory(config: SandboxConfig) -> Callable[[], Worker]:
    argv = bwrap_argv(config)

    def make() -> Worker:
        w = PipeWorker(argv)
        w.name = "process"
        return w
    return make


def unsafe_worker_factory(config: SandboxConfig) -> Callable[[], Worker]:
    """No sandbox at all, only rlimits and seccomp on each test. For trusted code only."""
    print("plumline sandbox: WARNING: the 'unsafe' backend runs code WITHOUT a sandbox; "
          "use it only for code you trust", file=sys.stderr)

    def make() -> Worker:
        scratch = tempfile.mkdtemp(prefix="plumline-unsafe-")
        w = PipeWorker([os.path.realpath(sys.executable), "-I", "-S", "-B", str(RUNNER), scratch])
        w.name = "unsafe"
        return w
    return make


# ---------------------------------------------------------------- backend choice

def _bwrap_works() -> tuple[bool, str]:
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False, "bubblewrap is not installed (apt-get install bubblewrap)"
    try:
        r = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--ro-bind", "/", "/",
                            "true"], capture_output=True, timeout=10, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap at {bwrap} cannot run: {exc}"
    if r.returncode != 0:
        return False, f"bubblewrap at {bwrap} cannot create namespaces: {r.stderr.decode(errors='replace').strip()[:200]}"
    return True, f"bubblewrap at {bwrap} works"


def describe_backend(config: SandboxConfig | None = None) -> tuple[str, str]:
    """What the configured backend resolves to here, and why (for ``plumline doctor``). Never raises."""
    try:
        config = config or SandboxConfig()
        from sandbox import docker_backend

        if config.backend == "unsafe":
            return "unsafe", "configured: NO SANDBOX - trusted code only"
        if config.backend == "docker":
            ok, why = docker_backend.engine_status()
            return "docker", ("configured; " if ok else "configured, but unusable: ") + why
        if config.backend == "process":
            ok, why = _bwrap_works()
            return "process", ("configured; " if ok else "configured, but unusable: ") + why
        ok, why = docker_backend.engine_status()
        if ok:
            return "docker", f"auto: {why}"
        bok, bwhy = _bwrap_works()
        if bok:
            return "process", f"auto: no Docker engine ({why}); {bwhy}"
        return "none", f"auto: no Docker engine ({why}) and no usable bubblewrap ({bwhy})"
    except Exception as exc:  # noqa: BLE001 - doctor must never crash
        return "none", f"cannot determine the sandbox backend: {type(exc).__name__}: {exc}"


def _factory(config: SandboxConfig) -> tuple[str, Callable[[], Worker]]:
    from sandbox import docker_backend

    name = config.backend
    if name == "auto":
        ok, why = docker_backend.engine_status()
        name = "docker" if ok else "process"
    if name == "docker":
        return "docker", docker_backend.docker_worker_factory(config)
    if name == "process":
        ok, why = _bwrap_works()
        if not ok:
            raise SandboxUnavailable(f"process sandbox unavailable: {why}. Start a Docker engine or install "
                                     "bubblewrap; plumline will not run untrusted code unsandboxed.")
        return "process", process_worker_factory(config)
    if name == "unsafe":
        return "unsafe", unsafe_worker_factory(config)
    raise SandboxUnavailable(f"unknown sandbox backend {name!r}")


# ---------------------------------------------------------------- the pool

class Sandbox:
    """A pool of warm workers of one backend. Use as a context manager; ``close()`` kills them all."""

    def __init__(self, config: SandboxConfig | None = None, backend: str | None = None) -> None:
        self.config = config or SandboxConfig()
        if backend:
            self.config = SandboxConfig(**{**self.config.__dict__, "backend": backend})
        self.name, make = _factory(self.config)
        self.size = self.config.workers or os.cpu_count() or 1
        self.default_limits = Limits.from_config(self.config)
        self._make = make
        self._all: list[Worker] = []
        self._free: queue.Queue[Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        for _ in range(self.size):
            w = make()
            self._all.append(w)
            self._free.put(w)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def warm_up(self) -> None:
        """Start every worker now (otherwise each starts on first use)."""
        with ThreadPoolExecutor(self.size) as ex:
            list(ex.map(lambda w: w.ensure_started(), self._all))

    def run(self, program: str, tests: list[TestCase], limits: Limits | None = None) -> list[Verdict]:
        """Score one candidate: one verdict per test, in order."""
        if self._closed:
            raise RuntimeError("sandbox is closed")
        worker = self._free.get()
        try:
            return worker.run(program, list(tests), limits or self.default_limits)
        finally:
            self._free.put(worker)

    def run_batch(self, items: Iterable[tuple[str, list[TestCase]]], limits: Limits | None = None,
                  progress: Callable[[int, int], None] | None = None) -> list[list[Verdict]]:
        """Score many (program, tests) pairs concurrently across the pool; results in input order."""
        items = list(items)
        results: list[list[Verdict] | None] = [None] * len(items)
        done = [0]
        lock = threading.Lock()

        def one(i: int) -> None:
            program, tests = items[i]
            results[i] = self.run(program, tests, limits)
            with lock:
                done[0] += 1
                if progress:
                    progress(done[0], len(items))

        with ThreadPoolExecutor(self.size) as ex:
            for f in [ex.submit(one, i) for i in range(len(items))]:
                f.result()
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._closed = True
        for w in self._all:
            w.kill()


def open_sandbox(config: SandboxConfig | None = None, backend: str | None = None) -> Sandbox:
    """A warm pool for the configured backend (``auto``: Docker if an engine answers, else process)."""
    return Sandbox(config, backend)


def run(program: str, tests: list[TestCase], limits: Limits | None = None,
        config: SandboxConfig | None = None) -> list[Verdict]:
    """One-shot: start a one-worker sandbox, score one candidate, tear it down."""
    config = config or SandboxConfig()
    config = SandboxConfig(**{**config.__dict__, "workers": 1})
    with open_sandbox(config) as sb:
        return sb.run(program, tests, limits)


def run_batch(items: Iterable[tuple[str, list[TestCase]]], limits: Limits | None = None,
              config: SandboxConfig | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[list[Verdict]]:
    """One-shot batch: open a pool, score every (program, tests) pair, close it."""
    with open_sandbox(config) as sb:
        return sb.run_batch(items, limits, progress)
