//! The language-model engine: the only code that knows ONNX Runtime.
//!
//! [`EngineHandle::load`] opens a model directory, loads the session and starts one worker
//! thread that owns it; the handle is cheap to clone and safe to share across tasks.
//! [`EngineHandle::generate`] queues a request and returns a [`GenerationStream`] of text
//! deltas; dropping the stream cancels the generation at the next token.
//!
//! [`SentenceEmbedder`] (a [`TextEmbedder`]) turns texts into unit-length sentence vectors
//! with a BERT-style encoder; it is synchronous and shareable behind an `Arc`.

mod decoder;
mod embedding;
mod error;
mod fused;
mod generate;
mod kv_rows;
mod model;
pub mod runtime;
mod sampler;
mod scheduler;
mod tokenizer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

pub use decoder::{Decoder, KvLayout, Logits, Optimization, SessionOptions};
pub use embedding::{SentenceEmbedder, TextEmbedder, EMBEDDING_BATCH, EMBEDDING_MODEL_DIR_NAME};
pub use error::{EngineError, OrtError};
pub use generate::{fit_to_context, FinishReason, GenerateRequest, Generated, StopMatcher};
pub use model::{Manifest, ModelDir, ModelFamily, ModelInfo, ModelLayout, PromptFormat};
pub use sampler::{argmax, filtered_distribution, Sampler, SamplingParams};
pub use scheduler::SchedulerOptions;
pub use tokenizer::{StreamDecoder, TextTokenizer};

/// Context length assumed for GPT-2 when neither the manifest nor the ONNX metadata say.
pub const GPT2_CONTEXT_LENGTH: usize = 1024;
/// Context length assumed for other families when nothing says.
pub const FALLBACK_CONTEXT_LENGTH: usize = 2048;

/// One event of a streaming generation.
#[derive(Debug)]
pub enum StreamEvent {
    /// Newly completed text (never half a character, never part of a stop string).
    Text(String),
    /// The end, with token ids and timings, or the error that ended it.
    Done(Result<Generated, EngineError>),
}

/// The receiving end of a generation. Dropping it cancels the generation.
pub struct GenerationStream {
    events: mpsc::UnboundedReceiver<StreamEvent>,
}

impl GenerationStream {
    /// The next event; `None` after `Done`.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        self.events.recv().await
    }

    /// The next event, for a caller that polls (see [`crate::backend::OnnxBackend`]).
    pub fn poll_next(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<StreamEvent>> {
        self.events.poll_recv(cx)
    }

    /// Blocking variant for non-async callers (the CLI).
    pub fn blocking_next(&mut self) -> Option<StreamEvent> {
        self.events.blocking_recv()
    }

    /// Waits for the end, discarding the deltas.
    pub async fn finish(mut self) -> Result<Generated, EngineError> {
        while let Some(event) = self.next().await {
            if let StreamEvent::Done(result) = event {
                return result;
            }
        }
        Err(EngineError::Stopped)
    }
}

enum Job {
    /// Requests that arrived together (prefilled in one run when they fit the budget).
    Generate(Vec<(GenerateRequest, mpsc::UnboundedSender<StreamEvent>)>),
    Perplexity {
        text: String,
        reply: oneshot::Sender<Result<Perplexity, EngineError>>,
    },
    /// Drop cached prompt prefixes of one key, or all of them.
    ForgetPrefixes { key: Option<String> },
}

/// Result of scoring a text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Perplexity {
    /// Tokens the text encodes to.
    pub tokens: usize,
    /// Mean negative log-likelihood per predicted token, in nats.
    pub mean_nll: f64,
    /// `exp(mean_nll)`.
    pub perplexity: f64,
}

/// What the engine's handles and its worker thread share: the job queue to the worker, the
/// model's facts, the tokenizer, and the counters the worker keeps (waiting, cancelled,
/// batch size, where its time went).
struct EngineState {
    jobs: std_mpsc::Sender<Job>,
    info: ModelInfo,
    tokenizer: TextTokenizer,
    waiting: AtomicUsize,
    cancelled: AtomicUsize,
    batch_size: AtomicUsize,
    /// Nanoseconds the worker spent in scheduling turns, and inside `Session::run` in them.
    turn_nanos: AtomicU64,
    session_run_nanos: AtomicU64,
}

/// Where the worker's time went since the engine started (see [`EngineHandle::timing`]).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EngineTiming {
    /// Whole scheduling turns: admission, prefill, one decode step, sampling, streaming.
    pub turns: Duration,
    /// Time inside ONNX Runtime's `Session::run` (for generations, a part of `turns`).
    pub session_run: Duration,
}

impl std::ops::AddAssign for EngineTiming {
    fn add_assign(&mut self, other: EngineTiming) {
        self.turns += other.turns;
        self.session_run += other.session_run;
    }
}

impl EngineTiming {
    /// The work done between two readings.
    pub fn since(self, earlier: EngineTiming) -> EngineTiming {
        EngineTiming {
            turns: self.turns.saturating_sub(earlier.turns),
            session_run: self.session_run.saturating_sub(earlier.session_run),
        }
    }
}

/// A cheap, cloneable handle to the engine's worker thread.
#[derive(Clone)]
pub struct EngineHandle {
    shared: Arc<EngineState>,
}

impl std::fmt::Debug for EngineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineHandle")
            .field("model", &self.shared.info.name)
            .finish()
    }
}

impl EngineHandle {
    /// Opens and validates the model directory, loads the session, and starts the worker
    /// with the default batching options.
    pub fn load(model_dir: &Path, options: &SessionOptions) -> Result<Self, EngineError> {
        Self::load_with(model_dir, options, SchedulerOptions::default())
    }

    /// [`EngineHandle::load`] with explicit batching and prefix-cache limits.
    pub fn load_with(
        model_dir: &Path,
        options: &SessionOptions,
        scheduling: SchedulerOptions,
    ) -> Result<Self, EngineError> {
        let dir = ModelDir::open(model_dir)?;
        let tokenizer = TextTokenizer::from_file(&dir.tokenizer_file())?;
        let decoder = Decoder::load(&dir.model_file(), options)?;
        let info = model_info(&dir, &tokenizer, &decoder)?;
        let (jobs, inbox) = std_mpsc::channel();
        let shared = Arc::new(EngineState {
            jobs,
            info: info.clone(),
            tokenizer: tokenizer.clone(),
            waiting: AtomicUsize::new(0),
            cancelled: AtomicUsize::new(0),
            batch_size: AtomicUsize::new(0),
            turn_nanos: AtomicU64::new(0),
            session_run_nanos: AtomicU64::new(0),
        });
        let worker_shared = Arc::downgrade(&shared);
        thread::Builder::new()
            .name("shopkeep-engine".into())
            .spawn(move || {
                scheduler::run(decoder, tokenizer, info, scheduling, inbox, worker_shared)
            })
            .map_err(|error| EngineError::Thread(Arc::new(error)))?;
        Ok(Self { shared })
    }

    /// The loaded model's facts.
    pub fn info(&self) -> &ModelInfo {
        &self.shared.info
    }

    /// The model's tokenizer (the one the worker uses).
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.shared.tokenizer
    }

    /// Requests queued or running right now.
    pub fn pending(&self) -> usize {
        self.shared.waiting.load(Ordering::SeqCst)
    }

    /// Generations cancelled so far because their stream was dropped.
    pub fn cancelled(&self) -> usize {
        self.shared.cancelled.load(Ordering::SeqCst)
    }

    /// Queues a generation. Requests run in arrival order.
    pub fn generate(&self, request: GenerateRequest) -> GenerationStream {
        self.generate_many(vec![request])
            .pop()
            .expect("one stream per request")
    }

    /// Queues several generations at once, in order; they arrive together, so the ones
    /// without a cached prefix are prefilled in one batched run (within the prefill budget).
    pub fn generate_many(&self, requests: Vec<GenerateRequest>) -> Vec<GenerationStream> {
        let count = requests.len();
        let (jobs, streams): (Vec<_>, Vec<_>) = requests
            .into_iter()
            .map(|request| {
                let (events, receiver) = mpsc::unbounded_channel();
                ((request, events), GenerationStream { events: receiver })
            })
            .unzip();
        self.shared.waiting.fetch_add(count, Ordering::SeqCst);
        if let Err(std_mpsc::SendError(Job::Generate(jobs))) =
            self.shared.jobs.send(Job::Generate(jobs))
        {
            self.shared.waiting.fetch_sub(count, Ordering::SeqCst);
            for (_, events) in jobs {
                let _ = events.send(StreamEvent::Done(Err(EngineError::Stopped)));
            }
        }
        streams
    }

    /// Time spent by the worker so far, and the part of it inside ONNX Runtime; the rest is
    /// the engine's own overhead (tensors, copies, sampling, streaming).
    pub fn timing(&self) -> EngineTiming {
        EngineTiming {
            turns: Duration::from_nanos(self.shared.turn_nanos.load(Ordering::SeqCst)),
            session_run: Duration::from_nanos(self.shared.session_run_nanos.load(Ordering::SeqCst)),
        }
    }

    /// Sequences in the running batch after the last decode step.
    pub fn batch_size(&self) -> usize {
        self.shared.batch_size.load(Ordering::SeqCst)
    }

    /// Drops the cached prompt prefixes kept under `key` (a user forgot their conversation),
    /// or all of them with `None` (prompts were reloaded).
    pub fn forget_prefixes(&self, key: Option<&str>) {
        let _ = self.shared.jobs.send(Job::ForgetPrefixes {
            key: key.map(str::to_string),
        });
    }

    /// Scores `text` under the model (in windows of the context length).
    pub async fn perplexity(&self, text: String) -> Result<Perplexity, EngineError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .jobs
            .send(Job::Perplexity { text, reply })
            .map_err(|_| EngineError::Stopped)?;
        answer.await.map_err(|_| EngineError::Stopped)?
    }
}

fn model_info(
    dir: &ModelDir,
    tokenizer: &TextTokenizer,
    decoder: &Decoder,
) -> Result<ModelInfo, EngineError> {
    let family = dir.family();
    let declared = dir.manifest.layout.unwrap_or_default();
    if declared != decoder.layout.layout {
        return Err(EngineError::BadManifest {
            path: dir.path.join(model::MANIFEST_FILE),
            reason: format!(
                "it names the {declared:?} layout but model.onnx has the {:?} layout's inputs",
                decoder.layout.layout
            ),
        });
    }
    let context_length = dir
        .manifest
        .context_length
        .or(decoder.metadata_context_length())
        .unwrap_or(match family {
            ModelFamily::Gpt2 => GPT2_CONTEXT_LENGTH,
            _ => FALLBACK_CONTEXT_LENGTH,
        });
    let mut end_token_ids = Vec::new();
    for token in dir.end_tokens() {
        match tokenizer.token_id(&token) {
            Some(id) => end_token_ids.push(id),
            None if dir.manifest.end_tokens.is_some() => {
                return Err(EngineError::BadManifest {
                    path: dir.path.join(model::MANIFEST_FILE),
                    reason: format!("end token {token:?} is not in tokenizer.json"),
                })
            }
            None => tracing::warn!(%token, "default end token is not in the vocabulary"),
        }
    }
    Ok(ModelInfo {
        name: dir.name(),
        path: dir.path.clone(),
        family,
        prompt_format: dir.prompt_format(),
        end_token_ids,
        context_length,
        layers: decoder.layout.layers,
        kv_heads: decoder.layout.kv_heads,
        head_dim: decoder.layout.head_dim,
        vocab_size: tokenizer.vocab_size(),
    })
}

/// Mean negative log-likelihood of each token given the ones before it, over windows of
/// half the context that overlap by half, so every token after the first is scored once with
/// at least some context.
pub(crate) fn score(
    decoder: &mut Decoder,
    tokenizer: &TextTokenizer,
    info: &ModelInfo,
    text: &str,
) -> Result<Perplexity, EngineError> {
    let ids = tokenizer.encode(text)?;
    if ids.len() < 2 {
        return Err(EngineError::EmptyPrompt);
    }
    let window = info.context_length.clamp(2, 1024);
    let stride = (window / 2).max(1);
    let mut total_nll = 0.0f64;
    let mut scored = 0usize;
    let mut next_to_score = 1usize;
    let mut start = 0usize;
    loop {
        let end = (start + window).min(ids.len());
        let chunk: Vec<i64> = ids[start..end].iter().map(|&t| t as i64).collect();
        let positions: Vec<i64> = (0..chunk.len() as i64).collect();
        let mask = vec![1i64; chunk.len()];
        let step = decoder.forward(
            &chunk,
            &positions,
            &mask,
            decoder.empty_cache(1)?,
            Logits::All,
        )?;
        for target in next_to_score.max(start + 1)..end {
            let row = target - start - 1;
            let logits = step.logits_at(0, row);
            let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let log_sum: f64 = logits
                .iter()
                .map(|&l| (l as f64 - max).exp())
                .sum::<f64>()
                .ln()
                + max;
            total_nll += log_sum - logits[ids[target] as usize] as f64;
            scored += 1;
        }
        next_to_score = end;
        if end == ids.len() {
            break;
        }
        start += stride;
    }
    let mean_nll = total_nll / scored as f64;
    Ok(Perplexity {
        tokens: ids.len(),
        mean_nll,
        perplexity: mean_nll.exp(),
    })
}
