//! Every way the engine can fail, one variant per cause, each with a message that says
//! what went wrong and what to do about it.

use std::path::PathBuf;

/// Errors from loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "ONNX Runtime library not found (looked at {searched}). Run ./scripts/run.sh once to fetch it into the cache, or set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or newer"
    )]
    RuntimeMissing { searched: String },

    #[error("could not load ONNX Runtime from {path}: {reason}. Set ORT_DYLIB_PATH to a libonnxruntime.so of version 1.31 or newer")]
    RuntimeLoad { path: PathBuf, reason: String },

    #[error("model directory {0} does not exist. Point --model-dir or SHOPKEEP_MODEL_DIR at a folder holding model.onnx and tokenizer.json, or run ./scripts/run.sh to prepare the default model")]
    ModelDirMissing(PathBuf),

    #[error("{path} is missing from the model directory. A model directory holds model.onnx (decoder-only, Optimum \"with past\" layout) and tokenizer.json")]
    ModelFileMissing { path: PathBuf },

    #[error("the sentence-embedding model is not prepared: {path} does not exist. Run ./scripts/setup.sh embedding-model to build it (in the cache's models/all-minilm-l6-v2)")]
    EmbeddingModelMissing { path: PathBuf },

    #[error("manifest {path} is malformed: {reason}")]
    BadManifest { path: PathBuf, reason: String },

    #[error("tokenizer {path} could not be loaded: {reason}")]
    BadTokenizer { path: PathBuf, reason: String },

    #[error("model {path} is not usable: {reason}")]
    BadModel { path: PathBuf, reason: String },

    #[error("tokenizer error: {0}")]
    Tokenize(String),

    #[error("the prompt is empty")]
    EmptyPrompt,

    #[error("the model failed while generating: {0}")]
    Inference(String),

    #[error("the engine has stopped")]
    Stopped,
}

impl From<ort::Error> for EngineError {
    fn from(error: ort::Error) -> Self {
        EngineError::Inference(error.to_string())
    }
}
