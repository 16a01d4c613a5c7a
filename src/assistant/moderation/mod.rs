//! The moderator tools: channel summaries ([`summary`]), drafts ([`drafts`]) and the
//! question-log figures ([`insights`]). They use the same engine queue and guard as
//! answers, and store nothing.

pub mod drafts;
pub mod insights;
pub mod summary;

use super::{Assistant, AssistantError, GENERATION_FAILED};

impl Assistant {
    /// Generates the whole reply to a rendered prompt; the error is the text to show.
    async fn generate_text(
        &self,
        prompt: Result<String, crate::assistant::content::PromptError>,
    ) -> Result<String, String> {
        let mut texts = self.generate_texts(vec![prompt]).await?;
        Ok(texts.pop().unwrap_or_default())
    }

    /// Generates whole replies to several rendered prompts, queued together, in order; the
    /// first failure is the text to show.
    async fn generate_texts(
        &self,
        prompts: Vec<Result<String, crate::assistant::content::PromptError>>,
    ) -> Result<Vec<String>, String> {
        let prompts = prompts
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                tracing::error!(%error, "could not render a prompt");
                AssistantError::Prompts(error.to_string()).user_message()
            })?;
        let stop =
            crate::assistant::content::PromptSet::stop_strings(self.engine.info().prompt_format);
        let requests = prompts
            .into_iter()
            .map(|prompt| self.request(prompt, stop.clone(), None))
            .collect();
        let mut texts = Vec::new();
        for stream in self.engine.generate_many(requests) {
            match stream.finish().await {
                Ok(generated) => texts.push(generated.text.trim().to_string()),
                Err(error) => {
                    tracing::error!(%error, "generation failed");
                    return Err(GENERATION_FAILED.to_string());
                }
            }
        }
        Ok(texts)
    }
}
