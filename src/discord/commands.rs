//! Slash commands: their definitions, permission checks, and translation to the assistant.
//!
//! Contract: every interaction is acknowledged at once (a deferral, or an ephemeral
//! refusal); a refusal does no other work. Answers come by editing the original response,
//! with follow-ups for parts past 2,000 characters.

use serenity::all::{
    CommandDataOptionValue, CommandInteraction, CommandOptionType, CreateCommand,
    CreateCommandOption,
};

use super::reply::{self, defer, ephemeral_message, Target};
use super::Shared;
use crate::assistant::{ChannelMessage, Inbound, InboundKind, Role};

/// Messages `/summarise` reads when no count is given.
pub const DEFAULT_SUMMARY_COUNT: i64 = 50;
/// Most messages `/summarise` reads (Discord returns at most 100 per request).
pub const MAX_SUMMARY_COUNT: i64 = 100;

/// The commands registered at start.
pub fn definitions() -> Vec<CreateCommand> {
    vec![
        CreateCommand::new("ask")
            .description("Ask the shop assistant a question")
            .add_option(
                CreateCommandOption::new(CommandOptionType::String, "question", "Your question")
                    .required(true)
                    .max_length(2000),
            ),
        CreateCommand::new("forget")
            .description("Forget our conversation so far (only you see the answer)"),
        CreateCommand::new("summarise")
            .description("Moderators: summarise this channel's recent messages")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::Integer,
                    "count",
                    "How many recent messages to read (default 50, at most 100)",
                )
                .min_int_value(1)
                .max_int_value(MAX_SUMMARY_COUNT as u64),
            ),
        CreateCommand::new("reload-prompts")
            .description("Admins: reload the prompts and shop knowledge from disk"),
    ]
}

/// Handles one slash command (already counted as in-flight work by the caller).
pub async fn handle(shared: &Shared, command: CommandInteraction) {
    let role = shared.rules().role(
        &command
            .member
            .as_ref()
            .map(|m| m.roles.iter().map(|r| r.get()).collect::<Vec<_>>())
            .unwrap_or_default(),
        command.member.as_ref().and_then(|m| m.permissions),
    );
    let name = command.data.name.as_str();
    tracing::info!(command = name, ?role, "slash command");
    let result = match name {
        "ask" => ask(shared, &command, role).await,
        "forget" => forget(shared, &command).await,
        "summarise" | "summarize" => summarise(shared, &command, role).await,
        "reload-prompts" => reload_prompts(shared, &command, role).await,
        other => {
            tracing::warn!(command = other, "unknown slash command");
            reply::respond(
                &shared.rest,
                command.id,
                &command.token,
                ephemeral_message("I do not know that command."),
            )
            .await
        }
    };
    if let Err(error) = result {
        tracing::error!(%error, command = name, "could not answer a slash command");
    }
}

fn target(command: &CommandInteraction, ephemeral: bool) -> Target {
    Target::Interaction {
        application_id: command.application_id,
        token: command.token.clone(),
        ephemeral,
    }
}

async fn refuse(
    shared: &Shared,
    command: &CommandInteraction,
    text: &str,
) -> Result<(), super::rest::RestError> {
    tracing::info!(command = %command.data.name, "refused: not allowed");
    reply::respond(
        &shared.rest,
        command.id,
        &command.token,
        ephemeral_message(text),
    )
    .await
}

async fn ask(
    shared: &Shared,
    command: &CommandInteraction,
    role: Role,
) -> Result<(), super::rest::RestError> {
    let question = command
        .data
        .options
        .iter()
        .find(|o| o.name == "question")
        .and_then(|o| match &o.value {
            CommandDataOptionValue::String(s) => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_default();
    reply::respond(&shared.rest, command.id, &command.token, defer(false)).await?;
    let inbound = Inbound {
        user_id: command.user.id.get().to_string(),
        user_name: command
            .user
            .global_name
            .clone()
            .unwrap_or_else(|| command.user.name.clone()),
        channel_id: Some(command.channel_id.get().to_string()),
        guild_id: command.guild_id.map(|g| g.get().to_string()),
        text: question,
        kind: InboundKind::SlashCommand,
        role,
    };
    crate::metrics::METRICS.request(crate::metrics::Source::Command);
    let outcome = shared.assistant.handle(inbound).await;
    shared
        .post_outcome(&mut shared.reply(target(command, false)), outcome)
        .await;
    Ok(())
}

async fn forget(
    shared: &Shared,
    command: &CommandInteraction,
) -> Result<(), super::rest::RestError> {
    reply::respond(&shared.rest, command.id, &command.token, defer(true)).await?;
    let text = match shared
        .assistant
        .forget(&command.user.id.get().to_string())
        .await
    {
        Ok(()) => "Done: I have forgotten our conversation.".to_string(),
        Err(error) => {
            tracing::error!(%error, "forget failed");
            error.user_message()
        }
    };
    shared.reply(target(command, true)).show(&text).await
}

async fn summarise(
    shared: &Shared,
    command: &CommandInteraction,
    role: Role,
) -> Result<(), super::rest::RestError> {
    if role < Role::Moderator {
        return refuse(shared, command, "Sorry, /summarise is for moderators.").await;
    }
    let count = command
        .data
        .options
        .iter()
        .find(|o| o.name == "count")
        .and_then(|o| o.value.as_i64())
        .unwrap_or(DEFAULT_SUMMARY_COUNT)
        .clamp(1, MAX_SUMMARY_COUNT);
    reply::respond(&shared.rest, command.id, &command.token, defer(true)).await?;
    let mut reply = shared.reply(target(command, true));
    let fetched = shared
        .rest
        .channel_messages(command.channel_id, count as u8)
        .await;
    let messages = match fetched {
        Ok(messages) => messages,
        Err(error) => {
            tracing::error!(%error, "could not read the channel's messages");
            return reply
                .show("Sorry, I could not read this channel's messages.")
                .await;
        }
    };
    let bot_id = shared.bot_id();
    // Discord lists newest first; the assistant wants oldest first, without the bot's own.
    let channel = command.channel_id.get();
    let messages: Vec<ChannelMessage> = messages
        .into_iter()
        .rev()
        .filter(|m| m.author_id != bot_id && !m.content.trim().is_empty())
        .map(|m| ChannelMessage {
            id: m.id.to_string(),
            author: m.author_name,
            text: m.content,
            link: command
                .guild_id
                .map(|g| format!("https://discord.com/channels/{g}/{channel}/{}", m.id)),
        })
        .collect();
    tracing::info!(messages = messages.len(), "summarising");
    let outcome = shared.assistant.summarise(messages).await;
    shared.post_outcome(&mut reply, outcome).await;
    Ok(())
}

async fn reload_prompts(
    shared: &Shared,
    command: &CommandInteraction,
    role: Role,
) -> Result<(), super::rest::RestError> {
    if role < Role::Admin {
        return refuse(shared, command, "Sorry, /reload-prompts is for admins.").await;
    }
    reply::respond(&shared.rest, command.id, &command.token, defer(true)).await?;
    let assistant = shared.assistant.clone();
    let result = tokio::task::spawn_blocking(move || assistant.reload_prompts()).await;
    let text = match result {
        Ok(Ok(report)) => format!("Prompts reloaded.\n{}", report.summary),
        Ok(Err(error)) => {
            tracing::warn!(%error, "prompt reload failed");
            error.user_message()
        }
        Err(join) => {
            tracing::error!(%join, "prompt reload panicked");
            "The prompts were not reloaded: the reload crashed; the previous ones stay in service."
                .to_string()
        }
    };
    shared.reply(target(command, true)).show(&text).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_commands_with_their_options() {
        let json = serde_json::to_value(definitions()).unwrap();
        let names: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["ask", "forget", "summarise", "reload-prompts"]);
        assert_eq!(json[0]["options"][0]["name"], "question");
        assert_eq!(json[0]["options"][0]["required"], true);
        assert_eq!(json[2]["options"][0]["name"], "count");
    }
}
