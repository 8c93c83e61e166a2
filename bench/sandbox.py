"""Sandbox throughput: scored candidates per second on this machine, four ways, in one run.

(a) unsandboxed baseline: one ``python -I`` subprocess per candidate running all its asserts;
(b) process backend (bubblewrap warm pool); (c) Docker warm pool; (d) Docker, a fresh
container per candidate (create, start, exec the runner, score, remove).
Each candidate is a small correct function with 10 tests. Every mode runs with as many
parallel workers as there are cores. Also: p50/p95 latency of one candidate on a warm pool,
and the time to tear a pool down after a batch of fork bombs.

Run: ``python bench/sandbox.py`` (needs bubblewrap and a Docker engine; see .ci/start-dockerd).
Targets (issue 3): (b)/(a) >= 1.0, (c)/(d) >= 5.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import percentile, print_table, write_result  # noqa: E402
from sandbox import Limits, SandboxConfig, open_sandbox, parse_tests  # noqa: E402
from sandbox import docker_backend  # noqa: E402
from sandbox.pool import _bwrap_works, _python_for_sandbox  # noqa: E402

CORES = os.cpu_count() or 1
LIMITS = Limits(timeout_s=5.0, memory_mb=512)


def candidate(k: int) -> tuple[str, str]:
    program = f"def f(x):\n    \"\"\"Add {k}.\"\"\"\n    return x + {k}\n"
    tests = "\n".join(f"assert f({i}) == {i + k}" for i in range(10)) + "\n"
    return program, tests


def bench_baseline(n: int) -> float:
    python = _python_for_sandbox(SandboxConfig())

    def one(k: int) -> None:
        program, tests = candidate(k)
        r = subprocess.run([python, "-I", "-c", program + tests], capture_output=True, env={}, timeout=30)
        assert r.returncode == 0, r.stderr

    t0 = time.perf_counter()
    with ThreadPoolExecutor(CORES) as ex:
        list(ex.map(one, range(n)))
    return n / (time.perf_counter() - t0)


def bench_pool(backend: str, n: int) -> tuple[float, list[float]]:
    items = [(p, parse_tests(t)) for p, t in map(candidate, range(n))]
    with open_sandbox(SandboxConfig(backend=backend, workers=CORES)) as sb:
        sb.warm_up()
        sb.run_batch(items[:CORES], LIMITS)  # warm caches
        t0 = time.perf_counter()
        results = sb.run_batch(items, LIMITS)
        rate = n / (time.perf_counter() - t0)
        assert all(v.passed for r in results for v in r), "benchmark candidates must pass"
        lat = []
        for p, tests in items[:40]:
            t1 = time.perf_counter()
            sb.run(p, tests, LIMITS)
            lat.append(time.perf_counter() - t1)
    return rate, lat


def bench_docker_run(n: int) -> float:
    config = SandboxConfig(backend="docker", workers=1)
    client = docker_backend._client()
    docker_backend.ensure_image(config)

    def one(k: int) -> None:
        program, tests = candidate(k)
        w = docker_backend.DockerWorker(client, config)
        try:
            assert all(v.passed for v in w.run(program, parse_tests(tests), LIMITS))
        finally:
            w.kill()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(CORES) as ex:
        list(ex.map(one, range(n)))
    return n / (time.perf_counter() - t0)


def bench_forkbomb_teardown(backend: str) -> float:
    bomb = ("import os\ndef f():\n    while True:\n        os.fork()\n", "assert f() == 1\n")
    sb = open_sandbox(SandboxConfig(backend=backend, workers=CORES))
    sb.run_batch([(bomb[0], parse_tests(bomb[1]))] * (CORES * 2), LIMITS)
    t0 = time.perf_counter()
    sb.close()
    while docker_backend.list_containers() if backend == "docker" else False:
        time.sleep(0.01)
    return time.perf_counter() - t0


def main() -> None:
    have_bwrap = _bwrap_works()[0]
    have_docker = docker_backend.engine_status()[0]
    figures: dict = {"cores": CORES, "tests_per_candidate": 10}
    figures["a_baseline_cps"] = bench_baseline(60)
    if have_bwrap:
        figures["b_process_cps"], lat = bench_pool("process", 300)
        figures["process_latency_p50_s"], figures["process_latency_p95_s"] = percentile(lat, .5), percentile(lat, .95)
        figures["process_forkbomb_teardown_s"] = bench_forkbomb_teardown("process")
    if have_docker:
        figures["c_docker_pool_cps"], lat = bench_pool("docker", 300)
        figures["docker_latency_p50_s"], figures["docker_latency_p95_s"] = percentile(lat, .5), percentile(lat, .95)
        figures["d_docker_run_cps"] = bench_docker_run(16)
        figures["docker_forkbomb_teardown_s"] = bench_forkbomb_teardown("docker")
    a, d = figures["a_baseline_cps"], figures.get("d_docker_run_cps")
    rows = [("(a) unsandboxed python -I per candidate", a, 1.0, a / d if d else "-")]
    for key, label in (("b_process_cps", "(b) process backend, warm pool"),
                       ("c_docker_pool_cps", "(c) Docker backend, warm pool"),
                       ("d_docker_run_cps", "(d) Docker, container per candidate")):
        if key in figures:
            rows.append((label, figures[key], figures[key] / a, figures[key] / d if d else "-"))
            figures[key.replace("_cps", "_vs_a")] = figures[key] / a
            if d:
                figures[key.replace("_cps", "_vs_d")] = figures[key] / d
    print_table(f"sandbox throughput, candidates/s ({CORES} cores, 10 tests each): cps, ×(a), ×(d)", rows)
    print_table("latency and teardown (seconds)", [(k, v) for k, v in figures.items()
                                                   if k.endswith("_s") and not k.endswith("_cps")])
    path = write_result("sandbox", figures)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
