#!/usr/bin/env python3
"""Build a Llama-architecture decoder in shopkeep's "fused" layout (ONNX Runtime contrib ops).

The same weights as tools/llama_onnx.py (fp32 arrays or GGUF Q4_1 / Q8_0 blocks), written with
ONNX Runtime's fused CPU operators instead of the plain-ONNX chains:

- `GroupQueryAttention` (com.microsoft) per layer, on the packed QKV projection, with
  `do_rotary=1` (rotate_half RoPE; cos/sin caches [max_positions, head_dim/2] are initializers)
  and a past/present KV buffer that the caller may share in place;
- `SimplifiedLayerNormalization` for the first RMSNorm and `SkipSimplifiedLayerNormalization`
  for every later one, which also does the residual Add.

I/O contract of the fused layout (manifest `"layout": "fused"`):

inputs
    input_ids                  int64 [batch, seq]  right-padded when rows differ in length
    seqlens_k                  int32 [batch]       per row: tokens held after this run, minus 1
    total_sequence_length      int32 []            the largest of (seqlens_k + 1)
    logits_positions           int64 [batch, k]    per row, which of this run's positions (0..seq-1)
                                                   get logits: the last one for generation, all
                                                   of them for scoring
    past_key_values.{i}.key    f32 [batch, kv_heads, max_len, head_dim]  rows start at position 0
    past_key_values.{i}.value  f32 [batch, kv_heads, max_len, head_dim]
outputs
    logits                     f32 [batch, k, vocab]  at logits_positions
    present.{i}.key|value      f32 [batch, kv_heads, max(max_len, total), head_dim]

A run is either a first prompt (seq == total_sequence_length: every row starts at 0, rows may be
right-padded, seqlens_k[b] = its length - 1), one new token per row (seq == 1; row b holds
seqlens_k[b] positions and writes the new one at that index), or a chunk on top of a cached
prefix (batch 1). When present and past are bound to the same buffer, ONNX Runtime's CPU kernel
writes only the new positions (gqa_attention_base.h: past_present_share_buffer is pointer
equality); otherwise it copies the past into present.

The LM head runs on the logits_positions rows only (GatherND after the final norm): a 500-token
prompt's logits for every position are 98 MB on SmolLM2, and generation reads one row of them.

The tiny random test models in this layout (the same seeded weights as
`tools/llama_onnx.py --tiny-random`, so the two layouts must give the same greedy ids):

    python tools/llama_fused.py --tiny-random --tokenizer TOKENIZER.json --out DIR [--seed 1234] [--weights q4]

SmolLM2 in this layout: `tools/smollm2.py --layout fused`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_layout import GraphBuilder, add_com_microsoft_opset, save_model
import llama_onnx  # noqa: E402
from quant_blocks import Q8_0, gather_q8_0, matmul_q8_0

LAYOUT = "fused"
"""The manifest's `layout` value for graphs built here."""

DIM_MAX = "max_sequence_length"


def rope_caches(cfg) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin [max_position_embeddings, head_dim/2] for GroupQueryAttention's rotary (float64 math)."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    freqs = np.outer(np.arange(cfg.max_position_embeddings, dtype=np.float64), inv_freq)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


def _declare_io(gb: GraphBuilder, cfg):
    gb.add_input("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"])
    gb.add_input("seqlens_k", TensorProto.INT32, ["batch_size"])
    gb.add_input("total_sequence_length", TensorProto.INT32, [])
    gb.add_input("logits_positions", TensorProto.INT64, ["batch_size", "logits_length"])
    shape = ["batch_size", cfg.num_kv_heads, DIM_MAX, cfg.head_dim]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            gb.add_input(f"past_key_values.{i}.{kind}", TensorProto.FLOAT, shape)
    gb.add_output("logits", TensorProto.FLOAT, ["batch_size", "logits_length", cfg.vocab_size])
    present = ["batch_size", cfg.num_kv_heads, "present_sequence_length", cfg.head_dim]
    for i in range(cfg.num_layers):
        for kind in ("key", "value"):
            gb.add_output(f"present.{i}.{kind}", TensorProto.FLOAT, present)


def build_llama_fused_model(cfg, w: dict, name: str = "llama_fused", extra_metadata: dict | None = None,
                            accuracy_level: int = 0, head_accuracy_level: int | None = None):
    """Return an onnx.ModelProto of cfg/weights in the fused layout (weights as for
    llama_onnx.build_llama_model: HF layout, fp32 arrays or Q4_1 linear blocks with a Q8_0 tied
    embedding; an fp32 tied embedding is stored once, the LM head reading it with Gemm transB=1)."""
    if head_accuracy_level is None:
        head_accuracy_level = accuracy_level
    d, hd = cfg.hidden_size, cfg.head_dim
    nh, nkv = cfg.num_heads, cfg.num_kv_heads
    eps = float(cfg.rms_norm_eps)
    gb = GraphBuilder(name)
    _declare_io(gb, cfg)
    block_sums: dict = {}

    def project(x: str, parts: list, weight_name: str) -> str:
        return llama_onnx.project_rows(gb, x, parts, weight_name, accuracy_level, block_sums)

    def norm_weight(array, label: str) -> str:
        return gb.initializer(np.asarray(array, np.float32), label)

    embed_w = w["embed"]
    if isinstance(embed_w, Q8_0):
        h = gather_q8_0(gb, "input_ids", embed_w, "model.embed_tokens")
    else:
        embed = gb.initializer(np.asarray(embed_w, np.float32), "model.embed_tokens.weight")
        h = gb.node("Gather", [embed, "input_ids"], axis=0)
    cos_t, sin_t = rope_caches(cfg)
    cos = gb.initializer(cos_t, "rope.cos_cache")
    sin = gb.initializer(sin_t, "rope.sin_cache")

    pending = None  # the last sublayer's output, not yet added to the residual h
    for i, lw in enumerate(w["layers"]):
        p = f"model.layers.{i}"
        gamma = norm_weight(lw["attn_norm"], f"{p}.input_layernorm.weight")
        if pending is None:
            x = gb.node("SimplifiedLayerNormalization", [h, gamma], axis=-1, epsilon=eps, stash_type=1)
        else:
            x, _, _, h = gb.node("SkipSimplifiedLayerNormalization", [pending, h, gamma], n_outputs=4,
                                 domain="com.microsoft", epsilon=eps)
        qkv = project(x, [llama_onnx.scaled(lw["wq"], 1.0 / np.sqrt(hd)), lw["wk"], lw["wv"]], f"{p}.self_attn.qkv_proj")
        ctx, _, _ = gb.node(
            "GroupQueryAttention",
            [qkv, "", "", f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k",
             "total_sequence_length", cos, sin],
            n_outputs=3, outputs=["/gqa_%d" % i, f"present.{i}.key", f"present.{i}.value"],
            domain="com.microsoft", num_heads=nh, kv_num_heads=nkv, do_rotary=1, rotary_interleaved=0,
            scale=1.0)
        pending = project(ctx, [lw["wo"]], f"{p}.self_attn.o_proj")
        gamma = norm_weight(lw["ffn_norm"], f"{p}.post_attention_layernorm.weight")
        x, _, _, h = gb.node("SkipSimplifiedLayerNormalization", [pending, h, gamma], n_outputs=4,
                             domain="com.microsoft", epsilon=eps)
        gu = project(x, [lw["w_gate"], lw["w_up"]], f"{p}.mlp.gate_up_proj")
        gate, up = gb.node("Split", [gu, gb.const([cfg.intermediate_size, cfg.intermediate_size])],
                           n_outputs=2, axis=-1)
        act = gb.node("Mul", [gb.node("Mul", [gate, gb.node("Sigmoid", [gate])]), up])
        pending = project(act, [lw["w_down"]], f"{p}.mlp.down_proj")

    gamma = norm_weight(w["norm"], "model.norm.weight")
    x, _, _, _ = gb.node("SkipSimplifiedLayerNormalization", [pending, h, gamma], n_outputs=4,
                         domain="com.microsoft", epsilon=eps)
    x = gb.node("GatherND", [x, gb.node("Unsqueeze", ["logits_positions", gb.const([-1])])], batch_dims=1)
    if isinstance(embed_w, Q8_0):
        logits = matmul_q8_0(gb, x, embed_w, "lm_head", head_accuracy_level)
        label = (f"GGUF blocks: Q4_1 MatMulNBits accuracy_level={accuracy_level}, Q8_0 GatherBlockQuantized "
                 f"and MatMulNBits accuracy_level={head_accuracy_level}")
    else:
        head = embed if w.get("lm_head") is None else gb.initializer(np.asarray(w["lm_head"], np.float32),
                                                                       "lm_head.weight")
        flat = gb.node("Gemm", [gb.node("Reshape", [x, gb.const([-1, d])]), head], transB=1)  # [b*s, vocab]
        out_shape = gb.node("Concat", [gb.node("Shape", ["logits_positions"]), gb.const([cfg.vocab_size])], axis=0)
        logits = gb.node("Reshape", [flat, out_shape])
        label = None
    gb.node("Identity", [logits], outputs=["logits"])
    meta = llama_onnx._metadata(cfg, extra_metadata)
    meta["layout"] = LAYOUT
    if label:
        meta["weight_quantization"] = label
    return add_com_microsoft_opset(gb.make_model(meta))


def write_tiny_random(out: str, tokenizer: str, seed: int, weights: str, accuracy_level: int = 4) -> None:
    """The tiny random Llama of `tools/llama_onnx.py --tiny-random` (default shape, the same seed and
    weights, `weights` "q4" as GGUF blocks) in the fused layout."""
    cfg = llama_onnx.LlamaConfig(vocab_size=llama_onnx.tokenizer_vocab_size(tokenizer), hidden_size=64,
                                 num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128,
                                 rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=512)
    w = llama_onnx.random_weights(cfg, seed)
    if weights == "q4":
        w = llama_onnx.as_gguf_blocks(w)
    name = "tiny_llama_random" + ("_q4" if weights == "q4" else "") + "_fused"
    model = build_llama_fused_model(cfg, w, name=name, accuracy_level=accuracy_level if weights == "q4" else 0)
    os.makedirs(out, exist_ok=True)
    save_model(model, os.path.join(out, "model.onnx"))
    shutil.copyfile(tokenizer, os.path.join(out, "tokenizer.json"))
    with open(tokenizer, encoding="utf-8") as f:
        tj = json.load(f)
    added = {t["content"] for t in tj.get("added_tokens", [])}
    ends = [t for t in ("<|im_end|>", "<|endoftext|>") if t in added or t in tj["model"].get("vocab", {})]
    q4 = " --weights q4" if weights == "q4" else ""
    manifest = {
        "name": f"tiny-llama-random-seed{seed}" + ("-q4" if q4 else "") + "-fused",
        "family": "llama",
        "prompt_format": "chatml",
        "end_tokens": ends,
        "context_length": cfg.max_position_embeddings,
        "source": f"random weights (tools/llama_fused.py --tiny-random --seed {seed}{q4}); not a real model",
        "weights": weights,
        "layout": LAYOUT,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the tiny random Llama test model in the fused layout.")
    ap.add_argument("--tiny-random", action="store_true", required=True)
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json to copy (vocab size is read from it)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", choices=["fp32", "q4"], default="fp32")
    a = ap.parse_args(argv)
    write_tiny_random(a.out, a.tokenizer, a.seed, a.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
