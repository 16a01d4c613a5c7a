//! After an answer is posted: linking its messages to the question they answered, and a
//! hand-off to the team that the asker asks for from the answer ("Talk to a person").
//! Votes themselves are [`Assistant::record_feedback`]; the store reads them with the
//! question, the answer's source and topic through the link.

use super::conversation::conversation_key;
use super::error::AssistantError;
use super::moderator_event::ModeratorEvent;
use super::service::Assistant;
use crate::store::QuestionOutcome;

/// What a hand-off asked for from an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffOnRequest {
    /// The team was told, with the question (given here) and the conversation.
    HandedOff(String),
    /// The question was handed off already (by the bot, or by an earlier request): the
    /// team is not told twice.
    AlreadyHandedOff,
    /// Neither the answer's question nor a conversation of the asker is stored any more
    /// (forgotten, expired): there is nothing to hand over.
    NothingStored,
}

/// Where an answer was given: its message and the asker.
#[derive(Debug, Clone)]
pub struct AnswerPlace {
    /// The answer's (first) message.
    pub message_id: String,
    /// The user key of who asked the question it answers.
    pub asker: String,
    /// The channel (or thread) it was posted in.
    pub channel_id: Option<String>,
    /// The server; `None` for a direct message.
    pub guild_id: Option<String>,
}

impl Assistant {
    /// Links the messages of a posted answer (`message_ids`) to the asker's latest logged
    /// question in the channel; whether there was one.
    pub async fn link_answer(
        &self,
        message_ids: Vec<String>,
        asker: String,
        channel_id: Option<String>,
    ) -> Result<bool, AssistantError> {
        let store = self.store().clone();
        let at = self.conversations.now_ms();
        let linked = tokio::task::spawn_blocking(move || {
            let mut linked = false;
            for message in &message_ids {
                linked |= store.link_answer(message, &asker, channel_id.as_deref(), at)?;
            }
            Ok::<_, crate::store::StoreError>(linked)
        })
        .await
        .map_err(AssistantError::Task)??;
        Ok(linked)
    }

    /// Hands the question answered at `place` to the team because the asker asked for a
    /// person: a [`ModeratorEvent::Handoff`] (a case for a person) with the question, the
    /// answer's source as the closest topic, and the asker's conversation in that place;
    /// the logged question counts as handed off from now on, and a second request for it
    /// tells nobody. The caller checks that the
    /// one asking is the asker. Waits for a turn of the asker in flight to finish first.
    pub async fn hand_off_on_request(
        &self,
        place: AnswerPlace,
    ) -> Result<HandoffOnRequest, AssistantError> {
        let turn = self
            .conversations
            .lock_user(&conversation_key(&place.asker, place.guild_id.as_deref()))
            .await;
        let history = self.conversations.history(&turn)?;
        let answered = self.store().answered_question(&place.message_id)?;
        let question = match (&answered, history.last()) {
            (Some(answered), _) => answered.record.question.clone(),
            (None, Some(last)) => last.question.clone(),
            (None, None) => return Ok(HandoffOnRequest::NothingStored),
        };
        if let Some(answered) = &answered {
            if answered.record.outcome == QuestionOutcome::Handoff {
                return Ok(HandoffOnRequest::AlreadyHandedOff);
            }
            self.store().mark_handed_off(answered.question_id)?;
        }
        let closest = answered
            .and_then(|answered| answered.record.entry_id)
            .into_iter()
            .collect();
        let _ = self.moderator_events.send(ModeratorEvent::Handoff {
            user_id: place.asker,
            channel_id: place.channel_id,
            question: question.clone(),
            closest,
            needs_person: true,
            conversation: history
                .iter()
                .map(|turn| (turn.question.clone(), turn.answer.clone()))
                .collect(),
        });
        tracing::info!(user = turn.user(), "handed off on request");
        Ok(HandoffOnRequest::HandedOff(question))
    }
}
