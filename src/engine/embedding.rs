//! TEMPORARY stand-in until the embed branch lands.
use super::EngineError;
/// Turns texts into unit-length sentence vectors.
pub trait TextEmbedder: Send + Sync {
    fn dimension(&self) -> usize;
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError>;
}
/// TEMPORARY stand-in.
pub struct SentenceEmbedder;
impl SentenceEmbedder {
    pub fn load(_dir: &std::path::Path, _threads: usize) -> Result<Self, EngineError> { unimplemented!() }
}
impl TextEmbedder for SentenceEmbedder {
    fn dimension(&self) -> usize { 384 }
    fn embed(&self, _texts: &[&str]) -> Result<Vec<Vec<f32>>, EngineError> { unimplemented!() }
}
