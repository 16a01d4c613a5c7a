//! Answering a routed message: the assistant's outcome posted as a reply, with the answer
//! buttons under an answer, its messages linked to the question, and a forum post tagged.

use std::sync::Arc;

use serenity::all::Message;
use tokio::time::Instant;

use super::reply::{self, Reply, StreamEnd, Target, Typing};
use super::{buttons, summary, threads, tickets, BotState};
use crate::assistant::tickets::TicketPlace;
use crate::assistant::{Inbound, Outcome};
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
        let mut typing = Typing::start(self.rest.clone(), msg.channel_id);
        let question = inbound.text.clone();
        let outcome = self.assistant.handle(inbound).await;
        let answered = matches!(outcome, Outcome::Answer(_) | Outcome::Reply(_));
        let post_state = match &outcome {
            Outcome::Answer(_) | Outcome::Reply(_) => Some(threads::PostState::Answered),
            Outcome::Handoff(_) => Some(threads::PostState::HandedOff),
            _ => None,
        };
        typing.first_attempt_settled(reply::TYPING_FIRST_WAIT).await;
        let mut reply = self.reply(Target::Channel {
            channel_id: msg.channel_id,
            reply_to: Some(msg.id),
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
        if posted && post_state == Some(threads::PostState::HandedOff) {
            let place = TicketPlace {
                asker: msg.author.id.get().to_string(),
                guild_id: msg.guild_id.map(|g| g.get().to_string()),
                channel_id: Some(msg.channel_id.get().to_string()),
                question_message_id: Some(msg.id.get().to_string()),
            };
            tickets::open(&self, place, &question).await;
        }
        if let (true, Some(state), Some(_)) = (posted, post_state, msg.guild_id) {
            threads::tag_post(
                &self.channels,
                &self.rest,
                &self.settings.forum_tags,
                msg.channel_id.get(),
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
