//! shopkeep: a Discord assistant for an online shop's community.
//!
//! The library is everything but the command line (`src/main.rs` and `src/cli/`), which
//! drives it; the integration tests and benches use the same API. The layers depend one
//! way, each on those listed after it:
//!
//! - [`discord`]: the serenity adapter (the only code that knows Discord).
//! - [`assistant`]: the platform-neutral core: routing, limits, context, knowledge,
//!   prompts, guard. The terminal chat, the tests and the Discord adapter all drive it.
//! - [`backend`]: what writes the model's words, behind one trait: the embedded engine, an
//!   OpenAI-compatible server, or scripted text for tests.
//! - [`engine`]: the language model on ONNX Runtime (the only code that knows it).
//!
//! Beside the adapters, used by both: [`insights_chart`], the insights chart as a PNG.
//!
//! Beside them, used by all three:
//! - [`lifecycle`]: work in flight and graceful shutdown (the terminal chat and Discord);
//! - [`store`]: SQLite persistence;
//! - [`clock`]: the one source of "now" (Unix milliseconds), replaceable in tests;
//! - [`config`]: settings from the environment, range-checked once at start;
//! - [`logging`]: the log filter, which no level lets show the token;
//! - [`metrics`]: Prometheus metrics (optional endpoint).

#![warn(missing_docs)]
#![warn(unreachable_pub)]

pub mod assistant;
pub mod backend;
pub mod clock;
pub mod config;
pub mod discord;
pub mod engine;
pub mod insights_chart;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod store;
