//! Server-sent events of a streaming `/v1/chat/completions`: bytes in, chunks out.

use serde::Deserialize;

/// Splits a byte stream into the `data:` payloads of its events. Lines may arrive cut
/// anywhere, even inside a UTF-8 character.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    buffer: Vec<u8>,
    data: String,
}

impl SseDecoder {
    /// The payloads of the events completed by `bytes`.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    events.push(std::mem::take(&mut self.data));
                }
            } else if let Some(value) = line.strip_prefix("data:") {
                if !self.data.is_empty() {
                    self.data.push('\n');
                }
                self.data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
            // `event:`, `id:`, `retry:` and `:` comments carry nothing we use.
        }
        events
    }
}

/// One `data:` payload, read.
#[derive(Debug, PartialEq)]
pub(crate) enum Chunk {
    /// Text (possibly empty), and the finish reason on the last one.
    Delta {
        content: String,
        finish_reason: Option<String>,
        completion_tokens: Option<usize>,
        prompt_tokens: Option<usize>,
    },
    /// `[DONE]`: the stream is over.
    Done,
    /// The server reported an error inside the stream.
    Error(String),
}

#[derive(Deserialize)]
struct RawChunk {
    #[serde(default)]
    choices: Vec<RawChoice>,
    usage: Option<RawUsage>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawChoice {
    delta: Option<RawDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct RawDelta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct RawUsage {
    prompt_tokens: Option<usize>,
    completion_tokens: Option<usize>,
}

/// Reads one payload; `Err` with the reason when it is not a chunk.
pub(crate) fn parse(payload: &str) -> Result<Chunk, String> {
    if payload.trim() == "[DONE]" {
        return Ok(Chunk::Done);
    }
    let raw: RawChunk = serde_json::from_str(payload).map_err(|error| error.to_string())?;
    if let Some(error) = raw.error {
        let message = error
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string());
        return Ok(Chunk::Error(message));
    }
    let choice = raw.choices.into_iter().next();
    let (content, finish_reason) = match choice {
        Some(choice) => (
            choice.delta.and_then(|d| d.content).unwrap_or_default(),
            choice.finish_reason,
        ),
        None => (String::new(), None),
    };
    Ok(Chunk::Delta {
        content,
        finish_reason,
        completion_tokens: raw.usage.as_ref().and_then(|u| u.completion_tokens),
        prompt_tokens: raw.usage.as_ref().and_then(|u| u.prompt_tokens),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_whole_whatever_the_cuts() {
        let stream = "data: {\"a\":\"é\"}\r\n\r\n: keep-alive\n\nevent: x\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        let bytes = stream.as_bytes();
        for cut in 1..bytes.len() {
            let mut decoder = SseDecoder::default();
            let mut events = decoder.push(&bytes[..cut]);
            events.extend(decoder.push(&bytes[cut..]));
            assert_eq!(
                events,
                ["{\"a\":\"é\"}", "one\ntwo", "[DONE]"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn chunks_give_text_finish_usage_errors_and_the_end() {
        assert_eq!(
            parse(r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#),
            Ok(Chunk::Delta {
                content: "Hi".into(),
                finish_reason: None,
                completion_tokens: None,
                prompt_tokens: None
            })
        );
        assert_eq!(
            parse(
                r#"{"choices":[{"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":9,"completion_tokens":4}}"#
            ),
            Ok(Chunk::Delta {
                content: String::new(),
                finish_reason: Some("length".into()),
                completion_tokens: Some(4),
                prompt_tokens: Some(9)
            })
        );
        assert_eq!(
            parse(r#"{"error":{"message":"out of memory"}}"#),
            Ok(Chunk::Error("out of memory".into()))
        );
        assert_eq!(parse(" [DONE]"), Ok(Chunk::Done));
        assert!(parse("not json").is_err());
    }
}
