//! Gateway payloads a test injects: users, messages and slash-command interactions.
//!
//! serenity 0.12.5 drops an event whose payload does not deserialise, logging it only at
//! DEBUG, so a missing field shows up as a bot that never answers. The minimal payloads
//! that work: every dispatch needs `"s"`; READY needs `v, user, guilds, session_id,
//! resume_gateway_url, application{id,flags}`; MESSAGE_CREATE needs `id, channel_id,
//! author{id,username}, content, timestamp, tts, mention_everyone, mentions, mention_roles,
//! attachments, embeds, pinned, type` (a `member` needs `roles`); INTERACTION_CREATE needs
//! `id, application_id, type, data{id,name,type}, channel_id, token, version, locale,
//! entitlements, attachment_size_limit` (a `member` needs `user, roles, deaf, mute, flags`).

use serde_json::{json, Value};

use super::{FakeDiscord, APP_ID, BOT_ID, GUILD_ID};

pub fn user(id: u64, name: &str, bot: bool) -> Value {
    json!({
        "id": id.to_string(),
        "username": name,
        "discriminator": "0",
        "global_name": null,
        "avatar": null,
        "bot": bot,
    })
}

/// A message payload with the fields serenity requires.
pub fn message_json(
    id: u64,
    channel: u64,
    guild: Option<u64>,
    author: Value,
    content: &str,
) -> Value {
    let mut message = json!({
        "id": id.to_string(),
        "channel_id": channel.to_string(),
        "author": author,
        "content": content,
        "timestamp": "2026-11-28T12:00:00.000000+00:00",
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": false,
        "type": 0,
    });
    if let Some(guild) = guild {
        message["guild_id"] = json!(guild.to_string());
    }
    message
}

/// A MESSAGE_CREATE payload, built step by step.
#[derive(Debug, Clone)]
pub struct Msg {
    pub id: u64,
    pub channel: u64,
    pub guild: Option<u64>,
    pub author: Value,
    pub content: String,
    pub mentions: Vec<Value>,
    pub roles: Vec<u64>,
    pub reply_to: Option<Value>,
}

impl Msg {
    /// A guild message from a customer (user id `author_id`).
    pub fn new(fake: &FakeDiscord, channel: u64, author_id: u64, content: &str) -> Self {
        Self {
            id: fake.id(),
            channel,
            guild: Some(GUILD_ID),
            author: user(author_id, &format!("user{author_id}"), false),
            content: content.to_string(),
            mentions: Vec::new(),
            roles: Vec::new(),
            reply_to: None,
        }
    }

    /// Mentions the bot: `<@BOT_ID>` in front of the text and in `mentions`.
    pub fn mentioning_bot(mut self) -> Self {
        self.content = format!("<@{BOT_ID}> {}", self.content);
        self.mentions.push(user(BOT_ID, "shopkeep", true));
        self
    }

    pub fn sent_by_bot(mut self, id: u64) -> Self {
        self.author = user(id, "otherbot", true);
        self
    }

    pub fn dm(mut self) -> Self {
        self.guild = None;
        self
    }

    /// A Discord reply to `message` (a message payload), referenced in full.
    pub fn replying_to(mut self, message: Value) -> Self {
        self.reply_to = Some(message);
        self
    }

    /// A reply that carries only `message_reference` (no `referenced_message`).
    pub fn json_reference_only(&self) -> Value {
        let mut m = self.json();
        if let Some(object) = m.as_object_mut() {
            object.remove("referenced_message");
        }
        m
    }

    pub fn json(&self) -> Value {
        let mut m = message_json(
            self.id,
            self.channel,
            self.guild,
            self.author.clone(),
            &self.content,
        );
        m["mentions"] = json!(self.mentions);
        if self.guild.is_some() {
            m["member"] = json!({"roles": self.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(), "deaf": false, "mute": false});
        }
        if let Some(reference) = &self.reply_to {
            m["type"] = json!(19);
            m["message_reference"] = json!({
                "message_id": reference["id"],
                "channel_id": reference["channel_id"],
                "guild_id": self.guild.map(|g| g.to_string()),
            });
            m["referenced_message"] = reference.clone();
        }
        m
    }

    pub fn send(&self, fake: &FakeDiscord) {
        fake.dispatch("MESSAGE_CREATE", self.json());
    }
}

/// An INTERACTION_CREATE payload for a slash command in the guild.
pub fn command_interaction(
    fake: &FakeDiscord,
    name: &str,
    options: Value,
    channel: u64,
    user_id: u64,
    roles: &[u64],
    permissions: u64,
) -> (u64, String, Value) {
    let id = fake.id();
    let token = format!("interaction-token-{id}");
    let payload = json!({
        "id": id.to_string(),
        "application_id": APP_ID.to_string(),
        "type": 2,
        "data": {"id": fake.id().to_string(), "name": name, "type": 1, "options": options},
        "guild_id": GUILD_ID.to_string(),
        "channel_id": channel.to_string(),
        "member": {
            "user": user(user_id, &format!("user{user_id}"), false),
            "roles": roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            "deaf": false,
            "mute": false,
            "flags": 0,
            "joined_at": "2026-01-01T00:00:00.000000+00:00",
            "permissions": permissions.to_string(),
        },
        "token": token,
        "version": 1,
        "locale": "en-US",
        "entitlements": [],
        "attachment_size_limit": 8388608,
    });
    (id, token, payload)
}

/// A forum channel (type 15) of the server offering `tags` (names; ids are fresh).
pub fn forum_json(fake: &FakeDiscord, id: u64, tags: &[&str]) -> Value {
    let tags: Vec<Value> = tags
        .iter()
        .map(|name| {
            json!({"id": fake.id().to_string(), "name": name, "moderated": false,
                "emoji_id": null, "emoji_name": null})
        })
        .collect();
    json!({
        "id": id.to_string(), "type": 15, "guild_id": GUILD_ID.to_string(), "name": "help-forum",
        "position": 3, "permission_overwrites": [], "nsfw": false, "parent_id": null,
        "flags": 0, "available_tags": tags, "default_reaction_emoji": null,
    })
}

/// A public thread (type 11) under `parent`, opened by `owner`; in a forum, a post whose
/// starter message has the thread's id.
pub fn thread_json(id: u64, parent: u64, owner: u64, name: &str) -> Value {
    json!({
        "id": id.to_string(), "type": 11, "guild_id": GUILD_ID.to_string(), "name": name,
        "parent_id": parent.to_string(), "owner_id": owner.to_string(),
        "last_message_id": null, "rate_limit_per_user": 0, "message_count": 0,
        "member_count": 1, "flags": 0, "applied_tags": [], "total_message_sent": 0,
        "thread_metadata": {"archived": false, "auto_archive_duration": 4320,
            "archive_timestamp": "2026-11-28T12:00:00.000000+00:00", "locked": false,
            "create_timestamp": "2026-11-28T12:00:00.000000+00:00"},
    })
}

/// The id of the tag named `name` in a forum object.
pub fn tag_id(forum: &Value, name: &str) -> String {
    forum["available_tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == json!(name))
        .unwrap_or_else(|| panic!("no tag {name} in {forum}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}
