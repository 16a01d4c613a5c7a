//! Measurements of the assistant on question sets: `shopkeep eval intents` (routing to the
//! right FAQ entry) and `shopkeep eval answers` (whole replies through the answer pipeline).

pub mod answers;
pub mod intents;

pub use intents::{evaluate_intents, IntentReport, IntentScore};
