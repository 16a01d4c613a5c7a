//! The moderator tools: channel summaries ([`summary`]), drafts ([`drafts`]), the
//! question-log figures ([`insights`]) and when their daily digest is due ([`digest`]).
//! They use the same generation queue and guard as answers, and store nothing.

pub mod digest;
pub mod drafts;
pub mod insights;
pub mod summary;

use super::{Assistant, Notice};
use crate::assistant::content::{PromptError, PromptSet};

impl Assistant {
    /// Generates the whole reply to a rendered prompt; the error is the notice to show.
    async fn generate_text(&self, prompt: Result<String, PromptError>) -> Result<String, Notice> {
        let mut texts = self.generate_texts(vec![prompt]).await?;
        Ok(texts.pop().unwrap_or_default())
    }

    /// Generates whole replies to several rendered prompts, queued together, in order; the
    /// first failure is the notice to show.
    async fn generate_texts(
        &self,
        prompts: Vec<Result<String, PromptError>>,
    ) -> Result<Vec<String>, Notice> {
        let prompts = prompts
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                tracing::error!(%error, "could not render a prompt");
                Notice::Unavailable
            })?;
        let stop = PromptSet::stop_strings(self.backend.model().prompt_format);
        let requests = prompts
            .into_iter()
            .map(|prompt| self.request(prompt, stop.clone(), None))
            .collect();
        let mut texts = Vec::new();
        for stream in self.backend.generate_many(requests) {
            match stream.finish().await {
                Ok(generated) => texts.push(generated.text.trim().to_string()),
                Err(error) => {
                    tracing::error!(%error, "generation failed");
                    return Err(Notice::GenerationFailed);
                }
            }
        }
        Ok(texts)
    }
}
