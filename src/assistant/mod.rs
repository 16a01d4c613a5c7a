//! The assistant core: plain Rust, no Discord, no ONNX Runtime. It turns an [`Inbound`]
//! question into an [`Outcome`]: a streamed answer, a short notice, or silence. The model's
//! words come from a [`Backend`](crate::backend::Backend) (the embedded engine, a server, or scripted text).

mod answer;
pub mod answer_feedback;
pub mod content;
pub mod conversation;
pub mod eval;
pub mod guard;
pub mod invisible;
pub mod knowledge;
pub mod learning;
pub mod limits;
pub mod moderation;
pub mod policy;
mod prompt_budget;
pub mod question;
pub mod reply_check;
pub mod shop;
pub mod shorten;
pub mod tickets;

pub use moderation::summary::ChannelMessage;

use std::fmt;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::backend::SharedBackend;
use crate::config::Config;
use crate::engine::{EngineError, SentenceEmbedder, TextEmbedder};
use crate::store::{FeedbackRecord, Store, StoreError, UnixMillis, Vote};
use content::LoadOptions;
use content::{PromptError, Prompts};
use conversation::{ConversationStore, SystemClock};
use guard::Finding;
use knowledge::ReusingEmbedder;
use limits::{limited_notice, LimitScope, Limits, BUSY_NOTICE};
use moderation::drafts::{Draft, DraftError};
use moderation::insights::{Insights, Window};
use moderation::summary::ChannelSummary;

/// How often (at most) [`Assistant::handle`] prunes expired conversations and idle limiter
/// state, in a background task.
const MAINTENANCE_INTERVAL_MS: i64 = 5 * 60 * 1000;

/// What a user sees when the model failed mid-answer.
const GENERATION_FAILED: &str =
    "Sorry, something went wrong on my side. Please try again in a moment.";

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
        scope: LimitScope,
        retry_after: Duration,
    },
    /// The question is longer than allowed.
    TooLong { length: usize, max: usize },
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

/// The sentence-embedding model `config.embedding_model_dir` names (`None` when it is
/// "off"), wrapped so that a reload embeds only the passages that changed.
pub fn load_embedder(config: &Config) -> Result<Option<Arc<dyn TextEmbedder>>, EngineError> {
    let Some(dir) = &config.embedding_model_dir else {
        return Ok(None);
    };
    let model = SentenceEmbedder::load(dir, config.model.threads)?;
    Ok(Some(Arc::new(ReusingEmbedder::new(Arc::new(model)))))
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
    Reload(#[source] PromptError),
    #[error("storage failed: {0}")]
    Store(#[from] StoreError),
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
    Accept(#[source] learning::AcceptError),
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

/// Something moderators should see, posted by the adapter to the moderator log channel.
#[derive(Debug, Clone)]
pub enum ModeratorEvent {
    /// A shop question the knowledge does not cover: a human should follow up.
    Handoff {
        user_id: String,
        channel_id: Option<String>,
        question: String,
        /// Titles of the closest knowledge entries.
        closest: Vec<String>,
        /// A case for a person (not a gap in the knowledge): a double charge, a missing
        /// parcel, an upset customer.
        needs_person: bool,
        /// The user's earlier turns (question, answer), oldest first.
        conversation: Vec<(String, String)>,
    },
    /// The output guard changed a generated reply.
    GuardFired {
        user_id: String,
        channel_id: Option<String>,
        question: String,
        raw_output: String,
        findings: Vec<Finding>,
    },
}

/// The assistant; cheap to clone.
#[derive(Clone)]
pub struct Assistant {
    backend: SharedBackend,
    config: Arc<Config>,
    prompts: Arc<Prompts>,
    moderator_events: broadcast::Sender<ModeratorEvent>,
    conversations: Arc<ConversationStore>,
    limits: Arc<Limits>,
    /// When (Unix ms) the next maintenance pass is due.
    next_maintenance_ms: Arc<AtomicI64>,
}

impl Assistant {
    /// An assistant whose conversations live in `store` and whose prompts and knowledge
    /// come from `prompts`.
    pub fn new(
        backend: SharedBackend,
        config: Arc<Config>,
        store: Arc<Store>,
        prompts: Arc<Prompts>,
    ) -> Self {
        let conversations =
            ConversationStore::new(store, config.conversation.clone(), Arc::new(SystemClock));
        let limits = Limits::new(&config.limits, backend.model());
        Self {
            backend,
            config,
            prompts,
            moderator_events: broadcast::channel(256).0,
            conversations: Arc::new(conversations),
            limits: Arc::new(limits),
            next_maintenance_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// An assistant with the store opened from `config.db_path` and the prompts loaded
    /// from `config.prompts_dir` (a broken folder is an error naming file and line).
    pub fn open(backend: SharedBackend, config: Arc<Config>) -> Result<Self, AssistantError> {
        let options = LoadOptions {
            embedder: load_embedder(&config).map_err(AssistantError::Embedding)?,
            ..LoadOptions::default()
        };
        let prompts =
            Prompts::load_with(&config.prompts_dir, options).map_err(AssistantError::Prompts)?;
        let store = Arc::new(Store::open(&config.db_path)?);
        Ok(Self::new(backend, config, store, Arc::new(prompts)))
    }

    /// The prompts and knowledge in service.
    pub fn prompts(&self) -> &Prompts {
        &self.prompts
    }

    /// Handoffs and guard findings, for the moderator log. Events sent while nobody
    /// listens are dropped.
    pub fn subscribe_moderator_events(&self) -> broadcast::Receiver<ModeratorEvent> {
        self.moderator_events.subscribe()
    }

    /// What writes the model's words.
    pub fn backend(&self) -> &SharedBackend {
        &self.backend
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Per-user conversation context.
    pub fn conversations(&self) -> &ConversationStore {
        &self.conversations
    }

    /// Rate limits and admission.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The SQLite store (question log, feedback).
    pub fn store(&self) -> &Arc<Store> {
        self.conversations.store()
    }

    /// Records (`added`) or withdraws `user`'s vote on the bot's message `message_id`, in a
    /// blocking task. Withdrawing a vote that was never recorded is a no-op.
    pub async fn record_feedback(
        &self,
        message_id: String,
        user: String,
        vote: Vote,
        added: bool,
    ) -> Result<(), AssistantError> {
        let store = self.store().clone();
        let at = self.conversations.now_ms();
        tokio::task::spawn_blocking(move || {
            if added {
                store.record_feedback(&FeedbackRecord {
                    at,
                    message_id,
                    user,
                    vote,
                })
            } else {
                store.remove_feedback(&message_id, &user)
            }
        })
        .await
        .map_err(AssistantError::Task)??;
        Ok(())
    }

    /// Now, in milliseconds since the Unix epoch, from the assistant's clock (the one its
    /// conversations, question log and feedback are stamped with).
    pub fn now_ms(&self) -> UnixMillis {
        self.conversations.now_ms()
    }

    /// The insights of the last `days` UTC calendar days (today included), read in a
    /// blocking task.
    pub async fn insights(&self, days: u32) -> Result<Insights, AssistantError> {
        let store = self.store().clone();
        let window = Window::last_days(self.conversations.now_ms(), days);
        let insights =
            tokio::task::spawn_blocking(move || moderation::insights::from_store(&store, window))
                .await
                .map_err(AssistantError::Task)??;
        Ok(insights)
    }

    /// Deletes everything stored about the user, from memory and disk, in every place; an
    /// answer of theirs being written meanwhile is still shown but not recorded.
    pub async fn forget(&self, user_id: &str) -> Result<(), AssistantError> {
        self.conversations.forget(user_id).await?;
        self.backend.forget_prefixes(Some(user_id));
        tracing::info!(user = user_id, "conversation forgotten");
        Ok(())
    }

    /// Reloads prompts and knowledge from disk, atomically: the new set is validated fully,
    /// then swapped in; answers already running finish on the old one. On error the old set
    /// stays in service and the error lists each problem with its file and line.
    pub fn reload_prompts(&self) -> Result<ReloadReport, AssistantError> {
        match self.prompts.reload() {
            Ok(report) => {
                // Cached prompt prefixes were rendered from the old templates.
                self.backend.forget_prefixes(None);
                tracing::info!(version = %report.version, "prompts reloaded");
                Ok(ReloadReport {
                    summary: report.to_string(),
                })
            }
            Err(error) => {
                tracing::warn!(%error, "prompt reload refused; the previous prompts stay");
                Err(AssistantError::Reload(error))
            }
        }
    }
}
