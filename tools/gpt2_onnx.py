#!/usr/bin/env python3
"""Write a GPT-2 ONNX graph in Optimum's text-generation-with-past layout (see tools/onnx_layout.py).

Weights: seeded random (--preset tiny|small, overrides) or a Hugging Face GPT-2
model.safetensors (--safetensors FILE). Writes DIR/model.onnx (and copies
--tokenizer to DIR/tokenizer.json when given). No other files are written.

Usage:
    python tools/gpt2_onnx.py --out DIR [--preset tiny|small] [--layers N --width C --heads H
                              --vocab V --context T] [--seed S] [--init-std X]
                              [--safetensors FILE] [--tokenizer tokenizer.json] [--quantize int8]
                              [--check]

--quantize int8: weight-only 8-bit block quantization (block 32, asymmetric, onnxruntime's
quantizer) of every linear layer (attn qkv, attn proj, mlp fc, mlp proj) and of the tied LM head,
as com.microsoft MatMulNBits with accuracy_level 4 (int8 compute on CPU). The token and position
embeddings stay fp32 for the Gathers, so the LM head gets its own quantized copy of wte^T.
Metadata weight_quantization records the scheme. Without --quantize the model is fp32 (MatMul,
tied Gemm head) and unchanged.

--check verifies the written model with onnxruntime against a numpy reference forward
(full recompute, tolerance 1e-4), cached vs uncached decoding, chunked prefill, and a
left-padded batch of two prompts vs each prompt alone. It exits non-zero on failure.
For an int8 model the reference is still the fp32 numpy forward, with a looser tolerance
(INT8_REF_TOL x the largest reference logit), and the cache/padding self-consistency checks
use INT8_SELF_TOL; it also reports how often the argmax agrees with the reference.

The same arguments give a byte-identical model.onnx (deterministic RNG and node names).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_layout as L  # noqa: E402

PRESETS = {
    # init_std: tiny uses a larger std so greedy decoding of the random model is not one repeated token.
    "tiny": dict(layers=2, width=64, heads=2, context=1024, vocab=50257, init_std=0.3),
    "small": dict(layers=12, width=768, heads=12, context=1024, vocab=50257, init_std=0.02),
}
LN_EPS = 1e-5
EOT_ID = 50256
QUANTIZE = {
    # --quantize NAME -> onnx_layout.NBitsQuant (bits, block_size, accuracy_level)
    "int8": L.NBitsQuant(bits=8, block_size=32, accuracy_level=4),
}
INT8_REF_TOL = 0.1      # int8 vs fp32 numpy reference: max abs diff / max |reference logit|
INT8_SELF_TOL = 0.05    # int8 cached vs uncached, chunked, padded batch: max abs diff / max |logit|


def log(msg: str) -> None:
    print(f"[gpt2_onnx] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    print(f"[gpt2_onnx] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ----------------------------------------------------------------------------- weights

def random_weights(layers, width, heads, vocab, context, seed, std):
    """GPT-2-style init: N(0, std) weights, residual projections scaled by 1/sqrt(2*layers),
    zero biases, unit LayerNorm gains. Deterministic for a given seed (fixed generation order)."""
    rng = np.random.default_rng(seed)

    def normal(*shape, s=std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(s)).astype(np.float32)

    proj_std = std / math.sqrt(2 * layers)
    w = {"wte": normal(vocab, width), "wpe": normal(context, width, s=std / 2)}
    for i in range(layers):
        p = f"h.{i}."
        w[p + "ln_1.weight"] = np.ones(width, np.float32)
        w[p + "ln_1.bias"] = np.zeros(width, np.float32)
        w[p + "attn.c_attn.weight"] = normal(width, 3 * width)
        w[p + "attn.c_attn.bias"] = np.zeros(3 * width, np.float32)
        w[p + "attn.c_proj.weight"] = normal(width, width, s=proj_std)
        w[p + "attn.c_proj.bias"] = np.zeros(width, np.float32)
        w[p + "ln_2.weight"] = np.ones(width, np.float32)
        w[p + "ln_2.bias"] = np.zeros(width, np.float32)
        w[p + "mlp.c_fc.weight"] = normal(width, 4 * width)
        w[p + "mlp.c_fc.bias"] = np.zeros(4 * width, np.float32)
        w[p + "mlp.c_proj.weight"] = normal(4 * width, width, s=proj_std)
        w[p + "mlp.c_proj.bias"] = np.zeros(width, np.float32)
    w["ln_f.weight"] = np.ones(width, np.float32)
    w["ln_f.bias"] = np.zeros(width, np.float32)
    return w


def load_safetensors(path):
    """Load HF GPT-2 weights (optional `transformer.` prefix), as float32, and infer the config."""
    from safetensors.numpy import load_file
    raw = load_file(path)
    w = {}
    for k, v in raw.items():
        k2 = k[len("transformer."):] if k.startswith("transformer.") else k
        if k2.endswith(".attn.bias") or k2.endswith(".attn.masked_bias") or k2 == "lm_head.weight":
            continue  # causal-mask buffers; lm_head is tied to wte
        w[k2] = np.ascontiguousarray(v.astype(np.float32))
    for k in ("wte", "wpe"):
        if k + ".weight" in w:
            w[k] = w.pop(k + ".weight")
    if "wte" not in w or "wpe" not in w:
        die(f"{path}: no wte/wpe tensors (is this a GPT-2 checkpoint?)")
    layers = 0
    while f"h.{layers}.ln_1.weight" in w:
        layers += 1
    vocab, width = w["wte"].shape
    context = w["wpe"].shape[0]
    return w, dict(layers=layers, width=width, vocab=vocab, context=context)


# ----------------------------------------------------------------------------- graph

def build_graph(w, layers, width, heads, vocab, context, source, quant=None):
    """ModelProto for the weights w. quant: None (fp32) or an onnx_layout.NBitsQuant for every
    linear layer and the LM head (see --quantize)."""
    head_dim = width // heads
    gb = L.GraphBuilder("gpt2")
    io = L.declare_text_generation_io(gb, layers, heads, head_dim, vocab)

    def init(name):
        return gb.initializer(w[name], "transformer." + name)

    def lin(x, prefix):
        """x @ W + b for the Conv1D-style (already [in, out]) weight `prefix.weight`."""
        if quant is None:
            return L.linear(gb, x, init(prefix + ".weight"), init(prefix + ".bias"))
        y = L.matmul_weight(gb, x, w[prefix + ".weight"], "transformer." + prefix + ".weight", quant)
        return gb.node("Add", [y, init(prefix + ".bias")])

    wte = init("wte")
    wpe = init("wpe")
    h = gb.node("Add", [gb.node("Gather", [wte, io.input_ids], axis=0),
                        gb.node("Gather", [wpe, io.position_ids], axis=0)])
    bias = L.build_attention_bias(gb, io.input_ids, io.attention_mask)
    split = gb.const([width, width, width])
    c0 = gb.const(math.sqrt(2.0 / math.pi), np.float32)
    c1 = gb.const(0.044715, np.float32)
    half = gb.const(0.5, np.float32)
    one = gb.const(1.0, np.float32)

    def gelu_new(x):
        x3 = gb.node("Mul", [gb.node("Mul", [x, x]), x])
        inner = gb.node("Mul", [gb.node("Add", [x, gb.node("Mul", [x3, c1])]), c0])
        t = gb.node("Add", [gb.node("Tanh", [inner]), one])
        return gb.node("Mul", [gb.node("Mul", [x, half]), t])

    for i in range(layers):
        p = f"h.{i}."
        x = L.layer_norm(gb, h, init(p + "ln_1.weight"), init(p + "ln_1.bias"), LN_EPS)
        qkv = lin(x, p + "attn.c_attn")
        q, k, v = gb.node("Split", [qkv, split], n_outputs=3, axis=-1)
        q, k, v = (L.split_heads(gb, t, heads, head_dim) for t in (q, k, v))
        pk, pv = L.append_kv_cache(gb, io, i, k, v)
        ctx = L.attention(gb, q, pk, pv, bias, heads, heads, head_dim)
        a = lin(ctx, p + "attn.c_proj")
        h = gb.node("Add", [h, a])
        x = L.layer_norm(gb, h, init(p + "ln_2.weight"), init(p + "ln_2.bias"), LN_EPS)
        m = gelu_new(lin(x, p + "mlp.c_fc"))
        m = lin(m, p + "mlp.c_proj")
        h = gb.node("Add", [h, m])
    h = L.layer_norm(gb, h, init("ln_f.weight"), init("ln_f.bias"), LN_EPS)
    if quant is None:
        # Tied LM head: logits = h @ wte^T, via Gemm(transB=1) on [b*s, C] so wte is stored once.
        flat = gb.node("Reshape", [h, gb.const([-1, width])])
        lg = gb.node("Gemm", [flat, wte], transB=1)
        out_shape = gb.node("Concat", [gb.node("Shape", [io.input_ids]), gb.const([vocab])], axis=0)
        gb.node("Reshape", [lg, out_shape], outputs=[io.logits])
    else:
        # Tied LM head, quantized: its own MatMulNBits copy of wte^T (the Gather keeps fp32 wte).
        lg = L.matmul_weight(gb, h, w["wte"].T, "lm_head.weight_t", quant)
        gb.node("Identity", [lg], outputs=[io.logits])
    meta = {
        "model_family": "gpt2",
        "max_position_embeddings": context,
        "num_hidden_layers": layers,
        "hidden_size": width,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "bos_token_id": EOT_ID if vocab > EOT_ID else "",
        "eos_token_id": EOT_ID if vocab > EOT_ID else "",
        "layout": "optimum-text-generation-with-past",
        "source": source,
    }
    if quant is not None:
        meta["weight_quantization"] = L.weight_quantization_label(quant)
    model = gb.make_model({k: v for k, v in meta.items() if v != ""})
    if quant is not None:
        L.add_com_microsoft_opset(model)
    return model


# ----------------------------------------------------------------------------- reference + checks

def _ln(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * g + b


def numpy_forward(w, cfg, input_ids, attention_mask, position_ids):
    """Full-recompute reference (float64): logits [b, s, V] for given ids/mask/positions, past = 0."""
    layers, width, heads = cfg["layers"], cfg["width"], cfg["heads"]
    d = width // heads
    f = {k: v.astype(np.float64) for k, v in w.items()}
    b, s = input_ids.shape
    h = f["wte"][input_ids] + f["wpe"][position_ids]
    causal = np.tril(np.ones((s, s), bool))
    allowed = causal[None, None] & (attention_mask[:, None, None, :] == 1)
    bias = np.where(allowed, 0.0, L.MASK_VALUE)

    def heads_(t):
        return t.reshape(b, s, heads, d).transpose(0, 2, 1, 3)

    for i in range(layers):
        p = f"h.{i}."
        x = _ln(h, f[p + "ln_1.weight"], f[p + "ln_1.bias"])
        qkv = x @ f[p + "attn.c_attn.weight"] + f[p + "attn.c_attn.bias"]
        q, k, v = (heads_(t) for t in np.split(qkv, 3, axis=-1))
        sc = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + bias
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        pr = sc / sc.sum(-1, keepdims=True)
        ctx = (pr @ v).transpose(0, 2, 1, 3).reshape(b, s, width)
        h = h + ctx @ f[p + "attn.c_proj.weight"] + f[p + "attn.c_proj.bias"]
        x = _ln(h, f[p + "ln_2.weight"], f[p + "ln_2.bias"])
        m = x @ f[p + "mlp.c_fc.weight"] + f[p + "mlp.c_fc.bias"]
        m = 0.5 * m * (1 + np.tanh(math.sqrt(2 / math.pi) * (m + 0.044715 * m ** 3)))
        h = h + m @ f[p + "mlp.c_proj.weight"] + f[p + "mlp.c_proj.bias"]
    h = _ln(h, f["ln_f.weight"], f["ln_f.bias"])
    return h @ f["wte"].T


class OrtModel:
    def __init__(self, path, cfg):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.layers = cfg["layers"]
        self.heads = cfg["heads"]
        self.d = cfg["width"] // cfg["heads"]

    def empty_past(self, b):
        z = np.zeros((b, self.heads, 0, self.d), np.float32)
        return [z] * (2 * self.layers)

    def run(self, ids, mask, pos, past):
        feed = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64),
                "position_ids": pos.astype(np.int64)}
        for i in range(self.layers):
            feed[f"past_key_values.{i}.key"] = past[2 * i]
            feed[f"past_key_values.{i}.value"] = past[2 * i + 1]
        out = self.sess.run(None, feed)
        return out[0], out[1:]


def run_checks(model_path, w, cfg, quantized=False):
    """Run all self-checks; return a dict of max abs differences. Raises AssertionError on failure.

    quantized: the model has int8 weights; w is still the fp32 weights, so the reference checks
    use tolerance INT8_REF_TOL * logit_scale and the self-consistency ones INT8_SELF_TOL * logit_scale.
    """
    m = OrtModel(model_path, cfg)
    rng = np.random.default_rng(7)
    V = cfg["vocab"]
    res = {}
    tol = 1e-4

    # 1. ORT vs numpy reference, prefill, batch 1 and a left-padded batch.
    ids = rng.integers(0, V, size=(1, 9))
    mask = np.ones_like(ids)
    pos = np.arange(9)[None]
    lo, _ = m.run(ids, mask, pos, m.empty_past(1))
    ref = numpy_forward(w, cfg, ids, mask, pos)
    res["ref_prefill"] = float(np.abs(lo - ref).max())
    res["logit_scale"] = float(np.abs(ref).max())
    if quantized:
        res["argmax_agree"] = float((lo.argmax(-1) == ref.argmax(-1)).mean())

    # 2. Cached decoding (prefill 4, then 1 token at a time) and chunked prefill (4 + 5) vs uncached.
    _, past = m.run(ids[:, :4], mask[:, :4], pos[:, :4], m.empty_past(1))
    d_dec = 0.0
    for t in range(4, 9):
        step, past = m.run(ids[:, t:t + 1], mask[:, :t + 1], pos[:, t:t + 1], past)
        d_dec = max(d_dec, float(np.abs(step[:, 0] - lo[:, t]).max()))
    res["cached_vs_uncached"] = d_dec
    _, past = m.run(ids[:, :4], mask[:, :4], pos[:, :4], m.empty_past(1))
    chunk, _ = m.run(ids[:, 4:], mask, pos[:, 4:], past)
    res["chunked_prefill"] = float(np.abs(chunk - lo[:, 4:]).max())

    # 3. Left-padded batch of two prompts (lengths 4 and 9) vs each alone, then 3 cached decode steps.
    a_ids = rng.integers(0, V, size=(1, 4))
    b_ids = ids
    pad = 5
    bids = np.concatenate([np.concatenate([np.full((1, pad), EOT_ID % V), a_ids], 1), b_ids], 0)
    bmask = np.concatenate([np.concatenate([np.zeros((1, pad)), np.ones((1, 4))], 1), np.ones((1, 9))], 0)
    bmask = bmask.astype(np.int64)
    bpos = np.clip(np.cumsum(bmask, 1) - 1, 0, None)  # padded slots get position 0 (ignored)
    blog, bpast = m.run(bids, bmask, bpos, m.empty_past(2))
    a_alone, a_past = m.run(a_ids, np.ones_like(a_ids), np.arange(4)[None], m.empty_past(1))
    res["padded_batch_last"] = max(float(np.abs(blog[0, -1] - a_alone[0, -1]).max()),
                                   float(np.abs(blog[1, -1] - lo[0, -1]).max()))
    bref = numpy_forward(w, cfg, bids, bmask, bpos)
    res["ref_padded_batch"] = float(np.abs(blog - bref)[bmask == 1].max())
    assert np.isfinite(blog).all(), "NaN/inf in padded batch logits"
    # decode 3 tokens greedily on the batch and on "a" alone: logits must agree
    b_past_alone = {"a": a_past}
    nxt = blog[:, -1].argmax(-1)
    a_nxt = a_alone[:, -1].argmax(-1)
    d_pd = 0.0
    for step in range(3):
        bmask = np.concatenate([bmask, np.ones((2, 1), np.int64)], 1)
        bpos = (bpos[:, -1] + 1)[:, None]
        sl, bpast = m.run(nxt[:, None], bmask, bpos, bpast)
        al, b_past_alone["a"] = m.run(a_nxt[:, None], np.ones((1, 5 + step), np.int64),
                                      np.array([[4 + step]]), b_past_alone["a"])
        d_pd = max(d_pd, float(np.abs(sl[0, -1] - al[0, -1]).max()))
        nxt, a_nxt = sl[:, -1].argmax(-1), al[:, -1].argmax(-1)
    res["padded_batch_decode"] = d_pd

    for k in ("ref_prefill", "cached_vs_uncached", "chunked_prefill", "padded_batch_last",
              "ref_padded_batch", "padded_batch_decode"):
        if quantized:
            rel = INT8_REF_TOL if k.startswith("ref_") else INT8_SELF_TOL
            tol = rel * res["logit_scale"]
        if not res[k] <= tol:
            raise AssertionError(f"check {k} failed: max abs diff {res[k]:.3g} > {tol:.3g}")
    return res


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (gets model.onnx)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--width", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--context", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-std", type=float, help="random init std (default: preset's)")
    ap.add_argument("--safetensors", help="HF GPT-2 model.safetensors instead of random weights")
    ap.add_argument("--tokenizer", help="tokenizer.json to copy to OUT/tokenizer.json")
    ap.add_argument("--quantize", choices=sorted(QUANTIZE),
                    help="weight-only quantization of the linear layers and LM head (see doc); default fp32")
    ap.add_argument("--check", action="store_true", help="verify the written model (see doc)")
    args = ap.parse_args()

    t0 = time.time()
    if args.safetensors:
        if not os.path.isfile(args.safetensors):
            die(f"no such file: {args.safetensors}")
        log(f"loading {args.safetensors} ...")
        w, cfg = load_safetensors(args.safetensors)
        for k in ("layers", "width", "vocab", "context"):
            v = getattr(args, k)
            if v is not None and v != cfg[k]:
                die(f"--{k} {v} does not match the checkpoint ({cfg[k]})")
        cfg["heads"] = args.heads or cfg["width"] // 64
        source = f"safetensors:{os.path.basename(args.safetensors)}"
    else:
        p = PRESETS[args.preset]
        cfg = {k: (getattr(args, k) if getattr(args, k) is not None else p[k])
               for k in ("layers", "width", "heads", "vocab", "context")}
        std = args.init_std if args.init_std is not None else p["init_std"]
        log(f"random weights preset={args.preset} seed={args.seed} std={std} {cfg} ...")
        w = random_weights(cfg["layers"], cfg["width"], cfg["heads"], cfg["vocab"], cfg["context"],
                           args.seed, std)
        source = f"random:preset={args.preset},seed={args.seed},std={std}"
    if cfg["width"] % cfg["heads"]:
        die(f"width {cfg['width']} not divisible by heads {cfg['heads']}")

    quant = QUANTIZE[args.quantize] if args.quantize else None
    if quant:
        log(f"quantize {args.quantize}: {L.weight_quantization_label(quant)} ...")
    model = build_graph(w, cfg["layers"], cfg["width"], cfg["heads"], cfg["vocab"], cfg["context"], source,
                        quant)
    out_path = os.path.join(args.out, "model.onnx")
    log(f"writing {out_path} ...")
    L.save_model(model, out_path)
    del model
    if args.tokenizer:
        if not os.path.isfile(args.tokenizer):
            die(f"no such tokenizer: {args.tokenizer}")
        dst = os.path.join(args.out, "tokenizer.json")
        if os.path.abspath(dst) != os.path.abspath(args.tokenizer):
            shutil.copyfile(args.tokenizer, dst)
    log(f"done in {time.time() - t0:.1f}s ({L.stored_size(out_path) / 1e6:.1f} MB)")

    if args.check:
        t1 = time.time()
        try:
            res = run_checks(out_path, w, cfg, quantized=quant is not None)
        except AssertionError as e:
            die(str(e))
        log("check ok in %.1fs: %s" % (time.time() - t1, ", ".join(f"{k}={v:.3g}" for k, v in res.items())))


if __name__ == "__main__":
    main()
