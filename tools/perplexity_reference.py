#!/usr/bin/env python3
"""Reference perplexity of a text under a shopkeep model directory, with onnxruntime.

    python tools/perplexity_reference.py --model-dir D --text-file F [--threads 2] [--stride N]

Method (the Rust `shopkeep perplexity` does the same, so the numbers cross-check):
  ids = tokenizer.json encoding of the file's text with surrounding whitespace stripped
        (no BOS, no special tokens added); every token but the first is scored.
  If len(ids) <= context_length (manifest.json): one prefill of the whole text,
  attention_mask all ones, position_ids 0..n-1, empty past.
  Otherwise sliding windows of context_length tokens starting at 0, stride, 2*stride, ...
  (stride defaults to context_length // 2); each window is a fresh prefill (positions
  restart at 0) and scores only the tokens not scored by an earlier window.
  perplexity = exp(mean over scored tokens of -log softmax(logits[t-1])[ids[t]]),
  log-softmax computed in float64.
The last line printed is `perplexity: X`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _run_prefill(sess, ids):
    from llama_onnx import run_step
    lg, _ = run_step(sess, np.asarray(ids, np.int64)[None], np.ones((1, len(ids)), np.int64),
                     np.arange(len(ids), dtype=np.int64)[None])
    return lg[0]


def perplexity(sess, ids, context: int, stride: int | None = None, return_count: bool = False):
    """Perplexity of ids (see module doc for the windowing rule)."""
    ids = np.asarray(ids, np.int64)
    n = len(ids)
    if n < 2:
        raise ValueError("need at least two tokens")
    stride = stride or max(1, context // 2)
    if not 1 <= stride <= context:
        raise ValueError("stride must be in 1..context")
    nll, count = 0.0, 0
    prev_end, begin = 1, 0
    while True:
        end = min(begin + context, n)
        lg = _run_prefill(sess, ids[begin:end]).astype(np.float64)
        m = lg.max(-1, keepdims=True)
        logp = lg - m - np.log(np.exp(lg - m).sum(-1, keepdims=True))
        t = np.arange(prev_end, end)
        nll -= float(logp[t - 1 - begin, ids[t]].sum())
        count += len(t)
        prev_end = end
        if end == n:
            break
        begin += stride
    ppl = float(np.exp(nll / count))
    return (ppl, count) if return_count else ppl


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Perplexity of a text file under a model directory (onnxruntime).")
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--text-file", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stride", type=int, default=None, help="window stride when the text exceeds the context")
    ap.add_argument("--context-length", type=int, default=None, help="override manifest context_length")
    a = ap.parse_args(argv)

    from tokenizers import Tokenizer
    from llama_onnx import ort_session

    manifest_path = os.path.join(a.model_dir, "manifest.json")
    manifest = {}
    if os.path.exists(manifest_path):  # optional: a GPT-2 directory has only model.onnx + tokenizer.json
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    context = a.context_length or int(manifest.get("context_length", 1024))
    tk = Tokenizer.from_file(os.path.join(a.model_dir, "tokenizer.json"))
    with open(a.text_file, encoding="utf-8") as f:
        text = f.read().strip()
    ids = tk.encode(text, add_special_tokens=False).ids
    t = time.time()
    sess = ort_session(os.path.join(a.model_dir, "model.onnx"), a.threads)
    ppl, count = perplexity(sess, ids, context, a.stride, return_count=True)
    print(f"model: {manifest.get('name')} ({manifest.get('weights')}), tokens: {len(ids)}, scored: {count}, "
          f"context: {context}, seconds: {time.time() - t:.1f}")
    print(f"perplexity: {ppl:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
