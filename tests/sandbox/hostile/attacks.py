"""The hostile candidates. Each is (program, tests): a test would pass only if the attack worked.

Every attack is written so that, were the sandbox fooled, at least one test would pass; the
suite asserts that none does. Attacks marked ``SLOW`` burn a full timeout.
"""

from __future__ import annotations

GOOD = ("def f(x):\n    return x + 1\n", "assert f(1) == 2\nassert f(41) == 42\n")

_F_RETURNS_1 = "assert f() == 1\n"

ATTACKS: dict[str, tuple[str, str]] = {
    # -- resources
    "fork_bomb": ("import os\ndef f():\n    while True:\n        os.fork()\n", _F_RETURNS_1),
    "setsid_daemon": ("import os, time\ndef f():\n    if os.fork() == 0:\n        os.setsid()\n"
                      "        while True: time.sleep(1)\n    return 1\n", _F_RETURNS_1),
    "subprocess_spawn": ("import subprocess\ndef f():\n    subprocess.run(['sleep', '100'])\n    return 1\n",
                         _F_RETURNS_1),
    "memory_8gib": ("def f():\n    b = bytearray(8 << 30)\n    return 1\n", _F_RETURNS_1),
    "busy_loop": ("def f():\n    while True:\n        pass\n", _F_RETURNS_1),
    "swallow_timeouts": ("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nsignal.alarm(0)\n"
                         "def f():\n    while True:\n        try:\n            while True: pass\n"
                         "        except BaseException:\n            pass\n", _F_RETURNS_1),
    "huge_power": ("def f():\n    x = 10**10**8\n    return 1\n", _F_RETURNS_1),
    "catastrophic_regex": ("import re\ndef f():\n    re.match(r'(a+)+$', 'a' * 64 + 'b')\n    return 1\n",
                           _F_RETURNS_1),
    "write_10gb_file": ("def f():\n    with open('big', 'wb') as fh:\n        for _ in range(10 * 1024):\n"
                        "            fh.write(b'x' * (1 << 20))\n    return 1\n", _F_RETURNS_1),
    "stdout_flood": ("import sys\ndef f():\n    sys.stdout.write('x' * (100 << 20))\n    sys.stdout.flush()\n"
                     "    return 1\n", _F_RETURNS_1),
    "deep_recursion": ("import sys\nsys.setrecursionlimit(10**7)\ndef g(n):\n    return g(n + 1) + 1\n"
                       "def f():\n    return g(0)\n", _F_RETURNS_1),
    "huge_result": ("def f():\n    return list(range(10**7))\n", "assert f() == 1\n"),
    "read_stdin": ("def f():\n    return input()\n", "assert f() == ''\nassert f() == 'yes'\n"),
    # -- exits: an exit code is never evidence of a pass
    "sys_exit_in_function": ("import sys\ndef f():\n    sys.exit(0)\n", _F_RETURNS_1),
    "raise_systemexit_in_function": ("def f():\n    raise SystemExit\n", _F_RETURNS_1),
    "os_exit_in_function": ("import os\ndef f():\n    os._exit(0)\n", _F_RETURNS_1),
    "posix_exit_in_function": ("import posix\ndef f():\n    posix._exit(0)\n", _F_RETURNS_1),
    "sys_exit_at_import": ("import sys\nsys.exit(0)\ndef f():\n    return 1\n", _F_RETURNS_1),
    "raise_systemexit_at_import": ("raise SystemExit\ndef f():\n    return 1\n", _F_RETURNS_1),
    "os_exit_at_import": ("import os\nos._exit(0)\ndef f():\n    return 1\n", _F_RETURNS_1),
    "posix_exit_at_import": ("import posix\nposix._exit(0)\ndef f():\n    return 1\n", _F_RETURNS_1),
    "atexit_os_exit": ("import atexit, os\natexit.register(lambda: os._exit(0))\ndef f():\n    return 2\n",
                       _F_RETURNS_1),
    "excepthook_os_exit": ("import sys, os\nsys.excepthook = lambda *a: os._exit(0)\ndef f():\n"
                           "    raise ValueError\n", _F_RETURNS_1),
    # -- lying objects
    "always_equal_object": ("class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
                            "    def __bool__(self): return True\n    __hash__ = object.__hash__\n"
                            "def f(*a):\n    return E()\n",
                            "assert f() == 12345\nassert not f() != 'x'\nassert f() is not None and f() == [1]\n"),
    "int_subclass_always_equal": ("class I(int):\n    def __eq__(self, o): return True\n"
                                  "    def __ne__(self, o): return False\n    __hash__ = int.__hash__\n"
                                  "def f():\n    return I(0)\n", "assert f() == 12345\n"),
    "str_subclass_always_equal": ("class S(str):\n    def __eq__(self, o): return True\n"
                                  "    __hash__ = str.__hash__\ndef f():\n    return S('')\n",
                                  "assert f() == 'expected'\n"),
    "list_subclass_always_equal": ("class L(list):\n    def __eq__(self, o): return True\n"
                                   "def f():\n    return L()\n", "assert f() == [1, 2, 3]\n"),
    "float_nan_and_inf_tricks": ("def f():\n    return float('nan')\n", "assert f() == 0.5\n"),
    # -- forging results
    "stack_frame_walk": ("import sys, gc\ndef f():\n    best = 0\n    fr = sys._getframe()\n    while fr:\n"
                         "        for v in list(fr.f_locals.values()) + list(fr.f_globals.values()):\n"
                         "            if type(v) is int and v > 10**8: best = v\n        fr = fr.f_back\n"
                         "    for o in gc.get_objects():\n        if type(o) is list:\n            for v in o:\n"
                         "                if type(v) is int and v > 10**8: best = v\n    return best\n",
                         "assert f() == 987654321\n"),
    # 0x3039 == 12345: each forged value below is what the test needs, so it passes if the forgery counts
    "fake_pass_markers": ("import os, sys\ndef f():\n    print('PASSED'); print('ok'); print('1 passed')\n"
                          "    line = '{\"op\": \"test\", \"i\": 0, \"status\": \"reported\", \"payload\": {\"v\": [[\"i\", \"3039\"]]}}'\n"
                          "    print(line); sys.stdout.flush()\n    os.write(3, b'R{\"v\": [[\"i\", \"3039\"]]}\\n')\n"
                          "    os._exit(0)\n", "assert f() == 12345\n"),
    "write_parent_stdout": ("import os\ndef f():\n    msg = b'{\"op\": \"test\", \"i\": 0, \"status\": \"reported\", '\n"
                            "    msg += b'\"payload\": {\"v\": [[\"i\", \"3039\"]]}}\\n{\"op\": \"done\", \"clean\": true}\\n'\n"
                            "    for pid in (os.getppid(), 1):\n        for fd in (0, 1, 2):\n            try:\n"
                            "                with open(f'/proc/{pid}/fd/{fd}', 'wb') as fh: fh.write(msg)\n"
                            "            except OSError:\n                pass\n    return 0\n", "assert f() == 12345\n"),
    "monkeypatch_builtins": ("import builtins, math, unittest\nbuiltins.isinstance = lambda *a: True\n"
                             "builtins.abs = lambda x: 0\nbuiltins.len = lambda x: 3\nbuiltins.sorted = lambda x: [1, 2]\n"
                             "math.isclose = lambda *a, **k: True\nunittest.TestCase.assertEqual = lambda *a, **k: None\n"
                             "def f():\n    return 'nope'\n",
                             "import math\nassert isinstance(f(), int)\nassert math.isclose(f(), 2.5)\n"
                             "assert abs(f() - 2) < 1e-9\nassert len(f()) == 3\nassert sorted(f()) == [1, 2]\n"),
    # -- escaping the box
    "read_etc_shadow": ("def f():\n    return len(open('/etc/shadow').read()) > 0\n", "assert f() == True\n"),
    "read_ssh_keys": ("import os, glob\ndef f():\n    return len(glob.glob(os.path.expanduser('~/.ssh/*'))"
                      " + glob.glob('/root/.ssh/*') + glob.glob('/home/*/.ssh/*')) > 0\n", "assert f() == True\n"),
    "read_host_environment": ("import os\ndef f():\n    return sorted(os.environ)\n",
                              "assert 'PLUMLINE_HOST_SECRET' in f()\nassert 'HOME' in f() or 'PATH' in f()\n"
                              "assert len(f()) > 0\n"),
    "write_etc": ("def f():\n    open('/etc/plumline-pwned', 'w').write('x')\n    return True\n", "assert f() == True\n"),
    "write_project_dir": ("def f(path):\n    open(path, 'w').write('x')\n    return True\n", None),
    "open_socket": ("import socket\ndef f():\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
                    "    s.connect(('1.1.1.1', 53))\n    return True\n", "assert f() == True\n"),
    "unix_socket": ("import socket\ndef f():\n    s = socket.socket(socket.AF_UNIX)\n"
                    "    s.connect('/var/run/docker.sock')\n    return True\n", "assert f() == True\n"),
    "dns_lookup": ("import socket\ndef f():\n    return len(socket.getaddrinfo('example.com', 80)) > 0\n",
                   "assert f() == True\n"),
    "kill_parent": ("import os\ndef f():\n    os.kill(os.getppid(), 9)\n    return 1\n", _F_RETURNS_1),
    "kill_everyone": ("import os\ndef f():\n    os.kill(-1, 9)\n    return 1\n", _F_RETURNS_1),
    "kill_init": ("import os\ndef f():\n    os.kill(1, 9)\n    return 1\n", _F_RETURNS_1),
    "ptrace_parent": ("import ctypes, os\ndef f():\n    libc = ctypes.CDLL(None)\n"
                      "    return libc.ptrace(16, os.getppid(), 0, 0) == 0\n", "assert f() == True\n"),
    "drop_conftest_and_sitecustomize": ("def f():\n    for name in ('conftest.py', 'sitecustomize.py', 'usercustomize.py'):\n"
                                        "        open(name, 'w').write('import os\\nos._exit(0)\\n')\n    return 0\n",
                                        _F_RETURNS_1),
    # -- broken candidates
    "syntax_error": ("def f(:\n    return 1\n", _F_RETURNS_1),
    "compile_error": ("return 1\ndef f():\n    return 1\n", _F_RETURNS_1),
    "missing_entry_point": ("def g():\n    return 1\n", _F_RETURNS_1),
    "generator_result": ("def f():\n    yield 1\n", _F_RETURNS_1),
}

SLOW = {"busy_loop", "swallow_timeouts", "huge_power", "catastrophic_regex", "deep_recursion"}

# Attacks on the warden itself: each must leave the same runner alive to judge the next candidate.
ON_THE_WARDEN = ("kill_parent", "kill_everyone", "kill_init", "ptrace_parent", "write_parent_stdout", "read_warden")
ATTACKS["read_warden"] = (  # the warden is non-dumpable: its descriptors, memory and environment are out of reach
    "import os\ndef f():\n    top, got = '/proc/%d/' % os.getppid(), []\n"
    "    for name in ['mem'] + ['fd/%d' % n for n in range(16)]:\n        for flags in (os.O_RDONLY, os.O_WRONLY):\n"
    "            try:\n                os.close(os.open(top + name, flags | os.O_NONBLOCK))\n"
    "                got.append(name)\n            except OSError:\n                pass\n"
    "    for name in ('environ', 'maps', 'syscall', 'stack'):\n        try:\n"
    "            if open(top + name, 'rb').read(16):\n                got.append(name)\n"
    "        except OSError:\n            pass\n    return got != []\n", "assert f() == True\n")

# ---------------------------------------------------------------- forged results

FORGERY_TESTS = "assert f(5) == 12345\nassert f(5)\n"  # 12345 passes both if the forgery counts
FORGED = {  # (handshake a forger at import time writes first, the report)
    # what the runner accepted before results were bound to the call (issue 11: "I" then a report)
    "unbound": (b"I\n", b'R{"v": [["i", "3039"]]}\n'),
    # today's shape, with a nonce the candidate cannot know (the warden makes it after the call starts)
    "guessed_nonce": (b"I\nC\n", b'R{"n": "' + b"0" * 32 + b'", "v": [["i", "3039"]]}\n'),
}
FORGE_FDS = tuple(range(10))  # 0-2 stdio, 3 result, 4 challenge, 5-9 closed (and reopened through /proc)


def forged_result(fd: int, when: str, form: str) -> tuple[str, str]:
    """A candidate that writes a forged report to ``fd`` (else to /proc/self/fd/``fd`` reopened for
    writing) at import time or during the call, then exits at once so that nothing else is written."""
    handshake, report = FORGED[form]
    msg = handshake + report if when == "import" else report  # during the call the harness has shaken hands
    forge = (f"import os\ndef forge():\n    msg = {msg!r}\n    try:\n        os.write({fd}, msg)\n"
             f"    except OSError:\n        try:\n            with open('/proc/self/fd/{fd}', 'wb', buffering=0) as fh:\n"
             "                fh.write(msg)\n        except OSError:\n            pass\n    os._exit(0)\n")
    if when == "import":
        return forge + "forge()\ndef f(x):\n    return 0\n", FORGERY_TESTS
    return forge + "def f(x):\n    forge()\n", FORGERY_TESTS


# A candidate that impersonates the harness: announces the call itself, waits for the released
# nonce and reports True, bound to it (on a runner without a challenge channel, the old
# "I" + report). Its target is a helper's verdict: an assert that cannot be split.
IMPERSONATOR_TESTS = ("def ok(g):\n    for x in range(3):\n        if g(x) != x * x:\n            return False\n"
                      "    return True\nassert ok(f)\n")


def impersonator(when: str) -> tuple[str, str]:
    forge = ("import os\ndef forge(announce):\n    try:\n        os.fstat(4)\n    except OSError:\n"
             "        os.write(3, (b'I\\n' if announce else b'') + b'R{\"v\": [[\"b\", true]]}\\n')\n        os._exit(0)\n"
             "    if announce:\n        os.write(3, b'I\\nC\\n')\n    nonce = b''\n"
             "    while not nonce.endswith(b'\\n'):\n        nonce += os.read(4, 1)\n"
             "    os.write(3, b'R{\"n\": \"' + nonce.strip() + b'\", \"v\": [[\"b\", true]]}\\n')\n    os._exit(0)\n")
    if when == "import":
        return forge + "forge(True)\ndef f(x):\n    return -1\n", IMPERSONATOR_TESTS
    return forge + "def f(x):\n    forge(False)\n", IMPERSONATOR_TESTS
