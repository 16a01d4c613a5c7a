//! Who asks what, and how it reached the bot: the platform-neutral question an adapter
//! hands to [`Assistant::handle`](super::Assistant::handle).

/// Who is asking, as the adapter resolved it from roles and permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Anyone else: asks questions, within the rate limits.
    Customer,
    /// A moderator: may also summarise channels, draft posts and read insights.
    Moderator,
    /// An admin: a moderator who may also reload the prompts and accept FAQ entries.
    Admin,
}

/// How the question reached the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundKind {
    /// The bot was mentioned in a server channel.
    Mention,
    /// A reply to one of the bot's messages.
    ReplyToBot,
    /// A direct message to the bot.
    DirectMessage,
    /// A message in a support channel (or its thread), where no mention is needed.
    SupportChannel,
    /// A slash command (`/ask`).
    SlashCommand,
    /// The terminal chat (`shopkeep chat`).
    Terminal,
}

/// A platform-neutral question.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Stable user key: the Discord user id, or the terminal `--user` name.
    pub user_id: String,
    /// The asker's display name, as the platform shows it (answers do not use it).
    pub user_name: String,
    /// Where it was asked (the rate limit per channel keys on it); `None` in the terminal.
    pub channel_id: Option<String>,
    /// The server it was asked in; `None` for a direct message or the terminal. One user's
    /// conversation is kept per server, and one for direct messages.
    pub guild_id: Option<String>,
    /// The question with any bot mention already stripped.
    pub text: String,
    /// How it reached the bot.
    pub kind: InboundKind,
    /// Who is asking; staff may skip the rate limits
    /// ([`crate::config::LimitSettings::exempt_staff`]).
    pub role: Role,
}
