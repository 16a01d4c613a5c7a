//! Models, Python and prompts the tests use, from the cache `./scripts/test.sh` fills.

use std::path::{Path, PathBuf};

/// A test model (or tokenizer) directory in the cache, which `./scripts/test.sh` builds.
pub fn test_model(name: &str) -> PathBuf {
    let dir = shopkeep::config::cache_dir().join("models").join(name);
    assert!(
        dir.join("model.onnx").is_file() || dir.join("tokenizer.json").is_file(),
        "{} is missing: run ./scripts/test.sh (it builds the test models)",
        dir.display()
    );
    dir
}

/// The Python of the tools' environment (onnxruntime references), which `./scripts/test.sh`
/// creates.
pub fn venv_python() -> PathBuf {
    let python = shopkeep::config::cache_dir().join("venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run ./scripts/test.sh",
        python.display()
    );
    python
}

/// A private copy of the repository's prompts/ folder, deleted when dropped.
pub fn copied_prompts() -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
        dir.path(),
    );
    dir
}

/// The tiny random GPT-2 the bot process runs in the tests.
pub fn model_dir() -> PathBuf {
    test_model("tiny-gpt2")
}

/// The real default model (SmolLM2-135M-Instruct), which `./scripts/setup.sh default-model`
/// prepares; only the opt-in tests use it.
pub fn default_model() -> PathBuf {
    let dir = shopkeep::config::default_model_dir();
    assert!(
        dir.join("model.onnx").is_file(),
        "{} is missing: run ./scripts/setup.sh default-model",
        dir.display()
    );
    dir
}
