//! The [`Assistant`]: what it holds (backend, settings, prompts, conversations, limits),
//! how it is opened, and its requests outside the question flows: feedback, insights,
//! forgetting a user, reloading the prompts. The flows (`handle`, summaries, drafts,
//! tickets) are in the files beside this one.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use tokio::sync::broadcast;

use super::content::{LoadOptions, Prompts};
use super::conversation::{ConversationStore, SystemClock};
use super::error::AssistantError;
use super::knowledge::ReusingEmbedder;
use super::limits::Limits;
use super::moderation;
use super::moderation::insights::{Insights, Window};
use super::moderator_event::ModeratorEvent;
use crate::backend::SharedBackend;
use crate::config::Config;
use crate::engine::{EngineError, SentenceEmbedder, TextEmbedder};
use crate::store::{FeedbackRecord, Store, UnixMillis, Vote};

/// How often (at most) [`Assistant::handle`] prunes expired conversations and idle limiter
/// state, in a background task.
pub(super) const MAINTENANCE_INTERVAL_MS: i64 = 5 * 60 * 1000;

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
    /// For the admin: what was added, removed and changed, and the new and old versions.
    pub summary: String,
}

/// The assistant; cheap to clone.
#[derive(Clone)]
pub struct Assistant {
    pub(super) backend: SharedBackend,
    pub(super) config: Arc<Config>,
    pub(super) prompts: Arc<Prompts>,
    pub(super) moderator_events: broadcast::Sender<ModeratorEvent>,
    pub(super) conversations: Arc<ConversationStore>,
    pub(super) limits: Arc<Limits>,
    /// When (Unix ms) the next maintenance pass is due.
    pub(super) next_maintenance_ms: Arc<AtomicI64>,
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

    /// The settings it was opened with.
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
