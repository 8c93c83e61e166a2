"""Exporting a PEFT LoRA to a GGUF LoRA (agent.models.gguf_lora).

The tiny tests write a GGUF for the tiny Llama themselves (F32, q/k rows in convert_hf_to_gguf's
rope order, its BPE vocabulary), so llama.cpp can run base and adapter in seconds and every logit
can be compared with transformers. The embedded test does the same on the real Qwen2.5-Coder GGUF
(Q4_K_M) against the fp32 checkpoint dequantized from it, by greedy next-token agreement.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from agent.models.gguf_lora import ADAPTER_GGUF, LoraExportError, adapter_gguf, export_lora_gguf
from trainer.model import LORA_TARGETS

HF_TO_GGUF = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
              "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def rope_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama's q/k row order in GGUF: per head, [2, d/2] → [d/2, 2] (written out here, independently of
    the exporter, as convert_hf_to_gguf's LlamaModel.permute does it)."""
    out = w.shape[0]
    return w.reshape(n_head, 2, out // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_base_gguf(model_dir: Path, out: Path) -> Path:
    """The tiny Llama as an F32 llama GGUF that llama.cpp loads (tied head: no output.weight)."""
    import gguf
    from safetensors.numpy import load_file

    cfg = json.loads((model_dir / "config.json").read_text())
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    w = gguf.GGUFWriter(out, "llama")
    w.add_context_length(512)
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(cfg["head_dim"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    specials = {t["id"] for t in tok["added_tokens"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([gguf.TokenType.CONTROL if i in specials else gguf.TokenType.NORMAL for _, i in vocab])
    w.add_token_merges([" ".join(m) for m in tok["model"]["merges"]])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    state = load_file(str(model_dir / "model.safetensors"))
    w.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", state["model.norm.weight"])
    for i in range(cfg["num_hidden_layers"]):
        for hf, gg in HF_TO_GGUF.items():
            t = state[f"model.layers.{i}.{hf}.weight"]
            if gg in ("attn_q", "attn_k"):
                t = rope_rows(t, n_head if gg == "attn_q" else n_kv)
            w.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(t))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def write_fake_base(out: Path, arch: str, n_blocks: int, width: int) -> Path:
    """A header-only stand-in for another base: the exporter reads nothing else."""
    import gguf

    w = gguf.GGUFWriter(out, arch)
    w.add_block_count(n_blocks)
    w.add_head_count(4)
    for i in range(n_blocks):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((width, width), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def save_random_lora(model_dir: Path, out: Path, *, seed: int = 0, r: int = 4, alpha: float = 8.0,
                     b_std: float = 0.05, dtype=None, **extra) -> Path:
    """A PEFT LoRA on every linear layer with random non-zero A and B (B = 0 would be a no-op)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype or torch.float32)
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=LORA_TARGETS, lora_dropout=0.0,
                     init_lora_weights=False, **extra)
    peft_model = get_peft_model(model, cfg)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, b_std)
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_base_gguf(tiny_model_dir, tmp_path_factory) -> Path:
    return write_tiny_base_gguf(tiny_model_dir, tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def tiny_lora(tiny_model_dir, tmp_path_factory) -> Path:
    return save_random_lora(tiny_model_dir, tmp_path_factory.mktemp("tiny-lora") / "lora")


def read_gguf(path: Path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    return meta, {t.name: t for t in reader.tensors}


# --- the file's format --------------------------------------------------------------------------------


def test_export_writes_llama_cpp_adapter_metadata(tiny_lora, tiny_base_gguf, tmp_path):
    meta, _ = read_gguf(export_lora_gguf(tiny_lora, tiny_base_gguf, tmp_path / "a.gguf"))
    assert meta["general.type"] == "adapter"
    assert meta["adapter.type"] == "lora"
    assert meta["general.architecture"] == "llama"
    assert meta["adapter.lora.alpha"] == 8.0


def test_every_lora_pair_gets_its_gguf_name_shape_and_f32(tiny_lora, tiny_base_gguf, tiny_model_dir, tmp_path):
    from safetensors.numpy import load_file

    _, tensors = read_gguf(export_lora_gguf(tiny_lora, tiny_base_gguf, tmp_path / "a.gguf"))
    _, base = read_gguf(tiny_base_gguf)
    peft = load_file(str(tiny_lora / "adapter_model.safetensors"))
    want = {f"blk.{i}.{gg}.weight.lora_{ab}" for i in range(2) for hf, gg in HF_TO_GGUF.items()
            if hf.split(".")[-1] in LORA_TARGETS for ab in "ab"}
    assert set(tensors) == want
    for name, t in tensors.items():
        base_ne = list(base[name.rsplit(".", 1)[0]].shape)   # [in, out]
        assert t.tensor_type.name == "F32"
        # llama.cpp's checks: a ne = [in, r], b ne = [r, out]
        assert list(t.shape) == ([base_ne[0], 4] if name.endswith("lora_a") else [4, base_ne[1]])
    # values: A as PEFT saved it; B too, except q/k whose rows follow the base's rope order
    a = peft["base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight"]
    b = peft["base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight"]
    np.testing.assert_array_equal(tensors["blk.1.attn_k.weight.lora_a"].data, a)
    np.testing.assert_array_equal(tensors["blk.1.attn_k.weight.lora_b"].data, rope_rows(b, 2))
    v = peft["base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"]
    np.testing.assert_array_equal(tensors["blk.0.attn_v.weight.lora_b"].data, v)


def test_rslora_alpha_is_written_so_that_alpha_over_r_is_peft_scale(tiny_model_dir, tiny_base_gguf, tmp_path):
    lora = save_random_lora(tiny_model_dir, tmp_path / "rs", r=4, alpha=8.0, use_rslora=True)
    meta, _ = read_gguf(export_lora_gguf(lora, tiny_base_gguf, tmp_path / "a.gguf"))
    assert meta["adapter.lora.alpha"] / 4 == pytest.approx(8.0 / math.sqrt(4))


def test_bf16_adapter_is_exported_as_f32(tiny_model_dir, tiny_base_gguf, tmp_path):
    import torch

    lora = save_random_lora(tiny_model_dir, tmp_path / "bf16", dtype=torch.bfloat16)
    _, tensors = read_gguf(export_lora_gguf(lora, tiny_base_gguf, tmp_path / "a.gguf"))
    assert {t.tensor_type.name for t in tensors.values()} == {"F32"}


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, reason", [
    ({"use_dora": True}, "DoRA"),
    ({"modules_to_save": ["lm_head"]}, "modules_to_save"),
    ({"rank_pattern": {"q_proj": 2}}, "rank_pattern"),
    ({"alpha_pattern": {"q_proj": 2}}, "alpha_pattern"),
    ({"bias": "lora_only"}, "bias"),
])
def test_unsupported_adapter_is_refused_by_name(tiny_model_dir, tiny_base_gguf, tmp_path, extra, reason):
    lora = save_random_lora(tiny_model_dir, tmp_path / "odd", **extra)
    with pytest.raises(LoraExportError, match=reason) as err:
        export_lora_gguf(lora, tiny_base_gguf, tmp_path / "a.gguf")
    assert str(lora) in str(err.value)
    assert not (tmp_path / "a.gguf").exists()


@pytest.mark.parametrize("missing", ["adapter_config.json", "adapter_model.safetensors"])
def test_missing_file_is_named(tiny_lora, tiny_base_gguf, tmp_path, missing):
    import shutil

    lora = Path(shutil.copytree(tiny_lora, tmp_path / "lora"))
    (lora / missing).unlink()
    with pytest.raises(LoraExportError, match=missing):
        export_lora_gguf(lora, tiny_base_gguf, tmp_path / "a.gguf")


@pytest.mark.parametrize("arch, n_blocks, width, reason", [
    ("llama", 2, 32, "another base"),          # same layer names, other width
    ("llama", 1, 64, "another base"),          # fewer blocks: blk.1 does not exist
    ("gpt2", 2, 64, "verified only for"),      # an architecture whose layout is not checked here
])
def test_adapter_for_another_base_is_refused(tiny_lora, tmp_path, arch, n_blocks, width, reason):
    base = write_fake_base(tmp_path / "other.gguf", arch, n_blocks, width)
    with pytest.raises(LoraExportError, match=reason):
        export_lora_gguf(tiny_lora, base, tmp_path / "a.gguf")


def test_failed_export_keeps_the_previous_file_and_leaves_no_temp(tiny_lora, tiny_base_gguf, tmp_path):
    out = export_lora_gguf(tiny_lora, tiny_base_gguf, tmp_path / "a.gguf")
    before = out.read_bytes()
    with pytest.raises(LoraExportError):
        export_lora_gguf(tiny_lora, write_fake_base(tmp_path / "other.gguf", "llama", 2, 32), out)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gguf", "other.gguf"]


# --- the cached export --------------------------------------------------------------------------------


def test_cached_export_is_written_once_and_again_after_the_adapter_changes(tiny_lora, tiny_base_gguf, tmp_path):
    import shutil

    lora = Path(shutil.copytree(tiny_lora, tmp_path / "lora"))
    out = adapter_gguf(lora, tiny_base_gguf)
    assert out == lora / ADAPTER_GGUF and out.exists()
    stamp = out.stat().st_mtime_ns - 10**9
    os.utime(out, ns=(stamp, stamp))  # an export older than nothing: must be kept as it is
    for src in (lora / "adapter_model.safetensors", lora / "adapter_config.json", tiny_base_gguf):
        os.utime(src, ns=(stamp - 10**9, stamp - 10**9))
    assert adapter_gguf(lora, tiny_base_gguf).stat().st_mtime_ns == stamp
    os.utime(lora / "adapter_model.safetensors", ns=(stamp + 10**9, stamp + 10**9))  # re-trained
    assert adapter_gguf(lora, tiny_base_gguf).stat().st_mtime_ns != stamp


# --- llama.cpp computes what PEFT computes ------------------------------------------------------------


def _hf_logits(model_dir: Path, lora: Path | None, ids: list[int]) -> np.ndarray:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if lora is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(lora)).merge_and_unload()
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def _llama_cpp_logits(base: Path, lora: Path | None, ids: list[int]) -> np.ndarray:
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(base), lora_path=str(lora) if lora else None, n_ctx=128,
                          n_threads=2, logits_all=True, verbose=False)
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])
    finally:
        llm.close()


@pytest.mark.parametrize("rslora", [False, True])
def test_llama_cpp_with_the_export_matches_peft_logits(tiny_model_dir, tiny_base_gguf, tmp_path, rslora):
    pytest.importorskip("llama_cpp")
    lora = save_random_lora(tiny_model_dir, tmp_path / "lora", seed=1, use_rslora=rslora)
    out = export_lora_gguf(lora, tiny_base_gguf, tmp_path / "a.gguf")
    ids = [1, 17, 300, 42, 999, 5, 1500, 77, 64, 2000, 3, 250]
    hf_base, hf_lora = _hf_logits(tiny_model_dir, None, ids), _hf_logits(tiny_model_dir, lora, ids)
    cpp_base, cpp_lora = _llama_cpp_logits(tiny_base_gguf, None, ids), _llama_cpp_logits(tiny_base_gguf, out, ids)
    effect = np.abs(hf_lora - hf_base).max()
    assert effect > 0.05, "the random adapter barely moves the logits; the test would prove nothing"
    assert np.abs(cpp_base - hf_base).max() < 0.005 * effect  # the test's own base GGUF is right
    assert np.abs(cpp_lora - hf_lora).max() < 0.005 * effect  # and the adapter lands where PEFT puts it


# --- the embedded model: Qwen2.5-Coder's Q4_K_M GGUF against its fp32 checkpoint ----------------------

CODE_PROMPTS = [
    "def fibonacci(n):\n",
    "import os\n\ndef list_files(path):\n",
    "class Stack:\n    def __init__(self):\n",
    "def is_prime(n: int) -> bool:\n",
    "# sort a list of dicts by key\ndef sort_by(items, key):\n",
    "def read_json(path):\n    with open(path) as f:\n",
    "for i in range(10):\n",
    "def reverse_string(s):\n    return ",
    "import numpy as np\n\nx = np.",
    'def add(a, b):\n    """Return the sum of a and b."""\n',
]
NEW_TOKENS = 8      # a short greedy continuation per prompt: 80 positions in all
B_STD = 0.03        # measured: 0.02 moves 14/80 greedy tokens, 0.03 about 21/80; from 0.07 on the model
                    # is garbage whose near-tied logits flip on Q4 rounding, which would test nothing


@pytest.mark.embedded
def test_llama_cpp_serves_the_exported_adapter_like_transformers(embedded_model_dir, tmp_path):
    """Greedy next tokens along transformers' greedy continuation (teacher-forced, so one early
    difference cannot cascade): llama.cpp with the export must agree on ≥ 90% of positions, and the
    adapter must change llama.cpp's own predictions (an ignored adapter fails here)."""
    llama_cpp = pytest.importorskip("llama_cpp")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agent.models.embedded import assemble, lookup

    base_gguf = assemble(embedded_model_dir.parent.parent, lookup("embedded"), say=lambda _m: None,
                         show_progress=False)
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=LORA_TARGETS,
                                                  lora_dropout=0.0, init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, B_STD)
    peft_model.save_pretrained(tmp_path / "lora")
    merged = peft_model.merge_and_unload().eval()
    sequences = []
    for prompt in CODE_PROMPTS:
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            out = merged.generate(ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
        sequences.append((ids[0].tolist(), out[0, ids.shape[1]:].tolist()))
    del merged, peft_model, model

    exported = adapter_gguf(tmp_path / "lora", base_gguf)

    def next_tokens(lora_path: Path | None) -> list[list[int]]:
        llm = llama_cpp.Llama(model_path=str(base_gguf), lora_path=str(lora_path) if lora_path else None,
                              n_ctx=512, n_threads=2, logits_all=True, verbose=False)
        try:
            found = []
            for ids, new in sequences:
                llm.reset()
                llm.eval(ids + new[:-1])
                found.append(np.argmax(np.array(llm.scores[len(ids) - 1: len(ids) + len(new) - 1]), -1).tolist())
            return found
        finally:
            llm.close()

    with_adapter, without = next_tokens(exported), next_tokens(None)
    total = sum(len(new) for _, new in sequences)
    agree = sum(a == b for (_, new), got in zip(sequences, with_adapter) for a, b in zip(new, got))
    changed = sum(a != b for w, wo in zip(with_adapter, without) for a, b in zip(w, wo))
    print(f"\nllama.cpp+export vs transformers+merged: {agree}/{total} agree; adapter changes {changed}/{total}")
    assert agree >= 0.9 * total, f"only {agree}/{total} greedy tokens agree with transformers"
    assert changed >= 0.1 * total, f"the adapter changed only {changed}/{total} of llama.cpp's tokens"
