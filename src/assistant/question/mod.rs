//! TEMPORARY stand-in until the lang branch lands.
pub mod cues;
pub mod language;
pub mod small_talk;
