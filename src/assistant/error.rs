//! The assistant's errors, and the one place where they become what users see.

use super::content::PromptError;
use super::learning::AcceptError;
use super::outcome::Notice;
use crate::store::StoreError;

/// Failures the assistant reports to the person who asked; [`AssistantError::user_message`]
/// is the one place where errors become what users see.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// A prompt reload was refused; the previous prompts stay in service.
    #[error("prompts could not be reloaded: {0}")]
    Reload(#[source] PromptError),
    /// The store (SQLite) failed.
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
    /// The prompts folder could not be loaded at start; the error lists each problem.
    #[error("the prompts folder could not be loaded:\n{0}")]
    Prompts(#[source] PromptError),
    /// The sentence-embedding model could not be loaded.
    #[error("the sentence-embedding model could not be loaded: {0}")]
    Embedding(#[source] crate::engine::EngineError),
    /// A blocking task (storage) panicked or was cancelled.
    #[error("a background task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// A team answer was not added to the FAQ (the prompts folder is unchanged).
    #[error("the answer was not added to the FAQ: {0}")]
    Accept(#[source] AcceptError),
}

impl AssistantError {
    /// The text shown to the user for this error.
    pub fn user_message(&self) -> String {
        match self {
            AssistantError::Reload(detail) => {
                format!(
                    "The prompts were not reloaded; the previous ones stay in service.\n{detail}"
                )
            }
            AssistantError::Store(_) => {
                "Sorry, I could not update your conversation just now. Please try again later."
                    .to_string()
            }
            AssistantError::Prompts(_) | AssistantError::Embedding(_) => {
                Notice::Unavailable.to_string()
            }
            AssistantError::Task(_) => {
                "Sorry, something went wrong on my side. Please try again in a moment.".to_string()
            }
            AssistantError::Accept(error) => {
                format!("Not added to the FAQ; the prompts folder is unchanged.\n{error}")
            }
        }
    }
}
