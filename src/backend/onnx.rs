//! The embedded engine as a [`Backend`]: a thin wrapper around [`EngineHandle`], which keeps
//! its batching, prefix cache and cancellation on drop.

use std::task::{Context, Poll};

use super::{
    Backend, BackendStatus, BoxFuture, EventSource, GenerateRequest, Generated, GenerationStream,
    ModelSummary, StreamEvent, TokenIds,
};
use crate::engine::{self, EngineHandle};

/// The ONNX Runtime engine behind the [`Backend`] trait.
#[derive(Debug, Clone)]
pub struct OnnxBackend {
    engine: EngineHandle,
    model: ModelSummary,
    use_kv_cache: bool,
}

impl OnnxBackend {
    /// A backend on the running engine `engine`, with the KV cache on; its summary (and KV bytes
    /// per token) come from the engine's model.
    pub fn new(engine: EngineHandle) -> Self {
        let info = engine.info();
        let model = ModelSummary {
            name: info.name.clone(),
            prompt_format: info.prompt_format,
            context_length: info.context_length,
            kv_bytes_per_token: Some(kv_bytes_per_token(info)),
        };
        Self {
            engine,
            model,
            use_kv_cache: true,
        }
    }

    /// Recomputes the whole sequence every step instead of using the KV cache (slow; for
    /// checking the cache with `shopkeep generate --no-cache`).
    pub fn without_kv_cache(mut self) -> Self {
        self.use_kv_cache = false;
        self
    }

    /// The engine itself, for what only it offers (perplexity, timings, the tokenizer).
    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    fn engine_request(&self, request: GenerateRequest) -> engine::GenerateRequest {
        engine::GenerateRequest {
            prompt: request.prompt,
            max_new_tokens: request.max_new_tokens,
            sampling: request.sampling,
            stop: request.stop,
            use_kv_cache: self.use_kv_cache,
            prefix_cache_key: request.prefix_cache_key,
        }
    }
}

impl Backend for OnnxBackend {
    fn model(&self) -> &ModelSummary {
        &self.model
    }

    fn count_tokens<'a>(&'a self, text: &'a str) -> BoxFuture<'a, usize> {
        let count = self.engine.tokenizer().count(text);
        Box::pin(std::future::ready(count))
    }

    fn generate(&self, request: GenerateRequest) -> GenerationStream {
        GenerationStream::new(EngineEvents(
            self.engine.generate(self.engine_request(request)),
        ))
    }

    fn generate_many(&self, requests: Vec<GenerateRequest>) -> Vec<GenerationStream> {
        let requests = requests
            .into_iter()
            .map(|request| self.engine_request(request))
            .collect();
        self.engine
            .generate_many(requests)
            .into_iter()
            .map(|stream| GenerationStream::new(EngineEvents(stream)))
            .collect()
    }

    fn forget_prefixes(&self, key: Option<&str>) {
        self.engine.forget_prefixes(key);
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            healthy: true,
            pending: self.engine.pending(),
            batch_size: Some(self.engine.batch_size()),
        }
    }
}

/// A key and a value vector per layer and KV head, f32 (the engine's past layout,
/// `past_key_values.{i}.key|value` f32 [b, kv_heads, past, head_dim]).
fn kv_bytes_per_token(info: &engine::ModelInfo) -> usize {
    2 * info.layers * info.kv_heads * info.head_dim * std::mem::size_of::<f32>()
}

/// The engine's stream with its events in the shared types; dropping it drops the engine's
/// stream, which cancels the generation.
struct EngineEvents(engine::GenerationStream);

impl EventSource for EngineEvents {
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<StreamEvent>> {
        self.0.poll_next(cx).map(|event| {
            event.map(|event| match event {
                engine::StreamEvent::Text(delta) => StreamEvent::Text(delta),
                engine::StreamEvent::Done(result) => {
                    StreamEvent::Done(result.map(generated).map_err(Into::into))
                }
            })
        })
    }
}

fn generated(done: engine::Generated) -> Generated {
    Generated {
        text: done.text,
        finish: done.finish,
        prompt_tokens: done.prompt_ids.len(),
        output_tokens: done.output_ids.len(),
        prefill_ms: done.prefill_ms,
        tokens_per_s: done.tokens_per_s,
        dropped_prompt_tokens: done.dropped_prompt_tokens,
        ids: Some(TokenIds {
            prompt: done.prompt_ids,
            output: done.output_ids,
        }),
    }
}
