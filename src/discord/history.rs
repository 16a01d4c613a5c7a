//! `/summarise`: reads the channel's history through REST, page by page, and hands it to
//! the assistant. Nothing read here is stored; the summary is sent and forgotten.

use std::time::Duration;

use serde_json::Value;
use serenity::all::ChannelId;

use super::rest::{Rest, RestError};
use crate::assistant::ChannelMessage;
use crate::store::UnixMillis;

/// Messages `/summarise` reads when no count is given.
pub const DEFAULT_SUMMARY_COUNT: usize = 100;
/// Discord returns at most this many messages per request.
const PAGE: usize = 100;
/// Discord's epoch (2015-01-01) in Unix milliseconds; snowflake ids count from it.
const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// A message as the channel's history lists it: the parts a summary uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryMessage {
    /// The message's id (a snowflake: it grows with creation time).
    pub id: u64,
    /// The author's user id.
    pub author_id: u64,
    /// The author's display name (the global name, else the username).
    pub author_name: String,
    /// The message's text.
    pub content: String,
    /// The message this one replies to.
    pub reply_to: Option<u64>,
}

impl HistoryMessage {
    /// Reads a Discord message object leniently (ids as strings or numbers); None without
    /// an id or author.
    pub fn from_json(message: &Value) -> Option<Self> {
        let id = |v: &Value| v.as_str().and_then(|s| s.parse().ok()).or(v.as_u64());
        let author = message.get("author")?;
        Some(Self {
            id: id(message.get("id")?)?,
            author_id: id(author.get("id")?)?,
            author_name: author
                .get("global_name")
                .and_then(Value::as_str)
                .or(author.get("username").and_then(Value::as_str))
                .unwrap_or("someone")
                .to_string(),
            content: message
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            reply_to: message
                .get("message_reference")
                .and_then(|r| r.get("message_id"))
                .and_then(id),
        })
    }
}

/// Where the summary starts, from the `since` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Messages newer than this long ago.
    Ago(Duration),
    /// Messages after this message id (a message link or id); the message itself included.
    Message(u64),
}

/// Most characters of a bad `since` echoed back in the error.
const SINCE_ECHO_CHARS: usize = 40;

/// A `since` option the bot does not understand; the text is shown to the moderator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("I did not understand since:`{0}`. Use a duration such as 30m, 2h, 1d or 1w, or a message link or id.")]
pub struct SinceError(pub String);

/// Parses `since`: `<n>m`, `<n>h`, `<n>d`, `<n>w` (minutes, hours, days, weeks), a message
/// jump URL (`https://discord.com/channels/g/c/m`), or a message id.
pub fn parse_since(text: &str) -> Result<Since, SinceError> {
    let trimmed = text.trim();
    let error = || SinceError(trimmed.chars().take(SINCE_ECHO_CHARS).collect());
    if let Some(last) = trimmed
        .strip_prefix("https://")
        .and_then(|_| trimmed.rsplit('/').next())
    {
        return last.parse().map(Since::Message).map_err(|_| error());
    }
    if trimmed.len() >= 15 && trimmed.chars().all(|c| c.is_ascii_digit()) {
        return trimmed.parse().map(Since::Message).map_err(|_| error());
    }
    let split = trimmed
        .char_indices()
        .last()
        .map(|(i, _)| i)
        .ok_or_else(error)?;
    let (number, unit) = trimmed.split_at(split);
    let number: u64 = number.trim().parse().map_err(|_| error())?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(error()),
    };
    if number == 0 || number > 365 * 86_400 / seconds {
        return Err(error());
    }
    Ok(Since::Ago(Duration::from_secs(number * seconds)))
}

/// The smallest snowflake id of a message created at `unix_ms`.
pub fn snowflake_at(unix_ms: u64) -> u64 {
    unix_ms.saturating_sub(DISCORD_EPOCH_MS) << 22
}

/// Messages must have an id at least this to be summarised; `now_ms` is the clock's now
/// (a time before the epoch counts as the epoch).
pub fn lower_bound(since: Option<Since>, now_ms: UnixMillis) -> u64 {
    match since {
        None => 0,
        Some(Since::Message(id)) => id,
        Some(Since::Ago(ago)) => {
            let now_ms = u64::try_from(now_ms).unwrap_or(0);
            snowflake_at(now_ms.saturating_sub(ago.as_millis() as u64))
        }
    }
}

/// Reads up to `want` of the channel's newest messages with ids at least `min_id`, paging
/// back with `before=` (100 per request at most), newest first. `fetch_page(before,
/// limit)` does one request. Stops at a short page, at `min_id`, or at `want`.
pub async fn read_history<F, Fut>(
    want: usize,
    min_id: u64,
    mut fetch_page: F,
) -> Result<Vec<HistoryMessage>, RestError>
where
    F: FnMut(Option<u64>, u8) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<HistoryMessage>, RestError>>,
{
    let mut read: Vec<HistoryMessage> = Vec::new();
    let mut before = None;
    while read.len() < want {
        let limit = (want - read.len()).min(PAGE);
        let page = fetch_page(before, limit as u8).await?;
        let full = page.len() >= limit;
        let Some(oldest) = page.iter().map(|m| m.id).min() else {
            break;
        };
        let reached_bound = oldest < min_id;
        read.extend(page.into_iter().filter(|m| m.id >= min_id));
        if !full || reached_bound || before == Some(oldest) {
            break;
        }
        before = Some(oldest);
    }
    read.truncate(want);
    Ok(read)
}

/// The channel history as the assistant wants it: oldest first, without the bot's own
/// messages or empty ones, each with its jump URL when in a guild; a message the bot
/// replied to is marked as answered.
pub fn to_channel_messages(
    listed: Vec<HistoryMessage>,
    bot_id: u64,
    guild_id: Option<u64>,
    channel_id: u64,
) -> Vec<ChannelMessage> {
    let answered_by_bot: std::collections::HashSet<u64> = listed
        .iter()
        .filter(|m| m.author_id == bot_id)
        .filter_map(|m| m.reply_to)
        .collect();
    let mut messages: Vec<HistoryMessage> = listed
        .into_iter()
        .filter(|m| m.author_id != bot_id && !m.content.trim().is_empty())
        .collect();
    messages.sort_by_key(|m| m.id);
    messages.dedup_by_key(|m| m.id);
    messages
        .into_iter()
        .map(|m| ChannelMessage {
            id: m.id.to_string(),
            author: m.author_name,
            text: m.content,
            link: guild_id
                .map(|g| format!("https://discord.com/channels/{g}/{channel_id}/{}", m.id)),
            reply_to: m.reply_to.map(|id| id.to_string()),
            answered_by_bot: answered_by_bot.contains(&m.id),
        })
        .collect()
}

/// Reads the channel's history for `/summarise` through `rest`; see [`read_history`].
/// Entries that are not readable messages are skipped.
pub async fn fetch(
    rest: &Rest,
    channel_id: ChannelId,
    want: usize,
    min_id: u64,
) -> Result<Vec<HistoryMessage>, RestError> {
    read_history(want, min_id, |before, limit| async move {
        let page = rest
            .channel_messages_page(channel_id, limit, before)
            .await?;
        Ok(page.iter().filter_map(HistoryMessage::from_json).collect())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn listed(id: u64, author_id: u64) -> HistoryMessage {
        HistoryMessage {
            id,
            author_id,
            author_name: format!("u{author_id}"),
            content: format!("message {id}"),
            reply_to: None,
        }
    }

    #[test]
    fn since_accepts_durations_links_and_ids() {
        assert_eq!(parse_since("2h"), Ok(Since::Ago(Duration::from_secs(7200))));
        assert_eq!(
            parse_since(" 1d "),
            Ok(Since::Ago(Duration::from_secs(86_400)))
        );
        assert_eq!(
            parse_since("https://discord.com/channels/1/2/1234567890123456789"),
            Ok(Since::Message(1234567890123456789))
        );
        assert_eq!(
            parse_since("1234567890123456789"),
            Ok(Since::Message(1234567890123456789))
        );
        for bad in [
            "",
            "2x",
            "h",
            "0d",
            "yesterday",
            "https://example.com/x",
            "99999w",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_ending_in_a_multi_byte_character_is_an_error_not_a_panic() {
        for text in ["1é", "é", "2ℎ", "30👍", "  5ü "] {
            assert!(parse_since(text).is_err(), "{text}");
        }
    }

    proptest::proptest! {
        /// Any text a moderator can type is parsed or refused, never a panic, and the
        /// refusal stays short whatever was typed.
        #[test]
        fn since_parsing_never_panics(text in "\\PC{0,80}|[0-9]{0,6}[mhdwé👍]?|https://[a-z/0-9é]{0,30}") {
            if let Err(error) = parse_since(&text) {
                proptest::prop_assert!(error.to_string().chars().count() < 200);
            }
        }
    }

    #[test]
    fn a_duration_bound_is_the_snowflake_of_that_time() {
        let now = (DISCORD_EPOCH_MS + 7_200_000) as UnixMillis;
        let bound = lower_bound(Some(Since::Ago(Duration::from_secs(3600))), now);
        assert_eq!(bound >> 22, 3_600_000);
        assert_eq!(lower_bound(None, now), 0);
    }

    /// A channel of `n` messages with ids 1..=n, paged like Discord (newest first).
    async fn read(n: u64, want: usize, min_id: u64) -> (Vec<u64>, Vec<(Option<u64>, u8)>) {
        let calls = Mutex::new(Vec::new());
        let read = read_history(want, min_id, |before, limit| {
            calls.lock().unwrap().push((before, limit));
            let page: Vec<HistoryMessage> = (1..=n)
                .rev()
                .filter(|id| before.is_none_or(|b| *id < b))
                .take(limit as usize)
                .map(|id| listed(id, 7))
                .collect();
            async move { Ok(page) }
        })
        .await
        .unwrap();
        (
            read.iter().map(|m| m.id).collect(),
            calls.into_inner().unwrap(),
        )
    }

    #[tokio::test]
    async fn history_is_paged_with_before() {
        let (ids, calls) = read(300, 250, 0).await;
        assert_eq!(ids.len(), 250);
        assert_eq!(ids[0], 300);
        assert_eq!(*ids.last().unwrap(), 51);
        assert_eq!(calls, [(None, 100), (Some(201), 100), (Some(101), 50)]);
    }

    #[tokio::test]
    async fn paging_stops_at_the_start_of_the_channel_and_at_the_bound() {
        let (ids, calls) = read(120, 500, 0).await;
        assert_eq!(ids.len(), 120);
        assert_eq!(calls.len(), 2);
        let (ids, calls) = read(300, 500, 250).await;
        assert_eq!(ids, (250..=300).rev().collect::<Vec<_>>());
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn messages_are_read_leniently_with_their_reply_reference() {
        let message = serde_json::json!({
            "id": "12", "content": "yes",
            "author": {"id": 7, "username": "ann"},
            "message_reference": {"message_id": "11"},
        });
        let read = HistoryMessage::from_json(&message).unwrap();
        assert_eq!((read.id, read.author_id, read.reply_to), (12, 7, Some(11)));
        assert_eq!(read.author_name, "ann");
        assert!(HistoryMessage::from_json(&serde_json::json!({"id": "1"})).is_none());
    }

    #[test]
    fn the_bot_is_left_out_and_the_rest_get_jump_urls_oldest_first() {
        let mut bot_reply = listed(2, 99);
        bot_reply.reply_to = Some(1);
        let messages =
            to_channel_messages(vec![listed(3, 1), bot_reply, listed(1, 2)], 99, Some(5), 6);
        let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["1", "3"]);
        assert!(messages[0].answered_by_bot && !messages[1].answered_by_bot);
        assert_eq!(
            messages[1].link.as_deref(),
            Some("https://discord.com/channels/5/6/3")
        );
    }
}
