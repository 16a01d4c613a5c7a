//! Sentence embeddings: texts in, unit-length vectors out, from a BERT-style encoder exported
//! to ONNX (all-MiniLM-L6-v2, prepared by `./scripts/setup.sh embedding-model`).
//!
//! The model directory holds:
//! - `model.onnx`: inputs `input_ids` and `attention_mask`, int64 [batch, seq] (1 = token,
//!   0 = padding; token type ids are all zeros inside the graph); output
//!   `sentence_embedding`, f32 [batch, dimension], mean-pooled over the mask and L2-normalised;
//!   its weights may sit in an external data file beside it (`model.onnx.data` when prepared);
//! - `tokenizer.json`: WordPiece with `[CLS] … [SEP]`, no padding (padding happens here);
//! - `manifest.json`: `{name, family: "bert-embedding", dimension, max_tokens, pooling: "mean",
//!   normalised: true, source}`;
//! - `reference.json` (not read here): sentences with embeddings from an independent numpy
//!   forward pass, used by the tests.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{DynValue, Tensor};
use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use super::model::{MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE};
use super::EngineError;
use crate::config::cache_dir;

/// Directory name of the embedding model inside `cache_dir()/models`.
pub const EMBEDDING_MODEL_DIR_NAME: &str = "all-minilm-l6-v2";

/// Texts per session run; larger inputs are split into runs of this many.
pub const EMBEDDING_BATCH: usize = 32;

/// The `family` an embedding model directory's manifest must declare.
const FAMILY: &str = "bert-embedding";

/// Turns texts into unit-length sentence vectors.
pub trait TextEmbedder: Send + Sync {
    /// Length of every vector [`TextEmbedder::embed`] returns.
    fn dimension(&self) -> usize;

    /// One vector per text, in the order given, each of length [`TextEmbedder::dimension`]
    /// and Euclidean norm 1 (so a dot product is the cosine similarity). An empty slice gives
    /// an empty result. Blocks the calling thread while the model runs.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError>;

    /// Whether the model's vocabulary has `word` (lowercase) as one whole token: a common
    /// word of the model's language. `false` when the model cannot tell.
    fn knows_word(&self, word: &str) -> bool {
        let _ = word;
        false
    }
}

/// `manifest.json` of an embedding model directory.
#[derive(Debug, Clone, Deserialize)]
struct EmbeddingManifest {
    name: String,
    family: String,
    dimension: usize,
    max_tokens: usize,
    pooling: String,
    normalised: bool,
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<String>,
}

/// A sentence-embedding model loaded on ONNX Runtime. Safe to share (`Arc`) across threads
/// and tasks; concurrent calls take turns on the one session.
pub struct SentenceEmbedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    pad_id: u32,
    name: String,
    path: PathBuf,
    dimension: usize,
    max_tokens: usize,
}

impl std::fmt::Debug for SentenceEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentenceEmbedder")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("dimension", &self.dimension)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl SentenceEmbedder {
    /// Where `./scripts/setup.sh embedding-model` prepares the model:
    /// `cache_dir()/models/all-minilm-l6-v2`.
    pub fn default_dir() -> PathBuf {
        cache_dir().join("models").join(EMBEDDING_MODEL_DIR_NAME)
    }

    /// Opens the model directory `dir` (layout in the module doc) with `threads` intra-op
    /// threads (0 lets ONNX Runtime decide). A missing directory or file is
    /// [`EngineError::EmbeddingModelMissing`], naming the path and the setup command.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, EngineError> {
        for required in [
            dir.to_path_buf(),
            dir.join(MANIFEST_FILE),
            dir.join(TOKENIZER_FILE),
            dir.join(MODEL_FILE),
        ] {
            if !required.exists() {
                return Err(EngineError::EmbeddingModelMissing { path: required });
            }
        }
        let manifest = read_manifest(&dir.join(MANIFEST_FILE))?;
        let tokenizer = load_tokenizer(&dir.join(TOKENIZER_FILE), manifest.max_tokens)?;
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(0);
        let model_file = dir.join(MODEL_FILE);
        let session = open_session(&model_file, threads)?;
        Ok(Self {
            session: Mutex::new(session),
            tokenizer,
            pad_id,
            name: manifest.name,
            path: dir.to_path_buf(),
            dimension: manifest.dimension,
            max_tokens: manifest.max_tokens,
        })
    }

    /// The model's name from its manifest (e.g. `all-MiniLM-L6-v2`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tokens (including `[CLS]` and `[SEP]`) a text is cut to; the rest is not seen.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The token ids the model sees for `text`: `[CLS] … [SEP]`, cut to
    /// [`SentenceEmbedder::max_tokens`].
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>, EngineError> {
        self.tokenizer
            .encode_fast(text, true)
            .map(|encoding| encoding.get_ids().to_vec())
            .map_err(|e| EngineError::Tokenize(e.to_string()))
    }

    /// Runs one padded batch; returns its rows in the order of `batch`.
    fn run_batch(&self, batch: &[&Vec<u32>]) -> Result<Vec<Vec<f32>>, EngineError> {
        let padded = PaddedBatch::new(batch, self.pad_id);
        let shape = [padded.rows, padded.width];
        let inputs: Vec<(String, DynValue)> = vec![
            (
                "input_ids".into(),
                Tensor::from_array((shape, padded.input_ids))?.into_dyn(),
            ),
            (
                "attention_mask".into(),
                Tensor::from_array((shape, padded.attention_mask))?.into_dyn(),
            ),
        ];
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.run(inputs)?;
        let value = outputs.get("sentence_embedding").ok_or_else(|| {
            EngineError::BadOutput("the embedding model has no `sentence_embedding` output".into())
        })?;
        let (shape, data) = value.try_extract_tensor::<f32>()?;
        if shape[..] != [padded.rows as i64, self.dimension as i64] {
            return Err(EngineError::BadOutput(format!(
                "`sentence_embedding` has shape {:?}; expected [{}, {}]",
                &shape[..],
                padded.rows,
                self.dimension
            )));
        }
        Ok(data
            .chunks_exact(self.dimension)
            .map(<[f32]>::to_vec)
            .collect())
    }
}

impl TextEmbedder for SentenceEmbedder {
    fn dimension(&self) -> usize {
        self.dimension
    }

    /// Texts are tokenised, sorted by length (so each run pads little), run
    /// [`EMBEDDING_BATCH`] at a time, and returned in the caller's order.
    fn knows_word(&self, word: &str) -> bool {
        self.tokenizer.token_to_id(word).is_some()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> {
        let encoded = texts
            .iter()
            .map(|text| self.token_ids(text))
            .collect::<Result<Vec<_>, _>>()?;
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut vectors = vec![Vec::new(); encoded.len()];
        for chunk in order.chunks(EMBEDDING_BATCH) {
            let batch: Vec<&Vec<u32>> = chunk.iter().map(|&i| &encoded[i]).collect();
            for (&i, vector) in chunk.iter().zip(self.run_batch(&batch)?) {
                vectors[i] = vector;
            }
        }
        Ok(vectors)
    }
}

/// Token rows right-padded to the longest one, flattened row-major for the session.
#[derive(Debug, PartialEq)]
struct PaddedBatch {
    rows: usize,
    width: usize,
    input_ids: Vec<i64>,
    attention_mask: Vec<i64>,
}

impl PaddedBatch {
    fn new(rows: &[&Vec<u32>], pad_id: u32) -> Self {
        let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let mut input_ids = Vec::with_capacity(rows.len() * width);
        let mut attention_mask = Vec::with_capacity(rows.len() * width);
        for row in rows {
            input_ids.extend(row.iter().map(|&id| id as i64));
            input_ids.extend(std::iter::repeat_n(pad_id as i64, width - row.len()));
            attention_mask.extend(std::iter::repeat_n(1, row.len()));
            attention_mask.extend(std::iter::repeat_n(0, width - row.len()));
        }
        Self {
            rows: rows.len(),
            width,
            input_ids,
            attention_mask,
        }
    }
}

fn read_manifest(path: &Path) -> Result<EmbeddingManifest, EngineError> {
    let bad = |reason: String| EngineError::BadManifest {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let manifest: EmbeddingManifest =
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if manifest.family != FAMILY {
        return Err(bad(format!(
            "family is {:?}; a sentence-embedding model must be {FAMILY:?}",
            manifest.family
        )));
    }
    if manifest.pooling != "mean" || !manifest.normalised {
        return Err(bad(format!(
            "pooling {:?}, normalised {}: only mean-pooled, normalised models are supported",
            manifest.pooling, manifest.normalised
        )));
    }
    if manifest.dimension == 0 || manifest.max_tokens < 2 {
        return Err(bad(format!(
            "dimension {} and max_tokens {} must be positive (max_tokens at least 2)",
            manifest.dimension, manifest.max_tokens
        )));
    }
    Ok(manifest)
}

/// The tokenizer with truncation to `max_tokens` (special tokens included) and no padding,
/// whatever the file says.
fn load_tokenizer(path: &Path, max_tokens: usize) -> Result<Tokenizer, EngineError> {
    let bad = |reason: String| EngineError::BadTokenizer {
        path: path.to_path_buf(),
        reason,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| bad(e.to_string()))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..TruncationParams::default()
        }))
        .map_err(|e| bad(e.to_string()))?
        .with_padding(None);
    Ok(tokenizer)
}

/// A CPU session that does not spin between runs: embeddings are occasional work beside the
/// language model, which keeps the cores busy.
fn open_session(model_file: &Path, threads: usize) -> Result<Session, EngineError> {
    let env = super::runtime::environment()?;
    let bad = |reason: String| EngineError::BadModel {
        path: model_file.to_path_buf(),
        reason,
    };
    let mut builder = Session::builder(&env)
        .map_err(|e| bad(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| bad(e.to_string()))?
        .with_inter_threads(1)
        .map_err(|e| bad(e.to_string()))?
        .with_intra_op_spinning(false)
        .map_err(|e| bad(e.to_string()))?;
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| bad(e.to_string()))?;
    }
    let session = builder
        .commit_from_file(model_file)
        .map_err(|e| bad(e.to_string()))?;
    for name in ["input_ids", "attention_mask"] {
        if !session.inputs().iter().any(|input| input.name() == name) {
            return Err(bad(format!("no input `{name}`")));
        }
    }
    if !session
        .outputs()
        .iter()
        .any(|output| output.name() == "sentence_embedding")
    {
        return Err(bad("no output `sentence_embedding`".into()));
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_right_padded_with_a_zero_mask() {
        let short = vec![101, 7, 102];
        let long = vec![101, 7, 8, 9, 102];
        let batch = PaddedBatch::new(&[&short, &long], 0);
        assert_eq!((batch.rows, batch.width), (2, 5));
        assert_eq!(batch.input_ids, vec![101, 7, 102, 0, 0, 101, 7, 8, 9, 102]);
        assert_eq!(batch.attention_mask, vec![1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
    }

    fn dir_with_manifest(manifest: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), manifest).unwrap();
        std::fs::write(dir.path().join(TOKENIZER_FILE), b"{}").unwrap();
        std::fs::write(dir.path().join(MODEL_FILE), b"x").unwrap();
        dir
    }

    #[test]
    fn a_decoder_manifest_is_refused() {
        let dir = dir_with_manifest(r#"{"name":"SmolLM2","family":"llama","context_length":2048}"#);
        let err = SentenceEmbedder::load(dir.path(), 1).unwrap_err();
        assert!(matches!(err, EngineError::BadManifest { .. }), "{err}");
        assert!(err.to_string().contains("manifest.json"), "{err}");
    }

    #[test]
    fn an_unnormalised_model_is_refused() {
        let dir = dir_with_manifest(
            r#"{"name":"e","family":"bert-embedding","dimension":4,"max_tokens":8,"pooling":"cls","normalised":false}"#,
        );
        let err = SentenceEmbedder::load(dir.path(), 1).unwrap_err();
        assert!(err.to_string().contains("normalised"), "{err}");
    }

    #[test]
    fn each_missing_file_is_named_with_the_setup_command() {
        let dir = dir_with_manifest("{}");
        for file in [MANIFEST_FILE, TOKENIZER_FILE, MODEL_FILE] {
            std::fs::rename(dir.path().join(file), dir.path().join("aside")).unwrap();
            let err = SentenceEmbedder::load(dir.path(), 1).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&dir.path().join(file).display().to_string())
                    && text.contains("./scripts/setup.sh embedding-model"),
                "{text}"
            );
            std::fs::rename(dir.path().join("aside"), dir.path().join(file)).unwrap();
        }
    }

    #[test]
    fn the_default_dir_is_in_the_cache() {
        assert!(SentenceEmbedder::default_dir().ends_with("models/all-minilm-l6-v2"));
    }
}
