//! The model directory contract: `model.onnx` + `tokenizer.json` + an optional
//! `manifest.json` describing how to talk to the model. `model.onnx` may keep its weights in
//! an ONNX external data file beside it (the prepared models use `model.onnx.data`); ONNX
//! Runtime resolves it and names it when it is missing.
//!
//! A directory with only the two required files is a GPT-2-style completion model whose end
//! token is `<|endoftext|>`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::EngineError;
pub use crate::backend::PromptFormat;

pub(crate) const MODEL_FILE: &str = "model.onnx";
pub(crate) const TOKENIZER_FILE: &str = "tokenizer.json";
pub(crate) const MANIFEST_FILE: &str = "manifest.json";

/// The architecture family; decides defaults where the manifest is silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFamily {
    /// GPT-2 style: a completion model ending at `<|endoftext|>` (the default).
    Gpt2,
    /// Llama-style decoders (SmolLM2 is one).
    Llama,
    #[serde(other)]
    /// Any other family the manifest names.
    Other,
}

/// The model graph's input contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelLayout {
    /// Optimum's "text-generation-with-past": `attention_mask`, `position_ids`, and a cache
    /// that grows by one `Concat` per step (what users' own exports have).
    #[default]
    Optimum,
    /// ONNX Runtime's fused operators with a key/value buffer shared in place between steps
    /// (`tools/llama_fused.py`; see `engine/fused.rs`).
    Fused,
}

/// `manifest.json`, every field optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The model's name (default: the directory's name).
    pub name: Option<String>,
    /// The architecture family (default [`ModelFamily::Gpt2`]).
    pub family: Option<ModelFamily>,
    /// How prompts are rendered (default [`PromptFormat::Completion`]).
    pub prompt_format: Option<PromptFormat>,
    /// Tokens that end a generation (default `<|endoftext|>`).
    pub end_tokens: Option<Vec<String>>,
    /// Positions the model holds; it wins over the ONNX metadata's value.
    pub context_length: Option<usize>,
    /// Free text: where the weights come from and under which license.
    pub source: Option<String>,
    /// `fp32`, `int8`, … informational.
    pub weights: Option<String>,
    /// The graph's input contract; `optimum` when absent. The engine checks it against the
    /// graph's inputs.
    pub layout: Option<ModelLayout>,
}

/// A model directory whose required files exist and whose manifest parsed.
#[derive(Debug, Clone)]
pub struct ModelDir {
    /// The directory.
    pub path: PathBuf,
    /// Its manifest (all defaults when there is no `manifest.json`).
    pub manifest: Manifest,
}

impl ModelDir {
    /// Checks the directory's files and reads the manifest; does not load the model.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        if !path.is_dir() {
            return Err(EngineError::ModelDirMissing(path.to_path_buf()));
        }
        for file in [MODEL_FILE, TOKENIZER_FILE] {
            let required = path.join(file);
            if !required.is_file() {
                return Err(EngineError::ModelFileMissing { path: required });
            }
        }
        let manifest_path = path.join(MANIFEST_FILE);
        let manifest = if manifest_path.is_file() {
            let text =
                std::fs::read_to_string(&manifest_path).map_err(|e| EngineError::BadManifest {
                    path: manifest_path.clone(),
                    reason: e.to_string(),
                })?;
            serde_json::from_str(&text).map_err(|e| EngineError::BadManifest {
                path: manifest_path.clone(),
                reason: e.to_string(),
            })?
        } else {
            Manifest::default()
        };
        Ok(Self {
            path: path.to_path_buf(),
            manifest,
        })
    }

    /// The ONNX model, `model.onnx`.
    pub fn model_file(&self) -> PathBuf {
        self.path.join(MODEL_FILE)
    }

    /// The tokenizer, `tokenizer.json`.
    pub fn tokenizer_file(&self) -> PathBuf {
        self.path.join(TOKENIZER_FILE)
    }

    /// The manifest's family, else [`ModelFamily::Gpt2`].
    pub fn family(&self) -> ModelFamily {
        self.manifest.family.unwrap_or(ModelFamily::Gpt2)
    }

    /// The manifest's prompt format, else [`PromptFormat::Completion`].
    pub fn prompt_format(&self) -> PromptFormat {
        self.manifest
            .prompt_format
            .unwrap_or(PromptFormat::Completion)
    }

    /// The manifest's end tokens, else `<|endoftext|>`.
    pub fn end_tokens(&self) -> Vec<String> {
        self.manifest
            .end_tokens
            .clone()
            .unwrap_or_else(|| vec!["<|endoftext|>".to_string()])
    }

    /// The manifest's name, else the directory's name (else `model`).
    pub fn name(&self) -> String {
        self.manifest.name.clone().unwrap_or_else(|| {
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".to_string())
        })
    }
}

/// Everything callers need to know about a loaded model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// The model's name ([`ModelDir::name`]).
    pub name: String,
    /// The model directory it was loaded from.
    pub path: PathBuf,
    /// The architecture family.
    pub family: ModelFamily,
    /// How prompts for it are rendered.
    pub prompt_format: PromptFormat,
    /// Token ids that end a generation.
    pub end_token_ids: Vec<u32>,
    /// The model's position limit: prompt plus generated tokens never exceed it.
    pub context_length: usize,
    /// Decoder layers.
    pub layers: usize,
    /// Key/value heads per layer.
    pub kv_heads: usize,
    /// Width of one head's key or value vector.
    pub head_dim: usize,
    /// Tokens in the vocabulary (the logits' width).
    pub vocab_size: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_is_named() {
        let err = ModelDir::open(Path::new("/nonexistent/shopkeep-model")).unwrap_err();
        assert!(matches!(err, EngineError::ModelDirMissing(_)));
        assert!(err.to_string().contains("/nonexistent/shopkeep-model"));
    }

    #[test]
    fn missing_tokenizer_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MODEL_FILE), b"x").unwrap();
        let err = ModelDir::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn two_files_are_a_gpt2_completion_model() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MODEL_FILE), b"x").unwrap();
        std::fs::write(dir.path().join(TOKENIZER_FILE), b"{}").unwrap();
        let model = ModelDir::open(dir.path()).unwrap();
        assert_eq!(model.family(), ModelFamily::Gpt2);
        assert_eq!(model.prompt_format(), PromptFormat::Completion);
        assert_eq!(model.end_tokens(), vec!["<|endoftext|>".to_string()]);
    }

    #[test]
    fn malformed_manifest_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MODEL_FILE), b"x").unwrap();
        std::fs::write(dir.path().join(TOKENIZER_FILE), b"{}").unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), b"{\"family\": 3}").unwrap();
        let err = ModelDir::open(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("manifest.json") && text.contains("line 1"),
            "{text}"
        );
    }

    #[test]
    fn chatml_manifest_parses() {
        let manifest: Manifest = serde_json::from_str(
            r#"{"name":"SmolLM2","family":"llama","prompt_format":"chatml","end_tokens":["<|im_end|>"],"context_length":2048}"#,
        )
        .unwrap();
        assert_eq!(manifest.family, Some(ModelFamily::Llama));
        assert_eq!(manifest.prompt_format, Some(PromptFormat::Chatml));
    }
}
