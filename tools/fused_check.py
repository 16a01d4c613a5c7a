#!/usr/bin/env python3
"""Check a fused-layout model directory (tools/llama_fused.py) against the Optimum-layout one
built from the same weights, with ONNX Runtime from Python, and time their decode steps.

    python tools/fused_check.py --fused DIR_FUSED --optimum DIR [--tokens 24] [--time-steps 32]

Checks (printed as JSON, exit 1 when one fails):
- greedy ids: the fused graph, decoding in one KV buffer shared in place between past and
  present (IOBinding binds the same memory as input and output), gives the same greedy ids as
  the Optimum graph with its growing cache;
- batch: two prompts of different lengths prefilled together (right-padded) and decoded in one
  batch give the same logits as each alone;
- prefix: a prompt prefilled in two parts (a cached prefix, then the rest as one chunk) gives
  the same last logits as prefilled at once.
With --time-steps N: the median time of one batch-1 decode step of each graph (N steps after a
32-token prompt), interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_onnx  # noqa: E402


def session(model_dir: str, threads: int):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])


class FusedRunner:
    """Runs a fused graph over per-layer KV buffers [batch, kv_heads, capacity, head_dim] that are
    bound as both past and present (shared in place)."""

    def __init__(self, sess, batch: int, capacity: int):
        self.sess = sess
        past = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
        self.layers = len(past) // 2
        _, heads, _, hd = past[0].shape
        self.buffers = {i.name: np.zeros((batch, heads, capacity, hd), np.float32) for i in past}
        self.lens = np.zeros(batch, np.int64)

    def run(self, rows: list[list[int]], every_position: bool = False) -> np.ndarray:
        """Feeds rows[b] (new tokens of row b; all the same length unless it is a first prompt)
        and returns logits [batch, 1, vocab] of each row's last new token, or [batch, seq, vocab]
        with every_position."""
        seq = max(len(r) for r in rows)
        ids = np.zeros((len(rows), seq), np.int64)
        for b, r in enumerate(rows):
            ids[b, :len(r)] = r
        if every_position:
            positions = np.tile(np.arange(seq, dtype=np.int64), (len(rows), 1))
        else:
            positions = np.array([[len(r) - 1] for r in rows], np.int64)
        new_lens = self.lens + np.array([len(r) for r in rows])
        binding = self.sess.io_binding()
        binding.bind_cpu_input("input_ids", ids)
        binding.bind_cpu_input("seqlens_k", (new_lens - 1).astype(np.int32))
        binding.bind_cpu_input("total_sequence_length", np.array(int(new_lens.max()), np.int32))
        binding.bind_cpu_input("logits_positions", positions)
        binding.bind_output("logits")
        for name, buf in self.buffers.items():
            value = ort.OrtValue.ortvalue_from_numpy(buf)
            binding.bind_ortvalue_input(name, value)
            binding.bind_ortvalue_output(name.replace("past_key_values.", "present."), value)
        self.sess.run_with_iobinding(binding)
        self.lens = new_lens
        return binding.copy_outputs_to_cpu()[0]


def optimum_greedy(sess, prompt: list[int], steps: int) -> list[int]:
    n = len(prompt)
    lg, past = llama_onnx.run_step(sess, np.array([prompt]), np.ones((1, n), np.int64), np.arange(n)[None])
    out = [int(lg[0, -1].argmax())]
    for _ in range(steps - 1):
        t = n + len(out) - 1
        lg, past = llama_onnx.run_step(sess, np.array([[out[-1]]]), np.ones((1, t + 1), np.int64),
                                       np.array([[t]]), past)
        out.append(int(lg[0, -1].argmax()))
    return out


def fused_greedy(sess, prompt: list[int], steps: int) -> list[int]:
    runner = FusedRunner(sess, 1, len(prompt) + steps)
    lg = runner.run([prompt])
    out = [int(lg[0, -1].argmax())]
    for _ in range(steps - 1):
        out.append(int(runner.run([[out[-1]]])[0, -1].argmax()))
    return out


def check(fused_dir: str, optimum_dir: str, tokens: int, threads: int) -> dict:
    fused, optimum = session(fused_dir, threads), session(optimum_dir, threads)
    rng = np.random.default_rng(7)
    vocab = fused.get_outputs()[0].shape[2]
    prompts = [rng.integers(3, vocab, n).tolist() for n in (5, 11, 17)]
    same_ids = all(fused_greedy(fused, p, tokens) == optimum_greedy(optimum, p, tokens) for p in prompts)

    # batch: rows of 5 and 11 tokens, right-padded, then 3 decode steps together
    a, b = prompts[0], prompts[1]
    batch = FusedRunner(fused, 2, 32)
    lg = batch.run([a, b])
    alone_a, alone_b = FusedRunner(fused, 1, 32), FusedRunner(fused, 1, 32)
    la, lb = alone_a.run([a]), alone_b.run([b])
    diff = max(float(np.abs(lg[0, -1] - la[0, -1]).max()), float(np.abs(lg[1, -1] - lb[0, -1]).max()))
    every = FusedRunner(fused, 2, 32).run([a, b], every_position=True)
    diff = max(diff, float(np.abs(every[0, len(a) - 1] - la[0, -1]).max()),
               float(np.abs(every[1, len(b) - 1] - lb[0, -1]).max()))
    for step in range(3):
        ta, tb = 100 + step, 200 + step
        lg = batch.run([[ta], [tb]])
        la, lb = alone_a.run([[ta]]), alone_b.run([[tb]])
        diff = max(diff, float(np.abs(lg[0, 0] - la[0, 0]).max()), float(np.abs(lg[1, 0] - lb[0, 0]).max()))

    # prefix: 11 tokens = 6 cached + a chunk of 5
    whole = FusedRunner(fused, 1, 32).run([b])[0, -1]
    parts = FusedRunner(fused, 1, 32)
    parts.run([b[:6]])
    chunked = parts.run([b[6:]])[0, -1]
    prefix_diff = float(np.abs(whole - chunked).max())

    ref = optimum_greedy(optimum, b, 1)
    full_lg, _ = llama_onnx.run_step(optimum, np.array([b]), np.ones((1, len(b)), np.int64), np.arange(len(b))[None])
    layout_diff = float(np.abs(full_lg[0, -1] - whole).max())
    tol = 2e-3
    res = {"same_greedy_ids": same_ids, "greedy_tokens": tokens, "batch_vs_alone": diff,
           "prefix_chunk_vs_whole": prefix_diff, "fused_vs_optimum_logits": layout_diff,
           "first_id": ref[0]}
    res["ok"] = same_ids and diff < tol and prefix_diff < tol
    return res


def time_steps(fused_dir: str, optimum_dir: str, steps: int, threads: int) -> dict:
    fused, optimum = session(fused_dir, threads), session(optimum_dir, threads)
    prompt = list(range(100, 132))
    runner = FusedRunner(fused, 1, len(prompt) + steps + 1)
    runner.run([prompt])
    n = len(prompt)
    lg, past = llama_onnx.run_step(optimum, np.array([prompt]), np.ones((1, n), np.int64), np.arange(n)[None])
    times = {"fused": [], "optimum": []}
    for s in range(steps):
        t = time.perf_counter()
        runner.run([[5]])
        times["fused"].append(time.perf_counter() - t)
        t = time.perf_counter()
        pos = n + s
        lg, past = llama_onnx.run_step(optimum, np.array([[5]]), np.ones((1, pos + 1), np.int64),
                                       np.array([[pos]]), past)
        times["optimum"].append(time.perf_counter() - t)
    return {f"{k}_step_ms_median": round(statistics.median(v) * 1000, 2) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fused", required=True)
    ap.add_argument("--optimum", required=True)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--time-steps", type=int, default=0)
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args(argv)
    res = {} if a.no_check else check(a.fused, a.optimum, a.tokens, a.threads)
    if a.time_steps:
        res.update(time_steps(a.fused, a.optimum, a.time_steps, a.threads))
    print(json.dumps(res))
    return 0 if res.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
