//! shopkeep: a Discord assistant for an online shop's community.
//!
//! - [`engine`]: the language model on ONNX Runtime (the only code that knows it).
//! - [`assistant`]: the platform-neutral core: routing, limits, context, knowledge,
//!   prompts, guard. The terminal chat, the tests and the Discord adapter all drive it.
//! - [`discord`]: the serenity adapter (the only code that knows Discord).
//! - [`store`]: SQLite persistence.
//! - [`config`]: settings from the environment.
//! - [`metrics`]: Prometheus metrics (optional endpoint).
//! - [`bench`]: the `shopkeep bench` measurements.

pub mod assistant;
pub mod bench;
pub mod config;
pub mod discord;
pub mod engine;
pub mod metrics;
pub mod store;
