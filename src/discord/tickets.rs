//! Hand-off tickets on Discord: a private thread in `SHOPKEEP_TICKET_CHANNEL` per ticket,
//! with the question, the conversation so far, what the bot made of it (topic, confidence,
//! closest entries) and a jump link, and **Claim** / **Resolve** buttons for staff. Resolve
//! opens a modal; its answer goes through the guard and is posted to the customer where
//! they asked, as a reply from the team, with no mentions; a forum post is tagged Solved.
//! The resolution note carries **Add to the FAQ**: an admin's press writes the answer into
//! the knowledge files as a FAQ entry and reloads the prompts.
//!
//! Custom ids carry the ticket id (`ticket:claim:<id>`, `ticket:resolve:<id>`,
//! `ticket:answer:<id>` for the modal, `ticket:learn:<id>`), so they work after a restart.

use std::fmt::Write;

use serde_json::{json, Value};
use serenity::all::{ActionRowComponent, ComponentInteraction, ModalInteraction};
use serenity::http::{LightMethod, Route};
use serenity::model::id::{ChannelId, MessageId};

use super::reply::{self, ephemeral_message, Target};
use super::rest::{Body, RestError};
use super::threads::{self, PostState};
use super::BotState;
use crate::assistant::policy::{self, Action};
use crate::assistant::tickets::{OpenedTicket, TicketPlace};
use crate::assistant::Role;
use crate::store::Ticket;

/// What a ticket's custom id asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketAction {
    /// A staff member takes the ticket.
    Claim,
    /// A staff member opens the Resolve modal to answer the customer.
    Resolve,
    /// The Resolve modal, submitted.
    Answer,
    /// Add the resolved ticket's answer to the FAQ (admins).
    Learn,
}

/// Reads `ticket:<action>:<id>`.
pub fn parse(custom_id: &str) -> Option<(TicketAction, i64)> {
    let rest = custom_id.strip_prefix("ticket:")?;
    let (action, id) = rest.split_once(':')?;
    let action = match action {
        "claim" => TicketAction::Claim,
        "resolve" => TicketAction::Resolve,
        "answer" => TicketAction::Answer,
        "learn" => TicketAction::Learn,
        _ => return None,
    };
    Some((action, id.parse().ok()?))
}

fn custom_id(action: &str, id: i64) -> String {
    format!("ticket:{action}:{id}")
}

/// The staff buttons of ticket `id`.
fn staff_buttons(id: i64) -> Value {
    json!([{"type": 1, "components": [
        {"type": 2, "style": 1, "label": "Claim", "custom_id": custom_id("claim", id)},
        {"type": 2, "style": 3, "label": "Resolve", "custom_id": custom_id("resolve", id)},
    ]}])
}

/// The button under a resolution note that adds the answer to the FAQ.
fn learn_button(id: i64) -> Value {
    json!([{"type": 1, "components": [
        {"type": 2, "style": 2, "label": "Add to the FAQ", "custom_id": custom_id("learn", id)},
    ]}])
}

/// The link that opens the customer's message in Discord.
pub fn jump_link(guild: Option<&str>, channel: &str, message: &str) -> String {
    format!(
        "https://discord.com/channels/{}/{channel}/{message}",
        guild.unwrap_or("@me")
    )
}

/// The ticket thread's first message: who, where, the question, the conversation.
pub fn transcript(opened: &OpenedTicket, guild: Option<&str>) -> String {
    let ticket = &opened.ticket;
    let mut text = String::new();
    let place = match &ticket.channel_id {
        Some(channel) => format!("<#{channel}>"),
        None => "a direct message".to_string(),
    };
    let _ = writeln!(
        text,
        "**Ticket {}**: <@{}> in {place}",
        ticket.id, ticket.user
    );
    if let (Some(channel), Some(message)) = (&ticket.channel_id, &ticket.question_message_id) {
        let _ = writeln!(
            text,
            "Original message: {}",
            jump_link(guild, channel, message)
        );
    }
    let _ = writeln!(
        text,
        "Question: {}",
        super::modlog::quoted(&ticket.question)
    );
    let routing = &ticket.routing;
    let topic = routing.topic.as_deref().unwrap_or("none");
    match routing.confidence {
        Some(confidence) => {
            let _ = writeln!(text, "Routed to: `{topic}` (confidence {confidence:.2})");
        }
        None => {
            let _ = writeln!(text, "Routed to: `{topic}`");
        }
    }
    if !routing.closest.is_empty() {
        let closest: Vec<String> = routing
            .closest
            .iter()
            .map(|title| super::modlog::quoted(title))
            .collect();
        let _ = writeln!(text, "Closest entries: {}", closest.join(", "));
    }
    if !opened.conversation.is_empty() {
        let _ = writeln!(text, "Conversation so far:");
        for (asked, answered) in &opened.conversation {
            let _ = writeln!(text, "> customer: {}", super::modlog::quoted(asked));
            let _ = writeln!(text, "> bot: {}", super::modlog::quoted(answered));
        }
    }
    let _ = write!(
        text,
        "Claim it, then Resolve with the answer for the customer (posted where they asked)."
    );
    text
}

/// What [`open`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Tickets are off (no `SHOPKEEP_TICKET_CHANNEL`), or the ticket could not be stored.
    Nothing,
    /// A new ticket (its thread is opened unless that failed, which is logged).
    New,
    /// The customer's ticket was still open: the question was added to its thread.
    StillOpen,
}

/// Opens a ticket for a hand-off, when `SHOPKEEP_TICKET_CHANNEL` is set: a private
/// thread with the transcript and the staff buttons. A customer's ticket still open gets
/// no second thread: the new question is noted in the open one's. Failures are logged.
pub async fn open(shared: &BotState, place: TicketPlace, question: &str) -> Opened {
    let Some(ticket_channel) = shared.settings.ticket_channel else {
        return Opened::Nothing;
    };
    let guild = place.guild_id.clone();
    let opened = match shared.assistant.open_ticket(place, question).await {
        Ok(Some(opened)) if opened.new => opened,
        Ok(None) => return Opened::Nothing,
        Ok(Some(opened)) => {
            tracing::info!(
                ticket = opened.ticket.id,
                "the customer's ticket is still open"
            );
            let note = format!(
                "**The customer asked again:** {}",
                super::modlog::quoted(question)
            );
            post_in_thread(shared, &opened.ticket, &note, None).await;
            return Opened::StillOpen;
        }
        Err(error) => {
            tracing::warn!(%error, "could not open a ticket");
            return Opened::Nothing;
        }
    };
    if let Err(error) = post_thread(shared, ticket_channel, &opened, guild.as_deref()).await {
        tracing::error!(%error, ticket = opened.ticket.id, "could not open the ticket thread");
    }
    Opened::New
}

async fn post_thread(
    shared: &BotState,
    ticket_channel: u64,
    opened: &OpenedTicket,
    guild: Option<&str>,
) -> Result<(), RestError> {
    let id = opened.ticket.id;
    let body = json!({"name": format!("Ticket {id}"), "type": 12, "invitable": false,
        "auto_archive_duration": 10080});
    let thread = shared
        .rest
        .send(
            "open a ticket thread",
            Route::ChannelThreads {
                channel_id: ChannelId::new(ticket_channel),
            },
            LightMethod::Post,
            Some(body),
            Body::Other,
        )
        .await?;
    let thread_id = thread
        .as_ref()
        .and_then(|t| t["id"].as_str())
        .and_then(|id| id.parse::<u64>().ok())
        .ok_or(RestError::Payload {
            what: "open a ticket thread",
            detail: "the answer has no channel id".into(),
        })?;
    if let Err(error) = shared
        .assistant
        .set_ticket_thread(id, &thread_id.to_string())
    {
        tracing::warn!(%error, ticket = id, "could not store the ticket's thread");
    }
    let mut post = shared.reply(Target::Channel {
        channel_id: ChannelId::new(thread_id),
        reply_to: None,
    });
    post.set_buttons(staff_buttons(id));
    post.show_with_own_mentions(&transcript(opened, guild))
        .await?;
    tracing::info!(ticket = id, thread = thread_id, "ticket thread opened");
    Ok(())
}

const STAFF_ONLY: &str = "Only the shop's staff can work on tickets.";
const GONE: &str = "That ticket is resolved already (or no longer stored).";
const ADMINS_ONLY: &str = "Only admins can add answers to the FAQ.";

async fn is_staff(shared: &BotState, guild: Option<u64>, user: u64, roles: &[u64]) -> bool {
    shared.role_of(guild, user, roles).await != Role::Customer
}

fn roles_of(member: Option<&serenity::all::Member>) -> Vec<u64> {
    member
        .map(|m| m.roles.iter().map(|r| r.get()).collect())
        .unwrap_or_default()
}

async fn answer(shared: &BotState, id: serenity::all::InteractionId, token: &str, text: &str) {
    if let Err(error) = reply::respond(&shared.rest, id, token, ephemeral_message(text)).await {
        tracing::warn!(%error, "could not answer a ticket interaction");
    }
}

/// A press of Claim or Resolve on a ticket.
pub async fn on_press(
    shared: &BotState,
    press: ComponentInteraction,
    action: TicketAction,
    id: i64,
) {
    let staff = press.user.id.get();
    let guild = press.guild_id.map(|g| g.get());
    let role = shared
        .role_of(guild, staff, &roles_of(press.member.as_ref()))
        .await;
    if role == Role::Customer {
        return answer(shared, press.id, &press.token, STAFF_ONLY).await;
    }
    let response = match action {
        TicketAction::Learn if !policy::may(role, Action::AcceptKnowledge) => {
            return answer(shared, press.id, &press.token, ADMINS_ONLY).await
        }
        TicketAction::Learn => return learn(shared, &press, id).await,
        TicketAction::Claim => match shared.assistant.claim_ticket(id, &staff.to_string()) {
            Ok(Some(_)) => {
                let content = format!(
                    "{}\n**Claimed by** <@{staff}>",
                    claimed_line_removed(&press.message.content)
                );
                json!({"type": 7, "data": {"content": content, "components": staff_buttons(id),
                    "allowed_mentions": {"parse": []}}})
            }
            Ok(None) => return answer(shared, press.id, &press.token, GONE).await,
            Err(error) => {
                return answer(shared, press.id, &press.token, &error.user_message()).await
            }
        },
        TicketAction::Resolve => json!({"type": 9, "data": {
            "custom_id": custom_id("answer", id),
            "title": format!("Resolve ticket {id}"),
            "components": [{"type": 1, "components": [{
                "type": 4, "custom_id": "answer", "style": 2, "required": true,
                "label": "Answer for the customer", "min_length": 1, "max_length": 1800,
            }]}],
        }}),
        TicketAction::Answer => return answer(shared, press.id, &press.token, GONE).await,
    };
    let sent = shared
        .rest
        .send(
            "answer a ticket button",
            Route::InteractionResponse {
                interaction_id: press.id,
                token: &press.token,
            },
            LightMethod::Post,
            Some(response),
            Body::Callback,
        )
        .await;
    match sent {
        Ok(_) => tracing::info!(ticket = id, ?action, "ticket button handled"),
        Err(error) => tracing::warn!(%error, "could not answer a ticket button"),
    }
}

/// The transcript without an earlier "Claimed by" line (a later claim replaces it).
fn claimed_line_removed(content: &str) -> String {
    content
        .lines()
        .filter(|line| !line.starts_with("**Claimed by**"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The Resolve modal, submitted: the answer is guarded, stored, and posted to the
/// customer as a reply from the team; the staff member is told privately.
pub async fn on_submit(shared: &BotState, submit: ModalInteraction) {
    let Some((TicketAction::Answer, id)) = parse(&submit.data.custom_id) else {
        return answer(shared, submit.id, &submit.token, GONE).await;
    };
    let staff = submit.user.id.get();
    let guild = submit.guild_id.map(|g| g.get());
    if !is_staff(shared, guild, staff, &roles_of(submit.member.as_ref())).await {
        return answer(shared, submit.id, &submit.token, STAFF_ONLY).await;
    }
    if let Err(error) =
        reply::respond(&shared.rest, submit.id, &submit.token, reply::defer(true)).await
    {
        return tracing::warn!(%error, "could not defer a ticket answer");
    }
    let text: String = submit
        .data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .find_map(|component| match component {
            ActionRowComponent::InputText(input) if input.custom_id == "answer" => {
                input.value.clone()
            }
            _ => None,
        })
        .unwrap_or_default();
    let note = match shared
        .assistant
        .resolve_ticket(id, &staff.to_string(), text.trim())
    {
        Ok(Some(ticket)) => {
            let delivered = post_to_customer(shared, &ticket).await;
            note_in_thread(shared, &ticket, staff, delivered).await;
            if let Some(post) = ticket.channel_id.as_deref().and_then(|c| c.parse().ok()) {
                let (channels, rest) = (&shared.channels, &shared.rest);
                let names = &shared.settings.forum_tags;
                threads::tag_post_reading(channels, rest, names, post, PostState::Solved).await;
            }
            if delivered {
                "Sent to the customer; the ticket is resolved.".to_string()
            } else {
                "The ticket is resolved, but the answer could not be posted to the customer \
                 (see the log)."
                    .to_string()
            }
        }
        Ok(None) => GONE.to_string(),
        Err(error) => error.user_message(),
    };
    let mut told = shared.reply(Target::Interaction {
        application_id: submit.application_id,
        token: submit.token.clone(),
        ephemeral: true,
    });
    shared.show(&mut told, &note).await;
}

/// Posts `text` (with `buttons`) in the ticket's staff thread, if it has one; failures
/// are logged. `text` is the adapter's own, with mention markup kept: customer words in
/// it must come quoted by [`super::modlog::quoted`].
async fn post_in_thread(shared: &BotState, ticket: &Ticket, text: &str, buttons: Option<Value>) {
    let Some(thread) = ticket
        .thread_id
        .as_deref()
        .and_then(|t| t.parse::<u64>().ok())
    else {
        return;
    };
    let mut note = shared.reply(Target::Channel {
        channel_id: ChannelId::new(thread),
        reply_to: None,
    });
    if let Some(buttons) = buttons {
        note.set_buttons(buttons);
    }
    if let Err(error) = note.show_with_own_mentions(text).await {
        tracing::error!(%error, ticket = ticket.id, "could not post in the ticket's thread");
    }
}

/// Notes the resolution in the ticket's thread, for the rest of the team, with the button
/// that adds the answer to the FAQ.
async fn note_in_thread(shared: &BotState, ticket: &Ticket, staff: u64, delivered: bool) {
    let outcome = if delivered {
        "sent to the customer"
    } else {
        "could not be posted to the customer"
    };
    let text = format!(
        "**Resolved by** <@{staff}>; the answer ({outcome}): {}\nAn admin can add it to the \
         FAQ (a candidate entry: `shopkeep knowledge candidates`).",
        super::modlog::quoted(ticket.answer.as_deref().unwrap_or_default())
    );
    post_in_thread(shared, ticket, &text, Some(learn_button(ticket.id))).await;
}

/// An admin's press of Add to the FAQ: deferred privately (writing and reloading the
/// prompts takes a moment), the candidate written into the knowledge files, the prompts
/// reloaded; the admin is told privately and the team in the thread.
async fn learn(shared: &BotState, press: &ComponentInteraction, id: i64) {
    if let Err(error) =
        reply::respond(&shared.rest, press.id, &press.token, reply::defer(true)).await
    {
        return tracing::warn!(%error, "could not defer an Add to the FAQ press");
    }
    let admin = press.user.id.get();
    let text = match shared
        .assistant
        .accept_ticket_answer(id, &admin.to_string())
        .await
    {
        Ok((accepted, reload)) => {
            let file = accepted
                .file
                .file_name()
                .map(|name| name.to_string_lossy().to_string())
                .unwrap_or_default();
            if let Ok(Some(ticket)) = shared.assistant.store().ticket(id) {
                let note = format!(
                    "**Added to the FAQ** by <@{admin}> as `{}` (knowledge/{file}).",
                    accepted.entry_id
                );
                post_in_thread(shared, &ticket, &note, None).await;
            }
            format!(
                "Added to the FAQ as `{}` in knowledge/{file}.\n{}",
                accepted.entry_id, reload.summary
            )
        }
        Err(error) => {
            tracing::warn!(%error, ticket = id, "could not add a ticket's answer to the FAQ");
            error.user_message()
        }
    };
    let mut told = shared.reply(Target::Interaction {
        application_id: press.application_id,
        token: press.token.clone(),
        ephemeral: true,
    });
    shared.show(&mut told, &text).await;
}

/// Posts a resolved ticket's answer where the customer asked, as a reply to their
/// message (in a thread opened on that message, which shares its id: plainly); whether it
/// was posted.
async fn post_to_customer(shared: &BotState, ticket: &Ticket) -> bool {
    let Some(channel) = ticket
        .channel_id
        .as_deref()
        .and_then(|c| c.parse::<u64>().ok())
    else {
        tracing::warn!(ticket = ticket.id, "the ticket has no channel to answer in");
        return false;
    };
    let reply_to = ticket
        .question_message_id
        .as_deref()
        .and_then(|m| m.parse::<u64>().ok())
        .filter(|m| *m != 0 && *m != channel)
        .map(MessageId::new);
    let mut post = shared.reply(Target::Channel {
        channel_id: ChannelId::new(channel),
        reply_to,
    });
    let text = format!(
        "**From the team:** {}",
        ticket.answer.as_deref().unwrap_or_default()
    );
    shared.show(&mut post, &text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_custom_ids_round_trip() {
        assert_eq!(
            parse(&custom_id("claim", 7)),
            Some((TicketAction::Claim, 7))
        );
        assert_eq!(
            parse(&custom_id("resolve", 7)),
            Some((TicketAction::Resolve, 7))
        );
        assert_eq!(
            parse(&custom_id("answer", 7)),
            Some((TicketAction::Answer, 7))
        );
        assert_eq!(
            parse(&custom_id("learn", 7)),
            Some((TicketAction::Learn, 7))
        );
        for bad in [
            "ticket:claim",
            "ticket:close:1",
            "ticket:claim:x",
            "desk:up:1:2",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_later_claim_replaces_the_earlier_line() {
        let content = "**Ticket 1**: x\nQuestion: `q`\n**Claimed by** <@5>";
        assert_eq!(
            claimed_line_removed(content),
            "**Ticket 1**: x\nQuestion: `q`"
        );
    }

    #[test]
    fn jump_links_point_at_the_message() {
        assert_eq!(
            jump_link(Some("1"), "2", "3"),
            "https://discord.com/channels/1/2/3"
        );
        assert_eq!(
            jump_link(None, "2", "3"),
            "https://discord.com/channels/@me/2/3"
        );
    }
}
