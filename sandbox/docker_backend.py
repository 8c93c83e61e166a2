"""The Docker backend: a locally built image, hardened warm containers, reaping of leftovers.

What: ``build_image`` tars a minimal rootfs - the host's Python interpreter, its standard
library (minus tests, tkinter, idle...), the shared libraries ``ldd`` reports, and
``sandbox/runner.py`` - and ``docker import``s it. No registry is contacted. The image carries a
label with a hash of the runner, so a stale image is rebuilt automatically on first use.

Each worker is one container created with: ``network none``, read-only root, a 16 MiB tmpfs on
/tmp (nosuid, nodev, noexec), memory = memory+swap limit, ``pids-limit``, one CPU, ``cap-drop
ALL``, ``no-new-privileges``, user 65534, nofile/fsize/core ulimits, ``--init``, log driver
``none``, no mounts, no environment from the host. Its main process only waits for stdin to
close (attached with ``stdin_once``) or its lease ends: when the host process dies, the attach
closes and the container stops and is removed. The runner itself is started with ``exec`` so
that it is the only process holding the pipes to the host (tini, pid 1, holds only the keeper's
stdio).

Leases: many hosts may share one engine (DESIGN, scale-out), so a container's owner cannot be
checked from another host. Each container is labelled ``plumline.sandbox=1``, its owner's host
and pid, and ``plumline.lease_until`` (unix time). The lease covers the container's whole life:
its keeper exits when the lease ends, and the pool replaces a worker before starting a job
that the rest of its lease could not cover. Every new pool reaps labelled containers whose
lease ended more than ``REAP_GRACE_S`` ago (clock skew between hosts), and this host's
containers whose owning process is gone. Another host's container is never reaped before its
lease ends, whatever state its owner is in.

How to run: ``plumline sandbox build-image`` (or just use the backend; it builds on first use).

Not protected against: kernel exploits that escape a container; the Docker daemon's own
attack surface; side channels between containers on the same host.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable

from sandbox.config import SandboxConfig
from sandbox.pool import RUNNER, SandboxUnavailable, Worker, _python_for_sandbox

LABEL = "plumline.sandbox"
LEASE_LABEL = "plumline.lease_until"  # unix time at which the container's keeper exits
LEASE_S = 3600.0                      # a worker container's lease, unless its first job needs longer
REAP_GRACE_S = 300.0                  # an expired lease is reaped only this much later (clock skew)
IMAGE_FORMAT = "2"  # bump when the rootfs layout changes
RUNNER_IN_IMAGE = "/opt/plumline/runner.py"
_STDLIB_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data",
                "site-packages", "dist-packages", "__phello__", "venv"}


def _client(timeout: int = 30):
    import docker

    return docker.from_env(timeout=timeout)


def engine_status() -> tuple[bool, str]:
    """(True, where) when a Docker engine answers, else (False, why). Never raises."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return False, "the docker Python package is not installed"
    try:
        client = _client(timeout=3)
        client.ping()
        version = client.version().get("Version", "?")
        return True, f"Docker engine {version} answers at {client.api.base_url}"
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return False, f"no Docker engine answers ({msg[:160]})"


def list_containers() -> list[str]:
    """Ids of every plumline sandbox container on the engine (running or not); [] without an engine."""
    ok, _ = engine_status()
    if not ok:
        return []
    # the low-level listing: containers.list() inspects each container afterwards, which raises
    # NotFound when one is removed in between (another pool reaping, a container exiting)
    return [c["Id"] for c in _client().api.containers(all=True, filters={"label": f"{LABEL}=1"})]


def lease_expired(labels: dict, created: float | None, now: float) -> bool:
    """Has this container's lease ended (plus the grace for clock skew)? Containers from before
    leases existed are taken to hold one of ``LEASE_S`` from their creation."""
    try:
        until = float(labels[LEASE_LABEL])
    except (KeyError, TypeError, ValueError):
        if created is None:
            return False
        until = float(created) + LEASE_S
    return now > until + REAP_GRACE_S


def _owner_gone_here(labels: dict) -> bool:
    """This host's container whose owning process has exited (another host's: never known here)."""
    host, _, pid = str(labels.get("plumline.owner", "")).rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def reap(client=None, now: float | None = None) -> int:
    """Remove sandbox containers whose lease has ended, and this host's whose owner is gone
    (left by a crashed or killed host). A live container of another host is never removed."""
    client = client or _client()
    now = time.time() if now is None else now
    n = 0
    for c in client.api.containers(all=True, filters={"label": f"{LABEL}=1"}):
        labels = c.get("Labels") or {}
        if lease_expired(labels, c.get("Created"), now) or _owner_gone_here(labels):
            try:
                client.api.remove_container(c["Id"], force=True)
                n += 1
            except Exception:  # noqa: BLE001 - already gone
                pass
    return n


# ---------------------------------------------------------------- the image

def _python_layout(python: str) -> dict:
    code = ("import json, sys, sysconfig; print(json.dumps({'exe': sys.executable, 'stdlib': sysconfig.get_path('stdlib'),"
            " 'dynload': sysconfig.get_path('platstdlib') + '/lib-dynload', 'version': sys.version.split()[0]}))")
    out = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True, text=True, check=True, env={}).stdout
    return json.loads(out)


def _ldd(path: str) -> list[str]:
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts:
            i = parts.index("=>")
            if i + 1 < len(parts) and parts[i + 1].startswith("/"):
                libs.append(parts[i + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def image_digest(config: SandboxConfig) -> str:
    """Hash of what goes into the image: the runner, the interpreter path, the layout version."""
    h = hashlib.sha256(RUNNER.read_bytes())
    h.update(os.path.realpath(_python_for_sandbox(config)).encode())
    h.update(IMAGE_FORMAT.encode())
    return h.hexdigest()[:16]


def _write_rootfs(tar_path: Path, config: SandboxConfig, say: Callable[[str], None]) -> int:
    python = os.path.realpath(_python_for_sandbox(config))
    layout = _python_layout(python)
    files: set[str] = {python}
    for root, dirs, names in os.walk(layout["stdlib"]):
        if root == layout["stdlib"]:
            dirs[:] = [d for d in dirs if d not in _STDLIB_SKIP and not d.startswith("config-")]
        for n in names:
            files.add(os.path.join(root, n))
    libs = set(_ldd(python))
    for so in Path(layout["dynload"]).glob("*.so"):
        libs.update(_ldd(str(so)))
    say(f"rootfs: Python {layout['version']} from {python}, {len(files)} stdlib files, {len(libs)} libraries")
    added: set[str] = set()
    with tarfile.open(tar_path, "w") as tar:
        def add_dir(path: str, mode: int = 0o755) -> None:
            if path in ("", "/") or path in added:
                return
            add_dir(os.path.dirname(path))
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
            added.add(path)

        def add_link(path: str, target: str) -> None:
            if path in added:
                return
            add_dir(os.path.dirname(path))
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
            added.add(path)

        for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(top):
                add_link(top, os.readlink(top))

        def add_file(path: str) -> None:
            real = os.path.realpath(path)
            if real in added:
                return
            add_dir(os.path.dirname(real))
            info = tar.gettarinfo(real, arcname=real.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode &= 0o755
            with open(real, "rb") as fh:
                tar.addfile(info, fh)
            added.add(real)

        for f in sorted(files):
            if os.path.isfile(f):
                add_file(f)
        for lib in sorted(libs):
            add_file(lib)
            # keep the name the loader asks for (a symlink to the real file)
            name = os.path.join(os.path.realpath(os.path.dirname(lib)), os.path.basename(lib))
            if name != os.path.realpath(lib):
                add_link(name, os.path.realpath(lib))
        add_link("/usr/bin/python3", python)
        add_dir("/tmp", 0o1777)
        add_dir("/opt/plumline")
        add_dir("/etc")
        for name, text in (("/etc/passwd", "root:x:0:0::/:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n"),
                           ("/etc/group", "root:x:0:\nnogroup:x:65534:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode = len(data), 0o644
            import io
            tar.addfile(info, io.BytesIO(data))
        info = tar.gettarinfo(str(RUNNER), arcname=RUNNER_IN_IMAGE.lstrip("/"))
        info.uid = info.gid = 0
        info.mode = 0o644
        with open(RUNNER, "rb") as fh:
            tar.addfile(info, fh)
    return tar_path.stat().st_size


def build_image(config: SandboxConfig | None = None, say: Callable[[str], None] = lambda m: None) -> str:
    """Build the sandbox image from a local rootfs tar with ``docker import``. Returns the image tag."""
    config = config or SandboxConfig()
    client = _client(timeout=300)
    repo, _, tag = config.image.rpartition(":") if ":" in config.image.split("/")[-1] else (config.image, "", "latest")
    digest = image_digest(config)
    with tempfile.TemporaryDirectory(prefix="plumline-rootfs-") as tmp:
        tar_path = Path(tmp) / "rootfs.tar"
        size = _write_rootfs(tar_path, config, say)
        say(f"rootfs tar: {size / 1e6:.1f} MB; importing as {repo}:{tag}")
        client.api.import_image_from_file(str(tar_path), repository=repo, tag=tag, changes=[
            f"LABEL {LABEL}.runner={digest}",
            f'CMD ["/usr/bin/python3", "-I", "-S", "-B", "{RUNNER_IN_IMAGE}"]',
            "WORKDIR /tmp",
        ])
    say(f"built {repo}:{tag} (runner {digest})")
    return f"{repo}:{tag}"


def ensure_image(config: SandboxConfig, say: Callable[[str], None] = lambda m: None) -> None:
    """Build the image when it is missing or was built from another runner."""
    import docker

    client = _client()
    try:
        image = client.images.get(config.image)
        if (image.labels or {}).get(f"{LABEL}.runner") == image_digest(config):
            return
        say(f"image {config.image} is out of date; rebuilding")
    except docker.errors.ImageNotFound:
        say(f"image {config.image} not found; building it locally")
    build_image(config, say)


# ---------------------------------------------------------------- containers

def container_options(config: SandboxConfig, lease_until: float | None = None) -> tuple[dict, dict]:
    """The hardened create options (docker-py spelling of the CLI flags): (host config, container)."""
    lease_until = time.time() + LEASE_S if lease_until is None else lease_until
    from docker.types import LogConfig, Ulimit

    mem = f"{config.memory_mb + 128}m"  # the test's own limit is RLIMIT_AS; this bounds the whole worker
    host = dict(
        network_mode="none", read_only=True, tmpfs={"/tmp": "rw,nosuid,nodev,noexec,size=16m,mode=1777"},
        shm_size=1 << 20, mem_limit=mem, memswap_limit=mem, pids_limit=64, nano_cpus=1_000_000_000,
        cap_drop=["ALL"], security_opt=["no-new-privileges"],
        ulimits=[Ulimit(name="nofile", soft=256, hard=256), Ulimit(name="fsize", soft=16 << 20, hard=16 << 20),
                 Ulimit(name="core", soft=0, hard=0)],
        init=True, log_config=LogConfig(type="none"), auto_remove=True,
    )
    container = dict(
        user="65534:65534", environment={}, hostname="sandbox", working_dir="/tmp", network_disabled=True,
        labels={LABEL: "1", "plumline.owner": f"{socket.gethostname()}:{os.getpid()}",
                LEASE_LABEL: str(int(lease_until))},
        stdin_open=True, detach=False,  # docker-py sets StdinOnce when stdin is open and not detached
    )
    return host, container


# The container's main process: waits for EOF on stdin (the host is gone) or the lease's end.
# Whatever else arrives on stdin is read and dropped (a candidate can write to pid 1's stdin).
_KEEPER = ("import os, select, time\nend = time.monotonic() + %d\nwhile time.monotonic() < end:\n"
           "    if select.select([0], [], [], max(0.0, end - time.monotonic()))[0] and not os.read(0, 1 << 16):\n"
           "        break\n")


class _Frames:
    """Demultiplex Docker's attach/exec stream (8-byte headers); keep stdout only."""

    def __init__(self, sock) -> None:
        self.sock = sock
        self.buf = b""

    def read(self, timeout: float) -> bytes | None:
        import select

        out = b""
        while True:
            while len(self.buf) >= 8:
                kind, size = self.buf[0], struct.unpack(">I", self.buf[4:8])[0]
                if len(self.buf) < 8 + size:
                    break
                payload, self.buf = self.buf[8:8 + size], self.buf[8 + size:]
                if kind == 1:
                    out += payload
            if out:
                return out
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return None
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                return b""
            self.buf += chunk


def _raw(sock):
    return getattr(sock, "_sock", sock)


class DockerWorker(Worker):
    """One hardened container; the runner is exec'd in it and speaks over the exec's stdio."""

    name = "docker"

    def __init__(self, client, config: SandboxConfig) -> None:
        super().__init__()
        self.client = client
        self.config = config
        self.container_id: str | None = None
        self._keeper = None
        self._sock = None
        self._frames: _Frames | None = None
        self.lease_s = LEASE_S

    def _start(self) -> None:
        api = self.client.api
        lease = max(self.lease_s, self.need_s)
        until = time.time() + lease
        host, opts = container_options(self.config, until)
        keeper = _KEEPER % lease
        cid = api.create_container(self.config.image, command=["/usr/bin/python3", "-I", "-S", "-c", keeper],
                                   host_config=api.create_host_config(**host), **opts)["Id"]
        self.container_id = cid
        self.expires_at = until
        # Attach the keeper's stdin before starting: when this process dies, stdin closes and the
        # container stops (stdin_once) and is removed (auto_remove).
        self._keeper = api.attach_socket(cid, params={"stdin": 1, "stream": 1})
        api.start(cid)
        exec_id = api.exec_create(cid, ["/usr/bin/python3", "-I", "-S", "-B", RUNNER_IN_IMAGE], stdin=True,
                                  stdout=True, stderr=False, tty=False, user="65534:65534", workdir="/tmp")["Id"]
        self._sock = api.exec_start(exec_id, socket=True)
        self._frames = _Frames(_raw(self._sock))

    def _send(self, data: bytes) -> None:
        _raw(self._sock).sendall(data)

    def _recv_chunk(self, timeout: float) -> bytes | None:
        assert self._frames is not None
        return self._frames.read(timeout)

    def _kill(self) -> None:
        cid, self.container_id = self.container_id, None
        self.expires_at = None
        for s in (self._sock, self._keeper):
            try:
                s and s.close()
            except Exception:  # noqa: BLE001
                pass
        self._sock = self._keeper = self._frames = None
        if cid:
            try:
                self.client.api.remove_container(cid, force=True)
            except Exception:  # noqa: BLE001 - auto_remove may have won the race
                pass


def docker_worker_factory(config: SandboxConfig, say: Callable[[str], None] = lambda m: None) -> Callable[[], Worker]:
    ok, why = engine_status()
    if not ok:
        raise SandboxUnavailable(f"docker backend unavailable: {why}. Start Docker (see .ci/start-dockerd) "
                                 "or set sandbox.backend = \"process\".")
    client = _client()
    reap(client)
    ensure_image(config, say)
    return lambda: DockerWorker(client, config)
