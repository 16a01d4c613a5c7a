#!/usr/bin/env python3
"""How ONNX Runtime's 4-bit MatMulNBits kernel scales with the number of rows it multiplies.

    python tools/matmulnbits_scaling.py [--threads 2] [--k 576] [--n 1536] [--reps 300]

One MatMulNBits node (bits 4, block 32, uint8 zero points: the shape of SmolLM2's gate/up
projection by default) in its own session, run on [M, K] inputs for M = 1, 2, 4, 8, 16, 32
(M is the number of conversations in a decode step), with accuracy_level 4 (int8 activations,
what the default model uses) and 0 (float). Prints one JSON line per (accuracy_level, M):
median microseconds per run, multiply-accumulates per second, and the time relative to M = 1.

A batch of 8 conversations can decode at most 8 / time_vs_m1(8) times as fast as one: this
is the bound on `shopkeep bench`'s i_engine_over_h_engine from the 4-bit products alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np


def session(k: int, n: int, accuracy_level: int, threads: int):
    """A session holding one MatMulNBits node with random 4-bit weights."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    blocks = k // 32
    weights = rng.integers(0, 256, (n, blocks, 16), dtype=np.uint8)
    scales = (rng.random(n * blocks, dtype=np.float32) * 0.01).astype(np.float32)
    zero_points = rng.integers(0, 256, n * ((blocks + 1) // 2), dtype=np.uint8)
    node = helper.make_node("MatMulNBits", ["x", "w", "s", "z"], ["y"], domain="com.microsoft",
                            K=k, N=n, bits=4, block_size=32, accuracy_level=accuracy_level)
    graph = helper.make_graph(
        [node], "matmulnbits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m", n])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(scales, "s"),
         numpy_helper.from_array(zero_points, "z")])
    model = helper.make_model(graph, ir_version=10, opset_imports=[
        helper.make_opsetid("", 21), helper.make_opsetid("com.microsoft", 1)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--k", type=int, default=576)
    ap.add_argument("--n", type=int, default=1536)
    ap.add_argument("--reps", type=int, default=300)
    a = ap.parse_args(argv)
    rng = np.random.default_rng(1)
    for accuracy_level in (4, 0):
        sess = session(a.k, a.n, accuracy_level, a.threads)
        base = None
        for m in (1, 2, 4, 8, 16, 32):
            x = rng.standard_normal((m, a.k), dtype=np.float32)
            for _ in range(20):
                sess.run(None, {"x": x})
            times = []
            for _ in range(a.reps):
                started = time.perf_counter()
                sess.run(None, {"x": x})
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            base = base or median
            print(json.dumps({
                "accuracy_level": accuracy_level, "m": m, "k": a.k, "n": a.n, "threads": a.threads,
                "median_us": round(median * 1e6, 1),
                "gmac_per_s": round(m * a.k * a.n / median / 1e9, 1),
                "time_vs_m1": round(median / base, 2),
            }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
