"""bench/learning.py end to end on the tiny model: a 1-cycle, 2-arm miniature (plus the best arm's
second seed) through `plumline nightly`'s code path, stopped after a stage and resumed, losing and
redoing nothing; task sources that cannot make a benchmark say why.

The tiny model writes nonsense, and every rule leaves out tasks whose samples all fail. So it is
first taught, in a few seconds, to answer three of the toy problems right half the time and wrong
half the time: its samples then have the mixed outcomes the update rules learn from, and the
miniature trains, gates and promotes for real.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# (name, args, docstring example, right body, wrong body, HumanEval-style check)
TOY = [("add", "a, b", "add(1, 2) -> 3", "return a + b", "return a - b", "(2, 3) == 5"),
       ("sub", "a, b", "sub(5, 2) -> 3", "return a - b", "return a + b", "(2, 3) == -1"),
       ("mul", "a, b", "mul(2, 3) -> 6", "return a * b", "return a + b", "(2, 5) == 10"),
       ("neg", "x", "neg(2) -> -2", "return -x", "return x", "(-3) == 3"),
       ("dbl", "x", "dbl(4) -> 8", "return 2 * x", "return x + 2", "(0) == 0"),
       ("sq", "x", "sq(3) -> 9", "return x * x", "return x + x", "(2) == 4"),
       ("inc", "x", "inc(1) -> 2", "return x + 1", "return x - 1", "(0) == 1"),
       ("half", "x", "half(7) -> 3", "return x // 2", "return x / 2", "(4) == 2")]
TRAIN = ("sub", "inc", "half")  # the train side of --seed 0 --heldout-fraction 0.5 (agent.tasks.assign_split)


def _prompt(name, args, example):
    return f'def {name}({args}):\n    """{example}"""\n'


@pytest.fixture(scope="module")
def toy_jsonl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "toy.jsonl"
    path.write_text("".join(json.dumps({
        "task_id": f"Toy/{i}", "prompt": _prompt(name, args, example), "entry_point": name,
        "canonical_solution": f"    {right}\n", "test": f"def check(candidate):\n    assert candidate{check}\n"}) + "\n"
        for i, (name, args, example, right, wrong, check) in enumerate(TOY)))
    return path


@pytest.fixture(scope="module")
def taught_model(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model after 60 full fine-tuning steps on the train problems' right and wrong answers,
    as the serving prompt and response format has them (shrunk: 3 problems, lr 5e-3)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.models.prompts import build_prompt, detect_format
    from agent.sample import task_context
    from trainer.data import response_for

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    fmt = detect_format(tok, "auto")
    pairs = []
    for name, args, example, right, wrong, _ in TOY:
        if name in TRAIN:
            ctx = task_context({"prompt": _prompt(name, args, example)})
            for body in (right, wrong):
                pairs.append((tok(build_prompt(ctx, tok, fmt), add_special_tokens=False)["input_ids"],
                              tok(response_for(ctx, "    " + body, "chat") + tok.eos_token, add_special_tokens=False)["input_ids"]))
    width = max(len(p) + len(t) for p, t in pairs)
    ids = torch.full((len(pairs), width), tok.pad_token_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (p, t) in enumerate(pairs):
        ids[i, :len(p) + len(t)] = torch.tensor(p + t)
        labels[i, len(p):len(p) + len(t)] = torch.tensor(t)
        mask[i, :len(p) + len(t)] = 1
    torch.manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(60):
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    out = tmp_path_factory.mktemp("taught")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def bench(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUMLINE_")}
    env["PLUMLINE_MODEL_THREADS"] = "1"  # share the 2 cores
    return subprocess.run([sys.executable, str(ROOT / "bench" / "learning.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=900)


def miniature(model: Path, tasks: Path, state: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--tasks", str(tasks), "--arms", "offpolicy,plum", "--cycles", "1",
            "--samples", "8",        # 8 samples: a problem answered right half the time gets mixed outcomes
            "--eval-samples", "5",   # the least the benchmark accepts (sampled pass@1 and pass@5)
            "--steps", "2",          # two optimizer steps per cycle: enough to make and gate an adapter
            "--min-examples", "2", "--test-replies", "1", "--state", str(state), "--out", str(out), *extra]


def _samples(state: Path) -> int:
    with sqlite3.connect(state / "prepare" / "plumline.db") as db:
        return db.execute("select count(*) from samples").fetchone()[0]


def test_miniature_stops_and_resumes_losing_and_redoing_nothing(taught_model, toy_jsonl, tmp_path):
    state, out = tmp_path / "state", tmp_path / "out" / "learning.json"
    first = bench(*miniature(taught_model, toy_jsonl, state, out, "--stop-after", "offpolicy-s0:1"))
    assert first.returncode == 3, first.stderr[-3000:]
    before = json.loads((state / "state.json").read_text())
    assert set(before["stages"]) == {"tasks", "prepare", "base"}
    assert [len(a.get("cycles", [])) for a in before["arms"]] == [1, 0]
    samples = _samples(state)

    changed = bench(*miniature(taught_model, toy_jsonl, state, out, "--resume", "--steps", "3"))
    assert changed.returncode == 2 and "steps was 2, now 3" in changed.stderr

    other_set = bench(*miniature(taught_model, toy_jsonl, state, out, "--resume", "--arms", "offpolicy,rft"))
    assert other_set.returncode == 2 and "arms was" in other_set.stderr

    # the same arms in another order: accepted, and the unfinished arm now runs first
    second = bench(*miniature(taught_model, toy_jsonl, state, out, "--resume", "--arms", "plum,offpolicy"))
    assert second.returncode == 0, second.stderr[-3000:]
    after = json.loads((state / "state.json").read_text())
    for stage in ("tasks", "prepare", "base"):
        assert after["stages"][stage] == before["stages"][stage], f"{stage} was redone"
    assert [a["name"] for a in after["arms"][:2]] == ["plum-s0", "offpolicy-s0"]
    assert after["arms"][1]["cycles"] == before["arms"][0]["cycles"], "the finished cycle was redone"
    assert _samples(state) == samples  # prepare's samples were neither drawn again nor lost

    figures = json.loads(out.read_text())["figures"]
    assert figures["complete"] and out.with_suffix(".png").exists()
    arms = {a["name"]: a for a in figures["arms"]}
    repeat = figures["repeat"]
    assert set(arms) == {"offpolicy-s0", "plum-s0", f"{repeat['rule']}-s1"} and repeat["rule"] == "plum"
    for arm in arms.values():
        (cycle,) = arm["cycles"]
        held = cycle["heldout"]
        assert held["n"] == 5 and held["tasks"] == 5
        for key in ("sampled_pass1", "greedy_pass1", "pass@5"):
            assert 0.0 <= held[key] <= 1.0
        assert len(held["sampled_vs_base"]["ci95"]) == 2 and 0 <= held["greedy_vs_base"]["p_better"] <= 1
        assert cycle["train_set"]["samples"] == 24 and cycle["train_set"]["tasks"]["mixed"] >= 1
        assert cycle["data"]["trained"] and cycle["data"]["used"] >= 2, cycle["data"]
        assert cycle["gate"]["decision"] in ("promote", "reject") and cycle["serving_after"] != "base"
        assert {"live", "collect", "train", "gate"} <= set(cycle["seconds"]) and cycle["peak_rss_mb"] > 0
        assert cycle["engine"]["sample"] in ("transformers", "llamacpp") and cycle["engine"]["why"]
    assert arms["plum-s0"]["cycles"][0]["data"]["unit"] == "pairs"
    # every cycle ran in a child process of its own, so none inherited another's memory
    assert len({arm["cycles"][0]["process"] for arm in arms.values()}) == 3

    again = bench(*miniature(taught_model, toy_jsonl, state, out, "--resume", "--arms", "plum,offpolicy"))  # finished
    assert again.returncode == 0 and json.loads((state / "state.json").read_text())["arms"] == after["arms"]


def test_a_folder_without_importable_functions_says_why(tmp_path):
    src = tmp_path / "project"
    src.mkdir()
    (src / "shapes.py").write_text('class Square:\n    def area(self):\n        """The area."""\n        return 1\n')
    (src / "io_bits.py").write_text('def load(path):\n    """Read a file."""\n    return open(path).read()\n')
    (src / "bare.py").write_text("def f(x):\n    return x\n")
    run = bench("--tasks", str(src), "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out.json"))
    assert run.returncode == 2
    message = run.stderr
    assert "no importable functions" in message
    for reason in ("method", "uses_io", "no_docstring"):
        assert reason in message, message
    assert "plumline tasks list --status skipped" in message


def test_a_folder_is_split_by_module(tmp_path):
    src = tmp_path / "project"
    src.mkdir()
    for m in range(6):
        (src / f"mod{m}.py").write_text("".join(
            f'def f{m}_{i}(x):\n    """Return x plus {i}."""\n    return x + {i}\n\n\n' for i in range(3)))
    (src / "test_mod0.py").write_text("from mod0 import f0_1\n\n\ndef test_one():\n    assert f0_1(1) == 2\n")
    run = bench("--tasks", str(src), "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out.json"),
                "--stop-after", "tasks")
    assert run.returncode == 3, run.stderr[-2000:]
    tasks = json.loads((tmp_path / "state" / "state.json").read_text())["stages"]["tasks"]
    side = {}
    for split in ("train", "heldout"):
        for origin in tasks[split]:
            side.setdefault(origin.split("::")[0], set()).add(split)
    assert len(side) == 6 and all(len(s) == 1 for s in side.values())  # a module is never split
    assert {next(iter(s)) for s in side.values()} == {"train", "heldout"}
    assert sum(len(tasks[s]) for s in ("train", "heldout")) == 18 and tasks["split"].startswith("by module")


def test_an_unfinished_arm_whose_home_is_gone_starts_again(tmp_path):
    """On a new machine only state.json and the prepare store come along (bench/state/learning/.gitignore):
    an arm with 1 of 2 cycles and no home would sample from an adapter that is not there, so it restarts;
    a finished arm keeps its figures without a home, and an arm whose home is there is left alone."""
    sys.path.insert(0, str(ROOT))
    from bench.learning import State, restart_if_home_lost

    args = type("Args", (), {"state": tmp_path, "cycles": 2})()
    state = State(tmp_path)
    cycle = {"cycle": 1, "heldout": {}}
    lost = {"name": "rft-s0", "method": "rft", "seed": 0, "copied": True, "cycles": [cycle], "serving_score": {}}
    done = {"name": "rpo-s0", "method": "rpo", "seed": 0, "copied": True, "cycles": [cycle, dict(cycle, cycle=2)]}
    here = {"name": "plum-s0", "method": "plum", "seed": 0, "copied": True, "cycles": [cycle]}
    (tmp_path / "plum-s0").mkdir()
    (tmp_path / "plum-s0" / "plumline.db").write_bytes(b"")
    state.data = {"arms": [lost, done, here]}
    for arm in state.data["arms"]:
        restart_if_home_lost(args, arm, state)
    assert lost == {"name": "rft-s0", "method": "rft", "seed": 0}
    assert len(done["cycles"]) == 2 and len(here["cycles"]) == 1
    assert json.loads((tmp_path / "state.json").read_text())["arms"][0] == lost  # saved, not only in memory


def test_the_best_rule_is_the_one_that_wins_through_the_gate():
    """The repeat (and the default) goes to the rule whose adapter the product would serve: rpo's second
    cycle scores highest, but its first was rejected, so `plumline nightly` never served rpo and never
    trained its second cycle; plum's first cycle got through the gate. With no promotion anywhere,
    the last cycles decide, and the choice says so."""
    sys.path.insert(0, str(ROOT))
    from bench.learning import best_rule, served_cycle

    def cycle(k, sampled, greedy, promoted_by):
        return {"cycle": k, "promoted_by": promoted_by, "heldout": {"sampled_pass1": sampled, "greedy_pass1": greedy}}

    rpo = {"method": "rpo", "cycles": [cycle(1, 0.427, 0.421, "bench (gate rejected)"), cycle(2, 0.472, 0.537, "gate")]}
    plum = {"method": "plum", "cycles": [cycle(1, 0.427, 0.516, "gate"), cycle(2, 0.434, 0.526, "bench (gate rejected)")]}
    rft = {"method": "rft", "cycles": [cycle(1, 0.429, 0.495, "gate"), cycle(2, 0.420, 0.480, "gate")]}
    control = {"method": "offpolicy", "cycles": [cycle(1, 0.9, 0.9, "gate")]}
    assert served_cycle(rpo) is None and served_cycle(plum)["cycle"] == 1 and served_cycle(rft)["cycle"] == 2
    rule, why = best_rule([rpo, plum, rft, control])
    assert rule == "plum" and "through the gate" in why and "plum c1" in why
    rule, why = best_rule([rpo, {"method": "dpo", "cycles": [cycle(1, 0.5, 0.4, None)]}, control])
    assert rule == "dpo" and "no rule's adapter got through the gate" in why
    assert best_rule([control]) is None
