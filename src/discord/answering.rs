//! Answering a routed message: the assistant's outcome posted as a reply, with the answer
//! buttons under an answer, its messages linked to the question, and a forum post tagged.

use std::sync::Arc;

use serenity::all::Message;
use serenity::model::id::ChannelId;
use tokio::time::Instant;

use super::reply::{self, Reply, StreamEnd, Target, Typing};
use super::{buttons, summary, threads, tickets, BotState};
use crate::assistant::tickets::{TicketPlace, STILL_WITH_THE_TEAM};
use crate::assistant::{Inbound, InboundKind, Outcome};
use crate::metrics::METRICS;

impl BotState {
    pub(super) fn reply(&self, target: Target) -> Reply {
        Reply::new(self.rest.clone(), target, self.own_messages.clone())
    }

    /// Posts what the assistant decided: streams an answer, posts a notice, or nothing.
    /// Returns whether a final text was posted. Failures are logged (within the caller's
    /// span, with its ids) and counted; none is silent.
    pub(super) async fn post_outcome(&self, reply: &mut Reply, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Silent => {
                tracing::debug!("nothing to post");
                if let Err(error) = reply.withdraw().await {
                    tracing::warn!(%error, "could not withdraw a deferred response");
                }
                false
            }
            Outcome::Reply(text) | Outcome::Handoff(text) => self.show(reply, &text).await,
            Outcome::Notice(notice) => self.show(reply, &notice.to_string()).await,
            Outcome::Summary(summary) => self.show(reply, &summary::summary_text(&summary)).await,
            Outcome::Draft(draft) => self.show(reply, &summary::draft_text(&draft)).await,
            Outcome::Answer(events) => {
                match reply::stream_answer(reply, events, self.in_flight.cancellation()).await {
                    StreamEnd::Finished => {
                        METRICS.answer();
                        true
                    }
                    StreamEnd::Cancelled => {
                        tracing::warn!("answer cancelled by shutdown");
                        true
                    }
                    StreamEnd::NotPosted => false,
                }
            }
        }
    }

    /// Posts a finished text; whether it was posted (a failure is logged).
    pub(super) async fn show(&self, reply: &mut Reply, text: &str) -> bool {
        match reply.show(text).await {
            Ok(()) => true,
            Err(error) => {
                tracing::error!(%error, "could not post a reply");
                false
            }
        }
    }

    pub(super) async fn answer_message(
        self: Arc<Self>,
        msg: Message,
        mut inbound: Inbound,
        received: Instant,
    ) {
        let _turn = self
            .message_order
            .take(msg.author.id.get(), msg.id.get())
            .await;
        if self.in_flight.is_cancelled() {
            tracing::info!("shutting down: question dropped before it was started");
            return;
        }
        let roles: Vec<u64> = msg
            .member
            .as_ref()
            .map(|m| m.roles.iter().map(|r| r.get()).collect())
            .unwrap_or_default();
        inbound.role = self
            .role_of(msg.guild_id.map(|g| g.get()), msg.author.id.get(), &roles)
            .await;
        tracing::info!(kind = ?inbound.kind, role = ?inbound.role, "answering");
        inbound.channel_id = Some(msg.channel_id.get().to_string());
        let question = inbound.text.clone();
        let kind = inbound.kind;
        let places = self.place_keys(msg.channel_id.get()).await;
        let mut outcome = self.assistant.handle_at(inbound, &places).await;
        if let Outcome::Silent = outcome {
            return;
        }
        // Where the answer goes: a thread opened on the question (only now that there is
        // something to post in it), or a reply beside it.
        let (channel, reply_to) = match self.thread_for(&msg, kind, &question).await {
            Some(thread) => (ChannelId::new(thread), None),
            None => (msg.channel_id, Some(msg.id)),
        };
        let mut typing = Typing::start(self.rest.clone(), channel);
        let answered = matches!(outcome, Outcome::Answer(_) | Outcome::Reply(_));
        let post_state = match &outcome {
            Outcome::Answer(_) | Outcome::Reply(_) => Some(threads::PostState::Answered),
            Outcome::Handoff(_) => Some(threads::PostState::HandedOff),
            _ => None,
        };
        if let Outcome::Handoff(_) = outcome {
            // The ticket first: a customer whose ticket is still open is told so instead.
            let place = TicketPlace {
                asker: msg.author.id.get().to_string(),
                guild_id: msg.guild_id.map(|g| g.get().to_string()),
                channel_id: Some(channel.get().to_string()),
                question_message_id: Some(msg.id.get().to_string()),
            };
            if tickets::open(&self, place, &question).await == tickets::Opened::StillOpen {
                outcome = Outcome::Handoff(STILL_WITH_THE_TEAM.to_string());
            }
        }
        typing.first_attempt_settled(reply::TYPING_FIRST_WAIT).await;
        let mut reply = self.reply(Target::Channel {
            channel_id: channel,
            reply_to,
        });
        if answered {
            reply.set_buttons(buttons::answer_buttons(msg.author.id.get(), msg.id.get()));
        }
        let posted = self.post_outcome(&mut reply, outcome).await;
        drop(typing);
        if posted && answered {
            self.link_answer(&reply, msg.author.id.get(), msg.channel_id.get())
                .await;
        }
        if let (true, Some(state), Some(_)) = (posted, post_state, msg.guild_id) {
            threads::tag_post(
                &self.channels,
                &self.rest,
                &self.settings.forum_tags,
                channel.get(),
                state,
            )
            .await;
        }
        if let Some(first) = reply.first_posted() {
            METRICS
                .first_reply
                .observe(first.saturating_duration_since(received));
        }
        if posted {
            METRICS.final_reply.observe(received.elapsed());
        }
    }

    /// The thread to answer `msg` (whose text is `question`) in, when its channel answers in
    /// threads (`SHOPKEEP_ANSWER_IN_THREAD`): opened on the message now. `None` (answer as a
    /// reply) elsewhere, or when Discord refuses the thread (logged).
    async fn thread_for(&self, msg: &Message, kind: InboundKind, question: &str) -> Option<u64> {
        let channel = msg.channel_id.get();
        if kind != InboundKind::SupportChannel
            || msg.guild_id.is_none()
            || !self.settings.answer_in_thread.contains(&channel)
        {
            return None;
        }
        let opened =
            threads::open_on_message(&self.channels, &self.rest, channel, msg.id.get(), question)
                .await;
        match opened {
            Ok(thread) => {
                tracing::info!(thread, "answering in a thread opened on the question");
                Some(thread)
            }
            Err(error) => {
                tracing::warn!(%error, "could not open a thread on the question; replying instead");
                None
            }
        }
    }

    /// The place keys of `channel` when the prompts define places (else none, and no
    /// channel is read for them).
    pub(super) async fn place_keys(&self, channel: u64) -> Vec<String> {
        if self.assistant.prompts().current().places().is_empty() {
            return Vec::new();
        }
        self.channels.place_keys(&self.rest, channel).await
    }

    /// Links a posted answer's messages to the question, for feedback and hand-offs.
    pub(super) async fn link_answer(&self, reply: &Reply, asker: u64, channel: u64) {
        let messages = reply.message_ids().iter().map(u64::to_string).collect();
        match self
            .assistant
            .link_answer(messages, asker.to_string(), Some(channel.to_string()))
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!("no logged question to link the answer to"),
            Err(error) => tracing::warn!(%error, "could not link the answer to its question"),
        }
    }
}
