//! The answer pipeline: one question from admission to a recorded, guarded reply
//! ([`Assistant::handle`]), and the model's streamed answers.

use std::sync::atomic::Ordering;

use tokio::sync::mpsc;

use super::content::{self, PromptError, PromptSet};
use super::conversation::{RecordedTurn, UserTurnGuard};
use super::guard::{GuardRules, Guarded};
use super::inbound::Inbound;
use super::knowledge::{PreviousTurn, Route, RouteKind};
use super::limits::{generation_tokens, Admission, Asker, Claim, Verdict};
use super::moderator_event::ModeratorEvent;
use super::outcome::{AnswerEvent, FinalAnswer, Notice, Outcome, GENERATION_FAILED};
use super::prompt_budget::Budgeted;
use super::reply_check;
use super::service::{Assistant, MAINTENANCE_INTERVAL_MS};
use crate::backend::{GenerationStream, StreamEvent};
use crate::metrics::{Refusal, METRICS};
use crate::store::{QuestionOutcome, QuestionRecord, StoredTurn};

impl Assistant {
    /// Answers one question.
    ///
    /// Flow: rate limits (first refusal in a window: a notice; later ones: silence) ->
    /// length check -> the user's turn lock -> facts (a quoted answer, small talk or a
    /// hand-off ends here, with no model) -> token-budgeted history -> admission of the
    /// prompt's tokens and reply room to the generation queue (full: busy notice) ->
    /// generation. The answer streams from a task that records the turn and logs the
    /// question *before* sending [`AnswerEvent::Final`], then releases the turn lock and the
    /// queue's place and tokens.
    ///
    /// Ordering contract: this returns only once it holds the user's turn lock, so an
    /// adapter that awaits `handle` for one message before calling it for the next gets
    /// that user's answers in order, each seeing the previous turn; other users proceed
    /// concurrently. Consume (or drop) each returned answer stream on its own (e.g. in a
    /// spawned task): the user's next `handle` waits until this answer has finished, so
    /// awaiting it before reading this stream would wait forever.
    pub async fn handle(&self, inbound: Inbound) -> Outcome {
        self.handle_at(inbound, &[]).await
    }

    /// [`Assistant::handle`] for a question asked at a place the adapter names by `places`
    /// (keys, most specific first; see [`content::PromptSet::for_place`]): a place in
    /// places.toml answers with its own persona and knowledge, anywhere else the whole
    /// shop's.
    pub async fn handle_at(&self, inbound: Inbound, places: &[String]) -> Outcome {
        let question = super::invisible::strip_invisible(&inbound.text)
            .trim()
            .to_string();
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
        let turn = self
            .conversations
            .lock_user(&super::conversation::conversation_key(
                &inbound.user_id,
                inbound.guild_id.as_deref(),
            ))
            .await;
        // One prompt set for the whole request, even if a reload swaps it meanwhile.
        let set = self.prompts.current().for_place(places);
        let history = self.history(&turn);
        let previous = history.last().map(|turn| PreviousTurn {
            question: &turn.question,
            answer: &turn.answer,
        });
        let route = set.knowledge.route_in(&question, previous);
        if route.kind.hands_off() {
            return self.hand_off(&set, &turn, &inbound, &question, &route, &history);
        }
        let written = match (route.kind, route.small_talk) {
            (RouteKind::SmallTalk, Some(kind)) => Some(set.small_talk_reply(kind, route.lang)),
            _ => set.quoted_answer(&route).transpose(),
        };
        if let Some(reply) = written {
            return self.post_written(&set, &turn, &inbound, &question, &route, reply);
        }
        let failed = |notice: Notice| {
            self.log_question(
                Some(&turn),
                &inbound,
                &question,
                Some(&route),
                QuestionOutcome::Failed,
            );
            Outcome::Notice(notice)
        };
        let (prompt, tokens) = match self.build_prompt(&set, &question, &route, &history).await {
            Ok(Budgeted::Prompt { text, tokens }) => (text, tokens),
            Ok(Budgeted::TooLong { tokens, room }) => {
                METRICS.refusal(Refusal::TooLong);
                tracing::info!(
                    tokens,
                    room,
                    "refused: the question does not fit the model's context"
                );
                return failed(Notice::TooLongForModel);
            }
            Err(error) => {
                tracing::error!(%error, "could not render the answer prompt");
                return failed(Notice::Unavailable);
            }
        };
        let Ok(permit) = self.admit(tokens) else {
            self.log_question(
                Some(&turn),
                &inbound,
                &question,
                Some(&route),
                QuestionOutcome::Busy,
            );
            return Outcome::Notice(Notice::Busy);
        };
        let mut stop = content::PromptSet::stop_strings(self.backend.model().prompt_format);
        let general = route.kind == RouteKind::General;
        if general {
            // General answers stay brief: one paragraph.
            stop.push("\n\n".into());
        }
        let request = self.request(prompt, stop, Some(inbound.user_id.clone()));
        let stream = self.backend.generate(request);
        let assistant = self.clone();
        let guard_route = route.clone();
        let checked_question = question.clone();
        let guard = move |text: &str, finished: bool| {
            let guarded = set.guard_reply(&guard_route, text, finished);
            if !(general && finished) {
                return guarded;
            }
            checked_general_reply(&set, &checked_question, guarded)
        };
        // A general answer is checked whole before anyone sees it: no partial edits.
        let partials = !general;
        Outcome::Answer(stream_answer(stream, partials, guard, move |answer| {
            assistant.finish_turn(&turn, &inbound, &question, &route, answer);
            drop(turn);
            drop(permit);
        }))
    }

    /// Posts a reply written without the model (a quoted answer, a small-talk template):
    /// guarded, cited, recorded and logged like a generated one. A rendering error becomes
    /// the error notice.
    pub(super) fn post_written(
        &self,
        set: &PromptSet,
        turn: &UserTurnGuard,
        inbound: &Inbound,
        question: &str,
        route: &Route,
        reply: Result<String, PromptError>,
    ) -> Outcome {
        match reply {
            Ok(text) => {
                let guarded = set.guard_reply(route, &text, true);
                self.finish_turn(turn, inbound, question, route, Some((&text, &guarded)));
                Outcome::Reply(guarded.text)
            }
            Err(error) => {
                tracing::error!(%error, "could not render a written reply");
                self.log_question(
                    Some(turn),
                    inbound,
                    question,
                    Some(route),
                    QuestionOutcome::Failed,
                );
                Outcome::Notice(Notice::Unavailable)
            }
        }
    }

    /// Hands the question to a person, with no model involved: an honest "not sure" with the
    /// closest topics ([`RouteKind::NotSure`]) or the matched answer and the hand-off
    /// ([`RouteKind::Escalate`]); moderators get the question and the conversation so far.
    pub(super) fn hand_off(
        &self,
        set: &PromptSet,
        turn: &UserTurnGuard,
        inbound: &Inbound,
        question: &str,
        route: &Route,
        history: &[StoredTurn],
    ) -> Outcome {
        let written = if route.kind == RouteKind::Escalate {
            set.quoted_answer(route)
                .and_then(|answer| set.escalate_reply(answer.as_deref()))
        } else {
            set.not_sure_reply(question, route)
        };
        let reply = match written {
            Ok(reply) => reply,
            Err(error) => {
                tracing::error!(%error, "could not render the not-sure reply");
                "I'm not sure about that one, so I've passed your question to our team; they will follow up.".to_string()
            }
        };
        match self.conversations.record_turn(turn, question, &reply) {
            Ok(RecordedTurn::Stored) => {}
            // Forgotten meanwhile: the reply is shown, nothing of the question is kept.
            Ok(RecordedTurn::Forgotten) => return Outcome::Handoff(reply),
            Err(error) => {
                tracing::error!(%error, user = turn.user(), "could not record the turn")
            }
        }
        self.log_question(
            Some(turn),
            inbound,
            question,
            Some(route),
            QuestionOutcome::Handoff,
        );
        let _ = self.moderator_events.send(ModeratorEvent::Handoff {
            user_id: inbound.user_id.clone(),
            channel_id: inbound.channel_id.clone(),
            question: question.to_string(),
            closest: route.hits.iter().map(|hit| hit.title.clone()).collect(),
            needs_person: route.kind == RouteKind::Escalate,
            conversation: history
                .iter()
                .map(|turn| (turn.question.clone(), turn.answer.clone()))
                .collect(),
        });
        Outcome::Handoff(reply)
    }

    /// `Some(outcome)` when a limit refuses the question: a notice the first time in the
    /// window, silence after that.
    pub(super) fn refuse_if_limited(&self, inbound: &Inbound, question: &str) -> Option<Outcome> {
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
        self.log_question(None, inbound, question, None, QuestionOutcome::Limited);
        Some(if notify {
            Outcome::Notice(Notice::Limited { scope, retry_after })
        } else {
            Outcome::Silent
        })
    }

    pub(super) fn refuse_if_too_long(&self, question: &str) -> Option<Notice> {
        let max = self.config.limits.max_question_chars;
        let length = question.chars().count();
        (length > max).then(|| {
            METRICS.refusal(Refusal::TooLong);
            Notice::TooLong { length, max }
        })
    }

    /// A place in the generation queue for one generation of a `prompt_tokens`-token prompt
    /// and its reply room, held until the admission drops; when the queue is full (places or
    /// tokens), the refusal is counted and logged ([`Limits::admit`]) and the answer is
    /// [`Notice::Busy`].
    ///
    /// [`Limits::admit`]: super::limits::Limits::admit
    pub(super) fn admit(&self, prompt_tokens: usize) -> Result<Admission, Notice> {
        let tokens = generation_tokens(
            prompt_tokens,
            self.config.model.max_new_tokens,
            self.backend.model().context_length,
        );
        self.limits
            .admit(Claim::customer(tokens))
            .map_err(|_| Notice::Busy)
    }

    /// The user's recent turns; on a storage error, none (the question is still answered).
    pub(super) fn history(&self, turn: &UserTurnGuard) -> Vec<StoredTurn> {
        let history = self.conversations.history(turn).unwrap_or_else(|error| {
            tracing::error!(%error, user = turn.user(), "could not load the conversation");
            Vec::new()
        });
        // Users forgotten by any process: their cached prompt prefixes go too.
        for user in self.conversations.take_erased() {
            self.backend.forget_prefixes(Some(&user));
        }
        history
    }

    /// Records the turn (when the generation succeeded), logs the question, and tells
    /// moderators when the guard changed the reply.
    pub(super) fn finish_turn(
        &self,
        turn: &UserTurnGuard,
        inbound: &Inbound,
        question: &str,
        route: &Route,
        answer: Option<(&str, &Guarded)>,
    ) {
        let outcome = match answer {
            Some((raw, guarded)) => {
                match self
                    .conversations
                    .record_turn(turn, question, &guarded.text)
                {
                    Ok(RecordedTurn::Stored) => {}
                    // Forgotten meanwhile: neither logged nor shown to moderators.
                    Ok(RecordedTurn::Forgotten) => return,
                    Err(error) => {
                        tracing::error!(%error, user = turn.user(), "could not record the turn")
                    }
                }
                if !guarded.findings.is_empty() {
                    tracing::warn!(findings = ?guarded.findings, user = turn.user(), "the output guard changed a reply");
                    let _ = self.moderator_events.send(ModeratorEvent::GuardFired {
                        user_id: inbound.user_id.clone(),
                        channel_id: inbound.channel_id.clone(),
                        question: question.to_string(),
                        raw_output: raw.to_string(),
                        findings: guarded.findings.clone(),
                    });
                }
                QuestionOutcome::Answered
            }
            None => QuestionOutcome::Failed,
        };
        self.log_question(Some(turn), inbound, question, Some(route), outcome);
    }

    /// Adds the question to the log for insights, with the entry it was routed to. Asked
    /// in a `turn`, it is not logged when its user was forgotten since the turn began.
    pub(super) fn log_question(
        &self,
        turn: Option<&UserTurnGuard>,
        inbound: &Inbound,
        question: &str,
        route: Option<&Route>,
        outcome: QuestionOutcome,
    ) {
        let best = route.and_then(|route| route.hits.first());
        let record = QuestionRecord {
            at: self.conversations.now_ms(),
            user: inbound.user_id.clone(),
            channel_id: inbound.channel_id.clone(),
            question: question.to_string(),
            // The FAQ entry it was routed to, else the source it was answered from (a
            // policy, the catalogue), so insights and feedback know every answer's topic.
            entry_id: best.map(|hit| hit.entry_id.clone()).or_else(|| {
                route
                    .and_then(|route| route.sources.first())
                    .map(|source| source.id.clone())
            }),
            intent: best.and_then(|hit| hit.intent.clone()),
            confidence: route.map(|route| route.confidence),
            outcome,
        };
        let logged = match turn {
            Some(turn) => self
                .store()
                .log_question_unless_erased(&record, turn.erasures_seen())
                .map(|_| ()),
            None => self.store().log_question(&record),
        };
        if let Err(error) = logged {
            tracing::warn!(%error, "could not log the question");
        }
    }

    /// Every [`MAINTENANCE_INTERVAL_MS`], prunes limiter state and expired conversations in
    /// a blocking task (the first call after start prunes at once).
    pub(super) fn maintain_if_due(&self) {
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

/// A general (not shop) model answer that passed the guard, without a last sentence the model
/// did not finish; or the shop's off-topic reply when [`reply_check::check_reply`] finds it
/// off-persona, nonsense or claiming shop facts.
fn checked_general_reply(set: &content::PromptSet, question: &str, guarded: Guarded) -> Guarded {
    let finished = reply_check::complete_sentences(&guarded.text).to_string();
    let checked =
        reply_check::check_reply(question, &finished).map_err(|problem| format!("{problem:?}"));
    let checked = checked.and_then(|()| {
        if only_the_guards_words(&set.guard, &finished) {
            Err("nothing but the guard's replacements".to_string())
        } else {
            Ok(())
        }
    });
    let Err(problem) = checked else {
        return Guarded {
            text: finished,
            findings: guarded.findings,
        };
    };
    METRICS.refusal(Refusal::ReplyCheck);
    tracing::warn!(%problem, reply = %guarded.text, "a general answer failed the reply check");
    let text = set
        .off_topic_reply()
        .unwrap_or_else(|_| "Sorry, I can't help with that one.".to_string());
    Guarded {
        text,
        findings: guarded.findings,
    }
}

/// Whether `text` says nothing once the guard's replacement notices are taken out (a reply
/// whose every sentence quoted a price or stock the catalogue does not back).
fn only_the_guards_words(rules: &GuardRules, text: &str) -> bool {
    let replacements = [
        &rules.price_replacement,
        &rules.stock_replacement,
        &rules.blocked_replacement,
        &rules.personal_data_replacement,
    ];
    let left = replacements
        .iter()
        .filter(|replacement| !replacement.trim().is_empty())
        .fold(text.to_string(), |left, replacement| {
            left.replace(replacement.trim(), "")
        });
    !left.chars().any(char::is_alphanumeric)
}

/// Streams the generation as [`AnswerEvent`]s (partial ones only with `partials`), each passed through `guard` (the text so far,
/// and whether it is the end). On the end, `on_finished` runs with the raw and the guarded
/// answer (`None` when the generation failed) *before* [`AnswerEvent::Final`] is sent; if
/// the receiver goes away first, the generation is cancelled and `on_finished` is dropped
/// without running.
fn stream_answer<G, F>(
    mut stream: GenerationStream,
    partials: bool,
    guard: G,
    on_finished: F,
) -> mpsc::Receiver<AnswerEvent>
where
    G: Fn(&str, bool) -> Guarded + Send + 'static,
    F: FnOnce(Option<(&str, &Guarded)>) + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let task = async move {
        let mut text = String::new();
        loop {
            // The receiver going away cancels at once, even while the backend is silent.
            let event = tokio::select! {
                event = stream.next() => event,
                _ = tx.closed() => return,
            };
            let Some(event) = event else { break };
            match event {
                StreamEvent::Text(delta) => {
                    text.push_str(&delta);
                    if !partials {
                        continue;
                    }
                    let partial = guard(text.trim(), false).text;
                    if tx.send(AnswerEvent::Partial(partial)).await.is_err() {
                        return;
                    }
                }
                StreamEvent::Done(result) => {
                    let text = match result {
                        Ok(generated) => {
                            METRICS.generation(
                                generated.output_tokens,
                                generated.prefill_ms,
                                generated.tokens_per_s,
                            );
                            let raw = generated.text.trim();
                            let guarded = guard(raw, true);
                            on_finished(Some((raw, &guarded)));
                            guarded.text
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
        // The backend went away without a result: a failure, answered with the apology.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::content::test_support::demo;

    #[test]
    fn a_reply_left_with_only_the_guards_notices_says_nothing() {
        let rules = demo().guard;
        let notice = &rules.price_replacement;
        assert!(only_the_guards_words(&rules, notice));
        assert!(only_the_guards_words(
            &rules,
            &format!("{notice} {}", rules.stock_replacement)
        ));
        assert!(!only_the_guards_words(
            &rules,
            &format!("The Fireside Chai is warming. {notice}")
        ));
        assert!(!only_the_guards_words(&rules, "Try the Fireside Chai."));
    }
}
