"""``plumline schedule install|remove|show``: the user's scheduler entry for ``plumline nightly``.

Where available, a systemd *user* timer (``~/.config/systemd/user/plumline-nightly.{service,timer}``,
``Persistent=true`` so a night missed while the laptop slept runs at next boot, ``Nice=10`` and idle
I/O priority); otherwise one line in the user's crontab, tagged ``# plumline-nightly``. Both run
the same command with the same ``PLUMLINE_HOME`` / ``PLUMLINE_CONFIG`` as the shell that installed
it. Nothing needs root.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

MARK = "# plumline-nightly"
UNIT = "plumline-nightly"


def nightly_command() -> list[str]:
    exe = shutil.which("plumline")
    return [exe, "nightly"] if exe else [sys.executable, "-m", "agent.cli", "nightly"]


def _env() -> dict[str, str]:
    return {k: os.environ[k] for k in ("PLUMLINE_HOME", "PLUMLINE_CONFIG") if os.environ.get(k)}


def systemd_units(at: str) -> dict[str, str]:
    env = "".join(f"Environment={k}={v}\n" for k, v in _env().items())
    service = ("[Unit]\nDescription=plumline nightly: collect, train, gate, promote\n\n"
               "[Service]\nType=oneshot\nNice=10\nIOSchedulingClass=idle\n"
               f"{env}ExecStart={shlex.join(nightly_command())}\n")
    timer = ("[Unit]\nDescription=Run plumline nightly every day\n\n"
             f"[Timer]\nOnCalendar=*-*-* {at}:00\nPersistent=true\nRandomizedDelaySec=600\n\n"
             "[Install]\nWantedBy=timers.target\n")
    return {f"{UNIT}.service": service, f"{UNIT}.timer": timer}


def cron_line(at: str, log: Path) -> str:
    hh, mm = at.split(":")
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in _env().items())
    cmd = shlex.join(["nice", "-n", "10", *nightly_command()])
    return f"{int(mm)} {int(hh)} * * * {env + ' ' if env else ''}{cmd} >> {shlex.quote(str(log))} 2>&1 {MARK}"


def systemd_user_available() -> bool:
    if not shutil.which("systemctl"):
        return False
    try:
        return subprocess.run(["systemctl", "--user", "show-environment"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def _crontab() -> list[str]:
    if not shutil.which("crontab"):
        raise RuntimeError("neither a systemd user session nor crontab is available: run `plumline nightly` "
                           "from your own scheduler")
    out = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return out.stdout.splitlines() if out.returncode == 0 else []


def _write_crontab(lines: list[str]) -> None:
    subprocess.run(["crontab", "-"], input="\n".join(lines) + "\n", text=True, check=True)


def install(at: str, home: Path, *, backend: str = "auto") -> str:
    """Install (or replace) the entry; returns a sentence saying what was written where."""
    if backend == "systemd" or (backend == "auto" and systemd_user_available()):
        folder = unit_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in systemd_units(at).items():
            (folder / name).write_text(text)
        subprocess.run(["systemctl", "--user", "daemon-reload"], check=False)
        subprocess.run(["systemctl", "--user", "enable", "--now", f"{UNIT}.timer"], check=False)
        return f"systemd user timer {UNIT}.timer at {at} daily (units in {folder})"
    lines = [ln for ln in _crontab() if MARK not in ln]
    line = cron_line(at, home / "nightly.log")
    _write_crontab(lines + [line])
    return f"crontab entry: {line}"


def remove() -> str:
    said = []
    folder = unit_dir()
    if (folder / f"{UNIT}.timer").exists():
        subprocess.run(["systemctl", "--user", "disable", "--now", f"{UNIT}.timer"], check=False, capture_output=True)
        for name in (f"{UNIT}.timer", f"{UNIT}.service"):
            (folder / name).unlink(missing_ok=True)
        said.append("systemd user timer removed")
    if shutil.which("crontab"):
        lines = _crontab()
        if any(MARK in ln for ln in lines):
            _write_crontab([ln for ln in lines if MARK not in ln])
            said.append("crontab entry removed")
    return "; ".join(said) or "no plumline schedule was installed"


def show() -> str:
    folder = unit_dir()
    if (folder / f"{UNIT}.timer").exists():
        out = subprocess.run(["systemctl", "--user", "list-timers", f"{UNIT}.timer", "--no-pager"],
                             capture_output=True, text=True)
        return out.stdout.strip() or (folder / f"{UNIT}.timer").read_text()
    if shutil.which("crontab"):
        lines = [ln for ln in _crontab() if MARK in ln]
        if lines:
            return "\n".join(lines)
    return "no plumline schedule installed (plumline schedule install)"
