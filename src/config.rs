//! Settings from the environment (and `.env`, loaded by `main`), validated once at start
//! into a typed [`Config`]. Every variable read here is documented in `.env.example`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A setting that could not be used; names the variable and says what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{variable}={value:?} is not valid: {expected}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// Its value, as read.
    pub value: String,
    /// What would be accepted, in words.
    pub expected: String,
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

/// Where `./scripts/run.sh` prepares the default model (SmolLM2-135M-Instruct): the GGUF's
/// own 4-bit blocks in the fused layout, or the variant `SHOPKEEP_WEIGHTS` names (see
/// [`default_model_dir_for`]).
pub fn default_model_dir() -> PathBuf {
    default_model_dir_for(std::env::var("SHOPKEEP_WEIGHTS").as_deref().unwrap_or("q4"))
}

/// The cache directory of one variant of the default model: `q4` (the default: 4-bit blocks,
/// fused layout, `smollm2-135m-instruct-q4-fused`), `q4-optimum` (the same weights in Optimum's
/// layout, `smollm2-135m-instruct-q4`), `fp32`, `int8`; anything else is `q4`.
pub fn default_model_dir_for(weights: &str) -> PathBuf {
    let name = match weights {
        "int8" => "smollm2-135m-instruct-int8",
        "fp32" => "smollm2-135m-instruct",
        "q4-optimum" => "smollm2-135m-instruct-q4",
        _ => "smollm2-135m-instruct-q4-fused",
    };
    cache_dir().join("models").join(name)
}

/// The language model and how it samples.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// The model directory (`SHOPKEEP_MODEL_DIR`, default [`default_model_dir`]).
    pub model_dir: PathBuf,
    /// ONNX Runtime intra-op threads; 0 = let ONNX Runtime decide.
    pub threads: usize,
    /// Most tokens one reply generates (`SHOPKEEP_MAX_NEW_TOKENS`, at least 1).
    pub max_new_tokens: usize,
    /// Sampling temperature (`SHOPKEEP_TEMPERATURE`, >= 0; 0 = greedy).
    pub temperature: f32,
    /// Keep the k most likely tokens (`SHOPKEEP_TOP_K`; 0 = off).
    pub top_k: usize,
    /// Nucleus sampling mass (`SHOPKEEP_TOP_P`, in (0, 1]; 1 = off).
    pub top_p: f32,
    /// Penalty on repeated tokens (`SHOPKEEP_REPETITION_PENALTY`, >= 1; 1 = off).
    pub repetition_penalty: f32,
}

/// Which backend writes the model's words (`SHOPKEEP_BACKEND`).
#[derive(Debug, Clone)]
pub enum BackendChoice {
    /// The embedded engine on [`ModelSettings::model_dir`] (the default).
    Onnx,
    /// An OpenAI-compatible server.
    OpenAi(OpenAiSettings),
}

/// An OpenAI-compatible server (`SHOPKEEP_OPENAI_*`).
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// The API root, e.g. `http://127.0.0.1:8080/v1`, without a trailing slash.
    pub base_url: String,
    /// The model id to ask for; `None` = the first the server lists.
    pub model: Option<String>,
    /// Sent as a bearer token; redacted in every Debug and Display.
    pub api_key: Option<crate::backend::openai::ApiKey>,
    /// A local tokenizer.json for exact token counts.
    pub tokenizer: Option<PathBuf>,
    /// Requests to the server at once; more wait their turn.
    pub max_concurrency: usize,
    /// Used when the server does not say its context length.
    pub context_length: Option<usize>,
    /// How long a connection may take to open.
    pub connect_timeout: Duration,
    /// Longest silence while waiting for the server's next bytes.
    pub read_timeout: Duration,
    /// How long the first health check waits for a server that is still starting.
    pub start_timeout: Duration,
}

impl OpenAiSettings {
    /// Settings for a server at `base_url` with every other setting at its default.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim().trim_end_matches('/').to_string(),
            model: None,
            api_key: None,
            tokenizer: None,
            max_concurrency: 4,
            context_length: None,
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(30),
        }
    }

    fn from_env() -> Result<Self, ConfigError> {
        let base_url = var("SHOPKEEP_OPENAI_BASE_URL").ok_or_else(|| ConfigError {
            variable: "SHOPKEEP_OPENAI_BASE_URL",
            value: String::new(),
            expected: "the server's API root, e.g. http://127.0.0.1:8080/v1 (SHOPKEEP_BACKEND=openai needs it)".into(),
        })?;
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ConfigError {
                variable: "SHOPKEEP_OPENAI_BASE_URL",
                value: base_url,
                expected: "an http:// or https:// URL".into(),
            });
        }
        let defaults = Self::new(&base_url);
        Ok(Self {
            model: var("SHOPKEEP_OPENAI_MODEL"),
            api_key: var("SHOPKEEP_OPENAI_API_KEY").map(crate::backend::openai::ApiKey::new),
            tokenizer: var("SHOPKEEP_OPENAI_TOKENIZER").map(PathBuf::from),
            max_concurrency: at_least_one(
                "SHOPKEEP_OPENAI_MAX_CONCURRENCY",
                defaults.max_concurrency,
                "a request count",
            )?,
            context_length: var("SHOPKEEP_OPENAI_CONTEXT_LENGTH")
                .map(|_| at_least_one("SHOPKEEP_OPENAI_CONTEXT_LENGTH", 1usize, "a token count"))
                .transpose()?,
            connect_timeout: Duration::from_secs(at_least_one(
                "SHOPKEEP_OPENAI_CONNECT_TIMEOUT_SECS",
                defaults.connect_timeout.as_secs(),
                "seconds",
            )?),
            read_timeout: Duration::from_secs(at_least_one(
                "SHOPKEEP_OPENAI_READ_TIMEOUT_SECS",
                defaults.read_timeout.as_secs(),
                "seconds",
            )?),
            start_timeout: Duration::from_secs(parsed(
                "SHOPKEEP_OPENAI_START_TIMEOUT_SECS",
                defaults.start_timeout.as_secs(),
                "seconds (0 = do not wait)",
            )?),
            ..defaults
        })
    }
}

/// Conversation memory.
#[derive(Debug, Clone)]
pub struct ConversationSettings {
    /// A conversation idle this long is closed; the next message starts a new one.
    pub idle_timeout: Duration,
    /// Closed conversations are deleted from the store after this long.
    pub retention: Duration,
    /// Logged questions and feedback votes are deleted after this long.
    pub log_retention: Duration,
    /// At most this many users' conversations are held in memory (LRU).
    pub max_users_in_memory: usize,
    /// At most this many of a conversation's newest turns are held in memory and offered
    /// to the prompt (which keeps those that fit its token budget); the store keeps all.
    pub max_turns_in_memory: usize,
}

/// Rate limits and admission.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Questions one user may ask at once before the per-minute rate applies
    /// (`SHOPKEEP_USER_BURST`, at least 1).
    pub user_burst: u32,
    /// Questions per minute one user may ask after the burst (`SHOPKEEP_USER_PER_MINUTE`, at
    /// least 1).
    pub user_per_minute: u32,
    /// Questions one channel may receive at once (`SHOPKEEP_CHANNEL_BURST`, at least 1).
    pub channel_burst: u32,
    /// Questions per minute one channel may receive after the burst
    /// (`SHOPKEEP_CHANNEL_PER_MINUTE`, at least 1).
    pub channel_per_minute: u32,
    /// Generations queued or running at once; more are refused as "busy".
    pub max_queue: usize,
    /// Tokens (each generation's prompt plus its reply room) queued or running at once;
    /// `None` = derived from the model ([`crate::assistant::limits::queue_token_bound`]).
    pub max_queue_tokens: Option<usize>,
    /// Moderators and admins skip the per-user and per-channel limits.
    pub exempt_staff: bool,
    /// Longest question accepted, in characters.
    pub max_question_chars: usize,
}

/// Everything the bot reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which backend writes the answers (`SHOPKEEP_BACKEND`).
    pub backend: BackendChoice,
    /// The embedded model and its sampling.
    pub model: ModelSettings,
    /// Conversation context and retention.
    pub conversation: ConversationSettings,
    /// Rate limits and queue admission.
    pub limits: LimitSettings,
    /// The prompts folder ([`prompts_dir`]).
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
            backend: match var("SHOPKEEP_BACKEND").as_deref().map(str::trim) {
                None | Some("onnx") => BackendChoice::Onnx,
                Some("openai") => BackendChoice::OpenAi(OpenAiSettings::from_env()?),
                Some(other) => {
                    return Err(ConfigError {
                        variable: "SHOPKEEP_BACKEND",
                        value: other.to_string(),
                        expected:
                            "onnx (the embedded engine) or openai (an OpenAI-compatible server)"
                                .into(),
                    })
                }
            },
            model: ModelSettings {
                model_dir: var("SHOPKEEP_MODEL_DIR")
                    .map(PathBuf::from)
                    .unwrap_or_else(default_model_dir),
                threads: parsed("SHOPKEEP_THREADS", 0, "a thread count (0 = automatic)")?,
                max_new_tokens: at_least_one("SHOPKEEP_MAX_NEW_TOKENS", 200, "a token count")?,
                temperature: checked(
                    "SHOPKEEP_TEMPERATURE",
                    0.0,
                    "a number >= 0 (0 = greedy)",
                    |t: &f32| t.is_finite() && *t >= 0.0,
                )?,
                top_k: parsed("SHOPKEEP_TOP_K", 40, "a whole number (0 = off)")?,
                top_p: checked("SHOPKEEP_TOP_P", 0.9, "a number in (0, 1]", |p: &f32| {
                    *p > 0.0 && *p <= 1.0
                })?,
                repetition_penalty: checked(
                    "SHOPKEEP_REPETITION_PENALTY",
                    1.1,
                    "a number >= 1 (1 = off)",
                    |p: &f32| p.is_finite() && *p >= 1.0,
                )?,
            },
            conversation: ConversationSettings {
                idle_timeout: Duration::from_secs(
                    60 * at_least_one("SHOPKEEP_CONVERSATION_IDLE_MINUTES", 30u64, "minutes")?,
                ),
                retention: Duration::from_secs(
                    86_400 * parsed("SHOPKEEP_RETENTION_DAYS", 30u64, "days (0 = at once)")?,
                ),
                log_retention: Duration::from_secs(
                    86_400 * parsed("SHOPKEEP_LOG_RETENTION_DAYS", 90u64, "days (0 = at once)")?,
                ),
                max_users_in_memory: at_least_one(
                    "SHOPKEEP_MAX_USERS_IN_MEMORY",
                    10_000,
                    "a user count",
                )?,
                max_turns_in_memory: at_least_one(
                    "SHOPKEEP_MAX_TURNS_IN_MEMORY",
                    20,
                    "a turn count",
                )?,
            },
            limits: LimitSettings {
                user_burst: at_least_one("SHOPKEEP_USER_BURST", 3, "a whole number")?,
                user_per_minute: at_least_one("SHOPKEEP_USER_PER_MINUTE", 6, "a whole number")?,
                channel_burst: at_least_one("SHOPKEEP_CHANNEL_BURST", 10, "a whole number")?,
                channel_per_minute: at_least_one(
                    "SHOPKEEP_CHANNEL_PER_MINUTE",
                    30,
                    "a whole number",
                )?,
                max_queue: at_least_one("SHOPKEEP_MAX_QUEUE", 16, "a whole number")?,
                max_queue_tokens: var("SHOPKEEP_MAX_QUEUE_TOKENS")
                    .map(|_| at_least_one("SHOPKEEP_MAX_QUEUE_TOKENS", 1usize, "a token count"))
                    .transpose()?,
                exempt_staff: parsed("SHOPKEEP_EXEMPT_STAFF", true, "true or false")?,
                max_question_chars: at_least_one(
                    "SHOPKEEP_MAX_QUESTION_CHARS",
                    2000,
                    "a length in characters",
                )?,
            },
            prompts_dir: prompts_dir(),
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

/// The prompts folder: `$SHOPKEEP_PROMPTS_DIR`, else `./prompts`. The one place that
/// variable is read; the prompt tools call it without reading the rest of the settings.
pub fn prompts_dir() -> PathBuf {
    var("SHOPKEEP_PROMPTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("prompts"))
}

pub(crate) fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A setting that must also pass `valid`; `expected` describes the values it accepts.
/// Out-of-range values are refused, never clamped.
fn checked<T: FromStr>(
    name: &'static str,
    default: T,
    expected: &str,
    valid: impl Fn(&T) -> bool,
) -> Result<T, ConfigError> {
    let value = parsed(name, default, expected)?;
    if valid(&value) {
        return Ok(value);
    }
    Err(ConfigError {
        variable: name,
        value: var(name).unwrap_or_default(),
        expected: expected.to_string(),
    })
}

/// A count that must be at least one; `what` says what it counts.
fn at_least_one<T: FromStr + PartialOrd + From<u8>>(
    name: &'static str,
    default: T,
    what: &str,
) -> Result<T, ConfigError> {
    checked(name, default, &format!("{what}, at least 1"), |n: &T| {
        *n >= T::from(1)
    })
}

pub(crate) fn parsed<T: FromStr>(
    name: &'static str,
    default: T,
    expected: &str,
) -> Result<T, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|_| ConfigError {
            variable: name,
            value,
            expected: expected.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serialises the tests that set process environment variables.
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// `Config::from_env` with `variable=value` set (and removed again afterwards).
    fn from_env_with(variable: &str, value: &str) -> Result<Config, ConfigError> {
        let _env = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = std::env::var_os(variable);
        std::env::set_var(variable, value);
        let config = Config::from_env();
        match before {
            Some(before) => std::env::set_var(variable, before),
            None => std::env::remove_var(variable),
        }
        config
    }

    fn refused(variable: &str, value: &str) -> ConfigError {
        match from_env_with(variable, value) {
            Ok(_) => panic!("{variable}={value} was accepted"),
            Err(error) => {
                assert_eq!(error.variable, variable, "{error}");
                assert!(error.to_string().starts_with(variable), "{error}");
                error
            }
        }
    }

    #[test]
    fn counts_must_be_at_least_one() {
        for variable in [
            "SHOPKEEP_MAX_NEW_TOKENS",
            "SHOPKEEP_CONVERSATION_IDLE_MINUTES",
            "SHOPKEEP_MAX_USERS_IN_MEMORY",
            "SHOPKEEP_MAX_TURNS_IN_MEMORY",
            "SHOPKEEP_USER_BURST",
            "SHOPKEEP_USER_PER_MINUTE",
            "SHOPKEEP_CHANNEL_BURST",
            "SHOPKEEP_CHANNEL_PER_MINUTE",
            "SHOPKEEP_MAX_QUEUE",
            "SHOPKEEP_MAX_QUEUE_TOKENS",
            "SHOPKEEP_MAX_QUESTION_CHARS",
        ] {
            let error = refused(variable, "0");
            assert!(error.expected.contains("at least 1"), "{error}");
            assert!(from_env_with(variable, "1").is_ok(), "{variable}=1");
        }
    }

    #[test]
    fn top_p_must_be_above_zero_and_at_most_one() {
        for bad in ["0", "-0.5", "1.01", "NaN"] {
            let error = refused("SHOPKEEP_TOP_P", bad);
            assert_eq!(error.value, bad);
            assert!(error.expected.contains("(0, 1]"), "{error}");
        }
        let config = from_env_with("SHOPKEEP_TOP_P", "1").unwrap();
        assert_eq!(config.model.top_p, 1.0);
        let config = from_env_with("SHOPKEEP_TOP_P", "0.05").unwrap();
        assert_eq!(config.model.top_p, 0.05);
    }

    #[test]
    fn temperature_and_repetition_penalty_are_range_checked() {
        for bad in ["-0.1", "inf", "NaN"] {
            refused("SHOPKEEP_TEMPERATURE", bad);
        }
        assert_eq!(
            from_env_with("SHOPKEEP_TEMPERATURE", "0")
                .unwrap()
                .model
                .temperature,
            0.0
        );
        for bad in ["0.9", "0", "inf"] {
            refused("SHOPKEEP_REPETITION_PENALTY", bad);
        }
        assert_eq!(
            from_env_with("SHOPKEEP_REPETITION_PENALTY", "1")
                .unwrap()
                .model
                .repetition_penalty,
            1.0
        );
    }

    #[test]
    fn zero_is_still_a_choice_where_it_means_something() {
        assert_eq!(
            from_env_with("SHOPKEEP_THREADS", "0")
                .unwrap()
                .model
                .threads,
            0
        );
        assert_eq!(from_env_with("SHOPKEEP_TOP_K", "0").unwrap().model.top_k, 0);
        let config = from_env_with("SHOPKEEP_RETENTION_DAYS", "0").unwrap();
        assert_eq!(config.conversation.retention, Duration::ZERO);
    }

    #[test]
    fn the_backend_is_onnx_unless_openai_is_chosen_with_a_url() {
        assert!(matches!(
            from_env_with("SHOPKEEP_BACKEND", "onnx").unwrap().backend,
            BackendChoice::Onnx
        ));
        refused("SHOPKEEP_BACKEND", "vllm");
        // openai without SHOPKEEP_OPENAI_BASE_URL names the missing variable.
        let error = from_env_with("SHOPKEEP_BACKEND", "openai").unwrap_err();
        assert_eq!(error.variable, "SHOPKEEP_OPENAI_BASE_URL");
        let settings = OpenAiSettings::new("http://127.0.0.1:8080/v1/ ");
        assert_eq!(settings.base_url, "http://127.0.0.1:8080/v1");
    }

    #[test]
    fn unparsable_values_name_the_variable() {
        let error = refused("SHOPKEEP_MAX_QUEUE", "many");
        assert_eq!(
            error.to_string(),
            "SHOPKEEP_MAX_QUEUE=\"many\" is not valid: a whole number, at least 1"
        );
    }
}
