//! Helpers shared by the integration tests that drive the engine or the binary directly.

use std::path::PathBuf;

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
#[allow(dead_code)] // not every test binary compares against Python
pub fn venv_python() -> PathBuf {
    let python = shopkeep::config::cache_dir().join("venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run ./scripts/test.sh",
        python.display()
    );
    python
}
