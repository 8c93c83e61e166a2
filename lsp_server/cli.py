"""`plumline serve`: the language server command (registered into agent/cli.py's app)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

import typer


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    tcp: str = typer.Option(None, "--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio (for debugging)"),
    check: bool = typer.Option(False, "--check", help="load the model, print model/adapter/backend/sandbox as JSON and exit"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug messages to stderr"),
) -> None:
    """Run the plumline language server (LSP over stdio) for your editor.

    Editors start it themselves (the Neovim plugin and the VS Code extension run `plumline serve`).
    It serves inline suggestions from the configured model and the current adapter, records what
    happens to them in the local store (see `plumline config`, [privacy] and [server]), and
    hot-swaps a newly promoted adapter. Logs go to stderr.

    Example:
        plumline serve --check
        plumline serve --tcp 127.0.0.1:2087
    """
    from agent.cli import config_or_exit, fail

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pygls", "watchdog", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    config = config_or_exit()
    if check:
        _check(config, fail)
        return
    from agent.store import Store, StoreError
    from lsp_server.server import build_server

    store = None
    if config.privacy.logging:
        try:
            store = Store(config.store_path, scrub=config.privacy.scrub)
        except StoreError as exc:
            logging.getLogger("plumline.lsp").warning("suggestions will not be recorded: %s", exc)
    logging.getLogger("plumline.lsp").info("config: %s", {k: v for k, v, _s, _h in _describe(config)})
    server = build_server(config, store=store)
    _close_on_signals(server)
    try:
        if tcp:
            host, _, port = tcp.rpartition(":")
            if not host or not port.isdigit():
                fail(f"--tcp wants HOST:PORT, e.g. 127.0.0.1:2087; got {tcp!r}")
            server.start_tcp(host, int(port))
        else:
            server.start_io()
    finally:
        server.close()


def _close_on_signals(server) -> None:
    """SIGTERM or SIGHUP (an editor that quits without ``exit``, a closed terminal): record the
    queued store writes (bounded, ``server.close``), then die of the same signal as before.

    The handler itself only sets an Event: a signal handler runs in the main thread wherever it
    was interrupted, e.g. inside ``ThreadPoolExecutor.submit`` holding the executors' global lock,
    so calling ``close()`` (which submits to the store thread) from it could deadlock. A thread
    started here does the closing and then sends the signal again, which the handler now lets kill
    the process."""
    import threading

    received: list[int] = []
    wake = threading.Event()

    def closer() -> None:
        wake.wait()
        server.close()
        os.kill(os.getpid(), received[0])

    def handler(signum, _frame):
        if wake.is_set():  # closed (or a second signal while closing): die of it
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        received.append(signum)
        wake.set()

    threading.Thread(target=closer, name="plumline-close-on-signal", daemon=True).start()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def _describe(config):
    from agent.config import describe

    return describe(config)


def _check(config, fail) -> None:
    """Load the policy once and report what would serve."""
    from agent.completion import load_serving_policy

    try:
        backend = load_serving_policy(config, say=lambda m: print(m, file=sys.stderr))
    except Exception as exc:
        fail(f"cannot load the model: {type(exc).__name__}: {exc}", code=1)
    sandbox = getattr(config.sandbox, "backend", None)
    print(json.dumps({
        "model": backend.model_name,
        "adapter": backend.adapter_id,
        "backend": getattr(backend, "engine", None) or config.model.backend,  # what `auto` chose
        "format": getattr(backend, "prompt_format", None),
        "rerank": {"n": backend.n, "rm": backend.rm_id} if hasattr(backend, "rm_id") else None,
        "sandbox": sandbox,
        "store": str(config.store_path),
        "logging": config.privacy.logging,
    }))
