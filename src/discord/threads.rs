//! Threads and forum channels: which channel a thread belongs to, and the forum tags the
//! bot applies to a post it answered ("Answered"), handed to the team ("Needs staff"), or
//! whose ticket the team resolved ("Solved").
//!
//! A message carries only its channel id; for a thread, the parent (a support channel, or
//! a forum listed as one) comes from THREAD_CREATE, or from `GET /channels/{id}` the first
//! time the bot sees the thread. Both are kept in [`Channels`], a cache that never
//! expires (a thread's parent never changes; its tags are updated by the bot itself).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use serenity::http::{LightMethod, Route};
use serenity::model::id::ChannelId;

use super::rest::{Body, Rest, RestError};

/// Discord's channel types the bot cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A text channel (type 0), or any other kind of channel the bot does not treat apart.
    Other,
    /// A thread: announcement (10), public (11) or private (12).
    Thread,
    /// A forum channel (type 15): every post is a thread.
    Forum,
}

impl ChannelKind {
    fn from_type(kind: u64) -> Self {
        match kind {
            10..=12 => ChannelKind::Thread,
            15 => ChannelKind::Forum,
            _ => ChannelKind::Other,
        }
    }
}

/// A tag a forum offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForumTag {
    /// The tag's id.
    pub id: u64,
    /// The tag's name, as shown.
    pub name: String,
}

/// What the bot knows of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The channel's id.
    pub id: u64,
    /// What kind of channel it is.
    pub kind: ChannelKind,
    /// For a thread: the channel (or forum) it was opened in.
    pub parent_id: Option<u64>,
    /// A thread's name: a forum post's title.
    pub name: Option<String>,
    /// Tags applied to a forum post (a thread), by id.
    pub applied_tags: Vec<u64>,
    /// Tags a forum offers.
    pub available_tags: Vec<ForumTag>,
}

fn snowflake(value: &Value) -> Option<u64> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_u64())
}

impl ChannelInfo {
    /// Reads a Discord channel object; `None` without an id.
    pub fn from_json(channel: &Value) -> Option<Self> {
        let ids = |key: &str| -> Vec<u64> {
            channel[key]
                .as_array()
                .map(|list| list.iter().filter_map(snowflake).collect())
                .unwrap_or_default()
        };
        Some(Self {
            id: snowflake(&channel["id"])?,
            kind: ChannelKind::from_type(channel["type"].as_u64().unwrap_or(0)),
            parent_id: snowflake(&channel["parent_id"]),
            name: channel["name"].as_str().map(str::to_string),
            applied_tags: ids("applied_tags"),
            available_tags: channel["available_tags"]
                .as_array()
                .map(|tags| {
                    tags.iter()
                        .filter_map(|tag| {
                            Some(ForumTag {
                                id: snowflake(&tag["id"])?,
                                name: tag["name"].as_str()?.to_string(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Channels seen so far, by id; cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Channels(Arc<Mutex<HashMap<u64, ChannelInfo>>>);

impl Channels {
    /// Remembers a channel (from THREAD_CREATE or a channel read).
    pub fn learn(&self, info: ChannelInfo) {
        if let Ok(mut known) = self.0.lock() {
            known.insert(info.id, info);
        }
    }

    /// The channel `id` if it has been seen (never reads it from Discord).
    pub fn known(&self, id: u64) -> Option<ChannelInfo> {
        self.0.lock().ok()?.get(&id).cloned()
    }

    /// The channel `id`, read from Discord the first time (`None` when that fails; the
    /// failure is logged by [`Rest`] and tried again next time).
    pub async fn get(&self, rest: &Rest, id: u64) -> Option<ChannelInfo> {
        if let Some(info) = self.known(id) {
            return Some(info);
        }
        let channel_id = ChannelId::new(id);
        let answer = rest
            .send(
                "read a channel",
                Route::Channel { channel_id },
                LightMethod::Get,
                None,
                Body::Other,
            )
            .await
            .ok()??;
        let info = ChannelInfo::from_json(&answer)?;
        self.learn(info.clone());
        Some(info)
    }

    /// The place keys of `channel` for the core's places, most specific first:
    /// `channel:<id>`, for a thread (a forum post too) `channel:<parent>`, then the
    /// category the channel is in, `category:<id>`. Channels are read once, then cached;
    /// a channel that cannot be read gives the keys known so far.
    pub async fn place_keys(&self, rest: &Rest, channel: u64) -> Vec<String> {
        let mut keys = vec![format!("channel:{channel}")];
        let Some(mut info) = self.get(rest, channel).await else {
            return keys;
        };
        if info.kind == ChannelKind::Thread {
            let Some(parent) = info.parent_id else {
                return keys;
            };
            keys.push(format!("channel:{parent}"));
            let Some(parent) = self.get(rest, parent).await else {
                return keys;
            };
            info = parent;
        }
        if let Some(category) = info.parent_id {
            keys.push(format!("category:{category}"));
        }
        keys
    }

    /// Sets a forum post's tags (`PATCH /channels/{thread}`), and remembers them.
    pub async fn set_tags(
        &self,
        rest: &Rest,
        thread: u64,
        tags: Vec<u64>,
    ) -> Result<(), RestError> {
        let body = json!({"applied_tags": tags.iter().map(u64::to_string).collect::<Vec<_>>()});
        rest.send(
            "tag a forum post",
            Route::Channel {
                channel_id: ChannelId::new(thread),
            },
            LightMethod::Patch,
            Some(body),
            Body::Other,
        )
        .await?;
        if let Some(mut info) = self.known(thread) {
            info.applied_tags = tags;
            self.learn(info);
        }
        Ok(())
    }
}

/// Longest thread name Discord accepts, in characters.
pub const MAX_THREAD_NAME_CHARS: usize = 100;

/// A thread's name from a question: its first line, cut at a word before
/// [`MAX_THREAD_NAME_CHARS`] (with "…"); "Question" when nothing is left.
pub fn thread_name(question: &str) -> String {
    let line = question
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() <= MAX_THREAD_NAME_CHARS {
        return if line.is_empty() {
            "Question".to_string()
        } else {
            line.to_string()
        };
    }
    let mut name = String::new();
    for word in line.split_whitespace() {
        if name.chars().count() + word.chars().count() + 2 > MAX_THREAD_NAME_CHARS {
            break;
        }
        if !name.is_empty() {
            name.push(' ');
        }
        name.push_str(word);
    }
    if name.is_empty() {
        name = line.chars().take(MAX_THREAD_NAME_CHARS - 1).collect();
    }
    name.push('…');
    name
}

/// Opens a public thread on the message `message` in `channel`, named after `question`, and
/// remembers it (its parent is `channel`); the thread's id (Discord gives it the message's).
pub async fn open_on_message(
    channels: &Channels,
    rest: &Rest,
    channel: u64,
    message: u64,
    question: &str,
) -> Result<u64, RestError> {
    let body = json!({"name": thread_name(question), "auto_archive_duration": 1440});
    let answer = rest
        .send(
            "open a thread on a question",
            Route::ChannelMessageThreads {
                channel_id: ChannelId::new(channel),
                message_id: serenity::model::id::MessageId::new(message),
            },
            LightMethod::Post,
            Some(body),
            Body::Other,
        )
        .await?;
    let info = answer
        .as_ref()
        .and_then(ChannelInfo::from_json)
        .ok_or(RestError::Payload {
            what: "open a thread on a question",
            detail: "the answer is no channel".into(),
        })?;
    let id = info.id;
    channels.learn(ChannelInfo {
        kind: ChannelKind::Thread,
        parent_id: Some(channel),
        ..info
    });
    Ok(id)
}

/// How a forum post's question ended, for its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostState {
    /// The bot answered the post's question.
    Answered,
    /// The bot handed the post's question to the team.
    HandedOff,
    /// The post's ticket was resolved by the team.
    Solved,
}

impl PostState {
    const ALL: [PostState; 3] = [PostState::Answered, PostState::HandedOff, PostState::Solved];
}

/// The configured tag names (`SHOPKEEP_FORUM_TAG_ANSWERED`, `SHOPKEEP_FORUM_TAG_HANDOFF`,
/// `SHOPKEEP_FORUM_TAG_SOLVED`); `None`: that tag is not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForumTagNames {
    /// The tag for an answered post.
    pub answered: Option<String>,
    /// The tag for a post handed to the team.
    pub handed_off: Option<String>,
    /// The tag for a post whose ticket was resolved.
    pub solved: Option<String>,
}

/// Most tags Discord allows on one forum post.
pub const MAX_APPLIED_TAGS: usize = 5;

impl ForumTagNames {
    fn name(&self, state: PostState) -> Option<&str> {
        match state {
            PostState::Answered => self.answered.as_deref(),
            PostState::HandedOff => self.handed_off.as_deref(),
            PostState::Solved => self.solved.as_deref(),
        }
    }

    /// The post's tags after marking it `state`: the forum's tag with the configured name
    /// (matched case-insensitively) added, the other states' tags removed, the rest kept.
    /// `None` when nothing changes: no such tag in the forum, already applied, or the post
    /// already has the most tags Discord allows.
    pub fn tags_after(
        &self,
        state: PostState,
        applied: &[u64],
        available: &[ForumTag],
    ) -> Option<Vec<u64>> {
        let find = |name: Option<&str>| {
            let name = name?;
            available
                .iter()
                .find(|tag| tag.name.trim().eq_ignore_ascii_case(name.trim()))
                .map(|tag| tag.id)
        };
        let wanted = find(self.name(state))?;
        let unwanted: Vec<u64> = PostState::ALL
            .into_iter()
            .filter(|other| *other != state)
            .filter_map(|other| find(self.name(other)))
            .collect();
        let mut tags: Vec<u64> = applied
            .iter()
            .copied()
            .filter(|t| !unwanted.contains(t))
            .collect();
        if tags.contains(&wanted) {
            return (tags.len() != applied.len()).then_some(tags);
        }
        if tags.len() >= MAX_APPLIED_TAGS {
            return None;
        }
        tags.push(wanted);
        Some(tags)
    }
}

/// Tags the forum post `thread` as `state`, when it is a thread already seen (THREAD_CREATE
/// or a channel read) whose parent is a forum; failures are logged.
pub async fn tag_post(
    channels: &Channels,
    rest: &Rest,
    names: &ForumTagNames,
    thread: u64,
    state: PostState,
) {
    let Some(post) = channels.known(thread) else {
        return;
    };
    tag(channels, rest, names, post, state).await;
}

/// [`tag_post`] for a post the bot may not have seen since it started (a ticket resolved
/// after a restart): the channel is read from Discord when it is not known.
pub async fn tag_post_reading(
    channels: &Channels,
    rest: &Rest,
    names: &ForumTagNames,
    thread: u64,
    state: PostState,
) {
    let Some(post) = channels.get(rest, thread).await else {
        return;
    };
    tag(channels, rest, names, post, state).await;
}

async fn tag(
    channels: &Channels,
    rest: &Rest,
    names: &ForumTagNames,
    post: ChannelInfo,
    state: PostState,
) {
    let thread = post.id;
    let Some(parent) = post.parent_id.filter(|_| post.kind == ChannelKind::Thread) else {
        return;
    };
    let Some(forum) = channels.get(rest, parent).await else {
        return;
    };
    if forum.kind != ChannelKind::Forum {
        return;
    }
    let Some(tags) = names.tags_after(state, &post.applied_tags, &forum.available_tags) else {
        return;
    };
    match channels.set_tags(rest, thread, tags).await {
        Ok(()) => tracing::info!(?state, thread, "forum post tagged"),
        Err(error) => tracing::warn!(%error, thread, "could not tag a forum post"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ForumTagNames {
        ForumTagNames {
            answered: Some("Answered".into()),
            handed_off: Some("Needs staff".into()),
            solved: Some("Solved".into()),
        }
    }

    fn forum_tags() -> Vec<ForumTag> {
        vec![
            ForumTag {
                id: 1,
                name: "answered".into(),
            },
            ForumTag {
                id: 2,
                name: "Needs staff".into(),
            },
            ForumTag {
                id: 3,
                name: "Shipping".into(),
            },
            ForumTag {
                id: 4,
                name: "Solved".into(),
            },
        ]
    }

    #[test]
    fn thread_names_fit_discords_limit_and_end_at_a_word() {
        assert_eq!(
            thread_name("Where is my parcel?\nIt is late."),
            "Where is my parcel?"
        );
        assert_eq!(thread_name("  \n "), "Question");
        let long = "word ".repeat(40);
        let name = thread_name(&long);
        assert!(name.chars().count() <= MAX_THREAD_NAME_CHARS, "{name}");
        assert!(name.ends_with("word…"), "{name}");
        let unbroken = "x".repeat(300);
        assert_eq!(
            thread_name(&unbroken).chars().count(),
            MAX_THREAD_NAME_CHARS
        );
    }

    #[test]
    fn channel_objects_are_read_as_discord_sends_them() {
        let thread = json!({"id": "10", "type": 11, "parent_id": "20", "name": "Lid cracked",
            "applied_tags": ["3"], "guild_id": "1"});
        let info = ChannelInfo::from_json(&thread).unwrap();
        assert_eq!(info.kind, ChannelKind::Thread);
        assert_eq!(info.parent_id, Some(20));
        assert_eq!(info.applied_tags, vec![3]);
        assert_eq!(info.name.as_deref(), Some("Lid cracked"));
        let forum = json!({"id": "20", "type": 15, "name": "help",
            "available_tags": [{"id": "1", "name": "Answered", "moderated": false}]});
        let info = ChannelInfo::from_json(&forum).unwrap();
        assert_eq!(info.kind, ChannelKind::Forum);
        assert_eq!(info.available_tags[0].id, 1);
        assert_eq!(
            ChannelInfo::from_json(&json!({"id": "5", "type": 0}))
                .unwrap()
                .kind,
            ChannelKind::Other
        );
        assert!(ChannelInfo::from_json(&json!({"type": 0})).is_none());
    }

    #[test]
    fn answered_and_handed_off_replace_each_other_and_keep_other_tags() {
        let names = names();
        let tags = forum_tags();
        assert_eq!(
            names.tags_after(PostState::Answered, &[3], &tags),
            Some(vec![3, 1])
        );
        assert_eq!(
            names.tags_after(PostState::HandedOff, &[3, 1], &tags),
            Some(vec![3, 2])
        );
        assert_eq!(names.tags_after(PostState::HandedOff, &[2], &tags), None);
        // Solved replaces either.
        assert_eq!(
            names.tags_after(PostState::Solved, &[3, 2], &tags),
            Some(vec![3, 4])
        );
        assert_eq!(
            names.tags_after(PostState::Solved, &[1], &tags),
            Some(vec![4])
        );
        assert_eq!(
            names.tags_after(PostState::Answered, &[4], &tags),
            Some(vec![1])
        );
    }

    #[test]
    fn missing_tags_full_posts_and_switched_off_names_change_nothing() {
        let tags = forum_tags();
        let off = ForumTagNames {
            answered: None,
            handed_off: Some("Needs staff".into()),
            solved: None,
        };
        assert_eq!(off.tags_after(PostState::Answered, &[], &tags), None);
        assert_eq!(
            names().tags_after(PostState::Answered, &[], &tags[2..]),
            None
        );
        assert_eq!(off.tags_after(PostState::Solved, &[2], &tags), None);
        assert_eq!(
            names().tags_after(PostState::Answered, &[11, 12, 13, 14, 15], &tags),
            None
        );
        // The other state's tag still comes off a full post, making room.
        assert_eq!(
            names().tags_after(PostState::Answered, &[11, 12, 13, 14, 2], &tags),
            Some(vec![11, 12, 13, 14, 1])
        );
    }
}
