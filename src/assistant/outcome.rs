//! What the assistant answers with: a streamed answer, a finished reply, a hand-off, a
//! notice, a moderator's summary or draft, or silence. Plain data that each adapter shows
//! in its own way.

use std::fmt;
use std::time::Duration;

use tokio::sync::mpsc;

use super::limits::{limited_notice, LimitScope, BUSY_NOTICE};
use super::moderation::drafts::{Draft, DraftError};
use super::moderation::summary::ChannelSummary;

/// What a user sees when the model failed mid-answer.
pub(super) const GENERATION_FAILED: &str =
    "Sorry, something went wrong on my side. Please try again in a moment.";

/// One streamed step of an answer.
#[derive(Debug, Clone)]
pub enum AnswerEvent {
    /// The whole answer text so far (already guarded); replaces the previous one.
    Partial(String),
    /// The finished answer.
    Final(FinalAnswer),
}

/// A finished answer, ready to post.
#[derive(Debug, Clone, Default)]
pub struct FinalAnswer {
    /// The answer's whole text, guarded.
    pub text: String,
}

/// What the assistant does with an inbound question or a moderator's request. Plain data:
/// the adapter decides how each is shown (Discord markdown, plain terminal text).
pub enum Outcome {
    /// A streamed model answer; the receiver ends after [`AnswerEvent::Final`].
    Answer(mpsc::Receiver<AnswerEvent>),
    /// A finished answer written without the model (a quote of the knowledge, its sources
    /// cited), already guarded.
    Reply(String),
    /// The question was handed to the team: the honest "not sure" reply to post.
    Handoff(String),
    /// A short notice instead of an answer.
    Notice(Notice),
    /// A channel summary for a moderator.
    Summary(ChannelSummary),
    /// A draft for a moderator to edit and post.
    Draft(Draft),
    /// Nothing to post.
    Silent,
}

impl Outcome {
    /// The text a customer is shown in the end: a streamed answer read to its final text
    /// (or its last partial, if the stream ends without one), a reply or hand-off as
    /// written, a notice's text; empty for summaries, drafts and silence.
    pub async fn shown_text(self) -> String {
        match self {
            Outcome::Reply(text) | Outcome::Handoff(text) => text,
            Outcome::Notice(notice) => notice.to_string(),
            Outcome::Silent | Outcome::Summary(_) | Outcome::Draft(_) => String::new(),
            Outcome::Answer(mut events) => {
                let mut text = String::new();
                while let Some(event) = events.recv().await {
                    match event {
                        AnswerEvent::Partial(partial) => text = partial,
                        AnswerEvent::Final(done) => return done.text,
                    }
                }
                text
            }
        }
    }
}

/// Why a short notice is posted instead of an answer; `Display` is the plain text.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// The generation queue is full.
    Busy,
    /// A rate limit refused the question (the first time in its window).
    Limited {
        /// The limit that refused it.
        scope: LimitScope,
        /// How long until the asker may ask again.
        retry_after: Duration,
    },
    /// The question is longer than allowed.
    TooLong {
        /// The question's length, in characters.
        length: usize,
        /// The longest question accepted, in characters.
        max: usize,
    },
    /// The question alone (with the system turn and room for the reply) does not fit the
    /// model's context.
    TooLongForModel,
    /// The model failed mid-answer.
    GenerationFailed,
    /// A prompt could not be rendered; the team has been told (in the log).
    Unavailable,
    /// A summary was asked for a channel with no messages.
    NothingToSummarise,
    /// A draft was asked for a product the catalogue does not have.
    UnknownProduct(DraftError),
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::Busy => f.write_str(BUSY_NOTICE),
            Notice::Limited { scope, retry_after } => {
                f.write_str(&limited_notice(*scope, *retry_after))
            }
            Notice::TooLong { length, max } => write!(
                f,
                "Your question is too long ({length} characters); please keep it under {max}."
            ),
            Notice::TooLongForModel => f.write_str(
                "Your question is too long for me to read in one go; please make it shorter.",
            ),
            Notice::GenerationFailed => f.write_str(GENERATION_FAILED),
            Notice::Unavailable => {
                f.write_str("Sorry, I cannot answer right now; the team has been told.")
            }
            Notice::NothingToSummarise => f.write_str("There are no messages to summarise."),
            Notice::UnknownProduct(error) => write!(f, "{error}"),
        }
    }
}
