//! One generation: prefill, then decode with the KV cache, sampling each token, streaming
//! text deltas, stopping on end tokens, stop strings or the token limit, and never letting
//! positions exceed the model's context length.

use std::time::Instant;

use serde::Serialize;

use super::decoder::{Decoder, KvCache, Logits};
use super::sampler::{Sampler, SamplingParams};
use super::tokenizer::{StreamDecoder, TextTokenizer};
use super::{EngineError, ModelInfo};
pub use crate::backend::FinishReason;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The prompt exactly as the model should see it (templates are applied before this).
    pub prompt: String,
    /// The most tokens to generate; fewer when an end token, a stop string or a full
    /// context comes first.
    pub max_new_tokens: usize,
    /// How tokens are picked.
    pub sampling: SamplingParams,
    /// Generation stops before any of these strings; they are not part of the text.
    pub stop: Vec<String>,
    /// `false` recomputes the whole sequence every step (slow; for checking the cache).
    pub use_kv_cache: bool,
    /// When set, the keys and values of this conversation are kept after it ends, so the
    /// next prompt that starts with the same tokens skips their prefill. Use a key per user
    /// so that [`super::EngineHandle::forget_prefixes`] can drop them.
    pub prefix_cache_key: Option<String>,
}

impl GenerateRequest {
    /// A request for `prompt` with default sampling, no stop strings, the KV cache on and no
    /// prefix key.
    pub fn new(prompt: impl Into<String>, max_new_tokens: usize) -> Self {
        Self {
            prompt: prompt.into(),
            max_new_tokens,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            use_kv_cache: true,
            prefix_cache_key: None,
        }
    }
}

/// The finished generation.
#[derive(Debug, Clone, Serialize)]
pub struct Generated {
    /// The prompt's token ids.
    pub prompt_ids: Vec<u32>,
    /// The generated token ids, in order.
    pub output_ids: Vec<u32>,
    /// The generated text, without the stop string that ended it.
    pub text: String,
    /// Why generation ended.
    pub finish: FinishReason,
    /// Oldest prompt tokens dropped to fit the context.
    pub dropped_prompt_tokens: usize,
    /// Milliseconds from the request to the first token (the prefill).
    pub prefill_ms: f64,
    /// Decode rate: tokens after the first, divided by the time spent producing them.
    pub tokens_per_s: f64,
    /// Prompt tokens whose keys and values came from the prefix cache instead of a prefill.
    pub reused_prefix_tokens: usize,
    /// The largest batch this sequence was decoded in.
    pub max_batch: usize,
    /// Prompts prefilled together with this one in one run (1 = alone).
    pub prefill_batch: usize,
}

/// Receives the text as it is made, once per token (the delta may be empty while a
/// character or a possible stop string is incomplete); returning `false` cancels.
pub(crate) trait TokenSink {
    fn text(&mut self, delta: &str) -> bool;
}

impl<F: FnMut(&str) -> bool> TokenSink for F {
    fn text(&mut self, delta: &str) -> bool {
        self(delta)
    }
}

/// How many prompt tokens to keep and how many new tokens fit, so that
/// `kept + new <= context_length`. The newest prompt tokens are kept; at least half the
/// context stays available for the prompt when the request asks for more than fits.
pub fn fit_to_context(prompt_len: usize, max_new: usize, context_length: usize) -> (usize, usize) {
    if prompt_len + max_new <= context_length {
        return (prompt_len, max_new);
    }
    let prompt_floor = prompt_len.min(context_length / 2).max(1);
    let new = max_new.min(context_length.saturating_sub(prompt_floor));
    let kept = prompt_len.min(context_length - new);
    (kept, new)
}

/// The state of one generation between model steps: which tokens are fed next, how the
/// sampled ones become text, and when it ends. The batch scheduler and [`run`] both drive it.
pub(crate) struct Sequence {
    pub request: GenerateRequest,
    pub prompt_ids: Vec<u32>,
    dropped_prompt_tokens: usize,
    max_new: usize,
    sampler: Sampler,
    stream: StreamDecoder,
    stops: StopMatcher,
    pub output_ids: Vec<u32>,
    seen: Vec<u32>,
    started: Instant,
    prefill_ms: f64,
    decode_started: Instant,
    finish: Option<FinishReason>,
    /// Prompt tokens taken from the prefix cache.
    pub reused_prefix_tokens: usize,
    /// The largest batch this sequence has been decoded in.
    pub max_batch: usize,
    /// Prompts prefilled together with this one in one run (1 = alone).
    pub prefill_batch: usize,
}

impl Sequence {
    /// Tokenises the prompt and fits it to the context (oldest tokens dropped first).
    pub(crate) fn new(
        tokenizer: &TextTokenizer,
        info: &ModelInfo,
        request: GenerateRequest,
    ) -> Result<Self, EngineError> {
        let all_prompt_ids = tokenizer.encode(&request.prompt)?;
        if all_prompt_ids.is_empty() {
            return Err(EngineError::EmptyPrompt);
        }
        let (kept, max_new) = fit_to_context(
            all_prompt_ids.len(),
            request.max_new_tokens,
            info.context_length,
        );
        let dropped = all_prompt_ids.len() - kept;
        let prompt_ids = all_prompt_ids[dropped..].to_vec();
        let now = Instant::now();
        Ok(Self {
            sampler: Sampler::new(request.sampling.clone()),
            stops: StopMatcher::new(&request.stop),
            stream: StreamDecoder::new(),
            seen: prompt_ids.clone(),
            prompt_ids,
            dropped_prompt_tokens: dropped,
            max_new,
            output_ids: Vec::new(),
            started: now,
            prefill_ms: 0.0,
            decode_started: now,
            finish: if max_new == 0 {
                Some(FinishReason::ContextFull)
            } else {
                None
            },
            reused_prefix_tokens: 0,
            max_batch: 1,
            prefill_batch: 1,
            request,
        })
    }

    /// All ids whose keys and values the model has seen or will see next: prompt + output.
    pub(crate) fn tokens(&self) -> Vec<u32> {
        let mut all = self.prompt_ids.clone();
        all.extend(&self.output_ids);
        all
    }

    /// The last sampled token, fed at the next decode step, and its position.
    pub(crate) fn next_input(&self) -> (u32, usize) {
        let position = self.prompt_ids.len() + self.output_ids.len() - 1;
        (
            *self
                .output_ids
                .last()
                .expect("decoding starts after the first token"),
            position,
        )
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Marks the generation cancelled (its receiver is gone).
    pub(crate) fn cancel(&mut self) {
        self.finish.get_or_insert(FinishReason::Cancelled);
    }

    /// Samples the next token from `logits`, streams its text to `sink`, and decides whether
    /// the generation has ended.
    pub(crate) fn accept(
        &mut self,
        logits: &mut [f32],
        tokenizer: &TextTokenizer,
        info: &ModelInfo,
        sink: &mut dyn TokenSink,
    ) -> Result<(), EngineError> {
        if self.output_ids.is_empty() {
            self.prefill_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            self.decode_started = Instant::now();
        }
        let id = self.sampler.sample(logits, &self.seen);
        if info.end_token_ids.contains(&id) {
            self.finish = Some(FinishReason::EndToken);
            return Ok(());
        }
        self.output_ids.push(id);
        self.seen.push(id);
        let delta = self.stream.push(tokenizer, id)?;
        let (emit, stopped) = self.stops.push(&delta);
        if !sink.text(&emit) {
            self.finish = Some(FinishReason::Cancelled);
        } else if stopped {
            self.finish = Some(FinishReason::StopString);
        } else if self.output_ids.len() >= self.max_new {
            self.finish = Some(if self.max_new < self.request.max_new_tokens {
                FinishReason::ContextFull
            } else {
                FinishReason::MaxTokens
            });
        }
        Ok(())
    }

    /// Flushes held-back text to `sink` and returns the result.
    pub(crate) fn finish(
        mut self,
        tokenizer: &TextTokenizer,
        sink: &mut dyn TokenSink,
    ) -> Result<Generated, EngineError> {
        let mut finish = self.finish.unwrap_or(FinishReason::MaxTokens);
        if finish != FinishReason::Cancelled && finish != FinishReason::StopString {
            let tail = self.stream.finish(tokenizer)?;
            let (emit, stopped) = self.stops.push(&tail);
            let emit = emit + &self.stops.flush();
            if stopped {
                finish = FinishReason::StopString;
            }
            if !emit.is_empty() {
                sink.text(&emit);
            }
        }
        let decode_secs = self.decode_started.elapsed().as_secs_f64();
        let decoded_after_first = self.output_ids.len().saturating_sub(1);
        let tokens_per_s = if decoded_after_first > 0 && decode_secs > 0.0 {
            decoded_after_first as f64 / decode_secs
        } else {
            0.0
        };
        Ok(Generated {
            text: self.stops.text().to_string(),
            prompt_ids: self.prompt_ids,
            output_ids: self.output_ids,
            finish,
            dropped_prompt_tokens: self.dropped_prompt_tokens,
            prefill_ms: self.prefill_ms,
            tokens_per_s,
            reused_prefix_tokens: self.reused_prefix_tokens,
            max_batch: self.max_batch,
            prefill_batch: self.prefill_batch,
        })
    }
}

/// Runs one request alone to completion (batch 1). With `use_kv_cache == false` every step
/// recomputes the whole sequence, which checks the cache path.
pub(crate) fn run(
    decoder: &mut Decoder,
    tokenizer: &TextTokenizer,
    info: &ModelInfo,
    request: &GenerateRequest,
    sink: &mut dyn TokenSink,
) -> Result<Generated, EngineError> {
    let mut sequence = Sequence::new(tokenizer, info, request.clone())?;
    let mut cache: Option<KvCache> = None;
    while !sequence.is_finished() {
        let (tokens, first_position, past) = match (request.use_kv_cache, cache.take()) {
            (true, Some(past)) => {
                let (token, position) = sequence.next_input();
                (vec![token], position, past)
            }
            (true, None) => (sequence.prompt_ids.clone(), 0, decoder.empty_cache(1)?),
            (false, _) => (sequence.tokens(), 0, decoder.empty_cache(1)?),
        };
        let input_ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let position_ids: Vec<i64> = (first_position..first_position + tokens.len())
            .map(|p| p as i64)
            .collect();
        let attention_mask = vec![1i64; past.len + tokens.len()];
        let step = decoder.forward(
            &input_ids,
            &position_ids,
            &attention_mask,
            past,
            Logits::Last,
        )?;
        let mut logits = step.last_logits(0).to_vec();
        cache = Some(step.cache);
        sequence.accept(&mut logits, tokenizer, info, sink)?;
    }
    sequence.finish(tokenizer, sink)
}

/// Finds stop strings in streamed text, holding back any tail that could be the start of
/// one, so a stop string never leaks out in a delta.
#[derive(Debug)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text accepted as output (emitted or held).
    text: String,
    emitted: usize,
    stopped: bool,
}

impl StopMatcher {
    /// A matcher for `stops`; empty strings are ignored.
    pub fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            text: String::new(),
            emitted: 0,
            stopped: false,
        }
    }

    /// Adds a delta; returns the text now safe to emit and whether a stop string was found.
    pub fn push(&mut self, delta: &str) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.text.push_str(delta);
        let search_from = self
            .emitted
            .saturating_sub(self.stops.iter().map(|s| s.len()).max().unwrap_or(0));
        let search_from = floor_char_boundary(&self.text, search_from);
        let found = self
            .stops
            .iter()
            .filter_map(|stop| {
                self.text[search_from..]
                    .find(stop.as_str())
                    .map(|i| i + search_from)
            })
            .min();
        if let Some(at) = found {
            self.text.truncate(at);
            self.stopped = true;
            let emit = self.text[self.emitted.min(at)..].to_string();
            self.emitted = self.text.len();
            return (emit, true);
        }
        let hold = self.held_tail_len();
        let safe = floor_char_boundary(&self.text, self.text.len() - hold);
        let emit = if safe > self.emitted {
            self.text[self.emitted..safe].to_string()
        } else {
            String::new()
        };
        self.emitted = self.emitted.max(safe);
        (emit, false)
    }

    /// Everything still held back (the end of the stream was reached without a stop).
    pub fn flush(&mut self) -> String {
        let rest = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        rest
    }

    /// The output text so far, without any stop string.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn held_tail_len(&self) -> usize {
        self.stops
            .iter()
            .flat_map(|stop| {
                (1..stop.len())
                    .rev()
                    .filter(|&k| stop.is_char_boundary(k) && self.text.ends_with(&stop[..k]))
                    .take(1)
            })
            .max()
            .unwrap_or(0)
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_fit_keeps_newest_and_never_exceeds() {
        assert_eq!(fit_to_context(10, 20, 100), (10, 20));
        assert_eq!(fit_to_context(90, 20, 100), (80, 20));
        let (kept, new) = fit_to_context(500, 1000, 100);
        assert_eq!((kept, new), (50, 50));
        for prompt in [1, 7, 50, 99, 100, 101, 400] {
            for max_new in [0, 1, 10, 99, 100, 500] {
                let (kept, new) = fit_to_context(prompt, max_new, 100);
                assert!(kept + new <= 100, "{prompt} {max_new}");
                assert!(kept >= 1 && kept <= prompt);
            }
        }
    }

    #[test]
    fn stop_string_split_across_deltas_never_leaks() {
        let mut stops = StopMatcher::new(&["\nCustomer:".to_string()]);
        let mut out = String::new();
        for delta in ["Hello", " there.", "\nCust", "omer: more"] {
            let (emit, stopped) = stops.push(delta);
            out.push_str(&emit);
            if stopped {
                break;
            }
        }
        assert_eq!(out, "Hello there.");
        assert_eq!(stops.text(), "Hello there.");
    }

    #[test]
    fn held_text_is_released_when_it_turns_out_harmless() {
        let mut stops = StopMatcher::new(&["\nUser:".to_string()]);
        let (a, _) = stops.push("Line\nUs");
        assert_eq!(a, "Line");
        let (b, stopped) = stops.push("ually yes");
        assert!(!stopped);
        assert_eq!(b, "\nUsually yes");
        assert_eq!(stops.flush(), "");
    }

    #[test]
    fn no_stops_emits_everything() {
        let mut stops = StopMatcher::new(&[]);
        assert_eq!(stops.push("héllo").0, "héllo");
    }
}
