//! The assistant core: plain Rust, no Discord, no ONNX Runtime. It turns an [`Inbound`]
//! question into an [`Outcome`]: a streamed answer, a short notice, or silence.

pub mod conversation;
pub mod limits;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::Config;
use crate::engine::{
    EngineHandle, GenerateRequest, GenerationStream, PromptFormat, SamplingParams, StreamEvent,
};
use crate::metrics::{Refusal, METRICS};
use crate::store::{QuestionOutcome, QuestionRecord, Store, StoreError};
use conversation::{
    newest_turns_within_budget, ConversationStore, SystemClock, Turn, UserTurnGuard,
};
use limits::{limited_notice, Asker, Limits, Verdict, BUSY_NOTICE};

/// How often (at most) [`Assistant::handle`] prunes expired conversations and idle limiter
/// state, in a background task.
const MAINTENANCE_INTERVAL_MS: i64 = 5 * 60 * 1000;

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
    Store(#[from] StoreError),
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

/// Shop knowledge retrieved for a question, rendered into the prompt.
///
/// Hook for the knowledge module: [`Assistant::retrieve_facts`] returns none yet. The
/// facts' tokens count against the prompt budget before the history does.
#[derive(Debug, Clone, Default)]
pub struct RetrievedFacts {
    /// Facts as rendered into the prompt; empty when there are none.
    pub text: String,
    /// The knowledge entry the question was routed to.
    pub entry_id: Option<String>,
    /// Its intent tag.
    pub intent: Option<String>,
    /// Retrieval confidence in [0, 1].
    pub confidence: Option<f32>,
}

/// The assistant; cheap to clone.
#[derive(Clone)]
pub struct Assistant {
    engine: EngineHandle,
    config: Arc<Config>,
    conversations: Arc<ConversationStore>,
    limits: Arc<Limits>,
    /// When (Unix ms) the next maintenance pass is due.
    next_maintenance_ms: Arc<AtomicI64>,
}

impl Assistant {
    /// An assistant whose conversations live in `store`.
    pub fn new(engine: EngineHandle, config: Arc<Config>, store: Arc<Store>) -> Self {
        let conversations =
            ConversationStore::new(store, config.conversation.clone(), Arc::new(SystemClock));
        let limits = Limits::new(&config.limits);
        Self {
            engine,
            config,
            conversations: Arc::new(conversations),
            limits: Arc::new(limits),
            next_maintenance_ms: Arc::new(AtomicI64::new(0)),
        }
    }

    /// An assistant with the store opened from `config.db_path`.
    pub fn open(engine: EngineHandle, config: Arc<Config>) -> Result<Self, AssistantError> {
        let store = Arc::new(Store::open(&config.db_path)?);
        Ok(Self::new(engine, config, store))
    }

    pub fn engine(&self) -> &EngineHandle {
        &self.engine
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

    /// Deletes everything stored about the user, from memory and disk; waits for a turn of
    /// theirs in flight to finish first.
    pub async fn forget(&self, user_id: &str) -> Result<(), AssistantError> {
        self.conversations.forget(user_id).await?;
        self.engine.forget_prefixes(Some(user_id));
        tracing::info!(user = user_id, "conversation forgotten");
        Ok(())
    }

    /// Reloads prompts and knowledge from disk, atomically; on error the old set stays.
    pub fn reload_prompts(&self) -> Result<ReloadReport, AssistantError> {
        Err(AssistantError::Reload(
            "prompt reloading is not available in this build".into(),
        ))
    }

    /// Summarises channel messages (oldest first) for a moderator. Takes a place in the
    /// generation queue like any question.
    pub async fn summarise(&self, messages: Vec<ChannelMessage>) -> Outcome {
        if messages.is_empty() {
            return Outcome::Notice("There are no messages to summarise.".into());
        }
        let Ok(permit) = self.limits.try_admit() else {
            return Outcome::Notice(BUSY_NOTICE.into());
        };
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
        let prompt = render_prompt(self.engine.info().prompt_format, "", &[], &question);
        let stream = self.engine.generate(self.request(prompt, None));
        Outcome::Answer(stream_answer(stream, move |_| drop(permit)))
    }

    /// Answers one question.
    ///
    /// Flow: rate limits (first refusal in a window: a notice; later ones: silence) ->
    /// length check -> admission (queue full: busy notice) -> the user's turn lock -> facts
    /// and token-budgeted history -> generation. The answer streams from a task that records
    /// the turn and logs the question *before* sending [`AnswerEvent::Final`], then releases
    /// the turn lock and the queue place.
    ///
    /// Ordering contract: this returns only once it holds the user's turn lock, so an
    /// adapter that awaits `handle` for one message before calling it for the next gets
    /// that user's answers in order, each seeing the previous turn; other users proceed
    /// concurrently. Consume (or drop) each returned answer stream on its own (e.g. in a
    /// spawned task): the user's next `handle` waits until this answer has finished, so
    /// awaiting it before reading this stream would wait forever.
    pub async fn handle(&self, inbound: Inbound) -> Outcome {
        let question = inbound.text.trim().to_string();
        if question.is_empty() {
            return Outcome::Silent;
        }
        self.maintain_if_due();
        if let Some(refusal) = self.refuse_if_limited(&inbound, &question) {
            return refusal;
        }
        if let Some(notice) = self.refuse_if_too_long(&question) {
            return Outcome::Notice(notice);
        }
        let Ok(permit) = self.limits.try_admit() else {
            METRICS.refusal(Refusal::Busy);
            self.log_question(
                &inbound,
                &question,
                &RetrievedFacts::default(),
                QuestionOutcome::Busy,
            );
            return Outcome::Notice(BUSY_NOTICE.into());
        };
        let turn = self.conversations.lock_user(&inbound.user_id).await;
        let facts = self.retrieve_facts(&question);
        let history = self.history(&turn);
        let prompt = self.build_prompt(&question, &facts, &history);
        let request = self.request(prompt, Some(inbound.user_id.clone()));
        let stream = self.engine.generate(request);
        let assistant = self.clone();
        Outcome::Answer(stream_answer(stream, move |answer| {
            assistant.finish_turn(&turn, &inbound, &question, &facts, answer);
            drop(turn);
            drop(permit);
        }))
    }

    /// `Some(outcome)` when a limit refuses the question: a notice the first time in the
    /// window, silence after that.
    fn refuse_if_limited(&self, inbound: &Inbound, question: &str) -> Option<Outcome> {
        let asker = Asker {
            user_id: &inbound.user_id,
            channel_id: inbound.channel_id.as_deref(),
            role: inbound.role,
        };
        let Verdict::Limited {
            scope,
            retry_after,
            notify,
        } = self.limits.check(asker)
        else {
            return None;
        };
        METRICS.refusal(Refusal::Limited);
        self.log_question(
            inbound,
            question,
            &RetrievedFacts::default(),
            QuestionOutcome::Limited,
        );
        Some(if notify {
            Outcome::Notice(limited_notice(scope, retry_after))
        } else {
            Outcome::Silent
        })
    }

    fn refuse_if_too_long(&self, question: &str) -> Option<String> {
        let max = self.config.limits.max_question_chars;
        let length = question.chars().count();
        (length > max).then(|| {
            METRICS.refusal(Refusal::TooLong);
            format!("Your question is too long ({length} characters); please keep it under {max}.")
        })
    }

    /// Shop facts for the question. Hook for the knowledge module; none yet.
    fn retrieve_facts(&self, _question: &str) -> RetrievedFacts {
        RetrievedFacts::default()
    }

    /// The user's recent turns; on a storage error, none (the question is still answered).
    fn history(&self, turn: &UserTurnGuard) -> Vec<Turn> {
        self.conversations.history(turn).unwrap_or_else(|error| {
            tracing::error!(%error, user = turn.user(), "could not load the conversation");
            Vec::new()
        })
    }

    /// The prompt with as many of the newest history turns as fit the model's context
    /// minus the reply room (`max_new_tokens`); see [`prompt_within_budget`].
    fn build_prompt(&self, question: &str, facts: &RetrievedFacts, history: &[Turn]) -> String {
        let info = self.engine.info();
        let tokenizer = self.engine.tokenizer();
        let room = info
            .context_length
            .saturating_sub(self.config.model.max_new_tokens);
        prompt_within_budget(
            info.prompt_format,
            &facts.text,
            history,
            question,
            room,
            &|text| tokenizer.count(text),
        )
    }

    /// A generation request; `prefix_cache_key` (the user id for conversations) lets the
    /// engine reuse the keys and values of the previous turn's prompt prefix.
    fn request(&self, prompt: String, prefix_cache_key: Option<String>) -> GenerateRequest {
        let settings = &self.config.model;
        GenerateRequest {
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
            prefix_cache_key,
        }
    }

    /// Records the turn (when the generation succeeded) and logs the question.
    fn finish_turn(
        &self,
        turn: &UserTurnGuard,
        inbound: &Inbound,
        question: &str,
        facts: &RetrievedFacts,
        answer: Option<&str>,
    ) {
        let outcome = match answer {
            Some(answer) => {
                if let Err(error) = self.conversations.record_turn(turn, question, answer) {
                    tracing::error!(%error, user = turn.user(), "could not record the turn");
                }
                QuestionOutcome::Answered
            }
            None => QuestionOutcome::Failed,
        };
        self.log_question(inbound, question, facts, outcome);
    }

    fn log_question(
        &self,
        inbound: &Inbound,
        question: &str,
        facts: &RetrievedFacts,
        outcome: QuestionOutcome,
    ) {
        let record = QuestionRecord {
            at: self.conversations.now_ms(),
            user: inbound.user_id.clone(),
            channel_id: inbound.channel_id.clone(),
            question: question.to_string(),
            entry_id: facts.entry_id.clone(),
            intent: facts.intent.clone(),
            confidence: facts.confidence,
            outcome,
        };
        if let Err(error) = self.store().log_question(&record) {
            tracing::warn!(%error, "could not log the question");
        }
    }

    /// Every [`MAINTENANCE_INTERVAL_MS`], prunes limiter state and expired conversations in
    /// a blocking task (the first call after start prunes at once).
    fn maintain_if_due(&self) {
        let now = self.conversations.now_ms();
        let due = self.next_maintenance_ms.load(Ordering::Relaxed);
        if now < due
            || self
                .next_maintenance_ms
                .compare_exchange(
                    due,
                    now + MAINTENANCE_INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let conversations = self.conversations.clone();
        let limits = self.limits.clone();
        tokio::task::spawn_blocking(move || {
            limits.prune();
            match conversations.prune_expired(now) {
                Ok(report) => tracing::debug!(?report, "pruned expired conversations"),
                Err(error) => tracing::warn!(%error, "could not prune expired conversations"),
            }
        });
    }
}

/// Streams the generation as [`AnswerEvent`]s. On the end, `on_finished` runs with the
/// answer (`None` when the generation failed) *before* [`AnswerEvent::Final`] is sent; if
/// the receiver goes away first, the generation is cancelled and `on_finished` is dropped
/// without running.
fn stream_answer<F>(mut stream: GenerationStream, on_finished: F) -> mpsc::Receiver<AnswerEvent>
where
    F: FnOnce(Option<&str>) + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let task = async move {
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
                        Ok(generated) => {
                            METRICS.generation(
                                generated.output_ids.len(),
                                generated.prefill_ms,
                                generated.tokens_per_s,
                            );
                            let answer = generated.text.trim().to_string();
                            on_finished(Some(&answer));
                            answer
                        }
                        Err(error) => {
                            METRICS.refusal(Refusal::Error);
                            tracing::error!(%error, "generation failed");
                            on_finished(None);
                            GENERATION_FAILED.to_string()
                        }
                    };
                    let _ = tx.send(AnswerEvent::Final(FinalAnswer { text })).await;
                    return;
                }
            }
        }
        // The engine went away without a result: a failure, answered with the apology.
        METRICS.refusal(Refusal::Error);
        tracing::error!("generation ended without a result");
        on_finished(None);
        let text = GENERATION_FAILED.to_string();
        let _ = tx.send(AnswerEvent::Final(FinalAnswer { text })).await;
    };
    // The caller's span (the adapter's guild/channel/user ids) stays on the task's logs.
    tokio::spawn(tracing::Instrument::in_current_span(task));
    rx
}

/// The apology a user gets when the generation fails.
const GENERATION_FAILED: &str =
    "Sorry, something went wrong on my side. Please try again in a moment.";

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The prompt with the newest history turns that fit in `room` tokens, counted by
/// `count_tokens`. The persona, facts and question always go in; history turns go oldest
/// first out. The result never exceeds `room` unless the prompt without history already
/// does.
fn prompt_within_budget(
    format: PromptFormat,
    facts: &str,
    history: &[Turn],
    question: &str,
    room: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> String {
    let fixed = count_tokens(&render_prompt(format, facts, &[], question));
    let turn_tokens = |turn: &Turn| count_tokens(&render_turn(format, turn));
    let mut kept = newest_turns_within_budget(history, room.saturating_sub(fixed), &turn_tokens);
    // Token counts of parts need not add up to the count of the whole; check and trim.
    loop {
        let prompt = render_prompt(format, facts, kept, question);
        if kept.is_empty() || count_tokens(&prompt) <= room {
            return prompt;
        }
        kept = &kept[1..];
    }
}

const PERSONA: &str =
    "You are the friendly support assistant of an online shop. Answer briefly and honestly.";

/// The prompt: persona (+ facts), the history turns oldest first, then the question.
fn render_prompt(format: PromptFormat, facts: &str, history: &[Turn], question: &str) -> String {
    let mut prompt = match format {
        PromptFormat::Chatml => format!("<|im_start|>system\n{PERSONA}"),
        PromptFormat::Completion => PERSONA.to_string(),
    };
    if !facts.is_empty() {
        prompt.push_str(&format!("\n\nShop facts:\n{facts}"));
    }
    prompt.push_str(match format {
        PromptFormat::Chatml => "<|im_end|>\n",
        PromptFormat::Completion => "\n\n",
    });
    for turn in history {
        prompt.push_str(&render_turn(format, turn));
    }
    prompt.push_str(&match format {
        PromptFormat::Chatml => {
            format!("<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n")
        }
        PromptFormat::Completion => format!("Customer: {question}\nAssistant:"),
    });
    prompt
}

/// One earlier turn as it appears in the prompt.
fn render_turn(format: PromptFormat, turn: &Turn) -> String {
    match format {
        PromptFormat::Chatml => format!(
            "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n{}<|im_end|>\n",
            turn.question, turn.answer
        ),
        PromptFormat::Completion => {
            format!("Customer: {}\nAssistant: {}\n", turn.question, turn.answer)
        }
    }
}

fn stop_strings(format: PromptFormat) -> Vec<String> {
    match format {
        PromptFormat::Chatml => vec!["<|im_start|>".into()],
        PromptFormat::Completion => vec!["\nCustomer:".into(), "\nAssistant:".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(question: &str, answer: &str) -> Turn {
        Turn {
            at: 0,
            question: question.into(),
            answer: answer.into(),
        }
    }

    #[test]
    fn the_prompt_keeps_the_newest_turns_within_the_room() {
        let history: Vec<Turn> = (0..10)
            .map(|i| turn(&format!("question {i}"), &format!("answer {i}")))
            .collect();
        let bytes = |text: &str| text.len();
        for format in [PromptFormat::Chatml, PromptFormat::Completion] {
            let bare = render_prompt(format, "Facts.", &[], "now?").len();
            let one_turn = render_turn(format, &history[9]).len();
            let room = bare + 3 * one_turn + one_turn / 2;
            let prompt = prompt_within_budget(format, "Facts.", &history, "now?", room, &bytes);
            assert!(prompt.len() <= room);
            assert_eq!(
                prompt,
                render_prompt(format, "Facts.", &history[7..], "now?")
            );

            let everything = prompt_within_budget(format, "", &history, "now?", 100_000, &bytes);
            assert_eq!(everything, render_prompt(format, "", &history, "now?"));

            let too_small = prompt_within_budget(format, "", &history, "now?", 3, &bytes);
            assert_eq!(too_small, render_prompt(format, "", &[], "now?"));
        }
    }

    #[test]
    fn the_budget_holds_even_when_parts_undercount_the_whole() {
        // A counter where the whole costs more than the sum of its parts.
        let history: Vec<Turn> = (0..5).map(|i| turn(&format!("q{i}"), "a")).collect();
        let count = |text: &str| text.len() + text.matches("\nCustomer:").count() * 10;
        let format = PromptFormat::Completion;
        let room = count(&render_prompt(format, "", &history[2..], "now?"));
        let prompt = prompt_within_budget(format, "", &history, "now?", room, &count);
        assert!(count(&prompt) <= room);
        assert_eq!(prompt, render_prompt(format, "", &history[2..], "now?"));
    }

    #[test]
    fn chatml_prompt_has_the_history_turns_in_order_before_the_question() {
        let history = [turn("hi", "hello!"), turn("price?", "10 EUR")];
        let prompt = render_prompt(PromptFormat::Chatml, "", &history, "and shipping?");
        let expected = format!(
            "<|im_start|>system\n{PERSONA}<|im_end|>\n\
             <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello!<|im_end|>\n\
             <|im_start|>user\nprice?<|im_end|>\n<|im_start|>assistant\n10 EUR<|im_end|>\n\
             <|im_start|>user\nand shipping?<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(prompt, expected);
    }

    #[test]
    fn completion_prompt_has_facts_history_and_question() {
        let history = [turn("hi", "hello!")];
        let prompt = render_prompt(
            PromptFormat::Completion,
            "Returns: 30 days.",
            &history,
            "ok?",
        );
        assert_eq!(
            prompt,
            format!(
                "{PERSONA}\n\nShop facts:\nReturns: 30 days.\n\n\
                 Customer: hi\nAssistant: hello!\nCustomer: ok?\nAssistant:"
            )
        );
        // Without history or facts it is the plain one-question prompt.
        assert_eq!(
            render_prompt(PromptFormat::Completion, "", &[], "ok?"),
            format!("{PERSONA}\n\nCustomer: ok?\nAssistant:")
        );
    }
}
