//! Routing a gateway message to an [`Inbound`] question, or to nothing.
//!
//! The decision is a pure function of [`MessageFacts`] (what the message says about itself)
//! and [`RoutingRules`] (who the bot is and what the shop configured), so it is unit-tested
//! without a gateway.

use serenity::model::channel::{Message, MessageType};
use serenity::model::Permissions;

use super::settings::DiscordSettings;
use crate::assistant::{Inbound, InboundKind, Role};

/// The parts of a Discord message that routing looks at.
#[derive(Debug, Clone, Default)]
pub struct MessageFacts {
    /// The author's user id.
    pub author_id: u64,
    /// The author's display name (global name), else their user name.
    pub author_name: String,
    /// The author is a bot account, or the message came from a webhook.
    pub author_is_bot: bool,
    /// An ordinary message or a reply (not a join notice, pin, thread event, …).
    pub is_regular: bool,
    /// The server; `None` for a direct message.
    pub guild_id: Option<u64>,
    /// The channel (or thread) the message was posted in.
    pub channel_id: u64,
    /// For a message in a thread: the thread's parent channel (or forum), when known.
    pub parent_channel_id: Option<u64>,
    /// The text as posted, mentions included.
    pub content: String,
    /// Users the message mentions (Discord adds a replied-to author here too).
    pub mentions: Vec<u64>,
    /// The message replies to one of the bot's own messages.
    pub replies_to_bot: bool,
    /// The author's roles in the guild (empty in DMs).
    pub roles: Vec<u64>,
}

impl MessageFacts {
    /// Extracts the facts from a serenity message. `own_message` tells whether a message id
    /// is one the bot sent (for replies whose referenced message was not included).
    pub fn from_message(msg: &Message, bot_id: u64, own_message: impl Fn(u64) -> bool) -> Self {
        let replies_to_bot = match (&msg.referenced_message, &msg.message_reference) {
            (Some(referenced), _) => referenced.author.id.get() == bot_id,
            (None, Some(reference)) => reference.message_id.is_some_and(|id| own_message(id.get())),
            (None, None) => false,
        };
        Self {
            author_id: msg.author.id.get(),
            author_name: msg
                .author
                .global_name
                .clone()
                .unwrap_or_else(|| msg.author.name.clone()),
            author_is_bot: msg.author.bot || msg.webhook_id.is_some(),
            is_regular: matches!(msg.kind, MessageType::Regular | MessageType::InlineReply),
            guild_id: msg.guild_id.map(|g| g.get()),
            channel_id: msg.channel_id.get(),
            parent_channel_id: None,
            content: msg.content.clone(),
            mentions: msg.mentions.iter().map(|u| u.id.get()).collect(),
            replies_to_bot,
            roles: msg
                .member
                .as_ref()
                .map(|m| m.roles.iter().map(|r| r.get()).collect())
                .unwrap_or_default(),
        }
    }
}

/// Who the bot is and what the shop configured; everything routing needs besides the message.
#[derive(Debug, Clone)]
pub struct RoutingRules {
    /// The bot's own user id (0 while unknown: nothing counts as mentioning it).
    pub bot_id: u64,
    /// The shop's servers; empty: every server (then only role ids make staff).
    pub guilds: Vec<u64>,
    /// Channels (and forums) where every message is a question, without a mention.
    pub support_channels: Vec<u64>,
    /// Whether direct messages are answered.
    pub answer_dms: bool,
    /// Role ids that make a member a moderator.
    pub mod_roles: Vec<u64>,
    /// Role ids that make a member an admin.
    pub admin_roles: Vec<u64>,
}

impl RoutingRules {
    /// Rules for the bot `bot_id` from the Discord settings.
    pub fn new(bot_id: u64, settings: &DiscordSettings) -> Self {
        Self {
            bot_id,
            guilds: settings.guilds.clone(),
            support_channels: settings.support_channels.clone(),
            answer_dms: settings.answer_dms,
            mod_roles: settings.mod_roles.clone(),
            admin_roles: settings.admin_roles.clone(),
        }
    }

    /// Whether the bot serves a message or command from `guild` (`None`: a DM, served).
    pub fn serves(&self, guild: Option<u64>) -> bool {
        match guild {
            None => true,
            Some(guild) => self.guilds.is_empty() || self.guilds.contains(&guild),
        }
    }

    /// Whether `guild` is one of the configured shop servers (whose permissions count).
    pub fn is_shop_guild(&self, guild: Option<u64>) -> bool {
        guild.is_some_and(|g| self.guilds.contains(&g))
    }

    /// The asker's role. Admin: a role in `admin_roles`, or the Administrator permission
    /// server-wide. Moderator: a role in `mod_roles`, or Manage Messages server-wide (admins
    /// are moderators too). Else Customer. Nobody is staff outside a served server (DMs
    /// included); `guild_permissions` (server-wide, never one channel's) count only in a
    /// configured shop server.
    pub fn role(
        &self,
        guild: Option<u64>,
        roles: &[u64],
        guild_permissions: Option<Permissions>,
    ) -> Role {
        if guild.is_none() || !self.serves(guild) {
            return Role::Customer;
        }
        let perms = guild_permissions
            .filter(|_| self.is_shop_guild(guild))
            .unwrap_or_else(Permissions::empty);
        if perms.administrator() || roles.iter().any(|r| self.admin_roles.contains(r)) {
            Role::Admin
        } else if perms.manage_messages() || roles.iter().any(|r| self.mod_roles.contains(r)) {
            Role::Moderator
        } else {
            Role::Customer
        }
    }

    /// Whether the message is in a support channel, or in a thread (a forum post
    /// included) whose parent is one.
    pub fn is_support_channel(&self, facts: &MessageFacts) -> bool {
        self.support_channels.contains(&facts.channel_id)
            || facts
                .parent_channel_id
                .is_some_and(|parent| self.support_channels.contains(&parent))
    }

    /// Whether the message would be answered if its channel were a thread under a
    /// support channel: the only case where the channel's parent must be looked up.
    pub fn needs_parent(&self, facts: &MessageFacts) -> bool {
        !self.support_channels.is_empty()
            && facts.parent_channel_id.is_none()
            && facts.guild_id.is_some()
            && facts.author_id != self.bot_id
            && !facts.author_is_bot
            && facts.is_regular
            && self.serves(facts.guild_id)
    }

    /// Decides whether the bot answers this message, and how it reached the bot.
    ///
    /// Answered: a reply to the bot's own message; a mention of the bot; a DM (unless DMs
    /// are off); any message in a support channel or in a thread under one (a post in a forum
    /// listed as one). Ignored: the bot itself, other bots and
    /// webhooks, system messages, servers that are not the shop's, everything else. The
    /// role is from role ids alone; the caller adds server-wide permissions. The returned
    /// text has the bot's mention (`<@id>` or `<@!id>`) removed.
    pub fn route(&self, facts: &MessageFacts) -> Option<Inbound> {
        if facts.author_id == self.bot_id
            || facts.author_is_bot
            || !facts.is_regular
            || !self.serves(facts.guild_id)
        {
            return None;
        }
        let mentioned = facts.mentions.contains(&self.bot_id)
            || facts.content.contains(&format!("<@{}>", self.bot_id))
            || facts.content.contains(&format!("<@!{}>", self.bot_id));
        let kind = if facts.guild_id.is_none() {
            if !self.answer_dms {
                return None;
            }
            InboundKind::DirectMessage
        } else if facts.replies_to_bot {
            InboundKind::ReplyToBot
        } else if mentioned {
            InboundKind::Mention
        } else if self.is_support_channel(facts) {
            InboundKind::SupportChannel
        } else {
            return None;
        };
        Some(Inbound {
            user_id: facts.author_id.to_string(),
            user_name: facts.author_name.clone(),
            channel_id: Some(facts.channel_id.to_string()),
            guild_id: facts.guild_id.map(|g| g.to_string()),
            text: strip_mention(&facts.content, self.bot_id),
            kind,
            role: self.role(facts.guild_id, &facts.roles, None),
        })
    }
}

/// Removes every `<@id>` and `<@!id>` of the bot and tidies the spaces left behind.
pub fn strip_mention(content: &str, bot_id: u64) -> String {
    let plain = format!("<@{bot_id}>");
    let nick = format!("<@!{bot_id}>");
    let text = content.replace(&nick, " ").replace(&plain, " ");
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: u64 = 1000;
    const SUPPORT: u64 = 42;

    fn rules() -> RoutingRules {
        RoutingRules {
            bot_id: BOT,
            guilds: vec![1],
            support_channels: vec![SUPPORT],
            answer_dms: true,
            mod_roles: vec![7],
            admin_roles: vec![9],
        }
    }

    fn guild_msg(content: &str) -> MessageFacts {
        MessageFacts {
            author_id: 5,
            author_name: "ann".into(),
            is_regular: true,
            guild_id: Some(1),
            channel_id: 2,
            content: content.into(),
            ..Default::default()
        }
    }

    #[test]
    fn mention_is_answered_and_stripped() {
        let mut facts = guild_msg("<@1000> where is my order?");
        facts.mentions = vec![BOT];
        let inbound = rules().route(&facts).unwrap();
        assert_eq!(inbound.kind, InboundKind::Mention);
        assert_eq!(inbound.text, "where is my order?");
        assert_eq!(inbound.user_id, "5");
        assert_eq!(inbound.channel_id.as_deref(), Some("2"));
        assert_eq!(inbound.guild_id.as_deref(), Some("1"));

        let facts = guild_msg("hey <@!1000>   can I   return this?");
        assert_eq!(
            rules().route(&facts).unwrap().text,
            "hey can I return this?"
        );
    }

    #[test]
    fn unrelated_bots_and_self_are_ignored() {
        assert!(rules().route(&guild_msg("hello everyone")).is_none());
        let mut other_user = guild_msg("<@2000> hi");
        other_user.mentions = vec![2000];
        assert!(rules().route(&other_user).is_none());

        let mut bot = guild_msg("<@1000> hi");
        bot.author_is_bot = true;
        assert!(rules().route(&bot).is_none());

        let mut me = guild_msg("<@1000> hi");
        me.author_id = BOT;
        assert!(rules().route(&me).is_none());

        let mut system = guild_msg("<@1000> joined");
        system.is_regular = false;
        assert!(rules().route(&system).is_none());
    }

    #[test]
    fn support_channel_dm_and_reply() {
        let mut support = guild_msg("do you ship to Norway?");
        support.channel_id = SUPPORT;
        assert_eq!(
            rules().route(&support).unwrap().kind,
            InboundKind::SupportChannel
        );

        let mut dm = guild_msg("hello");
        dm.guild_id = None;
        let inbound = rules().route(&dm).unwrap();
        assert_eq!(inbound.kind, InboundKind::DirectMessage);
        assert_eq!(inbound.guild_id, None);
        let mut no_dms = rules();
        no_dms.answer_dms = false;
        assert!(no_dms.route(&dm).is_none());

        let mut thread = guild_msg("my lid cracked");
        thread.channel_id = 77;
        assert!(rules().route(&thread).is_none());
        assert!(rules().needs_parent(&thread));
        thread.parent_channel_id = Some(SUPPORT);
        assert_eq!(
            rules().route(&thread).unwrap().kind,
            InboundKind::SupportChannel
        );
        assert!(!rules().needs_parent(&thread));
        thread.parent_channel_id = Some(2);
        assert!(rules().route(&thread).is_none());

        let mut reply = guild_msg("and what about returns?");
        reply.replies_to_bot = true;
        reply.mentions = vec![BOT];
        assert_eq!(rules().route(&reply).unwrap().kind, InboundKind::ReplyToBot);
    }

    proptest::proptest! {
        /// The fuzz target `routing` (fuzz/) checks the same on arbitrary bytes.
        #[test]
        fn stripping_leaves_no_mention_and_is_idempotent(
            content in proptest::string::string_regex("(<@!?1000>|<@|!|1000|>| |\n|\t|[a-z]|é|\u{200B}){0,40}").unwrap(),
            flags in 0u8..=255,
        ) {
            let mut facts = guild_msg(&content);
            facts.mentions = if flags & 1 == 1 { vec![BOT] } else { Vec::new() };
            facts.replies_to_bot = flags & 2 == 2;
            facts.guild_id = (flags & 4 == 0).then_some(1);
            facts.channel_id = if flags & 8 == 8 { SUPPORT } else { 2 };
            if let Some(inbound) = rules().route(&facts) {
                let text = inbound.text;
                proptest::prop_assert!(!text.contains("<@1000>") && !text.contains("<@!1000>"), "{:?}", text);
                proptest::prop_assert_eq!(text.trim(), text.as_str());
                proptest::prop_assert_eq!(strip_mention(&text, BOT), text.clone());
            }
        }
    }

    #[test]
    fn roles_and_permissions() {
        let r = rules();
        let shop = Some(1);
        assert_eq!(r.role(shop, &[], None), Role::Customer);
        assert_eq!(r.role(shop, &[7], None), Role::Moderator);
        assert_eq!(r.role(shop, &[7, 9], None), Role::Admin);
        assert_eq!(
            r.role(shop, &[], Some(Permissions::MANAGE_MESSAGES)),
            Role::Moderator
        );
        assert_eq!(
            r.role(shop, &[], Some(Permissions::ADMINISTRATOR)),
            Role::Admin
        );
        assert_eq!(
            r.role(shop, &[3], Some(Permissions::SEND_MESSAGES)),
            Role::Customer
        );
    }

    #[test]
    fn nobody_is_staff_outside_the_shops_servers() {
        let r = rules();
        let elsewhere = Some(99);
        assert_eq!(
            r.role(elsewhere, &[9], Some(Permissions::ADMINISTRATOR)),
            Role::Customer
        );
        assert_eq!(
            r.role(None, &[9], Some(Permissions::ADMINISTRATOR)),
            Role::Customer
        );
        // Without SHOPKEEP_GUILDS, permissions never count; configured role ids still do.
        let open = RoutingRules {
            guilds: Vec::new(),
            ..rules()
        };
        assert_eq!(
            open.role(elsewhere, &[], Some(Permissions::ADMINISTRATOR)),
            Role::Customer
        );
        assert_eq!(open.role(elsewhere, &[9], None), Role::Admin);
    }

    #[test]
    fn messages_from_other_servers_are_ignored() {
        let mut facts = guild_msg("<@1000> where is my order?");
        facts.mentions = vec![BOT];
        facts.guild_id = Some(99);
        assert!(rules().route(&facts).is_none());
        let open = RoutingRules {
            guilds: Vec::new(),
            ..rules()
        };
        assert!(open.route(&facts).is_some());
    }
}
