"""What the server watches on disk (watchdog), and what it does about it:

* the adapter registry (``adapters/``): when ``CURRENT`` is written (the trainer replaces it
  atomically with ``os.replace``, which shows up as a move onto ``CURRENT``; or creates it), the
  server loads the promoted adapter and swaps it in between requests;
* the folders of files holding accepted suggestions still being followed: a change on disk made
  outside the editor is carried into the persistence trackers. Only those folders are watched,
  and only tracked files are ever read (never an excluded one: those are never tracked);
* the workspace folders, recursively, from just before the cross-file context index scans them: a
  source file written, created, moved or deleted outside the editor is indexed again
  (``agent.context``, which never reads an excluded file).

Watchdog calls back on its own thread; every callback hops onto the server's event loop.
"""

from __future__ import annotations

import logging
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from agent.adapters import CURRENT_FILE

log = logging.getLogger("plumline.lsp")


def _paths(event: FileSystemEvent) -> list[str]:
    paths = [event.src_path]
    if getattr(event, "dest_path", None):
        paths.append(event.dest_path)
    return [p.decode() if isinstance(p, bytes) else p for p in paths]


class AdapterChanges(FileSystemEventHandler):
    def __init__(self, server):
        self.server = server

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or event.is_directory:
            return
        if any(Path(p).name == CURRENT_FILE for p in _paths(event)):
            self.server.loop.call_soon_threadsafe(self.server.adapter_changed)


class FileChanges(FileSystemEventHandler):
    def __init__(self, server):
        self.server = server

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("modified", "created", "moved", "closed") or event.is_directory:
            return
        tracked = self.server.tracked_paths()
        for path in _paths(event):
            if str(Path(path)) in tracked:
                self.server.loop.call_soon_threadsafe(self.server.disk_changed, str(Path(path)))


class WorkspaceChanges(FileSystemEventHandler):
    """Source files changed on disk, for the cross-file context index."""

    def __init__(self, server):
        self.server = server

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("modified", "created", "moved", "deleted", "closed") or event.is_directory:
            return
        from agent.context import SKIP_DIRS, SOURCE_SUFFIXES

        for path in _paths(event):
            parts = Path(path).parts
            if path.endswith(SOURCE_SUFFIXES) and not any(p in SKIP_DIRS or p.startswith(".") for p in parts[:-1]):
                self.server.loop.call_soon_threadsafe(self.server.disk_file_changed, path)


def watch_workspace(server, roots) -> None:
    """Watch the workspace folders recursively for the context index (called off the event loop:
    watching a large tree takes a while)."""
    for root in roots:
        try:
            server.observer.schedule(WorkspaceChanges(server), str(root), recursive=True)
        except (OSError, RuntimeError) as exc:  # e.g. the inotify watch limit
            log.warning("cannot watch the workspace %s for changes (%s); the context index follows the "
                        "editor's saves only", root, exc)


def start_observer(server) -> Observer:
    """Start watching the adapter registry; file folders are added as suggestions get accepted."""
    observer = Observer()
    observer.daemon = True
    adapters = server.config.adapters_dir
    try:
        adapters.mkdir(parents=True, exist_ok=True)
        observer.schedule(AdapterChanges(server), str(adapters), recursive=False)
    except OSError as exc:
        log.warning("cannot watch the adapter registry %s: %s; adapters will not hot-swap", adapters, exc)
    observer.start()
    server.adapter_changed(watched=False)  # promoted while the server was starting
    return observer
