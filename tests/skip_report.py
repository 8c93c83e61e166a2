"""A pytest hook that says, loudly and at the end, which tests did not run here and why.

Tests that need Docker, bubblewrap, Neovim, node, the plumline command, the embedded model or a
vLLM server skip when it is missing (unless PLUMLINE_TEST_REQUIRE names the tool: then they fail).
A green run with skips is not a full run: without bubblewrap, the hostile-code suite never ran.
So the last thing `scripts/test` prints is every skipped test, grouped by reason, with what to do.

Registered by ``tests/conftest.py``; ``pytest -p tests.skip_report`` loads it anywhere else.
"""

from __future__ import annotations

import os


def skipped_by_reason(reports) -> dict[str, list[str]]:
    """Reason → node ids of the skipped tests, most common reason first."""
    groups: dict[str, list[str]] = {}
    for rep in reports:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        groups.setdefault(reason.removeprefix("Skipped: ").strip(), []).append(rep.nodeid)
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def pytest_unconfigure(config):
    """After pytest's own summary line, so it is the last thing on the screen."""
    tw = config.pluginmanager.get_plugin("terminalreporter")
    if tw is None:
        return
    groups = skipped_by_reason(tw.stats.get("skipped", []))
    if not groups:
        return
    total = sum(len(ids) for ids in groups.values())
    tw.write_sep("!", f"{total} TEST(S) SKIPPED: NOT TESTED ON THIS MACHINE", red=True, bold=True)
    for reason, ids in groups.items():
        tw.write_line(f"{len(ids):5d}  {reason}", yellow=True, bold=True)
        files = sorted({i.split("::")[0] for i in ids})
        tw.write_line("       in " + ", ".join(files[:5]) + (f" and {len(files) - 5} more file(s)" if len(files) > 5 else ""))
    required = os.environ.get("PLUMLINE_TEST_REQUIRE", "").strip()
    tw.write_line("")
    tw.write_line("A green run with skips is not a full run. Install what is missing (`plumline doctor` says how), or set "
                  "PLUMLINE_TEST_REQUIRE=docker,bwrap,nvim,node,plumline (as CI does) so that a missing tool fails "
                  "instead of skipping" + (f" (now: PLUMLINE_TEST_REQUIRE={required})." if required else "."), bold=True)
    tw.write_sep("!", f"{total} TEST(S) SKIPPED", red=True, bold=True)
