#!/usr/bin/env python3
"""Plain onnxruntime greedy decoding: the correctness reference and benchmark baseline (a).

Usage:
    python tools/reference_greedy.py --model-dir D (--prompt TEXT | --prompt-ids 1,2,3)
                                     --max-new-tokens N [--threads 2] [--no-cache] [--json]
                                     [--runs R] [--eos ID[,ID...]] [--margins]

D holds model.onnx (Optimum text-generation-with-past layout, see tools/onnx_layout.py) and
tokenizer.json. The prompt is encoded with the `tokenizers` package
(Tokenizer.encode(text) with its default add_special_tokens=True; for GPT-2 this adds nothing).

Loop (batch 1, deliberately plain):
  * with cache (default): one prefill run over the whole prompt with empty past tensors
    (shape [1, kv_heads, 0, head_dim]); then one run per new token with input_ids [[tok]],
    attention_mask ones [1, past+1], position_ids [[past]], and past_key_values.* = the previous
    run's present.* outputs.
  * --no-cache: every step re-runs the full sequence (prompt + generated so far) with empty past.
  * Next token = argmax of the last position's logits (numpy argmax: lowest id wins ties).
  * Stops after max_new_tokens tokens, or right after emitting an eos id (the eos id is included
    in output_ids; "text" is decoded with skip_special_tokens=True). Default eos: the id of
    <|endoftext|> if the tokenizer has it, else none.

Timing (wall clock, time.perf_counter):
  * prefill_ms: the first session.run (the whole prompt) plus picking its argmax.
  * tokens_per_s: decode rate = (len(output_ids) - 1) / (total time of the runs that produced
    tokens 2..n, including building feeds and argmax). The first token comes from prefill and is
    not counted. null if fewer than 2 tokens were generated.
  * --runs R: the whole generation is repeated R times in the same session; prefill_ms and
    tokens_per_s are the medians, and the outputs must be identical across runs.

Session options: intra_op_num_threads=--threads, inter_op_num_threads=1,
graph_optimization_level=ORT_ENABLE_ALL, CPUExecutionProvider.

With --json a single line is printed:
  {"prompt_ids":[..],"output_ids":[..],"text":"..","tokens_per_s":..,"prefill_ms":.., ...}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def log(msg: str) -> None:
    print(f"[reference_greedy] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    print(f"[reference_greedy] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


class Model:
    def __init__(self, model_dir: str, threads: int):
        import onnxruntime as ort
        path = os.path.join(model_dir, "model.onnx")
        if not os.path.isfile(path):
            die(f"no model.onnx in {model_dir}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.past_names = [i.name for i in self.sess.get_inputs() if i.name.startswith("past_key_values.")]
        self.present_names = ["present." + n[len("past_key_values."):] for n in self.past_names]
        self.output_names = ["logits"] + self.present_names
        shapes = {i.name: i.shape for i in self.sess.get_inputs()}
        self.past_shape = {}
        for n in self.past_names:
            _, kvh, _, hd = shapes[n]
            if not isinstance(kvh, int) or not isinstance(hd, int):
                die(f"{n}: kv_heads/head_dim must be static, got {shapes[n]}")
            self.past_shape[n] = (1, kvh, 0, hd)
        # The fused layout (tools/llama_fused.py): one buffer per layer, shared in place.
        self.fused = "seqlens_k" in shapes
        self.capacity = 0

    def empty_past(self) -> dict:
        if self.fused:
            return {n: np.zeros((1, s[1], self.capacity, s[3]), np.float32) for n, s in self.past_shape.items()}
        return {n: np.zeros(s, np.float32) for n, s in self.past_shape.items()}

    def run(self, ids: list[int], past: dict, past_len: int):
        """One session.run for batch 1: `ids` are the new tokens, `past` the cache of length past_len.
        Returns logits [1, seq, vocab], or [1, 1, vocab] (the last position's) on the fused layout."""
        seq = len(ids)
        if self.fused:
            import onnxruntime as ort
            binding = self.sess.io_binding()
            binding.bind_cpu_input("input_ids", np.array([ids], dtype=np.int64))
            binding.bind_cpu_input("seqlens_k", np.array([past_len + seq - 1], np.int32))
            binding.bind_cpu_input("total_sequence_length", np.array(past_len + seq, np.int32))
            binding.bind_cpu_input("logits_positions", np.array([[seq - 1]], np.int64))  # the last only
            binding.bind_output("logits")
            for name, buf in past.items():
                value = ort.OrtValue.ortvalue_from_numpy(buf)
                binding.bind_ortvalue_input(name, value)
                binding.bind_ortvalue_output("present." + name[len("past_key_values."):], value)
            self.sess.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0], past
        feed = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, past_len + seq), dtype=np.int64),
            "position_ids": np.arange(past_len, past_len + seq, dtype=np.int64)[None, :],
        }
        feed.update(past)
        out = self.sess.run(self.output_names, feed)
        present = dict(zip(self.past_names, out[1:]))
        return out[0], present


def _margin(row: np.ndarray) -> float:
    top2 = np.partition(row, -2)[-2:]
    return float(top2[1] - top2[0])


def generate(model: Model, prompt_ids: list[int], max_new: int, eos: set, use_cache: bool,
             margins: list | None = None):
    """Greedy generation. Returns (output_ids, prefill_s, decode_s).

    If `margins` is a list, the top-1 minus top-2 logit gap of every step is appended to it
    (diagnostic for fixtures; only computed when asked, so it does not affect benchmark runs)."""
    out: list[int] = []
    model.capacity = len(prompt_ids) + max_new
    t0 = time.perf_counter()
    logits, past = model.run(prompt_ids, model.empty_past(), 0)
    tok = int(np.argmax(logits[0, -1]))
    if margins is not None:
        margins.append(_margin(logits[0, -1]))
    prefill_s = time.perf_counter() - t0
    out.append(tok)
    t1 = time.perf_counter()
    while len(out) < max_new and tok not in eos:
        if use_cache:
            logits, past = model.run([tok], past, len(prompt_ids) + len(out) - 1)
        else:
            logits, _ = model.run(prompt_ids + out, model.empty_past(), 0)
        tok = int(np.argmax(logits[0, -1]))
        if margins is not None:
            margins.append(_margin(logits[0, -1]))
        out.append(tok)
    decode_s = time.perf_counter() - t1
    return out, prefill_s, decode_s


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--prompt", help="prompt text (encoded with DIR/tokenizer.json)")
    g.add_argument("--prompt-ids", help="comma-separated token ids, e.g. 15496,995")
    ap.add_argument("--max-new-tokens", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    ap.add_argument("--no-cache", action="store_true", help="full recompute each step (no KV cache)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--runs", type=int, default=1, help="repeat R times, report medians")
    ap.add_argument("--margins", action="store_true",
                    help="add min_top2_margin (smallest top-1 minus top-2 logit gap) to the result")
    ap.add_argument("--eos", help="comma-separated eos ids (default: <|endoftext|> if in the tokenizer)")
    args = ap.parse_args()
    if args.max_new_tokens < 1 or args.runs < 1 or args.threads < 1:
        die("--max-new-tokens, --runs and --threads must be >= 1")

    from tokenizers import Tokenizer
    tok_path = os.path.join(args.model_dir, "tokenizer.json")
    tokenizer = Tokenizer.from_file(tok_path) if os.path.isfile(tok_path) else None
    if args.prompt is not None:
        if tokenizer is None:
            die(f"--prompt needs {tok_path}")
        prompt_ids = tokenizer.encode(args.prompt).ids
    else:
        try:
            prompt_ids = [int(x) for x in args.prompt_ids.split(",") if x.strip()]
        except ValueError:
            die(f"bad --prompt-ids {args.prompt_ids!r}")
    if not prompt_ids:
        die("empty prompt")
    if args.eos is not None:
        eos = {int(x) for x in args.eos.split(",") if x.strip()}
    else:
        eid = tokenizer.token_to_id("<|endoftext|>") if tokenizer else None
        eos = {eid} if eid is not None else set()

    model = Model(args.model_dir, args.threads)
    runs = []
    margins = [] if args.margins else None
    for r in range(args.runs):
        runs.append(generate(model, prompt_ids, args.max_new_tokens, eos, not args.no_cache,
                             margins if r == 0 else None))
        if runs[-1][0] != runs[0][0]:
            die(f"run {r} produced different tokens than run 0")
    output_ids = runs[0][0]
    n = len(output_ids)
    prefill_ms = statistics.median(p * 1e3 for _, p, _ in runs)
    tps = statistics.median((n - 1) / d for _, _, d in runs) if n > 1 else None
    text = tokenizer.decode(output_ids, skip_special_tokens=True) if tokenizer else None
    res = {"prompt_ids": prompt_ids, "output_ids": output_ids, "text": text,
           "tokens_per_s": round(tps, 3) if tps is not None else None,
           "prefill_ms": round(prefill_ms, 3), "runs": args.runs, "threads": args.threads,
           "cache": not args.no_cache,
           "stopped": "eos" if output_ids[-1] in eos else "max_new_tokens"}
    if margins is not None:
        res["min_top2_margin"] = round(min(margins), 6)
    if args.json:
        print(json.dumps(res, ensure_ascii=False))
    else:
        print(text if text is not None else output_ids)
        print(f"prompt {len(prompt_ids)} tokens, generated {n}; prefill {prefill_ms:.1f} ms; "
              f"decode {tps if tps is None else round(tps, 2)} tokens/s (median of {args.runs})",
              file=sys.stderr)


if __name__ == "__main__":
    main()
