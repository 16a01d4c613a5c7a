"""Shared ONNX graph helpers for shopkeep's model builders (GPT-2, Llama/SmolLM2).

The graphs follow the Optimum "text-generation-with-past" layout, which is the
contract the Rust engine reads:

inputs
    input_ids                  int64 [batch_size, sequence_length]
    attention_mask             int64 [batch_size, past_sequence_length + sequence_length]
    position_ids               int64 [batch_size, sequence_length]
    past_key_values.{i}.key    f32   [batch_size, kv_heads, past_sequence_length, head_dim]
    past_key_values.{i}.value  f32   [batch_size, kv_heads, past_sequence_length, head_dim]
outputs
    logits                     f32   [batch_size, sequence_length, vocab]
    present.{i}.key            f32   [batch_size, kv_heads, past_sequence_length + sequence_length, head_dim]
    present.{i}.value          f32   [batch_size, kv_heads, past_sequence_length + sequence_length, head_dim]

Attention rule (see build_attention_bias): the query at absolute index past+i
may attend key j iff j <= past+i and attention_mask[b, j] == 1. Masked entries
get an additive bias of MASK_VALUE (-1e9, not -inf) so fully masked rows (left
padding) give a uniform softmax instead of NaN.

Stable API (other builders import these names):
    OPSET, MASK_VALUE, DIM_BATCH, DIM_SEQ, DIM_PAST, DIM_TOTAL
    GraphBuilder                      (initializer / const / node / add_input / add_output / make_model)
    declare_text_generation_io(...)   -> TextGenIO
    build_attention_bias(...)         -> name of f32 [batch, 1, seq, total] bias
    append_kv_cache(...)              -> (present_key, present_value)
    attention(...)                    -> name of [batch, seq, heads*head_dim] context
    split_heads(...), merge_heads(...), layer_norm(...), linear(...)
    save_model(model, out_path)

Weight-only quantization (com.microsoft MatMulNBits, onnxruntime contrib op):
    NBitsQuant(bits, block_size, accuracy_level)      quantization spec (a plain tuple works too)
    quantize_nbits(w_in_out, bits, block_size)        -> (B, scales, zero_points) arrays
    matmul_weight(gb, x, w_in_out, name, quant)       -> x @ W as MatMul (quant None) or MatMulNBits
    weight_quantization_label(quant)                  -> the "weight_quantization" metadata string
    add_com_microsoft_opset(model)                    -> declares the com.microsoft domain (opset 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
"""Default-domain opset used by all shopkeep graphs."""

MASK_VALUE = -1e9
"""Additive bias for disallowed (query, key) pairs. Finite on purpose: no NaN on fully masked rows."""

DIM_BATCH = "batch_size"
DIM_SEQ = "sequence_length"
DIM_PAST = "past_sequence_length"
DIM_TOTAL = "past_sequence_length + sequence_length"

# Weights above this go to an external data file: ONNX Runtime memory-maps it, so an initializer
# it prepacks is released after packing (never copied onto the heap first), and a gathered
# table is resident only where it is read. Small test models stay one self-contained file.
_EXTERNAL_DATA_THRESHOLD = 16_000_000  # bytes


class GraphBuilder:
    """Minimal ONNX graph builder with automatic, deterministic node/tensor names.

    Usage:
        gb = GraphBuilder("gpt2")
        w = gb.initializer(np_array, "h.0.attn.c_attn.weight")
        y = gb.node("MatMul", [x, w])                       # -> auto output name
        a, b = gb.node("Split", [y, s], n_outputs=2, axis=-1)
        gb.node("Identity", [y], outputs=["logits"])         # explicit output name
        model = gb.make_model({"model_family": "gpt2"})

    Names are generated from a counter, so building the same graph twice gives
    byte-identical protobufs (needed for reproducible fixtures).
    """

    def __init__(self, name: str = "graph", opset: int = OPSET):
        """Create an empty graph called `name`, targeting default-domain `opset`."""
        self.name = name
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._names: set[str] = set()
        self._counter = 0
        self._const_cache: dict[tuple, str] = {}

    def fresh(self, hint: str = "t") -> str:
        """Return a new unique tensor name based on `hint`."""
        self._counter += 1
        name = f"/{hint}_{self._counter}"
        while name in self._names:
            self._counter += 1
            name = f"/{hint}_{self._counter}"
        self._names.add(name)
        return name

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise ValueError(f"duplicate tensor name {name!r}")
        self._names.add(name)
        return name

    def initializer(self, array: np.ndarray, name: str | None = None) -> str:
        """Add a weight tensor (numpy array, dtype kept as is) and return its name.

        Pass float32 arrays for weights; no implicit conversion is done.
        """
        name = self._claim(name) if name else self.fresh("init")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, value, dtype=np.int64) -> str:
        """Add (or reuse) a small constant initializer, e.g. gb.const([0, 0, -1]) or gb.const(1.0, np.float32).

        Scalars become 0-d tensors, lists become 1-d tensors. Identical constants are shared.
        """
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._const_cache:
            name = self.fresh("const")
            self.initializers.append(numpy_helper.from_array(arr, name))
            self._const_cache[key] = name
        return self._const_cache[key]

    def node(self, op_type: str, inputs, n_outputs: int = 1, outputs=None, name: str | None = None,
             domain: str = "", **attrs):
        """Append a node and return its output name (or list of names when n_outputs > 1).

        inputs: list of tensor names ("" for an omitted optional input).
        outputs: explicit output names (e.g. graph outputs); otherwise auto-generated.
        attrs: ONNX attributes, passed to onnx.helper.make_node.
        """
        if outputs is None:
            outputs = [self.fresh(op_type) for _ in range(n_outputs)]
        else:
            outputs = [self._claim(o) for o in outputs]
        node_name = name or f"{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, name=node_name,
                                           domain=domain, **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def add_input(self, name: str, elem_type: int, shape) -> str:
        """Declare a graph input. shape: list of ints / symbolic dim name strings."""
        self._claim(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, name: str, elem_type: int, shape) -> str:
        """Declare a graph output. The tensor `name` must be produced by some node
        (use node(..., outputs=[name]) or an Identity)."""
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def make_model(self, metadata: dict | None = None, producer: str = "shopkeep") -> onnx.ModelProto:
        """Assemble the ModelProto (IR version compatible with onnxruntime) with metadata_props.

        metadata values are stringified (e.g. {"max_position_embeddings": 1024, "model_family": "gpt2"}).
        Keys are written in sorted order for determinism.
        """
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name=producer)
        model.ir_version = 8
        if metadata:
            helper.set_model_props(model, {str(k): str(v) for k, v in sorted(metadata.items())})
        return model


@dataclass
class TextGenIO:
    """Names returned by declare_text_generation_io."""
    input_ids: str = "input_ids"
    attention_mask: str = "attention_mask"
    position_ids: str = "position_ids"
    past_keys: list = field(default_factory=list)     # past_key_values.{i}.key
    past_values: list = field(default_factory=list)   # past_key_values.{i}.value
    present_keys: list = field(default_factory=list)  # present.{i}.key (graph outputs; produce them!)
    present_values: list = field(default_factory=list)
    logits: str = "logits"


def declare_text_generation_io(gb: GraphBuilder, num_layers: int, kv_heads: int, head_dim: int,
                               vocab_size: int) -> TextGenIO:
    """Declare all Optimum text-generation-with-past inputs and outputs on `gb`.

    Declares inputs input_ids / attention_mask / position_ids / past_key_values.{i}.key|value
    and outputs logits / present.{i}.key|value with the symbolic dims listed in the module doc.
    Returns a TextGenIO with the names. The caller must produce the outputs, e.g.
    gb.node("Concat", [io.past_keys[i], k], outputs=[io.present_keys[i]], axis=2)
    (append_kv_cache does exactly that).
    """
    io = TextGenIO()
    gb.add_input(io.input_ids, TensorProto.INT64, [DIM_BATCH, DIM_SEQ])
    gb.add_input(io.attention_mask, TensorProto.INT64, [DIM_BATCH, DIM_TOTAL])
    gb.add_input(io.position_ids, TensorProto.INT64, [DIM_BATCH, DIM_SEQ])
    for i in range(num_layers):
        for kind, lst in (("key", io.past_keys), ("value", io.past_values)):
            n = f"past_key_values.{i}.{kind}"
            gb.add_input(n, TensorProto.FLOAT, [DIM_BATCH, kv_heads, DIM_PAST, head_dim])
            lst.append(n)
    gb.add_output(io.logits, TensorProto.FLOAT, [DIM_BATCH, DIM_SEQ, vocab_size])
    for i in range(num_layers):
        for kind, lst in (("key", io.present_keys), ("value", io.present_values)):
            n = f"present.{i}.{kind}"
            gb.add_output(n, TensorProto.FLOAT, [DIM_BATCH, kv_heads, DIM_TOTAL, head_dim])
            lst.append(n)
    return io


def build_attention_bias(gb: GraphBuilder, input_ids: str = "input_ids",
                         attention_mask: str = "attention_mask") -> str:
    """Build the additive attention bias, f32 [batch, 1, seq, total], from the mask and causality.

    seq = input_ids.shape[1], total = attention_mask.shape[1], past = total - seq.
    bias[b, 0, i, j] = 0 if (j <= past + i and attention_mask[b, j] == 1) else MASK_VALUE.
    Correct for prefill (past 0), decode (seq 1) and chunked prefill (seq > 1, past > 0),
    and for left-padded batches. Build it once and pass it to every layer's attention().
    """
    seq = gb.node("Gather", [gb.node("Shape", [input_ids]), gb.const(1)], axis=0)        # scalar
    total = gb.node("Gather", [gb.node("Shape", [attention_mask]), gb.const(1)], axis=0)  # scalar
    past = gb.node("Sub", [total, seq])
    zero, one = gb.const(0), gb.const(1)
    kj = gb.node("Range", [zero, total, one])                               # [total]
    qi = gb.node("Range", [past, total, one])                               # [seq] absolute query positions
    qi_col = gb.node("Unsqueeze", [qi, gb.const([1])])                      # [seq, 1]
    causal = gb.node("LessOrEqual", [kj, qi_col])                           # [seq, total] bool
    m = gb.node("Cast", [attention_mask], to=TensorProto.BOOL)              # [b, total]
    m = gb.node("Unsqueeze", [m, gb.const([1, 2])])                         # [b, 1, 1, total]
    allowed = gb.node("And", [causal, m])                                   # [b, 1, seq, total]
    return gb.node("Where", [allowed, gb.const(0.0, np.float32), gb.const(MASK_VALUE, np.float32)])


def split_heads(gb: GraphBuilder, x: str, num_heads: int, head_dim: int) -> str:
    """[batch, seq, num_heads*head_dim] -> [batch, num_heads, seq, head_dim]."""
    r = gb.node("Reshape", [x, gb.const([0, 0, num_heads, head_dim])])
    return gb.node("Transpose", [r], perm=[0, 2, 1, 3])


def merge_heads(gb: GraphBuilder, x: str, num_heads: int, head_dim: int) -> str:
    """[batch, num_heads, seq, head_dim] -> [batch, seq, num_heads*head_dim]."""
    t = gb.node("Transpose", [x], perm=[0, 2, 1, 3])
    return gb.node("Reshape", [t, gb.const([0, 0, num_heads * head_dim])])


def append_kv_cache(gb: GraphBuilder, io: TextGenIO, layer: int, k: str, v: str):
    """Concat past_key_values.{layer}.key/value with the new k/v ([b, kv_heads, seq, d]) along axis 2,
    writing the graph outputs present.{layer}.key/value. Returns (present_key, present_value)."""
    pk = gb.node("Concat", [io.past_keys[layer], k], outputs=[io.present_keys[layer]], axis=2)
    pv = gb.node("Concat", [io.past_values[layer], v], outputs=[io.present_values[layer]], axis=2)
    return pk, pv


def attention(gb: GraphBuilder, q: str, k: str, v: str, bias: str, num_heads: int, kv_heads: int,
              head_dim: int, scale: float | None = None) -> str:
    """Scaled dot-product attention with additive bias and grouped-query support.

    q: [b, num_heads, seq, d]; k, v: [b, kv_heads, total, d] (i.e. the present tensors);
    bias: from build_attention_bias. scale defaults to 1/sqrt(head_dim).
    Returns the context merged back to [b, seq, num_heads*head_dim].
    """
    if num_heads % kv_heads:
        raise ValueError("num_heads must be a multiple of kv_heads")
    n_rep = num_heads // kv_heads
    if n_rep > 1:
        def rep(t):
            u = gb.node("Unsqueeze", [t, gb.const([2])])                          # [b, kvh, 1, T, d]
            shp = gb.node("Shape", [u])
            target = gb.node("Mul", [shp, gb.const([1, 1, n_rep, 1, 1])])
            e = gb.node("Expand", [u, target])                                    # [b, kvh, rep, T, d]
            return gb.node("Reshape", [e, gb.const([0, num_heads, -1, head_dim])])
        k, v = rep(k), rep(v)
    if scale is None:
        scale = 1.0 / float(np.sqrt(head_dim))
    kt = gb.node("Transpose", [k], perm=[0, 1, 3, 2])
    scores = gb.node("MatMul", [q, kt])                                # [b, h, seq, T]
    scores = gb.node("Mul", [scores, gb.const(scale, np.float32)])
    scores = gb.node("Add", [scores, bias])
    probs = gb.node("Softmax", [scores], axis=-1)
    ctx = gb.node("MatMul", [probs, v])                                # [b, h, seq, d]
    return merge_heads(gb, ctx, num_heads, head_dim)


def layer_norm(gb: GraphBuilder, x: str, weight: str, bias: str | None, eps: float) -> str:
    """LayerNormalization over the last axis (opset 17). bias may be None (a zero bias is used)."""
    inputs = [x, weight] + ([bias] if bias else [])
    return gb.node("LayerNormalization", inputs, axis=-1, epsilon=float(eps))


def linear(gb: GraphBuilder, x: str, weight: str, bias: str | None = None) -> str:
    """x @ weight (+ bias). weight must be stored [in, out] (transpose HF nn.Linear weights first)."""
    y = gb.node("MatMul", [x, weight])
    return gb.node("Add", [y, bias]) if bias else y


class NBitsQuant(NamedTuple):
    """Weight-only block quantization spec for com.microsoft MatMulNBits.

    bits: 4 or 8. block_size: weights per quantization block along K (a power of two >= 16;
    32 is what shopkeep uses). accuracy_level: MatMulNBits' attribute, the minimum compute
    precision on CPU: 0 = unset (fp32 compute), 4 = int8 compute (activations are quantized per
    block at run time; fastest on CPU). Any (bits, block_size, accuracy_level) tuple is accepted
    where an NBitsQuant is expected.
    """
    bits: int
    block_size: int = 32
    accuracy_level: int = 0


def quantize_nbits(w_in_out: np.ndarray, bits: int, block_size: int):
    """Block-wise asymmetric weight quantization for com.microsoft MatMulNBits, using
    onnxruntime's own C++ quantizer (so the packing always matches the kernel).

    w_in_out: [K, N] float32 (the MatMul right-hand side, i.e. [in, out]). K is zero-padded up to
    a multiple of block_size. Returns:
        B            uint8 [N, k_blocks, ceil(block_size * bits / 8)]  packed quantized weights
        scales       float32 [N * k_blocks]
        zero_points  uint8 flat, [N * ceil(k_blocks * bits / 8)]       (packed for bits < 8)
    Deterministic: the same input gives byte-identical output.
    """
    from onnxruntime.capi._pybind_state import quantize_matmul_4bits, quantize_matmul_8bits

    k, n = w_in_out.shape
    kpack = 8 // bits
    k_blocks = (k + block_size - 1) // block_size
    w = np.ascontiguousarray(np.pad(w_in_out.astype(np.float32), ((0, k_blocks * block_size - k), (0, 0))))
    packed = np.zeros((n, k_blocks, (block_size + kpack - 1) // kpack), dtype=np.uint8)
    zp = np.zeros((n, (k_blocks + kpack - 1) // kpack), dtype=np.uint8)
    scales = np.zeros((n, k_blocks), dtype=np.float32)
    fn = {4: quantize_matmul_4bits, 8: quantize_matmul_8bits}[bits]
    fn(packed, w, scales, zp, block_size, n, k, False)
    return packed, scales.reshape(-1), zp.reshape(-1)


def matmul_weight(gb: GraphBuilder, x: str, w_in_out: np.ndarray, name: str, quant=None) -> str:
    """x @ W for a constant weight W [in, out] (float32; transpose HF nn.Linear weights first).

    quant None: W is stored as fp32 initializer `name` and used by a plain MatMul.
    quant (bits, block_size, accuracy_level) / NBitsQuant: W is quantized with quantize_nbits and
    used by a com.microsoft MatMulNBits node; the initializers are `name.q{bits}`, `name.scales`
    and `name.zero_points`. accuracy_level 0 leaves the attribute unset. The model must then
    declare the com.microsoft domain (add_com_microsoft_opset). No bias: add one with an Add.
    Returns the output tensor name.
    """
    w_in_out = np.ascontiguousarray(np.asarray(w_in_out, np.float32))
    if quant is None:
        return gb.node("MatMul", [x, gb.initializer(w_in_out, name)])
    bits, block, acc = quant
    b, sc, zp = quantize_nbits(w_in_out, bits, block)
    k, n = w_in_out.shape
    attrs = {"K": k, "N": n, "bits": bits, "block_size": block}
    if acc:
        attrs["accuracy_level"] = acc
    return gb.node("MatMulNBits", [x, gb.initializer(b, name + f".q{bits}"), gb.initializer(sc, name + ".scales"),
                                   gb.initializer(zp, name + ".zero_points")], domain="com.microsoft", **attrs)


def weight_quantization_label(quant) -> str:
    """Value of the `weight_quantization` model metadata key for a quant spec,
    e.g. "MatMulNBits bits=8 block_size=32 accuracy_level=4"."""
    bits, block, acc = quant
    return f"MatMulNBits bits={bits} block_size={block} accuracy_level={acc}"


def add_com_microsoft_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    """Declare the com.microsoft domain (opset 1), needed by MatMulNBits nodes. Returns model."""
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def stored_size(model_path: str) -> int:
    """Bytes on disk of a model saved by save_model: model.onnx plus its data file, if any."""
    data_path = model_path + ".data"
    return os.path.getsize(model_path) + (os.path.getsize(data_path) if os.path.exists(data_path) else 0)


def save_model(model: onnx.ModelProto, out_path: str) -> None:
    """Write `model` to out_path (e.g. DIR/model.onnx), creating the directory.

    Single self-contained file unless the initializers exceed 16 MB, in which case the
    weights go to `<basename>.data` next to it (external data, one file, which ONNX Runtime
    memory-maps; see _EXTERNAL_DATA_THRESHOLD). The model is written to a temporary name and
    renamed last, after its data file, so a half-written model.onnx is never left behind.
    """
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    size = sum(len(t.raw_data) if t.raw_data else 0 for t in model.graph.initializer)
    tmp = out_path + ".tmp"
    if size > _EXTERNAL_DATA_THRESHOLD:
        location = os.path.basename(out_path) + ".data"
        data_path = os.path.join(out_dir, location)
        if os.path.exists(data_path):
            os.remove(data_path)
        onnx.save_model(model, tmp, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=location, size_threshold=1024, convert_attribute=False)
    else:
        onnx.save_model(model, tmp)
    os.replace(tmp, out_path)
