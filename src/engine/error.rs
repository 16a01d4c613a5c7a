//! Every way the engine can fail, one variant per cause, each with a message that says
//! what went wrong and what to do about it.

#![warn(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;

/// An error of ONNX Runtime, shared: one failed batch step ends every sequence in it, and
/// each gets the same cause.
pub type OrtError = Arc<ort::Error>;

/// Errors from loading or running a model.
///
/// Causes from ONNX Runtime and the operating system stay attached as the
/// [`source`](std::error::Error::source); the message repeats them, so a log line that shows
/// only the message still says what happened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// No runtime library where it was looked for.
    #[error(
        "ONNX Runtime library not found (looked at {searched}). Run ./scripts/run.sh once to fetch it into the cache, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or newer"
    )]
    RuntimeMissing {
        /// The places looked at, in order.
        searched: String,
    },

    /// The runtime library is there but could not be loaded.
    #[error("could not load ONNX Runtime from {path}: {source}. Set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or newer")]
    RuntimeLoad {
        /// The library file.
        path: PathBuf,
        /// What ONNX Runtime said.
        #[source]
        source: OrtError,
    },

    /// The model directory does not exist.
    #[error("model directory {0} does not exist. Point --model-dir or SHOPKEEP_MODEL_DIR at a folder holding model.onnx and tokenizer.json, or run ./scripts/run.sh to prepare the default model")]
    ModelDirMissing(PathBuf),

    /// A required file is not in the model directory.
    #[error("{path} is missing from the model directory. A model directory holds model.onnx (decoder-only, Optimum \"with past\" layout) and tokenizer.json")]
    ModelFileMissing {
        /// The missing file.
        path: PathBuf,
    },

    /// The sentence-embedding model directory (or one of its files) is missing.
    #[error("the sentence-embedding model is not prepared: {path} does not exist. Run ./scripts/setup.sh embedding-model to build it (in the cache's models/all-minilm-l6-v2)")]
    EmbeddingModelMissing {
        /// The missing directory or file.
        path: PathBuf,
    },

    /// `manifest.json` could not be read or parsed.
    #[error("manifest {path} is malformed: {reason}")]
    BadManifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// `tokenizer.json` could not be loaded.
    #[error("tokenizer {path} could not be loaded: {reason}")]
    BadTokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// What the tokenizers library said.
        reason: String,
    },

    /// ONNX Runtime could not open the model file.
    #[error("model {path} could not be loaded by ONNX Runtime: {source}")]
    SessionLoad {
        /// The model file.
        path: PathBuf,
        /// What ONNX Runtime said.
        #[source]
        source: OrtError,
    },

    /// The model opened, but its inputs or outputs are not the decoder layout we run.
    #[error("model {path} is not usable: {reason}")]
    BadModel {
        /// The model file.
        path: PathBuf,
        /// What does not match.
        reason: String,
    },

    /// Text could not be turned into tokens, or tokens into text.
    #[error("tokenizer error: {0}")]
    Tokenize(String),

    /// Nothing to generate from.
    #[error("the prompt is empty")]
    EmptyPrompt,

    /// ONNX Runtime failed while running the model.
    #[error("the model failed while generating: {0}")]
    Inference(#[source] OrtError),

    /// The model ran but gave outputs we cannot use.
    #[error("the model gave unusable outputs: {0}")]
    BadOutput(String),

    /// The engine's worker thread could not be started.
    #[error("could not start the engine thread: {0}")]
    Thread(#[source] Arc<std::io::Error>),

    /// The engine's worker has stopped, so the request was not run.
    #[error("the engine has stopped")]
    Stopped,
}

impl From<ort::Error> for EngineError {
    fn from(error: ort::Error) -> Self {
        EngineError::Inference(Arc::new(error))
    }
}
