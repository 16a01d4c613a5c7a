//! Finding and loading the ONNX Runtime shared library (the `load-dynamic` way: nothing is
//! downloaded or linked at build time).
//!
//! Resolution order: `ORT_DYLIB_PATH`, then the project cache
//! (`$SHOPKEEP_CACHE_DIR/onnxruntime/libonnxruntime.so`, which `./scripts/run.sh` and
//! `./scripts/test.sh` fill). The library is loaded once per process.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ort::environment::Environment;

use super::{EngineError, OrtError};
use crate::config::cache_dir;

/// File name of the runtime library inside the project cache.
pub const CACHED_LIBRARY: &str = "onnxruntime/libonnxruntime.so";

/// Where the runtime library is expected, in resolution order, without touching the disk.
pub fn library_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(path));
    }
    candidates.push(cache_dir().join(CACHED_LIBRARY));
    candidates
}

/// The first runtime library that exists, or an error naming every place looked at.
///
/// An explicitly set `ORT_DYLIB_PATH` that does not exist is an error of its own: falling
/// back silently would hide a typo.
pub fn resolve_library() -> Result<PathBuf, EngineError> {
    let candidates = library_candidates();
    if let Some(explicit) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let explicit = PathBuf::from(explicit);
        if !explicit.is_file() {
            return Err(EngineError::RuntimeMissing {
                searched: format!("ORT_DYLIB_PATH={}", explicit.display()),
            });
        }
        return Ok(explicit);
    }
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .ok_or_else(|| EngineError::RuntimeMissing {
            searched: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

static ENVIRONMENT: OnceLock<Result<Environment, OrtError>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<Environment, EngineError> {
    let path = resolve_library()?;
    let loaded = ENVIRONMENT.get_or_init(|| load(&path));
    loaded
        .clone()
        .map_err(|source| EngineError::RuntimeLoad { path, source })
}

fn load(path: &Path) -> Result<Environment, OrtError> {
    ort::init_from(path)
        .map_err(|error| Arc::new(ort::Error::wrap(error)))?
        .with_name("shopkeep")
        .build()
        .map_err(Arc::new)
}
