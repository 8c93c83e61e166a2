"""The runner that goes inside the sandbox (stdlib only; runs as ``python3 -I -S runner.py``).

What: a small, pristine "warden" process that receives jobs (candidate source plus the
*call side* of each test) on stdin and answers with one line of JSON per test on stdout.
It never executes candidate code itself. For every test it forks a child that

1. redirects stdin to /dev/null, stdout/stderr to a capped pipe, the result channel to fd 3 and
   the challenge channel to fd 4, and closes every other descriptor (the host is unreachable);
2. sets rlimits (CPU, address space, file size, open files, core) and installs a seccomp filter:
   no fork/vfork/exec, no new processes (only threads), no sockets, no ptrace or
   process_vm_*, no signals to anyone but itself, no mount/unshare/setns/bpf/io_uring/keyctl;
3. executes the candidate module (compiled once by the warden) and writes ``I``, the test
   prelude, and writes ``C`` (the call starts); evaluates the test's call expressions; only then
   reads this test's nonce from fd 4 and writes the results, bound to it, as type-tagged plain data.

The warden releases the nonce (16 random bytes, made in the warden after the fork, so never in
the child's memory before) only once it has read ``I`` and ``C``. A value counts only in a
report that carries it: whatever any code in the child wrote before the release - at import
time, or a stale line - cannot. After the release, code in the child (the candidate's included)
can read the nonce and report values; those are the candidate's *answer* to this test's call, and
the judge only ever asks the candidate for answers (see ``sandbox/judge.py`` and docs/sandbox.md).

The warden enforces the wall deadline from outside (SIGKILL), caps output and result size,
wipes the scratch directory after each job and reports whether it is clean. It makes itself
non-dumpable (``PR_SET_DUMPABLE`` 0, checked, and read back): a child cannot open
``/proc/<warden>/fd/*`` or ``/proc/<warden>/mem``, so the warden's nonce and its channel to the
host stay out of reach. If that fails, the runner refuses to start (fail closed).

Why: the judge lives outside (see ``sandbox/judge.py``). The runner only ever evaluates calls
and returns plain data; it never decides pass or fail, so nothing the candidate prints, exits
with, or forges can become a pass. Each test runs in a fresh fork, so state never leaks from
one test to the next, and the candidate's import-time code is covered by the same filter.

Not protected against here (the outer sandbox - bubblewrap or Docker - is responsible):
filesystem visibility, network namespaces, memory of the whole worker, kernel exploits.
A fork-per-test runner re-executes the candidate's module body for each test; a slow import
costs once per test (an import that fails or hangs is detected on the first test and applied
to all, without re-running).
"""

import ctypes
import fcntl
import json
import os
import resource
import select
import signal
import sys
import time

PROTOCOL = 2
RESULT_FD = 3                  # child -> warden: "I\n", "C\n", then one "R<json>\n" report
CHALLENGE_FD = 4               # warden -> child: this test's nonce, released after "C"
NONCE_BYTES = 16
PR_SET_DUMPABLE, PR_GET_DUMPABLE = 4, 3
WORKDIR = "/tmp"               # where tests run; argv[1] overrides (the unsafe backend's temp dir)
SCRATCH = ["/tmp", "/dev/shm"]  # wiped after every job; argv[1:] overrides

_type, _len, _isinstance = type, len, isinstance


# ---------------------------------------------------------------- seccomp (x86_64 only)

AUDIT_ARCH_X86_64 = 0xC000003E
_DENY_X86_64 = {
    # processes and programs
    57: "fork", 58: "vfork", 59: "execve", 322: "execveat",
    # network
    41: "socket", 42: "connect", 43: "accept", 49: "bind", 50: "listen", 53: "socketpair", 288: "accept4",
    # other processes
    101: "ptrace", 200: "tkill", 310: "process_vm_readv", 311: "process_vm_writev", 312: "kcmp",
    424: "pidfd_send_signal", 434: "pidfd_open", 438: "pidfd_getfd",
    # namespaces, mounts, kernel surface
    155: "pivot_root", 161: "chroot", 165: "mount", 166: "umount2", 272: "unshare", 308: "setns",
    428: "open_tree", 429: "move_mount", 430: "fsopen", 431: "fsconfig", 432: "fsmount", 433: "fspick",
    442: "mount_setattr", 248: "add_key", 249: "request_key", 250: "keyctl", 321: "bpf",
    298: "perf_event_open", 323: "userfaultfd", 425: "io_uring_setup", 426: "io_uring_enter",
    427: "io_uring_register", 135: "personality", 303: "name_to_handle_at", 304: "open_by_handle_at",
    175: "init_module", 313: "finit_module", 176: "delete_module", 246: "kexec_load",
    320: "kexec_file_load", 169: "reboot", 167: "swapon", 168: "swapoff", 163: "acct",
    179: "quotactl", 133: "mknod", 259: "mknodat", 300: "fanotify_init",
}
_NR_CLONE, _NR_CLONE3, _NR_KILL, _NR_TGKILL = 56, 435, 62, 234
_CLONE_THREAD = 0x00010000
_RET_ALLOW, _RET_KILL = 0x7FFF0000, 0x80000000
_EPERM, _ENOSYS = 1, 38


def _ret_errno(err):
    return 0x00050000 | err


def seccomp_supported():
    return os.uname().machine == "x86_64"


def seccomp_program(pid):
    """Classic BPF for the test child; ``pid`` is the only process it may signal."""
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ins = [
        (LD, 0, 0, 4),                       # A = arch
        (JEQ, 1, 0, AUDIT_ARCH_X86_64),
        (RET, 0, 0, _RET_KILL),
        (LD, 0, 0, 0),                       # A = syscall nr
        (JGE, 0, 1, 0x40000000),             # x32 ABI
        (RET, 0, 0, _ret_errno(_EPERM)),
        (JEQ, 0, 1, _NR_CLONE3),             # glibc falls back to clone()
        (RET, 0, 0, _ret_errno(_ENOSYS)),
        (JEQ, 0, 4, _NR_CLONE),              # clone: threads only
        (LD, 0, 0, 16),
        (JSET, 0, 1, _CLONE_THREAD),
        (RET, 0, 0, _RET_ALLOW),
        (RET, 0, 0, _ret_errno(_EPERM)),
    ]
    for nr in (_NR_KILL, _NR_TGKILL):        # signals: only to itself
        ins += [(JEQ, 0, 4, nr), (LD, 0, 0, 16), (JEQ, 0, 1, pid), (RET, 0, 0, _RET_ALLOW),
                (RET, 0, 0, _ret_errno(_EPERM))]
    for nr in sorted(_DENY_X86_64):
        ins += [(JEQ, 0, 1, nr), (RET, 0, 0, _ret_errno(_EPERM))]
    ins.append((RET, 0, 0, _RET_ALLOW))
    return ins


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def prctl(option, arg2=0, arg3=0):
    """``prctl(2)``; raises OSError when the kernel refuses (it returns -1 and sets errno)."""
    ret = _libc.prctl(option, arg2, arg3, 0, 0)
    if ret == -1:
        err = ctypes.get_errno()
        raise OSError(err, "prctl(%d, %d) failed: %s" % (option, arg2, os.strerror(err)))
    return ret


def make_undumpable():
    """PR_SET_DUMPABLE 0, then read it back: same-uid processes (the test children) can no longer
    open /proc/<this process>/fd/* or /proc/<this process>/mem. Raises OSError when it does not hold."""
    prctl(PR_SET_DUMPABLE, 0)
    if prctl(PR_GET_DUMPABLE) != 0:
        raise OSError(0, "PR_SET_DUMPABLE 0 did not hold")


_PID_PLACEHOLDER = 0x7FFFFFFF
_TEMPLATE = None  # (array, indices of the pid constant), built once in the warden


def _template():
    global _TEMPLATE
    if _TEMPLATE is None:
        ins = seccomp_program(_PID_PLACEHOLDER)
        arr = (_SockFilter * _len(ins))(*[_SockFilter(*i) for i in ins])
        _TEMPLATE = (arr, [i for i, x in enumerate(ins) if x[3] == _PID_PLACEHOLDER])
    return _TEMPLATE


def install_seccomp(pid):
    arr, slots = _template()
    for i in slots:
        arr[i].k = pid
    prog = _SockFprog(_len(arr), arr)
    prctl(38, 1)                               # PR_SET_NO_NEW_PRIVS
    prctl(22, 2, ctypes.addressof(prog))       # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


# ---------------------------------------------------------------- plain data

class Unplain(Exception):
    pass


def encode(x, depth=0, budget=None):
    """Type-tagged plain data; exact types only (subclasses of int/str/list... are refused)."""
    if budget is None:
        budget = [1_000_000]
    budget[0] -= 1
    if budget[0] < 0 or depth > 100:
        raise Unplain("result too large or too deeply nested")
    t = _type(x)
    if x is None:
        return None
    if t is bool:
        return ["b", x]
    if t is int:
        return ["i", format(x, "x")]
    if t is float:
        return ["f", x.hex()]
    if t is str:
        return ["s", x]
    if t is bytes:
        return ["y", x.hex()]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
        return [tag, [encode(v, depth + 1, budget) for v in x]]
    if t is dict:
        return ["d", [[encode(k, depth + 1, budget), encode(v, depth + 1, budget)] for k, v in x.items()]]
    raise Unplain("result of type %s is not plain data" % getattr(t, "__name__", "?"))


def _short(exc):
    try:
        msg = str(exc)
    except BaseException:
        msg = "<unprintable>"
    return [getattr(_type(exc), "__name__", "Exception")[:100], msg[:300]]


# ---------------------------------------------------------------- the test child

def _read_nonce(read):
    """This test's nonce from the challenge channel (the warden writes it after reading "C")."""
    buf = b""
    while not buf.endswith(b"\n") and _len(buf) < 64:
        chunk = read(CHALLENGE_FD, 64 - _len(buf))
        if not chunk:
            break
        buf += chunk
    return buf[:-1].decode("ascii", "replace") if buf.endswith(b"\n") else ""


def _child(code, prelude, exprs, res_w, out_w, chal_r, limits):
    """Runs in the forked child; never returns."""
    report_fd = res_w
    try:
        devnull = os.open("/dev/null", os.O_RDONLY)
        # lift the pipes above 0..4 first, so that no dup2 below overwrites another of them
        res_w, out_w, chal_r = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in (res_w, out_w, chal_r)]
        report_fd = res_w
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.dup2(res_w, RESULT_FD)
        os.dup2(chal_r, CHALLENGE_FD)
        report_fd = RESULT_FD
        os.closerange(CHALLENGE_FD + 1, 1 << 16)
        os.chdir(WORKDIR)
        cpu = int(limits["timeout_s"]) + 1
        mem = int(limits["memory_mb"]) << 20
        fsize = int(limits["fsize_mb"]) << 20
        for res, val in ((resource.RLIMIT_CPU, (cpu, cpu + 1)), (resource.RLIMIT_AS, (mem, mem)),
                         (resource.RLIMIT_FSIZE, (fsize, fsize)), (resource.RLIMIT_CORE, (0, 0)),
                         (resource.RLIMIT_NOFILE, (int(limits["nofile"]),) * 2),
                         (resource.RLIMIT_NPROC, (64, 64))):
            resource.setrlimit(res, val)
        if limits.get("seccomp", True):
            install_seccomp(os.getpid())
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)
    except BaseException as exc:
        os.write(report_fd, ("R" + json.dumps({"e": _short(exc), "w": "setup"}) + "\n").encode())
        os._exit(0)
    write, read = os.write, os.read
    import builtins
    saved_builtins = dict(builtins.__dict__)  # restored before we serialize, so patching them cannot break the report
    ns = {"__name__": "solution", "__builtins__": __builtins__}
    where = "import"
    try:
        exec(code, ns)
        write(RESULT_FD, b"I\n")
        where = "prelude"
        for stmt, is_import in prelude:
            try:
                exec(stmt, ns)
            except ImportError:
                if not is_import:
                    raise
        where = "test"
        write(RESULT_FD, b"C\n")  # the call starts: the warden releases this test's nonce now
        results = [eval(e, ns) for e in exprs]
        builtins.__dict__.update(saved_builtins)
        values = [encode(r) for r in results]
        line = json.dumps({"n": _read_nonce(read), "v": values})  # read only after the call returned
    except Unplain as exc:
        line = json.dumps({"u": str(exc)[:300]})
    except BaseException as exc:
        try:
            line = json.dumps({"e": _short(exc), "w": where})
        except BaseException:
            line = '{"e": ["Exception", "unreportable"], "w": "%s"}' % where
    data = ("R" + line + "\n").encode("utf-8", "surrogatepass")
    while data:
        n = write(RESULT_FD, data)
        data = data[n:]
    os._exit(0)


# ---------------------------------------------------------------- the warden

def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def read_channel(data, nonce):
    """Parse what a test child wrote on its result channel: ``(imported, payload, why)``.

    The only accepted shapes are ``[I] [C] R<json>`` (``C`` only after ``I``), one line each, and
    nothing after the report. A report of values (``"v"``) counts only when the child announced
    the call (``I``, ``C``) and the report carries ``nonce``, which the warden released after that
    announcement; anything written before the release cannot carry it. Reports of errors need no
    nonce: an error can never become a pass. ``payload`` is None when nothing counts; ``why`` says
    why."""
    imported = data[:2] == b"I\n"
    rest = data[2:] if imported else data
    called = imported and rest[:2] == b"C\n"
    rest = rest[2:] if called else rest
    if not rest:
        return imported, None, "without a result"
    if not (rest[:1] == b"R" and rest[-1:] == b"\n" and rest.count(b"\n") == 1):
        return imported, None, "with a result channel that does not follow the protocol"
    try:
        payload = json.loads(rest[1:].decode("utf-8", "surrogatepass"))
    except ValueError:
        return imported, None, "with a malformed result"
    if not _isinstance(payload, dict):
        return imported, None, "with a malformed result"
    if "v" in payload and not (called and nonce is not None and payload.get("n") == nonce):
        return imported, None, "with a result not bound to this test's call (written before the call started)"
    return imported, payload, ""


def run_test(code, prelude, exprs, limits):
    """Fork one child for one test and watch it; returns a report dict (no verdict)."""
    res_r, res_w = os.pipe()
    out_r, out_w = os.pipe()
    chal_r, chal_w = os.pipe()
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(res_r)
        os.close(out_r)
        os.close(chal_w)
        _child(code, prelude, exprs, res_w, out_w, chal_r, limits)
    os.close(res_w)
    os.close(out_w)
    os.close(chal_r)
    os.set_blocking(chal_w, False)  # a child that fills its own challenge pipe cannot block the warden
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    deadline = t0 + float(limits["timeout_s"])
    result, out_n, reason, nonce = bytearray(), 0, None, None
    watch = {res_r, out_r} | ({pidfd} if pidfd is not None else set())
    exited = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            reason = reason or "timeout"
            _kill(pid)
            break
        fds = [f for f in watch if f != pidfd or not exited]
        if not fds:
            if os.waitpid(pid, os.WNOHANG)[0]:
                break
            time.sleep(0.002)
            continue
        ready, _, _ = select.select(fds, [], [], min(left, 0.05 if pidfd is None else left))
        for fd in ready:
            if fd == pidfd:
                exited = True
                continue
            data = os.read(fd, 1 << 16)
            if not data:
                watch.discard(fd)
            elif fd == res_r:
                result += data
                if _len(result) > int(limits["result_bytes"]):
                    reason = "result_limit"
                elif nonce is None and result[:4] == b"I\nC\n":
                    nonce = os.urandom(NONCE_BYTES).hex()  # made now: it never existed before the call
                    try:
                        os.write(chal_w, (nonce + "\n").encode())
                    except OSError:  # the child filled or broke its challenge pipe itself
                        nonce = ""
            else:
                out_n += _len(data)
                if out_n > int(limits["output_bytes"]):
                    reason = "output_limit"
        if reason:
            _kill(pid)
            break
        if exited and res_r not in watch and out_r not in watch:
            break
        if pidfd is None and res_r not in watch and out_r not in watch:
            watch = set()
    _, status = os.waitpid(pid, 0)
    duration = time.monotonic() - t0
    for fd in (res_r, out_r, chal_w) + ((pidfd,) if pidfd is not None else ()):
        os.close(fd)
    imported, payload, why = read_channel(bytes(result), nonce or None)
    report = {"duration": duration, "imported": imported, "output_bytes": out_n}
    if reason:
        report["status"] = reason
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        report["status"] = "timeout" if sig == signal.SIGXCPU else "crashed"
        report["detail"] = "killed by signal %d" % sig
    elif payload is None:
        report["status"] = "crashed"
        report["detail"] = "exited with code %d %s" % (os.WEXITSTATUS(status), why)
    else:
        report["status"] = "reported"
        report["payload"] = payload
    return report


def wipe():
    """Empty the scratch directories; return True when they are empty afterwards."""
    clean = True
    for top in SCRATCH:
        if not os.path.isdir(top) or not os.access(top, os.W_OK):
            continue
        for root, dirs, _files in os.walk(top):      # restore permissions first (chmod 000 dirs)
            for d in dirs:
                try:
                    os.chmod(os.path.join(root, d), 0o700)
                except OSError:
                    pass
        for root, dirs, files in os.walk(top, topdown=False):
            for name in files:
                try:
                    os.unlink(os.path.join(root, name))
                except OSError:
                    pass
            for name in dirs:
                path = os.path.join(root, name)
                try:
                    os.unlink(path) if os.path.islink(path) else os.rmdir(path)
                except OSError:
                    pass
        try:
            clean = clean and not os.listdir(top)
        except OSError:
            clean = False
    return clean


def run_job(job):
    limits = job["limits"]
    try:
        code = compile(job["program"], "solution.py", "exec")
    except BaseException as exc:
        yield {"op": "test", "i": -1, "status": "rejected", "detail": ": ".join(_short(exc))}
        return
    preludes = []
    for src in job["preludes"]:
        stmts = []
        for part in src:
            stmts.append((compile(part["src"], "tests.py", "exec"), bool(part["import"])))
        preludes.append(stmts)
    import_failure = None
    for i, test in enumerate(job["tests"]):
        if import_failure is not None:
            rep = dict(import_failure)
            rep["duration"] = 0.0
        else:
            exprs = [compile(e, "tests.py", "eval") for e in test["exprs"]]
            rep = run_test(code, preludes[test["p"]], exprs, limits)
            failed_import = not rep["imported"] and not (
                rep["status"] == "reported" and rep["payload"].get("w") == "setup")
            if failed_import:
                import_failure = dict(rep, at_import=True)
                rep = import_failure
        rep = dict(rep, op="test", i=i)
        yield rep


def main():
    global WORKDIR, SCRATCH
    if len(sys.argv) > 1:
        WORKDIR, SCRATCH = sys.argv[1], sys.argv[1:]
    host_in = os.fdopen(os.dup(0), "rb")
    host_out = os.dup(1)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.environ.clear()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)

    def send(obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            data = data[os.write(host_out, data):]

    try:
        make_undumpable()  # children must not reach /proc/<warden>/: fail closed when that does not hold
    except OSError as exc:
        send({"op": "refused", "detail": "cannot make the runner non-dumpable: %s" % exc})
        return
    os.makedirs(WORKDIR, exist_ok=True)
    if seccomp_supported():
        _template()
    send({"op": "hello", "protocol": PROTOCOL, "seccomp": seccomp_supported(),
          "python": sys.version.split()[0], "uid": os.getuid(), "clean": wipe()})
    while True:
        line = host_in.readline()
        if not line:
            return
        job = json.loads(line)
        if job.get("op") == "quit":
            return
        limits = dict(job["limits"])
        limits["seccomp"] = seccomp_supported() and limits.get("seccomp", True)
        job["limits"] = limits
        for rep in run_job(job):
            rep["job"] = job.get("job")
            send(rep)
        send({"op": "done", "job": job.get("job"), "clean": wipe()})


if __name__ == "__main__":
    main()
