//! How the `openai` backend counts tokens: a local tokenizer.json when configured (exact),
//! else the server's own tokenizer endpoint when it has one (llama.cpp and vLLM `/tokenize`,
//! llama-cpp-python `/extras/tokenize`), else [`estimate_tokens`].

use std::path::Path;

use serde_json::json;

use super::{with_key, ApiKey, ServerError};
use crate::backend::estimate_tokens;

/// A server's tokenizer endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenizeApi {
    /// `POST {root}/tokenize` (llama.cpp's server reads `content`, vLLM `prompt`).
    Tokenize,
    /// `POST {root}/extras/tokenize` with `input` (llama-cpp-python).
    Extras,
}

impl TokenizeApi {
    fn url(self, root: &str) -> String {
        match self {
            TokenizeApi::Tokenize => format!("{root}/tokenize"),
            TokenizeApi::Extras => format!("{root}/extras/tokenize"),
        }
    }

    fn body(self, model: &str, text: &str) -> serde_json::Value {
        match self {
            TokenizeApi::Tokenize => {
                json!({"model": model, "content": text, "prompt": text, "add_special": false})
            }
            TokenizeApi::Extras => json!({"model": model, "input": text}),
        }
    }
}

pub(crate) enum TokenCounter {
    Local(Box<tokenizers::Tokenizer>),
    Server { api: TokenizeApi, root: String },
    Estimate,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenCounter::Local(_) => f.write_str("Local"),
            TokenCounter::Server { api, .. } => write!(f, "Server({api:?})"),
            TokenCounter::Estimate => f.write_str("Estimate"),
        }
    }
}

impl TokenCounter {
    pub(crate) fn local(path: &Path) -> Result<Self, ServerError> {
        tokenizers::Tokenizer::from_file(path)
            .map(|tokenizer| TokenCounter::Local(Box::new(tokenizer)))
            .map_err(|error| ServerError::Tokenizer {
                path: path.display().to_string(),
                reason: error.to_string(),
            })
    }

    /// The first tokenizer endpoint of the server at `root` that counts a sample, else the
    /// estimate.
    pub(crate) async fn probe(
        http: &reqwest::Client,
        root: &str,
        model: &str,
        key: Option<&ApiKey>,
    ) -> Self {
        for api in [TokenizeApi::Tokenize, TokenizeApi::Extras] {
            if server_count(http, api, root, model, key, "Hello world")
                .await
                .is_some()
            {
                return TokenCounter::Server {
                    api,
                    root: root.to_string(),
                };
            }
        }
        TokenCounter::Estimate
    }

    /// The count; a server that fails to count gets the estimate instead.
    pub(crate) async fn count(
        &self,
        http: &reqwest::Client,
        model: &str,
        key: Option<&ApiKey>,
        text: &str,
    ) -> usize {
        match self {
            TokenCounter::Local(tokenizer) => tokenizer
                .encode(text, false)
                .map(|encoding| encoding.len())
                .unwrap_or_else(|_| estimate_tokens(text)),
            TokenCounter::Server { api, root } => {
                match server_count(http, *api, root, model, key, text).await {
                    Some(count) => count,
                    None => {
                        tracing::warn!("the server's tokenizer failed; estimating instead");
                        estimate_tokens(text)
                    }
                }
            }
            TokenCounter::Estimate => estimate_tokens(text),
        }
    }
}

async fn server_count(
    http: &reqwest::Client,
    api: TokenizeApi,
    root: &str,
    model: &str,
    key: Option<&ApiKey>,
    text: &str,
) -> Option<usize> {
    let request = http
        .post(api.url(root))
        .header("content-type", "application/json")
        .body(api.body(model, text).to_string());
    let response = with_key(request, key).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    body.get("tokens")
        .and_then(|tokens| tokens.as_array())
        .map(Vec::len)
        .or_else(|| {
            body.get("count")
                .and_then(|c| c.as_u64())
                .map(|c| c as usize)
        })
}
