//! The row of buttons under every answer: 👍 Helpful · 👎 Not helpful · Talk to a person.
//!
//! A button's custom id carries everything its press needs, so buttons keep working after
//! a restart: `desk:<action>:<asker>:<question message>`. The press itself brings the
//! answer's message id; the store links that to the question, its source and topic. Votes
//! are stored like 👍/👎 reactions (one per user and message; reactions still count).
//! "Talk to a person" works only for the asker; anyone else gets a private note.

use serde_json::{json, Value};
use serenity::all::ComponentInteraction;

use super::reply::{self, ephemeral_message, Target};
use super::threads::{self, PostState};
use super::tickets;
use super::BotState;
use crate::assistant::answer_feedback::{AnswerPlace, HandoffOnRequest};
use crate::assistant::tickets::{TicketPlace, STILL_WITH_THE_TEAM};
use crate::store::Vote;

/// What a button does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A 👍: the answer helped (recorded as a vote).
    Helpful,
    /// A 👎: the answer did not help (recorded as a vote).
    NotHelpful,
    /// Hand the question to the team ("Talk to a person").
    TalkToPerson,
}

impl Action {
    fn code(self) -> &'static str {
        match self {
            Action::Helpful => "up",
            Action::NotHelpful => "down",
            Action::TalkToPerson => "person",
        }
    }
}

/// A button on an answer, as its custom id encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerButton {
    /// What the button does.
    pub action: Action,
    /// Who asked the question the answer answers.
    pub asker: u64,
    /// The question's message (0 for a slash command), for the jump link.
    pub question: u64,
}

const PREFIX: &str = "desk";

impl AnswerButton {
    /// The custom id (at most 54 characters; Discord allows 100).
    pub fn custom_id(&self) -> String {
        format!(
            "{PREFIX}:{}:{}:{}",
            self.action.code(),
            self.asker,
            self.question
        )
    }

    /// Reads a custom id written by [`AnswerButton::custom_id`]; `None` for anything else.
    pub fn parse(custom_id: &str) -> Option<Self> {
        let mut parts = custom_id.split(':');
        if parts.next()? != PREFIX {
            return None;
        }
        let action = match parts.next()? {
            "up" => Action::Helpful,
            "down" => Action::NotHelpful,
            "person" => Action::TalkToPerson,
            _ => return None,
        };
        let asker = parts.next()?.parse().ok()?;
        let question = parts.next()?.parse().ok()?;
        parts.next().is_none().then_some(Self {
            action,
            asker,
            question,
        })
    }
}

/// The action row for an answer to `asker`'s question `question`, as Discord's message
/// components JSON.
pub fn answer_buttons(asker: u64, question: u64) -> Value {
    let button = |action: Action, style: u8, emoji: Option<&str>, label: &str| {
        let mut button = json!({
            "type": 2,
            "style": style,
            "label": label,
            "custom_id": AnswerButton { action, asker, question }.custom_id(),
        });
        if let Some(emoji) = emoji {
            button["emoji"] = json!({"name": emoji});
        }
        button
    };
    json!([{
        "type": 1,
        "components": [
            button(Action::Helpful, 2, Some("👍"), "Helpful"),
            button(Action::NotHelpful, 2, Some("👎"), "Not helpful"),
            button(Action::TalkToPerson, 1, None, "Talk to a person"),
        ],
    }])
}

const THANKS: &str = "Thanks for the feedback!";
const NOT_YOURS: &str = "Only the person who asked can hand this answer to the team. If you \
    need help yourself, ask your own question and use the button under your answer.";
const HANDED_OFF: &str =
    "I've passed your question to the team; a person will follow up here. Please keep an eye \
     on this channel.";
const NOTHING_STORED: &str = "Sorry, I no longer have that conversation (it expired or was \
    forgotten). Please ask your question again.";
const ALREADY_HANDED_OFF: &str =
    "Your question is already with the team; a person will follow up here.";
const UNKNOWN_BUTTON: &str = "That button is no longer in use.";

/// Handles a press of a button (any component interaction). Votes and refusals are
/// answered at once; a hand-off is deferred first (it waits for the asker's turn in
/// flight), then answered privately. Failures are logged.
pub async fn on_press(shared: &BotState, press: ComponentInteraction) {
    let guild = press.guild_id.map(|g| g.get());
    if !shared.rules().serves(guild) {
        return answer(shared, &press, super::commands::NOT_THIS_SERVER).await;
    }
    if let Some((action, ticket)) = tickets::parse(&press.data.custom_id) {
        return tickets::on_press(shared, press, action, ticket).await;
    }
    let Some(button) = AnswerButton::parse(&press.data.custom_id) else {
        return answer(shared, &press, UNKNOWN_BUTTON).await;
    };
    let presser = press.user.id.get();
    let message_id = press.message.id.get();
    let vote = match button.action {
        Action::Helpful => Vote::Up,
        Action::NotHelpful => Vote::Down,
        Action::TalkToPerson if presser != button.asker => {
            return answer(shared, &press, NOT_YOURS).await
        }
        Action::TalkToPerson => return hand_off(shared, &press, button).await,
    };
    match shared
        .assistant
        .record_feedback(message_id.to_string(), presser.to_string(), vote, true)
        .await
    {
        Ok(()) => {
            tracing::info!(?vote, "feedback button recorded");
            answer(shared, &press, THANKS).await
        }
        Err(error) => {
            tracing::warn!(%error, "could not record feedback");
            answer(shared, &press, &error.user_message()).await
        }
    }
}

/// Answers a press at once with a private note.
async fn answer(shared: &BotState, press: &ComponentInteraction, text: &str) {
    let message = ephemeral_message(text);
    if let Err(error) = reply::respond(&shared.rest, press.id, &press.token, message).await {
        tracing::warn!(%error, "could not answer a button press");
    }
}

/// "Talk to a person" by the asker: defer (privately), hand off, tell the asker, and tag
/// a forum post "Needs staff".
async fn hand_off(shared: &BotState, press: &ComponentInteraction, button: AnswerButton) {
    if let Err(error) =
        reply::respond(&shared.rest, press.id, &press.token, reply::defer(true)).await
    {
        tracing::warn!(%error, "could not defer a button press");
        return;
    }
    let place = AnswerPlace {
        message_id: press.message.id.get().to_string(),
        asker: button.asker.to_string(),
        channel_id: Some(press.channel_id.get().to_string()),
        guild_id: press.guild_id.map(|g| g.get().to_string()),
    };
    let text = match shared.assistant.hand_off_on_request(place).await {
        Ok(HandoffOnRequest::HandedOff(question)) => {
            let place = TicketPlace {
                asker: button.asker.to_string(),
                guild_id: press.guild_id.map(|g| g.get().to_string()),
                channel_id: Some(press.channel_id.get().to_string()),
                question_message_id: (button.question != 0).then(|| button.question.to_string()),
            };
            let opened = tickets::open(shared, place, &question).await;
            threads::tag_post(
                &shared.channels,
                &shared.rest,
                &shared.settings.forum_tags,
                press.channel_id.get(),
                PostState::HandedOff,
            )
            .await;
            if opened == tickets::Opened::StillOpen {
                STILL_WITH_THE_TEAM.to_string()
            } else {
                HANDED_OFF.to_string()
            }
        }
        Ok(HandoffOnRequest::AlreadyHandedOff) => ALREADY_HANDED_OFF.to_string(),
        Ok(HandoffOnRequest::NothingStored) => NOTHING_STORED.to_string(),
        Err(error) => {
            tracing::warn!(%error, "could not hand off on request");
            error.user_message()
        }
    };
    let mut answer = shared.reply(Target::Interaction {
        application_id: press.application_id,
        token: press.token.clone(),
        ephemeral: true,
    });
    shared.show(&mut answer, &text).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_round_trip_and_fit_discords_limit() {
        for action in [Action::Helpful, Action::NotHelpful, Action::TalkToPerson] {
            let button = AnswerButton {
                action,
                asker: u64::MAX,
                question: u64::MAX,
            };
            let id = button.custom_id();
            assert!(id.len() <= 100, "{id}");
            assert_eq!(AnswerButton::parse(&id), Some(button));
        }
    }

    #[test]
    fn foreign_or_damaged_custom_ids_are_not_buttons() {
        for id in [
            "",
            "desk",
            "desk:up:1",
            "desk:up:1:2:3",
            "desk:sideways:1:2",
            "desk:up:x:2",
            "other:up:1:2",
        ] {
            assert_eq!(AnswerButton::parse(id), None, "{id}");
        }
    }

    #[test]
    fn one_row_of_three_buttons_with_distinct_ids() {
        let row = answer_buttons(5, 6);
        let buttons = row[0]["components"].as_array().unwrap();
        assert_eq!(row[0]["type"], 1);
        assert_eq!(buttons.len(), 3);
        let ids: std::collections::HashSet<&str> = buttons
            .iter()
            .map(|b| b["custom_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(buttons[2]["label"], "Talk to a person");
    }
}
