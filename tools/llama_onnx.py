#!/usr/bin/env python3
"""Build a Llama-architecture decoder as an ONNX graph (Optimum "with past" layout).

Pure numpy + onnx (no torch). Used by tools/smollm2.py for the default model
(SmolLM2-135M-Instruct) and, with --tiny-random, to make a small seeded random
Llama-shaped model for tests:

    python tools/llama_onnx.py --tiny-random --tokenizer TOKENIZER.json --out DIR [--seed 0]

writes DIR/model.onnx, DIR/tokenizer.json (copied) and DIR/manifest.json. Output is
byte-identical for the same seed and tokenizer.

Graph (per layer): RMSNorm -> fused QKV MatMul -> RoPE (rotate_half convention,
cos/sin gathered from a precomputed [max_position_embeddings, head_dim] table by
position_ids) -> concat with past -> grouped-query attention (queries regrouped
to [b, kv_heads, rep*seq, d] so K/V are never copied per query head; the
1/sqrt(head_dim) scale is folded into the Q weights) -> output projection ->
residual -> RMSNorm -> fused gate/up MatMul -> SiLU(gate)*up -> down -> residual.
Final RMSNorm, LM head (tied to the token embedding via Gemm transB=1 when there is
no separate output weight, so the table is stored once).

Weights are passed in the Hugging Face convention (nn.Linear: [out, in]) with Q/K
rows in HF order, i.e. already un-permuted from llama.cpp's layout (see
unpermute_qk in this module and tools/smollm2.py).

The I/O contract, attention-bias rule and graph builder come from tools/onnx_layout.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, asdict

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_layout import (  # noqa: E402
    GraphBuilder,
    add_com_microsoft_opset,
    append_kv_cache,
    build_attention_bias,
    declare_text_generation_io,
    matmul_weight,
    save_model,
    stored_size,
    weight_quantization_label,
)
from quant_blocks import Q4_1, Q8_0, dequantized, gather_q8_0, matmul_q4_1, matmul_q8_0  # noqa: E402


@dataclass
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


# --------------------------------------------------------------------------- weights


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's convert_hf_to_gguf permutation of Q/K rows ([out, in]).

    llama.cpp stores each head's rows interleaved as (pair, 2) for its adjacent-pair
    RoPE; HF's rotate_half wants (2, pair). n_head: query heads for Q, KV heads for K.
    """
    out, inp = w.shape
    hd = out // n_head
    if isinstance(w, Q4_1):
        return w.take_rows(np.arange(out).reshape(n_head, hd // 2, 2).swapaxes(1, 2).reshape(-1))
    return np.ascontiguousarray(w.reshape(n_head, hd // 2, 2, inp).swapaxes(1, 2).reshape(out, inp))


def random_weights(cfg: LlamaConfig, seed: int) -> dict:
    """Seeded random weights in HF layout (deterministic for a given seed)."""
    rng = np.random.default_rng(seed)
    d, f, hd = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim

    def lin(out, inp, std=0.02):
        return (rng.standard_normal((out, inp)) * std).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w = {"embed": lin(cfg.vocab_size, d, 0.05), "layers": []}
    for _ in range(cfg.num_layers):
        w["layers"].append({
            "attn_norm": norm(d),
            "wq": lin(cfg.num_heads * hd, d, 0.08),
            "wk": lin(cfg.num_kv_heads * hd, d, 0.08),
            "wv": lin(cfg.num_kv_heads * hd, d, 0.08),
            "wo": lin(d, cfg.num_heads * hd, 0.05),
            "ffn_norm": norm(d),
            "w_gate": lin(f, d, 0.05),
            "w_up": lin(f, d, 0.05),
            "w_down": lin(d, f, 0.05),
        })
    w["norm"] = norm(d)
    w["lm_head"] = None  # tied
    return w


def rope_tables(cfg: LlamaConfig):
    """cos/sin tables [max_position_embeddings, head_dim] for rotate_half RoPE (float64 math)."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    pos = np.arange(cfg.max_position_embeddings, dtype=np.float64)
    freqs = np.outer(pos, inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)


# --------------------------------------------------------------------------- graph


def _rms_norm(gb: GraphBuilder, x: str, weight: str, eps: float) -> str:
    # Pow -> ReduceMean -> Add -> Sqrt -> Div -> Mul: the pattern onnxruntime fuses into
    # SimplifiedLayerNormalization.
    sq = gb.node("Pow", [x, gb.const(2.0, np.float32)])
    ms = gb.node("ReduceMean", [sq], axes=[-1], keepdims=1)
    rs = gb.node("Sqrt", [gb.node("Add", [ms, gb.const(eps, np.float32)])])
    return gb.node("Mul", [gb.node("Div", [x, rs]), weight])


def _rope(gb: GraphBuilder, x: str, cos: str, sin: str, half: int) -> str:
    """x * cos + rotate_half(x) * sin; x [b, h, s, d], cos/sin [b, 1, s, d]."""
    x1, x2 = gb.node("Split", [x, gb.const([half, half])], n_outputs=2, axis=-1)
    rot = gb.node("Concat", [gb.node("Neg", [x2]), x1], axis=-1)
    return gb.node("Add", [gb.node("Mul", [x, cos]), gb.node("Mul", [rot, sin])])


def project_rows(gb: GraphBuilder, x: str, parts: list, weight_name: str, accuracy_level: int,
                 block_sums: dict, quant: str | None = None) -> str:
    """x @ concat(parts)^T for [out, in] weights given as arrays (MatMul, `quant` as in
    onnx_layout.matmul_weight) or as Q4_1 blocks (MatMulNBits; `block_sums` caches each input's
    block sums, see quant_blocks.matmul_q4_1)."""
    if isinstance(parts[0], Q4_1):
        return matmul_q4_1(gb, x, Q4_1.concat_rows(parts), weight_name, accuracy_level, block_sums)
    wt = np.concatenate([np.asarray(p, np.float32) for p in parts], axis=0).T
    return matmul_weight(gb, x, wt, weight_name + ".weight_t", quant)


def scaled(weight, factor: float):
    """`weight` times `factor`: Q4_1 blocks by their d and m (exact for a power of two), an
    array as float32."""
    return weight.scaled(factor) if isinstance(weight, Q4_1) else np.asarray(weight, np.float32) * np.float32(factor)


def build_llama_model(cfg: LlamaConfig, w: dict, name: str = "llama", extra_metadata: dict | None = None,
                      lm_head_as_matmul: bool = False, weight_bits: int | None = None, block_size: int = 32,
                      accuracy_level: int = 0, head_accuracy_level: int | None = None):
    """Return an onnx.ModelProto for cfg/weights (weights in HF layout, see module doc).

    lm_head_as_matmul: store the LM head as its own transposed [hidden, vocab] initializer used
    by a MatMul (instead of Gemm transB=1 on the shared embedding). Needed before
    onnxruntime.quantization.quantize_dynamic, which mishandles the shared Gemm weight.
    weight_bits (4 or 8): weight-only block quantization of every linear layer and the LM head
    with com.microsoft MatMulNBits (onnx_layout.matmul_weight; block_size, accuracy_level as in that
    op); activations stay fp32 unless accuracy_level says otherwise. The embedding table stays fp32.

    GGUF blocks kept as they are: when the linear weights are quant_blocks.Q4_1 and the tied
    embedding is quant_blocks.Q8_0, they become MatMulNBits / GatherBlockQuantized nodes over the
    same blocks (see quant_blocks) with `accuracy_level` (the LM head with `head_accuracy_level`,
    default the same); weight_bits must then be None.
    """
    if head_accuracy_level is None:
        head_accuracy_level = accuracy_level
    blocks = isinstance(w["layers"][0]["wq"], Q4_1)
    if blocks and weight_bits:
        raise ValueError("GGUF blocks are kept as they are; weight_bits re-quantizes fp32 weights")
    quant = (weight_bits, block_size, accuracy_level) if weight_bits else None
    if quant:
        lm_head_as_matmul = True
    d, hd = cfg.hidden_size, cfg.head_dim
    nh, nkv = cfg.num_heads, cfg.num_kv_heads
    if nh % nkv:
        raise ValueError("num_heads must be a multiple of num_kv_heads")
    rep = nh // nkv
    qd, kvd = nh * hd, nkv * hd
    scale = 1.0 / float(np.sqrt(hd))

    gb = GraphBuilder(name)
    io = declare_text_generation_io(gb, cfg.num_layers, nkv, hd, cfg.vocab_size)
    block_sums: dict = {}

    def project(x: str, parts: list, weight_name: str) -> str:
        return project_rows(gb, x, parts, weight_name, accuracy_level, block_sums, quant)

    embed_w = w["embed"]
    if isinstance(embed_w, Q8_0):
        if w.get("lm_head") is not None:
            raise ValueError("a Q8_0 embedding is supported as a tied LM head only")
        h = gather_q8_0(gb, io.input_ids, embed_w, "model.embed_tokens")  # [b, s, d]
    else:
        embed = gb.initializer(np.asarray(embed_w, np.float32), "model.embed_tokens.weight")
        h = gb.node("Gather", [embed, io.input_ids], axis=0)                   # [b, s, d]
    cos_t, sin_t = rope_tables(cfg)
    cos_i = gb.initializer(cos_t, "rope.cos")
    sin_i = gb.initializer(sin_t, "rope.sin")
    cos = gb.node("Unsqueeze", [gb.node("Gather", [cos_i, io.position_ids], axis=0), gb.const([1])])
    sin = gb.node("Unsqueeze", [gb.node("Gather", [sin_i, io.position_ids], axis=0), gb.const([1])])

    bias = build_attention_bias(gb, io.input_ids, io.attention_mask)           # [b, 1, s, T]
    if rep > 1:
        # query rows are regrouped as (rep, s) per KV head, so tile the bias likewise
        bias = gb.node("Tile", [bias, gb.const([1, 1, rep, 1])])               # [b, 1, rep*s, T]

    for i, lw in enumerate(w["layers"]):
        p = f"model.layers.{i}"
        x = _rms_norm(gb, h, gb.initializer(np.asarray(lw["attn_norm"], np.float32), f"{p}.input_layernorm.weight"),
                      cfg.rms_norm_eps)
        qkv = project(x, [scaled(lw["wq"], scale), lw["wk"], lw["wv"]], f"{p}.self_attn.qkv_proj")
        q, k, v = gb.node("Split", [qkv, gb.const([qd, kvd, kvd])], n_outputs=3, axis=-1)
        q = gb.node("Transpose", [gb.node("Reshape", [q, gb.const([0, 0, nh, hd])])], perm=[0, 2, 1, 3])
        k = gb.node("Transpose", [gb.node("Reshape", [k, gb.const([0, 0, nkv, hd])])], perm=[0, 2, 1, 3])
        v = gb.node("Transpose", [gb.node("Reshape", [v, gb.const([0, 0, nkv, hd])])], perm=[0, 2, 1, 3])
        q = _rope(gb, q, cos, sin, hd // 2)
        k = _rope(gb, k, cos, sin, hd // 2)
        pk, pv = append_kv_cache(gb, io, i, k, v)                              # [b, nkv, T, hd]
        # grouped-query attention: query head h uses KV head h // rep
        qg = gb.node("Reshape", [q, gb.const([0, nkv, -1, hd])])               # [b, nkv, rep*s, hd]
        scores = gb.node("MatMul", [qg, gb.node("Transpose", [pk], perm=[0, 1, 3, 2])])
        probs = gb.node("Softmax", [gb.node("Add", [scores, bias])], axis=-1)
        ctx = gb.node("MatMul", [probs, pv])                                   # [b, nkv, rep*s, hd]
        ctx = gb.node("Reshape", [ctx, gb.const([0, nh, -1, hd])])             # [b, nh, s, hd]
        ctx = gb.node("Reshape", [gb.node("Transpose", [ctx], perm=[0, 2, 1, 3]), gb.const([0, 0, qd])])
        o = project(ctx, [lw["wo"]], f"{p}.self_attn.o_proj")
        h = gb.node("Add", [h, o])

        x = _rms_norm(gb, h, gb.initializer(np.asarray(lw["ffn_norm"], np.float32),
                                            f"{p}.post_attention_layernorm.weight"), cfg.rms_norm_eps)
        gu = project(x, [lw["w_gate"], lw["w_up"]], f"{p}.mlp.gate_up_proj")
        gate, up = gb.node("Split", [gu, gb.const([cfg.intermediate_size, cfg.intermediate_size])],
                           n_outputs=2, axis=-1)
        act = gb.node("Mul", [gb.node("Mul", [gate, gb.node("Sigmoid", [gate])]), up])
        down = project(act, [lw["w_down"]], f"{p}.mlp.down_proj")
        h = gb.node("Add", [h, down])

    h = _rms_norm(gb, h, gb.initializer(np.asarray(w["norm"], np.float32), "model.norm.weight"), cfg.rms_norm_eps)
    head_w = w.get("lm_head")
    if isinstance(embed_w, Q8_0):
        logits = matmul_q8_0(gb, h, embed_w, "lm_head", head_accuracy_level)
        gb.node("Identity", [logits], outputs=[io.logits])
        label = (f"GGUF blocks: Q4_1 MatMulNBits accuracy_level={accuracy_level}, Q8_0 GatherBlockQuantized "
                 f"and MatMulNBits accuracy_level={head_accuracy_level}")
        return _finish(gb, cfg, extra_metadata, label)
    if lm_head_as_matmul:
        head = np.asarray(embed_w if head_w is None else head_w, np.float32)
        logits = matmul_weight(gb, h, head.T, "lm_head.weight_t", quant)
        gb.node("Identity", [logits], outputs=[io.logits])
        return _finish(gb, cfg, extra_metadata, quant and weight_quantization_label(quant))
    h2 = gb.node("Reshape", [h, gb.const([-1, d])])                            # [b*s, d]
    if head_w is None:
        flat = gb.node("Gemm", [h2, embed], transB=1)                          # tied: [b*s, vocab]
    else:
        flat = gb.node("Gemm", [h2, gb.initializer(np.asarray(head_w, np.float32), "lm_head.weight")],
                       transB=1)
    out_shape = gb.node("Concat", [gb.node("Shape", [io.input_ids]), gb.const([cfg.vocab_size])], axis=0)
    gb.node("Reshape", [flat, out_shape], outputs=[io.logits])
    return _finish(gb, cfg, extra_metadata, None)


def _finish(gb: GraphBuilder, cfg: LlamaConfig, extra: dict | None, quantization: str | None):
    meta = _metadata(cfg, extra)
    if quantization:
        meta["weight_quantization"] = quantization
    model = gb.make_model(meta)
    if quantization:
        add_com_microsoft_opset(model)
    return model


def _metadata(cfg: LlamaConfig, extra: dict | None) -> dict:
    nh, nkv = cfg.num_heads, cfg.num_kv_heads
    hd, d = cfg.head_dim, cfg.hidden_size
    meta = {
        "model_family": "llama",
        "max_position_embeddings": cfg.max_position_embeddings,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": nh,
        "num_key_value_heads": nkv,
        "head_dim": hd,
        "hidden_size": d,
        "vocab_size": cfg.vocab_size,
    }
    if extra:
        meta.update(extra)
    return meta


# --------------------------------------------------------------------------- numpy reference


def dequantize_weights(w: dict) -> dict:
    """The same weights with every Q4_1 / Q8_0 block tensor dequantized to float32 (numpy)."""
    out = {k: (dequantized(v) if v is not None else None) for k, v in w.items() if k != "layers"}
    out["layers"] = [{k: dequantized(v) for k, v in lw.items()} for lw in w["layers"]]
    return out


def reference_forward(cfg: LlamaConfig, w: dict, ids, rope_style: str = "half") -> np.ndarray:
    """Plain numpy forward for one unpadded sequence, no cache. Returns logits [s, vocab].

    rope_style "half": w holds HF-order Q/K rows (rotate_half RoPE).
    rope_style "pairs": w holds llama.cpp-order Q/K rows (rotate adjacent pairs 2i, 2i+1).
    Independent of the ONNX graph code above (no shared helpers), for cross-checks.
    """
    w = dequantize_weights(w)
    ids = np.asarray(ids, dtype=np.int64)
    s = len(ids)
    hd, nh, nkv = cfg.head_dim, cfg.num_heads, cfg.num_kv_heads
    inv = 1.0 / (cfg.rope_theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    ang = np.outer(np.arange(s, dtype=np.float64), inv)                        # [s, hd/2]
    c, sn = np.cos(ang), np.sin(ang)

    def rope(x):  # x [h, s, hd] float64
        if rope_style == "half":
            x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
            return np.concatenate([x1 * c - x2 * sn, x2 * c + x1 * sn], axis=-1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x1 * c - x2 * sn
        out[..., 1::2] = x2 * c + x1 * sn
        return out

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + cfg.rms_norm_eps) * g

    E = np.asarray(w["embed"], np.float64)
    h = E[ids]
    causal = np.tril(np.ones((s, s), dtype=bool))
    for lw in w["layers"]:
        x = rms(h, lw["attn_norm"])
        q = (x @ np.asarray(lw["wq"], np.float64).T).reshape(s, nh, hd).transpose(1, 0, 2)
        k = (x @ np.asarray(lw["wk"], np.float64).T).reshape(s, nkv, hd).transpose(1, 0, 2)
        v = (x @ np.asarray(lw["wv"], np.float64).T).reshape(s, nkv, hd).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k = np.repeat(k, nh // nkv, axis=0)
        v = np.repeat(v, nh // nkv, axis=0)
        sc = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        sc = np.where(causal, sc, -np.inf)
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        p = sc / sc.sum(-1, keepdims=True)
        ctx = (p @ v).transpose(1, 0, 2).reshape(s, nh * hd)
        h = h + ctx @ np.asarray(lw["wo"], np.float64).T
        x = rms(h, lw["ffn_norm"])
        g = x @ np.asarray(lw["w_gate"], np.float64).T
        u = x @ np.asarray(lw["w_up"], np.float64).T
        h = h + (g / (1.0 + np.exp(-g)) * u) @ np.asarray(lw["w_down"], np.float64).T
    h = rms(h, w["norm"])
    head = E if w.get("lm_head") is None else np.asarray(w["lm_head"], np.float64)
    return (h @ head.T).astype(np.float32)


# --------------------------------------------------------------------------- onnxruntime helpers


def ort_session(model_path: str, threads: int = 2):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])


def session_shapes(sess):
    """(num_layers, kv_heads, head_dim) read from the session's past_key_values inputs."""
    past = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.") and i.name.endswith(".key")]
    return len(past), int(past[0].shape[1]), int(past[0].shape[3])


def run_step(sess, input_ids, attention_mask, position_ids, past=None):
    """One forward. input_ids etc. int64 [b, s] / [b, T]; past: list of (k, v) or None.
    Returns (logits, present list of (k, v))."""
    nl, nkv, hd = session_shapes(sess)
    b = input_ids.shape[0]
    feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
    for i in range(nl):
        if past is None:
            z = np.zeros((b, nkv, 0, hd), np.float32)
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = z, z
        else:
            feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = past[i]
    names = ["logits"] + [f"present.{i}.{kv}" for i in range(nl) for kv in ("key", "value")]
    out = sess.run(names, feeds)
    return out[0], [(out[1 + 2 * i], out[2 + 2 * i]) for i in range(nl)]


def check_cache_consistency(sess, ids, split: int = None) -> dict:
    """Compare uncached full-sequence logits with (a) prefill + chunk (seq>1, past>0) +
    one-token steps and (b) a left-padded batch of two. Returns max abs diffs."""
    ids = np.asarray(ids, np.int64)
    n = len(ids)
    full, _ = run_step(sess, ids[None], np.ones((1, n), np.int64), np.arange(n, dtype=np.int64)[None])
    full = full[0]
    split = split or n // 2
    chunk_end = min(n - 1, split + 3)
    # prefill first `split`, then a chunk of up to 3 tokens, then single tokens
    lg, past = run_step(sess, ids[None, :split], np.ones((1, split), np.int64),
                        np.arange(split, dtype=np.int64)[None])
    parts = [lg[0]]
    lg, past = run_step(sess, ids[None, split:chunk_end], np.ones((1, chunk_end), np.int64),
                        np.arange(split, chunk_end, dtype=np.int64)[None], past)
    parts.append(lg[0])
    for t in range(chunk_end, n):
        lg, past = run_step(sess, ids[None, t:t + 1], np.ones((1, t + 1), np.int64),
                            np.array([[t]], np.int64), past)
        parts.append(lg[0])
    cached = np.concatenate(parts, axis=0)
    d_cache = float(np.abs(cached - full).max())
    # left-padded batch: row 0 = full sequence, row 1 = last m tokens padded on the left,
    # prefilled together, then one decode step with the same next token on both rows.
    m = max(2, n // 2)
    pad = n - 1 - m
    batch = np.zeros((2, n - 1), np.int64)
    batch[0] = ids[:n - 1]
    batch[1, pad:] = ids[n - 1 - m:n - 1]
    mask = np.ones((2, n - 1), np.int64)
    mask[1, :pad] = 0
    pos = np.stack([np.arange(n - 1), np.maximum(np.arange(n - 1) - pad, 0)]).astype(np.int64)
    lg, past = run_step(sess, batch, mask, pos)
    ref1, _ = run_step(sess, ids[None, n - 1 - m:n - 1], np.ones((1, m), np.int64), np.arange(m, dtype=np.int64)[None])
    d_pad = float(np.abs(lg[0] - full[:n - 1]).max())
    d_pad = max(d_pad, float(np.abs(lg[1, pad:] - ref1[0]).max()))
    nan_free = bool(np.isfinite(lg).all())
    mask2 = np.concatenate([mask, np.ones((2, 1), np.int64)], axis=1)
    step_ids = np.array([[ids[n - 1]], [ids[n - 1]]], np.int64)
    lg2, _ = run_step(sess, step_ids, mask2, np.array([[n - 1], [m]], np.int64), past)
    ref2, _ = run_step(sess, ids[None, n - 1 - m:], np.ones((1, m + 1), np.int64), np.arange(m + 1, dtype=np.int64)[None])
    d_pad = max(d_pad, float(np.abs(lg2[0, 0] - full[n - 1]).max()), float(np.abs(lg2[1, 0] - ref2[0, -1]).max()))
    return {"cached_vs_uncached": d_cache, "left_padded_batch": d_pad, "finite": nan_free}


# --------------------------------------------------------------------------- CLI


def tokenizer_vocab_size(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    ids = list(tj["model"]["vocab"].values()) + [t["id"] for t in tj.get("added_tokens", [])]
    return max(ids) + 1


def as_gguf_blocks(w: dict) -> dict:
    """The weights quantized the way a Q4_1 GGUF stores them: linear layers as Q4_1 blocks, the
    (tied) embedding as Q8_0 blocks (quant_blocks mirrors ggml's reference quantizers)."""
    linear = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")
    out = {"embed": Q8_0.quantize(w["embed"]), "norm": w["norm"], "lm_head": None}
    out["layers"] = [{k: (Q4_1.quantize(v) if k in linear else v) for k, v in lw.items()} for lw in w["layers"]]
    return out


# Max |logit difference| allowed between the 4-bit tiny model (int8 activations) and the numpy
# reference; tests/engine.rs states the same bound.
Q4_TINY_TOLERANCE = 0.05

# Prompts of the 4-bit tiny model's reference.json (token ids of the GPT-2 vocabulary).
REFERENCE_PROMPTS = [[15496, 995], [464, 6128, 9808, 379, 5193, 290, 20612, 379], [87] * 3 + [50256, 11, 13, 30]]


def write_tiny_random(out: str, tokenizer: str, seed: int = 0, layers: int = 2, hidden: int = 64,
                      heads: int = 4, kv_heads: int = 2, ffn: int = 128, context: int = 512,
                      weights: str = "fp32", accuracy_level: int = 4) -> None:
    """Write the tiny random model. weights "q4": its weights as GGUF Q4_1 / Q8_0 blocks (built
    with `accuracy_level`), plus reference.json: for REFERENCE_PROMPTS, the last position's logits
    of a float64 numpy forward over the dequantized blocks (reference_forward)."""
    cfg = LlamaConfig(vocab_size=tokenizer_vocab_size(tokenizer), hidden_size=hidden, num_layers=layers,
                      num_heads=heads, num_kv_heads=kv_heads, intermediate_size=ffn, rms_norm_eps=1e-5,
                      rope_theta=10000.0, max_position_embeddings=context)
    w = random_weights(cfg, seed)
    if weights == "q4":
        w = as_gguf_blocks(w)
        model = build_llama_model(cfg, w, name="tiny_llama_random_q4", accuracy_level=accuracy_level)
    else:
        model = build_llama_model(cfg, w, name="tiny_llama_random")
    os.makedirs(out, exist_ok=True)
    save_model(model, os.path.join(out, "model.onnx"))
    if os.path.abspath(tokenizer) != os.path.abspath(os.path.join(out, "tokenizer.json")):
        shutil.copyfile(tokenizer, os.path.join(out, "tokenizer.json"))
    with open(tokenizer, encoding="utf-8") as f:
        tj = json.load(f)
    added = {t["content"] for t in tj.get("added_tokens", [])}
    ends = [t for t in ("<|im_end|>", "<|endoftext|>") if t in added or t in tj["model"].get("vocab", {})]
    q4 = weights == "q4"
    manifest = {
        "name": f"tiny-llama-random-seed{seed}" + ("-q4" if q4 else ""),
        "family": "llama",
        "prompt_format": "chatml",
        "end_tokens": ends,
        "context_length": context,
        "source": f"random weights (tools/llama_onnx.py --tiny-random --seed {seed}"
                  + (" --weights q4" if q4 else "") + "); not a real model",
        "weights": weights,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    if q4:
        cases = [{"prompt_ids": ids, "last_logits": [round(float(x), 6) for x in reference_forward(cfg, w, ids)[-1]]}
                 for ids in REFERENCE_PROMPTS]
        with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
            json.dump({"about": "last-position logits of a float64 numpy forward over the dequantized Q4_1/Q8_0 "
                                "blocks (tools/llama_onnx.py reference_forward)",
                       "accuracy_level": accuracy_level, "cases": cases}, f)
    print(json.dumps({"config": asdict(cfg), "seed": seed, "weights": weights}), file=sys.stderr)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiny-random", action="store_true", help="write a small seeded random Llama model")
    ap.add_argument("--tokenizer", help="tokenizer.json to copy (vocab size is read from it)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=128)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--weights", choices=["fp32", "q4"], default="fp32",
                    help="q4: GGUF-style Q4_1 / Q8_0 blocks of the random weights, and reference.json")
    ap.add_argument("--accuracy-level", type=int, default=4, help="MatMulNBits accuracy_level for --weights q4")
    ap.add_argument("--check", action="store_true", help="after writing, verify numpy ref / cache / padding")
    a = ap.parse_args(argv)
    if not a.tiny_random:
        ap.error("only --tiny-random is available here; use tools/smollm2.py for the real model")
    if not a.tokenizer:
        ap.error("--tiny-random needs --tokenizer PATH")
    write_tiny_random(a.out, a.tokenizer, a.seed, a.layers, a.hidden, a.heads, a.kv_heads, a.ffn, a.context,
                      a.weights, a.accuracy_level)
    if a.check:
        cfg = LlamaConfig(tokenizer_vocab_size(a.tokenizer), a.hidden, a.layers, a.heads, a.kv_heads, a.ffn,
                          1e-5, 10000.0, a.context)
        w = random_weights(cfg, a.seed)
        if a.weights == "q4":
            w = as_gguf_blocks(w)
        ids = np.random.default_rng(1).integers(0, cfg.vocab_size, 12)
        sess = ort_session(os.path.join(a.out, "model.onnx"))
        lg, _ = run_step(sess, ids[None], np.ones((1, 12), np.int64), np.arange(12, dtype=np.int64)[None])
        ref = reference_forward(cfg, w, ids)
        res = {"numpy_vs_ort_max_abs": float(np.abs(lg[0] - ref).max())}
        res.update(check_cache_consistency(sess, ids))
        print(json.dumps(res), file=sys.stderr)
        tol = 1e-3 if a.weights == "fp32" or a.accuracy_level == 0 else Q4_TINY_TOLERANCE
        ok = res["numpy_vs_ort_max_abs"] < tol and res["cached_vs_uncached"] < tol \
            and res["left_padded_batch"] < tol and res["finite"]
        print("check:", "ok" if ok else "FAILED", file=sys.stderr)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
