//! The seam between the assistant and whatever writes the model's words: a small
//! [`Backend`] trait in the spirit of TGI's router `Backend`, its shared request, stream and
//! error types, and three implementations:
//!
//! - [`onnx`]: the embedded engine on ONNX Runtime (the default);
//! - [`openai`]: any server speaking OpenAI's `/v1/chat/completions` with server-sent events
//!   (vLLM, TGI, llama.cpp's server, Ollama);
//! - [`scripted`]: scripted text for tests, recording every request it receives.
//!
//! The assistant depends on this module only; ONNX-only details (layers, KV heads, the
//! cache flag) stay in the engine.

pub mod chatml;
pub mod onnx;
pub mod openai;
pub mod scripted;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use onnx::OnnxBackend;
pub use openai::OpenAiBackend;
pub use scripted::ScriptedBackend;

/// A boxed future, for the trait's asynchronous parts.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How conversation prompts are laid out for this model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptFormat {
    /// Plain text transcript (`Customer: …\nAssistant:`), for base models such as GPT-2.
    Completion,
    /// `<|im_start|>role\n…<|im_end|>` turns, for ChatML-tuned models (and chat servers,
    /// which get the turns as messages).
    Chatml,
}

/// How to pick tokens. `temperature == 0` means greedy (argmax).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// Softmax temperature; 0 or below picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability mass reaches p; 1.0 disables.
    pub top_p: f32,
    /// CTRL-style penalty (> 1 discourages repeats) on tokens already in the prompt or
    /// output; 1.0 disables.
    pub repetition_penalty: f32,
    /// Seed of the sampler's random draws, so a run can be repeated (a server may ignore it).
    pub seed: u64,
}

impl SamplingParams {
    /// Always the most likely token: temperature 0, no top-k/top-p cut, no penalty.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
        }
    }

    /// Whether no randomness is left: temperature 0 (or below), or only one candidate
    /// (`top_k == 1`).
    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }
}

impl Default for SamplingParams {
    /// Conversational defaults: mildly creative, no runaway repetition.
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.9,
            repetition_penalty: 1.1,
            seed: 0,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model wrote its end-of-sequence token.
    EndToken,
    /// One of the request's stop strings appeared (it is not part of the text).
    StopString,
    /// `max_new_tokens` tokens were generated.
    MaxTokens,
    /// Prompt and output together reached the model's context length.
    ContextFull,
    /// The request was cancelled (its stream was dropped, or shutdown).
    Cancelled,
}

/// What every backend says about its model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSummary {
    /// The model's name (a directory's manifest name, or the server's model id).
    pub name: String,
    /// How prompts for it are rendered.
    pub prompt_format: PromptFormat,
    /// Prompt plus generated tokens never exceed this.
    pub context_length: usize,
    /// Bytes of key/value cache one token of a sequence holds while it is generated, where
    /// the backend knows it (the embedded engine); `None` for a server, whose memory is its
    /// own. The generation queue's token bound is derived from it.
    pub kv_bytes_per_token: Option<usize>,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateRequest {
    /// The prompt exactly as rendered for [`ModelSummary::prompt_format`].
    pub prompt: String,
    /// The most tokens to generate; generation ends earlier at an end token, a stop string or
    /// a full context.
    pub max_new_tokens: usize,
    /// How tokens are picked.
    pub sampling: SamplingParams,
    /// Generation stops before any of these strings; they are not part of the text.
    pub stop: Vec<String>,
    /// A hint that the next prompt under this key (a user id) starts like this one, so a
    /// backend may keep its prefix; [`Backend::forget_prefixes`] drops it.
    pub prefix_cache_key: Option<String>,
}

impl GenerateRequest {
    /// A request for `prompt` with default sampling, no stop strings and no prefix key.
    pub fn new(prompt: impl Into<String>, max_new_tokens: usize) -> Self {
        Self {
            prompt: prompt.into(),
            max_new_tokens,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            prefix_cache_key: None,
        }
    }
}

/// Token ids of a finished generation, where the backend knows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenIds {
    /// The prompt's token ids.
    pub prompt: Vec<u32>,
    /// The generated token ids, in order.
    pub output: Vec<u32>,
}

/// A finished generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generated {
    /// The generated text, without the stop string that ended it.
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
    /// Tokens of the prompt (0 when a server does not report its usage).
    pub prompt_tokens: usize,
    /// Tokens generated (as a server reports them, or counted).
    pub output_tokens: usize,
    /// From the request to the first token (the prefill, for the embedded engine).
    pub prefill_ms: f64,
    /// Decode rate: tokens after the first, divided by the time spent producing them.
    pub tokens_per_s: f64,
    /// Oldest prompt tokens dropped to fit the context.
    pub dropped_prompt_tokens: usize,
    /// `None` when the backend sees only text (a server's stream).
    pub ids: Option<TokenIds>,
}

/// Why a generation failed. Sources stay inside; [`crate::assistant`] turns any of them
/// into one short apology.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    /// The embedded engine failed.
    Engine(#[from] crate::engine::EngineError),
    #[error(transparent)]
    /// The OpenAI-compatible server failed.
    Server(#[from] openai::ServerError),
    /// The prompt cannot fit the model's context with room for an answer.
    #[error("the prompt has {tokens} tokens; the model's context holds {context_length}")]
    PromptTooLong {
        /// Tokens in the rendered prompt.
        tokens: usize,
        /// Tokens the model's context holds.
        context_length: usize,
    },
    /// The backend went away before finishing.
    #[error("the backend stopped before finishing")]
    Stopped,
}

/// One event of a streaming generation.
#[derive(Debug)]
pub enum StreamEvent {
    /// Newly completed text (never half a character, never part of a stop string).
    Text(String),
    /// The end: the whole generation, or the error that ended it.
    Done(Result<Generated, BackendError>),
}

/// Where a [`GenerationStream`]'s events come from.
pub trait EventSource: Send {
    /// The next event, as [`mpsc::UnboundedReceiver::poll_recv`]; `None` after the end.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>>;
}

impl EventSource for mpsc::UnboundedReceiver<StreamEvent> {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        self.poll_recv(cx)
    }
}

/// The receiving end of a generation. Dropping it cancels the generation.
pub struct GenerationStream {
    source: Box<dyn EventSource>,
}

impl std::fmt::Debug for GenerationStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GenerationStream")
    }
}

impl GenerationStream {
    /// A stream reading its events from `source`; dropping the stream drops the source.
    pub fn new(source: impl EventSource + 'static) -> Self {
        Self {
            source: Box::new(source),
        }
    }

    /// A stream that ends at once with `error`.
    pub fn failed(error: BackendError) -> Self {
        let (events, receiver) = mpsc::unbounded_channel();
        let _ = events.send(StreamEvent::Done(Err(error)));
        Self::new(receiver)
    }

    /// The next event; `None` after `Done`.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        std::future::poll_fn(|cx| self.source.poll_event(cx)).await
    }

    /// Waits for the end, discarding the deltas.
    pub async fn finish(mut self) -> Result<Generated, BackendError> {
        while let Some(event) = self.next().await {
            if let StreamEvent::Done(result) = event {
                return result;
            }
        }
        Err(BackendError::Stopped)
    }
}

/// Whether a backend can answer now, and its load, for metrics and the bot's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackendStatus {
    /// `false` while a server is unreachable (its circuit breaker is open).
    pub healthy: bool,
    /// Generations queued or running.
    pub pending: usize,
    /// Sequences in the running decode batch, where the backend knows it.
    pub batch_size: Option<usize>,
}

/// What writes the model's words. Implementations are cheap to share (`Arc<dyn Backend>`).
pub trait Backend: Send + Sync {
    /// Name, prompt format and context length.
    fn model(&self) -> &ModelSummary;

    /// How many tokens `text` is for this model, never fewer than it really is when the
    /// backend has to estimate.
    fn count_tokens<'a>(&'a self, text: &'a str) -> BoxFuture<'a, usize>;

    /// Starts a generation; its text streams in order. Requests run in arrival order.
    fn generate(&self, request: GenerateRequest) -> GenerationStream;

    /// Starts several generations that arrived together (a backend may batch them).
    fn generate_many(&self, requests: Vec<GenerateRequest>) -> Vec<GenerationStream> {
        requests
            .into_iter()
            .map(|request| self.generate(request))
            .collect()
    }

    /// Drops what is kept for prompts under `key` (a user forgot their conversation), or
    /// for every key with `None` (the prompts were reloaded). Nothing by default.
    fn forget_prefixes(&self, _key: Option<&str>) {}

    /// Health and load right now.
    fn status(&self) -> BackendStatus;
}

/// A shareable backend.
pub type SharedBackend = Arc<dyn Backend>;

/// A token count that never undercounts a byte-level BPE tokenizer in practice: a run of
/// ASCII letters is a token per three letters, each digit and ASCII symbol a token, a run of
/// whitespace with a line break (or of several spaces) a token, and every byte of a
/// non-ASCII character a token (the bound byte-level BPE cannot exceed); plus one.
/// English comes out about a third over the real count.
pub fn estimate_tokens(text: &str) -> usize {
    let mut tokens = 1;
    let mut letters = 0usize;
    let mut spaces = 0usize;
    let mut line_break = false;
    let flush_letters = |letters: &mut usize, tokens: &mut usize| {
        *tokens += letters.div_ceil(3);
        *letters = 0;
    };
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            letters += 1;
        } else {
            flush_letters(&mut letters, &mut tokens);
        }
        if c.is_whitespace() {
            spaces += 1;
            line_break |= c == '\n';
            continue;
        }
        if spaces > 1 || line_break {
            tokens += 1;
        }
        spaces = 0;
        line_break = false;
        if !c.is_ascii() {
            tokens += c.len_utf8();
        } else if !c.is_ascii_alphabetic() {
            tokens += 1;
        }
    }
    flush_letters(&mut letters, &mut tokens);
    if spaces > 1 || line_break {
        tokens += 1;
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_never_below_a_bpe_count() {
        // The larger count of GPT-2's and SmolLM2's tokenizers for each text (checked with
        // the tokenizers package on the prepared tokenizer.json files).
        for (text, tokens) in [
            ("Hello world", 2),
            ("Where is my parcel? It was due on Monday.", 11),
            ("1234567890", 10),
            ("Größe, Öl und Übermaß", 13),
            ("日本語のテキストです", 18),
            ("🙂🙂🙂 emoji", 8),
            ("a b c d e f g h", 8),
            ("<|im_start|>user\nhi<|im_end|>", 17),
        ] {
            let estimate = estimate_tokens(text);
            assert!(estimate >= tokens, "{text:?}: {estimate} < {tokens}");
        }
        // And not wildly above it for English.
        let english = "Where is my parcel? It was due on Monday.";
        assert!(estimate_tokens(english) <= 2 * 11);
    }

    #[tokio::test]
    async fn a_failed_stream_ends_with_its_error_and_dropping_a_channel_stream_closes_it() {
        let error = GenerationStream::failed(BackendError::Stopped)
            .finish()
            .await
            .unwrap_err();
        assert!(matches!(error, BackendError::Stopped));

        let (events, receiver) = mpsc::unbounded_channel();
        let mut stream = GenerationStream::new(receiver);
        events.send(StreamEvent::Text("hi".into())).unwrap();
        assert!(matches!(stream.next().await, Some(StreamEvent::Text(t)) if t == "hi"));
        drop(stream);
        assert!(events.is_closed());
    }
}
