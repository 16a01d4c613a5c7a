//! The `openai` backend: any server that speaks OpenAI's `/v1/chat/completions` with
//! `stream: true` (vLLM, TGI, llama.cpp's server, Ollama).
//!
//! Prompts are rendered as ChatML and sent as chat messages ([`super::chatml`]); the server
//! applies its model's own chat template. Each generation is one streaming request, behind
//! a per-backend concurrency limit; stop strings, the token limit and the sampling settings
//! go with it. Requests refused with 429/502/503/504 are retried with a capped backoff that
//! honours Retry-After, but never once a token has streamed. A run of failures opens the
//! circuit breaker: answers then fail at once (the assistant apologises) until the health
//! check, `GET {base}/models` every second, passes again. Dropping a stream aborts its
//! HTTP request.

mod breaker;
mod chat;
mod retry;
mod sse;
mod tokens;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

use super::{
    Backend, BackendStatus, BoxFuture, GenerateRequest, GenerationStream, ModelSummary,
    PromptFormat, StreamEvent,
};
use crate::config::OpenAiSettings;
use breaker::Breaker;
use tokens::TokenCounter;

/// Context length assumed when neither the server nor `SHOPKEEP_OPENAI_CONTEXT_LENGTH` says.
pub const FALLBACK_CONTEXT_LENGTH: usize = 2048;

/// How often the health check runs while the circuit is open.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// The server's API key. Its `Debug` and `Display` never show it; only the request header
/// sees it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key, with surrounding whitespace (a pasted newline) removed.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_string())
    }

    /// The secret itself, for the Authorization header. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `request` with the bearer token when there is a key.
pub(crate) fn with_key(
    request: reqwest::RequestBuilder,
    key: Option<&ApiKey>,
) -> reqwest::RequestBuilder {
    match key {
        Some(key) => request.bearer_auth(key.expose()),
        None => request,
    }
}

/// Why the server did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServerError {
    /// No connection to the server (or it timed out).
    #[error("could not reach the model server: {0}")]
    Unreachable(#[source] Arc<reqwest::Error>),
    /// The server refused the request (after the retries a 429 or 5xx gets).
    #[error("the model server answered {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the server's answer (at most 300 characters).
        body: String,
    },
    /// The connection broke while the answer streamed.
    #[error("the model server stopped mid-answer: {0}")]
    Interrupted(#[source] Arc<reqwest::Error>),
    /// The stream ended without the server's end marker.
    #[error("the model server's stream ended before the answer did")]
    Truncated,
    /// A stream event or answer that is not the JSON the API defines.
    #[error("the model server sent something unreadable: {0}")]
    BadResponse(String),
    /// The server sent an error object inside its stream.
    #[error("the model server reported an error: {0}")]
    Reported(String),
    /// The circuit breaker is open: requests fail at once until a health check passes.
    #[error("the model server is out of service until its health check passes (after {} failures in a row)", breaker::FAILURES_TO_OPEN)]
    CircuitOpen,
    /// The local tokenizer file (for counting tokens) could not be loaded.
    #[error("tokenizer {path} could not be loaded: {reason}")]
    Tokenizer {
        /// The tokenizer file.
        path: String,
        /// What the tokenizers library said.
        reason: String,
    },
    /// The HTTP client could not be built (a TLS or proxy setting).
    #[error("could not set up the HTTP client: {0}")]
    Client(#[source] Arc<reqwest::Error>),
}

impl ServerError {
    /// Whether the failure says the server is unwell (and counts toward opening the
    /// circuit), rather than that our request was wrong.
    fn counts_against_server(&self) -> bool {
        match self {
            ServerError::Status { status, .. } => *status >= 500 || *status == 429,
            ServerError::Unreachable(_)
            | ServerError::Interrupted(_)
            | ServerError::Truncated
            | ServerError::BadResponse(_)
            | ServerError::Reported(_) => true,
            ServerError::CircuitOpen | ServerError::Tokenizer { .. } | ServerError::Client(_) => {
                false
            }
        }
    }
}

struct Inner {
    settings: OpenAiSettings,
    http: reqwest::Client,
    model: ModelSummary,
    /// The id sent as `model`.
    model_id: String,
    counter: TokenCounter,
    permits: Arc<Semaphore>,
    pending: AtomicUsize,
    breaker: Breaker,
}

impl Inner {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url)
    }

    /// `GET {base}/models`, within the connect timeout; the parsed body when it answers.
    async fn models(&self) -> Option<serde_json::Value> {
        models(&self.http, &self.settings).await
    }
}

async fn models(http: &reqwest::Client, settings: &OpenAiSettings) -> Option<serde_json::Value> {
    let request = http
        .get(format!("{}/models", settings.base_url))
        .timeout(settings.connect_timeout);
    let response = with_key(request, settings.api_key.as_ref())
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    serde_json::from_slice(&response.bytes().await.ok()?).ok()
}

/// A client for one OpenAI-compatible server; cheap to clone.
#[derive(Clone)]
pub struct OpenAiBackend {
    inner: Arc<Inner>,
}

impl fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBackend")
            .field("base_url", &self.inner.settings.base_url)
            .field("model", &self.inner.model_id)
            .field("tokens", &self.inner.counter)
            .finish()
    }
}

impl OpenAiBackend {
    /// Connects to the server: waits up to `start_timeout` for its health check, reads the
    /// model id and context length from it, and picks the token counter. A server still
    /// down after the wait is not an error: the backend starts with its circuit open (the
    /// configured model and context length, estimated token counts) and closes it when the
    /// health check passes. Needs a Tokio runtime (the health check runs on it).
    pub async fn connect(settings: OpenAiSettings) -> Result<Self, ServerError> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .build()
            .map_err(|error| ServerError::Client(Arc::new(error)))?;
        let local = settings
            .tokenizer
            .as_deref()
            .map(TokenCounter::local)
            .transpose()?;
        let deadline = Instant::now() + settings.start_timeout;
        let listed = loop {
            if let Some(listed) = models(&http, &settings).await {
                break Some(listed);
            }
            if Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let root = api_root(&settings.base_url);
        let model_id = settings
            .model
            .clone()
            .or_else(|| listed.as_ref().and_then(first_model_id))
            .unwrap_or_else(|| "default".to_string());
        let server_context = match &listed {
            Some(listed) => server_context_length(&http, &settings, &root, listed, &model_id).await,
            None => None,
        };
        let context_length = server_context
            .or(settings.context_length)
            .unwrap_or_else(|| {
                tracing::warn!(
                    FALLBACK_CONTEXT_LENGTH,
                    "the server does not say its context length; set SHOPKEEP_OPENAI_CONTEXT_LENGTH"
                );
                FALLBACK_CONTEXT_LENGTH
            });
        let counter = match (local, &listed) {
            (Some(local), _) => local,
            (None, Some(_)) => {
                TokenCounter::probe(&http, &root, &model_id, settings.api_key.as_ref()).await
            }
            (None, None) => TokenCounter::Estimate,
        };
        let breaker = if listed.is_some() {
            Breaker::default()
        } else {
            tracing::warn!(
                base_url = %settings.base_url,
                "the model server is not answering yet; model answers wait for its health check"
            );
            Breaker::opened()
        };
        tracing::info!(
            base_url = %settings.base_url,
            model = %model_id,
            context_length,
            tokens = ?counter,
            healthy = listed.is_some(),
            "model server backend"
        );
        let inner = Arc::new(Inner {
            permits: Arc::new(Semaphore::new(settings.max_concurrency)),
            model: ModelSummary {
                name: model_id.clone(),
                prompt_format: PromptFormat::Chatml,
                context_length,
                kv_bytes_per_token: None,
            },
            model_id,
            counter,
            pending: AtomicUsize::new(0),
            breaker,
            http,
            settings,
        });
        tokio::spawn(watch_health(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// The model id sent with each request.
    pub fn model_id(&self) -> &str {
        &self.inner.model_id
    }
}

/// While the backend lives: every [`HEALTH_INTERVAL`] with the circuit open, the health
/// check; when it passes, the circuit closes.
async fn watch_health(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        let Some(inner) = inner.upgrade() else { return };
        if inner.breaker.is_open() && inner.models().await.is_some() && inner.breaker.close() {
            tracing::info!(base_url = %inner.settings.base_url, "the model server is back in service");
        }
    }
}

/// `http://host:port/v1` -> `http://host:port`: where llama.cpp's and vLLM's non-OpenAI
/// endpoints live.
fn api_root(base_url: &str) -> String {
    base_url.strip_suffix("/v1").unwrap_or(base_url).to_string()
}

fn first_model_id(listed: &serde_json::Value) -> Option<String> {
    listed["data"][0]["id"].as_str().map(str::to_string)
}

/// vLLM lists `max_model_len` with each model; llama.cpp's server says `n_ctx` in `/props`.
async fn server_context_length(
    http: &reqwest::Client,
    settings: &OpenAiSettings,
    root: &str,
    listed: &serde_json::Value,
    model_id: &str,
) -> Option<usize> {
    let listed_length = listed["data"].as_array().and_then(|models| {
        models
            .iter()
            .find(|m| m["id"].as_str() == Some(model_id))
            .or(models.first())
            .and_then(|m| m["max_model_len"].as_u64())
    });
    if let Some(length) = listed_length {
        return Some(length as usize);
    }
    let request = http
        .get(format!("{root}/props"))
        .timeout(settings.connect_timeout);
    let response = with_key(request, settings.api_key.as_ref())
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let props: serde_json::Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    props["default_generation_settings"]["n_ctx"]
        .as_u64()
        .or(props["n_ctx"].as_u64())
        .map(|n| n as usize)
}

impl Backend for OpenAiBackend {
    fn model(&self) -> &ModelSummary {
        &self.inner.model
    }

    fn count_tokens<'a>(&'a self, text: &'a str) -> BoxFuture<'a, usize> {
        let inner = &self.inner;
        Box::pin(inner.counter.count(
            &inner.http,
            &inner.model_id,
            inner.settings.api_key.as_ref(),
            text,
        ))
    }

    fn generate(&self, request: GenerateRequest) -> GenerationStream {
        if self.inner.breaker.is_open() {
            return GenerationStream::failed(ServerError::CircuitOpen.into());
        }
        let (events, receiver) = mpsc::unbounded_channel();
        let inner = self.inner.clone();
        inner.pending.fetch_add(1, Ordering::SeqCst);
        let task = async move {
            let work = async {
                let Ok(_permit) = inner.permits.clone().acquire_owned().await else {
                    return;
                };
                let result = chat::stream(&inner, &request, &events).await;
                match &result {
                    Ok(_) => inner.breaker.record_success(),
                    Err(error) if error.counts_against_server() => {
                        if inner.breaker.record_failure() {
                            tracing::warn!(%error, "the model server failed repeatedly; out of service until its health check passes");
                        }
                    }
                    Err(_) => {}
                }
                let _ = events.send(StreamEvent::Done(result.map_err(Into::into)));
            };
            // Dropping the stream drops the request (and its connection) at once.
            tokio::select! {
                _ = work => {}
                _ = events.closed() => tracing::debug!("generation cancelled"),
            }
            inner.pending.fetch_sub(1, Ordering::SeqCst);
        };
        tokio::spawn(tracing::Instrument::in_current_span(task));
        GenerationStream::new(receiver)
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            healthy: !self.inner.breaker.is_open(),
            pending: self.inner.pending.load(Ordering::SeqCst),
            batch_size: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_shows_in_debug_or_display() {
        let key = ApiKey::new(" sk-secret-123 ");
        assert_eq!(key.expose(), "sk-secret-123");
        let mut settings = OpenAiSettings::new("http://127.0.0.1:1/v1");
        settings.api_key = Some(key.clone());
        for shown in [
            format!("{key:?}"),
            format!("{key}"),
            format!("{settings:?}"),
        ] {
            assert!(!shown.contains("sk-secret"), "{shown}");
        }
    }

    #[test]
    fn the_api_root_drops_the_v1() {
        assert_eq!(api_root("http://h:8080/v1"), "http://h:8080");
        assert_eq!(api_root("http://h:11434"), "http://h:11434");
    }
}
