//! Settings from the environment (and `.env`, loaded by `main`), validated once at start
//! into a typed [`Config`]. Every variable read here is documented in `.env.example`.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A setting that could not be used; names the variable and says what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub value: String,
    pub expected: String,
}

/// The Discord bot token. Its `Debug` and `Display` never show the secret; only
/// [`DiscordToken::expose`] does, and only the Discord client calls it.
#[derive(Clone, PartialEq, Eq)]
pub struct DiscordToken(String);

impl DiscordToken {
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

/// The project cache: `$SHOPKEEP_CACHE_DIR`, else `$XDG_CACHE_HOME/shopkeep`, else
/// `~/.cache/shopkeep`. Holds the runtime library, the Python tools' venv and models.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SHOPKEEP_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("shopkeep");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("shopkeep")
}

/// Where `scripts/setup.sh embedding-model` prepares all-MiniLM-L6-v2.
pub fn default_embedding_model_dir() -> PathBuf {
    cache_dir().join("models").join("all-minilm-l6-v2")
}

/// Where `./scripts/run.sh` prepares the default model (SmolLM2-135M-Instruct): the fp32
/// conversion, or the 8-bit one when `SHOPKEEP_WEIGHTS=int8`.
pub fn default_model_dir() -> PathBuf {
    let name = match std::env::var("SHOPKEEP_WEIGHTS").as_deref() {
        Ok("int8") => "smollm2-135m-instruct-int8",
        _ => "smollm2-135m-instruct",
    };
    cache_dir().join("models").join(name)
}

/// Discord connection and server-specific ids.
#[derive(Debug, Clone)]
pub struct DiscordSettings {
    pub token: Option<DiscordToken>,
    /// Replaces `https://discord.com` for REST and gateway discovery.
    pub api_url: Option<String>,
    pub support_channels: Vec<u64>,
    pub mod_roles: Vec<u64>,
    pub admin_roles: Vec<u64>,
    pub answer_dms: bool,
    /// Register slash commands in these guilds (instant) instead of globally.
    pub command_guilds: Vec<u64>,
    /// Channel where handoffs and guard events are posted for moderators.
    pub mod_log_channel: Option<u64>,
    /// How long in-flight replies may run after SIGTERM before they are cancelled.
    pub shutdown_grace: Duration,
    /// Most channel messages `/summarise` reads, whatever count a moderator asks for.
    pub summary_max_messages: usize,
}

/// The language model and how it samples.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub model_dir: PathBuf,
    /// ONNX Runtime intra-op threads; 0 = let ONNX Runtime decide.
    pub threads: usize,
    pub max_new_tokens: usize,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub repetition_penalty: f32,
}

/// Conversation memory.
#[derive(Debug, Clone)]
pub struct ConversationSettings {
    /// A conversation idle this long is closed; the next message starts a new one.
    pub idle_timeout: Duration,
    /// Closed conversations are deleted from the store after this long.
    pub retention: Duration,
    /// At most this many users' conversations are held in memory (LRU).
    pub max_users_in_memory: usize,
    /// At most this many of a conversation's newest turns are held in memory and offered
    /// to the prompt (which keeps those that fit its token budget); the store keeps all.
    pub max_turns_in_memory: usize,
}

/// Rate limits and admission.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    pub user_burst: u32,
    pub user_per_minute: u32,
    pub channel_burst: u32,
    pub channel_per_minute: u32,
    /// Generations queued or running at once; more are refused as "busy".
    pub max_queue: usize,
    /// Moderators and admins skip the per-user and per-channel limits.
    pub exempt_staff: bool,
    /// Longest question accepted, in characters.
    pub max_question_chars: usize,
}

/// Everything the bot reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub discord: DiscordSettings,
    pub model: ModelSettings,
    pub conversation: ConversationSettings,
    pub limits: LimitSettings,
    pub prompts_dir: PathBuf,
    /// The sentence-embedding model for hybrid retrieval (`SHOPKEEP_EMBEDDING_MODEL_DIR`,
    /// default: the prepared all-MiniLM-L6-v2); `None` ("off") = lexical retrieval only.
    pub embedding_model_dir: Option<PathBuf>,
    /// SQLite path, or `:memory:`.
    pub db_path: String,
    /// Where `GET /metrics` (Prometheus text) is served; `None` (the default) = off.
    pub metrics_addr: Option<SocketAddr>,
}

impl Config {
    /// Reads and validates every setting; the first bad one is the error.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            discord: DiscordSettings {
                token: var("DISCORD_TOKEN").map(DiscordToken::new),
                api_url: var("DISCORD_API_URL").map(|u| u.trim_end_matches('/').to_string()),
                support_channels: id_list("SHOPKEEP_SUPPORT_CHANNELS")?,
                mod_roles: id_list("SHOPKEEP_MOD_ROLES")?,
                admin_roles: id_list("SHOPKEEP_ADMIN_ROLES")?,
                answer_dms: parsed("SHOPKEEP_ANSWER_DMS", true, "true or false")?,
                command_guilds: id_list("SHOPKEEP_COMMAND_GUILDS")?,
                mod_log_channel: id_list("SHOPKEEP_MOD_LOG_CHANNEL")?.first().copied(),
                shutdown_grace: Duration::from_secs(parsed(
                    "SHOPKEEP_SHUTDOWN_GRACE_SECS",
                    20,
                    "a number of seconds",
                )?),
                summary_max_messages: parsed(
                    "SHOPKEEP_SUMMARY_MAX_MESSAGES",
                    500,
                    "a message count",
                )?,
            },
            model: ModelSettings {
                model_dir: var("SHOPKEEP_MODEL_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(default_model_dir),
                threads: parsed("SHOPKEEP_THREADS", 0, "a thread count (0 = automatic)")?,
                max_new_tokens: parsed("SHOPKEEP_MAX_NEW_TOKENS", 200, "a token count")?,
                temperature: parsed("SHOPKEEP_TEMPERATURE", 0.0, "a number >= 0 (0 = greedy)")?,
                top_k: parsed("SHOPKEEP_TOP_K", 40, "a whole number (0 = off)")?,
                top_p: parsed("SHOPKEEP_TOP_P", 0.9, "a number in (0, 1]")?,
                repetition_penalty: parsed("SHOPKEEP_REPETITION_PENALTY", 1.1, "a number >= 1")?,
            },
            conversation: ConversationSettings {
                idle_timeout: Duration::from_secs(
                    60 * parsed("SHOPKEEP_CONVERSATION_IDLE_MINUTES", 30u64, "minutes")?,
                ),
                retention: Duration::from_secs(
                    86_400 * parsed("SHOPKEEP_RETENTION_DAYS", 30u64, "days")?,
                ),
                max_users_in_memory: parsed(
                    "SHOPKEEP_MAX_USERS_IN_MEMORY",
                    10_000,
                    "a user count",
                )?,
                max_turns_in_memory: parsed("SHOPKEEP_MAX_TURNS_IN_MEMORY", 20, "a turn count")?,
            },
            limits: LimitSettings {
                user_burst: parsed("SHOPKEEP_USER_BURST", 3, "a whole number >= 1")?,
                user_per_minute: parsed("SHOPKEEP_USER_PER_MINUTE", 6, "a whole number >= 1")?,
                channel_burst: parsed("SHOPKEEP_CHANNEL_BURST", 10, "a whole number >= 1")?,
                channel_per_minute: parsed(
                    "SHOPKEEP_CHANNEL_PER_MINUTE",
                    30,
                    "a whole number >= 1",
                )?,
                max_queue: parsed("SHOPKEEP_MAX_QUEUE", 16, "a whole number >= 1")?,
                exempt_staff: parsed("SHOPKEEP_EXEMPT_STAFF", true, "true or false")?,
                max_question_chars: parsed("SHOPKEEP_MAX_QUESTION_CHARS", 2000, "a length")?,
            },
            prompts_dir: var("SHOPKEEP_PROMPTS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("prompts")),
            embedding_model_dir: match var("SHOPKEEP_EMBEDDING_MODEL_DIR") {
                Some(value) if value.trim() == "off" => None,
                Some(value) => Some(PathBuf::from(value)),
                None => Some(default_embedding_model_dir()),
            },
            db_path: var("SHOPKEEP_DB").unwrap_or_else(|| {
                cache_dir()
                    .join("data")
                    .join("shopkeep.sqlite3")
                    .to_string_lossy()
                    .into_owned()
            }),
            metrics_addr: var("SHOPKEEP_METRICS_ADDR")
                .map(|value| {
                    value.trim().parse().map_err(|_| ConfigError {
                        variable: "SHOPKEEP_METRICS_ADDR",
                        value,
                        expected: "an address with a port, e.g. 127.0.0.1:9464".to_string(),
                    })
                })
                .transpose()?,
        })
    }
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parsed<T: FromStr>(name: &'static str, default: T, expected: &str) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError {
            variable: name,
            value,
            expected: expected.to_string(),
        }),
    }
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
            part.parse().map_err(|_| ConfigError {
                variable: name,
                value: value.clone(),
                expected: "a comma-separated list of numeric Discord ids".to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
