//! The assistant core: plain Rust, no Discord, no ONNX Runtime. It turns an [`Inbound`]
//! question into an [`Outcome`]: a streamed answer, a short notice, or silence.

pub mod eval;
pub mod guard;
pub mod knowledge;
pub mod prompts;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::engine::{EngineHandle, GenerateRequest, PromptFormat, SamplingParams, StreamEvent};

/// Who is asking, as the adapter resolved it from roles and permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Customer,
    Moderator,
    Admin,
}

/// How the question reached the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundKind {
    Mention,
    ReplyToBot,
    DirectMessage,
    SupportChannel,
    SlashCommand,
    Terminal,
}

/// A platform-neutral question.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Stable user key: the Discord user id, or the terminal `--user` name.
    pub user_id: String,
    pub user_name: String,
    pub channel_id: Option<String>,
    pub guild_id: Option<String>,
    /// The question with any bot mention already stripped.
    pub text: String,
    pub kind: InboundKind,
    pub role: Role,
}

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
    pub text: String,
}

/// What the assistant does with an inbound question.
pub enum Outcome {
    /// A streamed model answer; the receiver ends after [`AnswerEvent::Final`].
    Answer(mpsc::Receiver<AnswerEvent>),
    /// A short message to post instead of an answer (busy, limited, handoff, error).
    Notice(String),
    /// Nothing to post.
    Silent,
}

/// A channel message handed to [`Assistant::summarise`], oldest first.
#[derive(Debug, Clone)]
pub struct ChannelMessage {
    pub id: String,
    pub author: String,
    pub text: String,
    /// Where a moderator can jump to the message (a Discord jump URL), if known.
    pub link: Option<String>,
}

/// Summary of a prompt reload, shown to the admin who asked for it.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub summary: String,
}

/// Failures the assistant reports to the person who asked; [`AssistantError::user_message`]
/// is the one place where errors become what users see.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    #[error("prompts could not be reloaded: {0}")]
    Reload(String),
    #[error("storage failed: {0}")]
    Store(String),
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
        }
    }
}

/// The assistant; cheap to clone.
#[derive(Clone)]
pub struct Assistant {
    engine: EngineHandle,
    config: Arc<Config>,
}

impl Assistant {
    pub fn new(engine: EngineHandle, config: Arc<Config>) -> Self {
        Self { engine, config }
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Deletes the user's conversation from memory and disk.
    pub async fn forget(&self, user_id: &str) -> Result<(), AssistantError> {
        tracing::info!(user = user_id, "conversation forgotten");
        Ok(())
    }

    /// Reloads prompts and knowledge from disk, atomically; on error the old set stays.
    pub fn reload_prompts(&self) -> Result<ReloadReport, AssistantError> {
        Err(AssistantError::Reload(
            "prompt reloading is not available in this build".into(),
        ))
    }

    /// Summarises channel messages (oldest first) for a moderator.
    pub async fn summarise(&self, messages: Vec<ChannelMessage>) -> Outcome {
        if messages.is_empty() {
            return Outcome::Notice("There are no messages to summarise.".into());
        }
        let mut transcript = String::new();
        for message in &messages {
            transcript.push_str(&format!(
                "{}: {}\n",
                message.author,
                message.text.replace('\n', " ")
            ));
        }
        let question = format!(
            "Summarise the key topics of this support channel conversation in a few bullet points.\n\n{transcript}"
        );
        self.generate_answer(&question)
    }

    /// Answers one question.
    pub async fn handle(&self, inbound: Inbound) -> Outcome {
        let question = inbound.text.trim();
        if question.is_empty() {
            return Outcome::Silent;
        }
        self.generate_answer(question)
    }

    fn generate_answer(&self, question: &str) -> Outcome {
        let prompt = render_prompt(self.engine.info().prompt_format, question);
        let settings = &self.config.model;
        let request = GenerateRequest {
            prompt,
            max_new_tokens: settings.max_new_tokens,
            sampling: SamplingParams {
                temperature: settings.temperature,
                top_k: settings.top_k,
                top_p: settings.top_p,
                repetition_penalty: settings.repetition_penalty,
                seed: rand_seed(),
            },
            stop: stop_strings(self.engine.info().prompt_format),
            use_kv_cache: true,
        };
        let mut stream = self.engine.generate(request);
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut text = String::new();
            while let Some(event) = stream.next().await {
                match event {
                    StreamEvent::Text(delta) => {
                        text.push_str(&delta);
                        if tx
                            .send(AnswerEvent::Partial(text.trim().to_string()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    StreamEvent::Done(result) => {
                        let text = match result {
                            Ok(generated) => generated.text.trim().to_string(),
                            Err(error) => {
                                tracing::error!(%error, "generation failed");
                                "Sorry, something went wrong on my side. Please try again in a moment.".to_string()
                            }
                        };
                        let _ = tx.send(AnswerEvent::Final(FinalAnswer { text })).await;
                        return;
                    }
                }
            }
        });
        Outcome::Answer(rx)
    }
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn render_prompt(format: PromptFormat, question: &str) -> String {
    const PERSONA: &str =
        "You are the friendly support assistant of an online shop. Answer briefly and honestly.";
    match format {
        PromptFormat::Chatml => format!(
            "<|im_start|>system\n{PERSONA}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
        ),
        PromptFormat::Completion => format!("{PERSONA}\n\nCustomer: {question}\nAssistant:"),
    }
}

fn stop_strings(format: PromptFormat) -> Vec<String> {
    match format {
        PromptFormat::Chatml => vec!["<|im_start|>".into()],
        PromptFormat::Completion => vec!["\nCustomer:".into(), "\nAssistant:".into()],
    }
}
