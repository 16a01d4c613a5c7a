"""GGUF's Q4_1 and Q8_0 weight blocks, kept as they are, and their ONNX Runtime encodings.

A Q4_1 block holds 32 weights of one row as w = d * q + m (q in 0..15, d and m float16).
A Q8_0 block holds 32 weights as w = d * q (q in -127..127, d float16). Rows are the
output features ([out, in], the nn.Linear / GGUF order); blocks run along the input.

ONNX Runtime encodings (com.microsoft contrib ops, CPU provider of onnxruntime >= 1.31):
- Q4_1 -> MatMulNBits (bits 4, block 32, per-block 4-bit zero point z = round(-m/d):
  x @ (d*(q - z))^T) plus an exact correction for the rest of the minimum: sum over blocks b
  of r_b * (sum of x over block b) with r = m + z*d, a [.., K/32] x [K/32, N] MatMul. So
  d*(q - z) + r = d*q + m: the weights stay exactly the GGUF's. Centering with z matters with
  accuracy_level 4 (int8 activations): the activation rounding error is multiplied by the
  centred weights, not by d*q (z = 0 measured perplexity 24.81 against 24.34 in fp32).
  MatMulNBits also takes float zero points, which would encode m directly as z = -m/d, but
  ONNX Runtime 1.31 then dequantizes the whole weight on every call (about 50x slower than
  the uint8 path, measured).
- Q8_0 -> MatMulNBits (bits 8, zero point 128, q stored as q + 128) for the LM head and
  GatherBlockQuantized (bits 8, same bytes) for the embedding: exact.

`quantize` methods mirror ggml's reference quantizers (quantize_row_q4_1_ref /
quantize_row_q8_0_ref), so a test model quantized here has blocks like a GGUF's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 32


@dataclass
class Q4_1:
    """Q4_1 blocks of a [rows, cols] weight: q uint8 [rows, cols], d and m float32 [rows, cols/32]
    (values exactly representable in float16, as GGUF stores them)."""
    q: np.ndarray
    d: np.ndarray
    m: np.ndarray

    @property
    def shape(self):
        return self.q.shape

    @classmethod
    def from_gguf(cls, raw: np.ndarray, rows: int, cols: int) -> "Q4_1":
        """From a GGUF tensor's bytes (uint8 [rows, cols/32 * 20]): per block d f16, m f16, 16 bytes
        of nibbles (low nibbles are weights 0..15, high nibbles 16..31)."""
        nb = cols // BLOCK
        blocks = np.ascontiguousarray(raw, dtype=np.uint8).reshape(rows, nb, 20)
        d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
        m = blocks[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        qs = blocks[..., 4:]
        q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).reshape(rows, cols)
        return cls(np.ascontiguousarray(q), d, m)

    @classmethod
    def quantize(cls, w: np.ndarray) -> "Q4_1":
        """ggml's quantize_row_q4_1_ref on each row of w [rows, cols] (cols a multiple of 32)."""
        rows, cols = w.shape
        x = np.asarray(w, np.float32).reshape(rows, cols // BLOCK, BLOCK)
        lo, hi = x.min(-1), x.max(-1)
        d = ((hi - lo) / 15.0).astype(np.float32)
        inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
        q = np.clip(np.trunc((x - lo[..., None]) * inv[..., None] + 0.5), 0, 15).astype(np.uint8)
        d16, m16 = d.astype(np.float16).astype(np.float32), lo.astype(np.float16).astype(np.float32)
        return cls(q.reshape(rows, cols), d16, m16)

    def dequantize(self) -> np.ndarray:
        """w = d * q + m, float32 [rows, cols]."""
        rows, cols = self.q.shape
        q = self.q.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32)
        return (q * self.d[..., None] + self.m[..., None]).reshape(rows, cols)

    def take_rows(self, order) -> "Q4_1":
        """The blocks with rows reordered (whole rows move, so the weights stay exact)."""
        return Q4_1(self.q[order], self.d[order], self.m[order])

    def scaled(self, factor: float) -> "Q4_1":
        """d and m times `factor` (exact when `factor` is a power of two)."""
        f = np.float32(factor)
        return Q4_1(self.q, self.d * f, self.m * f)

    @staticmethod
    def concat_rows(parts) -> "Q4_1":
        return Q4_1(*(np.concatenate([getattr(p, k) for p in parts], axis=0) for k in ("q", "d", "m")))


@dataclass
class Q8_0:
    """Q8_0 blocks of a [rows, cols] weight: q int8 [rows, cols], d float32 [rows, cols/32]."""
    q: np.ndarray
    d: np.ndarray

    @property
    def shape(self):
        return self.q.shape

    @classmethod
    def from_gguf(cls, raw: np.ndarray, rows: int, cols: int) -> "Q8_0":
        """From a GGUF tensor's bytes (uint8 [rows, cols/32 * 34]): per block d f16, 32 int8."""
        nb = cols // BLOCK
        blocks = np.ascontiguousarray(raw, dtype=np.uint8).reshape(rows, nb, 34)
        d = blocks[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
        q = blocks[..., 2:].copy().view(np.int8).reshape(rows, cols)
        return cls(q, d)

    @classmethod
    def quantize(cls, w: np.ndarray) -> "Q8_0":
        """ggml's quantize_row_q8_0_ref on each row of w [rows, cols]."""
        rows, cols = w.shape
        x = np.asarray(w, np.float32).reshape(rows, cols // BLOCK, BLOCK)
        d = (np.abs(x).max(-1) / 127.0).astype(np.float32)
        inv = np.where(d != 0, 1.0 / np.where(d != 0, d, 1), 0).astype(np.float32)
        q = np.round(x * inv[..., None]).astype(np.int8)
        return cls(q.reshape(rows, cols), d.astype(np.float16).astype(np.float32))

    def dequantize(self) -> np.ndarray:
        rows, cols = self.q.shape
        return (self.q.reshape(rows, cols // BLOCK, BLOCK).astype(np.float32) * self.d[..., None]).reshape(rows, cols)


def dequantized(w) -> np.ndarray:
    """float32 array of a weight given as an array or as Q4_1 / Q8_0 blocks."""
    return w.dequantize() if isinstance(w, (Q4_1, Q8_0)) else np.asarray(w, np.float32)


def pack_nibbles(q: np.ndarray) -> np.ndarray:
    """uint8 [..., 2n] values 0..15 -> [..., n] bytes, element 2i in the low nibble (MatMulNBits' order)."""
    return np.ascontiguousarray((q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8))


# ------------------------------------------------------------------------------- ONNX nodes


def matmul_q4_1(gb, x: str, blocks: Q4_1, name: str, accuracy_level: int, block_sums: dict) -> str:
    """x @ W^T for Q4_1 blocks W [N, K]: MatMulNBits on d*q plus the minimum's correction.

    block_sums caches the [.., K/32] block sums of each input tensor, so the fused QKV and
    gate/up projections of one input share them. Initializers: `name.q4` (uint8 [N, K/32, 16]),
    `name.scales` (f32 [N * K/32]), `name.zero_points` (packed 4-bit z), `name.mins` (f32 [K/32, N], r).
    """
    n, k = blocks.shape
    nb = k // BLOCK
    packed = pack_nibbles(blocks.q.reshape(n, nb, BLOCK))
    safe_d = np.where(blocks.d != 0, blocks.d, 1).astype(np.float32)
    z = np.clip(np.round(-blocks.m / safe_d), 0, 15).astype(np.uint8)                # [N, K/32]
    rest = (blocks.m + z.astype(np.float32) * blocks.d).astype(np.float32)           # r = m + z*d
    zero = pack_nibbles(np.pad(z, ((0, 0), (0, nb % 2))))
    attrs = {"K": k, "N": n, "bits": 4, "block_size": BLOCK}
    if accuracy_level:
        attrs["accuracy_level"] = accuracy_level
    y = gb.node("MatMulNBits", [x, gb.initializer(packed, name + ".q4"),
                                gb.initializer(blocks.d.reshape(-1).astype(np.float32), name + ".scales"),
                                gb.initializer(zero.reshape(-1), name + ".zero_points")],
                domain="com.microsoft", **attrs)
    if x not in block_sums:
        if ("indicator", k) not in block_sums:
            indicator = np.repeat(np.eye(nb, dtype=np.float32), BLOCK, axis=0)   # [K, K/32]
            block_sums[("indicator", k)] = gb.initializer(indicator, f"block_sum_indicator.{k}")
        block_sums[x] = gb.node("MatMul", [x, block_sums[("indicator", k)]])
    mins = gb.initializer(np.ascontiguousarray(rest.T), name + ".mins")
    return gb.node("Add", [y, gb.node("MatMul", [block_sums[x], mins])])


def q8_0_initializers(gb, blocks: Q8_0, name: str):
    """The bytes of a Q8_0 table: initializer `name.q8`, uint8 [rows, K/32, 32] holding q + 128
    (matmul_q8_0 and gather_q8_0 read it with zero point 128).

    A tied embedding gets two of them, one per op, on purpose: ONNX Runtime prepacks the LM
    head's copy and then releases it, while the gather reads its own copy, memory-mapped from
    the external data file, a row at a time. One shared table stays resident whole (28 MB for
    SmolLM2) beside the prepacked one."""
    rows, k = blocks.shape
    data = (blocks.q.astype(np.int16) + 128).astype(np.uint8).reshape(rows, k // BLOCK, BLOCK)
    return gb.initializer(data, name + ".q8")


def matmul_q8_0(gb, x: str, blocks: Q8_0, name: str, accuracy_level: int) -> str:
    """x @ W^T for Q8_0 blocks W [N, K] (the LM head): MatMulNBits bits 8, zero point 128, over
    its own table `name.q8`."""
    n, k = blocks.shape
    data = q8_0_initializers(gb, blocks, name)
    attrs = {"K": k, "N": n, "bits": 8, "block_size": BLOCK}
    if accuracy_level:
        attrs["accuracy_level"] = accuracy_level
    zp = np.full(n * (k // BLOCK), 128, np.uint8)
    return gb.node("MatMulNBits", [x, data, gb.initializer(blocks.d.reshape(-1), name + ".scales"),
                                   gb.initializer(zp, name + ".zero_points")], domain="com.microsoft", **attrs)


def gather_q8_0(gb, ids: str, blocks: Q8_0, name: str) -> str:
    """Rows `ids` ([b, s]) of a Q8_0 table as float32 [b, s, K]: GatherBlockQuantized, bits 8, over
    its own table `name.q8`."""
    rows, k = blocks.shape
    data = q8_0_initializers(gb, blocks, name)
    nb = k // BLOCK
    g = gb.node("GatherBlockQuantized", [data, ids,
                gb.initializer(blocks.d.reshape(rows, nb, 1), name + ".gather_scales"),
                gb.initializer(np.full((rows, nb, 1), 128, np.uint8), name + ".gather_zero_points")],
                domain="com.microsoft", gather_axis=0, quantize_axis=2, block_size=BLOCK, bits=8)
    return gb.node("Reshape", [g, gb.const([0, 0, k])])
