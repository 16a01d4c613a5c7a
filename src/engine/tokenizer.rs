//! Text <-> token ids, and incremental detokenisation that never emits half a character.

use std::path::Path;

use super::EngineError;

/// A loaded `tokenizer.json`.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl TextTokenizer {
    /// Loads a `tokenizer.json`; [`EngineError::BadTokenizer`] names the file and the reason.
    pub fn from_file(path: &Path) -> Result<Self, EngineError> {
        let inner =
            tokenizers::Tokenizer::from_file(path).map_err(|e| EngineError::BadTokenizer {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(Self { inner })
    }

    /// Encodes text as the model sees it: special tokens written in the text (such as
    /// `<|im_start|>`) become their ids; nothing (no BOS) is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        self.inner
            .encode_fast(text, false)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| EngineError::Tokenize(e.to_string()))
    }

    /// Decodes ids to text, leaving special tokens out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, EngineError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| EngineError::Tokenize(e.to_string()))
    }

    /// The id of a token written exactly as in the vocabulary (e.g. `<|endoftext|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Tokens in the vocabulary, added special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Number of tokens `text` encodes to; 0 when it cannot be encoded.
    pub fn count(&self, text: &str) -> usize {
        self.encode(text).map(|ids| ids.len()).unwrap_or(0)
    }
}

/// Turns a growing list of generated ids into text deltas.
///
/// Contract: the concatenation of every delta returned by [`StreamDecoder::push`] and
/// [`StreamDecoder::finish`] equals the decode of all ids, and no delta ends inside a UTF-8
/// character (byte-level BPE tokens can split one, which decodes to U+FFFD until the rest
/// arrives).
#[derive(Debug, Default)]
pub struct StreamDecoder {
    ids: Vec<u32>,
    emitted: String,
}

impl StreamDecoder {
    /// A decoder with no ids yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one id; returns the text that became complete, possibly empty.
    pub fn push(&mut self, tokenizer: &TextTokenizer, id: u32) -> Result<String, EngineError> {
        self.ids.push(id);
        let text = tokenizer.decode(&self.ids)?;
        if text.ends_with('\u{FFFD}') || !text.starts_with(&self.emitted) {
            return Ok(String::new());
        }
        let delta = text[self.emitted.len()..].to_string();
        self.emitted = text;
        Ok(delta)
    }

    /// The text still held back, e.g. a trailing incomplete character at the end.
    pub fn finish(&mut self, tokenizer: &TextTokenizer) -> Result<String, EngineError> {
        let text = tokenizer.decode(&self.ids)?;
        let delta = match text.strip_prefix(self.emitted.as_str()) {
            Some(rest) => rest.to_string(),
            None => String::new(),
        };
        self.emitted.push_str(&delta);
        Ok(delta)
    }

    /// All text emitted so far.
    pub fn text(&self) -> &str {
        &self.emitted
    }
}
