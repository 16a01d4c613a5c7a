//! The Discord settings: the bot token and the server-specific ids, read from the
//! environment (documented in `.env.example`).

use std::fmt;
use std::time::Duration;

use super::threads::ForumTagNames;
use crate::assistant::moderation::digest::DailyTime;
use crate::config::{parsed, var, ConfigError};

/// The Discord bot token. Its `Debug` and `Display` never show the secret; only
/// [`DiscordToken::expose`] does, and only the Discord client calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct DiscordToken(String);

impl DiscordToken {
    /// The token, with surrounding whitespace (a pasted newline) removed.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into().trim().to_string())
    }

    /// The secret itself, for the Authorization header. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DiscordToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DiscordToken(<redacted>)")
    }
}

impl fmt::Display for DiscordToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Discord connection and server-specific ids.
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    /// The bot token (`DISCORD_TOKEN`); `None` when unset, which [`super::run`] refuses.
    pub token: Option<DiscordToken>,
    /// Replaces `https://discord.com` for REST and gateway discovery.
    pub api_url: Option<String>,
    /// The shop's servers (`SHOPKEEP_GUILDS`): the bot serves only these (and DMs), and
    /// server permissions make staff only here. Empty: every server, staff by role id only.
    pub guilds: Vec<u64>,
    /// Channels where every message is a question (`SHOPKEEP_SUPPORT_CHANNELS`, plus the
    /// `SHOPKEEP_ANSWER_IN_THREAD` ones).
    pub support_channels: Vec<u64>,
    /// Support channels where the bot opens a thread on each question and answers there
    /// (`SHOPKEEP_ANSWER_IN_THREAD`); they are support channels too.
    pub answer_in_thread: Vec<u64>,
    /// Role ids of moderators (`SHOPKEEP_MOD_ROLES`).
    pub mod_roles: Vec<u64>,
    /// Role ids of admins (`SHOPKEEP_ADMIN_ROLES`).
    pub admin_roles: Vec<u64>,
    /// Whether direct messages are answered (`SHOPKEEP_ANSWER_DMS`, default true).
    pub answer_dms: bool,
    /// Register slash commands in these guilds (instant) instead of globally; empty: in
    /// `guilds` when set, else globally.
    pub command_guilds: Vec<u64>,
    /// Channel where handoffs and guard events are posted for moderators.
    pub mod_log_channel: Option<u64>,
    /// How long in-flight replies may run after SIGTERM before they are cancelled.
    pub shutdown_grace: Duration,
    /// Most channel messages `/summarise` reads, whatever count a moderator asks for.
    pub summary_max_messages: usize,
    /// The staff channel where hand-off tickets open as private threads.
    pub ticket_channel: Option<u64>,
    /// The forum tags applied to posts the bot answered or handed off.
    pub forum_tags: ForumTagNames,
    /// When the daily digest of insights is posted to the moderator log (UTC); `None`:
    /// no digest. Set only together with `mod_log_channel`.
    pub digest_at: Option<DailyTime>,
}

impl DiscordSettings {
    /// Reads and validates the Discord variables; the first bad one is the error.
    pub fn from_env() -> Result<Self, ConfigError> {
        let answer_in_thread = id_list("SHOPKEEP_ANSWER_IN_THREAD")?;
        let mut support_channels = id_list("SHOPKEEP_SUPPORT_CHANNELS")?;
        for channel in &answer_in_thread {
            if !support_channels.contains(channel) {
                support_channels.push(*channel);
            }
        }
        let mod_log_channel = id_list("SHOPKEEP_MOD_LOG_CHANNEL")?.first().copied();
        Ok(Self {
            token: var("DISCORD_TOKEN").map(DiscordToken::new),
            api_url: var("DISCORD_API_URL")
                .map(|url| api_url(&url))
                .transpose()?,
            guilds: id_list("SHOPKEEP_GUILDS")?,
            support_channels,
            answer_in_thread,
            mod_roles: id_list("SHOPKEEP_MOD_ROLES")?,
            admin_roles: id_list("SHOPKEEP_ADMIN_ROLES")?,
            answer_dms: parsed("SHOPKEEP_ANSWER_DMS", true, "true or false")?,
            command_guilds: id_list("SHOPKEEP_COMMAND_GUILDS")?,
            mod_log_channel,
            shutdown_grace: Duration::from_secs(parsed(
                "SHOPKEEP_SHUTDOWN_GRACE_SECS",
                20,
                "a number of seconds",
            )?),
            summary_max_messages: parsed("SHOPKEEP_SUMMARY_MAX_MESSAGES", 500, "a message count")?,
            ticket_channel: id_list("SHOPKEEP_TICKET_CHANNEL")?.first().copied(),
            forum_tags: ForumTagNames {
                answered: tag_name("SHOPKEEP_FORUM_TAG_ANSWERED", "Answered"),
                handed_off: tag_name("SHOPKEEP_FORUM_TAG_HANDOFF", "Needs staff"),
                solved: tag_name("SHOPKEEP_FORUM_TAG_SOLVED", "Solved"),
            },
            digest_at: digest_at(var(DIGEST_AT).as_deref(), mod_log_channel)?,
        })
    }
}

/// The variable that schedules the daily digest.
const DIGEST_AT: &str = "SHOPKEEP_DIGEST_AT";

/// `SHOPKEEP_DIGEST_AT` checked: unset or empty is no digest; otherwise a UTC time of day
/// `HH:MM`, and only with a moderator log to post to.
fn digest_at(
    value: Option<&str>,
    mod_log_channel: Option<u64>,
) -> Result<Option<DailyTime>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bad = |expected: &str| ConfigError {
        variable: DIGEST_AT,
        value: value.to_string(),
        expected: expected.to_string(),
    };
    let at: DailyTime = value
        .parse()
        .map_err(|_| bad("a UTC time of day HH:MM, 00:00 to 23:59, such as 09:00"))?;
    if mod_log_channel.is_none() {
        return Err(bad(
            "the digest is posted to the moderator log: set SHOPKEEP_MOD_LOG_CHANNEL too",
        ));
    }
    Ok(Some(at))
}

impl DiscordSettings {
    /// The servers slash commands are registered in: `command_guilds`, else the shop's
    /// `guilds`; empty means globally.
    pub fn registration_guilds(&self) -> Vec<u64> {
        if self.command_guilds.is_empty() {
            self.guilds.clone()
        } else {
            self.command_guilds.clone()
        }
    }
}

/// `DISCORD_API_URL` checked: `https://` to any host, plain `http://` only to this machine
/// (127.0.0.0/8, `::1`, `localhost`), since every request carries the token. Returned
/// without a trailing slash.
pub fn api_url(value: &str) -> Result<String, ConfigError> {
    let bad = |expected: &str| ConfigError {
        variable: "DISCORD_API_URL",
        value: value.to_string(),
        expected: expected.to_string(),
    };
    let url = url::Url::parse(value.trim())
        .map_err(|_| bad("a URL such as https://discord.com or http://127.0.0.1:8080"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "https://, or plain http:// only to this machine (127.0.0.1, ::1, localhost): \
                 the token would travel in clear text",
            ))
        }
        _ => return Err(bad("an https:// URL")),
    }
    Ok(value.trim().trim_end_matches('/').to_string())
}

/// A forum tag name: the variable, else `default`; `off` switches the tag off.
fn tag_name(name: &'static str, default: &str) -> Option<String> {
    let value = var(name).unwrap_or_else(|| default.to_string());
    let value = value.trim();
    (!value.eq_ignore_ascii_case("off")).then(|| value.to_string())
}

/// A comma- or space-separated list of Discord ids (snowflakes).
fn id_list(name: &'static str) -> Result<Vec<u64>, ConfigError> {
    let Some(value) = var(name) else {
        return Ok(Vec::new());
    };
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<u64>()
                .ok()
                .filter(|&id| id != 0)
                .ok_or_else(|| ConfigError {
                    variable: name,
                    value: value.clone(),
                    expected: "a comma-separated list of numeric Discord ids (not 0)".to_string(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_id_of_zero_is_refused_naming_the_variable() {
        // Discord has no id 0, and serenity's ids panic on it.
        std::env::set_var("SHOPKEEP_TEST_ID_LIST_ZERO", "12, 0");
        let error = id_list("SHOPKEEP_TEST_ID_LIST_ZERO").unwrap_err();
        assert!(
            error.to_string().contains("SHOPKEEP_TEST_ID_LIST_ZERO"),
            "{error}"
        );
        std::env::set_var("SHOPKEEP_TEST_ID_LIST_OK", "12, 34");
        assert_eq!(id_list("SHOPKEEP_TEST_ID_LIST_OK").unwrap(), [12, 34]);
    }

    #[test]
    fn the_digest_time_is_hh_mm_and_needs_the_moderator_log() {
        assert_eq!(digest_at(None, None).unwrap(), None);
        assert_eq!(
            digest_at(Some("09:00"), Some(7)).unwrap(),
            DailyTime::new(9, 0)
        );
        let bad = digest_at(Some("9am"), Some(7)).unwrap_err();
        assert_eq!(bad.variable, "SHOPKEEP_DIGEST_AT");
        assert!(bad.to_string().contains("HH:MM"), "{bad}");
        let alone = digest_at(Some("09:00"), None).unwrap_err();
        assert!(
            alone.to_string().contains("SHOPKEEP_MOD_LOG_CHANNEL"),
            "{alone}"
        );
    }

    #[test]
    fn plain_http_is_allowed_only_to_this_machine() {
        assert_eq!(
            api_url("https://proxy.example/").unwrap(),
            "https://proxy.example"
        );
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
        ] {
            assert!(api_url(local).is_ok(), "{local}");
        }
        for bad in [
            "http://proxy.example",
            "http://10.0.0.5:80",
            "ftp://x",
            "discord.com",
            "",
        ] {
            assert!(api_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_env_file_with_the_token_is_never_committed() {
        let ignored = include_str!("../../.gitignore");
        assert!(
            ignored.lines().any(|l| l.trim() == ".env"),
            ".env is not in .gitignore"
        );
    }

    #[test]
    fn token_never_shows_in_debug_or_display() {
        let secret = "MTExMjIy.secret-part.abcdefghijklmnop";
        let token = DiscordToken::new(secret);
        let settings = format!("{:?} {} {:#?}", token, token, Some(token.clone()));
        assert!(!settings.contains(secret) && !settings.contains("secret-part"));
        assert!(settings.contains("redacted"));
        assert_eq!(token.expose(), secret);
    }
}
