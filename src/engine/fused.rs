//! The fused layout (manifest `"layout": "fused"`, built by `tools/llama_fused.py`): ONNX
//! Runtime's `GroupQueryAttention` with rotary inside and one key/value buffer per layer that
//! is bound as both `past_key_values.{i}.*` and `present.{i}.*`, so a decode step writes its
//! one new position in place and never copies the cache.
//!
//! Inputs: `input_ids` i64 [b, s] (right-padded), `seqlens_k` i32 [b] (positions held after
//! the run, minus one, per row), `total_sequence_length` i32 scalar (the largest of those
//! plus one), `logits_positions` i64 [b, k] (which of the run's positions get logits),
//! `past_key_values.{i}.key|value` f32 [b, kv_heads, capacity, head_dim] with every row
//! starting at position 0. Outputs: `logits` f32 [b, k, vocab], `present.{i}.key|value` (the
//! same buffers).
//!
//! ONNX Runtime's CPU kernel (`gqa_attention_base.h`) writes in place when the past and
//! present tensors are the same memory, attends each row over its own `seqlens_k[b] + 1`
//! positions, and accepts a chunk of several new tokens on top of a cache only for batch 1.
//!
//! The engine's [`super::decoder::Decoder::forward`] contract stays the Optimum one (left
//! padding, an attention mask per row); this file translates: the mask gives each row's
//! length, left-padded prompts are fed right-padded, and a cache built from left-padded rows
//! is moved to start at 0 on its first run.

use ort::memory::Allocator;
use ort::session::Session;
use ort::value::{DynValue, Tensor};

use super::decoder::{HostLayer, KvLayout, Logits};
use super::EngineError;

/// Positions added past what a run needs when a buffer is (re)allocated, so that decode
/// steps reallocate rarely (a row of SmolLM2 holds 46 KB per position).
const HEADROOM: usize = 64;

/// Where each row's positions sit in the buffers.
#[derive(Debug, Clone)]
enum Rows {
    /// Row b holds `lens[b]` positions starting at 0.
    Aligned(Vec<usize>),
    /// Built from left-padded rows of `width` positions whose lengths are not known yet; the
    /// next run's attention mask says them.
    LeftPadded { width: usize },
}

/// The key/value buffers of a batch, each [batch, kv_heads, capacity, head_dim], allocated
/// by ONNX Runtime so that they can be bound as outputs.
pub(crate) struct SharedKv {
    layers: Vec<(Tensor<f32>, Tensor<f32>)>,
    capacity: usize,
    rows: Rows,
}

impl SharedKv {
    /// A batch of empty rows (no buffer until the first run).
    pub(crate) fn empty(batch: usize) -> Self {
        Self {
            layers: Vec::new(),
            capacity: 0,
            rows: Rows::Aligned(vec![0; batch]),
        }
    }

    /// Buffers holding left-padded host rows [batch, kv_heads, width, head_dim] per layer.
    pub(crate) fn from_left_padded(
        session: &Session,
        layout: &KvLayout,
        batch: usize,
        width: usize,
        mut layer: impl FnMut(usize) -> HostLayer,
    ) -> Result<Self, EngineError> {
        let capacity = width + HEADROOM;
        let mut layers = Vec::with_capacity(layout.layers);
        for i in 0..layout.layers {
            let (keys, values) = layer(i);
            let mut pair = (
                buffer(session.allocator(), layout, batch, capacity)?,
                buffer(session.allocator(), layout, batch, capacity)?,
            );
            for (host, target) in [(&keys, &mut pair.0), (&values, &mut pair.1)] {
                let data = target.extract_tensor_mut().1;
                let runs = batch * layout.kv_heads;
                for run in 0..runs {
                    let from = &host[run * width * layout.head_dim..][..width * layout.head_dim];
                    data[run * capacity * layout.head_dim..][..width * layout.head_dim]
                        .copy_from_slice(from);
                }
            }
            layers.push(pair);
        }
        Ok(Self {
            layers,
            capacity,
            rows: Rows::LeftPadded { width },
        })
    }

    /// Copies the rows out left-padded to `width` positions, as [`super::decoder::KvCache::to_host`]
    /// promises: per layer (key, value), each [batch, kv_heads, width, head_dim].
    pub(crate) fn to_host(&self, layout: &KvLayout, width: usize) -> Vec<HostLayer> {
        let batch = self.batch();
        let d = layout.head_dim;
        let copy = |tensor: &Tensor<f32>| {
            let data = tensor.extract_tensor().1;
            let mut out = vec![0f32; batch * layout.kv_heads * width * d];
            for b in 0..batch {
                // Left-padded rows are copied with their padding, as they came in.
                let len = match &self.rows {
                    Rows::Aligned(lens) => lens[b],
                    Rows::LeftPadded { width: held } => *held,
                };
                let pad = width - len;
                for h in 0..layout.kv_heads {
                    let run = b * layout.kv_heads + h;
                    let src = &data[run * self.capacity * d..][..len * d];
                    out[(run * width + pad) * d..][..len * d].copy_from_slice(src);
                }
            }
            out
        };
        self.layers
            .iter()
            .map(|(k, v)| (copy(k), copy(v)))
            .collect()
    }

    fn batch(&self) -> usize {
        match &self.rows {
            Rows::Aligned(lens) => lens.len(),
            Rows::LeftPadded { .. } => self
                .layers
                .first()
                .map_or(0, |(k, _)| k.shape()[0] as usize),
        }
    }

    /// Moves left-padded rows to start at 0 now that their lengths are known.
    fn align(&mut self, layout: &KvLayout, lens: &[usize]) {
        let Rows::LeftPadded { width } = self.rows else {
            return;
        };
        let d = layout.head_dim;
        for (keys, values) in &mut self.layers {
            for tensor in [keys, values] {
                let data = tensor.extract_tensor_mut().1;
                for (b, &len) in lens.iter().enumerate() {
                    for h in 0..layout.kv_heads {
                        let base = (b * layout.kv_heads + h) * self.capacity * d;
                        let from = base + (width - len) * d;
                        data.copy_within(from..from + len * d, base);
                    }
                }
            }
        }
        self.rows = Rows::Aligned(lens.to_vec());
    }

    /// Makes room for `needed` positions per row, copying the held positions into larger
    /// buffers when the current ones are too small.
    fn reserve(
        &mut self,
        session: &Session,
        layout: &KvLayout,
        needed: usize,
    ) -> Result<(), EngineError> {
        if needed <= self.capacity && !self.layers.is_empty() {
            return Ok(());
        }
        let batch = self.batch();
        let capacity = needed.max(self.capacity + self.capacity / 2) + HEADROOM;
        let held = match &self.rows {
            Rows::Aligned(lens) => lens.iter().copied().max().unwrap_or(0),
            Rows::LeftPadded { width } => *width,
        };
        let d = layout.head_dim;
        let mut layers = Vec::with_capacity(layout.layers);
        for i in 0..layout.layers {
            let mut pair = (
                buffer(session.allocator(), layout, batch, capacity)?,
                buffer(session.allocator(), layout, batch, capacity)?,
            );
            if let Some((old_k, old_v)) = self.layers.get(i) {
                for (old, new) in [(old_k, &mut pair.0), (old_v, &mut pair.1)] {
                    let src = old.extract_tensor().1;
                    let dst = new.extract_tensor_mut().1;
                    for run in 0..batch * layout.kv_heads {
                        dst[run * capacity * d..][..held * d]
                            .copy_from_slice(&src[run * self.capacity * d..][..held * d]);
                    }
                }
            }
            layers.push(pair);
        }
        self.layers = layers;
        self.capacity = capacity;
        Ok(())
    }
}

fn buffer(
    allocator: &Allocator,
    layout: &KvLayout,
    batch: usize,
    capacity: usize,
) -> Result<Tensor<f32>, EngineError> {
    let mut tensor = Tensor::<f32>::new(
        allocator,
        [batch, layout.kv_heads, capacity, layout.head_dim],
    )?;
    tensor.extract_tensor_mut().1.fill(0.0);
    Ok(tensor)
}

/// One run of the fused graph, translated from the Optimum-style arguments of
/// [`super::decoder::Decoder::forward`]. Returns the logits (of every input position, or of
/// each row's last, as `wanted` says), each row's offset into them (left padding dropped from
/// the input), and the cache with the new positions written in place.
pub(crate) fn forward(
    session: &mut Session,
    layout: &KvLayout,
    input_ids: &[i64],
    attention_mask: &[i64],
    mut kv: SharedKv,
    past_len: usize,
    wanted: Logits,
) -> Result<(DynValue, Vec<usize>, SharedKv), EngineError> {
    let batch = kv.batch().max(1);
    let seq = input_ids.len() / batch;
    let total = past_len + seq;
    // Each row's length after this run is its count of unmasked positions; with left padding
    // (the Optimum contract) the padding is the leading zeros.
    let new_lens: Vec<usize> = attention_mask
        .chunks(total)
        .map(|row| row.iter().filter(|&&m| m != 0).count())
        .collect();
    let mut offsets = Vec::with_capacity(batch);
    let mut old_lens = Vec::with_capacity(batch);
    for &len in &new_lens {
        let fed = seq.min(len);
        offsets.push(seq - fed);
        old_lens.push(len - fed);
    }
    if seq > 1 && batch > 1 && old_lens.iter().any(|&l| l > 0) {
        return Err(EngineError::BadOutput(
            "the fused layout prefills a chunk on top of a cache for one sequence at a time".into(),
        ));
    }
    kv.align(layout, &old_lens);
    if let Rows::Aligned(lens) = &kv.rows {
        if lens != &old_lens {
            return Err(EngineError::BadOutput(format!(
                "the attention mask says the rows hold {old_lens:?} positions; the cache holds {lens:?}"
            )));
        }
    }
    let longest = new_lens.iter().copied().max().unwrap_or(0);
    kv.reserve(session, layout, longest)?;
    // Right padding: row b's tokens first, then zeros.
    let mut ids = vec![0i64; batch * seq];
    for (b, &offset) in offsets.iter().enumerate() {
        let row = &input_ids[b * seq..(b + 1) * seq];
        ids[b * seq..b * seq + seq - offset].copy_from_slice(&row[offset..]);
    }
    let seqlens: Vec<i32> = new_lens.iter().map(|&l| l as i32 - 1).collect();
    let positions = match wanted {
        Logits::Last => Tensor::from_array((
            [batch, 1],
            offsets
                .iter()
                .map(|&offset| seq.saturating_sub(offset + 1) as i64)
                .collect::<Vec<_>>(),
        ))?,
        Logits::All => Tensor::from_array((
            [batch, seq],
            (0..batch).flat_map(|_| 0..seq as i64).collect::<Vec<_>>(),
        ))?,
    };
    let mut binding = session.create_binding()?;
    binding.bind_input("input_ids", &Tensor::from_array(([batch, seq], ids))?)?;
    binding.bind_input("seqlens_k", &Tensor::from_array(([batch], seqlens))?)?;
    binding.bind_input(
        "total_sequence_length",
        &Tensor::from_array((Vec::<i64>::new(), vec![longest as i32]))?,
    )?;
    binding.bind_input("logits_positions", &positions)?;
    for (i, (keys, values)) in kv.layers.iter_mut().enumerate() {
        binding.bind_input(format!("past_key_values.{i}.key"), &*keys)?;
        binding.bind_input(format!("past_key_values.{i}.value"), &*values)?;
        binding.bind_output(format!("present.{i}.key"), &mut *keys)?;
        binding.bind_output(format!("present.{i}.value"), &mut *values)?;
    }
    binding.bind_output_to_device("logits", session.allocator().memory_info())?;
    let mut outputs = session.run_binding(&binding)?;
    let logits = outputs
        .remove("logits")
        .ok_or_else(|| EngineError::BadOutput("the model has no `logits` output".into()))?;
    drop(outputs);
    drop(binding);
    kv.rows = Rows::Aligned(new_lens);
    Ok((logits, offsets, kv))
}

/// Whether a session's inputs are the fused layout's (see the module doc).
pub(crate) fn is_fused(session: &Session) -> bool {
    session
        .inputs()
        .iter()
        .any(|input| input.name() == "seqlens_k")
}
