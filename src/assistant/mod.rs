//! The assistant core: plain Rust, no Discord, no ONNX Runtime. It turns an [`Inbound`]
//! question into an [`Outcome`]: a streamed answer, a short notice, or silence. The model's
//! words come from a [`Backend`](crate::backend::Backend) (the embedded engine, a server,
//! or scripted text).
//!
//! This file only declares the parts and re-exports the API. The parts depend one way
//! (`tests/boundaries.rs` checks it):
//! - plain data and rules, which know no [`Assistant`]: [`question`], [`knowledge`],
//!   [`guard`], [`content`], [`moderation`], [`limits`], [`policy`], [`conversation`],
//!   [`learning`], and the types in `inbound.rs` ([`Inbound`], [`Role`]), `outcome.rs`
//!   ([`Outcome`], [`Notice`]), `error.rs` ([`AssistantError`]) and `moderator_event.rs`
//!   ([`ModeratorEvent`]);
//! - `service.rs`: the [`Assistant`] itself (what it holds, opening it, feedback, insights,
//!   forgetting a user, reloading the prompts);
//! - the flows, each an `impl Assistant` beside it: `answer.rs` ([`Assistant::handle`]),
//!   `prompt_budget.rs`, `moderator_requests.rs` (summaries, drafts), [`tickets`] and
//!   [`answer_feedback`];
//! - [`eval`], which drives an assistant as an adapter does.

mod answer;
pub mod answer_feedback;
pub mod content;
pub mod conversation;
mod error;
pub mod eval;
pub mod guard;
mod inbound;
pub mod invisible;
pub mod knowledge;
pub mod learning;
pub mod limits;
pub mod moderation;
mod moderator_event;
mod moderator_requests;
mod outcome;
pub mod policy;
mod prompt_budget;
pub mod question;
pub mod reply_check;
mod service;
pub mod shop;
pub mod shorten;
pub mod tickets;

pub use error::AssistantError;
pub use inbound::{Inbound, InboundKind, Role};
pub use moderation::summary::ChannelMessage;
pub use moderator_event::ModeratorEvent;
pub use outcome::{AnswerEvent, FinalAnswer, Notice, Outcome};
pub use service::{load_embedder, Assistant, ReloadReport};
