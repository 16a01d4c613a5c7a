//! The ONNX Runtime session for a decoder-only model in Optimum's "with past" layout, or in
//! shopkeep's fused layout (`super::fused`, which translates the same calls).
//! This file and `fused.rs` are the only ones that build tensors or run the session.
//!
//! Inputs: `input_ids` i64 [b, s], `attention_mask` i64 [b, past+s], optional `position_ids`
//! i64 [b, s], `past_key_values.{i}.key|value` f32 [b, kv_heads, past, head_dim].
//! Outputs: `logits` f32 [b, s, vocab], `present.{i}.key|value`.

use std::path::Path;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

use super::fused::{self, SharedKv};
use super::model::ModelLayout;
use super::EngineError;

/// The shape facts read from the session's input metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvLayout {
    /// Decoder layers, each with a key and a value cache input.
    pub layers: usize,
    /// Key/value heads per layer (fewer than attention heads with grouped-query attention).
    pub kv_heads: usize,
    /// Width of one head's key or value vector.
    pub head_dim: usize,
    /// Whether the model takes a `position_ids` input.
    pub has_position_ids: bool,
    /// Which input contract the graph has (read from its inputs).
    pub layout: ModelLayout,
}

/// Session tuning, from the environment or the CLI. `shopkeep bench --tuning` measures the
/// choices; the defaults are the fastest measured on a 2-core machine (docs/operations.md).
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Intra-op threads; 0 lets ONNX Runtime decide.
    pub threads: usize,
    /// ONNX Runtime graph optimisation level.
    pub optimization: Optimization,
    /// Whether idle intra-op threads spin between steps (lower latency, busy cores).
    pub spinning: bool,
    /// Whether the CPU provider keeps freed activation memory in its arena for reuse. Off by
    /// default: with the arena the process keeps its largest step's memory for good (a
    /// 500-token prefill's logits alone are 98 MB on SmolLM2), and turning it off measured no
    /// slower per token (docs/engine.md).
    pub memory_arena: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            optimization: Optimization::All,
            spinning: true,
            memory_arena: false,
        }
    }
}

impl SessionOptions {
    /// The defaults with `threads` intra-op threads.
    pub fn with_threads(threads: usize) -> Self {
        Self {
            threads,
            ..Self::default()
        }
    }
}

/// ONNX Runtime's graph optimisation levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Optimization {
    /// No graph optimisation.
    Disabled,
    /// Constant folding and redundant-node removal (ONNX Runtime's level 1).
    Basic,
    /// Level 1 plus complex node fusions (level 2).
    Extended,
    /// Every optimisation, layout changes included.
    All,
}

impl Optimization {
    /// Every level, from none to all (for `shopkeep bench --tuning`).
    pub const ALL_LEVELS: [Optimization; 4] = [
        Optimization::Disabled,
        Optimization::Basic,
        Optimization::Extended,
        Optimization::All,
    ];

    fn level(self) -> GraphOptimizationLevel {
        match self {
            Optimization::Disabled => GraphOptimizationLevel::Disable,
            Optimization::Basic => GraphOptimizationLevel::Level1,
            Optimization::Extended => GraphOptimizationLevel::Level2,
            Optimization::All => GraphOptimizationLevel::All,
        }
    }
}

/// One layer's keys and values copied to host memory, each [batch, kv_heads, len, head_dim].
pub(crate) type HostLayer = (Vec<f32>, Vec<f32>);

/// Keys and values of every layer for a batch of sequences of equal (padded) length.
pub struct KvCache {
    storage: KvStorage,
    /// Positions held per sequence (including left padding).
    pub len: usize,
    pub batch: usize,
}

enum KvStorage {
    /// The Optimum layout's `present` outputs, fed back as the next run's past.
    Values(Vec<(DynValue, DynValue)>),
    /// The fused layout's buffers, written in place.
    Shared(SharedKv, KvLayout),
}

impl KvCache {
    /// Copies the cache out as plain arrays: per layer (key, value), each
    /// [batch, kv_heads, len, head_dim] row-major, shorter rows left-padded.
    pub fn to_host(&self) -> Result<Vec<HostLayer>, EngineError> {
        match &self.storage {
            KvStorage::Values(layers) => layers
                .iter()
                .map(|(k, v)| Ok((extract_f32(k)?.1.to_vec(), extract_f32(v)?.1.to_vec())))
                .collect(),
            KvStorage::Shared(kv, layout) => Ok(kv.to_host(layout, self.len)),
        }
    }
}

/// Which input positions of a forward pass the caller reads logits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logits {
    /// Each row's last input position: all that generation reads. A fused-layout graph then
    /// runs the LM head on one position per row (a 500-token prompt's logits for every
    /// position are 98 MB on SmolLM2); an Optimum-layout graph computes them all anyway.
    Last,
    /// Every input position, for scoring a text (perplexity).
    All,
}

/// What one forward pass returns. The logits stay in ONNX Runtime's output buffer (read in
/// place, never copied whole).
pub struct StepOutput {
    logits: DynValue,
    /// What `logits` holds: every input position, or each row's last only.
    held: Logits,
    /// Per row, how many input positions the logits leave out at the start (the fused layout
    /// drops left padding); empty when none.
    offsets: Vec<usize>,
    pub seq: usize,
    pub vocab: usize,
    pub cache: KvCache,
}

impl StepOutput {
    /// The logits as computed, row-major: [batch, seq, vocab], or [batch, 1, vocab] when
    /// [`Logits::Last`] was asked of a fused-layout graph.
    pub fn logits(&self) -> &[f32] {
        extract_f32(&self.logits)
            .expect("checked to be f32 when the step ran")
            .1
    }

    /// The logits of position `position` of row `b`.
    ///
    /// # Panics
    /// When only the last positions' logits were computed and `position` is another one.
    pub fn logits_at(&self, b: usize, position: usize) -> &[f32] {
        let start = match self.held {
            Logits::All => {
                let position = position - self.offsets.get(b).copied().unwrap_or(0);
                (b * self.seq + position) * self.vocab
            }
            Logits::Last => {
                assert_eq!(
                    position,
                    self.seq - 1,
                    "only the last position's logits were computed (Logits::Last)"
                );
                b * self.vocab
            }
        };
        &self.logits()[start..start + self.vocab]
    }

    /// The logits of the last position of row `b`.
    pub fn last_logits(&self, b: usize) -> &[f32] {
        self.logits_at(b, self.seq - 1)
    }
}

/// A loaded decoder session.
pub struct Decoder {
    session: Session,
    /// The KV cache shape this session expects.
    pub layout: KvLayout,
    metadata_context_length: Option<usize>,
    /// Total time spent inside `Session::run`.
    pub session_run_time: std::time::Duration,
}

impl Decoder {
    /// Loads `model.onnx` and checks that it has the with-past inputs with the right dtypes.
    pub fn load(model_file: &Path, options: &SessionOptions) -> Result<Self, EngineError> {
        let env = super::runtime::environment()?;
        let not_loaded = |error: ort::Error| EngineError::SessionLoad {
            path: model_file.to_path_buf(),
            source: std::sync::Arc::new(error),
        };
        let mut builder = Session::builder(&env)
            .map_err(not_loaded)?
            .with_optimization_level(options.optimization.level())
            .map_err(|e| not_loaded(e.into()))?
            .with_inter_threads(1)
            .map_err(|e| not_loaded(e.into()))?
            .with_intra_op_spinning(options.spinning)
            .map_err(|e| not_loaded(e.into()))?
            .with_execution_providers([ort::ep::CPU::default()
                .with_arena_allocator(options.memory_arena)
                .build()])
            .map_err(|e| not_loaded(e.into()))?;
        if options.threads > 0 {
            builder = builder
                .with_intra_threads(options.threads)
                .map_err(|e| not_loaded(e.into()))?;
        }
        let session = builder.commit_from_file(model_file).map_err(not_loaded)?;
        let layout = read_layout(&session).map_err(|reason| EngineError::BadModel {
            path: model_file.to_path_buf(),
            reason,
        })?;
        let metadata_context_length = session.metadata().ok().and_then(|m| {
            ["max_position_embeddings", "n_positions", "context_length"]
                .iter()
                .find_map(|key| m.custom(key))
                .and_then(|v| v.trim().parse().ok())
        });
        Ok(Self {
            session,
            layout,
            metadata_context_length,
            session_run_time: std::time::Duration::ZERO,
        })
    }

    /// The context length recorded in the ONNX metadata, if any.
    pub fn metadata_context_length(&self) -> Option<usize> {
        self.metadata_context_length
    }

    /// An empty cache (past length 0) for `batch` sequences.
    pub fn empty_cache(&self, batch: usize) -> Result<KvCache, EngineError> {
        if self.layout.layout == ModelLayout::Fused {
            return Ok(KvCache {
                storage: KvStorage::Shared(SharedKv::empty(batch), self.layout.clone()),
                len: 0,
                batch,
            });
        }
        self.cache_from_host(batch, 0, |_| (Vec::new(), Vec::new()))
    }

    /// Builds a cache from plain arrays laid out as [`KvCache::to_host`] returns them.
    pub fn cache_from_host(
        &self,
        batch: usize,
        len: usize,
        mut layer: impl FnMut(usize) -> HostLayer,
    ) -> Result<KvCache, EngineError> {
        if self.layout.layout == ModelLayout::Fused {
            let kv = SharedKv::from_left_padded(&self.session, &self.layout, batch, len, layer)?;
            return Ok(KvCache {
                storage: KvStorage::Shared(kv, self.layout.clone()),
                len,
                batch,
            });
        }
        let shape = [
            batch as i64,
            self.layout.kv_heads as i64,
            len as i64,
            self.layout.head_dim as i64,
        ];
        let layers = (0..self.layout.layers)
            .map(|i| {
                let (k, v) = layer(i);
                Ok((
                    Tensor::from_array((shape, k))?.into_dyn(),
                    Tensor::from_array((shape, v))?.into_dyn(),
                ))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        Ok(KvCache {
            storage: KvStorage::Values(layers),
            len,
            batch,
        })
    }

    /// One forward pass over `seq` new tokens per row.
    ///
    /// `input_ids` and `position_ids` are [batch, seq]; `attention_mask` is
    /// [batch, cache.len + seq] with 0 on padding. The returned cache holds
    /// `cache.len + seq` positions; the logits cover at least the positions `wanted` names.
    pub fn forward(
        &mut self,
        input_ids: &[i64],
        position_ids: &[i64],
        attention_mask: &[i64],
        cache: KvCache,
        wanted: Logits,
    ) -> Result<StepOutput, EngineError> {
        let batch = cache.batch;
        let seq = input_ids.len() / batch;
        let total = cache.len + seq;
        debug_assert_eq!(attention_mask.len(), batch * total);
        let past = match cache.storage {
            KvStorage::Values(layers) => layers,
            KvStorage::Shared(kv, layout) => {
                let started = std::time::Instant::now();
                let ran = fused::forward(
                    &mut self.session,
                    &layout,
                    input_ids,
                    attention_mask,
                    kv,
                    cache.len,
                    wanted,
                );
                self.session_run_time += started.elapsed();
                let (logits, offsets, kv) = ran?;
                return step_output(
                    logits,
                    wanted,
                    offsets,
                    batch,
                    seq,
                    KvCache {
                        storage: KvStorage::Shared(kv, layout),
                        len: total,
                        batch,
                    },
                );
            }
        };
        let mut inputs: Vec<(String, DynValue)> = Vec::with_capacity(3 + 2 * past.len());
        inputs.push((
            "input_ids".into(),
            Tensor::from_array(([batch, seq], input_ids.to_vec()))?.into_dyn(),
        ));
        inputs.push((
            "attention_mask".into(),
            Tensor::from_array(([batch, total], attention_mask.to_vec()))?.into_dyn(),
        ));
        if self.layout.has_position_ids {
            inputs.push((
                "position_ids".into(),
                Tensor::from_array(([batch, seq], position_ids.to_vec()))?.into_dyn(),
            ));
        }
        for (i, (key, value)) in past.into_iter().enumerate() {
            inputs.push((format!("past_key_values.{i}.key"), key));
            inputs.push((format!("past_key_values.{i}.value"), value));
        }
        let started = std::time::Instant::now();
        let outputs = self.session.run(inputs);
        self.session_run_time += started.elapsed();
        let mut outputs = outputs?;
        let logits_value = outputs
            .remove("logits")
            .ok_or_else(|| EngineError::BadOutput("the model has no `logits` output".into()))?;
        let mut layers = Vec::with_capacity(self.layout.layers);
        for i in 0..self.layout.layers {
            let mut take = |name: String| {
                outputs.remove(&name).ok_or_else(|| {
                    EngineError::BadOutput(format!("the model has no `{name}` output"))
                })
            };
            layers.push((
                take(format!("present.{i}.key"))?,
                take(format!("present.{i}.value"))?,
            ));
        }
        let cache = KvCache {
            storage: KvStorage::Values(layers),
            len: total,
            batch,
        };
        step_output(logits_value, Logits::All, Vec::new(), batch, seq, cache)
    }
}

/// Checks the logits' shape ([batch, seq, vocab], or [batch, 1, vocab] when `held` is
/// [`Logits::Last`]) and wraps one run's results.
fn step_output(
    logits: DynValue,
    held: Logits,
    offsets: Vec<usize>,
    batch: usize,
    seq: usize,
    cache: KvCache,
) -> Result<StepOutput, EngineError> {
    let (shape, _) = extract_f32(&logits)?;
    let vocab = *shape.last().unwrap_or(&0) as usize;
    let positions = match held {
        Logits::All => seq,
        Logits::Last => 1,
    };
    if shape != [batch as i64, positions as i64, vocab as i64] {
        return Err(EngineError::BadOutput(format!(
            "`logits` has shape {shape:?}; expected [{batch}, {positions}, vocab]"
        )));
    }
    Ok(StepOutput {
        logits,
        held,
        offsets,
        seq,
        vocab,
        cache,
    })
}

fn extract_f32(value: &DynValue) -> Result<(Vec<i64>, &[f32]), EngineError> {
    let (shape, data) = value.try_extract_tensor::<f32>()?;
    Ok((shape.iter().copied().collect(), data))
}

/// Reads the layer count, KV heads and head size from the session's inputs, and checks the
/// dtypes, so that a model exported without the cache fails here with a useful message.
fn read_layout(session: &Session) -> Result<KvLayout, String> {
    let inputs = session.inputs();
    let find = |name: &str| inputs.iter().find(|input| input.name() == name);
    let tensor_of = |name: &str| -> Result<Option<(TensorElementType, Vec<i64>)>, String> {
        match find(name).map(|input| input.dtype()) {
            None => Ok(None),
            Some(ValueType::Tensor { ty, shape, .. }) => {
                Ok(Some((*ty, shape.iter().copied().collect())))
            }
            Some(other) => Err(format!("input `{name}` is {other:?}, expected a tensor")),
        }
    };
    let layout = if fused::is_fused(session) {
        ModelLayout::Fused
    } else {
        ModelLayout::Optimum
    };
    let expected: &[(&str, TensorElementType)] = match layout {
        ModelLayout::Optimum => &[
            ("input_ids", TensorElementType::Int64),
            ("attention_mask", TensorElementType::Int64),
            ("position_ids", TensorElementType::Int64),
        ],
        ModelLayout::Fused => &[
            ("input_ids", TensorElementType::Int64),
            ("seqlens_k", TensorElementType::Int32),
            ("total_sequence_length", TensorElementType::Int32),
            ("logits_positions", TensorElementType::Int64),
        ],
    };
    for &(name, want) in expected {
        match tensor_of(name)? {
            Some((ty, _)) if ty == want => {}
            Some((ty, _)) => return Err(format!("input `{name}` is {ty:?}, expected {want:?}")),
            None if name == "position_ids" => {}
            None if name == "logits_positions" => {
                return Err(
                    "no input `logits_positions`: a fused-layout model built by an older \
                     tools/llama_fused.py; rebuild it (./scripts/setup.sh default-model does)"
                        .to_string(),
                )
            }
            None => return Err(format!("no input `{name}`")),
        }
    }
    let Some((ty, shape)) = tensor_of("past_key_values.0.key")? else {
        return Err(
            "no input `past_key_values.0.key`: the model was exported without the KV cache; \
             export it with task text-generation-with-past (Optimum) or use tools/gpt2_onnx.py"
                .to_string(),
        );
    };
    if ty != TensorElementType::Float32 {
        return Err(format!(
            "input `past_key_values.0.key` is {ty:?}; only float32 caches are supported"
        ));
    }
    if shape.len() != 4 || shape[1] <= 0 || shape[3] <= 0 {
        return Err(format!(
            "input `past_key_values.0.key` has shape {shape:?}; expected [batch, kv_heads, past, head_dim] with fixed heads and head size"
        ));
    }
    let mut layers = 0;
    while find(&format!("past_key_values.{layers}.key")).is_some() {
        if find(&format!("past_key_values.{layers}.value")).is_none() {
            return Err(format!("no input `past_key_values.{layers}.value`"));
        }
        layers += 1;
    }
    let outputs = session.outputs();
    for name in ["logits".to_string(), format!("present.{}.key", layers - 1)] {
        if !outputs.iter().any(|o| o.name() == name) {
            return Err(format!("no output `{name}`"));
        }
    }
    Ok(KvLayout {
        layers,
        kv_heads: shape[1] as usize,
        head_dim: shape[3] as usize,
        has_position_ids: find("position_ids").is_some(),
        layout,
    })
}
