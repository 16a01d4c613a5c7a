#!/usr/bin/env python3
"""llama.cpp greedy decoding on a GGUF through llama-cpp-python's low-level (batched) API: the
reference `shopkeep bench` measures the embedded engine against.

    python tools/llama_cpp_reference.py --gguf F.gguf --prompt-ids 1,2,3 --max-new-tokens 64
                                        [--threads 2] [--parallel 1] [--json]

Runs with the Python of scripts/setup.sh llama-server (`llama_cpp` importable). The prompt is
given as token ids (the engine's tokenizer is built from the same GGUF's vocabulary, so both
run on exactly the same ids). `--parallel N` decodes N copies of the prompt as N sequences in
one llama_batch per step (llama.cpp's batched API, as its server does with N slots); 1 is
plain batch-1 decoding. Greedy: the next token is the argmax of the logits (numpy).

Timing (time.perf_counter): one warm-up generation of 4 tokens first (not timed), then
  prefill_ms     the llama_decode of the prompt(s) plus the first argmax
  tokens_per_s   decode rate: tokens after the first, over all sequences, divided by the time
                 of the steps that produced them (the engine's definition)
Prints one JSON line: prompt_ids, output_ids (sequence 0), tokens_per_s, prefill_ms, parallel,
threads, llama_cpp_version.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--prompt-ids", required=True, help="comma-separated token ids")
    ap.add_argument("--max-new-tokens", type=int, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    import llama_cpp as L

    prompt = [int(t) for t in a.prompt_ids.split(",") if t.strip()]
    if not prompt or a.max_new_tokens < 2 or a.parallel < 1:
        ap.error("need a prompt, --max-new-tokens >= 2 and --parallel >= 1")
    L.llama_backend_init()
    mparams = L.llama_model_default_params()
    model = L.llama_model_load_from_file(os.fsencode(a.gguf), mparams)
    if not model:
        raise SystemExit(f"llama.cpp could not load {a.gguf}")
    cparams = L.llama_context_default_params()
    per_seq = len(prompt) + a.max_new_tokens + 8
    cparams.n_ctx = per_seq * a.parallel
    cparams.n_batch = max(512, len(prompt) * a.parallel)
    cparams.n_ubatch = cparams.n_batch
    cparams.n_seq_max = a.parallel
    cparams.n_threads = a.threads
    cparams.n_threads_batch = a.threads
    ctx = L.llama_init_from_model(model, cparams)
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    memory = L.llama_get_memory(ctx)
    batch = L.llama_batch_init(max(len(prompt) * a.parallel, a.parallel), 0, a.parallel)

    def fill(entries):
        """entries: (token, position, sequence, wants_logits)."""
        batch.n_tokens = len(entries)
        for i, (tok, pos, seq, logits) in enumerate(entries):
            batch.token[i] = tok
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits

    def argmax(i):
        return int(np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(vocab,)).argmax())

    def generate(ids, new_tokens):
        L.llama_memory_clear(memory, True)
        n = len(ids)
        t0 = time.perf_counter()
        fill([(tok, p, s, p == n - 1) for s in range(a.parallel) for p, tok in enumerate(ids)])
        if L.llama_decode(ctx, batch) != 0:
            raise SystemExit("llama_decode failed on the prompt")
        nxt = [argmax((s + 1) * n - 1) for s in range(a.parallel)]
        prefill = time.perf_counter() - t0
        outs = [[t] for t in nxt]
        t1 = time.perf_counter()
        for step in range(1, new_tokens):
            fill([(outs[s][-1], n + step - 1, s, True) for s in range(a.parallel)])
            if L.llama_decode(ctx, batch) != 0:
                raise SystemExit("llama_decode failed")
            for s in range(a.parallel):
                outs[s].append(argmax(s))
        decode = time.perf_counter() - t1
        return outs, prefill, (new_tokens - 1) * a.parallel / decode

    generate(prompt, 4)
    outs, prefill, rate = generate(prompt, a.max_new_tokens)
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
    line = {"prompt_ids": prompt, "output_ids": outs[0], "tokens_per_s": rate,
            "prefill_ms": prefill * 1000, "parallel": a.parallel, "threads": a.threads,
            "llama_cpp_version": getattr(L, "__version__", "?")}
    print(json.dumps(line) if a.json else line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
