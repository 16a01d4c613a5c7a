#!/usr/bin/env python3
"""Profile decode steps of a model directory with ONNX Runtime's own profiler.

    python tools/profile_decode.py --model-dir DIR [--threads 2] [--steps 64] [--prompt-tokens 32] [--batch 1]

Loads DIR/model.onnx the way the engine does (CPU provider, intra-op threads, graph
optimisation All), prefills `--prompt-tokens` tokens in each of `--batch` rows (a batch above 1 needs the
fused layout), then runs `--steps` decode steps of one token per row with profiling on. Prints one JSON line:

    nodes              node count of the graph as stored
    optimized_nodes    node count after ONNX Runtime's graph optimisations
    load_s             session creation time
    step_ms_median     median wall time of one decode step (ONNX Runtime's model_run event)
    kernel_ms_median   median of the summed kernel times within a step
    by_op_ms           per operator type: kernel milliseconds per step (median step)
    top_nodes          the slowest nodes of the median step

The cache is fed back the way the engine feeds it (present -> past), so a layout with a
per-step Concat pays for it here too; a fused-layout model (its graph has a `seqlens_k` input,
tools/llama_fused.py) decodes in one buffer per layer bound as both past and present, as the
engine does.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Stepper:
    """Batch-1 greedy-free stepping through a with-past session: prefill, then one token a step."""

    def __init__(self, sess):
        import llama_onnx
        self.sess, self.run_step, self.past, self.n = sess, llama_onnx.run_step, None, 0

    def prefill(self, ids):
        n = len(ids)
        _, self.past = self.run_step(self.sess, np.array([ids], np.int64), np.ones((1, n), np.int64),
                                     np.arange(n, dtype=np.int64)[None])
        self.n = n

    def decode(self, token: int):
        _, self.past = self.run_step(self.sess, np.array([[token]], np.int64), np.ones((1, self.n + 1), np.int64),
                                     np.array([[self.n]], np.int64), self.past)
        self.n += 1


class FusedStepper:
    """The same through a fused-layout session, its KV buffers shared in place (fused_check.FusedRunner)."""

    def __init__(self, sess, capacity: int, batch: int):
        import fused_check
        self.runner, self.batch = fused_check.FusedRunner(sess, batch, capacity), batch

    def prefill(self, ids):
        self.runner.run([list(ids)] * self.batch)

    def decode(self, token: int):
        self.runner.run([[token]] * self.batch)


def stepper(sess, capacity: int, batch: int):
    """A Stepper or FusedStepper, whichever layout the session has; only the fused one batches."""
    if any(i.name == "seqlens_k" for i in sess.get_inputs()):
        return FusedStepper(sess, capacity, batch)
    if batch != 1:
        sys.exit("--batch above 1 needs a fused-layout model (tools/llama_fused.py)")
    return Stepper(sess)


def main(argv=None) -> int:
    with tempfile.TemporaryDirectory(prefix="shopkeep-profile-") as tmp:
        return profile(argv, tmp)


def profile(argv, tmp: str) -> int:
    """The work of main, writing the optimised model and the profile under `tmp`."""
    import onnx
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args(argv)

    path = os.path.join(a.model_dir, "model.onnx")
    stored = onnx.load(path, load_external_data=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
    t = time.time()
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    optimized = onnx.load(so.optimized_model_filepath, load_external_data=False)

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    t = time.time()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    load_s = time.time() - t

    capacity = a.prompt_tokens + a.steps + 8
    step = stepper(sess, capacity, a.batch)
    ids = list(np.random.default_rng(0).integers(20, 1000, a.prompt_tokens))
    step.prefill(ids)
    for _ in range(4):  # warm-up
        step.decode(int(ids[-1]))

    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tmp, "profile")
    psess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    pstep = stepper(psess, capacity, a.batch)
    pstep.prefill(ids)
    for _ in range(a.steps):
        pstep.decode(int(ids[-1]))
    events = json.load(open(psess.end_profiling()))

    runs = [e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    runs = runs[1:]  # the prefill
    step_ms = [e["dur"] / 1000 for e in runs]
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_step = []
    for run in runs:
        lo, hi = run["ts"], run["ts"] + run["dur"]
        per_step.append([k for k in kernels if lo <= k["ts"] <= hi])
    sums = [sum(k["dur"] for k in ks) / 1000 for ks in per_step]
    median_index = sorted(range(len(sums)), key=lambda i: sums[i])[len(sums) // 2]
    by_op = collections.Counter()
    for k in per_step[median_index]:
        by_op[k["args"].get("op_name", "?")] += k["dur"] / 1000
    top = sorted(per_step[median_index], key=lambda k: -k["dur"])[:8]
    print(json.dumps({
        "model_dir": a.model_dir,
        "threads": a.threads,
        "batch": a.batch,
        "nodes": len(stored.graph.node),
        "optimized_nodes": len(optimized.graph.node),
        "optimized_ops": dict(collections.Counter(n.op_type for n in optimized.graph.node).most_common()),
        "load_s": round(load_s, 3),
        "step_ms_median": round(statistics.median(step_ms), 3),
        "kernel_ms_median": round(statistics.median(sums), 3),
        "kernel_calls_per_step": len(per_step[median_index]),
        "by_op_ms": {k: round(v, 3) for k, v in by_op.most_common()},
        "top_nodes": [[k["name"].removesuffix("_kernel_time"), round(k["dur"] / 1000, 3)] for k in top],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
