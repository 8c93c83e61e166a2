"""Loop sampling throughput (issue 10): the loop's sampling job on the embedded model, through
plumline's own backends, engine against engine in one run.

    python bench/sample.py                                         # transformers, llamacpp
    python bench/sample.py --engines transformers llamacpp vllm --start-vllm 8011
    python bench/sample.py --engines transformers vllm --vllm-url http://127.0.0.1:8011  # a server already up

The job: the serving contexts of the first 16 HumanEval problems (``agent.sample.task_context``,
block mode, the model's prompt format), 8 candidates each at T = 0.8, ``backend.sample`` exactly as
``agent.sample.sample_candidates`` calls it. Engines:

* ``transformers``: one batched ``generate`` (16 × 8 rows), the baseline;
* ``llamacpp``: one candidate after another, the prompt evaluated once per context;
* ``vllm``: one HTTP request to a vLLM server (``model.vllm_url``), which batches itself.
  ``--start-vllm PORT`` starts ``scripts/vllm-cpu-server PORT`` just for this engine and stops it
  afterwards, so the server's processes are not on the cores while the other engines run (its
  start-up, to the first answer of ``/v1/models``, is ``load_s``). ``--vllm-binds default auto`` starts
  it once per ``VLLM_CPU_OMP_THREADS_BIND``: ``default`` is the script's (every core on a machine
  with at most 4), ``auto`` is vLLM's, which keeps one core for its scheduler process and so, on
  2 cores, leaves the model one thread. The cores the model ran on are read from the server's log.

Figure: candidate tokens/s = tokens of the candidates ``sample`` returns (the model tokenizer,
no special tokens) / wall seconds of the ``sample`` call. These are the tokens the loop gets; an
engine that decodes past the end of a candidate (vLLM stops at end-of-turn, not at the end of the
block) pays for those tokens and does not count them. Each engine gets one short warm-up call
first. The ratio is engine / transformers in the same run. Engines run one after the other (two
model processes on 2 cores slow each other far more than 2×); the load average at start and end
is recorded, because other jobs share the cores. Writes bench/results/sample.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.humaneval import humaneval_tasks  # noqa: E402
from bench.report import print_table, write_result  # noqa: E402

ENGINES = ("transformers", "llamacpp", "vllm")
ROOT = Path(__file__).resolve().parent.parent
SERVER_START_S = 900  # the first start compiles kernels; a cold one took minutes on 2 cores


@contextmanager
def vllm_server(port: int, bind: str = "default"):
    """scripts/vllm-cpu-server on ``port`` (OpenMP threads bound as ``bind`` says; ``default``: as
    the script decides) until the block ends; yields (url, seconds to ready, its log file)."""
    import requests

    log = Path(tempfile.gettempdir()) / f"plumline-vllm-server-{port}.log"
    url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([str(ROOT / "scripts" / "vllm-cpu-server"), str(port)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **({} if bind == "default" else {"VLLM_CPU_OMP_THREADS_BIND": bind})})
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the vLLM server exited with {proc.returncode} before answering; see {log}")
            if time.perf_counter() - start > SERVER_START_S:
                raise SystemExit(f"the vLLM server did not answer within {SERVER_START_S} s; see {log}")
            try:
                if requests.get(url + "/v1/models", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(2)
        yield url, time.perf_counter() - start, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the API server and its engine process
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def engine_info(backend, engine: str) -> dict:
    info = {"format": backend.prompt_format}
    if engine == "transformers":
        import torch

        info.update(dtype=backend.dtype_choice.name, torch_threads=torch.get_num_threads())
    elif engine == "llamacpp":
        info.update(dtype="gguf q4_k_m", threads=backend.threads, llama_cpp=backend.llama_cpp.__version__)
    else:
        try:
            version = backend.session.get(backend.url + "/version", timeout=10).json().get("version")
        except Exception:  # noqa: BLE001 - the figure still stands without the version
            version = None
        info.update(url=backend.url, served_model=backend.base_name, vllm=version)
    return info


def model_cores(log: Path) -> str | None:
    """The cores vLLM bound its model worker to, as its log says ("local_rank=0, core ids=[0, 1]")."""
    found = re.findall(r"local_rank=0, core ids=(\[[^\]]*\])", log.read_text(errors="replace"))
    return found[-1] if found else None


def run_engine(engine: str, config, cache_dir: Path, contexts, n: int, temperature: float,
               max_new_tokens: int | None) -> dict:
    from agent.models import load_backend

    start = time.perf_counter()
    backend = load_backend(dataclasses.replace(config.model, sample_backend=engine), cache_dir,
                           say=lambda m: print(m, file=sys.stderr), job="sample")
    load_s = time.perf_counter() - start
    backend.sample(contexts[:1], 2, temperature=temperature, max_new_tokens=8)  # warm-up
    load_before = os.getloadavg()
    start = time.perf_counter()
    out = backend.sample(contexts, n, temperature=temperature, max_new_tokens=max_new_tokens)
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    lengths = [len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) for row in out for t in row]
    result = {"engine": engine, "load_s": load_s, "seconds": seconds, "candidates": len(lengths),
              "candidate_tokens": sum(lengths), "tokens_per_s": sum(lengths) / max(seconds, 1e-9),
              "empty_candidates": sum(1 for x in lengths if x == 0),
              "loadavg_before": load_before, "loadavg_after": load_after, **engine_info(backend, engine)}
    print(f"  {engine}: {result['candidate_tokens']} candidate tokens in {seconds:.1f} s = "
          f"{result['tokens_per_s']:.1f} tok/s", file=sys.stderr)
    if hasattr(backend, "close"):
        backend.close()
    del backend
    gc.collect()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=["transformers", "llamacpp"],
                    help="in this order; transformers is the baseline the ratios divide by")
    ap.add_argument("--tasks", type=int, default=16, help="first N HumanEval problems")
    ap.add_argument("--n", type=int, default=8, help="candidates per problem")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: model.block_tokens")
    ap.add_argument("--vllm-url", default=None, help="default: model.vllm_url")
    ap.add_argument("--request-timeout", type=float, default=1800.0,
                    help="seconds the vllm engine waits for the whole batch (model.request_timeout_s, 30 s by "
                         "default, is for one suggestion: 16 x 8 candidates take minutes on a CPU)")
    ap.add_argument("--start-vllm", type=int, metavar="PORT", default=None,
                    help="start scripts/vllm-cpu-server on PORT for the vllm engine only, stop it after")
    ap.add_argument("--vllm-binds", nargs="+", default=["default"], metavar="BIND",
                    help="with --start-vllm: one vllm run per VLLM_CPU_OMP_THREADS_BIND value (default: the "
                         "script's; auto: vLLM's; or core ids like 0-1)")
    args = ap.parse_args()

    from agent.config import load_config
    from agent.sample import task_context

    config = load_config()
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, request_timeout_s=args.request_timeout, vllm_url=args.vllm_url or config.model.vllm_url))
    contexts = [task_context({"prompt": t.prompt}) for t in humaneval_tasks(args.tasks)]
    loadavg_start = os.getloadavg()
    rows = {}
    workload = {"tasks": len(contexts), "n": args.n, "temperature": args.temperature, "top_p": 0.95,
                "max_new_tokens": args.max_new_tokens or config.model.block_tokens,
                "model": config.model.name, "context_tokens": config.model.context_tokens}

    def save(done: bool) -> Path:  # after every engine: a later engine's failure keeps the earlier figures
        base = rows.get("transformers")
        for r in rows.values():
            r["ratio_to_transformers"] = r["tokens_per_s"] / base["tokens_per_s"] if base else None
        return write_result("sample", {"workload": workload, "engines": rows, "complete": done,
                                       "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg()})

    for engine in args.engines:
        print(f"{engine}: {len(contexts)} prompts x {args.n} at T={args.temperature} ...", file=sys.stderr)
        if engine == "vllm" and args.start_vllm:
            for bind in args.vllm_binds:
                with vllm_server(args.start_vllm, bind) as (url, startup_s, log):
                    cfg = dataclasses.replace(config, model=dataclasses.replace(config.model, vllm_url=url))
                    row = run_engine(engine, cfg, config.cache_dir, contexts, args.n, args.temperature,
                                     args.max_new_tokens)
                row.update(load_s=row["load_s"] + startup_s, omp_threads_bind=bind, model_cores=model_cores(log))
                rows[engine if len(args.vllm_binds) == 1 else f"vllm bind {bind}"] = row
                save(False)
            continue
        rows[engine] = run_engine(engine, config, config.cache_dir, contexts, args.n, args.temperature,
                                  args.max_new_tokens)
        save(False)
    path = save(True)
    base = rows.get("transformers")

    print_table(f"Loop sampling: {len(contexts)} HumanEval prompts x {args.n}, T={args.temperature}, "
                f"model {config.model.name}", [
        ("engine", *rows),
        ("candidate tokens/s", *(r["tokens_per_s"] for r in rows.values())),
        ("seconds", *(r["seconds"] for r in rows.values())),
        ("candidate tokens", *(r["candidate_tokens"] for r in rows.values())),
        ("empty candidates", *(r["empty_candidates"] for r in rows.values())),
        ("x transformers", *(f"{r['ratio_to_transformers']:.2f}" if base else "-" for r in rows.values())),
    ])
    print(f"load average: start {loadavg_start[0]:.2f}, end {os.getloadavg()[0]:.2f} (1 min)")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
