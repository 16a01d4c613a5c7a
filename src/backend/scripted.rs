//! A [`Backend`] that writes scripted text, for tests (and the bot-side overhead bench) where
//! the model's words do not matter or must be exactly known. It records every request it
//! receives, streams each reply a word at a time, honours stop strings and the token limit
//! (a word is a token), and counts the streams dropped before their end.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use super::{
    estimate_tokens, Backend, BackendError, BackendStatus, BoxFuture, EventSource, FinishReason,
    GenerateRequest, Generated, GenerationStream, ModelSummary, PromptFormat, StreamEvent,
};

/// What the backend does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Scripted {
    /// Streams this text, a word (with its leading space) per event.
    Text(String),
    /// Ends at once with [`BackendError::Stopped`].
    Fail,
    /// Never produces anything until the stream is dropped.
    Hang,
    /// Panics in [`Backend::generate`] (a bug in a backend), for the tests of what a panic
    /// while answering does.
    Panic,
}

#[derive(Default)]
struct Counters {
    pending: AtomicUsize,
    cancelled: AtomicUsize,
}

/// Scripted replies, taken in order; when they run out, the default reply.
pub struct ScriptedBackend {
    model: ModelSummary,
    queue: Mutex<VecDeque<Scripted>>,
    default_reply: Scripted,
    requests: Mutex<Vec<GenerateRequest>>,
    forgotten: Mutex<Vec<Option<String>>>,
    counters: Arc<Counters>,
}

impl Default for ScriptedBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedBackend {
    /// A ChatML model called `scripted` with a 2,048-token context that answers
    /// "Scripted reply." to everything.
    pub fn new() -> Self {
        Self {
            model: ModelSummary {
                name: "scripted".into(),
                prompt_format: PromptFormat::Chatml,
                context_length: 2048,
                kv_bytes_per_token: None,
            },
            queue: Mutex::new(VecDeque::new()),
            default_reply: Scripted::Text("Scripted reply.".into()),
            requests: Mutex::new(Vec::new()),
            forgotten: Mutex::new(Vec::new()),
            counters: Arc::new(Counters::default()),
        }
    }

    /// The model's context is `tokens` long (2048 by default).
    pub fn with_context_length(mut self, tokens: usize) -> Self {
        self.model.context_length = tokens;
        self
    }

    /// Says that each token of a sequence holds `bytes` of key/value cache, as the
    /// embedded engine does (the queue's token bound is then derived from it).
    pub fn with_kv_bytes_per_token(mut self, bytes: usize) -> Self {
        self.model.kv_bytes_per_token = Some(bytes);
        self
    }

    /// The model's prompts are rendered as `format`.
    pub fn with_prompt_format(mut self, format: PromptFormat) -> Self {
        self.model.prompt_format = format;
        self
    }

    /// What every request gets once the queued replies are used up.
    pub fn with_default(mut self, reply: Scripted) -> Self {
        self.default_reply = reply;
        self
    }

    /// Queues the reply to the next request not yet answered.
    pub fn then(&self, reply: Scripted) -> &Self {
        lock(&self.queue).push_back(reply);
        self
    }

    /// Queues a text reply.
    pub fn then_say(&self, text: &str) -> &Self {
        self.then(Scripted::Text(text.to_string()))
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<GenerateRequest> {
        lock(&self.requests).clone()
    }

    /// Every [`Backend::forget_prefixes`] call so far, in order.
    pub fn forgotten(&self) -> Vec<Option<String>> {
        lock(&self.forgotten).clone()
    }

    /// Streams dropped before their end.
    pub fn cancelled(&self) -> usize {
        self.counters.cancelled.load(Ordering::SeqCst)
    }

    fn next_reply(&self) -> Scripted {
        lock(&self.queue)
            .pop_front()
            .unwrap_or_else(|| self.default_reply.clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Backend for ScriptedBackend {
    fn model(&self) -> &ModelSummary {
        &self.model
    }

    fn count_tokens<'a>(&'a self, text: &'a str) -> BoxFuture<'a, usize> {
        Box::pin(std::future::ready(estimate_tokens(text)))
    }

    fn generate(&self, request: GenerateRequest) -> GenerationStream {
        lock(&self.requests).push(request.clone());
        let reply = self.next_reply();
        if reply == Scripted::Panic {
            panic!("the scripted backend panics, as asked");
        }
        self.counters.pending.fetch_add(1, Ordering::SeqCst);
        GenerationStream::new(ScriptedEvents::new(reply, &request, self.counters.clone()))
    }

    fn forget_prefixes(&self, key: Option<&str>) {
        lock(&self.forgotten).push(key.map(str::to_string));
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            healthy: true,
            pending: self.counters.pending.load(Ordering::SeqCst),
            batch_size: None,
        }
    }
}

/// The events of one scripted reply, produced as they are polled.
struct ScriptedEvents {
    deltas: VecDeque<String>,
    end: Option<StreamEvent>,
    hang: bool,
    finished: bool,
    counters: Arc<Counters>,
}

impl ScriptedEvents {
    fn new(reply: Scripted, request: &GenerateRequest, counters: Arc<Counters>) -> Self {
        let mut events = Self {
            deltas: VecDeque::new(),
            end: None,
            hang: false,
            finished: false,
            counters,
        };
        match reply {
            Scripted::Hang | Scripted::Panic => events.hang = true,
            Scripted::Fail => {
                events.end = Some(StreamEvent::Done(Err(BackendError::Stopped)));
            }
            Scripted::Text(text) => {
                let (text, mut finish) = match request
                    .stop
                    .iter()
                    .filter_map(|stop| text.find(stop.as_str()))
                    .min()
                {
                    Some(at) => (text[..at].to_string(), FinishReason::StopString),
                    None => (text, FinishReason::EndToken),
                };
                let mut words = words_with_spaces(&text);
                if words.len() > request.max_new_tokens {
                    words.truncate(request.max_new_tokens);
                    finish = FinishReason::MaxTokens;
                }
                let text = words.concat();
                events.end = Some(StreamEvent::Done(Ok(Generated {
                    prompt_tokens: estimate_tokens(&request.prompt),
                    output_tokens: words.len(),
                    text,
                    finish,
                    prefill_ms: 0.0,
                    tokens_per_s: 0.0,
                    dropped_prompt_tokens: 0,
                    ids: None,
                })));
                events.deltas = words.into();
            }
        }
        events
    }
}

/// `text` cut before each run of whitespace that precedes a word: "a b" -> ["a", " b"].
fn words_with_spaces(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_space = false;
    for c in text.chars() {
        if c.is_whitespace() && !in_space && !current.trim().is_empty() {
            words.push(std::mem::take(&mut current));
        }
        in_space = c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

impl EventSource for ScriptedEvents {
    fn poll_event(&mut self, _cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        if self.hang {
            return Poll::Pending;
        }
        if let Some(delta) = self.deltas.pop_front() {
            return Poll::Ready(Some(StreamEvent::Text(delta)));
        }
        let end = self.end.take();
        if end.is_some() && !self.finished {
            self.finished = true;
            self.counters.pending.fetch_sub(1, Ordering::SeqCst);
        }
        Poll::Ready(end)
    }
}

impl Drop for ScriptedEvents {
    fn drop(&mut self) {
        if !self.finished {
            self.counters.pending.fetch_sub(1, Ordering::SeqCst);
            self.counters.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(mut stream: GenerationStream) -> (Vec<String>, Generated) {
        let mut deltas = Vec::new();
        while let Some(event) = stream.next().await {
            match event {
                StreamEvent::Text(delta) => deltas.push(delta),
                StreamEvent::Done(result) => return (deltas, result.unwrap()),
            }
        }
        panic!("no end")
    }

    #[tokio::test]
    async fn replies_stream_word_by_word_in_order_and_requests_are_recorded() {
        let backend = ScriptedBackend::new().with_default(Scripted::Text("fallback".into()));
        backend.then_say("Hello there, friend.");
        let (deltas, done) = collect(backend.generate(GenerateRequest::new("q1", 50))).await;
        assert_eq!(deltas, ["Hello", " there,", " friend."]);
        assert_eq!(done.text, "Hello there, friend.");
        assert_eq!(done.finish, FinishReason::EndToken);
        let (_, done) = collect(backend.generate(GenerateRequest::new("q2", 50))).await;
        assert_eq!(done.text, "fallback");
        let prompts: Vec<String> = backend.requests().into_iter().map(|r| r.prompt).collect();
        assert_eq!(prompts, ["q1", "q2"]);
        assert_eq!(backend.status().pending, 0);
    }

    #[tokio::test]
    async fn stop_strings_and_the_token_limit_cut_the_reply() {
        let backend = ScriptedBackend::new();
        backend.then_say("one two<|im_end|> three");
        backend.then_say("one two three four");
        let mut stopped = GenerateRequest::new("q", 50);
        stopped.stop = vec!["<|im_end|>".into()];
        let (_, done) = collect(backend.generate(stopped)).await;
        assert_eq!(
            (done.text.as_str(), done.finish),
            ("one two", FinishReason::StopString)
        );
        let (_, done) = collect(backend.generate(GenerateRequest::new("q", 2))).await;
        assert_eq!(
            (done.text.as_str(), done.finish),
            ("one two", FinishReason::MaxTokens)
        );
    }

    #[tokio::test]
    async fn a_dropped_stream_counts_as_cancelled_and_a_failure_is_an_error() {
        let backend = ScriptedBackend::new();
        backend.then(Scripted::Hang).then(Scripted::Fail);
        let hanging = backend.generate(GenerateRequest::new("q", 5));
        assert_eq!(backend.status().pending, 1);
        drop(hanging);
        assert_eq!((backend.cancelled(), backend.status().pending), (1, 0));
        let error = backend
            .generate(GenerateRequest::new("q", 5))
            .finish()
            .await
            .unwrap_err();
        assert!(matches!(error, BackendError::Stopped));
        assert_eq!(backend.cancelled(), 1);
    }
}
