//! The moderator tools: channel summaries ([`summary`]), drafts ([`drafts`]), the
//! question-log figures ([`insights`]) and when their daily digest is due ([`digest`]).
//! The parts here are plain (no model): the generating requests are in
//! `assistant/moderator_requests.rs`. Nothing is stored.

pub mod digest;
pub mod drafts;
pub mod insights;
pub mod summary;
