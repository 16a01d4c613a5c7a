//! Slash commands: their definitions, permission checks, and translation to the assistant.
//!
//! Contract: every interaction is acknowledged at once (a deferral, or an ephemeral
//! refusal); a refusal does no other work. Answers come by editing the original response,
//! with follow-ups for parts past 2,000 characters.

use serenity::all::{
    CommandDataOptionValue, CommandInteraction, CommandOptionType, CreateCommand,
    CreateCommandOption,
};

use super::history::{lower_bound, parse_since, to_channel_messages, DEFAULT_SUMMARY_COUNT};
use super::reply::{self, defer, ephemeral_message, Target};
use super::BotState;
use crate::assistant::moderation::drafts::DraftRequest;
use crate::assistant::policy::{may, Action};
use crate::assistant::{Inbound, InboundKind, Outcome, Role};

/// The `count` option's upper bound; `SHOPKEEP_SUMMARY_MAX_MESSAGES` caps it further.
pub const MAX_SUMMARY_COUNT: u64 = 2000;

/// The refusal of any command from a server that is not one of the shop's.
pub const NOT_THIS_SERVER: &str = "Sorry, I only work in this shop's own Discord server.";

/// The refusal of `/summarise` to a moderator who cannot read the channel's history.
pub const CANNOT_READ_CHANNEL: &str =
    "Sorry, you cannot read this channel's history, so I will not summarise it for you.";

/// `/insights` looks back this many days when no `days` option is given.
pub const DEFAULT_INSIGHTS_DAYS: u32 = 7;
/// The `days` option's upper bound.
pub const MAX_INSIGHTS_DAYS: u64 = 365;

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
                    "How many recent messages to read (default 100; the server caps it, 500 unless set)",
                )
                .min_int_value(1)
                .max_int_value(MAX_SUMMARY_COUNT),
            )
            .add_option(CreateCommandOption::new(
                CommandOptionType::String,
                "since",
                "Only newer messages: 30m, 2h, 1d, 1w, or a message link or id",
            ))
            .add_option(CreateCommandOption::new(
                CommandOptionType::Boolean,
                "public",
                "Post the summary for everyone in the channel (default: only you see it)",
            )),
        CreateCommand::new("reload-prompts")
            .description("Admins: reload the prompts and shop knowledge from disk"),
        CreateCommand::new("insights")
            .description("Moderators: what customers asked, what the bot could not answer, feedback")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::Integer,
                    "days",
                    "How many days back to look (default 7)",
                )
                .min_int_value(1)
                .max_int_value(MAX_INSIGHTS_DAYS),
            ),
        CreateCommand::new("draft")
            .description("Moderators: draft a product description or a community post (only you see it)")
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "product",
                    "Draft a description of this catalogue product (name or id)",
                )
                .max_length(100),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "post",
                    "Or: draft a community post on this topic",
                )
                .max_length(300),
            )
            .add_option(
                CreateCommandOption::new(
                    CommandOptionType::String,
                    "notes",
                    "Anything the draft should mention (optional)",
                )
                .max_length(500),
            ),
    ]
}

/// Handles one slash command (already counted as in-flight work by the caller).
pub async fn handle(shared: &BotState, command: CommandInteraction) {
    let guild = command.guild_id.map(|g| g.get());
    if !shared.rules().serves(guild) {
        tracing::info!(?guild, "refused: a server that is not the shop's");
        if let Err(error) = refuse(shared, &command, NOT_THIS_SERVER).await {
            tracing::warn!(%error, "could not refuse a command from another server");
        }
        return;
    }
    let roles = command
        .member
        .as_ref()
        .map(|m| m.roles.iter().map(|r| r.get()).collect::<Vec<_>>())
        .unwrap_or_default();
    let role = shared.role_of(guild, command.user.id.get(), &roles).await;
    let name = command.data.name.as_str();
    tracing::info!(command = name, ?role, "slash command");
    let result = match name {
        "ask" => ask(shared, &command, role).await,
        "forget" => forget(shared, &command).await,
        "summarise" | "summarize" => summarise(shared, &command, role).await,
        "reload-prompts" => reload_prompts(shared, &command, role).await,
        "insights" => insights(shared, &command, role).await,
        "draft" => draft(shared, &command, role).await,
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

/// Tells the person who ran a command that it failed (after a panic): an immediate answer
/// if the interaction was not acknowledged yet, else an edit of its response.
pub async fn answer_after_panic(
    shared: &BotState,
    (id, application_id): (serenity::all::InteractionId, serenity::all::ApplicationId),
    token: &str,
    text: &str,
) {
    if reply::respond(&shared.rest, id, token, ephemeral_message(text))
        .await
        .is_ok()
    {
        return;
    }
    let mut reply = shared.reply(Target::Interaction {
        application_id,
        token: token.to_string(),
        ephemeral: true,
    });
    shared.show(&mut reply, text).await;
}

fn target(command: &CommandInteraction, ephemeral: bool) -> Target {
    Target::Interaction {
        application_id: command.application_id,
        token: command.token.clone(),
        ephemeral,
    }
}

async fn refuse(
    shared: &BotState,
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
    shared: &BotState,
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
    let places = shared.place_keys(command.channel_id.get()).await;
    let outcome = shared.assistant.handle_at(inbound, &places).await;
    let answered = matches!(outcome, Outcome::Answer(_) | Outcome::Reply(_));
    let mut reply = shared.reply(target(command, false));
    if answered {
        reply.set_buttons(super::buttons::answer_buttons(command.user.id.get(), 0));
    }
    if shared.post_outcome(&mut reply, outcome).await && answered {
        shared
            .link_answer(&reply, command.user.id.get(), command.channel_id.get())
            .await;
    }
    Ok(())
}

async fn forget(
    shared: &BotState,
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
    shared: &BotState,
    command: &CommandInteraction,
    role: Role,
) -> Result<(), super::rest::RestError> {
    if !may(role, Action::Summarise) {
        return refuse(shared, command, "Sorry, /summarise is for moderators.").await;
    }
    // The bot reads with its own permission: the moderator must be able to read this
    // channel's history themselves (their permission in this channel, overwrites included).
    let channel_permissions = command.member.as_ref().and_then(|m| m.permissions);
    if !can_read_history(channel_permissions) {
        return refuse(shared, command, CANNOT_READ_CHANNEL).await;
    }
    let max = shared.settings.summary_max_messages.max(1);
    let count = option(command, "count")
        .and_then(|v| v.as_i64())
        .map(|n| n.max(1) as usize)
        .unwrap_or(DEFAULT_SUMMARY_COUNT)
        .min(max);
    let public = option(command, "public")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let since = match option(command, "since").and_then(|v| v.as_str()) {
        None => None,
        Some(text) => match parse_since(text) {
            Ok(since) => Some(since),
            Err(error) => return refuse(shared, command, &error.to_string()).await,
        },
    };
    reply::respond(&shared.rest, command.id, &command.token, defer(!public)).await?;
    let mut reply = shared.reply(target(command, !public));
    let min_id = lower_bound(since, shared.assistant.now_ms());
    let listed = match super::history::fetch(&shared.rest, command.channel_id, count, min_id).await
    {
        Ok(listed) => listed,
        Err(error) => {
            tracing::error!(%error, "could not read the channel's messages");
            return reply
                .show("Sorry, I could not read this channel's messages.")
                .await;
        }
    };
    let messages = to_channel_messages(
        listed,
        shared.bot_id(),
        command.guild_id.map(|g| g.get()),
        command.channel_id.get(),
    );
    tracing::info!(messages = messages.len(), count, public, "summarising");
    let outcome = shared.assistant.summarise(messages).await;
    shared.post_outcome(&mut reply, outcome).await;
    Ok(())
}

/// Whether someone with these channel permissions may read the channel's history.
pub fn can_read_history(channel_permissions: Option<serenity::model::Permissions>) -> bool {
    channel_permissions
        .is_some_and(|p| p.administrator() || (p.view_channel() && p.read_message_history()))
}

/// The value of the command option `name`, if given.
fn option<'a>(command: &'a CommandInteraction, name: &str) -> Option<&'a CommandDataOptionValue> {
    command
        .data
        .options
        .iter()
        .find(|o| o.name == name)
        .map(|o| &o.value)
}

async fn insights(
    shared: &BotState,
    command: &CommandInteraction,
    role: Role,
) -> Result<(), super::rest::RestError> {
    if !may(role, Action::Insights) {
        return refuse(shared, command, "Sorry, /insights is for moderators.").await;
    }
    let days = option(command, "days")
        .and_then(|v| v.as_i64())
        .map(|d| d.clamp(1, MAX_INSIGHTS_DAYS as i64) as u32)
        .unwrap_or(DEFAULT_INSIGHTS_DAYS);
    reply::respond(&shared.rest, command.id, &command.token, defer(true)).await?;
    let insights = match shared.assistant.insights(days).await {
        Ok(insights) => insights,
        Err(error) => {
            tracing::error!(%error, "could not read insights");
            let sorry = "Sorry, I could not read the question log just now.";
            return shared.reply(target(command, true)).show(sorry).await;
        }
    };
    let heading = format!(
        "Insights, last {days} day{}",
        if days == 1 { "" } else { "s" }
    );
    let text = super::insights::markdown(&insights, &heading);
    shared.reply(target(command, true)).show(&text).await?;
    let png = match crate::insights_chart::png(&insights.daily) {
        Ok(png) => png,
        Err(error) => {
            tracing::error!(%error, "could not draw the insights chart");
            return Ok(());
        }
    };
    let caption = format!("Questions and feedback per day, last {days} day(s), UTC.");
    super::insights::post_chart(
        &shared.rest,
        command.application_id,
        &command.token,
        &caption,
        png,
    )
    .await
}

async fn draft(
    shared: &BotState,
    command: &CommandInteraction,
    role: Role,
) -> Result<(), super::rest::RestError> {
    if !may(role, Action::Draft) {
        return refuse(shared, command, "Sorry, /draft is for moderators.").await;
    }
    let text = |name: &str| {
        option(command, name)
            .and_then(|v| v.as_str())
            .map(crate::assistant::invisible::strip_invisible)
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    let notes = text("notes").unwrap_or_default();
    let request = match (text("product"), text("post")) {
        (Some(name), None) => DraftRequest::Product { name, notes },
        (None, Some(topic)) => DraftRequest::Post { topic, notes },
        _ => {
            return refuse(
                shared,
                command,
                "Give either product:<name> or post:<topic> (one of them).",
            )
            .await
        }
    };
    reply::respond(&shared.rest, command.id, &command.token, defer(true)).await?;
    let outcome = shared.assistant.draft(request).await;
    shared
        .post_outcome(&mut shared.reply(target(command, true)), outcome)
        .await;
    Ok(())
}

async fn reload_prompts(
    shared: &BotState,
    command: &CommandInteraction,
    role: Role,
) -> Result<(), super::rest::RestError> {
    if !may(role, Action::ReloadPrompts) {
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
    fn the_commands_with_their_options() {
        let json = serde_json::to_value(definitions()).unwrap();
        let names: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ask",
                "forget",
                "summarise",
                "reload-prompts",
                "insights",
                "draft"
            ]
        );
        assert_eq!(json[0]["options"][0]["name"], "question");
        assert_eq!(json[0]["options"][0]["required"], true);
        assert_eq!(json[2]["options"][0]["name"], "count");
    }

    #[test]
    fn reading_history_needs_view_and_read_history_in_the_channel() {
        use serenity::model::Permissions as P;
        assert!(!can_read_history(None));
        assert!(!can_read_history(Some(P::VIEW_CHANNEL)));
        assert!(!can_read_history(Some(P::READ_MESSAGE_HISTORY)));
        assert!(can_read_history(Some(
            P::VIEW_CHANNEL | P::READ_MESSAGE_HISTORY
        )));
        assert!(can_read_history(Some(P::ADMINISTRATOR)));
    }
}
