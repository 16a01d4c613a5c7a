//! One streaming `/v1/chat/completions` request: the body, the retries before the first
//! token, and the server-sent events turned into text deltas and a [`Generated`].

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use tokio::sync::mpsc;

use super::retry::{backoff, retry_after, retryable, MAX_RETRIES};
use super::sse::{self, Chunk, SseDecoder};
use super::{with_key, Inner, ServerError};
use crate::backend::{chatml, FinishReason, GenerateRequest, Generated, StreamEvent};

/// The request body: the prompt's turns as messages, the token limit, stop strings and the
/// sampling settings (`top_k` and the repetition penalty under the names llama.cpp and vLLM
/// read; neutral values are left out).
pub(crate) fn body(model: &str, request: &GenerateRequest) -> serde_json::Value {
    let sampling = &request.sampling;
    let mut body = json!({
        "model": model,
        "messages": chatml::messages(&request.prompt),
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": request.max_new_tokens,
        "temperature": if sampling.is_greedy() { 0.0 } else { sampling.temperature },
        "seed": sampling.seed,
    });
    if !request.stop.is_empty() {
        body["stop"] = json!(request.stop);
    }
    if !sampling.is_greedy() {
        body["top_p"] = json!(sampling.top_p);
        if sampling.top_k > 0 {
            body["top_k"] = json!(sampling.top_k);
        }
    }
    if sampling.repetition_penalty != 1.0 {
        body["repeat_penalty"] = json!(sampling.repetition_penalty);
        body["repetition_penalty"] = json!(sampling.repetition_penalty);
    }
    body
}

/// Sends the request (retrying refusals, see [`super::retry`]) and streams its text to
/// `events`; returns the whole generation.
pub(crate) async fn stream(
    inner: &Inner,
    request: &GenerateRequest,
    events: &mpsc::UnboundedSender<StreamEvent>,
) -> Result<Generated, ServerError> {
    let started = Instant::now();
    let body = body(&inner.model_id, request).to_string();
    let mut response = send(inner, body).await?;
    let mut decoder = SseDecoder::default();
    let mut text = String::new();
    let mut first_token: Option<Instant> = None;
    let mut last_token = started;
    let mut deltas = 0usize;
    let mut usage = (None, None);
    let mut finish = None;
    loop {
        let bytes = match response.chunk().await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Err(ServerError::Truncated),
            Err(error) => return Err(ServerError::Interrupted(Arc::new(error))),
        };
        for payload in decoder.push(&bytes) {
            match sse::parse(&payload).map_err(ServerError::BadResponse)? {
                Chunk::Done => {
                    let output_tokens = usage.1.unwrap_or(deltas);
                    let first = first_token.unwrap_or(last_token);
                    let decode_s = last_token.duration_since(first).as_secs_f64();
                    return Ok(Generated {
                        finish: match finish.as_deref() {
                            Some("length") => FinishReason::MaxTokens,
                            _ => FinishReason::EndToken,
                        },
                        prompt_tokens: usage.0.unwrap_or(0),
                        output_tokens,
                        prefill_ms: first.duration_since(started).as_secs_f64() * 1000.0,
                        tokens_per_s: if decode_s > 0.0 {
                            output_tokens.saturating_sub(1) as f64 / decode_s
                        } else {
                            0.0
                        },
                        dropped_prompt_tokens: 0,
                        ids: None,
                        text,
                    });
                }
                Chunk::Error(message) => return Err(ServerError::Reported(message)),
                Chunk::Delta {
                    content,
                    finish_reason,
                    completion_tokens,
                    prompt_tokens,
                } => {
                    if finish_reason.is_some() {
                        finish = finish_reason;
                    }
                    usage = (prompt_tokens.or(usage.0), completion_tokens.or(usage.1));
                    if content.is_empty() {
                        continue;
                    }
                    last_token = Instant::now();
                    first_token.get_or_insert(last_token);
                    deltas += 1;
                    text.push_str(&content);
                    if events.send(StreamEvent::Text(content)).is_err() {
                        return Err(ServerError::Truncated);
                    }
                }
            }
        }
    }
}

/// Posts the request; a 429/502/503/504 is retried up to [`MAX_RETRIES`] times after
/// [`backoff`] (the server's Retry-After when it sent one). Nothing has streamed yet, so a
/// retry can never repeat text.
async fn send(inner: &Inner, body: String) -> Result<reqwest::Response, ServerError> {
    let url = inner.url("/chat/completions");
    let mut attempt = 0;
    loop {
        let request = inner
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "text/event-stream")
            .body(body.clone());
        let response = with_key(request, inner.settings.api_key.as_ref())
            .send()
            .await
            .map_err(|error| ServerError::Unreachable(Arc::new(error)))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        if retryable(status) && attempt < MAX_RETRIES {
            let wait = backoff(attempt, retry_after(response.headers()));
            tracing::info!(
                status,
                attempt,
                wait_ms = wait.as_millis() as u64,
                "the model server refused; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
            continue;
        }
        let text = response.text().await.unwrap_or_default();
        let body: String = text.chars().take(300).collect();
        return Err(ServerError::Status { status, body });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::SamplingParams;

    #[test]
    fn the_body_carries_turns_limits_stops_and_sampling() {
        let mut request = GenerateRequest::new(
            "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
            64,
        );
        request.stop = vec!["<|im_end|>".into(), "\n\n".into()];
        request.sampling = SamplingParams::greedy();
        let greedy = body("smol", &request);
        assert_eq!(greedy["model"], "smol");
        assert_eq!(greedy["stream"], true);
        assert_eq!(greedy["max_tokens"], 64);
        assert_eq!(greedy["temperature"], 0.0);
        assert_eq!(greedy["stop"], json!(["<|im_end|>", "\n\n"]));
        assert_eq!(
            greedy["messages"],
            json!([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}])
        );
        assert!(greedy.get("top_k").is_none() && greedy.get("repeat_penalty").is_none());

        request.sampling = SamplingParams {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.9,
            repetition_penalty: 1.1,
            seed: 7,
        };
        let sampled = body("smol", &request);
        assert_eq!(sampled["top_k"], 40);
        assert_eq!(sampled["seed"], 7);
        assert!((sampled["repeat_penalty"].as_f64().unwrap() - 1.1).abs() < 1e-6);
    }
}
